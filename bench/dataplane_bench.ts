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
 * Run: npm run build && node dist/bench/dataplane_bench.js [throughput|join|scale|drift]...
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as delay } from "node:timers/promises";
import {
  killFlanneld,
  labDown,
  labUp,
  listPods,
  REPO_ROOT,
  restartFlanneld,
} from "../src/lab/cluster.js";
import type { Lab } from "../src/lab/cluster.js";
import { addNetns, deleteNetns, execIn, ip, run, uniquePrefix } from "../src/lab/netns.js";
import { iperfBetween } from "../src/lab/lab_check.js";
import { countEntries, monitorRoutes, percentile, print, waitForEntries } from "./bench_util.js";

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

function startHelper(lab: Lab): {
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

const vxlanLease = (publicIP: string, mac: string) =>
  JSON.stringify({
    PublicIP: publicIP,
    PublicIPv6: null,
    BackendType: "vxlan",
    BackendData: { VNI: 1, VtepMAC: mac },
  });
const macOf = (i: number) =>
  `0e:00:00:${((i >> 16) & 255).toString(16).padStart(2, "0")}:${((i >> 8) & 255).toString(16).padStart(2, "0")}:${(i & 255).toString(16).padStart(2, "0")}`;

async function joinLatency(): Promise<void> {
  const name = uniquePrefix("ftbj");
  try {
    const lab = await labUp({ name, nodes: 1, pods: 0, backend: "vxlan" }, quiet);
    const helper = startHelper(lab);
    const monitor = monitorRoutes(lab.nodes[0]!.netns);
    const seen = monitor.seen;
    // etcd's own notification latency, as the baseline: a watch in the hub.
    const watch = spawn(
      "ip",
      [
        "netns",
        "exec",
        lab.hub,
        "etcdctl",
        "--endpoints",
        "http://127.0.0.1:2379",
        "watch",
        "--prefix",
        "/coreos.com/network/subnets/",
      ],
      { stdio: ["ignore", "pipe", "ignore"] },
    );
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

async function scale(): Promise<void> {
  const N = 5000;
  const name = uniquePrefix("ftbs");
  try {
    const lab = await labUp(
      {
        name,
        nodes: 1,
        pods: 0,
        backend: "vxlan",
        networkConfig: '{"Network":"10.0.0.0/8","Backend":{"Type":"vxlan"}}',
      },
      quiet,
    );
    const h1 = lab.nodes[0]!;
    await killFlanneld(h1, "SIGTERM");
    const helper = startHelper(lab);
    const items = Array.from({ length: N }, (_, i) => ({
      key: `/coreos.com/network/subnets/10.${100 + Math.floor(i / 250)}.${i % 250}.0-24`,
      value: vxlanLease(`10.251.${Math.floor(i / 250)}.${(i % 250) + 1}`, macOf(i + 1)),
    }));
    await helper.send({ op: "bulk", items, ttl: 3600 });
    helper.child.kill();
    const t0 = Date.now();
    const pid = await restartFlanneld(lab, h1);
    const { entries, ms, peakMiB } = await waitForEntries(h1.netns, 3 * N, pid, t0);
    print(
      `scale: ${N} remote vxlan leases, one host starts: ${entries} kernel entries in place after ${(ms / 1000).toFixed(2)} s; flanneld peak memory (VmHWM) ${peakMiB.toFixed(0)} MiB`,
    );
    const idle = await cpuShare(pid, IDLE_SECONDS);
    print(
      `  idle with ${N} peers: flanneld used ${(idle * 100).toFixed(2)} % of one core over ${IDLE_SECONDS} s`,
    );

    // Baseline: the same 15,000 entries with ip -batch into a fresh namespace.
    const ns = `${name}-hb`;
    await addNetns(ns);
    await ip(["link", "add", "eth0", "type", "veth", "peer", "name", "eth1"], ns);
    await ip(["addr", "add", "10.250.0.50/24", "dev", "eth0"], ns);
    await ip(["link", "set", "eth0", "up"], ns);
    await ip(
      [
        "link",
        "add",
        "flannel.1",
        "type",
        "vxlan",
        "id",
        "1",
        "local",
        "10.250.0.50",
        "dev",
        "eth0",
        "dstport",
        "8472",
        "nolearning",
      ],
      ns,
    );
    await ip(["link", "set", "flannel.1", "up"], ns);
    const neigh: string[] = [];
    const fdb: string[] = [];
    const routes: string[] = [];
    items.forEach((item, i) => {
      const subnet = /subnets\/(\S+)-24$/.exec(item.key)![1]!;
      const mac = macOf(i + 1);
      neigh.push(`neigh replace ${subnet} lladdr ${mac} dev flannel.1 nud permanent`);
      fdb.push(
        `fdb replace ${mac} dev flannel.1 dst 10.251.${Math.floor(i / 250)}.${(i % 250) + 1} self permanent`,
      );
      routes.push(`route replace ${subnet}/24 via ${subnet} dev flannel.1 onlink`);
    });
    const dir = lab.dir;
    await writeFile(join(dir, "ip.batch"), [...neigh, ...routes].join("\n") + "\n");
    await writeFile(join(dir, "bridge.batch"), fdb.join("\n") + "\n");
    const b0 = Date.now();
    await run("ip", ["-n", ns, "-batch", join(dir, "ip.batch")]);
    await run("bridge", ["-n", ns, "-batch", join(dir, "bridge.batch")]);
    const bms = Date.now() - b0;
    print(
      `  baseline: ip -batch + bridge -batch write the same ${await countEntries(ns)} entries in ${(bms / 1000).toFixed(2)} s; ratio ${(ms / bms).toFixed(2)}x (flanneld also reads the 5,000 leases from etcd)`,
    );
    await deleteNetns(ns);
  } finally {
    await labDown(name, quiet);
  }
}

/** How long the idle CPU is measured. */
const IDLE_SECONDS = Number(process.env.FLANNEL_TS_BENCH_IDLE_SECONDS ?? "60");

/** A process's CPU time (user + system) over `seconds`, as a share of one core. */
async function cpuShare(pid: number, seconds: number): Promise<number> {
  const ticks = async () => {
    const fields = (await readFile(`/proc/${pid}/stat`, "utf8")).split(") ")[1]?.split(" ") ?? [];
    return Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15)
  };
  const hz = Number((await run("getconf", ["CLK_TCK"])).trim()) || 100;
  const before = await ticks();
  await delay(seconds * 1000);
  const after = await ticks();
  return (after - before) / hz / seconds;
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
if (all || wanted.includes("join")) await joinLatency();
if (all || wanted.includes("scale")) await scale();
if (all || wanted.includes("drift")) await driftRepair();
process.exit(0);
