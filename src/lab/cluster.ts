/**
 * A flannel cluster on one machine, for the lab, tests and benches.
 *
 * Design: every lab has a hub namespace `<name>-hub` holding a bridge (`br0`, 10.250.0.1/24, the
 * hosts' shared L2 segment) and etcd (listening on 10.250.0.1:2379 and the hub's loopback). Each
 * host is a namespace `<name>-h<N>` whose `eth0` is one end of a veth pair; the other end (`h<N>`)
 * sits in the hub on the bridge. Hosts get 10.250.0.<10+N>/24 and a default route via the hub.
 * Link names live inside the lab's namespaces, so two labs never collide, and nothing of a lab is
 * in the root namespace: `down` deletes the namespaces and the state folder and is done.
 *
 * Processes (etcd, flanneld) run detached, with logs and pid files in the state folder
 * (`/run/flannel-ts/lab/<name>` by default), so they outlive the command that started them.
 */
import { spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { mkdir, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { addNetns, deleteNetns, execIn, ip, listNetns } from "./netns.js";

/** The repository root (bin/ lives there), from dist/src/lab. */
export const REPO_ROOT = resolve(import.meta.dirname, "../../..");
const STATE_ROOT = process.env.FLANNEL_TS_LAB_DIR ?? "/run/flannel-ts/lab";
const HUB_ADDRESS = "10.250.0.1";
const ETCD_ENDPOINT = `http://${HUB_ADDRESS}:2379`;

/** What `lab up` builds. */
export interface LabSpec {
  readonly name: string;
  readonly nodes: number;
  readonly backend: string;
  /** Pods per host, wired with bin/flannel. */
  readonly pods?: number;
  /** The flannel network config; a default one for the backend when absent. */
  readonly networkConfig?: string;
  /** Extra flanneld flags, e.g. --ip-masq. */
  readonly flanneldArgs?: readonly string[];
}

/** One host of a lab. */
export interface LabNode {
  readonly name: string;
  readonly netns: string;
  readonly address: string;
  readonly subnetFile: string;
  readonly logFile: string;
  readonly pidFile: string;
}

/** Where a lab keeps its files, and its names. */
export interface Lab {
  readonly name: string;
  readonly dir: string;
  readonly hub: string;
  readonly etcdEndpoint: string;
  readonly nodes: readonly LabNode[];
}

/** Progress lines, for a terminal or a log. */
export type Progress = (step: string) => void;

function validateName(name: string): void {
  if (!/^[a-z][a-z0-9-]{0,19}$/.test(name)) {
    throw new RangeError(
      `Invalid lab name "${name}": expected lower-case letters, digits and dashes, 1 to 20 characters, starting with a letter`,
    );
  }
}

/** The layout of a lab with that name and node count. */
export function describeLab(name: string, nodes: number): Lab {
  validateName(name);
  const dir = join(STATE_ROOT, name);
  return {
    name,
    dir,
    hub: `${name}-hub`,
    etcdEndpoint: ETCD_ENDPOINT,
    nodes: Array.from({ length: nodes }, (_, i) => nodeOf(name, dir, i + 1)),
  };
}

function nodeOf(lab: string, dir: string, index: number): LabNode {
  const name = `h${index}`;
  return {
    name,
    netns: `${lab}-${name}`,
    address: `10.250.0.${10 + index}`,
    subnetFile: join(dir, name, "subnet.env"),
    logFile: join(dir, name, "flanneld.log"),
    pidFile: join(dir, name, "flanneld.pid"),
  };
}

/** Starts a detached process in a namespace, output to `logFile`, pid to `pidFile`. */
async function startDetached(
  netns: string,
  cmd: string,
  args: readonly string[],
  files: { logFile: string; pidFile: string },
): Promise<number> {
  const fd = openSync(files.logFile, "a");
  try {
    const child = spawn("ip", ["netns", "exec", netns, cmd, ...args], {
      detached: true,
      stdio: ["ignore", fd, fd],
    });
    child.unref();
    if (child.pid === undefined) throw new Error(`Cannot start ${cmd} in ${netns}`);
    await writeFile(files.pidFile, `${child.pid}\n`);
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

/** The default network config of a lab. */
export function defaultNetworkConfig(backend: string): string {
  return JSON.stringify({ Network: "10.244.0.0/16", Backend: { Type: backend } });
}

/** Runs etcdctl in the lab's hub. */
export async function labEtcdctl(lab: Lab, args: readonly string[]): Promise<string> {
  return execIn(lab.hub, "etcdctl", ["--endpoints", "http://127.0.0.1:2379", ...args]);
}

async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline)
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(50);
  }
}

/** Builds the hub: namespace, bridge, etcd. */
async function upHub(lab: Lab, progress: Progress): Promise<void> {
  progress(`hub namespace ${lab.hub} with bridge br0 (${HUB_ADDRESS}/24)`);
  await addNetns(lab.hub);
  await ip(["link", "add", "br0", "type", "bridge"], lab.hub);
  await ip(["addr", "add", `${HUB_ADDRESS}/24`, "dev", "br0"], lab.hub);
  await ip(["link", "set", "br0", "up"], lab.hub);
  progress(`etcd on ${ETCD_ENDPOINT}`);
  const etcdDir = join(lab.dir, "etcd");
  await mkdir(etcdDir, { recursive: true });
  await startDetached(
    lab.hub,
    "etcd",
    [
      "--name",
      "hub",
      "--data-dir",
      join(etcdDir, "data"),
      "--listen-client-urls",
      `${ETCD_ENDPOINT},http://127.0.0.1:2379`,
      "--advertise-client-urls",
      ETCD_ENDPOINT,
      "--listen-peer-urls",
      `http://${HUB_ADDRESS}:2380`,
      "--initial-advertise-peer-urls",
      `http://${HUB_ADDRESS}:2380`,
      "--initial-cluster",
      `hub=http://${HUB_ADDRESS}:2380`,
      "--log-level",
      "warn",
      "--logger",
      "zap",
    ],
    { logFile: join(etcdDir, "etcd.log"), pidFile: join(etcdDir, "etcd.pid") },
  );
  await waitFor(
    "etcd to answer",
    () =>
      labEtcdctl(lab, ["endpoint", "health"]).then(
        () => true,
        () => false,
      ),
    20_000,
  );
}

/** Makes one host namespace on the bridge and starts flanneld in it. */
export async function upNode(
  lab: Lab,
  node: LabNode,
  progress: Progress,
  flanneldArgs: readonly string[] = [],
): Promise<void> {
  progress(`host ${node.name}: namespace ${node.netns}, eth0 ${node.address}/24`);
  await mkdir(join(lab.dir, node.name), { recursive: true });
  await addNetns(node.netns);
  await ip(
    ["link", "add", "eth0", "type", "veth", "peer", "name", node.name, "netns", lab.hub],
    node.netns,
  );
  await ip(["link", "set", node.name, "master", "br0", "up"], lab.hub);
  await ip(["addr", "add", `${node.address}/24`, "dev", "eth0"], node.netns);
  await ip(["link", "set", "eth0", "up"], node.netns);
  await ip(["route", "add", "default", "via", HUB_ADDRESS], node.netns);
  await execIn(node.netns, "sysctl", ["-qw", "net.ipv4.ip_forward=1"]);
  await startFlanneld(lab, node, flanneldArgs);
  progress(`host ${node.name}: flanneld started`);
}

/** Starts (or restarts) flanneld on a host. */
export async function startFlanneld(
  lab: Lab,
  node: LabNode,
  extraArgs: readonly string[] = [],
): Promise<number> {
  await writeFile(join(lab.dir, node.name, "flanneld.args"), JSON.stringify(extraArgs));
  return startDetached(
    node.netns,
    join(REPO_ROOT, "bin/flanneld"),
    [
      `--etcd-endpoints=${lab.etcdEndpoint}`,
      "--iface=eth0",
      `--subnet-file=${node.subnetFile}`,
      ...extraArgs,
    ],
    node,
  );
}

/** Restarts flanneld on a host with the flags it was started with. */
export async function restartFlanneld(lab: Lab, node: LabNode): Promise<number> {
  const args = JSON.parse(
    await readFile(join(lab.dir, node.name, "flanneld.args"), "utf8").catch(() => "[]"),
  ) as string[];
  return startFlanneld(lab, node, args);
}

/** Kills a host's flanneld (SIGKILL by default, as a crash); resolves once it is gone. */
export async function killFlanneld(
  node: LabNode,
  signal: NodeJS.Signals = "SIGKILL",
): Promise<void> {
  const pid = Number((await readFile(node.pidFile, "utf8").catch(() => "")).trim());
  if (!(pid > 0)) return;
  try {
    process.kill(pid, signal);
  } catch {
    return;
  }
  for (let i = 0; i < 200; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await delay(25);
  }
}

/** A pod: a namespace wired by bin/flannel on its host. */
export interface LabPod {
  readonly name: string;
  readonly netns: string;
  readonly node: string;
  readonly ip: string;
}

/** The flannel CNI config a lab host uses (flannel's cbr0 conflist entry, with the lab's paths). */
export function podNetConf(
  lab: Lab,
  node: LabNode,
  delegate: Readonly<Record<string, unknown>> = {},
): string {
  return JSON.stringify({
    cniVersion: "0.3.1",
    name: "cbr0",
    type: "flannel",
    subnetFile: node.subnetFile,
    dataDir: join(lab.dir, node.name, "cni"),
    ipam: { dataDir: join(lab.dir, node.name, "ipam") },
    delegate: { hairpinMode: true, isDefaultGateway: true, ...delegate },
  });
}

/** Adds pod number `index` on a host through bin/flannel ADD, run in the host's namespace. */
export async function addPod(
  lab: Lab,
  node: LabNode,
  index: number,
  delegate: Readonly<Record<string, unknown>> = {},
): Promise<LabPod> {
  const name = `${node.name}p${index}`;
  const netns = `${lab.name}-${name}`;
  await addNetns(netns);
  const env = {
    PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
    CNI_COMMAND: "ADD",
    CNI_CONTAINERID: `${lab.name}-${name}`,
    CNI_NETNS: `/var/run/netns/${netns}`,
    CNI_IFNAME: "eth0",
    CNI_PATH: "/usr/lib/cni",
  };
  const out = await execIn(node.netns, join(REPO_ROOT, "bin/flannel"), [], {
    input: podNetConf(lab, node, delegate),
    env,
  });
  const result = JSON.parse(out) as { ips?: { address?: string }[] };
  const ip = result.ips?.[0]?.address?.split("/")[0];
  if (ip === undefined)
    throw new Error(`Cannot add pod ${name}: bin/flannel gave no address: ${out}`);
  const pod: LabPod = { name, netns, node: node.name, ip };
  const file = join(lab.dir, node.name, "pods.json");
  const pods = JSON.parse(await readFile(file, "utf8").catch(() => "[]")) as LabPod[];
  await writeFile(file, JSON.stringify([...pods.filter((p) => p.name !== name), pod]));
  return pod;
}

/** Every pod of the lab, as recorded when they were added. */
export async function listPods(lab: Lab): Promise<LabPod[]> {
  const all: LabPod[] = [];
  for (const node of lab.nodes) {
    all.push(
      ...(JSON.parse(
        await readFile(join(lab.dir, node.name, "pods.json"), "utf8").catch(() => "[]"),
      ) as LabPod[]),
    );
  }
  return all;
}

/** Builds a lab and waits until every host has written subnet.env. */
export async function labUp(spec: LabSpec, progress: Progress): Promise<Lab> {
  const lab = describeLab(spec.name, spec.nodes);
  if ((await labNamespaces(lab.name)).length > 0) {
    throw new Error(
      `Cannot start lab "${lab.name}": it is already up: run "flannelctl lab down --name ${lab.name}" first`,
    );
  }
  await rm(lab.dir, { recursive: true, force: true });
  await mkdir(lab.dir, { recursive: true });
  await writeFile(
    join(lab.dir, "lab.json"),
    `${JSON.stringify({ name: spec.name, nodes: spec.nodes, backend: spec.backend, pods: spec.pods ?? 0 })}\n`,
  );
  try {
    await upHub(lab, progress);
    progress(`network config: ${spec.networkConfig ?? defaultNetworkConfig(spec.backend)}`);
    await labEtcdctl(lab, [
      "put",
      "/coreos.com/network/config",
      spec.networkConfig ?? defaultNetworkConfig(spec.backend),
    ]);
    for (const node of lab.nodes) await upNode(lab, node, progress, spec.flanneldArgs);
    for (const node of lab.nodes) {
      await waitFor(
        `${node.name} to write subnet.env (log: ${node.logFile})`,
        () =>
          readFile(node.subnetFile).then(
            () => true,
            () => false,
          ),
        30_000,
      );
    }
    progress("every host has its lease and subnet.env");
    for (const node of lab.nodes) {
      for (let i = 1; i <= (spec.pods ?? 0); i++) {
        const pod = await addPod(lab, node, i);
        progress(`pod ${pod.name} on ${node.name}: ${pod.ip}`);
      }
    }
    return lab;
  } catch (err) {
    await labDown(lab.name, () => undefined);
    throw err;
  }
}

/** Reads the spec a lab was started with; null when there is none. */
export async function readLab(name: string): Promise<Lab | null> {
  validateName(name);
  try {
    const spec = JSON.parse(await readFile(join(STATE_ROOT, name, "lab.json"), "utf8")) as {
      nodes: number;
    };
    return describeLab(name, spec.nodes);
  } catch {
    return null;
  }
}

async function killPidFiles(dir: string): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(dir, { recursive: true });
  } catch {
    return;
  }
  for (const entry of entries.filter((e) => e.endsWith(".pid"))) {
    const pid = Number((await readFile(join(dir, entry), "utf8").catch(() => "")).trim());
    if (pid > 0) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }
}

/** The namespaces of a lab: its hub and its hosts, and no other lab's. */
export async function labNamespaces(name: string): Promise<string[]> {
  const own = new RegExp(`^${name}-(hub|h\\d+(p\\d+)?)$`);
  return (await listNetns(`${name}-`)).filter((netns) => own.test(netns));
}

/** Removes every namespace, process and file of a lab. Safe to run twice or after a crash. */
export async function labDown(name: string, progress: Progress): Promise<void> {
  validateName(name);
  const dir = join(STATE_ROOT, name);
  await killPidFiles(dir);
  for (const netns of await labNamespaces(name)) {
    progress(`deleting namespace ${netns}`);
    await deleteNetns(netns);
  }
  await rm(dir, { recursive: true, force: true });
  progress(`lab "${name}" is down`);
}
