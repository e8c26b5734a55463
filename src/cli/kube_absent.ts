/**
 * What etcd mode's start-up snapshot (dist/snapshot/flanneld.blob) holds in place of the
 * Kubernetes-only modules (the subnet manager, its client, NetworkPolicy): the build swaps this
 * module in for them (scripts/bundle.mjs), so that an etcd host's flanneld neither loads nor
 * keeps in memory the Kubernetes client. bin/flanneld starts Kubernetes mode from
 * flanneld-kube.blob, which has them all; this module is loaded only if Kubernetes mode reaches
 * the etcd snapshot some other way, and says so.
 */
import { FlannelError } from "../errors.js";

/** Kubernetes mode started from the snapshot made for etcd mode. */
export class SnapshotModeError extends FlannelError {}

throw new SnapshotModeError(
  "this flanneld was started from etcd mode's start-up snapshot (dist/snapshot/flanneld.blob), " +
    "which has no Kubernetes client: start Kubernetes mode with bin/flanneld and " +
    "--kube-subnet-mgr (or FLANNELD_KUBE_SUBNET_MGR), which picks flanneld-kube.blob",
);
