/**
 * Issue #25 figure, printed (never asserted): a new lease to its first encrypted packet. A pod on
 * a flannel-ts wireguard host pings (every 10 ms) the gateway of a host whose wireguard-go is
 * configured by hand; that host's lease is written (TRIALS times, deleted in between): the time
 * from the lease's commit in etcd to the first WireGuard handshake initiation the flannel-ts
 * host sends it, in the kernel's capture timestamps (tcpdump -tt on the host's eth0).
 * Baseline, in the same run: etcd's own notification of the same put (an etcdctl watch in the
 * hub, next to etcd), as in the join latency bench.
 *
 * Run: npm run build && node dist/bench/wireguard_join_bench.js   FLANNEL_TS_BENCH_TRIALS (30)
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { setTimeout as delay } from "node:timers/promises";
import { labDown, labUp, listPods, wgOn } from "../lab/cluster.js";
import type { Lab, LabNode } from "../lab/cluster.js";
import { uniquePrefix } from "../lab/netns.js";
import { subnetOf } from "../test/helpers/lab_fixture.js";
import { buildHandWireguardHost } from "../test/helpers/wireguard_go.js";
import { hubWatchArgs, percentile, print, startHelper } from "./bench_util.js";

const TRIALS = Number(process.env.FLANNEL_TS_BENCH_TRIALS ?? 30);
const quiet = () => undefined;

/** Times (ms since the epoch) of lines a command prints, as `parse` reads them. */
function follow(
  argv: readonly string[],
  parse: (line: string) => number | null,
): { times: number[]; child: ChildProcess } {
  const [cmd = "ip", ...args] = argv;
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "ignore"] });
  const times: number[] = [];
  createInterface({ input: child.stdout! }).on("line", (line) => {
    const t = parse(line);
    if (t !== null) times.push(t);
  });
  return { times, child };
}

/** The first time in `times` after `since`, waited for up to 10 s. */
async function firstAfter(times: readonly number[], since: number): Promise<number | null> {
  for (let i = 0; i < 1000; i++) {
    const t = times.find((x) => x >= since);
    if (t !== undefined) return t;
    await delay(10);
  }
  return null;
}

/** Waits until the host's device has (or has not) the peer. */
async function untilPeer(node: LabNode, key: string, present: boolean): Promise<void> {
  for (let i = 0; i < 300; i++) {
    const peers = await wgOn(node, ["show", "flannel-wg", "peers"]).catch(() => "");
    if (peers.includes(key) === present) return;
    await delay(100);
  }
  throw new Error(`the peer ${key} did not ${present ? "appear" : "go"} on ${node.name}`);
}

async function trials(lab: Lab): Promise<{ joins: number[]; base: number[] }> {
  const node = lab.nodes[0];
  const [pod] = await listPods(lab);
  if (node === undefined || pod === undefined) throw new Error("the lab has no pod");
  const hand = await buildHandWireguardHost(lab, 97);
  const helper = startHelper(lab);
  const key = `/coreos.com/network/subnets/${hand.host.subnet}-24`;
  // Handshake initiations (message type 1) from the flannel-ts host to the hand-made one.
  const capture = follow(
    [
      "ip",
      "netns",
      "exec",
      node.netns,
      "tcpdump",
      "-i",
      "eth0",
      "-n",
      "-tt",
      "-l",
      "--immediate-mode",
    ].concat([`udp and dst host ${hand.host.publicIP} and dst port 51820 and udp[8] = 1`]),
    (line) => (/^(\d+\.\d+) /.test(line) ? Math.round(Number(line.split(" ")[0]) * 1000) : null),
  );
  const watch = follow(hubWatchArgs(lab, key), (line) => (line === "PUT" ? Date.now() : null));
  const pinger = spawn(
    "ip",
    ["netns", "exec", pod.netns, "ping", "-q", "-i", "0.01", hand.host.pod.ip],
    {
      stdio: "ignore",
    },
  );
  try {
    await hand.addPeers([
      { publicIP: node.address, subnet: await subnetOf(node), publicKey: await publicKeyOn(node) },
    ]);
    // The ping runs while there is no lease: nothing may go to the hand-made host yet (else the
    // capture would count packets that no lease caused).
    await delay(2000);
    if (capture.times.length > 0)
      throw new Error("handshakes went to the hand-made host before its lease was written");
    const joins: number[] = [];
    const base: number[] = [];
    for (let i = 0; i < TRIALS; i++) {
      const { t } = await helper.send({ op: "put", key, value: hand.leaseJSON });
      const sent = await firstAfter(capture.times, t);
      const notified = await firstAfter(watch.times, t);
      if (sent !== null) joins.push(sent - t);
      if (notified !== null) base.push(notified - t);
      await untilPeer(node, hand.publicKey, true);
      await helper.send({ op: "del", key });
      await untilPeer(node, hand.publicKey, false);
    }
    return { joins, base };
  } finally {
    for (const child of [pinger, capture.child, watch.child, helper.child]) child.kill();
    await hand.stop();
  }
}

/** The host's public key, as its device holds it. */
async function publicKeyOn(node: LabNode): Promise<string> {
  return (await wgOn(node, ["show", "flannel-wg", "public-key"])).trim();
}

async function main(): Promise<void> {
  const name = uniquePrefix("bwgj");
  try {
    const lab = await labUp({ name, nodes: 1, pods: 1, backend: "wireguard" }, quiet);
    const { joins, base } = await trials(lab);
    print(
      `a new lease to its first encrypted packet (WireGuard handshake initiation on the wire), ${joins.length} of ${TRIALS} trials: p50 ${percentile(joins, 50).toFixed(1)} ms, p99 ${percentile(joins, 99).toFixed(1)} ms`,
    );
    print(
      `  baseline: etcdctl watch in the hub sees the same put: p50 ${percentile(base, 50).toFixed(1)} ms, p99 ${percentile(base, 99).toFixed(1)} ms`,
    );
  } finally {
    await labDown(name, quiet);
  }
}

await main();
process.exit(0);
