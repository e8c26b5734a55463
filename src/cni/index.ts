/**
 * The interface of src/cni/: the flannel CNI plugin and its installer.
 * Other folders, the lab and the benches import only these modules (npm run lint enforces it).
 * They may name a module directly rather than this file: the bundler splits code by file, so
 * importing through here would load every module below into each entry point.
 */
export * from "./install.js";
export * from "./plugin.js";
