/**
 * Kubernetes mode figures (printed, never asserted):
 * 1. Join latency: from a Node created with flannel's annotations (as a joining host's flanneld
 *    leaves it) to its route on another host (seen by `ip monitor`), p50 and p99 over 50 joins.
 *    Baseline, same run: a plain watch on the API double sees the same create.
 * 2. Scale: 1,000 annotated Nodes in the double, one host starts flanneld: time until all 3,000
 *    kernel entries are in place, and flanneld's peak memory (VmHWM).
 * Run: npm run build && node dist/bench/kube_bench.js [join|scale]...
 */
import { request } from "node:http";
import { createInterface } from "node:readline";
import { setTimeout as delay } from "node:timers/promises";
import { killFlanneld, labDown, labKube, labUp, restartFlanneld } from "../lab/cluster.js";
import type { Lab } from "../lab/cluster.js";
import { uniquePrefix } from "../lab/netns.js";
import {
  macOf,
  monitorRoutes,
  percentile,
  print,
  scaleLab,
  scaleSubnet,
  scaleVtep,
  waitForEntries,
} from "./bench_util.js";

const quiet = () => undefined;
const P = "flannel.alpha.coreos.com/";

/** A Node as a joined flannel host leaves it. */
function joinedNode(name: string, podCIDR: string, publicIP: string, mac: string) {
  return {
    name,
    podCIDR,
    internalIP: publicIP,
    annotations: {
      [`${P}backend-data`]: `{"VNI":1,"VtepMAC":"${mac}"}`,
      [`${P}backend-type`]: "vxlan",
      [`${P}kube-subnet-manager`]: "true",
      [`${P}public-ip`]: publicIP,
    },
  };
}

/** A plain watch on the double's Nodes, through its Unix socket: when each Node was seen. */
function watchNodes(lab: Lab): { seen: Map<string, number>; stop(): void } {
  const seen = new Map<string, number>();
  const req = request(
    { socketPath: lab.kubeApiSocket, path: "/api/v1/nodes?watch=true&resourceVersion=0" },
    (res) => {
      res.on("error", () => undefined); // stop() cuts the stream
      const lines = createInterface({ input: res });
      lines.on("error", () => undefined);
      lines.on("line", (line) => {
        const event = JSON.parse(line) as { object?: { metadata?: { name?: string } } };
        const name = event.object?.metadata?.name;
        if (name !== undefined && !seen.has(name)) seen.set(name, Date.now());
      });
    },
  );
  req.on("error", () => undefined);
  req.end();
  return {
    seen,
    stop: () => {
      req.destroy();
    },
  };
}

async function joinLatency(): Promise<void> {
  const name = uniquePrefix("ftkbj");
  try {
    const lab = await labUp(
      { name, nodes: 1, pods: 0, backend: "vxlan", datastore: "kube" },
      quiet,
    );
    const monitor = monitorRoutes(lab.nodes[0]!.netns);
    const watch = watchNodes(lab);
    await delay(500);
    const joins: number[] = [];
    const base: number[] = [];
    for (let i = 0; i < 50; i++) {
      const node = `j${i}`;
      const subnet = `10.244.${200 + i}.0/24`;
      await labKube(lab).createNode(joinedNode(node, subnet, `10.250.0.${100 + i}`, macOf(i + 1)));
      const t = Date.now(); // the create is committed once it answers
      for (let w = 0; w < 500 && !monitor.seen.has(subnet); w++) await delay(2);
      const at = monitor.seen.get(subnet);
      if (at !== undefined) joins.push(at - t);
      const wt = watch.seen.get(node);
      if (wt !== undefined) base.push(wt - t);
      await delay(20);
    }
    print(
      `kube join latency (Node annotated -> route on another host, ${joins.length} joins): p50 ${percentile(joins, 50).toFixed(1)} ms, p99 ${percentile(joins, 99).toFixed(1)} ms`,
    );
    print(
      `  baseline: a plain watch on the API double sees the same create: p50 ${percentile(base, 50).toFixed(1)} ms, p99 ${percentile(base, 99).toFixed(1)} ms`,
    );
    monitor.stop();
    watch.stop();
  } finally {
    await labDown(name, quiet);
  }
}

async function scale(): Promise<void> {
  const N = 1000;
  const name = uniquePrefix("ftkbs");
  try {
    const lab = await scaleLab(name, "kube");
    const h1 = lab.nodes[0]!;
    await killFlanneld(h1, "SIGTERM");
    const admin = labKube(lab);
    const created = Date.now();
    for (let i = 0; i < N; i++) {
      await admin.createNode(
        joinedNode(`n${i}`, `${scaleSubnet(i)}/24`, scaleVtep(i), macOf(i + 1)),
      );
    }
    print(
      `scale: ${N} Nodes created in the double in ${((Date.now() - created) / 1000).toFixed(2)} s`,
    );
    const t0 = Date.now();
    const pid = await restartFlanneld(lab, h1);
    const { entries, ms, peakMiB } = await waitForEntries(h1.netns, 3 * N, pid, t0);
    print(
      `scale: ${N} annotated Nodes, one host starts flanneld: ${entries} kernel entries in place after ${(ms / 1000).toFixed(2)} s; flanneld peak memory (VmHWM) ${peakMiB.toFixed(0)} MiB`,
    );
  } finally {
    await labDown(name, quiet);
  }
}

const wanted = process.argv.slice(2);
const all = wanted.length === 0;
if (all || wanted.includes("join")) await joinLatency();
if (all || wanted.includes("scale")) await scale();
