/**
 * The interface of src/trafficmngr/: the masquerade and FORWARD rules, with nftables or iptables.
 * Other folders, the lab and the benches import only these modules (npm run lint enforces it).
 * They may name a module directly rather than this file: the bundler splits code by file, so
 * importing through here would load every module below into each entry point.
 */
export * from "./iptables.js";
export * from "./nftables.js";
export * from "./traffic_manager.js";
