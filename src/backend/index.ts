/**
 * The interface of src/backend/: the backends: the Backend interface, the table of backends (registry.ts) and the device address helpers the doctor reads.
 * Other folders, the lab and the benches import only these modules (npm run lint enforces it).
 * They may name a module directly rather than this file: the bundler splits code by file, so
 * importing through here would load every module below into each entry point.
 */
export * from "./backend.js";
export * from "./device_address.js";
export * from "./registry.js";
