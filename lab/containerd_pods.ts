/**
 * Pods as the kubelet makes them (`lab up --runtime containerd`): each lab host runs its own
 * containerd, and the lab plays the kubelet through the CRI: a pod is a sandbox made by
 * RunPodSandbox, which containerd networks through flannel-ts's plugin with the conflist
 * `flannelctl cni install` writes (flannel, then portmap), with the CNI arguments and runtime
 * config of a real node; its address is the one PodSandboxStatus reports, as the kubelet reads it.
 */
import { randomUUID } from "node:crypto";
import { basename, join } from "node:path";
import { installCni } from "../src/cni/install.js";
import { containerdIn, startForPods, endContainerd } from "./containerd.js";
import type { Containerd } from "./containerd.js";
import { CriClient } from "./cri_client.js";
import type { SandboxSpec } from "./cri_client.js";
import { hostCniConfDir, hostCniPaths, labCniBinDir } from "./host_cni.js";
import type { Lab, LabNode, LabPod } from "./lab_model.js";

/** A lab host's containerd: its files under the host's folder, the host's CNI folders. */
export function hostContainerd(lab: Lab, node: LabNode): Containerd {
  return containerdIn(join(lab.dir, node.name, "containerd"), node.netns, {
    confDir: hostCniConfDir(lab, node),
    binDir: labCniBinDir(lab),
  });
}

/**
 * Readies containerd on a host: the plugin and conflist (by `flannelctl cni install`'s code,
 * unless the DaemonSet's init container put them there), the standard plugins beside it,
 * containerd started, the pause image imported.
 */
export async function setUpContainerd(
  lab: Lab,
  node: LabNode,
  options: { readonly installPlugin: boolean } = { installPlugin: true },
): Promise<void> {
  const c = hostContainerd(lab, node);
  if (options.installPlugin)
    await installCni({ binDir: c.cniBinDir, confDir: c.cniConfDir, ...hostCniPaths(lab, node) });
  await startForPods(c, lab.dir);
}

/** What the kubelet asks for a lab pod's sandbox: namespace default, a fresh uid. */
export function labSandboxSpec(lab: Lab, node: LabNode, name: string): SandboxSpec {
  return {
    name,
    namespace: "default",
    uid: randomUUID(),
    hostname: name,
    logDirectory: join(lab.dir, node.name, "pods", name),
  };
}

/**
 * A pod as a CRI sandbox on the host (what the kubelet asks, with `extra` in it, such as port
 * mappings); its address from PodSandboxStatus.
 */
export async function addSandboxPod(
  lab: Lab,
  node: LabNode,
  name: string,
  extra: Partial<SandboxSpec> = {},
): Promise<LabPod> {
  const client = new CriClient(hostContainerd(lab, node).socket);
  try {
    const id = await client.runPodSandbox({ ...labSandboxSpec(lab, node, name), ...extra });
    const status = await client.podSandboxStatus(id);
    const ip4 = status.ips.find((ip) => ip.includes("."));
    const ip6 = status.ips.find((ip) => ip.includes(":"));
    const ip = ip4 ?? ip6;
    if (ip === undefined || status.netnsPath === null)
      throw new Error(
        `Cannot add pod ${name}: containerd reports its sandbox ${id} with no address`,
      );
    return {
      name,
      netns: basename(status.netnsPath),
      node: node.name,
      ip,
      ...(ip4 !== undefined && ip6 !== undefined ? { ip6 } : {}),
      sandbox: id,
    };
  } finally {
    client.close();
  }
}

/** Stops and removes a pod's sandbox, as the kubelet does when the pod goes (the CNI DEL runs). */
export async function removeSandboxPod(lab: Lab, node: LabNode, sandbox: string): Promise<void> {
  const client = new CriClient(hostContainerd(lab, node).socket);
  try {
    await client.stopAndRemove(sandbox);
  } finally {
    client.close();
  }
}

/** Every host's sandboxes removed (through the CNI DEL), then containerd and what it left ended. */
export async function tearDownContainerd(lab: Lab): Promise<void> {
  for (const node of lab.nodes) await endContainerd(hostContainerd(lab, node));
}
