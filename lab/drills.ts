/**
 * Fault drills on a lab: what real clusters do to flannel (etcd stopped, wiped, a member lost, a
 * host cut off from etcd by a firewall, flanneld killed again and again, a host rebooted), each
 * run while every pod pings a pod on the next host every 0.1 s, so that the cost of the fault
 * is counted in lost pings. `flannelctl lab drill` runs them and the dashboard shows the count
 * live (the drill writes `drill.json` in the lab's folder every second); the tests run them and
 * assert what must hold.
 */
import type { ChildProcess } from "node:child_process";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { waitFor } from "./poll.js";
import {
  killFlanneld,
  labEtcdctl,
  listPods,
  startEtcdMember,
  startFlanneld,
  stopEtcdMember,
  waitForEtcd,
  wipeEtcd,
} from "./cluster.js";
import type { Lab, LabNode, LabPod } from "./cluster.js";
import { flannelctlOn } from "./lab_doctor.js";
import { execIn, ip, spawnIn } from "./netns.js";

/** Pings sent and answered; lost = sent - received. */
export interface PingCount {
  readonly sent: number;
  readonly received: number;
  readonly lost: number;
}

interface Pinger {
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
  output: string;
  /** Highest sequence number seen, and replies counted, from ping's lines as they come. */
  seq: number;
  replies: number;
}

/**
 * Every pod pings one pod of the next host (a ring over the hosts) every 0.1 s until stopped;
 * the counts are read live from ping's lines, and exactly from its summary at the end.
 */
export class PingLoad {
  readonly #pingers: Pinger[];

  private constructor(pingers: Pinger[]) {
    this.#pingers = pingers;
  }

  /** The pairs: each pod, and the pod with its index on the next host. */
  static pairsOf(pods: readonly LabPod[]): [LabPod, LabPod][] {
    const hosts = [...new Set(pods.map((p) => p.node))];
    if (hosts.length < 2) return [];
    return pods.flatMap((pod): [LabPod, LabPod][] => {
      const next = hosts[(hosts.indexOf(pod.node) + 1) % hosts.length];
      const onNext = pods.filter((p) => p.node === next);
      const index = pods.filter((p) => p.node === pod.node).indexOf(pod);
      const to = onNext[index % Math.max(onNext.length, 1)];
      return to === undefined ? [] : [[pod, to]];
    });
  }

  static start(pods: readonly LabPod[]): PingLoad {
    const pingers = PingLoad.pairsOf(pods).map(([from, to]): Pinger => {
      const child = spawnIn(from.netns, "ping", ["-i", "0.1", "-W", "1", to.ip], {
        stdio: ["ignore", "pipe", "ignore"],
      });
      const pinger: Pinger = {
        child,
        exited: new Promise((resolve) => {
          child.once("exit", () => {
            resolve();
          });
        }),
        output: "",
        seq: 0,
        replies: 0,
      };
      child.stdout?.on("data", (chunk: Buffer) => {
        const text = chunk.toString();
        pinger.output += text;
        for (const match of text.matchAll(/icmp_seq=(\d+)/g))
          pinger.seq = Math.max(pinger.seq, Number(match[1]));
        pinger.replies += (text.match(/bytes from/g) ?? []).length;
      });
      return pinger;
    });
    return new PingLoad(pingers);
  }

  /** The counts so far, from the replies seen (a ping in flight counts as sent, not lost). */
  live(): PingCount {
    let sent = 0;
    let received = 0;
    for (const p of this.#pingers) {
      sent += p.seq;
      received += p.replies;
    }
    return { sent, received, lost: Math.max(0, sent - received) };
  }

  /** Stops the pings and returns ping's own totals. */
  async stop(): Promise<PingCount> {
    for (const p of this.#pingers) p.child.kill("SIGINT");
    await Promise.all(this.#pingers.map((p) => p.exited));
    let sent = 0;
    let received = 0;
    for (const p of this.#pingers) {
      const summary = /(\d+) packets transmitted, (\d+) received/.exec(p.output);
      sent += Number(summary?.[1] ?? p.seq);
      received += Number(summary?.[2] ?? p.replies);
    }
    return { sent, received, lost: sent - received };
  }
}

/** The drills `lab drill` offers. */
export const DRILLS = [
  "etcd-outage",
  "etcd-wipe",
  "etcd-failover",
  "partition",
  "kill-flanneld",
  "reboot",
] as const;
export type DrillName = (typeof DRILLS)[number];

/** The drills that act on one host. */
export const HOST_DRILLS: readonly DrillName[] = ["partition", "kill-flanneld", "reboot"];

/** What a drill is told. */
export interface DrillOptions {
  /** The host of a host drill. */
  readonly node?: LabNode;
  /** How long the fault lasts (etcd-outage, partition, etcd-failover per member): 30 s. */
  readonly seconds?: number;
  /** kill-flanneld: how many times. */
  readonly times?: number;
  /** Progress lines. */
  readonly progress?: (step: string) => void;
  /** Called between the fault and its end, while it lasts (to act on the cluster meanwhile). */
  readonly during?: () => Promise<void>;
}

/** What a drill did. */
export interface DrillResult {
  readonly drill: DrillName;
  readonly pings: PingCount;
  readonly ms: number;
}

/** What `drill.json` holds while and after a drill runs (the dashboard reads it). */
export interface DrillState {
  readonly drill: DrillName;
  readonly node: string | null;
  readonly running: boolean;
  readonly step: string;
  readonly pings: PingCount;
  readonly startedAt: number;
  readonly updatedAt: number;
}

export function drillStatePath(lab: Lab): string {
  return join(lab.dir, "drill.json");
}

/** The drill state a lab's folder holds; null when no drill ran. */
export async function readDrillState(lab: Lab): Promise<DrillState | null> {
  try {
    return JSON.parse(await readFile(drillStatePath(lab), "utf8")) as DrillState;
  } catch {
    return null;
  }
}

/** Waits until doctor finds the host healthy: its flanneld runs, is ready and synced. */
export async function waitForHealthy(lab: Lab, node: LabNode): Promise<void> {
  await waitFor(
    `flanneld on ${node.name} to be healthy (flannelctl doctor)`,
    async () => (await flannelctlOn(lab, node, ["doctor", "--json"])).code === 0,
    { timeoutMs: 120_000, intervalMs: 250 },
  );
}

/** Drops packets between a host and etcd's port, both ways (a firewall that drops, not refuses). */
async function partition(node: LabNode, on: boolean): Promise<void> {
  const op = on ? "-I" : "-D";
  await execIn(node.netns, "iptables", [
    op,
    "OUTPUT",
    "-p",
    "tcp",
    "--dport",
    "2379",
    "-j",
    "DROP",
  ]);
  await execIn(node.netns, "iptables", [op, "INPUT", "-p", "tcp", "--sport", "2379", "-j", "DROP"]);
}

const FLANNEL_DEVICES = ["flannel.1", "flannel-v6.1", "flannel0"];

/** A host's flannel state lost as in a reboot: flanneld killed, its devices and subnet.env gone. */
async function reboot(lab: Lab, node: LabNode): Promise<void> {
  await killFlanneld(node);
  for (const device of FLANNEL_DEVICES)
    await ip(["link", "del", device], node.netns).catch(() => undefined);
  await rm(node.subnetFile, { force: true });
  await startFlanneld(lab, node);
}

function requireNode(drill: DrillName, node: LabNode | undefined): LabNode {
  if (node === undefined)
    throw new RangeError(`The drill "${drill}" acts on one host: name it (h1, h2...)`);
  return node;
}

/** What a fault acts on and tells: the lab, its host, how long, and the step it is at. */
interface FaultRun {
  readonly lab: Lab;
  readonly node: LabNode | null;
  readonly seconds: number;
  readonly options: DrillOptions;
  /** Names the step (the dashboard shows it). */
  say(step: string): void;
  /** Holds the fault for `seconds`, running the caller's `during` meanwhile. */
  hold(): Promise<void>;
}

/** The host a host drill acts on. */
const hostOf = (run: FaultRun, drill: DrillName): LabNode =>
  requireNode(drill, run.node ?? undefined);

/** Each drill's fault, and its end. */
const FAULTS: Record<DrillName, (run: FaultRun) => Promise<void>> = {
  async "etcd-outage"(run) {
    const { lab } = run;
    run.say(`etcd stopped for ${run.seconds} s`);
    for (let m = 1; m <= lab.etcdMembers; m++) await stopEtcdMember(lab, m);
    await run.hold();
    run.say("etcd started again");
    for (let m = 1; m <= lab.etcdMembers; m++) await startEtcdMember(lab, m);
    await waitForEtcd(lab);
  },
  async "etcd-wipe"(run) {
    const { lab } = run;
    const config = await labEtcdctl(lab, [
      "get",
      "--print-value-only",
      "/coreos.com/network/config",
    ]);
    run.say("etcd wiped and started empty");
    await wipeEtcd(lab);
    run.say("network config written again");
    await labEtcdctl(lab, ["put", "/coreos.com/network/config", config.trim()]);
    await run.options.during?.();
  },
  async "etcd-failover"(run) {
    const { lab, seconds } = run;
    run.say(`etcd member m1 killed for ${seconds} s`);
    await stopEtcdMember(lab, 1);
    await run.hold();
    run.say(`etcd member m1 back, member m2 killed for ${seconds} s`);
    await startEtcdMember(lab, 1);
    await stopEtcdMember(lab, 2);
    await delay(seconds * 1000);
    run.say("etcd member m2 back");
    await startEtcdMember(lab, 2);
    await waitForEtcd(lab);
  },
  async partition(run) {
    const host = hostOf(run, "partition");
    run.say(`packets between ${host.name} and etcd dropped for ${run.seconds} s`);
    await partition(host, true);
    try {
      await run.hold();
    } finally {
      await partition(host, false);
    }
    run.say(`${host.name} reaches etcd again`);
  },
  async "kill-flanneld"(run) {
    const host = hostOf(run, "kill-flanneld");
    const times = run.options.times ?? 5;
    for (let i = 1; i <= times; i++) {
      run.say(`flanneld on ${host.name} SIGKILLed and restarted (${i} of ${times})`);
      await killFlanneld(host);
      await startFlanneld(run.lab, host);
      await waitForHealthy(run.lab, host);
    }
  },
  async reboot(run) {
    const host = hostOf(run, "reboot");
    run.say(
      `${host.name} rebooted: flanneld killed, its devices and subnet.env gone, flanneld started`,
    );
    await reboot(run.lab, host);
    await waitForHealthy(run.lab, host);
  },
};

/** Refuses a drill the lab cannot run. */
function checkDrillFits(lab: Lab, drill: DrillName): void {
  if (lab.datastore !== "etcd" && drill.startsWith("etcd"))
    throw new RangeError(
      `The drill "${drill}" needs an etcd lab (this one runs in Kubernetes mode)`,
    );
  if (drill === "etcd-failover" && lab.etcdMembers < 3)
    throw new RangeError('The drill "etcd-failover" needs a lab with --etcd-members 3');
}

/** Runs a drill under ping load; writes drill.json as it goes. */
export async function runDrill(
  lab: Lab,
  drill: DrillName,
  options: DrillOptions = {},
): Promise<DrillResult> {
  checkDrillFits(lab, drill);
  const node = HOST_DRILLS.includes(drill) ? requireNode(drill, options.node) : null;
  const seconds = options.seconds ?? 30;
  const startedAt = Date.now();
  const load = PingLoad.start(await listPods(lab));
  let step = "starting";
  const save = async (running: boolean, pings: PingCount) => {
    const state: DrillState = {
      drill,
      node: node?.name ?? null,
      running,
      step,
      pings,
      startedAt,
      updatedAt: Date.now(),
    };
    await writeFile(drillStatePath(lab), JSON.stringify(state));
  };
  const run: FaultRun = {
    lab,
    node,
    seconds,
    options,
    say(line) {
      step = line;
      options.progress?.(line);
      void save(true, load.live());
    },
    async hold() {
      const until = Date.now() + seconds * 1000;
      await options.during?.();
      const left = until - Date.now();
      if (left > 0) await delay(left);
    },
  };
  const ticker = setInterval(() => void save(true, load.live()), 1_000);
  let pings: PingCount = { sent: 0, received: 0, lost: 0 };
  try {
    await delay(1_000); // pings flowing before the fault
    await FAULTS[drill](run);
    if (node !== null) await waitForHealthy(lab, node);
    else for (const n of lab.nodes) await waitForHealthy(lab, n);
    step = "done";
    await delay(1_000); // pings after the repair
  } finally {
    clearInterval(ticker);
    pings = await load.stop();
    await save(false, pings);
  }
  return { drill, pings, ms: Date.now() - startedAt };
}
