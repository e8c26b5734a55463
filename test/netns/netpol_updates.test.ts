/**
 * NetworkPolicy while things change, on two hosts in Kubernetes mode with --network-policy:
 * a policy applied under a streaming TCP connection keeps or cuts it as the policies say;
 * flanneld restarted under policy keeps the isolated pod isolated throughout (a probe every
 * 100 ms); a table flushed by hand is written again; bad input (an invalid CIDR, junk objects)
 * is warned about and never opens anything, and the other policies are still enforced.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import {
  REPO_ROOT,
  addPod,
  killFlanneld,
  labKube,
  livePid,
  restartFlanneld,
} from "../../lab/cluster.js";
import { runCapture } from "../../src/util/exec.js";
import type { Lab, LabNode, LabPod } from "../../lab/cluster.js";
import { AGENT_SCRIPT } from "../../lab/kubelet.js";
import { execIn, listNetns } from "../../lab/netns.js";
import { flannelctlOn, labTrace } from "../../lab/lab_doctor.js";
import { firstProblem } from "../../src/doctor/trace.js";
import type { PodPolicyState } from "../../src/netpol/index.js";
import { healthzGet, metricValue } from "../helpers/healthz.js";
import { applyPolicies, deleteAllPolicies, pairKey, probeMatrix } from "../../lab/netpol.js";
import { waitFor } from "../../lab/poll.js";
import { netpol } from "../helpers/netpol_model.js";
import { withLab } from "../helpers/lab_fixture.js";

interface Pods {
  readonly server: LabPod; // x/a on h1
  readonly client: LabPod; // y/a on h2
  readonly neighbour: LabPod; // z/b on h1, never isolated
}

async function withPolicyLab(
  tag: string,
  body: (lab: Lab, pods: Pods) => Promise<void>,
): Promise<void> {
  let name = "";
  await withLab(
    tag,
    {
      nodes: 2,
      pods: 0,
      backend: "vxlan",
      datastore: "kube",
      flanneldArgs: ["--ip-masq", "--network-policy"],
    },
    async (lab) => {
      const [h1, h2] = lab.nodes as [LabNode, LabNode];
      const server = await addPod(
        lab,
        h1,
        0,
        {},
        { namespace: "x", name: "a", labels: { pod: "a" } },
      );
      const client = await addPod(
        lab,
        h2,
        0,
        {},
        { namespace: "y", name: "a", labels: { pod: "a" } },
      );
      const neighbour = await addPod(
        lab,
        h1,
        0,
        {},
        { namespace: "z", name: "b", labels: { pod: "b" } },
      );
      name = lab.name;
      await body(lab, { server, client, neighbour });
    },
  );
  // lab down took every namespace along, the pods' named after their Pod objects too.
  assert.deepEqual(await listNetns(`${name}-`), []);
}

/**
 * Runs `fn` with the host's flanneld paused (SIGSTOP), so that its resync cannot mend what `fn`
 * breaks before `fn` has looked at it; resumes it in any case.
 */
async function whilePaused<T>(node: LabNode, fn: () => Promise<T>): Promise<T> {
  const pid = await livePid(node.pidFile);
  assert.ok(pid !== null, `flanneld runs on ${node.name}`);
  process.kill(pid, "SIGSTOP");
  try {
    return await fn();
  } finally {
    process.kill(pid, "SIGCONT");
  }
}

/** Whether `from` reaches `to` on TCP 80 with a new connection. */
async function reaches(from: LabPod, to: LabPod): Promise<boolean> {
  return (
    (await probeMatrix([from, to], { protocol: "TCP", port: 80 })).get(pairKey(from, to)) === true
  );
}

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  await waitFor(what, check, { timeoutMs: 20_000, intervalMs: 100 });
}

const onlyFrom = (ns: string) =>
  netpol(
    "x",
    "only-from",
    { matchLabels: { pod: "a" } },
    {
      ingress: [
        { from: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": ns } } }] },
      ],
    },
  );

test("a policy applied under a streaming TCP connection keeps it when it allows it and cuts it when it does not", async () => {
  await withPolicyLab("ftnu", async (lab, { server, client, neighbour }) => {
    const stream = spawn("ip", [
      "netns",
      "exec",
      client.netns,
      "/usr/bin/python3",
      AGENT_SCRIPT,
      "stream",
      server.ip,
    ]);
    const counts = { sent: 0, echoed: 0 };
    let tail = "";
    stream.stdout.on("data", (chunk: Buffer) => {
      tail += chunk.toString();
      const lines = tail.split("\n");
      tail = lines.pop() ?? "";
      for (const line of lines) {
        const [what, n] = line.split(" ");
        if (what === "sent" || what === "echoed") counts[what] = Number(n);
      }
    });
    const afterSending = async (lines: number) => {
      const target = counts.sent + lines;
      await until(`the stream to send ${String(lines)} more lines`, () =>
        Promise.resolve(counts.sent >= target),
      );
    };
    try {
      await until("the stream to echo", () => Promise.resolve(counts.echoed >= 5));
      // Allowed: from namespace y. New connections from z are refused: the policy is in force.
      await applyPolicies(lab, [onlyFrom("y")]);
      await until("x/a to refuse z/b", async () => !(await reaches(neighbour, server)));
      const kept = counts.echoed;
      await afterSending(20);
      assert.ok(
        counts.echoed >= kept + 15,
        `the allowed stream goes on: ${String(kept)} -> ${String(counts.echoed)}`,
      );
      // Now only from z: the stream from y is cut at its next packet.
      await applyPolicies(lab, [onlyFrom("z")]);
      await until("x/a to refuse y/a", async () => !(await reaches(client, server)));
      const cut = counts.echoed;
      await afterSending(20);
      assert.ok(
        counts.echoed <= cut + 1,
        `the refused stream stops: ${String(cut)} -> ${String(counts.echoed)}`,
      );
      // And the same connection resumes once nothing refuses it: the cut was the policy's.
      await deleteAllPolicies(lab);
      await until("the stream to resume", () => Promise.resolve(counts.echoed > cut + 5));
    } finally {
      stream.kill();
    }
    await assertLabCommands(lab);
  });
});

/** `lab netpol` applies a file; `lab check` judges the matrix by the policies, and fails on drift. */
async function assertLabCommands(lab: Lab): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "flannel-ts-netpol-"));
  const flannelctl = join(REPO_ROOT, "bin/flannelctl");
  try {
    const file = join(dir, "only-from-z.yaml");
    await writeFile(file, JSON.stringify(onlyFrom("z")));
    const applied = await runCapture(flannelctl, ["lab", "netpol", file, "--name", lab.name]);
    assert.match(applied.stdout, /networkpolicy x\/only-from created/, applied.stderr);
    const checked = await runCapture(flannelctl, ["lab", "check", "--name", lab.name]);
    assert.equal(checked.code, 0, checked.stdout + checked.stderr);
    assert.match(checked.stdout, /All 6 pod pairs behave as the policies say \(1 blocked\)/);
    const h1 = lab.nodes[0] as LabNode;
    await whilePaused(h1, async () => {
      await execIn(h1.netns, "nft", ["flush", "table", "inet", "flannel-policy"]);
      const broken = await runCapture(flannelctl, ["lab", "check", "--name", lab.name]);
      assert.equal(broken.code, 1);
      assert.match(broken.stdout, /BROKEN y\/a -> x\/a: expected blocked, was allowed/);
      assert.match(broken.stderr, /1 pod pairs do not behave as the NetworkPolicies say/);
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test("flanneld restarted under policy keeps the isolated pod isolated throughout (a probe every 100 ms)", async () => {
  await withPolicyLab("ftnr", async (lab, { server, client, neighbour }) => {
    const h1 = lab.nodes[0] as LabNode;
    // A rule with peers: the restarted flanneld reads it from the list, not from a watch event.
    await applyPolicies(lab, [onlyFrom("z")]);
    await until("x/a to be isolated", async () => !(await reaches(client, server)));
    const seen: { isolated: boolean; open: boolean }[] = [];
    let probing = true;
    const loop = (async () => {
      while (probing) {
        const started = Date.now();
        const text = await execIn(
          client.netns,
          "/usr/bin/python3",
          [AGENT_SCRIPT, "probe", "TCP", "80", server.ip, neighbour.ip],
          {
            env: { ...process.env, PROBE_TIMEOUT: "0.3" },
          },
        );
        const r = JSON.parse(text) as Record<string, boolean>;
        seen.push({ isolated: r[server.ip] !== true, open: r[neighbour.ip] === true });
        await delay(Math.max(0, 100 - (Date.now() - started)));
      }
    })();
    try {
      const before = await livePid(h1.pidFile);
      const log = await readFile(h1.logFile, "utf8");
      await killFlanneld(h1, "SIGTERM");
      await restartFlanneld(lab, h1);
      await until("the restarted flanneld to write the whole table", async () => {
        const now = (await readFile(h1.logFile, "utf8")).slice(log.length);
        return /"whole":true[^\n]*"NetworkPolicy rules written"/.test(now);
      });
      assert.notEqual(await livePid(h1.pidFile), before);
      const count = seen.length;
      await until("ten more probes", () => Promise.resolve(seen.length >= count + 10));
    } finally {
      probing = false;
      await loop;
    }
    assert.ok(seen.length >= 10);
    assert.deepEqual(
      seen.filter((s) => !s.isolated),
      [],
      "x/a was never reachable",
    );
    assert.deepEqual(
      seen.filter((s) => !s.open),
      [],
      "z/b, not isolated, was always reachable: the probes work",
    );
    await assertDoctorTraceMetrics(lab, server);
  });
});

/** doctor's policy state, trace's verdicts and the metrics, under x/only-from (from z). */
async function assertDoctorTraceMetrics(lab: Lab, server: LabPod): Promise<void> {
  const h1 = lab.nodes[0] as LabNode;
  const denied = await labTrace(lab, "y/a", "x/a", "80/tcp");
  const ingress = denied.flatMap((h) => h.hops).find((h) => h.hop === "policy ingress");
  assert.equal(ingress?.state, "denied");
  assert.match(ingress?.detail ?? "", /TCP\/80 from \S+ dropped: x\/a is isolated by x\/only-from/);
  assert.deepEqual(firstProblem(denied)?.hop.hop, "policy ingress");
  const allowed = await labTrace(lab, "z/b", "x/a", "80/tcp");
  assert.match(
    allowed.flatMap((h) => h.hops).find((h) => h.hop === "policy ingress")?.detail ?? "",
    /allowed by x\/only-from ingress\[0\]/,
  );
  assert.equal(firstProblem(allowed), null);
  const doctor = await flannelctlOn(lab, h1, ["doctor", "--json"]);
  const report = JSON.parse(doctor.stdout) as { healthy: boolean; policy: PodPolicyState[] };
  assert.equal(report.healthy, true, doctor.stdout);
  const state = report.policy.find((p) => p.pod === "x/a");
  assert.deepEqual(state?.ingress, {
    isolatedBy: ["x/only-from"],
    allows: ["x/only-from: from all pods in namespaces kubernetes.io/metadata.name=z; any port"],
  });
  assert.deepEqual(report.policy.find((p) => p.pod === "z/b")?.ingress.isolatedBy, []);
  const metrics = (await healthzGet(h1.netns, "/metrics")).body;
  assert.equal(metricValue(metrics, "flannel_netpol_policies"), 1);
  assert.equal(metricValue(metrics, "flannel_netpol_pods_enforced"), 1);
  assert.ok(metricValue(metrics, "flannel_netpol_transactions_total") >= 1);
  // The drop counters are read from the kernel at each resync (--iptables-resync, 5 s here).
  const dropLine =
    /flannel_netpol_dropped_packets_total\{policy="x\/only-from",direction="ingress"\} [1-9]\d*/;
  await waitFor("x/only-from's ingress drops in /metrics", async () =>
    dropLine.test((await healthzGet(h1.netns, "/metrics")).body),
  );
  // The kernel out of step with the policies: doctor says which pod is not enforced.
  const broken = await whilePaused(h1, async () => {
    await execIn(h1.netns, "nft", ["flush", "set", "inet", "flannel-policy", "in_isolated4"]);
    return JSON.parse((await flannelctlOn(lab, h1, ["doctor", "--json"])).stdout) as {
      healthy: boolean;
      findings: { check: string; subject: string }[];
    };
  });
  assert.equal(broken.healthy, false);
  assert.deepEqual(
    broken.findings.filter((f) => f.check === "policy-pod-not-enforced").map((f) => f.subject),
    [`pod x/a ${server.ip}`],
  );
}

test("a table flushed by hand is written again; bad input is warned about once, opens nothing, and stops nothing", async () => {
  await withPolicyLab("ftnb", async (lab, { server, client, neighbour }) => {
    const h1 = lab.nodes[0] as LabNode;
    const api = labKube(lab);
    const policies = "/apis/networking.k8s.io/v1/namespaces/x/networkpolicies";
    // An invalid CIDR: x/a is isolated by it and nothing is allowed.
    await api.create(policies, {
      metadata: { name: "bad-cidr" },
      spec: {
        podSelector: { matchLabels: { pod: "a" } },
        ingress: [{ from: [{ ipBlock: { cidr: "10.244.0.0/33" } }] }],
      },
    });
    await until(
      "x/a to be isolated by the bad policy",
      async () => !(await reaches(client, server)),
    );
    // Junk the API double stores as given: a Pod and a NetworkPolicy that are not what they say.
    await api.create("/api/v1/namespaces/x/pods", {
      metadata: { name: "junk", labels: 5 },
      spec: "junk",
      status: { podIPs: "junk" },
    });
    await api.create(policies, { metadata: { name: "junk" }, spec: "junk" });
    // The other policies are still followed: allowing namespace z opens x/a to z/b only.
    await applyPolicies(lab, [onlyFrom("z")]);
    await until("z/b to reach x/a", () => reaches(neighbour, server));
    assert.equal(await reaches(client, server), false, "y/a stays refused");
    const log = await readFile(h1.logFile, "utf8");
    const warned = log
      .split("\n")
      .filter((l) => l.includes('Cannot use NetworkPolicy \\"x/bad-cidr\\"'));
    assert.equal(warned.length, 1, "one warning names the bad policy");
    assert.match(log, /Cannot use NetworkPolicy \\"x\/junk\\": spec is not an object/);

    // Drift: the table flushed by hand is written again at the next resync (5 s).
    await whilePaused(h1, async () => {
      await execIn(h1.netns, "nft", ["flush", "table", "inet", "flannel-policy"]);
      assert.equal(await reaches(client, server), true, "the flush opened x/a");
    });
    await until("the table to be written again", async () => !(await reaches(client, server)));
    assert.match(
      await readFile(h1.logFile, "utf8"),
      /NetworkPolicy rules were changed outside flanneld/,
    );
    assert.equal(await reaches(neighbour, server), true);
  });
});
