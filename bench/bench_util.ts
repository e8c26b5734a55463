/**
 * What the benches share: printing, percentiles, a process's CPU time, watching routes appear,
 * counting entries.
 */
import { spawn } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import type { ChildProcess } from "node:child_process";
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as delay } from "node:timers/promises";
import { REPO_ROOT, labUp } from "../lab/cluster.js";
import type { Lab } from "../lab/cluster.js";
import { execIn, ip, run } from "../lab/netns.js";
import { waitFor } from "../lab/poll.js";
import type { FlanneldProcess } from "../test/helpers/single_host.js";

/**
 * Lays out the installed flannel-ts (the .deb's and the image's layout: scripts/build_helpers.mjs's
 * layOutInstalled) under `root`, with a launcher at each path `launchers` names (path under root
 * -> the command it starts).
 */
export async function layOutInstalled(
  root: string,
  launchers: Readonly<Record<string, "flanneld" | "flannelctl" | "flannel">>,
): Promise<void> {
  const helpers = JSON.stringify(join(REPO_ROOT, "scripts/build_helpers.mjs"));
  await run(process.execPath, [
    "--input-type=module",
    "-e",
    `const { layOutInstalled } = await import(${helpers}); await layOutInstalled(${JSON.stringify(root)}, ${JSON.stringify(launchers)});`,
  ]);
}

/**
 * Waits until flanneld has written `subnetFile`, polled every 2 ms (the figure is the time until
 * the file appears); throws with its output when it exits first.
 */
export async function waitForSubnetFile(
  daemon: FlanneldProcess,
  subnetFile: string,
): Promise<void> {
  const written = () =>
    stat(subnetFile).then(
      () => true,
      () => false,
    );
  await waitFor("subnet.env", async () => daemon.child.exitCode !== null || (await written()), {
    timeoutMs: 60_000,
    intervalMs: 2,
  });
  if (daemon.child.exitCode !== null) throw new Error(`flanneld exited: ${daemon.output()}`);
}

/** Prints one figure line. */
export const print = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

/** The p-th percentile (nearest rank). */
export function percentile(values: readonly number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? Number.NaN;
}

/** The median (nearest rank). */
export const median = (values: readonly number[]): number => percentile(values, 50);

let clockTicks: number | null = null;

/** User + system CPU seconds a process has used so far (/proc/<pid>/stat). */
export async function cpuSeconds(pid: number): Promise<number> {
  clockTicks ??= Number((await run("getconf", ["CLK_TCK"])).trim()) || 100;
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  // After "(comm) ", utime and stime are the 12th and 13th fields (14 and 15 of the line).
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / clockTicks;
}

/**
 * Follows `ip -ts monitor route` in a namespace: the kernel's own time at which each /24 route
 * via a gateway appeared. `stop()` ends the monitor.
 */
export function monitorRoutes(netns: string): { seen: Map<string, number>; stop(): void } {
  const monitor = spawn("ip", ["netns", "exec", netns, "ip", "-ts", "monitor", "route"], {
    stdio: ["ignore", "pipe", "ignore"],
  });
  const seen = new Map<string, number>();
  createInterface({ input: monitor.stdout }).on("line", (line) => {
    const m = /^\[([^\]]+)\]\s*(\d+\.\d+\.\d+\.\d+\/24) via/.exec(line);
    if (m?.[1] !== undefined && m[2] !== undefined)
      seen.set(m[2], Date.parse(m[1].replace(/(\.\d{3})\d*/, "$1")));
  });
  return {
    seen,
    stop: () => {
      monitor.kill();
    },
  };
}

/** Routes, neighbours and FDB entries (with a dst) on a host's flannel.1; 0 before it exists. */
export async function countEntries(netns: string): Promise<number> {
  const exists = await ip(["link", "show", "flannel.1"], netns).then(
    () => true,
    () => false,
  );
  if (!exists) return 0;
  const [routes, neighs, fdb] = await Promise.all([
    ip(["route", "show", "dev", "flannel.1"], netns),
    ip(["neigh", "show", "dev", "flannel.1"], netns),
    execIn(netns, "bridge", ["fdb", "show", "dev", "flannel.1"]),
  ]);
  const lines = (s: string) => s.split("\n").filter((l) => l.trim() !== "").length;
  return lines(routes) + lines(neighs) + fdb.split("\n").filter((l) => l.includes(" dst ")).length;
}

/**
 * Polls a host until its flannel.1 holds `want` entries (or 5 minutes pass), reading the
 * flanneld process's peak memory (VmHWM) as it goes and once more a second after.
 */
export async function waitForEntries(
  netns: string,
  want: number,
  pid: number,
  since: number,
): Promise<{ entries: number; ms: number; peakMiB: number }> {
  let entries = 0;
  let peakKiB = 0;
  const readPeak = async () => {
    const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
    peakKiB = Math.max(peakKiB, Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0));
  };
  while (Date.now() - since < 300_000) {
    entries = await countEntries(netns);
    await readPeak();
    if (entries >= want) break;
    await delay(100);
  }
  const ms = Date.now() - since;
  await delay(1000);
  await readPeak();
  return { entries, ms, peakMiB: peakKiB / 1024 };
}

/** A made-up VTEP MAC for remote host number i. */
export const macOf = (i: number): string =>
  `0e:00:00:${((i >> 16) & 255).toString(16).padStart(2, "0")}:${((i >> 8) & 255).toString(16).padStart(2, "0")}:${(i & 255).toString(16).padStart(2, "0")}`;

/** The scale benches' remote host number i: its subnet (10.100.0.0/24 on) and public IP. */
export const scaleSubnet = (i: number): string => `10.${100 + Math.floor(i / 250)}.${i % 250}.0`;
export const scaleVtep = (i: number): string => `10.251.${Math.floor(i / 250)}.${(i % 250) + 1}`;

/** The scale benches' lab: one host (vxlan unless told) in a /8 network, no pods. */
export function scaleLab(
  name: string,
  datastore: "etcd" | "kube",
  backend = "vxlan",
): Promise<Lab> {
  return labUp(
    {
      name,
      nodes: 1,
      pods: 0,
      backend,
      datastore,
      networkConfig: `{"Network":"10.0.0.0/8","Backend":{"Type":"${backend}"}}`,
    },
    () => undefined,
  );
}

/** The etcd helper (etcd_helper.ts) in a lab's hub, and a way to send it commands. */
export function startHelper(lab: Lab): {
  send(cmd: unknown): Promise<{ t: number; n?: number }>;
  child: ChildProcess;
} {
  const child = spawn(
    "ip",
    ["netns", "exec", lab.hub, process.execPath, join(REPO_ROOT, "dist/bench/etcd_helper.js")],
    { stdio: ["pipe", "pipe", "inherit"] },
  );
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  return {
    child,
    async send(cmd) {
      child.stdin.write(`${JSON.stringify(cmd)}\n`);
      const next = await lines.next();
      return JSON.parse(next.value as string) as { t: number; n?: number };
    },
  };
}

/** `etcdctl watch` of a key (or, with `prefix`, the keys under it) in a lab's hub, next to etcd. */
export const hubWatchArgs = (lab: Lab, key: string, prefix = false): string[] => [
  ...["ip", "netns", "exec", lab.hub, "etcdctl", "--endpoints", "http://127.0.0.1:2379"],
  ...["watch", ...(prefix ? ["--prefix"] : []), key],
];

/** A WireGuard key pair, base64 as `wg` prints it. */
export function keyPair(): { privateKey: string; publicKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync("x25519");
  const raw = (der: Buffer) => der.subarray(der.length - 32).toString("base64");
  return {
    privateKey: raw(privateKey.export({ format: "der", type: "pkcs8" })),
    publicKey: raw(publicKey.export({ format: "der", type: "spki" })),
  };
}

/** A vxlan lease's JSON, as a flannel host writes it. */
export const vxlanLease = (publicIP: string, mac: string) =>
  JSON.stringify({
    PublicIP: publicIP,
    PublicIPv6: null,
    BackendType: "vxlan",
    BackendData: { VNI: 1, VtepMAC: mac },
  });
