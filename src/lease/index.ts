/**
 * The interface of src/lease/: leases: what one is, the rules a peer's lease must pass, and the lease table.
 * Other folders, the lab and the benches import only these modules (npm run lint enforces it).
 * They may name a module directly rather than this file: the bundler splits code by file, so
 * importing through here would load every module below into each entry point.
 */
export * from "./lease.js";
export * from "./lease_table.js";
export * from "./peer_rules.js";
