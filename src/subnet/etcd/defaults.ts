/** flannel's etcd defaults, in a module of their own so that flag parsing does not load the etcd client. */

/** flannel's default etcd key prefix. */
export const DEFAULT_ETCD_PREFIX = "/coreos.com/network";
/** flannel's default etcd endpoints. */
export const DEFAULT_ETCD_ENDPOINTS = "http://127.0.0.1:4001,http://127.0.0.1:2379";
/** flannel's lease life: 24 h. */
export const SUBNET_TTL_SECONDS = 24 * 60 * 60;
