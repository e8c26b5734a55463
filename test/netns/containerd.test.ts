/**
 * Pods as the kubelet makes them: containerd's CRI plugin (Debian's containerd 1.6, runc) on
 * each lab host networks sandboxes through flannel-ts's plugin and the conflist `flannelctl cni
 * install` writes (flannel, then portmap), and the test plays the kubelet over the CRI.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmod, mkdir, readdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { findNode, killNode, labKube, listPods, restartNode } from "../../lab/cluster.js";
import { labSource } from "../../lab/dashboard.js";
import { flannelctlOn, labTrace } from "../../lab/lab_doctor.js";
import type { Lab, LabNode, LabPod } from "../../lab/cluster.js";
import { startContainerd, stopContainerd } from "../../lab/containerd.js";
import {
  addSandboxPod,
  hostContainerd,
  removeSandboxPod,
  tearDownContainerd,
} from "../../lab/containerd_pods.js";
import { CriCallError, CriClient } from "../../lab/cri_client.js";
import { hostCniConfDir, hostCniPaths, labCniBinDir } from "../../lab/host_cni.js";
import { NETWORK_POLICY_FLAG } from "../../lab/kubelet.js";
import { ping } from "../../lab/lab_check.js";
import { execIn, listNetns } from "../../lab/netns.js";
import { runCapture } from "../../src/util/exec.js";
import {
  assertAllReach,
  eventually,
  subnetOf,
  withLab,
  leasedAddresses,
} from "../helpers/lab_fixture.js";

/** One call of a plugin as the runtime made it: its CNI_* variables and its stdin. */
interface PluginCall {
  readonly plugin: string;
  readonly env: Readonly<Record<string, string>>;
  readonly stdin: Record<string, unknown>;
}

/**
 * Puts a recorder in front of each named plugin of the lab's CNI folder: it writes the call's
 * CNI_* variables and stdin into `recordDir`, then runs the plugin with the same stdin.
 */
async function recordPlugins(lab: Lab, names: readonly string[], recordDir: string): Promise<void> {
  const binDir = labCniBinDir(lab);
  await mkdir(join(binDir, "real"), { recursive: true });
  await mkdir(recordDir, { recursive: true });
  for (const name of names) {
    await rename(join(binDir, name), join(binDir, "real", name));
    const script = `#!/bin/sh
n="${recordDir}/$(date +%s%N)-$$-${name}"
env | grep '^CNI_' > "$n.env"
tee "$n.json" | exec "${join(binDir, "real", name)}"
`;
    await writeFile(join(binDir, name), script);
    await chmod(join(binDir, name), 0o755);
  }
}

/** The calls recorded, oldest first. */
async function recordedCalls(recordDir: string): Promise<PluginCall[]> {
  const files = (await readdir(recordDir)).filter((f) => f.endsWith(".env")).sort();
  return Promise.all(
    files.map(async (file) => {
      const base = file.slice(0, -".env".length);
      const lines = (await readFile(join(recordDir, file), "utf8")).split("\n").filter(Boolean);
      const env = Object.fromEntries(
        lines.map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
      );
      const stdin = JSON.parse(await readFile(join(recordDir, `${base}.json`), "utf8")) as Record<
        string,
        unknown
      >;
      return { plugin: base.slice(base.lastIndexOf("-") + 1), env, stdin };
    }),
  );
}

/** Serves `marker` on a port inside a pod's namespace (one line per connection). */
function serveInPod(pod: LabPod, port: number, marker: string) {
  return spawn(
    "ip",
    ["netns", "exec", pod.netns, "busybox", "nc", "-ll", "-p", String(port), "-e", "echo", marker],
    {
      stdio: "ignore",
    },
  );
}

/** What a TCP client on `netns` reads from address:port ("" when it cannot connect). */
async function readFrom(netns: string, address: string, port: number): Promise<string> {
  const result = await runCapture("ip", [
    "netns",
    "exec",
    netns,
    "busybox",
    "nc",
    "-w",
    "3",
    address,
    String(port),
  ]);
  return result.stdout.trim();
}

/**
 * Asks for sandboxes until containerd refuses one (it rereads its CNI folder when it changes):
 * the refusal. Each sandbox it still makes meanwhile is removed.
 */
async function refusedSandbox(lab: Lab, node: LabNode, tag: string): Promise<CriCallError> {
  let tries = 0;
  return eventually(async () => {
    const err = await addSandboxPod(lab, node, `${tag}${++tries}`).then(
      async (pod) => {
        await removeSandboxPod(lab, node, pod.sandbox ?? "");
        return null;
      },
      (e: unknown) => e,
    );
    assert.ok(err instanceof CriCallError, `RunPodSandbox still succeeds: ${String(err)}`);
    return err;
  });
}

test("containerd's CRI: sandboxes on two hosts through the flannel plugin, hostPort, a containerd restart, 30 at once, and failures in RunPodSandbox's answer", async (t) => {
  await withLab(
    "ftcri",
    { nodes: 2, pods: 0, backend: "vxlan", runtime: "containerd" },
    async (lab) => {
      const [h1, h2] = lab.nodes;
      assert.ok(h1 && h2);
      const recordDir = join(lab.dir, "plugin-calls");
      await recordPlugins(lab, ["flannel", "portmap"], recordDir);
      const web = await addSandboxPod(lab, h1, "web", {
        namespace: "shop",
        uid: "7c1c62a8-6c1d-4e1b-9d5e-1f0e6f1a0001",
        portMappings: [{ protocol: "TCP", containerPort: 80, hostPort: 8080 }],
      });
      const peer = await addSandboxPod(lab, h2, "peer");
      assert.ok(web.sandbox && peer.sandbox);

      await t.test(
        "each sandbox has an address of its host's subnet, and they reach each other",
        async () => {
          assert.ok(
            web.ip.startsWith((await subnetOf(h1)).replace(/0$/, "")),
            `${web.ip} in h1's subnet`,
          );
          assert.ok(
            peer.ip.startsWith((await subnetOf(h2)).replace(/0$/, "")),
            `${peer.ip} in h2's subnet`,
          );
          assert.deepEqual(await leasedAddresses(lab, h1), [web.ip]);
          assert.ok((await ping(web, peer)).ok, "web -> peer");
          assert.ok((await ping(peer, web)).ok, "peer -> web");
        },
      );

      await t.test(
        "the plugin got the kubelet's CNI args from containerd, and portmap the port mappings",
        async () => {
          const calls = await recordedCalls(recordDir);
          const add = calls.find(
            (c) =>
              c.plugin === "flannel" &&
              c.env["CNI_COMMAND"] === "ADD" &&
              c.env["CNI_CONTAINERID"] === web.sandbox,
          );
          assert.ok(
            add,
            `no flannel ADD for ${web.sandbox}: ${JSON.stringify(calls.map((c) => [c.plugin, c.env["CNI_COMMAND"]]))}`,
          );
          const args = new Map(
            (add.env["CNI_ARGS"] ?? "").split(";").map((kv) => kv.split("=") as [string, string]),
          );
          assert.equal(args.get("K8S_POD_NAMESPACE"), "shop");
          assert.equal(args.get("K8S_POD_NAME"), "web");
          assert.equal(args.get("K8S_POD_INFRA_CONTAINER_ID"), web.sandbox);
          assert.equal(args.get("K8S_POD_UID"), "7c1c62a8-6c1d-4e1b-9d5e-1f0e6f1a0001");
          assert.equal(add.env["CNI_NETNS"], `/var/run/netns/${web.netns}`);
          assert.equal(add.env["CNI_IFNAME"], "eth0");
          assert.equal(add.env["CNI_PATH"], labCniBinDir(lab));
          assert.equal(add.stdin["type"], "flannel");
          assert.equal(add.stdin["name"], "cbr0");
          const portmap = calls.find(
            (c) => c.plugin === "portmap" && c.env["CNI_CONTAINERID"] === web.sandbox,
          );
          assert.ok(portmap, "portmap was chained after flannel");
          // containerd 1.6's go-cni sends Go's field names (portmap reads keys without case).
          assert.deepEqual(
            (portmap.stdin["runtimeConfig"] as { portMappings: unknown }).portMappings,
            [{ HostPort: 8080, ContainerPort: 80, Protocol: "tcp", HostIP: "" }],
          );
          // The prevResult portmap got is the flannel plugin's result: the pod's address.
          assert.match(
            JSON.stringify(portmap.stdin["prevResult"]),
            new RegExp(`"${web.ip.replaceAll(".", "\\.")}/24"`),
          );
        },
      );

      await t.test(
        "hostPort: the pod answers on its host's address and port; the mapping goes with the sandbox",
        async () => {
          const server = serveInPod(web, 80, `hello-${lab.name}`);
          try {
            await eventually(async () =>
              assert.equal(await readFrom(h2.netns, h1.address, 8080), `hello-${lab.name}`),
            );
            // The control: a port nobody mapped does not answer.
            assert.equal(await readFrom(h2.netns, h1.address, 8081), "");
            const client = new CriClient(hostContainerd(lab, h1).socket);
            const doomed = await addSandboxPod(lab, h1, "doomed", {
              portMappings: [{ protocol: "TCP", containerPort: 80, hostPort: 9090 }],
            });
            try {
              assert.match(await execIn(h1.netns, "iptables", ["-t", "nat", "-S"]), /--dport 9090/);
              assert.ok(doomed.sandbox);
              await client.stopAndRemove(doomed.sandbox);
              assert.doesNotMatch(
                await execIn(h1.netns, "iptables", ["-t", "nat", "-S"]),
                /--dport 9090/,
              );
              assert.deepEqual(
                await leasedAddresses(lab, h1),
                [web.ip],
                "DEL released doomed's address",
              );
            } finally {
              client.close();
            }
          } finally {
            server.kill("SIGKILL");
          }
        },
      );

      await t.test(
        "containerd restarted: the sandboxes keep their network; one made after works",
        async () => {
          const c = hostContainerd(lab, h1);
          await stopContainerd(c);
          assert.ok((await ping(peer, web)).ok, "peer -> web with containerd down");
          await startContainerd(c);
          const client = new CriClient(c.socket);
          try {
            const listed = await client.listPodSandbox();
            assert.deepEqual(
              listed.filter((s) => s.ready).map((s) => s.id),
              [web.sandbox],
            );
          } finally {
            client.close();
          }
          const after = await addSandboxPod(lab, h1, "after");
          assert.ok((await ping(after, peer)).ok, "after -> peer");
          assert.ok((await ping(web, peer)).ok, "web -> peer after the restart");
          assert.ok(after.sandbox);
          await removeSandboxPod(lab, h1, after.sandbox);
        },
      );

      await t.test(
        "30 sandboxes at once get 30 distinct addresses; 30 stopped at once release them",
        async () => {
          const started = await Promise.all(
            Array.from({ length: 30 }, (_, i) => addSandboxPod(lab, h2, `burst${i}`)),
          );
          const addresses = new Set(started.map((p) => p.ip));
          assert.equal(addresses.size, 30);
          assert.deepEqual(await leasedAddresses(lab, h2), [...addresses, peer.ip].sort());
          await Promise.all(started.map((p) => removeSandboxPod(lab, h2, p.sandbox ?? "")));
          assert.deepEqual(await leasedAddresses(lab, h2), [peer.ip]);
        },
      );

      await t.test(
        "the plugin failing: RunPodSandbox fails with the plugin's error text, never hangs",
        async () => {
          const conflist = join(hostCniConfDir(lab, h1), "10-flannel.conflist");
          const good = await readFile(conflist, "utf8");
          const missing = join(lab.dir, "h1", "no-such-subnet.env");
          try {
            await writeFile(conflist, good.replace(hostCniPaths(lab, h1).subnetFile, missing));
            // containerd rereads the folder when it changes; ask until it uses the new conflist.
            const failure = await refusedSandbox(lab, h1, "bad");
            assert.match(
              failure.details,
              new RegExp(
                `failed to load flannel 'subnet.env' file: ${missing.replaceAll(".", "\\.")} does not exist yet`,
              ),
            );
          } finally {
            await writeFile(conflist, good);
          }
          assert.deepEqual(await leasedAddresses(lab, h1), [web.ip], "no address leaked");
        },
      );

      await t.test(
        "the CNI config missing: RunPodSandbox fails with containerd's reason",
        async () => {
          const conflist = join(hostCniConfDir(lab, h1), "10-flannel.conflist");
          const aside = `${conflist}.aside`;
          await rename(conflist, aside);
          try {
            const failure = await refusedSandbox(lab, h1, "nocfg");
            assert.match(failure.details, /cni plugin not initialized|no network config found/);
          } finally {
            await rename(aside, conflist);
          }
          // Back again: a sandbox works once containerd has reread the folder.
          const again = await eventually(() => addSandboxPod(lab, h1, "again"));
          assert.ok((await ping(again, peer)).ok, "a sandbox after the conflist came back");
        },
      );

      await t.test(
        "containerd killed: the lab's teardown still ends its shims, sandboxes and their namespaces",
        async () => {
          const c = hostContainerd(lab, h2);
          await stopContainerd(c, "SIGKILL");
          const shimsOf = async () =>
            (
              await runCapture("pgrep", ["-f", `containerd-shim.*-address ${c.socket}`])
            ).stdout.trim();
          assert.notEqual(await shimsOf(), "", "the sandbox's shim outlives containerd");
          assert.ok((await listNetns("cni-")).includes(peer.netns));
          const before = await readFile("/proc/self/mountinfo", "utf8");
          assert.ok(before.includes(c.dir), "the sandbox's shm and rootfs are mounted");
          await tearDownContainerd(lab);
          assert.equal(await shimsOf(), "");
          assert.ok(!(await listNetns("cni-")).includes(peer.netns), `${peer.netns} is gone`);
          const mounts = await readFile("/proc/self/mountinfo", "utf8");
          assert.ok(!mounts.includes(c.dir), `nothing is mounted under ${c.dir} any more`);
        },
      );
    },
  );
});

test("lab up --runtime containerd --kube: its pods are CRI sandboxes, their Pod objects carry the addresses PodSandboxStatus reports, and they reach each other", async () => {
  await withLab(
    "ftcrl",
    {
      nodes: 2,
      pods: 2,
      backend: "host-gw",
      runtime: "containerd",
      datastore: "kube",
      flanneldArgs: ["--ip-masq", NETWORK_POLICY_FLAG],
    },
    async (lab) => {
      const pods = await listPods(lab);
      assert.equal(pods.length, 4);
      const objects = (await labKube(lab).list("/api/v1/namespaces/default/pods")) as unknown as {
        metadata: { name: string };
        status?: { podIP?: string };
      }[];
      for (const pod of pods) {
        assert.match(pod.sandbox ?? "", /^[0-9a-f]{64}$/);
        const client = new CriClient(hostContainerd(lab, findNode(lab, pod.node)).socket);
        try {
          const status = await client.podSandboxStatus(pod.sandbox ?? "");
          const object = objects.find(
            (o) => (o["metadata"] as { name?: string }).name === pod.name,
          );
          assert.ok(object, `a Pod object for ${pod.name}`);
          assert.equal(object.status?.podIP, status.ips[0]);
          assert.equal(pod.ip, status.ips[0]);
        } finally {
          client.close();
        }
      }
      await assertAllReach(lab);
      // trace reads every hop between two sandboxes; doctor finds a healthy host.
      const halves = await labTrace(lab, "h1p1", "h2p1");
      const bad = halves.flatMap((h) =>
        h.hops.filter((hop) => hop.state !== "ok" && hop.state !== "info"),
      );
      assert.deepEqual(bad, [], JSON.stringify(halves));
      assert.equal(halves.length, 2);
      const [h1] = lab.nodes;
      assert.ok(h1);
      const doctor = await flannelctlOn(lab, h1, ["doctor"]);
      assert.equal(doctor.code, 0, doctor.stdout + doctor.stderr);
      // The dashboard's source: every host's pods in its status, every pair measured as allowed.
      const dashboard = labSource(lab.name);
      const status = await dashboard.status();
      assert.deepEqual(
        status.nodes.map((n) => n.pods.length),
        [2, 2],
      );
      const measured = await dashboard.measure();
      assert.equal(measured.results.length, 12);
      assert.deepEqual(
        measured.results.filter((r) => !r.ok),
        [],
      );
      // kill-node and restart-node: the sandboxes live through flanneld's crash and come back.
      await killNode(h1);
      await restartNode(lab, h1);
      await eventually(() => assertAllReach(lab), { timeoutMs: 30_000 });
    },
  );
});
