/**
 * The three kinds listed and watched over the official client against the API double: what a
 * list gives (client-node's typed objects) and what a watch gives (the wire's JSON) read the
 * same. A policy's `from` is `_from` in client-node's typed objects: a list that missed it
 * would read "from anyone".
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { KubeConfig } from "@kubernetes/client-node";
import { KubeAdmin } from "../../lab/kubeapi/admin_client.js";
import { startKubeApiDouble } from "../../lab/kubeapi/server.js";
import { silentLogger } from "../log/logger.js";
import type { ReflectorStep } from "../subnet/kube/index.js";
import { kubePolicySources } from "./kube_source.js";
import type { PolicyRead } from "./kube_source.js";
import { listClusterView } from "./network_policy.js";

const POLICY = {
  metadata: { name: "from-b" },
  spec: {
    podSelector: { matchLabels: { pod: "a" } },
    ingress: [{ from: [{ podSelector: { matchLabels: { pod: "b" } } }], ports: [{ port: 80 }] }],
    egress: [{ to: [{ ipBlock: { cidr: "10.0.0.0/8", except: ["10.1.0.0/16"] } }] }],
  },
};

test("a listed policy and a watched one read the same, peers and all", async () => {
  const double = await startKubeApiDouble();
  const controller = new AbortController();
  try {
    const admin = new KubeAdmin({ url: double.url });
    await admin.createNamespace("x");
    await admin.create("/apis/networking.k8s.io/v1/namespaces/x/networkpolicies", POLICY);
    const kc = new KubeConfig();
    kc.loadFromClusterAndUser(
      { name: "d", server: double.url, skipTLSVerify: true },
      { name: "u" },
    );
    const listed = (await listClusterView(kc, controller.signal)).policies.get("x/from-b");
    assert.ok(listed);
    assert.deepEqual(listed.ingress[0]?.peers, [
      {
        kind: "pods",
        podSelector: { matchLabels: { pod: "b" }, matchExpressions: [] },
        namespaceSelector: null,
      },
    ]);
    assert.equal(listed.egress[0]?.peers?.[0]?.kind, "ipBlock");
    const sources = kubePolicySources(kc, silentLogger());
    const steps: AsyncIterator<ReflectorStep<PolicyRead>> = sources
      .policies({ signal: controller.signal })
      [Symbol.asyncIterator]();
    const first = await steps.next(); // the list
    assert.equal((first.value as ReflectorStep<PolicyRead>).kind, "snapshot");
    await admin.create("/apis/networking.k8s.io/v1/namespaces/x/networkpolicies", {
      ...POLICY,
      metadata: { name: "watched" },
    });
    const event = (await steps.next()).value as ReflectorStep<PolicyRead>;
    assert.ok(event.kind === "event");
    assert.deepEqual(event.item.policy?.ingress, listed.ingress);
    assert.deepEqual(event.item.policy?.egress, listed.egress);
    controller.abort();
    await steps.return?.();
  } finally {
    controller.abort();
    await double.close();
  }
});
