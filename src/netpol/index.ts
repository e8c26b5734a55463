/**
 * The interface of src/netpol/: NetworkPolicy for this node's pods (flanneld --network-policy),
 * and the verdict of the policies on a packet (doctor and trace).
 * Other folders, the lab and the benches import only these modules (npm run lint enforces it).
 * They may name a module directly rather than this file: the bundler splits code by file, so
 * importing through here would load every module below into each entry point.
 */
export * from "./cluster_view.js";
export * from "./enforcer.js";
export * from "./evaluate.js";
export * from "./network_policy.js";
export * from "./nft_policy.js";
export * from "./objects.js";
export * from "./plan.js";
export * from "./selector.js";
export * from "./kube_source.js";
export * from "./describe.js";
