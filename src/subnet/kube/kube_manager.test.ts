import type { Clock } from "../../util/clock.js";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { ConfigError } from "../../errors.js";
import { waitFor } from "../../../lab/poll.js";
import { capturingLogger, fieldText } from "../../../test/helpers/capturing_logger.js";
import { KubeAdmin } from "../../../lab/kubeapi/admin_client.js";
import { startKubeApiDouble } from "../../../lab/kubeapi/server.js";
import type { KubeApiDouble, KubeApiDoubleOptions } from "../../../lab/kubeapi/server.js";
import type { KubeObject } from "../../../lab/kubeapi/store.js";
import type { LeaseAttrs, LeaseEvent } from "../../lease/lease.js";
import { silentLogger } from "../../log/logger.js";
import type { Logger } from "../../log/logger.js";
import { describeSubnetManager } from "../manager.case.test.js";
import { watchLeases } from "../watch_leases.js";
import { ClientNodeClient, loadKubeConfig } from "./kube_client.js";
import { KubeSubnetManager, resolveNodeName } from "./kube_manager.js";

const P = "flannel.alpha.coreos.com/";
const vxlanAttrs = (publicIP: string, mac = "aa:bb:cc:00:00:01"): LeaseAttrs => ({
  publicIP,
  publicIPv6: null,
  backendType: "vxlan",
  backendData: { VNI: 1, VtepMAC: mac },
});

/** A double, a net-conf.json and managers for its Nodes. */
interface Fixture {
  readonly double: KubeApiDouble;
  readonly admin: KubeAdmin;
  readonly netConf: string;
  manager(
    nodeName: string,
    opts?: {
      log?: Logger;
      clock?: Clock;
      token?: string;
    },
  ): Promise<KubeSubnetManager>;
  cleanup(): Promise<void>;
}

async function openFixture(
  options: KubeApiDoubleOptions = {},
  adminToken: string | null = null,
): Promise<Fixture> {
  const double = await startKubeApiDouble(options);
  const dir = await mkdtemp(join(tmpdir(), "flannel-ts-kube-"));
  const netConf = join(dir, "net-conf.json");
  await writeFile(netConf, '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}');
  return {
    double,
    admin: new KubeAdmin({ url: double.url }, adminToken),
    netConf,
    async manager(nodeName, opts = {}) {
      const kc = loadKubeConfig({ apiUrl: double.url, kubeconfigFile: "" }, {});
      if (opts.token !== undefined) kc.users = [{ name: "flanneld", token: opts.token }];
      const manager = new KubeSubnetManager(
        {
          apiUrl: double.url,
          kubeconfigFile: "",
          annotationPrefix: "flannel.alpha.coreos.com",
          netConfigPath: netConf,
          setNodeNetworkUnavailable: true,
        },
        {
          client: new ClientNodeClient(kc),
          nodeName,
          log: opts.log ?? silentLogger(),
          ...(opts.clock ? { clock: opts.clock } : {}),
        },
      );
      await manager.getNetworkConfig();
      return manager;
    },
    async cleanup() {
      await double.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

describeSubnetManager("kube", async () => {
  const fx = await openFixture();
  let next = 1;
  return {
    async setup(json) {
      await writeFile(fx.netConf, json);
    },
    async node(machine) {
      const name = machine ?? `contract${next}`;
      const existing = await fx.admin.getNode(name).catch(() => null);
      if (existing === null) {
        // Node IPAM hands out 10.5.<n>.0/24 from the cluster CIDR, as kube-controller-manager would.
        await fx.admin.createNode({ name, podCIDR: `10.5.${next}.0/24` });
        next++;
      }
      return fx.manager(name);
    },
    cleanup: () => fx.cleanup(),
  };
});

describe("KubeSubnetManager", () => {
  let fx: Fixture;
  before(async () => {
    fx = await openFixture();
  });
  after(async () => {
    await fx.cleanup();
  });

  test("acquireLease() waits for a pod CIDR with a clear message, then takes it", async () => {
    await fx.admin.createNode({ name: "late" });
    const { log, lines } = capturingLogger();
    let waits = 0;
    const manager = await fx.manager("late", {
      log,
      clock: {
        now: () => Date.now(),
        sleep: async () => {
          waits++;
          await fx.admin.assignPodCIDR("late", "10.244.40.0/24"); // node IPAM catches up
          return true;
        },
      },
    });
    const lease = await manager.acquireLease(vxlanAttrs("10.0.0.40"), {
      signal: AbortSignal.timeout(20_000),
    });
    assert.equal(waits, 1);
    assert.equal(lease.subnet?.toString(), "10.244.40.0/24");
    assert.deepEqual(
      lines.filter((l) => l.msg.includes("pod CIDR")).map((l) => l.msg),
      [
        'node "late" has no pod CIDR yet: is kube-controller-manager running with --allocate-node-cidrs?',
      ],
    );
  });

  test("acquireLease() refuses a pod CIDR outside Network, naming both", async () => {
    await fx.admin.createNode({ name: "outside", podCIDR: "10.9.1.0/24" });
    const manager = await fx.manager("outside");
    await assert.rejects(
      manager.acquireLease(vxlanAttrs("10.0.0.41"), { signal: AbortSignal.timeout(20_000) }),
      (err: unknown) =>
        err instanceof ConfigError &&
        /subnet "10\.244\.0\.0\/16" .* doesn't contain "10\.9\.1\.0\/24" PodCIDR of the "outside" node/.test(
          err.message,
        ),
    );
  });

  test("acquireLease() writes the annotations with one strategic merge patch on nodes/status, and none when they are there", async () => {
    await fx.admin.createNode({ name: "ann", podCIDR: "10.244.41.0/24" });
    const before = fx.double.audit.length;
    await (
      await fx.manager("ann")
    ).acquireLease(vxlanAttrs("10.0.0.42", "aa:bb:cc:00:00:42"), {
      signal: AbortSignal.timeout(20_000),
    });
    await (
      await fx.manager("ann")
    ).acquireLease(vxlanAttrs("10.0.0.42", "aa:bb:cc:00:00:42"), {
      signal: AbortSignal.timeout(20_000),
    });
    const patches = fx.double.audit.slice(before).filter((r) => r.verb === "patch");
    assert.deepEqual(
      patches.map((r) => `${r.resource}/${r.subresource} ${r.contentType}`),
      ["nodes/status application/strategic-merge-patch+json"],
    );
    const node = fx.double.store.get("nodes", "ann") as KubeObject & {
      metadata: { annotations: Record<string, string> };
    };
    assert.deepEqual(node.metadata.annotations, {
      [`${P}backend-data`]: '{"VNI":1,"VtepMAC":"aa:bb:cc:00:00:42"}',
      [`${P}backend-type`]: "vxlan",
      [`${P}kube-subnet-manager`]: "true",
      [`${P}public-ip`]: "10.0.0.42",
    });
    const stored = await (
      await fx.manager("ann")
    ).getStoredMacAddresses({ signal: AbortSignal.timeout(5_000) });
    assert.equal(stored.v4, "aa:bb:cc:00:00:42");
  });

  test("completeLease() sets NetworkUnavailable=False with flannel's reason, keeping the other conditions", async () => {
    await fx.admin.createNode({ name: "cond", podCIDR: "10.244.42.0/24" });
    const manager = await fx.manager("cond");
    const lease = await manager.acquireLease(vxlanAttrs("10.0.0.43"), {
      signal: AbortSignal.timeout(20_000),
    });
    const controller = new AbortController();
    const completing = manager.completeLease(lease, { signal: controller.signal });
    const conditions = () =>
      (
        fx.double.store.get("nodes", "cond") as unknown as {
          status: {
            conditions: { type: string; status: string; reason?: string; message?: string }[];
          };
        }
      ).status.conditions;
    try {
      await waitFor("the condition", () => Promise.resolve(conditions().length >= 2));
    } finally {
      controller.abort();
      await completing;
    }
    assert.deepEqual(
      conditions().map((c) => [c.type, c.status, c.reason, c.message]),
      [
        ["Ready", "True", "KubeletReady", "kubelet is posting ready status"],
        ["NetworkUnavailable", "False", "FlannelIsUp", "Flannel is running on this node"],
      ],
    );
  });

  for (const http of [false, true]) {
    test(`watchLeases() relists after 410 Gone ${http ? "as the HTTP answer" : "in the stream"} without losing or doubling a node`, async () => {
      const local = await openFixture();
      try {
        await local.admin.createNode({ name: "w1", podCIDR: "10.244.1.0/24" });
        await local.admin.createNode({ name: "w2", podCIDR: "10.244.2.0/24" });
        const me = await local.manager("w1");
        const mine = await me.acquireLease(vxlanAttrs("10.0.1.1", "aa:bb:cc:00:01:01"), {
          signal: AbortSignal.timeout(20_000),
        });
        await (
          await local.manager("w2")
        ).acquireLease(vxlanAttrs("10.0.1.2", "aa:bb:cc:00:01:02"), {
          signal: AbortSignal.timeout(20_000),
        });
        const controller = new AbortController();
        const seen: string[] = [];
        const iterator = watchLeases(me, mine, { signal: controller.signal })[
          Symbol.asyncIterator
        ]();
        const nextBatch = async () => {
          const step = await iterator.next();
          const batch = step.done === true ? [] : step.value;
          seen.push(...batch.map((e: LeaseEvent) => `${e.type} ${e.lease.subnet?.toString()}`));
        };
        try {
          await nextBatch();
          assert.deepEqual(seen, ["added 10.244.2.0/24"]);
          // w2 leaves and w3 joins, then the event log is compacted past both: the watch cannot
          // resume from where it was and must list again.
          local.double.store.delete("nodes", "w2");
          local.double.store.create("nodes", "w3", {
            metadata: {
              name: "w3",
              annotations: {
                [`${P}kube-subnet-manager`]: "true",
                [`${P}backend-type`]: "vxlan",
                [`${P}backend-data`]: '{"VNI":1,"VtepMAC":"aa:bb:cc:00:01:03"}',
                [`${P}public-ip`]: "10.0.1.3",
              },
            },
            spec: { podCIDR: "10.244.3.0/24", podCIDRs: ["10.244.3.0/24"] },
          });
          local.double.faults.expire({ http });
          while (seen.length < 3) await nextBatch();
        } finally {
          controller.abort();
          await iterator.return?.(undefined);
        }
        assert.deepEqual(seen.sort(), [
          "added 10.244.2.0/24",
          "added 10.244.3.0/24",
          "removed 10.244.2.0/24",
        ]);
        assert.ok(me.watchStats.expired >= 1, "the watch saw 410");
        assert.ok(me.watchStats.lists >= 2, "and listed again");
      } finally {
        await local.cleanup();
      }
    });
  }

  test("watchLeases() retries a failing API server with backoff and logs the outage once, and its end once", async () => {
    const local = await openFixture();
    try {
      await local.admin.createNode({ name: "me", podCIDR: "10.244.1.0/24" });
      const { log, lines } = capturingLogger();
      const me = await local.manager("me", { log });
      const mine = await me.acquireLease(vxlanAttrs("10.0.3.1"), {
        signal: AbortSignal.timeout(20_000),
      });
      const controller = new AbortController();
      const iterator = watchLeases(me, mine, { signal: controller.signal })[Symbol.asyncIterator]();
      const seen: string[] = [];
      try {
        await iterator.next(); // the first snapshot
        local.double.faults.fail(500, null);
        // The generator runs only while it is asked for more: ask now, while the API fails.
        const pending = iterator.next();
        await waitFor("three failed watches", () => Promise.resolve(me.watchStats.failures >= 3));
        local.double.faults.heal();
        local.double.store.create("nodes", "late", {
          metadata: {
            name: "late",
            annotations: {
              [`${P}kube-subnet-manager`]: "true",
              [`${P}backend-type`]: "vxlan",
              [`${P}backend-data`]: '{"VNI":1,"VtepMAC":"aa:bb:cc:00:03:02"}',
              [`${P}public-ip`]: "10.0.3.2",
            },
          },
          spec: { podCIDR: "10.244.2.0/24", podCIDRs: ["10.244.2.0/24"] },
        });
        const step = await pending;
        if (step.done !== true)
          seen.push(...step.value.map((e) => `${e.type} ${e.lease.subnet?.toString()}`));
      } finally {
        controller.abort();
        await iterator.return?.(undefined);
      }
      assert.deepEqual(seen, ["added 10.244.2.0/24"]);
      assert.ok(me.watchStats.failures >= 3);
      assert.equal(
        lines.filter((l) => l.msg === "Lost the Kubernetes API; retrying with backoff").length,
        1,
      );
      assert.equal(lines.filter((l) => l.msg === "Reconnected to the Kubernetes API").length, 1);
    } finally {
      await local.cleanup();
    }
  });

  test("watchLeases() skips a node with bad annotations with one warning; changes that do not matter give no event", async () => {
    const local = await openFixture();
    try {
      await local.admin.createNode({ name: "me", podCIDR: "10.244.1.0/24" });
      await local.admin.createNode({
        name: "broken",
        podCIDR: "10.244.5.0/24",
        annotations: {
          [`${P}kube-subnet-manager`]: "true",
          [`${P}backend-type`]: "vxlan",
          [`${P}backend-data`]: "{not json",
          [`${P}public-ip`]: "10.0.5.5",
        },
      });
      const { log, lines } = capturingLogger();
      const me = await local.manager("me", { log });
      const mine = await me.acquireLease(vxlanAttrs("10.0.2.1"), {
        signal: AbortSignal.timeout(20_000),
      });
      const controller = new AbortController();
      const seen: string[] = [];
      const iterator = watchLeases(me, mine, { signal: controller.signal })[Symbol.asyncIterator]();
      try {
        await iterator.next(); // the first (empty) snapshot: "broken" is skipped
        await local.admin.annotate("broken", { unrelated: "1" });
        await local.admin.createNode({ name: "good", podCIDR: "10.244.6.0/24" });
        await (
          await local.manager("good")
        ).acquireLease(vxlanAttrs("10.0.6.6"), { signal: AbortSignal.timeout(20_000) });
        await local.admin.annotate("good", { "unrelated-too": "1" }); // no lease change
        await local.admin.annotate("good", { [`${P}public-ip`]: "10.0.6.7" }); // a lease change
        while (seen.length < 2) {
          const step = await iterator.next();
          if (step.done === true) break;
          seen.push(
            ...step.value.map(
              (e) => `${e.type} ${e.lease.subnet?.toString()} ${e.lease.attrs.publicIP}`,
            ),
          );
        }
      } finally {
        controller.abort();
        await iterator.return?.(undefined);
      }
      assert.deepEqual(seen, ["added 10.244.6.0/24 10.0.6.6", "added 10.244.6.0/24 10.0.6.7"]);
      const warnings = lines.filter((l) => l.subject === "broken");
      assert.equal(warnings.length, 1, "one warning for the broken node, however often it changes");
      assert.match(
        fieldText(warnings[0], "reason"),
        /node "broken" has annotation .*backend-data that is not JSON/,
      );
    } finally {
      await local.cleanup();
    }
  });

  test("watchLeases() warns once per distinct bad annotation, and names a Node whose kube-subnet-manager is no longer true", async () => {
    const local = await openFixture();
    try {
      await local.admin.createNode({ name: "me", podCIDR: "10.244.1.0/24" });
      await local.admin.createNode({ name: "peer", podCIDR: "10.244.7.0/24" });
      const { log, lines } = capturingLogger();
      const me = await local.manager("me", { log });
      const mine = await me.acquireLease(vxlanAttrs("10.0.2.1"), {
        signal: AbortSignal.timeout(20_000),
      });
      await (
        await local.manager("peer")
      ).acquireLease(vxlanAttrs("10.0.7.7"), { signal: AbortSignal.timeout(20_000) });
      const controller = new AbortController();
      const seen: string[] = [];
      const iterator = watchLeases(me, mine, { signal: controller.signal })[Symbol.asyncIterator]();
      const peerLines = () => lines.filter((l) => l.subject === "peer");
      await iterator.next(); // the snapshot: peer added
      // The watch is read all along, as a backend reads it.
      const watching = (async () => {
        for (;;) {
          const step = await iterator.next();
          if (step.done === true) return;
          seen.push(...step.value.map((e) => `${e.type} ${e.lease.subnet?.toString()}`));
        }
      })();
      try {
        await local.admin.annotate("peer", { [`${P}backend-data`]: "{not json" });
        await waitFor("the first warning", () => Promise.resolve(peerLines().length === 1));
        await local.admin.annotate("peer", { [`${P}public-ip`]: "nope" });
        await waitFor("the second, different warning", () =>
          Promise.resolve(peerLines().length === 2),
        );
        await local.admin.annotate("peer", { unrelated: "1" }); // the same bad state: no line
        await local.admin.annotate("peer", {
          [`${P}backend-data`]: '{"VNI":1,"VtepMAC":"aa:bb:cc:00:00:07"}',
          [`${P}public-ip`]: "10.0.7.7",
          [`${P}kube-subnet-manager`]: "false",
        });
        await waitFor("the peer's removal", () => Promise.resolve(seen.length > 0));
      } finally {
        controller.abort();
        await watching;
      }
      assert.deepEqual(seen, ["removed 10.244.7.0/24"]);
      const reasons = peerLines().map((l) => `${l.msg}: ${fieldText(l, "reason")}`);
      assert.equal(reasons.length, 3, reasons.join("\n"));
      assert.match(reasons[0] ?? "", /backend-data that is not JSON/);
      assert.match(reasons[1] ?? "", /public-ip "nope": expected an IPv4 address/);
      assert.match(
        reasons[2] ?? "",
        /kube-subnet-manager annotation is not "true" any more.*"false"/,
      );
    } finally {
      await local.cleanup();
    }
  });

  test("watchLeases() writes this node's own annotations back when someone corrupts them, warning once", async () => {
    const local = await openFixture();
    try {
      await local.admin.createNode({ name: "me", podCIDR: "10.244.1.0/24" });
      const { log, lines } = capturingLogger();
      const me = await local.manager("me", { log });
      const attrs = vxlanAttrs("10.0.2.1", "aa:bb:cc:00:00:02");
      const mine = await me.acquireLease(attrs, { signal: AbortSignal.timeout(20_000) });
      const annotations = async () =>
        ((await local.admin.getNode("me")) as { metadata: { annotations: Record<string, string> } })
          .metadata.annotations;
      const good = await annotations();
      const controller = new AbortController();
      const iterator = watchLeases(me, mine, { signal: controller.signal })[Symbol.asyncIterator]();
      const watching = (async () => {
        for (;;) if ((await iterator.next()).done === true) return;
      })();
      try {
        for (const round of [1, 2]) {
          await local.admin.annotate("me", {
            [`${P}backend-data`]: "garbage",
            [`${P}public-ip`]: null,
          });
          await waitFor(`the annotations written back (round ${round})`, async () => {
            const now = await annotations();
            return (
              now[`${P}backend-data`] === good[`${P}backend-data`] &&
              now[`${P}public-ip`] === "10.0.2.1"
            );
          });
        }
      } finally {
        controller.abort();
        await watching;
      }
      const warned = lines.filter((l) =>
        l.msg.startsWith("This node's flannel annotations were changed"),
      );
      assert.equal(warned.length, 1, JSON.stringify(lines));
    } finally {
      await local.cleanup();
    }
  });

  test("an unknown token (401) and a request the ClusterRole does not allow (403) fail naming the verb and resource", async () => {
    const local = await openFixture(
      {
        users: {
          "ro-token": {
            name: "readonly",
            rules: [
              { apiGroups: [""], resources: ["nodes", "pods"], verbs: ["get", "list", "watch"] },
            ],
          },
          admin: { name: "admin", rules: [{ apiGroups: ["*"], resources: ["*"], verbs: ["*"] }] },
        },
        anonymous: null,
      },
      "admin",
    );
    try {
      await local.admin.createNode({ name: "ro", podCIDR: "10.244.7.0/24" });
      const stranger = await local.manager("ro", { token: "no-such-token" });
      await assert.rejects(
        stranger.acquireLease(vxlanAttrs("10.0.7.7"), { signal: AbortSignal.timeout(20_000) }),
        (err: unknown) =>
          err instanceof Error &&
          /Cannot get nodes "ro": HTTP 401: .*check the service-account token or the kubeconfig/.test(
            err.message,
          ),
      );
      const manager = await local.manager("ro", { token: "ro-token" });
      await assert.rejects(
        manager.acquireLease(vxlanAttrs("10.0.7.7"), { signal: AbortSignal.timeout(20_000) }),
        (err: unknown) =>
          err instanceof Error &&
          /Cannot patch nodes\/status "ro": HTTP 403: .*cannot patch resource "nodes\/status".*ClusterRole/.test(
            err.message,
          ),
      );
    } finally {
      await local.cleanup();
    }
  });

  test("resolveNodeName() takes NODE_NAME, else the pod's spec.nodeName, else names both variables", async () => {
    await fx.admin.createPod("kube-flannel", "kube-flannel-ds-abcde", "worker-7");
    const client = new ClientNodeClient(
      loadKubeConfig({ apiUrl: fx.double.url, kubeconfigFile: "" }, {}),
    );
    const signal = AbortSignal.timeout(10_000);
    assert.equal(await resolveNodeName(client, { NODE_NAME: "n9" }, { signal }), "n9");
    assert.equal(
      await resolveNodeName(
        client,
        { POD_NAME: "kube-flannel-ds-abcde", POD_NAMESPACE: "kube-flannel" },
        { signal },
      ),
      "worker-7",
    );
    await assert.rejects(
      resolveNodeName(client, {}, { signal }),
      /set NODE_NAME, or POD_NAME and POD_NAMESPACE/,
    );
  });
});
