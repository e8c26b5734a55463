/**
 * Issue #4 figures, printed (never asserted):
 * 1. Pod-to-pod TCP throughput (iperf3, 10 s) on vxlan and host-gw, each as a ratio to the same
 *    path built by hand with `ip` commands in the same run (two more hosts on the same bridge).
 * 2. Join latency: from a new host's lease committed in etcd to its route on another host
 *    (seen by `ip monitor`), p50 and p99 over 50 joins; baseline: etcd's own watch latency.
 * 3. Scale: 5,000 remote vxlan leases in etcd, one host starts: time until all 15,000 kernel
 *    entries are in place, and flanneld's peak memory; baseline: `ip -batch` writing the same
 *    15,000 entries into a fresh namespace. Then flanneld's CPU while idle with those peers,
 *    over IDLE_SECONDS, as a share of one core.
 * 4. Drift repair: a neighbour entry deleted by hand, to the same entry back (both seen by
 *    `ip -ts monitor neigh`), p50 and p99 over 100 deletions.
 *
 * 5. (Issue #13) IPv6 throughput on dual-stack vxlan against the IPv6 path built by hand.
 *
 * Run: npm run build && node dist/bench/dataplane_bench.js [throughput|throughput6|join|scale|drift]...
 */
import { spawn } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as delay } from "node:timers/promises";
import { buildHandHost } from "../test/helpers/hand_host.js";
import {
  LAB_IPV6_NETWORK,
  killFlanneld,
  labDown,
  labUp,
  listPods,
  restartFlanneld,
} from "../lab/cluster.js";
import type { Lab } from "../lab/cluster.js";
import { addNetns, deleteNetns, execIn, ip, run, uniquePrefix } from "../lab/netns.js";
import { iperfBetween } from "../lab/lab_check.js";
import {
  countEntries,
  cpuSeconds,
  median,
  macOf,
  monitorRoutes,
  percentile,
  print,
  scaleLab,
  scaleSubnet,
  scaleVtep,
  startHelper,
  hubWatchArgs,
  vxlanLease,
} from "./bench_util.js";

const quiet = () => undefined;

/** Two more hosts on the lab bridge, wired by hand the way the backend would wire them. */
async function handBuiltPair(
  lab: Lab,
  backend: "vxlan" | "host-gw",
): Promise<{ client: string; server: string; serverIP: string; cleanup: () => Promise<void> }> {
  const hosts = [
    {
      ns: `${lab.name}-h81`,
      addr: "10.250.0.81",
      subnet: "10.245.81",
      mac: "0e:00:00:00:00:81",
      port: "h81",
    },
    {
      ns: `${lab.name}-h82`,
      addr: "10.250.0.82",
      subnet: "10.245.82",
      mac: "0e:00:00:00:00:82",
      port: "h82",
    },
  ];
  for (const h of hosts) {
    await addNetns(h.ns);
    await ip(
      ["link", "add", "eth0", "type", "veth", "peer", "name", h.port, "netns", lab.hub],
      h.ns,
    );
    await ip(["link", "set", h.port, "master", "br0", "up"], lab.hub);
    await ip(["addr", "add", `${h.addr}/24`, "dev", "eth0"], h.ns);
    await ip(["link", "set", "eth0", "up"], h.ns);
    await execIn(h.ns, "sysctl", ["-qw", "net.ipv4.ip_forward=1"]);
    // The pod: a namespace on a bridge, as the bridge plugin makes it.
    const pod = `${h.ns}p`;
    await addNetns(pod);
    await ip(["link", "add", "cni0", "type", "bridge"], h.ns);
    await ip(["addr", "add", `${h.subnet}.1/24`, "dev", "cni0"], h.ns);
    await ip(["link", "set", "cni0", "up"], h.ns);
    await ip(["link", "add", "veth0", "type", "veth", "peer", "name", "eth0", "netns", pod], h.ns);
    await ip(["link", "set", "veth0", "master", "cni0", "up"], h.ns);
    await ip(["addr", "add", `${h.subnet}.2/24`, "dev", "eth0"], pod);
    await ip(["link", "set", "eth0", "up"], pod);
    await ip(["route", "add", "default", "via", `${h.subnet}.1`], pod);
    if (backend === "vxlan") {
      await ip(
        [
          "link",
          "add",
          "flannel.1",
          "address",
          h.mac,
          "type",
          "vxlan",
          "id",
          "1",
          "local",
          h.addr,
          "dev",
          "eth0",
          "dstport",
          "8472",
          "nolearning",
        ],
        h.ns,
      );
      await ip(["link", "set", "flannel.1", "mtu", "1450", "up"], h.ns);
      await ip(["addr", "add", `${h.subnet}.0/32`, "dev", "flannel.1"], h.ns);
      await ip(["link", "set", "cni0", "mtu", "1450"], h.ns);
      await ip(["link", "set", "veth0", "mtu", "1450"], h.ns);
      await ip(["link", "set", "eth0", "mtu", "1450"], pod);
    }
  }
  for (const [a, b] of [
    [hosts[0]!, hosts[1]!],
    [hosts[1]!, hosts[0]!],
  ] as const) {
    if (backend === "vxlan") {
      await ip(
        [
          "neigh",
          "replace",
          `${b.subnet}.0`,
          "lladdr",
          b.mac,
          "dev",
          "flannel.1",
          "nud",
          "permanent",
        ],
        a.ns,
      );
      await execIn(a.ns, "bridge", [
        "fdb",
        "replace",
        b.mac,
        "dev",
        "flannel.1",
        "dst",
        b.addr,
        "self",
        "permanent",
      ]);
      await ip(
        [
          "route",
          "replace",
          `${b.subnet}.0/24`,
          "via",
          `${b.subnet}.0`,
          "dev",
          "flannel.1",
          "onlink",
        ],
        a.ns,
      );
    } else {
      await ip(["route", "replace", `${b.subnet}.0/24`, "via", b.addr, "dev", "eth0"], a.ns);
    }
  }
  return {
    client: `${hosts[0]!.ns}p`,
    server: `${hosts[1]!.ns}p`,
    serverIP: `${hosts[1]!.subnet}.2`,
    cleanup: async () => {
      for (const h of hosts) {
        await deleteNetns(`${h.ns}p`);
        await deleteNetns(h.ns);
      }
    },
  };
}

async function throughput(): Promise<void> {
  for (const backend of ["vxlan", "host-gw"] as const) {
    const name = uniquePrefix("ftbt");
    try {
      const lab = await labUp({ name, nodes: 2, pods: 1, backend }, quiet);
      const [p1, p2] = await listPods(lab);
      const hand = await handBuiltPair(lab, backend);
      // Same firewall state on both paths: the lab hosts' rules (bridge plugin, flanneld) are
      // copied onto the hand-built hosts, so that both pay for conntrack and the FORWARD rules.
      for (const [from, to] of [
        [lab.nodes[0]!.netns, `${lab.name}-h81`],
        [lab.nodes[1]!.netns, `${lab.name}-h82`],
      ] as const) {
        await run("ip", ["netns", "exec", to, "iptables-restore"], {
          input: await execIn(from, "iptables-save", []),
        });
      }
      // Interleaved, best of two each, so that both see the same machine.
      const flannel: number[] = [];
      const byHand: number[] = [];
      for (let round = 0; round < 2; round++) {
        flannel.push(await iperfBetween(p1!, p2!, 10));
        byHand.push(
          await iperfBetween({ netns: hand.client }, { netns: hand.server, ip: hand.serverIP }, 10),
        );
      }
      await hand.cleanup();
      const f = Math.max(...flannel);
      const h = Math.max(...byHand);
      print(
        `throughput ${backend} (iperf3 10 s, best of 2): flannel-ts ${f.toFixed(2)} Gbit/s [${flannel.map((x) => x.toFixed(2)).join(", ")}], hand-built ${h.toFixed(2)} Gbit/s [${byHand.map((x) => x.toFixed(2)).join(", ")}], ratio ${(f / h).toFixed(3)}`,
      );
    } finally {
      await labDown(name, quiet);
    }
  }
}

/** A pod namespace on a hand-built host's cni0, with an IPv6 address and its default route. */
async function handPod6(host: string, subnet6: string): Promise<{ netns: string; ip: string }> {
  const netns = `${host}p1`; // a name labDown takes down with the lab
  await addNetns(netns);
  await ip(["link", "add", "veth0", "type", "veth", "peer", "name", "eth0", "netns", netns], host);
  await ip(["link", "set", "veth0", "master", "cni0", "mtu", "1430", "up"], host);
  await ip(["link", "set", "cni0", "mtu", "1430"], host);
  await ip(["addr", "add", `${subnet6}2/64`, "dev", "eth0", "nodad"], netns);
  await ip(["link", "set", "eth0", "mtu", "1430", "up"], netns);
  await ip(["-6", "route", "add", "default", "via", `${subnet6}1`], netns);
  return { netns, ip: `${subnet6}2` };
}

/**
 * Issue #13: IPv6 pod-to-pod throughput on dual-stack vxlan, against the same IPv6 path built by
 * hand as flannel (Go) builds it (flannel-v6.1, neighbour, FDB, onlink route) on two more hosts;
 * ROUNDS rounds in turn, medians.
 */
async function throughput6(): Promise<void> {
  const name = uniquePrefix("ftb6");
  const rounds = Number(process.env.FLANNEL_TS_BENCH_ROUNDS ?? "3");
  try {
    const lab = await labUp(
      {
        name,
        nodes: 2,
        pods: 1,
        backend: "vxlan",
        networkConfig: JSON.stringify({
          Network: "10.244.0.0/16",
          EnableIPv6: true,
          IPv6Network: LAB_IPV6_NETWORK,
          Backend: { Type: "vxlan" },
        }),
      },
      quiet,
    );
    const [p1, p2] = await listPods(lab);
    if (p1?.ip6 === undefined || p2?.ip6 === undefined) throw new Error("pods have no IPv6");
    const hosts = [
      await buildHandHost(lab, 0x51, "0e:00:00:00:00:51", "0e:00:00:00:06:51"),
      await buildHandHost(lab, 0x52, "0e:00:00:00:00:52", "0e:00:00:00:06:52"),
    ] as const;
    const [a, b] = hosts;
    await a.addPeer6({ subnet: b.v6!.subnet, mac: b.v6!.mac, publicIP: b.v6!.publicIP });
    await b.addPeer6({ subnet: a.v6!.subnet, mac: a.v6!.mac, publicIP: a.v6!.publicIP });
    const client = await handPod6(a.netns, a.v6!.subnet);
    const server = await handPod6(b.netns, b.v6!.subnet);
    // Same firewall state on both paths, as in the IPv4 figure.
    for (const [from, to] of [
      [lab.nodes[0]!.netns, a.netns],
      [lab.nodes[1]!.netns, b.netns],
    ] as const) {
      for (const tool of ["iptables", "ip6tables"]) {
        await run("ip", ["netns", "exec", to, `${tool}-restore`], {
          input: await execIn(from, `${tool}-save`, []),
        });
      }
    }
    const ours: number[] = [];
    const byHand: number[] = [];
    for (let round = 0; round < rounds; round++) {
      ours.push(await iperfBetween(p1, { netns: p2.netns, ip: p2.ip6 }, 10));
      byHand.push(await iperfBetween(client, server, 10));
    }
    const f = median(ours);
    const h = median(byHand);
    print(
      `throughput IPv6 vxlan (iperf3 10 s, median of ${rounds} in turn): flannel-ts ${f.toFixed(2)} Gbit/s [${ours.map((x) => x.toFixed(2)).join(", ")}], hand-built ${h.toFixed(2)} Gbit/s [${byHand.map((x) => x.toFixed(2)).join(", ")}], ratio ${(f / h).toFixed(3)}`,
    );
  } finally {
    await labDown(name, quiet);
  }
}

async function joinLatency(): Promise<void> {
  const name = uniquePrefix("ftbj");
  try {
    const lab = await labUp({ name, nodes: 1, pods: 0, backend: "vxlan" }, quiet);
    const helper = startHelper(lab);
    const monitor = monitorRoutes(lab.nodes[0]!.netns);
    const seen = monitor.seen;
    // etcd's own notification latency, as the baseline: a watch in the hub.
    const [watchCmd = "ip", ...watchArgs] = hubWatchArgs(lab, "/coreos.com/network/subnets/", true);
    const watch = spawn(watchCmd, watchArgs, { stdio: ["ignore", "pipe", "ignore"] });
    const watched = new Map<string, number>();
    createInterface({ input: watch.stdout }).on("line", (line) => {
      const m = /subnets\/(\d+\.\d+\.\d+\.\d+)-24$/.exec(line);
      if (m) watched.set(`${m[1]!}/24`, Date.now());
    });
    await delay(500);
    const joins: number[] = [];
    const base: number[] = [];
    for (let i = 0; i < 50; i++) {
      const subnet = `10.244.${200 + (i % 50)}.0/24`;
      const { t } = await helper.send({
        op: "put",
        key: `/coreos.com/network/subnets/10.244.${200 + i}.0-24`,
        value: vxlanLease(`10.250.0.${100 + i}`, macOf(i + 1)),
      });
      for (let w = 0; w < 500 && !seen.has(subnet); w++) await delay(2);
      const at = seen.get(subnet);
      if (at !== undefined) joins.push(at - t);
      const wt = watched.get(subnet);
      if (wt !== undefined) base.push(wt - t);
      await delay(20);
    }
    print(
      `join latency (lease committed -> route on another host, ${joins.length} joins): p50 ${percentile(joins, 50).toFixed(1)} ms, p99 ${percentile(joins, 99).toFixed(1)} ms`,
    );
    print(
      `  baseline: etcdctl watch in the hub sees the same put: p50 ${percentile(base, 50).toFixed(1)} ms, p99 ${percentile(base, 99).toFixed(1)} ms`,
    );
    monitor.stop();
    watch.kill();
    helper.child.kill();
  } finally {
    await labDown(name, quiet);
  }
}

/** Lease counts of the scale bench, and rounds per count (medians are printed). */
const SCALE_COUNTS = (process.env.FLANNEL_TS_BENCH_SCALE ?? "1000,5000,10000")
  .split(",")
  .map(Number);
const SCALE_ROUNDS = Number(process.env.FLANNEL_TS_BENCH_ROUNDS ?? "3");

/**
 * Writes the ip -batch and bridge -batch files for the first n bench leases, as the vxlan
 * backend programs them: neighbour, FDB entry, route.
 */
async function writeBatchFiles(
  dir: string,
  n: number,
): Promise<{ ipFile: string; fdbFile: string }> {
  const neigh: string[] = [];
  const fdb: string[] = [];
  const routes: string[] = [];
  for (let i = 0; i < n; i++) {
    const subnet = scaleSubnet(i);
    const mac = macOf(i + 1);
    neigh.push(`neigh replace ${subnet} lladdr ${mac} dev flannel.1 nud permanent`);
    fdb.push(`fdb replace ${mac} dev flannel.1 dst ${scaleVtep(i)} self permanent`);
    routes.push(`route replace ${subnet}/24 via ${subnet} dev flannel.1 onlink`);
  }
  const ipFile = join(dir, `ip-${n}.batch`);
  const fdbFile = join(dir, `bridge-${n}.batch`);
  await writeFile(ipFile, [...neigh, ...routes].join("\n") + "\n");
  await writeFile(fdbFile, fdb.join("\n") + "\n");
  return { ipFile, fdbFile };
}

/** The baseline: ip -batch + bridge -batch load the same entries into a fresh namespace. */
async function batchLoad(ns: string, files: { ipFile: string; fdbFile: string }): Promise<number> {
  await addNetns(ns);
  try {
    await ip(["link", "set", "lo", "up"], ns);
    await ip(["link", "add", "eth0", "type", "veth", "peer", "name", "eth1"], ns);
    await ip(["addr", "add", "10.250.0.50/24", "dev", "eth0"], ns);
    await ip(["link", "set", "eth0", "up"], ns);
    await ip(
      ["link", "add", "flannel.1", "type", "vxlan", "id", "1", "local", "10.250.0.50"].concat([
        "dev",
        "eth0",
        "dstport",
        "8472",
        "nolearning",
      ]),
      ns,
    );
    await ip(["link", "set", "flannel.1", "up"], ns);
    const t0 = performance.now();
    await run("ip", ["-n", ns, "-batch", files.ipFile]);
    await run("bridge", ["-n", ns, "-batch", files.fdbFile]);
    return performance.now() - t0;
  } finally {
    await deleteNetns(ns);
  }
}

/**
 * Scale: n remote vxlan leases in etcd, one host starts flanneld with no flannel.1: the time
 * until all 3n entries are in place (the last route seen by `ip -ts monitor route`; flanneld
 * writes routes after the neighbours and FDB entries they need), checked by counting. Each
 * round restarts flanneld on an empty device and then runs the batch-load baseline, in turn.
 */
async function scale(): Promise<void> {
  const name = uniquePrefix("ftbs");
  try {
    const lab = await scaleLab(name, "etcd");
    const h1 = lab.nodes[0]!;
    const helper = startHelper(lab);
    let stored = 0;
    for (const n of SCALE_COUNTS) {
      const items = [];
      for (let i = stored; i < n; i++)
        items.push({
          key: `/coreos.com/network/subnets/${scaleSubnet(i)}-24`,
          value: vxlanLease(scaleVtep(i), macOf(i + 1)),
        });
      await helper.send({ op: "bulk", items, ttl: 3600 });
      stored = n;
      const files = await writeBatchFiles(lab.dir, n);
      const converge: number[] = [];
      const baseline: number[] = [];
      const firstLog: number[] = [];
      const subnetFile: number[] = [];
      const leasesListed: number[] = [];
      let peak = 0;
      let pid = 0;
      for (let round = 0; round < SCALE_ROUNDS; round++) {
        await killFlanneld(h1, "SIGTERM");
        await ip(["link", "del", "flannel.1"], h1.netns).catch(() => undefined);
        const monitor = spawn("ip", ["netns", "exec", h1.netns, "ip", "-ts", "monitor", "route"], {
          stdio: ["ignore", "pipe", "ignore"],
        });
        let routes = 0;
        let lastRouteAt = 0;
        createInterface({ input: monitor.stdout }).on("line", (line) => {
          const m = /^\[([^\]]+)\]\s*\d+\.\d+\.\d+\.\d+\/24 via .* dev flannel\.1/.exec(line);
          if (m?.[1] === undefined) return;
          routes++;
          lastRouteAt = Date.parse(m[1].replace(/(\.\d{3})\d*/, "$1"));
        });
        await delay(300);
        const t0 = Date.now();
        pid = await restartFlanneld(lab, h1);
        // Polled slowly, so as not to take the CPU flanneld is measured on.
        let entries = 0;
        for (let waited = 0; waited < 120; waited++) {
          await delay(500);
          entries = await countEntries(h1.netns);
          if (entries >= 3 * n) break;
        }
        monitor.kill();
        if (entries < 3 * n) {
          print(`  round ${round + 1}: only ${entries} of ${3 * n} entries; log tail:`);
          print((await readFile(h1.logFile, "utf8")).slice(-2000));
          continue;
        }
        if (routes < n) {
          print(
            `  round ${round + 1}: ip monitor saw ${routes} of ${n} routes (it overran); skipped`,
          );
          continue;
        }
        converge.push(lastRouteAt - t0);
        const phases = await startPhases(h1.logFile, pid, t0);
        if (phases !== null) {
          firstLog.push(phases.firstLog);
          subnetFile.push(phases.subnetFile);
          leasesListed.push(phases.leasesListed);
        }
        peak = Math.max(peak, await peakMiB(pid));
        baseline.push(await batchLoad(`${name}-hb`, files));
      }
      const flanneld = median(converge);
      const batch = median(baseline);
      print(
        `scale ${n} leases (${3 * n} entries), median of ${converge.length}: flanneld start -> all in place ${(flanneld / 1000).toFixed(2)} s (rounds: ${converge.map((v) => (v / 1000).toFixed(2)).join(", ")}); ip -batch + bridge -batch ${(batch / 1000).toFixed(2)} s; ratio ${(flanneld / batch).toFixed(2)}x; flanneld peak RSS (VmHWM) ${peak.toFixed(0)} MiB`,
      );
      print(
        `  where the time goes (medians, from start): first log line (Node start, imports) ${median(firstLog).toFixed(0)} ms; subnet.env written ${median(subnetFile).toFixed(0)} ms; all ${n} leases followed ${median(leasesListed).toFixed(0)} ms; all entries in place ${flanneld.toFixed(0)} ms`,
      );
      if (n === 5000 || n === SCALE_COUNTS.at(-1)) {
        const idle = await cpuShare(pid, IDLE_SECONDS);
        print(
          `  idle with ${n} peers: flanneld used ${(idle * 100).toFixed(2)} % of one core over ${IDLE_SECONDS} s`,
        );
      }
    }
    helper.child.kill();
  } finally {
    await labDown(name, quiet);
  }
}

/**
 * When a flanneld process (by pid) logged its first line, wrote subnet.env, and logged the
 * first big batch of leases, in ms after `t0`; null when its log does not say.
 */
async function startPhases(
  logFile: string,
  pid: number,
  t0: number,
): Promise<{ firstLog: number; subnetFile: number; leasesListed: number } | null> {
  const own = (await readFile(logFile, "utf8"))
    .split("\n")
    .filter((l) => l.includes(`"pid":${pid},`))
    .map((l) => JSON.parse(l) as { time: string; msg: string });
  const at = (msg: string) => {
    const line = own.find((l) => l.msg === msg);
    return line === undefined ? Number.NaN : Date.parse(line.time) - t0;
  };
  if (own[0] === undefined) return null;
  return {
    firstLog: Date.parse(own[0].time) - t0,
    subnetFile: at("Wrote subnet file"),
    leasesListed: at("Subnets changed"),
  };
}

/** A process's peak resident memory (VmHWM), in MiB. */
async function peakMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
  return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

/** How long the idle CPU is measured. */
const IDLE_SECONDS = Number(process.env.FLANNEL_TS_BENCH_IDLE_SECONDS ?? "60");

/** A process's CPU time (user + system) over `seconds`, as a share of one core. */
async function cpuShare(pid: number, seconds: number): Promise<number> {
  const before = await cpuSeconds(pid);
  await delay(seconds * 1000);
  return ((await cpuSeconds(pid)) - before) / seconds;
}

async function driftRepair(): Promise<void> {
  const name = uniquePrefix("ftbd");
  try {
    const lab = await labUp({ name, nodes: 2, pods: 0, backend: "vxlan" }, quiet);
    const h1 = lab.nodes[0]!.netns;
    const env = await readFile(lab.nodes[1]!.subnetFile, "utf8");
    const peer = /FLANNEL_SUBNET=(\d+\.\d+\.\d+)\.1\//.exec(env)?.[1];
    if (peer === undefined) throw new Error(`no subnet in ${env}`);
    const gateway = `${peer}.0`;
    const monitor = spawn("ip", ["netns", "exec", h1, "ip", "-ts", "monitor", "neigh"], {
      stdio: ["ignore", "pipe", "ignore"],
    });
    let deletedAt = 0;
    const repairs: number[] = [];
    createInterface({ input: monitor.stdout }).on("line", (line) => {
      const m = /^\[([^\]]+)\]\s*(Deleted )?(\S+) dev flannel\.1.*?(PERMANENT)?\s*$/.exec(line);
      if (m?.[3] !== gateway) return;
      const at = Date.parse(m[1]!.replace(/(\.\d{3})\d*/, "$1"));
      if (m[2] !== undefined) deletedAt = at;
      else if (m[4] !== undefined && deletedAt > 0) {
        repairs.push(at - deletedAt);
        deletedAt = 0;
      }
    });
    await delay(300);
    for (let i = 0; i < 100; i++) {
      const before = repairs.length;
      await ip(["neigh", "del", gateway, "dev", "flannel.1"], h1);
      for (let w = 0; w < 500 && repairs.length === before; w++) await delay(2);
    }
    monitor.kill();
    print(
      `drift repair (neighbour deleted by hand -> back, ${repairs.length} of 100): p50 ${percentile(repairs, 50).toFixed(1)} ms, p99 ${percentile(repairs, 99).toFixed(1)} ms`,
    );
  } finally {
    await labDown(name, quiet);
  }
}

const wanted = process.argv.slice(2);
const all = wanted.length === 0;
print(`flannel-ts bench (issue #4), ${new Date().toISOString()}`);
if (all || wanted.includes("throughput")) await throughput();
if (all || wanted.includes("throughput6")) await throughput6();
if (all || wanted.includes("join")) await joinLatency();
if (all || wanted.includes("scale")) await scale();
if (all || wanted.includes("drift")) await driftRepair();
process.exit(0);
