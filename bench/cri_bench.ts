/**
 * Issue #29's figures, printed (never asserted): a pod sandbox's RunPodSandbox +
 * StopPodSandbox + RemovePodSandbox through containerd's CRI, as the kubelet calls them, p50 and
 * p99, with flannel-ts's plugin (the conflist `flannelctl cni install` writes: flannel, then
 * portmap) against a second containerd on the same lab host whose conflist is Debian's bridge
 * plugin alone (bridge + host-local), in the same run, one sandbox of each in turn.
 *   node dist/bench/cri_bench.js   (FLANNEL_TS_BENCH_ROUNDS rounds of 10 sandboxes each, default 5)
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { labDown, labUp } from "../lab/cluster.js";
import { containerdIn, startForPods, endContainerd } from "../lab/containerd.js";
import type { Containerd } from "../lab/containerd.js";
import { hostContainerd, labSandboxSpec } from "../lab/containerd_pods.js";
import { CriClient } from "../lab/cri_client.js";
import { uniquePrefix } from "../lab/netns.js";
import { percentile, print } from "./bench_util.js";

const ROUNDS = Number(process.env.FLANNEL_TS_BENCH_ROUNDS ?? 5);
const PER_ROUND = 10;

/**
 * The bridge plugin alone on a bridge and range of its own; with `asFlannel`, with what flannel's
 * plugin hands it (ipMasq, the default gateway, hairpin) and portmap after it: everything the
 * flannel conflist runs but flannel-ts's plugin itself.
 */
function bridgeConflist(dir: string, asFlannel: boolean): string {
  const bridge = {
    type: "bridge",
    bridge: asFlannel ? "cribench1" : "cribench0",
    isGateway: true,
    hairpinMode: true,
    ...(asFlannel ? { ipMasq: true, isDefaultGateway: true, mtu: 1450 } : {}),
    ipam: {
      type: "host-local",
      subnet: asFlannel ? "10.99.1.0/24" : "10.99.0.0/24",
      dataDir: join(dir, "ipam"),
    },
  };
  const portmap = { type: "portmap", capabilities: { portMappings: true } };
  return JSON.stringify({
    cniVersion: "0.3.1",
    name: asFlannel ? "bridge-as-flannel" : "bridge-only",
    plugins: asFlannel ? [bridge, portmap] : [bridge],
  });
}

/** A second (third) containerd on the lab host, its conflist the bridge plugin's. */
async function bridgeContainerd(
  labDir: string,
  hostDir: string,
  netns: string,
  asFlannel: boolean,
): Promise<Containerd> {
  const dir = join(hostDir, asFlannel ? "containerd-bridge-as-flannel" : "containerd-bridge");
  const c = containerdIn(dir, netns);
  started.push(c);
  await mkdir(c.cniConfDir, { recursive: true });
  await writeFile(join(c.cniConfDir, "10-bridge.conflist"), bridgeConflist(dir, asFlannel));
  await startForPods(c, labDir);
  return c;
}

/** One sandbox's life through the CRI, in ms. */
async function sandboxLife(
  client: CriClient,
  spec: ReturnType<typeof labSandboxSpec>,
): Promise<number> {
  const t0 = process.hrtime.bigint();
  const id = await client.runPodSandbox(spec);
  await client.stopAndRemove(id);
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

const name = uniquePrefix("ftbcri");
const started: Containerd[] = [];
try {
  const lab = await labUp(
    { name, nodes: 1, pods: 0, backend: "vxlan", runtime: "containerd" },
    () => undefined,
  );
  const [node] = lab.nodes;
  if (node === undefined) throw new Error("the lab has no host");
  const hostDir = join(lab.dir, node.name);
  const bridge = await bridgeContainerd(lab.dir, hostDir, node.netns, false);
  const asFlannel = await bridgeContainerd(lab.dir, hostDir, node.netns, true);
  const clients = {
    flannel: new CriClient(hostContainerd(lab, node).socket),
    asFlannel: new CriClient(asFlannel.socket),
    bridge: new CriClient(bridge.socket),
  };
  const kinds = ["flannel", "asFlannel", "bridge"] as const;
  const samples = { flannel: [] as number[], asFlannel: [] as number[], bridge: [] as number[] };
  let version = "";
  try {
    version = (await clients.flannel.version()).runtimeVersion;
    // One of each to warm both (page cache, the plugin's first start).
    for (const key of kinds)
      await sandboxLife(clients[key], labSandboxSpec(lab, node, `warm-${key}`));
    for (let round = 0; round < ROUNDS; round++)
      for (let i = 0; i < PER_ROUND; i++)
        for (const key of kinds)
          samples[key].push(
            await sandboxLife(clients[key], labSandboxSpec(lab, node, `${key}-${round}-${i}`)),
          );
  } finally {
    for (const key of kinds) clients[key].close();
  }
  const line = (label: string, values: readonly number[]) =>
    `${label}: p50 ${percentile(values, 50).toFixed(1)} ms, p99 ${percentile(values, 99).toFixed(1)} ms`;
  print(
    `RunPodSandbox + StopPodSandbox + RemovePodSandbox, containerd ${version}, ${ROUNDS * PER_ROUND} sandboxes each, in turn:`,
  );
  print(
    `  ${line("flannel-ts's plugin (flannel -> bridge + host-local, then portmap)", samples.flannel)}`,
  );
  print(
    `  ${line("bridge as flannel's plugin calls it, then portmap (no flannel plugin)", samples.asFlannel)}`,
  );
  print(`  ${line("bridge plugin alone (bridge + host-local), the baseline", samples.bridge)}`);
  print(
    `  flannel-ts's plugin against the same conflist without it: p50 ${(percentile(samples.flannel, 50) / percentile(samples.asFlannel, 50)).toFixed(2)}x, p99 ${(percentile(samples.flannel, 99) / percentile(samples.asFlannel, 99)).toFixed(2)}x`,
  );
  print(
    `  ratio to bridge alone: p50 ${(percentile(samples.flannel, 50) / percentile(samples.bridge, 50)).toFixed(2)}x, p99 ${(percentile(samples.flannel, 99) / percentile(samples.bridge, 99)).toFixed(2)}x`,
  );
} finally {
  for (const c of started) await endContainerd(c);
  await labDown(name, () => undefined);
}
