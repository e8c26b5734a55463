/**
 * flannelctl doctor and trace on lab hosts: run in the host's namespace with that host's
 * flanneld flags, so that they work whether its flanneld runs or not; trace runs on the hosts
 * of both ends and joins their halves.
 */
import { join } from "node:path";
import type { TraceHalf } from "../src/doctor/trace.js";
import { IPNet, parseIP } from "../src/ip/ip.js";
import { runCapture } from "../src/util/exec.js";
import type { RunResult } from "../src/util/exec.js";
import { REPO_ROOT, flanneldCommand, listPods, onHost } from "./cluster.js";
import type { Lab, LabNode } from "./cluster.js";
import { readFile } from "node:fs/promises";
import { parseEnvFile } from "../src/config/subnet_env.js";

/** Runs `flannelctl <command...>` in a lab host's namespace, with the host's flanneld flags. */
export async function flannelctlOn(
  lab: Lab,
  node: LabNode,
  command: readonly string[],
): Promise<RunResult> {
  const { args, env } = flanneldCommand(lab, node);
  const flannelctl = join(REPO_ROOT, "bin/flannelctl");
  const [cmd, argv] = onHost(node, flannelctl, [...command, ...args]);
  return runCapture("ip", ["netns", "exec", node.netns, cmd, ...argv], {
    env: { ...process.env, ...env },
  });
}

/** The lab host whose subnet.env names a subnet holding `ip`; null when none does. */
async function hostOf(lab: Lab, ip: string): Promise<LabNode | null> {
  const address = parseIP(ip);
  if (address === null) return null;
  for (const node of lab.nodes) {
    const env = parseEnvFile(await readFile(node.subnetFile, "utf8").catch(() => ""));
    for (const key of ["FLANNEL_SUBNET", "FLANNEL_IPV6_SUBNET"]) {
      const subnet = IPNet.parse(env.get(key) ?? "");
      if (subnet?.family === address.family && subnet.contains(address.value)) return node;
    }
  }
  return null;
}

/** A pod name (h1p1) or an address, as an address. */
async function addressOf(lab: Lab, target: string): Promise<string> {
  if (parseIP(target) !== null) return target;
  const pod = (await listPods(lab)).find(
    (p) =>
      p.name === target ||
      (p.kube !== undefined && `${p.kube.namespace}/${p.kube.name}` === target),
  );
  if (pod === undefined)
    throw new RangeError(
      `Unknown pod or address "${target}": expected a pod name (h1p1) or an IP address`,
    );
  return pod.ip;
}

/** The path from `src` to `dst` (pod names or addresses), read on the hosts of both ends. */
export async function labTrace(
  lab: Lab,
  src: string,
  dst: string,
  port?: string,
): Promise<TraceHalf[]> {
  const from = await addressOf(lab, src);
  const to = await addressOf(lab, dst);
  const hosts = [await hostOf(lab, from), await hostOf(lab, to)].filter((n) => n !== null);
  const unique = [...new Map(hosts.map((n) => [n.name, n])).values()];
  if (unique.length === 0)
    throw new RangeError(`Neither ${from} nor ${to} lies in a lab host's subnet`);
  const halves: TraceHalf[] = [];
  for (const node of unique) {
    const portArgs = port === undefined ? [] : ["--port", port];
    const result = await flannelctlOn(lab, node, ["trace", "--json", ...portArgs, from, to]);
    if (!result.stdout.startsWith("{"))
      throw new Error(
        `trace on ${node.name} failed: ${result.stderr.trim() || result.stdout.trim()}`,
      );
    halves.push(JSON.parse(result.stdout) as TraceHalf);
  }
  return halves;
}
