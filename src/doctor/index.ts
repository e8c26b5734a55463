/**
 * The interface of src/doctor/: doctor and trace: the checks, their report, and finding flanneld's process.
 * Other folders, the lab and the benches import only these modules (npm run lint enforces it).
 * They may name a module directly rather than this file: the bundler splits code by file, so
 * importing through here would load every module below into each entry point.
 */
export * from "./doctor.js";
export * from "./flanneld_process.js";
export * from "./report.js";
export * from "./trace.js";
