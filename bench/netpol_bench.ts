/**
 * NetworkPolicy figures (printed, never asserted), each beside a baseline from the same run:
 * 1. latency: a policy created (or deleted) in the API double -> enforced on the node (the end
 *    of flanneld's nft transaction, from its log), p50/p99 over 100 changes. Baseline: a plain
 *    watch on the double sees the same change.
 * 2. scale: 500 pods on a node and 1,000 policies: time from flanneld's start to its first whole
 *    write, the rules and set elements, flanneld's RSS. Baseline: `nft -f` of the same table
 *    into a fresh namespace (the kernel's share).
 * 3. throughput: pod-to-pod TCP (iperf3, 5 s) with 100 policies in force against none, rounds in
 *    turn, medians of 5.
 * Run: npm run build && node dist/bench/netpol_bench.js [latency|scale|throughput]...
 */
import { request } from "node:http";
import { readFile } from "node:fs/promises";
import { createInterface } from "node:readline";
import { setTimeout as delay } from "node:timers/promises";
import { addPod, killFlanneld, labDown, labKube, labUp, restartFlanneld } from "../lab/cluster.js";
import type { Lab, LabNode, LabPod } from "../lab/cluster.js";
import type { Json } from "../lab/kubeapi/patch.js";
import { iperfBetween } from "../lab/lab_check.js";
import { addNetns, deleteNetns, execIn, uniquePrefix } from "../lab/netns.js";
import { labelPod } from "../lab/kubelet.js";
import { applyPolicies, deleteAllPolicies } from "../lab/netpol.js";
import { median, percentile, print } from "./bench_util.js";

const quiet = () => undefined;
const POLICIES = "/apis/networking.k8s.io/v1/namespaces";

async function policyLab(tag: string, nodes: number): Promise<Lab> {
  return labUp(
    {
      name: uniquePrefix(tag),
      nodes,
      pods: 0,
      backend: "vxlan",
      datastore: "kube",
      flanneldArgs: ["--ip-masq", "--network-policy"],
    },
    quiet,
  );
}

/** The times (ms since the epoch) of flanneld's "NetworkPolicy rules written" lines. */
async function writeTimes(node: LabNode): Promise<number[]> {
  const log = await readFile(node.logFile, "utf8");
  return log
    .split("\n")
    .filter((l) => l.includes('"NetworkPolicy rules written"'))
    .map((l) => Date.parse((JSON.parse(l) as { time: string }).time));
}

/** A plain watch on the double's NetworkPolicies: when each change was seen. */
function watchPolicies(lab: Lab): { seen: number[]; stop(): void } {
  const seen: number[] = [];
  const req = request(
    {
      socketPath: lab.kubeApiSocket,
      path: "/apis/networking.k8s.io/v1/networkpolicies?watch=true",
    },
    (res) => {
      res.on("error", () => undefined);
      const lines = createInterface({ input: res });
      lines.on("error", () => undefined);
      lines.on("line", () => seen.push(Date.now()));
    },
  );
  req.on("error", () => undefined);
  req.end();
  return { seen, stop: () => req.destroy() };
}

async function latency(): Promise<void> {
  const lab = await policyLab("ftpl", 1);
  try {
    const h1 = lab.nodes[0] as LabNode;
    await addPod(lab, h1, 0, {}, { namespace: "x", name: "a", labels: { pod: "a" } });
    const watch = watchPolicies(lab);
    await delay(500);
    const admin = labKube(lab);
    const enforced: number[] = [];
    const seen: number[] = [];
    for (let i = 0; i < 100; i++) {
      const before = (await writeTimes(h1)).length;
      const watched = watch.seen.length;
      const t0 = Date.now();
      if (i % 2 === 0)
        await admin.create(`${POLICIES}/x/networkpolicies`, {
          metadata: { name: "p" },
          spec: {
            podSelector: { matchLabels: { pod: "a" } },
            ingress: [{ ports: [{ port: 80 + (i % 7) }] }],
          },
        });
      else await admin.delete(`${POLICIES}/x/networkpolicies/p`);
      for (let w = 0; w < 2000 && (await writeTimes(h1)).length <= before; w++) await delay(2);
      const at = (await writeTimes(h1))[before];
      if (at !== undefined) enforced.push(at - t0);
      const wt = watch.seen[watched];
      if (wt !== undefined) seen.push(wt - t0);
      await delay(20);
    }
    // A pod relabelled under a policy that selects the label: a set element change.
    await admin.create(`${POLICIES}/x/networkpolicies`, {
      metadata: { name: "isolate-labelled" },
      spec: { podSelector: { matchLabels: { target: "isolated" } }, policyTypes: ["Ingress"] },
    });
    await delay(200);
    const relabelled: number[] = [];
    for (let i = 0; i < 50; i++) {
      const before = (await writeTimes(h1)).length;
      const t0 = Date.now();
      await labelPod(
        lab,
        { namespace: "x", name: "a" },
        { target: i % 2 === 0 ? "isolated" : null },
      );
      for (let w = 0; w < 2000 && (await writeTimes(h1)).length <= before; w++) await delay(2);
      const at = (await writeTimes(h1))[before];
      if (at !== undefined) relabelled.push(at - t0);
      await delay(20);
    }
    watch.stop();
    print(
      `netpol latency (pod relabelled in the API -> its isolation written on the node, ${relabelled.length} relabels): p50 ${percentile(relabelled, 50).toFixed(0)} ms, p99 ${percentile(relabelled, 99).toFixed(0)} ms`,
    );
    print(
      `netpol latency (policy created or deleted in the API -> nft transaction done on the node, ${enforced.length} changes): p50 ${percentile(enforced, 50).toFixed(0)} ms, p99 ${percentile(enforced, 99).toFixed(0)} ms (goal p99 < 100 ms)`,
    );
    print(
      `  baseline: a plain watch on the API double sees the same change: p50 ${percentile(seen, 50).toFixed(0)} ms, p99 ${percentile(seen, 99).toFixed(0)} ms`,
    );
  } finally {
    await labDown(lab.name, quiet);
  }
}

/** 1,000 policies over 20 namespaces: selectors on app labels, peers and ports of each kind. */
function scalePolicy(i: number): unknown {
  const ns = `ns${i % 20}`;
  const app = `app${i % 50}`;
  const peer =
    i % 3 === 0
      ? { podSelector: { matchLabels: { app: `app${(i + 1) % 50}` } } }
      : i % 3 === 1
        ? {
            namespaceSelector: {
              matchLabels: { "kubernetes.io/metadata.name": `ns${(i + 3) % 20}` },
            },
          }
        : { ipBlock: { cidr: "10.0.0.0/8", except: [`10.${i % 200}.0.0/16`] } };
  return {
    metadata: { name: `p${i}`, namespace: ns },
    spec: {
      podSelector: { matchLabels: { app } },
      policyTypes: i % 4 === 0 ? ["Ingress", "Egress"] : ["Ingress"],
      ingress: [{ from: [peer], ports: [{ port: 80 }, { port: "serve-81-udp", protocol: "UDP" }] }],
      ...(i % 4 === 0 ? { egress: [{ to: [peer], ports: [{ port: 53, protocol: "UDP" }] }] } : {}),
    },
  };
}

async function vmKiB(pid: number, field: "VmRSS" | "VmHWM"): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  return Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? "0");
}

/** flanneld's "NetworkPolicy rules written" log line. */
interface WriteLine {
  readonly time: string;
  readonly rules: number;
  readonly setElements: number;
  readonly podsEnforced: number;
  readonly tookMs: number;
}

async function scale(): Promise<void> {
  const lab = await policyLab("ftps", 1);
  const scratch = uniquePrefix("ftpsx");
  try {
    const h1 = lab.nodes[0] as LabNode;
    await killFlanneld(h1, "SIGTERM");
    const admin = labKube(lab);
    for (let n = 0; n < 20; n++) await admin.createNamespace(`ns${n}`);
    const created = Date.now();
    for (let i = 0; i < 500; i++)
      await admin.create(`/api/v1/namespaces/ns${i % 20}/pods`, {
        metadata: { name: `pod${i}`, labels: { app: `app${i % 50}` } },
        spec: {
          nodeName: "h1",
          containers: [
            { name: "c", ports: [{ name: "serve-81-udp", containerPort: 81, protocol: "UDP" }] },
          ],
        },
        status: {
          phase: "Running",
          podIPs: [{ ip: `10.245.${Math.floor(i / 250)}.${(i % 250) + 1}` }],
        },
      });
    for (let i = 0; i < 1000; i++)
      await admin.create(`${POLICIES}/ns${i % 20}/networkpolicies`, scalePolicy(i) as Json);
    print(
      `netpol scale: 500 Pods and 1,000 NetworkPolicies created in the double in ${((Date.now() - created) / 1000).toFixed(1)} s`,
    );
    const t0 = Date.now();
    const pid = await restartFlanneld(lab, h1);
    let line = null as WriteLine | null;
    for (let w = 0; w < 3000 && line === null; w++) {
      const log = (await readFile(h1.logFile, "utf8")).split("\n");
      const found = log
        .reverse()
        .find((l) => l.includes(`"pid":${String(pid)}`) && l.includes('"whole":true'));
      if (found !== undefined) line = JSON.parse(found) as WriteLine;
      else await delay(10);
    }
    if (line === null) throw new Error("flanneld did not write the table within 30 s");
    const programmed = Date.parse(line.time) - t0;
    await delay(3000);
    const rss = await vmKiB(pid, "VmRSS");
    const hwm = await vmKiB(pid, "VmHWM");
    const table = await execIn(h1.netns, "nft", ["list", "table", "inet", "flannel-policy"]);
    await addNetns(scratch);
    const times: number[] = [];
    for (let r = 0; r < 5; r++) {
      const start = process.hrtime.bigint();
      await execIn(scratch, "nft", ["-f", "-"], {
        input: `${r > 0 ? "delete table inet flannel-policy\n" : ""}${table}`,
      });
      times.push(Number(process.hrtime.bigint() - start) / 1e6);
    }
    print(
      `netpol scale: flanneld start -> whole table written: ${programmed} ms (the compile and transaction alone: ${line.tookMs} ms); ${line.rules} rules, ${line.setElements} set elements, ${line.podsEnforced} pods enforced`,
    );
    print(
      `  baseline: nft -f of the same table into a fresh namespace (median of 5): ${median(times).toFixed(0)} ms`,
    );
    const changes: number[] = [];
    for (let i = 0; i < 20; i++) {
      const before = (await writeTimes(h1)).length;
      const t = Date.now();
      if (i % 2 === 0)
        await admin.create(`${POLICIES}/ns0/networkpolicies`, {
          ...(scalePolicy(1000) as object),
          metadata: { name: "extra" },
        } as Json);
      else await admin.delete(`${POLICIES}/ns0/networkpolicies/extra`);
      for (let w = 0; w < 5000 && (await writeTimes(h1)).length <= before; w++) await delay(2);
      const at = (await writeTimes(h1))[before];
      if (at !== undefined) changes.push(at - t);
    }
    const log = await readFile(h1.logFile, "utf8");
    const lines = log.split("\n").filter((l) => l.includes(`"pid":${String(pid)}`));
    const repairs = lines.filter((l) => l.includes("changed outside flanneld")).length;
    const took = lines
      .filter((l) => l.includes('"NetworkPolicy rules written"') && !l.includes('"whole":true'))
      .map((l) => (JSON.parse(l) as { tookMs: number }).tookMs);
    print(
      `netpol scale: one policy created or deleted at that size -> written on the node (20 changes): p50 ${percentile(changes, 50).toFixed(0)} ms, p99 ${percentile(changes, 99).toFixed(0)} ms; flanneld's own compile and transaction p50 ${percentile(took, 50).toFixed(0)} ms, max ${Math.max(...took).toFixed(0)} ms; whole rewrites after a drift check: ${String(repairs)}`,
    );
    print(
      `netpol scale: flanneld RSS 3 s after the write ${(rss / 1024).toFixed(0)} MiB, peak (VmHWM) ${(hwm / 1024).toFixed(0)} MiB`,
    );
  } finally {
    await deleteNetns(scratch);
    await labDown(lab.name, quiet);
  }
}

/** 100 policies: one lets y/a into x/a, 99 select other pods in other namespaces. */
function hundredPolicies(): Json[] {
  const policy = (name: string, namespace: string, spec: unknown): Json => ({
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name, namespace },
    spec: spec as Json,
  });
  const fromY = {
    podSelector: { matchLabels: { pod: "a" } },
    ingress: [
      { from: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "y" } } }] },
    ],
  };
  const others = Array.from({ length: 99 }, (_, k) =>
    policy(
      `other-${String(k + 1)}`,
      k % 2 === 0 ? "y" : "x",
      (scalePolicy(k + 1) as { spec: unknown }).spec,
    ),
  );
  return [policy("x-a-from-y", "x", fromY), ...others];
}

async function throughput(): Promise<void> {
  const lab = await policyLab("ftpt", 2);
  try {
    const [h1, h2] = lab.nodes as [LabNode, LabNode];
    const server: LabPod = await addPod(
      lab,
      h1,
      0,
      {},
      { namespace: "x", name: "a", labels: { pod: "a" } },
    );
    const client: LabPod = await addPod(
      lab,
      h2,
      0,
      {},
      { namespace: "y", name: "a", labels: { pod: "a" } },
    );
    const policies = hundredPolicies();
    const none: number[] = [];
    const hundred: number[] = [];
    for (let r = 0; r < 5; r++) {
      await deleteAllPolicies(lab);
      await delay(500);
      none.push(await iperfBetween(client, server, 5));
      await applyPolicies(lab, policies);
      await delay(1000);
      hundred.push(await iperfBetween(client, server, 5));
    }
    const rules = await execIn(h1.netns, "nft", [
      "list",
      "chain",
      "inet",
      "flannel-policy",
      "ingress",
    ]);
    print(
      `netpol throughput (pod-to-pod TCP across hosts, iperf3 5 s, medians of 5 rounds in turn): 100 policies ${median(hundred).toFixed(2)} Gbit/s, none ${median(none).toFixed(2)} Gbit/s -> ${(median(hundred) / median(none)).toFixed(3)} (goal: cost under 3 %, ratio > 0.97); the ingress chain holds ${rules.split("\n").filter((l) => l.includes("comment")).length} rules`,
    );
  } finally {
    await labDown(lab.name, quiet);
  }
}

const wanted = process.argv.slice(2);
const all = wanted.length === 0;
if (all || wanted.includes("latency")) await latency();
if (all || wanted.includes("scale")) await scale();
if (all || wanted.includes("throughput")) await throughput();
