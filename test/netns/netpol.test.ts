/**
 * NetworkPolicy on real hosts: the policy cases of the Kubernetes NetworkPolicy e2e suite
 * (test/helpers/netpol_cases.ts), each its own test, on a lab of three hosts in Kubernetes mode
 * with --network-policy. The model's nine pods (x, y, z times a, b, c) are spread over the
 * hosts so that every case has pairs on one host (through the cni0 bridge) and across hosts
 * (through vxlan). Each probe step first checks that the transcribed truth table is what
 * flannel-ts's evaluator of the API's semantics says, then probes every ordered pair of the
 * case's pods with real connections (netpol_agent.py) until the matrix is the expected one.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { addPod, labDown, labKube, labUp } from "../../lab/cluster.js";
import type { Lab, LabPod } from "../../lab/cluster.js";
import { labelPod } from "../../lab/kubelet.js";
import { uniquePrefix } from "../../lab/netns.js";
import {
  applyPolicies,
  deleteAllPolicies,
  differences,
  expectedMatrix,
  formatReachability,
  pairKey,
  probeMatrix,
} from "../../lab/netpol.js";
import type { Matrix, ProbeSpec } from "../../lab/netpol.js";
import { eventually } from "../../lab/poll.js";
import { TCP_CASES, protocolCases } from "../helpers/netpol_cases.js";
import { MODEL_PODS } from "../helpers/netpol_model.js";
import { modelPoliciesArb } from "../helpers/netpol_arbitrary.js";
import fc from "fast-check";
import type { Json } from "../../lab/kubeapi/patch.js";
import type { NetpolCase, PodRef, Reach, Step } from "../helpers/netpol_model.js";

/** Which host each model pod runs on: every host has pods of every namespace. */
const PLACEMENT: Readonly<Record<PodRef, number>> = {
  "x/a": 0,
  "x/b": 1,
  "x/c": 2,
  "y/a": 1,
  "y/b": 2,
  "y/c": 0,
  "z/a": 2,
  "z/b": 0,
  "z/c": 1,
};

const quiet = () => undefined;

describe("NetworkPolicy: the Kubernetes e2e suite's cases on three hosts", () => {
  const name = uniquePrefix("ftnp");
  let lab: Lab;
  const pods = new Map<PodRef, LabPod>();
  const undo: (() => Promise<void>)[] = [];

  before(async () => {
    lab = await labUp(
      {
        name,
        nodes: 3,
        backend: "vxlan",
        pods: 0,
        datastore: "kube",
        flanneldArgs: ["--ip-masq", "--network-policy"],
      },
      quiet,
    );
    for (const ref of MODEL_PODS) {
      const [namespace = "", pod = ""] = ref.split("/");
      const node = lab.nodes[PLACEMENT[ref]];
      assert.ok(node);
      pods.set(ref, await addPod(lab, node, 0, {}, { namespace, name: pod, labels: { pod } }));
    }
  });
  after(async () => {
    await labDown(name, quiet);
  });

  const podOf = (ref: PodRef): LabPod => {
    const pod = pods.get(ref);
    assert.ok(pod, ref);
    return pod;
  };

  /** The truth table as a matrix over the lab's pods. */
  const asMatrix = (reach: Reach): Matrix => {
    const out = new Map<string, boolean>();
    for (const from of reach.pods)
      for (const to of reach.pods)
        if (from !== to) out.set(pairKey(podOf(from), podOf(to)), reach.get(from, to));
    return out;
  };

  async function probeStep(reach: Reach, probe: ProbeSpec): Promise<void> {
    const casePods = reach.pods.map(podOf);
    const want = asMatrix(reach);
    const judged = await expectedMatrix(lab, casePods, probe);
    assert.deepEqual(
      differences(casePods, want, judged),
      [],
      "the e2e truth table and flannel-ts's evaluator disagree",
    );
    await eventually(
      async () => {
        const seen = await probeMatrix(casePods, probe);
        assert.deepEqual(
          differences(casePods, want, seen),
          [],
          `${probe.protocol}/${probe.port}:\n${formatReachability(casePods, want, seen)}`,
        );
      },
      { timeoutMs: 20_000, intervalMs: 100 },
    );
  }

  async function runStep(step: Step): Promise<void> {
    const api = labKube(lab);
    if ("create" in step) await applyPolicies(lab, step.create);
    else if ("deleteAll" in step) await deleteAllPolicies(lab);
    else if ("labelNamespace" in step) {
      const { ns, labels } = step.labelNamespace;
      await api.mergePatch(`/api/v1/namespaces/${ns}`, { metadata: { labels: { ...labels } } });
      const reset = Object.fromEntries(Object.keys(labels).map((k) => [k, null]));
      undo.push(() =>
        api
          .mergePatch(`/api/v1/namespaces/${ns}`, { metadata: { labels: reset } })
          .then(() => undefined),
      );
    } else if ("labelPod" in step) {
      const [namespace = "", podName = ""] = step.labelPod.pod.split("/");
      await labelPod(lab, { namespace, name: podName }, step.labelPod.labels);
      const reset = Object.fromEntries(Object.keys(step.labelPod.labels).map((k) => [k, null]));
      undo.push(() => labelPod(lab, { namespace, name: podName }, reset));
    } else await probeStep(step.reach, step.probe);
  }

  const ipOf = (ref: PodRef) => podOf(ref).ip;
  const cases: NetpolCase[] = [...TCP_CASES, ...protocolCases("UDP"), ...protocolCases("SCTP")];
  for (const c of cases) {
    test(c.name, async () => {
      try {
        for (const step of c.steps(ipOf)) await runStep(step);
      } finally {
        await deleteAllPolicies(lab);
        for (const fn of undo.splice(0)) await fn();
      }
    });
  }

  test("random policy sets (fast-check, seeded) give the evaluator's verdicts on real packets", async () => {
    const all = MODEL_PODS.map(podOf);
    const subnets = [...new Set(all.map((p) => `${p.ip.split(".").slice(0, 3).join(".")}.0/24`))];
    const samples = fc.sample(modelPoliciesArb(subnets), { numRuns: 4, seed: 2026 });
    let blocked = 0;
    for (const policies of samples) {
      try {
        await applyPolicies(lab, policies as Json[]);
        for (const probe of [
          { protocol: "TCP", port: 80 },
          { protocol: "UDP", port: 81 },
        ] as const) {
          const want = await expectedMatrix(lab, all, probe);
          blocked += [...want.values()].filter((v) => !v).length;
          await eventually(
            async () => {
              const seen = await probeMatrix(all, probe);
              assert.deepEqual(
                differences(all, want, seen),
                [],
                `${JSON.stringify(policies)}\n${formatReachability(all, want, seen)}`,
              );
            },
            { timeoutMs: 20_000, intervalMs: 100 },
          );
        }
      } finally {
        await deleteAllPolicies(lab);
      }
    }
    assert.ok(blocked > 0, "the samples block some pairs: the check is not vacuous");
  });
});
