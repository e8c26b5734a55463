/**
 * The interface of src/cli/: the command lines: flanneld's flags (read by the package's man page and defaults file) and flannelctl's main (which the lab's flannelctl wraps).
 * Other folders, the lab and the benches import only these modules (npm run lint enforces it).
 * They may name a module directly rather than this file: the bundler splits code by file, so
 * importing through here would load every module below into each entry point.
 */
export * from "./flag_spec.js";
export * from "./flannelctl_main.js";
export * from "./flanneld_flags.js";
