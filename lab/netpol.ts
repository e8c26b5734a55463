/**
 * NetworkPolicy in the lab (`lab up --kube --network-policy`): applying policies to the API
 * double, probing between pods with their agents, and the reachability matrix under the
 * policies in force: what the policies allow (read from the double, judged by flannel-ts's
 * evaluator of the API's semantics) against what the probes saw.
 */
import { loadAll } from "js-yaml";
import { clusterViewOf, evaluate } from "../src/netpol/index.js";
import type { ClusterView, Protocol } from "../src/netpol/index.js";
import { formatTable } from "../src/util/table.js";
import type { Json } from "./kubeapi/patch.js";
import { AGENT_SCRIPT, labKube } from "./kubelet.js";
import type { PingResult } from "./lab_check.js";
import type { Lab, LabPod } from "./lab_model.js";
import { run } from "./netns.js";

type Meta = { name?: string; namespace?: string };

/** The NetworkPolicies in a YAML (or JSON) text of one or more documents. */
export function parsePolicies(text: string, source: string): Json[] {
  const docs = loadAll(text).filter((d) => d !== null && d !== undefined) as Json[];
  for (const [i, doc] of docs.entries()) {
    const d = doc as { kind?: unknown; metadata?: Meta };
    if (d.kind !== "NetworkPolicy" || typeof d.metadata?.name !== "string")
      throw new TypeError(
        `Cannot apply "${source}": document ${i + 1} is not a NetworkPolicy with metadata.name (kind: ${String(d.kind)})`,
      );
  }
  return docs;
}

const policyPath = (namespace: string, name?: string) =>
  `/apis/networking.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/networkpolicies${name === undefined ? "" : `/${encodeURIComponent(name)}`}`;

/** Creates each policy, or replaces the one of that name; returns a line per policy. */
export async function applyPolicies(lab: Lab, docs: readonly Json[]): Promise<string[]> {
  const api = labKube(lab);
  const out: string[] = [];
  for (const doc of docs) {
    const meta = (doc as { metadata: Meta }).metadata;
    const namespace = meta.namespace ?? "default";
    const name = meta.name ?? "";
    const body = { ...(doc as object), metadata: { ...meta, namespace } } as Json;
    const existing = await api.list(policyPath(namespace));
    const found = existing.some((p) => (p as { metadata: Meta }).metadata.name === name);
    if (found) await api.replace(policyPath(namespace, name), body);
    else await api.create(policyPath(namespace), body);
    out.push(`networkpolicy ${namespace}/${name} ${found ? "configured" : "created"}`);
  }
  return out;
}

/** Deletes every NetworkPolicy of the lab. */
export async function deleteAllPolicies(lab: Lab): Promise<number> {
  const api = labKube(lab);
  const all = await api.list("/apis/networking.k8s.io/v1/networkpolicies");
  for (const p of all) {
    const meta = (p as { metadata: Meta }).metadata;
    await api.delete(policyPath(meta.namespace ?? "default", meta.name));
  }
  return all.length;
}

/** The cluster as the double holds it now, as the enforcer would see it. */
export async function clusterViewOfLab(lab: Lab): Promise<ClusterView> {
  const api = labKube(lab);
  return clusterViewOf({
    namespaces: await api.list("/api/v1/namespaces"),
    pods: await api.list("/api/v1/pods"),
    policies: await api.list("/apis/networking.k8s.io/v1/networkpolicies"),
  });
}

/** A probe: protocol and port. */
export interface ProbeSpec {
  readonly protocol: Protocol;
  readonly port: number;
}

/** `from>to` by pod name. */
export type Matrix = ReadonlyMap<string, boolean>;

/** A pair's key in a Matrix. */
export const pairKey = (from: LabPod, to: LabPod): string => `${from.name}>${to.name}`;

/** Probes every ordered pair of distinct pods at once (one agent run per source pod). */
export async function probeMatrix(pods: readonly LabPod[], probe: ProbeSpec): Promise<Matrix> {
  const out = new Map<string, boolean>();
  await Promise.all(
    pods.map(async (from) => {
      const targets = pods.filter((p) => p !== from);
      if (targets.length === 0) return;
      const text = await run("ip", [
        "netns",
        "exec",
        from.netns,
        "/usr/bin/python3",
        AGENT_SCRIPT,
        "probe",
        probe.protocol,
        String(probe.port),
        ...targets.map((t) => t.ip),
      ]);
      const results = JSON.parse(text) as Record<string, boolean>;
      for (const to of targets) out.set(pairKey(from, to), results[to.ip] === true);
    }),
  );
  return out;
}

/** What the policies in force allow for every ordered pair of distinct pods. */
export async function expectedMatrix(
  lab: Lab,
  pods: readonly LabPod[],
  probe: ProbeSpec,
): Promise<Matrix> {
  const view = await clusterViewOfLab(lab);
  const out = new Map<string, boolean>();
  for (const from of pods)
    for (const to of pods)
      if (from !== to)
        out.set(pairKey(from, to), evaluate(view, { src: from.ip, dst: to.ip, ...probe }).allowed);
  return out;
}

/** A pod's name in the matrix: its namespace/name when registered. */
export function podLabel(pod: LabPod): string {
  return pod.kube === undefined ? pod.name : `${pod.kube.namespace}/${pod.kube.name}`;
}

/** Pairs where `actual` differs from `expected`, as `from -> to (expected ...)`. */
export function differences(pods: readonly LabPod[], expected: Matrix, actual: Matrix): string[] {
  const out: string[] = [];
  for (const from of pods)
    for (const to of pods) {
      if (from === to) continue;
      const want = expected.get(pairKey(from, to));
      const got = actual.get(pairKey(from, to));
      if (want !== got)
        out.push(
          `${podLabel(from)} -> ${podLabel(to)}: expected ${want === true ? "allowed" : "blocked"}, was ${got === true ? "allowed" : "blocked"}`,
        );
    }
  return out;
}

/** The matrix: `ok` (allowed), `blocked` (blocked, as the policies say), `BROKEN` (differs). */
export function formatReachability(
  pods: readonly LabPod[],
  expected: Matrix,
  actual: Matrix,
): string {
  const cell = (from: LabPod, to: LabPod) => {
    if (from === to) return "-";
    const want = expected.get(pairKey(from, to));
    const got = actual.get(pairKey(from, to));
    if (want !== got) return got === true ? "BROKEN(open)" : "BROKEN(blocked)";
    return got === true ? "ok" : "blocked";
  };
  return formatTable([
    ["from \\ to", ...pods.map(podLabel)],
    ...pods.map((from) => [podLabel(from), ...pods.map((to) => cell(from, to))]),
  ]);
}

/**
 * One round of the reachability matrix under the policies in force, as ping results for the
 * dashboard and `lab check`: `ok` when a pair behaves as the policies say (allowed and reached,
 * or blocked and refused), with `blockedByPolicy` for the second.
 */
export async function policyResults(
  lab: Lab,
  pods: readonly LabPod[],
  probe: ProbeSpec = { protocol: "TCP", port: 80 },
): Promise<PingResult[]> {
  const [expected, actual] = [
    await expectedMatrix(lab, pods, probe),
    await probeMatrix(pods, probe),
  ];
  const out: PingResult[] = [];
  for (const from of pods)
    for (const to of pods) {
      if (from === to) continue;
      const want = expected.get(pairKey(from, to)) === true;
      const got = actual.get(pairKey(from, to)) === true;
      out.push({
        from: from.name,
        to: to.name,
        ok: want === got,
        rttMs: null,
        family: 4,
        ...(!want && !got ? { blockedByPolicy: true } : {}),
      });
    }
  return out;
}
