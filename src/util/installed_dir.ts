/**
 * Where an installed flannel-ts is (the .deb's and the image's /usr/lib/flannel-ts): one folder
 * with its own Node, the bundles, flanneld's snapshots and the addons (src/package/launcher.ts
 * starts the commands from it). Run from a repository, there is none.
 */
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";

/** The installed folder's files, by what they hold. */
export const INSTALLED = {
  node: "node",
  /** flanneld's and flannelctl's ES module bundles (flanneld's when it cannot start from a snapshot). */
  bundle: "bundle",
  /** The CNI plugin alone: what a pod's start loads. */
  plugin: "flannel.cjs",
  /** flanneld's snapshots: etcd mode's and Kubernetes mode's. */
  snapshot: "flanneld.blob",
  kubeSnapshot: "flanneld-kube.blob",
} as const;

/**
 * The installed folder this process runs from (the Node running it has the bundles beside it),
 * or null from a repository. Asked at run time, never while a snapshot is made.
 */
export function installedDir(): string | null {
  const dir = dirname(process.execPath);
  return existsSync(join(dir, INSTALLED.bundle, "flannelctl.js")) ? dir : null;
}
