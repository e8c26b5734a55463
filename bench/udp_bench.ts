/**
 * Issue #12 figures, printed (never asserted): the udp backend against a forwarder written as
 * flannel (Go)'s C proxy loop (test/helpers/flannel_udp_proxy.c, compiled here), on the same
 * two lab hosts, in turn, ROUNDS times each; medians.
 *   - pod-to-pod TCP throughput (iperf3, SECONDS s) with 1 and 4 streams, as ratios to C
 *   - the same on vxlan (a second lab, same topology), as a ratio
 *   - ping latency p50/p99 (PINGS pings, 5 ms apart)
 *   - forwarder CPU (user + system, both hosts) per Gbit/s carried
 *
 * Run: npm run build && node dist/bench/udp_bench.js
 * FLANNEL_TS_BENCH_ROUNDS (3), FLANNEL_TS_BENCH_SECONDS (5), FLANNEL_TS_UDP_WORKERS (the default),
 * FLANNEL_TS_UDP_OFFLOAD (1; 0 turns the TUN offloads off).
 */
import { readFile } from "node:fs/promises";
import { setTimeout as delay } from "node:timers/promises";
import {
  killFlanneld,
  labDown,
  labUp,
  listPods,
  livePid,
  restartFlanneld,
} from "../lab/cluster.js";
import type { Lab, LabPod } from "../lab/cluster.js";
import { iperfBetween, ping } from "../lab/lab_check.js";
import { execIn, uniquePrefix } from "../lab/netns.js";
import { waitFor } from "../lab/poll.js";
import { startCProxy } from "../test/helpers/c_udp_proxy.js";
import type { CProxy } from "../test/helpers/c_udp_proxy.js";
import { cpuSeconds, median, percentile, print } from "./bench_util.js";

const ROUNDS = Number(process.env.FLANNEL_TS_BENCH_ROUNDS ?? 3);
const SECONDS = Number(process.env.FLANNEL_TS_BENCH_SECONDS ?? 5);
/** Workers: the backend's default unless set. */
const WORKERS = process.env.FLANNEL_TS_UDP_WORKERS;
const OFFLOAD = process.env.FLANNEL_TS_UDP_OFFLOAD !== "0";
const PINGS = 400;
const quiet = () => undefined;

interface Figures {
  gbit1: number;
  gbit4: number;
  p50: number;
  p99: number;
  /** CPU seconds of the forwarders (both hosts) per Gbit carried, over the 1-stream run. */
  cpuPerGbit: number;
}

async function measure(from: LabPod, to: LabPod, pids: () => Promise<number[]>): Promise<Figures> {
  const ids = await pids();
  const cpuBefore = await Promise.all(ids.map(cpuSeconds));
  const gbit1 = await iperfBetween(from, to, SECONDS, 1);
  const cpuAfter = await Promise.all(ids.map(cpuSeconds));
  const cpu = cpuAfter.reduce((a, b) => a + b, 0) - cpuBefore.reduce((a, b) => a + b, 0);
  const gbit4 = await iperfBetween(from, to, SECONDS, 4);
  const out = await execIn(from.netns, "ping", [
    "-c",
    String(PINGS),
    "-i",
    "0.005",
    "-W",
    "1",
    to.ip,
  ]);
  const rtts = [...out.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
  return {
    gbit1,
    gbit4,
    p50: percentile(rtts, 50),
    p99: percentile(rtts, 99),
    cpuPerGbit: cpu / (gbit1 * SECONDS),
  };
}

function summary(all: readonly Figures[]): Figures {
  return {
    gbit1: median(all.map((f) => f.gbit1)),
    gbit4: median(all.map((f) => f.gbit4)),
    p50: median(all.map((f) => f.p50)),
    p99: median(all.map((f) => f.p99)),
    cpuPerGbit: median(all.map((f) => f.cpuPerGbit)),
  };
}

async function reachable(a: LabPod, b: LabPod): Promise<void> {
  await waitFor(`${a.name} to reach ${b.name}`, async () => (await ping(a, b, 1)).ok, {
    timeoutMs: 30_000,
  });
}

/** The two hosts' subnets and public IPs, read from their subnet.env and lab layout. */
async function hostsOf(lab: Lab): Promise<{ subnet: string; publicIP: string }[]> {
  return Promise.all(
    lab.nodes.map(async (node, i) => {
      const env = await readFile(node.subnetFile, "utf8");
      const net = /FLANNEL_SUBNET=(\d+\.\d+\.\d+)\.1\/24/.exec(env)?.[1];
      if (net === undefined) throw new Error(`no subnet in ${node.subnetFile}`);
      return { subnet: `${net}.0/24`, publicIP: `10.250.0.${11 + i}` };
    }),
  );
}

async function main(): Promise<void> {
  const udpLab = await labUp(
    {
      name: uniquePrefix("bu"),
      nodes: 2,
      pods: 1,
      backend: "udp",
      networkConfig: JSON.stringify({
        Network: "10.244.0.0/16",
        Backend: {
          Type: "udp",
          Offload: OFFLOAD,
          ...(WORKERS === undefined ? {} : { Workers: Number(WORKERS) }),
        },
      }),
    },
    quiet,
  );
  let vxlanLab: Lab | null = null;
  const ours: Figures[] = [];
  const c: Figures[] = [];
  const vxlan: Figures[] = [];
  try {
    const [from, to] = await listPods(udpLab);
    if (from === undefined || to === undefined) throw new Error("the lab has no pods");
    const hosts = await hostsOf(udpLab);
    const flanneldPids = async () =>
      (await Promise.all(udpLab.nodes.map((n) => livePid(n.pidFile)))).filter(
        (p): p is number => p !== null,
      );
    vxlanLab = await labUp(
      { name: uniquePrefix("bv"), nodes: 2, pods: 1, backend: "vxlan" },
      quiet,
    );
    const [vFrom, vTo] = await listPods(vxlanLab);
    if (vFrom === undefined || vTo === undefined) throw new Error("the vxlan lab has no pods");
    for (let round = 1; round <= ROUNDS; round++) {
      // flannel's C loop: flanneld stopped (its flannel0 goes), the C proxy in its place.
      await Promise.all(udpLab.nodes.map((n) => killFlanneld(n, "SIGTERM")));
      await delay(200);
      const proxies: CProxy[] = [];
      try {
        for (const [i, node] of udpLab.nodes.entries()) {
          const self = hosts[i]!;
          const proxy = await startCProxy({
            netns: node.netns,
            bindIP: self.publicIP,
            port: 8285,
            subnet: self.subnet,
            network: "10.244.0.0/16",
            mtu: 1472,
          });
          proxies.push(proxy);
          for (const peer of hosts.filter((h) => h !== self))
            await proxy.addRoute(peer.subnet, peer.publicIP, 8285);
        }
        await reachable(from, to);
        c.push(await measure(from, to, () => Promise.resolve(proxies.map((p) => p.pid))));
      } finally {
        for (const p of proxies) await p.stop();
      }
      // flannel-ts: flanneld back on both hosts.
      for (const node of udpLab.nodes) await restartFlanneld(udpLab, node);
      await reachable(from, to);
      await reachable(to, from);
      ours.push(await measure(from, to, flanneldPids));
      vxlan.push(await measure(vFrom, vTo, () => Promise.resolve([])));
      print(
        `round ${round}: C ${c.at(-1)!.gbit1.toFixed(2)} / ${c.at(-1)!.gbit4.toFixed(2)} Gbit/s, flannel-ts ${ours.at(-1)!.gbit1.toFixed(2)} / ${ours.at(-1)!.gbit4.toFixed(2)}, vxlan ${vxlan.at(-1)!.gbit1.toFixed(2)} / ${vxlan.at(-1)!.gbit4.toFixed(2)}`,
      );
    }
  } finally {
    await labDown(udpLab.name, quiet);
    if (vxlanLab !== null) await labDown(vxlanLab.name, quiet);
  }
  const o = summary(ours);
  const b = summary(c);
  const v = summary(vxlan);
  print(
    `udp backend, ${WORKERS ?? "default"} worker(s), offloads ${OFFLOAD ? "on" : "off"}, medians of ${ROUNDS} rounds, iperf3 ${SECONDS} s:`,
  );
  print(
    `  1 stream:  flannel-ts ${o.gbit1.toFixed(2)} Gbit/s, C loop ${b.gbit1.toFixed(2)} -> ${(o.gbit1 / b.gbit1).toFixed(2)}x; vxlan ${v.gbit1.toFixed(2)} (udp/vxlan ${(o.gbit1 / v.gbit1).toFixed(2)})`,
  );
  print(
    `  4 streams: flannel-ts ${o.gbit4.toFixed(2)} Gbit/s, C loop ${b.gbit4.toFixed(2)} -> ${(o.gbit4 / b.gbit4).toFixed(2)}x; vxlan ${v.gbit4.toFixed(2)} (udp/vxlan ${(o.gbit4 / v.gbit4).toFixed(2)})`,
  );
  print(
    `  ping p50/p99: flannel-ts ${o.p50.toFixed(3)}/${o.p99.toFixed(3)} ms, C loop ${b.p50.toFixed(3)}/${b.p99.toFixed(3)}, vxlan ${v.p50.toFixed(3)}/${v.p99.toFixed(3)}`,
  );
  print(
    `  forwarder CPU per Gbit/s (both hosts, 1 stream): flannel-ts ${o.cpuPerGbit.toFixed(2)} cores, C loop ${b.cpuPerGbit.toFixed(2)} cores`,
  );
}

await main();
