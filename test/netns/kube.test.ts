/**
 * Kubernetes mode on real namespaces and real flanneld processes, with the Kubernetes API
 * double in the lab's hub playing the API server, node IPAM and the kubelet's NODE_NAME.
 */
import assert from "node:assert/strict";
import { readFile, stat } from "node:fs/promises";
import { test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import {
  addNode,
  addPod,
  deleteNode,
  killFlanneld,
  labKube,
  listPods,
  restartFlanneld,
  startKubeApi,
  stopKubeApi,
} from "../../lab/cluster.js";
import type { Lab, LabNode } from "../../lab/cluster.js";
import { ping, pingAll } from "../../lab/lab_check.js";
import { execIn, ip } from "../../lab/netns.js";
import { waitFor } from "../../lab/poll.js";
import { buildHandHost, handHostReaches } from "../helpers/hand_host.js";
import { healthzGet } from "../helpers/healthz.js";
import { eventually, withLab } from "../helpers/lab_fixture.js";

const P = "flannel.alpha.coreos.com/";
const node = (lab: Lab, i: number): LabNode => lab.nodes[i - 1]!;

interface NodeJson {
  metadata: { annotations?: Record<string, string> };
  spec: { podCIDR?: string };
  status: { conditions?: { type: string; status: string; reason?: string }[] };
}

async function assertAllReach(lab: Lab): Promise<void> {
  const results = await pingAll(await listPods(lab));
  const failed = results.filter((r) => !r.ok).map((r) => `${r.from}->${r.to}`);
  assert.deepEqual(failed, [], `pairs that failed: ${failed.join(", ")}`);
}

const vtepMac = async (n: LabNode) =>
  (await ip(["link", "show", "flannel.1"], n.netns)).match(/link\/ether (\S+)/)?.[1];

const logOf = (n: LabNode) => readFile(n.logFile, "utf8");

test("kube mode, vxlan: flannel's annotations, every pod reaches every other, a deleted Node drops its routes", async () => {
  await withLab("ftkv", { nodes: 3, pods: 1, backend: "vxlan", datastore: "kube" }, async (lab) => {
    const h1 = (await labKube(lab).getNode("h1")) as unknown as NodeJson;
    assert.deepEqual(h1.metadata.annotations, {
      [`${P}backend-data`]: `{"VNI":1,"VtepMAC":"${await vtepMac(node(lab, 1))}"}`,
      [`${P}backend-type`]: "vxlan",
      [`${P}kube-subnet-manager`]: "true",
      [`${P}public-ip`]: "10.250.0.11",
    });
    const condition = h1.status.conditions?.find((c) => c.type === "NetworkUnavailable");
    assert.deepEqual([condition?.status, condition?.reason], ["False", "FlannelIsUp"]);
    assert.match(
      await readFile(node(lab, 1).subnetFile, "utf8"),
      /FLANNEL_SUBNET=10\.244\.1\.1\/24\nFLANNEL_MTU=1450/,
    );
    await assertAllReach(lab);

    assert.match(
      await ip(["route", "show"], node(lab, 1).netns),
      /10\.244\.3\.0\/24 via 10\.244\.3\.0 dev flannel\.1/,
    );
    await deleteNode(lab, node(lab, 3));
    await eventually(async () => {
      const routes = await ip(["route", "show"], node(lab, 1).netns);
      assert.doesNotMatch(routes, /10\.244\.3\.0/, routes);
      const neighbours = await ip(["neigh", "show", "dev", "flannel.1"], node(lab, 1).netns);
      assert.doesNotMatch(neighbours, /10\.244\.3\.0/, neighbours);
    });
    assert.match(
      await ip(["route", "show"], node(lab, 1).netns),
      /10\.244\.2\.0\/24 via 10\.244\.2\.0 dev flannel\.1/,
    );
  });
});

test("kube mode, vxlan: a restarted host keeps its subnet, and the VTEP MAC its Node announces (a host taken over from flannel keeps flannel's random MAC)", async () => {
  await withLab("ftkr", { nodes: 2, pods: 1, backend: "vxlan", datastore: "kube" }, async (lab) => {
    const h1 = node(lab, 1);
    const before = await readFile(h1.subnetFile, "utf8");
    // As after a reboot of a host that flannel (Go) ran: the device is gone, and the Node
    // carries the MAC flannel chose at random.
    await killFlanneld(h1, "SIGKILL");
    await ip(["link", "delete", "flannel.1"], h1.netns);
    await labKube(lab).annotate("h1", {
      [`${P}backend-data`]: '{"VNI":1,"VtepMAC":"0e:11:22:33:44:55"}',
    });
    await restartFlanneld(lab, h1);
    await waitFor(
      "h1 to start again",
      async () => (await logOf(h1)).split("Wrote subnet file").length === 3,
      { timeoutMs: 30_000 },
    );
    assert.equal(await readFile(h1.subnetFile, "utf8"), before);
    assert.equal(await vtepMac(h1), "0e:11:22:33:44:55");
    await eventually(async () => {
      const neighbours = await ip(["neigh", "show", "dev", "flannel.1"], node(lab, 2).netns);
      assert.match(neighbours, /10\.244\.1\.0 lladdr 0e:11:22:33:44:55/, neighbours);
    });
    // subnet.env is written before h1 has its peers' entries: wait for those, not a guess.
    await eventually(() => assertAllReach(lab));
  });
});

test("kube mode, host-gw: every pod reaches every other; a deleted Node drops its route", async () => {
  await withLab(
    "ftkh",
    { nodes: 3, pods: 1, backend: "host-gw", datastore: "kube" },
    async (lab) => {
      const h1 = (await labKube(lab).getNode("h1")) as unknown as NodeJson;
      assert.equal(h1.metadata.annotations?.[`${P}backend-data`], "null");
      assert.equal(h1.metadata.annotations?.[`${P}backend-type`], "host-gw");
      // subnet.env is written before a host has its peers' routes: wait for those, not a guess.
      await eventually(() => assertAllReach(lab));
      assert.match(
        await ip(["route", "show"], node(lab, 1).netns),
        /10\.244\.3\.0\/24 via 10\.250\.0\.13 dev eth0/,
      );
      await deleteNode(lab, node(lab, 3));
      await eventually(async () => {
        assert.doesNotMatch(await ip(["route", "show"], node(lab, 1).netns), /10\.244\.3\.0/);
      });
      assert.match(
        await ip(["route", "show"], node(lab, 1).netns),
        /10\.244\.2\.0\/24 via 10\.250\.0\.12 dev eth0/,
      );
    },
  );
});

/** The HTTP status of flanneld's /readyz on a host (healthz on port 8081). */
const readyz = async (n: LabNode) => String((await healthzGet(n.netns, "/readyz")).status);

test("kube mode: a Node without a pod CIDR waits, saying why and not ready, then joins when node IPAM assigns one", async () => {
  await withLab(
    "ftkw",
    {
      nodes: 3,
      pods: 1,
      backend: "vxlan",
      datastore: "kube",
      withoutPodCIDR: ["h3"],
      flanneldArgs: ["--healthz-port=8081"],
    },
    async (lab) => {
      const h3 = node(lab, 3);
      await waitFor(
        "h3 to say why it waits",
        async () =>
          (await logOf(h3)).includes(
            'node \\"h3\\" has no pod CIDR yet: is kube-controller-manager running with --allocate-node-cidrs?',
          ),
        { timeoutMs: 30_000 },
      );
      await assert.rejects(stat(h3.subnetFile), "no subnet.env while there is no pod CIDR");
      assert.equal(await readyz(h3), "503");
      await labKube(lab).assignPodCIDR("h3", "10.244.3.0/24");
      await waitFor(
        "h3 to write subnet.env",
        () =>
          stat(h3.subnetFile).then(
            () => true,
            () => false,
          ),
        { timeoutMs: 30_000 },
      );
      assert.equal(await readyz(h3), "200");
      await addPod(lab, h3, 1);
      await assertAllReach(lab);
    },
  );
});

test("kube mode: a watch that gets 410 Gone lists again, losing and doubling no node", async () => {
  await withLab("ftkg", { nodes: 2, pods: 1, backend: "vxlan", datastore: "kube" }, async (lab) => {
    await labKube(lab).fault("expire");
    await waitFor(
      "h1 to list the Nodes again",
      async () => (await logOf(node(lab, 1))).includes("Node watch expired (410 Gone)"),
      { timeoutMs: 30_000 },
    );
    const { lab: grown } = await addNode(lab, () => undefined);
    await assertAllReach(grown);
    const routes = (await ip(["route", "show", "dev", "flannel.1"], node(grown, 1).netns))
      .trim()
      .split("\n");
    assert.deepEqual(routes.map((r) => r.split(" ")[0]).sort(), ["10.244.2.0/24", "10.244.3.0/24"]);
  });
});

test("kube mode: the API server down for 20 s loses no pod ping, and flanneld follows it when it is back", async () => {
  await withLab("ftkd", { nodes: 2, pods: 1, backend: "vxlan", datastore: "kube" }, async (lab) => {
    const [p1, p2] = await listPods(lab);
    // 250 pings 0.1 s apart (25 s) across the outage.
    const pinging = execIn(p1!.netns, "ping", ["-c", "250", "-i", "0.1", "-W", "1", p2!.ip]);
    await stopKubeApi(lab);
    await delay(20_000); // the outage itself, not a wait for anything
    await startKubeApi(lab);
    const out = await pinging;
    assert.match(out, /250 packets transmitted, 250 received/, out);
    await waitFor(
      "h1 to say it is back on the API",
      async () => (await logOf(node(lab, 1))).includes("Reconnected to the Kubernetes API"),
      { timeoutMs: 60_000 },
    );
    const { lab: grown } = await addNode(lab, () => undefined);
    await assertAllReach(grown);
  });
});

test("kube mode: a Node annotated by hand exactly as flannel (Go) annotates one is reached, and reaches flannel-ts hosts from their annotations", async () => {
  await withLab("ftki", { nodes: 2, pods: 1, backend: "vxlan", datastore: "kube" }, async (lab) => {
    const hand = await buildHandHost(lab, 99, "0e:00:00:00:00:99");
    await labKube(lab).createNode({
      name: "go-host",
      podCIDR: `${hand.subnet}/24`,
      annotations: {
        [`${P}backend-data`]: `{"VNI":1,"VtepMAC":"${hand.mac}"}`,
        [`${P}backend-type`]: "vxlan",
        [`${P}kube-subnet-manager`]: "true",
        [`${P}public-ip`]: hand.publicIP,
      },
    });
    // The hand-made host reads the flannel-ts Nodes as flannel (Go) does: JSON backend-data.
    for (const n of lab.nodes) {
      const json = (await labKube(lab).getNode(n.name)) as unknown as NodeJson;
      const annotations = json.metadata.annotations ?? {};
      const data = JSON.parse(annotations[`${P}backend-data`] ?? "") as {
        VNI: number;
        VtepMAC: string;
      };
      assert.equal(data.VNI, 1);
      await hand.addPeer({
        subnet: (json.spec.podCIDR ?? "").replace("/24", ""),
        mac: data.VtepMAC,
        publicIP: annotations[`${P}public-ip`] ?? "",
      });
    }
    for (const pod of await listPods(lab)) {
      await eventually(async () => {
        assert.ok((await ping(pod, hand.pod)).ok, `${pod.name} reaches the flannel (Go) host`);
      });
      assert.ok(await handHostReaches(hand, pod), `the flannel (Go) host reaches ${pod.name}`);
    }
  });
});

test("kube mode: a Node's node-public-ip annotation overrides the address flanneld would pick", async () => {
  await withLab("ftkp", { nodes: 2, pods: 1, backend: "vxlan", datastore: "kube" }, async (lab) => {
    const h2 = node(lab, 2);
    await ip(["addr", "add", "10.250.0.112/24", "dev", "eth0"], h2.netns);
    await labKube(lab).annotate("h2", { [`${P}node-public-ip`]: "10.250.0.112" });
    await killFlanneld(h2, "SIGTERM");
    await restartFlanneld(lab, h2);
    await waitFor(
      "h2 to start again",
      async () => (await logOf(h2)).split("Wrote subnet file").length === 3,
      { timeoutMs: 30_000 },
    );
    await eventually(async () => {
      const json = (await labKube(lab).getNode("h2")) as unknown as NodeJson;
      assert.equal(json.metadata.annotations?.[`${P}public-ip`], "10.250.0.112");
    });
    await eventually(async () => {
      const fdb = await execIn(node(lab, 1).netns, "bridge", ["fdb", "show", "dev", "flannel.1"]);
      assert.match(fdb, /dst 10\.250\.0\.112 self permanent/, fdb);
    });
    // h2's device was recreated with the new local address; its entries follow its first sync.
    await eventually(() => assertAllReach(lab));
  });
});
