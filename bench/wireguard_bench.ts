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
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { labDown, labUp, listPods } from "../lab/cluster.js";
import type { Lab } from "../lab/cluster.js";
import { iperfBetween } from "../lab/lab_check.js";
import { execIn, ip, run, uniquePrefix } from "../lab/netns.js";
import { buildBareHost } from "../test/helpers/hand_host.js";
import type { BareHost } from "../test/helpers/hand_host.js";
import { startWireguardGo } from "../test/helpers/wireguard_go.js";
import type { TestWireguardGo } from "../test/helpers/wireguard_go.js";
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
async function handPair(lab: Lab): Promise<{ hosts: BareHost[]; devices: TestWireguardGo[] }> {
  const hosts = [await buildBareHost(lab, 97), await buildBareHost(lab, 98)];
  const devices: TestWireguardGo[] = [];
  const keys: { privateKey: string; publicKey: string }[] = [];
  for (const host of hosts) {
    devices.push(await startWireguardGo(host.netns, "flannel-wg"));
    const privateKey = (await run("wg", ["genkey"])).trim();
    keys.push({
      privateKey,
      publicKey: (await run("wg", ["pubkey"], { input: privateKey })).trim(),
    });
  }
  for (const [i, host] of hosts.entries()) {
    const other = hosts[1 - i];
    const device = devices[i];
    const key = keys[i];
    const otherKey = keys[1 - i];
    if (other === undefined || device === undefined || key === undefined || otherKey === undefined)
      throw new Error("two hosts");
    const [wg = "wg", ...before] = device.wgCommand;
    const keyFile = join(device.socketDir, "key"); // a private folder of the test helper's
    await writeFile(keyFile, key.privateKey, { mode: 0o600 });
    await run(wg, [
      ...before,
      ...["set", "flannel-wg", "private-key", keyFile, "listen-port", "51820"],
      ...["peer", otherKey.publicKey, "endpoint", `${other.publicIP}:51820`],
      ...["allowed-ips", `${other.subnet}/24`],
    ]);
    await ip(["addr", "add", `${host.subnet}/32`, "dev", "flannel-wg"], host.netns);
    await ip(["link", "set", "flannel-wg", "mtu", "1420", "up"], host.netns);
    await ip(["route", "add", "10.244.0.0/16", "dev", "flannel-wg", "scope", "link"], host.netns);
  }
  return { hosts, devices };
}

async function main(): Promise<void> {
  const lab = await labUp(
    { name: uniquePrefix("bwg"), nodes: 2, pods: 1, backend: "wireguard" },
    quiet,
  );
  let devices: TestWireguardGo[] = [];
  try {
    const [from, to] = await listPods(lab);
    if (from === undefined || to === undefined) throw new Error("the lab has no pods");
    const pair = await handPair(lab);
    devices = pair.devices;
    const [hostA, hostB] = pair.hosts;
    if (hostA === undefined || hostB === undefined) throw new Error("two hosts");
    const [a, b] = [await addPod(hostA), await addPod(hostB)];
    // flannel writes the same traffic rules (FORWARD accept for the Network, and conntrack with
    // them): the hand-made hosts get the lab host's rules, so that both paths pay for them.
    const labHost = lab.nodes[0];
    if (labHost === undefined) throw new Error("the lab has no host");
    const rules = await execIn(labHost.netns, "iptables-save", []);
    for (const host of pair.hosts)
      await execIn(host.netns, "iptables-restore", [], { input: rules });
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
    for (const d of devices) await d.stop();
    for (const i of [97, 98])
      await ip(["netns", "del", `${lab.name}-h${i}p`]).catch(() => undefined);
    await labDown(lab.name, quiet);
  }
}

await main();
