/**
 * The interface of src/subnet/kube/: the Kubernetes subnet manager and the Node annotations it reads and writes.
 * Other folders, the lab and the benches import only these modules (npm run lint enforces it).
 * They may name a module directly rather than this file: the bundler splits code by file, so
 * importing through here would load every module below into each entry point.
 */
export * from "./annotations.js";
export * from "./kube_manager.js";
export * from "./node_lease.js";
export * from "./node_watch.js";
export * from "./kube_client.js";
