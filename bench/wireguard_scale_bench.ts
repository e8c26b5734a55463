/**
 * Issue #25 figures, printed (never asserted): n remote wireguard leases in etcd (1,000 and
 * 5,000 unless FLANNEL_TS_BENCH_SCALE says), one lab host starts flanneld with no device:
 *   - the time from flanneld's start until `wg show` lists all n peers (polled every 100 ms);
 *   - the CPU that flanneld and its wireguard-go use afterwards, idle (no lease changes, no
 *     traffic), over IDLE_SECONDS starting IDLE_AFTER_SECONDS after the peers were all there.
 * Baseline, in turn in each round: wireguard-go started by hand in a namespace of its own and the
 * same n peers loaded with `wg setconf` from a file, and that wireguard-go's idle CPU.
 *
 * Run: npm run build && node dist/bench/wireguard_scale_bench.js
 * FLANNEL_TS_BENCH_SCALE (1000,5000), FLANNEL_TS_BENCH_ROUNDS (3),
 * FLANNEL_TS_BENCH_IDLE_SECONDS (20), FLANNEL_TS_BENCH_IDLE_AFTER_SECONDS (10).
 */
import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { killFlanneld, labDown, restartFlanneld, wgOn } from "../lab/cluster.js";
import type { LabNode } from "../lab/cluster.js";
import { addNetns, deleteNetns, run, uniquePrefix } from "../lab/netns.js";
import { startWireguardGo } from "../test/helpers/wireguard_go.js";
import {
  cpuSeconds,
  keyPair,
  median,
  print,
  scaleLab,
  scaleSubnet,
  scaleVtep,
  startHelper,
} from "./bench_util.js";

const COUNTS = (process.env.FLANNEL_TS_BENCH_SCALE ?? "1000,5000").split(",").map(Number);
const ROUNDS = Number(process.env.FLANNEL_TS_BENCH_ROUNDS ?? 3);
const IDLE_SECONDS = Number(process.env.FLANNEL_TS_BENCH_IDLE_SECONDS ?? 20);
const IDLE_AFTER_SECONDS = Number(process.env.FLANNEL_TS_BENCH_IDLE_AFTER_SECONDS ?? 10);
const quiet = () => undefined;

interface ScalePeer {
  readonly publicKey: string;
  readonly subnet: string;
  readonly endpoint: string;
}

const peerOf = (i: number): ScalePeer => ({
  publicKey: keyPair().publicKey,
  subnet: `${scaleSubnet(i)}/24`,
  endpoint: `${scaleVtep(i)}:51820`,
});

/** A wireguard lease's JSON, as a flannel host writes it. */
const wireguardLease = (peer: ScalePeer): string =>
  JSON.stringify({
    PublicIP: peer.endpoint.replace(/:\d+$/, ""),
    PublicIPv6: null,
    BackendType: "wireguard",
    BackendData: { PublicKey: peer.publicKey },
  });

/** The processes a process started (from /proc/<pid>/task/<tid>/children). */
async function childrenOf(pid: number): Promise<number[]> {
  const tasks = await readdir(`/proc/${pid}/task`).catch(() => [] as string[]);
  const lists = await Promise.all(
    tasks.map((t) => readFile(`/proc/${pid}/task/${t}/children`, "utf8").catch(() => "")),
  );
  return lists.flatMap((l) => l.trim().split(/\s+/).filter(Boolean).map(Number));
}

/** CPU seconds the processes use over IDLE_SECONDS, as a fraction of one core. */
async function idleCpu(pids: readonly number[]): Promise<number> {
  const total = async () => (await Promise.all(pids.map(cpuSeconds))).reduce((a, b) => a + b, 0);
  const before = await total();
  await delay(IDLE_SECONDS * 1000);
  return ((await total()) - before) / IDLE_SECONDS;
}

/** Polls `count()` every 100 ms until it reaches `want` (5 minutes at most); the ms it took. */
async function timeUntil(t0: number, want: number, count: () => Promise<number>): Promise<number> {
  while (Date.now() - t0 < 300_000) {
    if ((await count()) >= want) return Date.now() - t0;
    await delay(100);
  }
  throw new Error(`fewer than ${want} peers after 5 minutes`);
}

const peerLines = (out: string) => out.split("\n").filter((l) => l.trim() !== "").length;

/** flanneld from a fresh start: time to all peers, then its and wireguard-go's idle CPU. */
async function ourRound(lab: Parameters<typeof restartFlanneld>[0], node: LabNode, n: number) {
  await killFlanneld(node, "SIGTERM");
  const t0 = Date.now();
  const pid = await restartFlanneld(lab, node);
  const ms = await timeUntil(t0, n, async () =>
    peerLines(await wgOn(node, ["show", "flannel-wg", "peers"]).catch(() => "")),
  );
  await delay(IDLE_AFTER_SECONDS * 1000);
  const children = await childrenOf(pid);
  if (children.length === 0) throw new Error("flanneld has no wireguard-go");
  const [own, theirs] = await Promise.all([idleCpu([pid]), idleCpu(children)]);
  return { ms, cpu: own + theirs, flanneld: own };
}

/** The baseline: wireguard-go started by hand, the same peers loaded with `wg setconf`. */
async function handRound(ns: string, configFile: string, n: number) {
  await addNetns(ns);
  const t0 = Date.now();
  const device = await startWireguardGo(ns, "flannel-wg");
  try {
    const [wg = "wg", ...before] = device.wgCommand;
    await run(wg, [...before, "setconf", "flannel-wg", configFile]);
    const ms = await timeUntil(t0, n, async () =>
      peerLines(await run(wg, [...before, "show", "flannel-wg", "peers"])),
    );
    await delay(IDLE_AFTER_SECONDS * 1000);
    const pids = (await run("pgrep", ["-f", `wireguard-go -f flannel-wg`]).catch(() => ""))
      .split("\n")
      .filter(Boolean)
      .map(Number);
    const netnsPids = new Set(
      (await run("ip", ["netns", "pids", ns])).split("\n").filter(Boolean).map(Number),
    );
    const ours = pids.filter((p) => netnsPids.has(p));
    if (ours.length === 0) throw new Error("cannot find the wireguard-go started by hand");
    return { ms, cpu: await idleCpu(ours) };
  } finally {
    await device.stop();
    await deleteNetns(ns);
  }
}

/** `wg setconf`'s file for the first n peers. */
async function writeConfig(file: string, peers: readonly ScalePeer[]): Promise<void> {
  const lines = ["[Interface]", `PrivateKey = ${keyPair().privateKey}`, "ListenPort = 51820"];
  for (const p of peers)
    lines.push(
      "[Peer]",
      `PublicKey = ${p.publicKey}`,
      `Endpoint = ${p.endpoint}`,
      `AllowedIPs = ${p.subnet}`,
    );
  await writeFile(file, `${lines.join("\n")}\n`, { mode: 0o600 });
}

async function main(): Promise<void> {
  const name = uniquePrefix("bwgs");
  try {
    const lab = await scaleLab(name, "etcd", "wireguard");
    const node = lab.nodes[0];
    if (node === undefined) throw new Error("the lab has no host");
    const helper = startHelper(lab);
    const peers: ScalePeer[] = [];
    for (const n of COUNTS) {
      const added: ScalePeer[] = [];
      for (let i = peers.length; i < n; i++) added.push(peerOf(i));
      peers.push(...added);
      await helper.send({
        op: "bulk",
        items: added.map((p) => ({
          key: `/coreos.com/network/subnets/${p.subnet.replace("/", "-")}`,
          value: wireguardLease(p),
        })),
        ttl: 3600,
      });
      const configFile = join(lab.dir, `wg-${n}.conf`);
      await writeConfig(configFile, peers);
      const ours: { ms: number; cpu: number; flanneld: number }[] = [];
      const hand: { ms: number; cpu: number }[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        ours.push(await ourRound(lab, node, n));
        hand.push(await handRound(`${name}-hand`, configFile, n));
        const [o, h] = [ours.at(-1)!, hand.at(-1)!];
        print(
          `  ${n} peers, round ${round + 1}: flannel-ts ${o.ms} ms, idle ${(o.cpu * 100).toFixed(2)} % of a core (flanneld ${(o.flanneld * 100).toFixed(2)} %); by hand ${h.ms} ms, idle ${(h.cpu * 100).toFixed(2)} %`,
        );
      }
      await rm(configFile, { force: true });
      const [om, hm] = [median(ours.map((r) => r.ms)), median(hand.map((r) => r.ms))];
      const [oc, hc] = [median(ours.map((r) => r.cpu)), median(hand.map((r) => r.cpu))];
      const of = median(ours.map((r) => r.flanneld));
      print(
        `${n} peers, medians of ${ROUNDS} rounds in turn: flanneld start -> all peers in wg show: ${om} ms (goal < 1000 at 5000); baseline wireguard-go + wg setconf by hand: ${hm} ms; ratio ${(om / hm).toFixed(2)}`,
      );
      print(
        `  idle CPU over ${IDLE_SECONDS} s from ${IDLE_AFTER_SECONDS} s after: flanneld + its wireguard-go ${(oc * 100).toFixed(2)} % of a core (goal < 1 %), of which flanneld ${(of * 100).toFixed(2)} %; wireguard-go by hand ${(hc * 100).toFixed(2)} %`,
      );
    }
    helper.child.kill();
  } finally {
    await labDown(name, quiet);
  }
}

await main();
process.exit(0);
