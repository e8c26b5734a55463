/**
 * The enforcer's loop with the watches and the table replaced by fakes and time on a manual
 * clock: nothing is written before all three kinds are listed; the first write replaces the
 * whole table and makes it ready; a pod is a set change and a policy a chain change; a table
 * changed behind its back is rewritten; a failing write is retried with backoff and logged;
 * an unusable policy is warned about once and allows nothing.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { ManualClock } from "../../test/helpers/test_clock.js";
import { silentLogger } from "../log/logger.js";
import type { ReflectorStep } from "../subnet/kube/index.js";
import { AsyncQueue } from "../util/async_queue.js";
import { PolicyEnforcer } from "./enforcer.js";
import type { PolicyTable } from "./enforcer.js";
import type { PolicyRead, PolicySources } from "./kube_source.js";
import { namespaceViewOf, networkPolicyViewOf, podViewOf } from "./objects.js";
import type { NamespaceView, PodView } from "./objects.js";

class FakeTable implements PolicyTable {
  readonly scripts: string[] = [];
  listing: string | null = null;
  failures = 0;

  apply(script: string): Promise<void> {
    if (this.failures > 0) {
      this.failures--;
      return Promise.reject(
        new Error("nft: Error: Could not process rule: No buffer space available"),
      );
    }
    this.scripts.push(script);
    // As the kernel would list it: the generation's rule, as `nft list` prints it.
    const generation = /known ct mark and 0x00ff0000 == (0x[0-9a-f]{8}) accept/.exec(script)?.[1];
    this.listing = `written ${String(this.scripts.length)}\n\tct mark & 0x00ff0000 == ${generation ?? "?"} accept`;
    return Promise.resolve();
  }

  list(): Promise<string | null> {
    return Promise.resolve(this.listing);
  }
}

function fakeSources() {
  const queues = {
    namespaces: new AsyncQueue<ReflectorStep<NamespaceView>>(),
    pods: new AsyncQueue<ReflectorStep<PodView>>(),
    policies: new AsyncQueue<ReflectorStep<PolicyRead>>(),
  };
  const zero = { lists: 0, watches: 0, expired: 0, failures: 0 };
  const sources: PolicySources = {
    namespaces: () => queues.namespaces,
    pods: () => queues.pods,
    policies: () => queues.policies,
    stats: { namespaces: zero, pods: zero, networkpolicies: zero },
  };
  return { queues, sources };
}

const pod = (name: string, ip: string, labels: Record<string, string>) =>
  podViewOf({
    metadata: { name, namespace: "x", labels },
    spec: { nodeName: "n1" },
    status: { podIPs: [{ ip }] },
  }) as PodView;

const policyRead = (name: string, spec: unknown): PolicyRead => {
  const read = networkPolicyViewOf({ metadata: { name, namespace: "x" }, spec });
  assert.ok(read);
  return { key: `x/${name}`, ...read };
};

const denyAll = policyRead("deny", { podSelector: {}, policyTypes: ["Ingress"] });

async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((r) => setImmediate(r));
}

function start(table: FakeTable, log = silentLogger()) {
  const clock = new ManualClock(0);
  const { queues, sources } = fakeSources();
  const enforcer = new PolicyEnforcer(
    { nodeName: "n1", families: [4] },
    { sources, table, log, clock },
  );
  const controller = new AbortController();
  let ready = 0;
  const running = enforcer.run({
    signal: controller.signal,
    resyncSeconds: 5,
    onReady: () => {
      ready++;
    },
  });
  const stop = async () => {
    controller.abort();
    for (const q of Object.values(queues)) q.close();
    await running;
  };
  return { clock, queues, enforcer, stop, ready: () => ready };
}

test("nothing is written until Namespaces, Pods and NetworkPolicies are all listed; then the whole table, and ready", async () => {
  const table = new FakeTable();
  const t = start(table);
  try {
    t.queues.namespaces.push({
      kind: "snapshot",
      items: [namespaceViewOf({ metadata: { name: "x" } }) as NamespaceView],
    });
    t.queues.pods.push({ kind: "snapshot", items: [pod("a", "10.244.1.2", { app: "a" })] });
    await t.clock.sleeping();
    assert.deepEqual(table.scripts, []);
    assert.equal(t.ready(), 0);
    t.queues.policies.push({ kind: "snapshot", items: [denyAll] });
    await until(() => t.ready() === 1);
    assert.equal(table.scripts.length, 1);
    assert.match(
      table.scripts[0] ?? "",
      /^add table inet flannel-policy\ndelete table inet flannel-policy\n/,
    );
    assert.match(
      table.scripts[0] ?? "",
      /add element inet flannel-policy in_isolated4 \{ 10\.244\.1\.2 \}/,
    );
    assert.equal(t.enforcer.stats.podsEnforced, 1);
  } finally {
    await t.stop();
  }
});

test("a new pod changes set elements only; a new policy rewrites a chain; an event that changes nothing writes nothing", async () => {
  const table = new FakeTable();
  const t = start(table);
  try {
    t.queues.namespaces.push({ kind: "snapshot", items: [] });
    t.queues.pods.push({ kind: "snapshot", items: [pod("a", "10.244.1.2", {})] });
    t.queues.policies.push({ kind: "snapshot", items: [denyAll] });
    await until(() => t.ready() === 1);
    t.queues.pods.push({ kind: "event", type: "ADDED", item: pod("b", "10.244.1.3", {}) });
    await until(() => table.scripts.length === 2);
    const podScript = table.scripts[1] ?? "";
    assert.match(podScript, /add element inet flannel-policy in_isolated4 \{ 10\.244\.1\.3 \}/);
    assert.doesNotMatch(
      podScript,
      /(flush|add|delete) chain inet flannel-policy (?!known|remember)/,
    );
    t.queues.policies.push({
      kind: "event",
      type: "ADDED",
      item: policyRead("web", { podSelector: {}, ingress: [{ ports: [{ port: 80 }] }] }),
    });
    await until(() => table.scripts.length === 3);
    assert.match(table.scripts[2] ?? "", /flush chain inet flannel-policy ingress/);
    t.queues.pods.push({ kind: "event", type: "MODIFIED", item: pod("b", "10.244.1.3", {}) });
    t.queues.pods.push({ kind: "event", type: "MODIFIED", item: pod("a", "10.244.1.2", {}) });
    await t.clock.sleeping();
    await new Promise((r) => setImmediate(r));
    assert.equal(table.scripts.length, 3);
  } finally {
    await t.stop();
  }
});

test("a table changed outside flanneld is written whole again at the next resync", async () => {
  const table = new FakeTable();
  const t = start(table);
  try {
    t.queues.namespaces.push({ kind: "snapshot", items: [] });
    t.queues.pods.push({ kind: "snapshot", items: [] });
    t.queues.policies.push({ kind: "snapshot", items: [denyAll] });
    await until(() => t.ready() === 1);
    await t.clock.sleepingUntil(5_000);
    t.clock.advance(5_000);
    await t.clock.sleepingUntil(10_000); // checked, and waiting for the next resync
    assert.equal(table.scripts.length, 1, "an unchanged table is left alone");
    table.listing = null; // nft flush ruleset
    t.clock.advance(5_000);
    await until(() => table.scripts.length === 2);
    assert.match(table.scripts[1] ?? "", /^add table inet flannel-policy\ndelete table/);
    assert.equal(t.enforcer.stats.repairs, 1);
  } finally {
    await t.stop();
  }
});

test("a failing write is retried with backoff, each failure logged, until it works", async () => {
  const table = new FakeTable();
  table.failures = 2;
  const lines: string[] = [];
  const log = silentLogger();
  log.error = ((obj: { retryInMs: number }, msg: string) => {
    lines.push(`${msg} (${String(obj.retryInMs)} ms)`);
  }) as typeof log.error;
  const t = start(table, log);
  try {
    t.queues.namespaces.push({ kind: "snapshot", items: [] });
    t.queues.pods.push({ kind: "snapshot", items: [] });
    t.queues.policies.push({ kind: "snapshot", items: [] });
    await t.clock.sleepingUntil(100);
    t.clock.advance(100);
    await t.clock.sleepingUntil(300);
    t.clock.advance(200);
    await until(() => t.ready() === 1);
    assert.equal(table.scripts.length, 1);
    assert.equal(t.enforcer.stats.failures, 2);
    assert.equal(lines.length, 2);
    assert.match(
      lines[0] ?? "",
      /^Cannot write the NetworkPolicy rules; the rules in place stay until the next try \(100 ms\)/,
    );
  } finally {
    await t.stop();
  }
});

test("an unusable policy is warned about once, keeps its pods isolated and allows nothing", async () => {
  const table = new FakeTable();
  const warnings: string[] = [];
  const log = silentLogger();
  log.warn = ((_: unknown, msg: string) => {
    warnings.push(msg);
  }) as typeof log.warn;
  const t = start(table, log);
  const bad = policyRead("bad", {
    podSelector: {},
    ingress: [{ from: [{ ipBlock: { cidr: "10.0.0.0/33" } }] }],
  });
  try {
    t.queues.namespaces.push({ kind: "snapshot", items: [] });
    t.queues.pods.push({ kind: "snapshot", items: [pod("a", "10.244.1.2", {})] });
    t.queues.policies.push({ kind: "snapshot", items: [bad] });
    await until(() => t.ready() === 1);
    t.queues.policies.push({ kind: "event", type: "MODIFIED", item: bad });
    await t.clock.sleeping();
    assert.deepEqual(warnings, [
      'Cannot use NetworkPolicy "x/bad": spec.ingress[0].from[0].ipBlock.cidr "10.0.0.0/33" is not a CIDR such as "10.0.0.0/8": its rules are skipped: the pods it selects stay isolated and it allows nothing',
    ]);
    const plan = t.enforcer.plan;
    assert.ok(plan);
    assert.deepEqual(
      plan.ingress.map((r) => r.verdict),
      ["drop"],
    );
    assert.deepEqual(plan.sets.get("in_isolated4")?.elements, ["10.244.1.2"]);
  } finally {
    await t.stop();
  }
});
