/**
 * Issue #25 figures, printed (never asserted): pod-to-pod TCP throughput (iperf3, SECONDS s, 1
 * and 4 streams) over flannel-ts's wireguard backend, against a wireguard-go pair configured by
 * hand with `wg` on two more hosts of the same lab bridge, each with a pod wired as the CNI bridge
 * plugin wires one (the same path), measured in turn, ROUNDS times; medians.
 * Both run on wireguard-go (this kernel has no WireGuard).
 *
 * Run: npm run build && node dist/bench/wireguard_bench.js
 * FLANNEL_TS_BENCH_ROUNDS (3), FLANNEL_TS_BENCH_SECONDS (5).
 */
import { labDown, labUp, listPods } from "../lab/cluster.js";
import type { Lab } from "../lab/cluster.js";
import { iperfBetween } from "../lab/lab_check.js";
import { execIn, ip, uniquePrefix } from "../lab/netns.js";
import type { BareHost } from "../test/helpers/hand_host.js";
import { buildHandWireguardHost } from "../test/helpers/wireguard_go.js";
import type { HandWireguardHost } from "../test/helpers/wireguard_go.js";
import { median, print } from "./bench_util.js";

const ROUNDS = Number(process.env.FLANNEL_TS_BENCH_ROUNDS ?? 3);
const SECONDS = Number(process.env.FLANNEL_TS_BENCH_SECONDS ?? 5);
const quiet = () => undefined;

/** A pod on a bare host as the CNI bridge plugin wires one: a veth into cni0, .2, via .1. */
async function addPod(host: BareHost): Promise<{ netns: string; ip: string }> {
  const netns = `${host.netns}p`;
  const address = host.subnet.replace(/\.0$/, ".2");
  await ip(["netns", "add", netns]);
  await ip(["link", "set", "lo", "up"], netns);
  await ip(
    ["link", "add", "eth0", "type", "veth", "peer", "name", "vpod", "netns", host.netns],
    netns,
  );
  await ip(["link", "set", "vpod", "master", "cni0", "up"], host.netns);
  await ip(["addr", "add", `${address}/24`, "dev", "eth0"], netns);
  await ip(["link", "set", "eth0", "mtu", "1420", "up"], netns);
  await ip(["route", "add", "default", "via", host.pod.ip], netns);
  return { netns, ip: address };
}

/** Two hosts on the lab's bridge, wireguard-go configured by hand with `wg` as flannel does. */
async function handPair(lab: Lab): Promise<HandWireguardHost[]> {
  const pair = [await buildHandWireguardHost(lab, 97), await buildHandWireguardHost(lab, 98)];
  const [a, b] = pair;
  if (a === undefined || b === undefined) throw new Error("two hosts");
  const peer = (h: HandWireguardHost) => ({ ...h.host, publicKey: h.publicKey });
  await a.addPeers([peer(b)]);
  await b.addPeers([peer(a)]);
  return pair;
}

async function main(): Promise<void> {
  const lab = await labUp(
    { name: uniquePrefix("bwg"), nodes: 2, pods: 1, backend: "wireguard" },
    quiet,
  );
  let pair: HandWireguardHost[] = [];
  try {
    const [from, to] = await listPods(lab);
    if (from === undefined || to === undefined) throw new Error("the lab has no pods");
    pair = await handPair(lab);
    const [hostA, hostB] = pair.map((h) => h.host);
    if (hostA === undefined || hostB === undefined) throw new Error("two hosts");
    const [a, b] = [await addPod(hostA), await addPod(hostB)];
    // flannel writes the same traffic rules (FORWARD accept for the Network, and conntrack with
    // them): the hand-made hosts get the lab host's rules, so that both paths pay for them.
    const labHost = lab.nodes[0];
    if (labHost === undefined) throw new Error("the lab has no host");
    const rules = await execIn(labHost.netns, "iptables-save", []);
    for (const { host } of pair) await execIn(host.netns, "iptables-restore", [], { input: rules });
    const ours: number[][] = [];
    const hand: number[][] = [];
    for (let round = 0; round < ROUNDS; round++) {
      // In turn, the first one changing each round, so that order does not favour either.
      const runOurs = async () => [
        await iperfBetween(from, to, SECONDS, 1),
        await iperfBetween(from, to, SECONDS, 4),
      ];
      const runHand = async () => [
        await iperfBetween(a, b, SECONDS, 1),
        await iperfBetween(a, b, SECONDS, 4),
      ];
      let o: number[];
      let h: number[];
      if (round % 2 === 0) {
        o = await runOurs();
        h = await runHand();
      } else {
        h = await runHand();
        o = await runOurs();
      }
      ours.push(o);
      hand.push(h);
      print(
        `round ${round + 1}: flannel-ts ${o.map((g) => g.toFixed(2)).join(" / ")} Gbit/s, by hand ${h.map((g) => g.toFixed(2)).join(" / ")}`,
      );
    }
    print(`wireguard on wireguard-go, medians of ${ROUNDS} rounds in turn, iperf3 ${SECONDS} s:`);
    for (const [i, label] of ["1 stream: ", "4 streams:"].entries()) {
      const mine = median(ours.map((r) => r[i] ?? 0));
      const theirs = median(hand.map((r) => r[i] ?? 0));
      print(
        `  ${label} flannel-ts ${mine.toFixed(2)} Gbit/s, configured by hand ${theirs.toFixed(2)} -> ratio ${(mine / theirs).toFixed(3)}`,
      );
    }
  } finally {
    for (const h of pair) await h.stop();
    for (const i of [97, 98])
      await ip(["netns", "del", `${lab.name}-h${i}p`]).catch(() => undefined);
    await labDown(lab.name, quiet);
  }
}

await main();
