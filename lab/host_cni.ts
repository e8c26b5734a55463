/**
 * A lab host's CNI files, whatever runtime calls the plugin: its conflist folder (a node's
 * /etc/cni/net.d), the lab's plugin folder (a node's /opt/cni/bin, shared by the hosts), and
 * the host's paths the conflist names (subnet.env, the plugin's and host-local's folders).
 */
import { join } from "node:path";
import type { ConflistPaths } from "../src/cni/install.js";
import type { Lab, LabNode } from "./lab_model.js";

/** The host's conflist folder, where `flannelctl cni install` writes 10-flannel.conflist. */
export function hostCniConfDir(lab: Lab, node: LabNode): string {
  return join(lab.dir, node.name, "net.d");
}

/** The lab's CNI plugin folder: the flannel plugin, and links to the standard plugins. */
export function labCniBinDir(lab: Lab): string {
  return join(lab.dir, "cni-bin");
}

/** The host's paths the conflist names: subnet.env, the plugin's and host-local's folders. */
export function hostCniPaths(lab: Lab, node: LabNode): Required<ConflistPaths> {
  return {
    subnetFile: node.subnetFile,
    dataDir: join(lab.dir, node.name, "cni"),
    ipamDataDir: join(lab.dir, node.name, "ipam"),
  };
}
