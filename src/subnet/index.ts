/**
 * The interface of src/subnet/: the SubnetManager interface and the lease watch every backend follows.
 * Other folders, the lab and the benches import only these modules (npm run lint enforces it).
 * They may name a module directly rather than this file: the bundler splits code by file, so
 * importing through here would load every module below into each entry point.
 */
export * from "./manager.js";
export * from "./watch_leases.js";
