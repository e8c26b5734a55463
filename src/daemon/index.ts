/**
 * The interface of src/daemon/: flanneld's run loop and its systemd notifications.
 * Other folders, the lab and the benches import only these modules (npm run lint enforces it).
 * They may name a module directly rather than this file: the bundler splits code by file, so
 * importing through here would load every module below into each entry point.
 */
export * from "./run_flanneld.js";
export * from "./sd_notify.js";
