/**
 * The interface of src/config/: the network config, subnet.env and the Go-compatible JSON they are written in.
 * Other folders, the lab and the benches import only these modules (npm run lint enforces it).
 * They may name a module directly rather than this file: the bundler splits code by file, so
 * importing through here would load every module below into each entry point.
 */
export * from "./go_json.js";
export * from "./network_config.js";
export * from "./subnet_env.js";
