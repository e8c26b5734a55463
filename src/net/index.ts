/**
 * The interface of src/net/: the kernel's network configuration: the Netlink interface with its rtnetlink implementation, the kernel-entry vocabulary, sysctls, route lookups, ethtool and the blackhole route.
 * Other folders, the lab and the benches import only these modules (npm run lint enforces it).
 * They may name a module directly rather than this file: the bundler splits code by file, so
 * importing through here would load every module below into each entry point.
 */
export * from "./blackhole_route.js";
export * from "./ethtool.js";
export * from "./kernel_entries.js";
export * from "./netlink.js";
export * from "./route_lookup.js";
export * from "./rtnetlink.js";
export * from "./sysctl.js";
