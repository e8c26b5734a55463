/**
 * The interface of src/subnet/etcd/: the etcd subnet manager, its registry and its defaults.
 * Other folders, the lab and the benches import only these modules (npm run lint enforces it).
 * They may name a module directly rather than this file: the bundler splits code by file, so
 * importing through here would load every module below into each entry point.
 */
export * from "./defaults.js";
export * from "./local_manager.js";
export * from "./registry.js";
