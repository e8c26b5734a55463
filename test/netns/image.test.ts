/**
 * flannel-ts's image (`npm run image`): built here with podman from a debootstrap root and the
 * self-contained executable; no Node.js in it; flanneld runs from it as the DaemonSet's pod
 * runs (the host's network namespace, NET_ADMIN and NET_RAW, /run/flannel mounted), and its
 * install step puts the CNI plugin and conflist on the host, which then wire a pod.
 */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { REPO_ROOT } from "../../lab/cluster.js";
import { runDrill } from "../../lab/drills.js";
import { addNetns, deleteNetns, execIn, ip, run, uniquePrefix } from "../../lab/netns.js";
import { daemonSetPodRun, flannelImage, runPodman, writeContainersConf } from "../../lab/podman.js";
import type { PodmanConfig } from "../../lab/podman.js";
import { eventually } from "../../lab/poll.js";
import { assertAllReach, subnetOf, withLab } from "../helpers/lab_fixture.js";
import { cniAdd } from "../helpers/cni_add.js";
import { openSingleHost } from "../helpers/single_host.js";

let image = "";
let scratch = "";
let config: PodmanConfig = { containersConf: "", storageConf: "" };

before(async () => {
  scratch = await mkdtemp(join(tmpdir(), "ftimg-"));
  [image = ""] = (await run(process.execPath, [join(REPO_ROOT, "scripts/image.mjs")]))
    .trim()
    .split("\n");
  await writeContainersConf(join(scratch, "containers.conf"), { tmpDir: join(scratch, "tmp") });
  // The store npm run image put the image in.
  config = {
    containersConf: join(scratch, "containers.conf"),
    storageConf: flannelImage().storageConf,
  };
});

after(async () => {
  if (scratch !== "") await rm(scratch, { recursive: true, force: true });
});

/** podman in a namespace (or the root one), with the test's configuration. */
const podman = (netns: string | null, args: readonly string[]) => runPodman(config, netns, args);

test("the image: flanneld as entrypoint, iptables, nft and ip in it, no Node.js on PATH (flannel-ts has its own); an OCI archive beside it", async () => {
  assert.match(image, /^localhost\/flannel-ts:\d+\.\d+\.\d+$/);
  // --network none: no container network (and no bridge) in this machine's own namespace.
  const version = await podman(null, ["run", "--rm", "--network", "none", image, "--version"]);
  assert.equal(version.code, 0, version.stderr);
  assert.match(version.stderr, /^v\d+\.\d+\.\d+-flannel-ts/);
  const tools = await podman(null, [
    "run",
    "--rm",
    "--network",
    "none",
    "--entrypoint",
    "/bin/sh",
    image,
    "-c",
    "for t in iptables nft ip wg wireguard-go; do command -v $t; done; command -v node || echo no-node",
  ]);
  assert.equal(tools.code, 0, tools.stderr);
  assert.deepEqual(tools.stdout.trim().split("\n"), [
    "/usr/sbin/iptables",
    "/usr/sbin/nft",
    "/usr/sbin/ip",
    "/usr/bin/wg",
    "/usr/bin/wireguard-go",
    "no-node",
  ]);
  const archive = (
    await readFile(join(REPO_ROOT, "dist/image", `flannel-ts_${image.split(":")[1] ?? ""}.oci.tar`))
  ).length;
  assert.ok(archive > 0);
});

test("flanneld from the image runs a host as the DaemonSet's pod does, and its install step's plugin wires a pod", async () => {
  const host = await openSingleHost("ftimh");
  const pod = uniquePrefix("ftimp");
  const name = `${host.netns}-flanneld`;
  try {
    await host.etcdctl([
      "put",
      "/coreos.com/network/config",
      '{"Network":"10.244.0.0/16","Backend":{"Type":"host-gw"}}',
    ]);
    const run = join(host.dir, "run-flannel");
    const cniBin = join(host.dir, "cni-bin");
    const cniConf = join(host.dir, "cni-conf");
    for (const d of [run, cniBin, cniConf]) await mkdir(d, { recursive: true });
    // The init container: the plugin and flannel's conflist onto the host.
    const install = await podman(host.netns, [
      "run",
      "--rm",
      "--network",
      "host",
      "-v",
      `${cniBin}:/opt/cni/bin`,
      "-v",
      `${cniConf}:/etc/cni/net.d`,
      "--entrypoint",
      "/opt/flannel-ts/bin/flannelctl",
      image,
      "cni",
      "install",
    ]);
    assert.equal(install.code, 0, install.stderr);
    assert.match(await readFile(join(cniConf, "10-flannel.conflist"), "utf8"), /"type": "flannel"/);
    // The plugin: a launcher, and the image's Node and the plugin's bundle in a folder beside it.
    assert.match(await readFile(join(cniBin, "flannel"), "utf8"), /^#!\/bin\/sh\n/);
    assert.deepEqual((await readdir(join(cniBin, "flannel-ts"))).sort(), ["flannel.cjs", "node"]);
    // flanneld: the host's network namespace, NET_ADMIN and NET_RAW, /run/flannel mounted.
    const started = await podman(host.netns, [
      ...daemonSetPodRun(name, [`${run}:/run/flannel`]),
      image,
      `--etcd-endpoints=${host.etcd.endpoint}`,
      "--iface=veth0",
      "--ip-masq",
    ]);
    assert.equal(started.code, 0, started.stderr);
    const subnetEnv = await eventually(() => readFile(join(run, "subnet.env"), "utf8"), {
      timeoutMs: 30_000,
    });
    const subnet = /FLANNEL_SUBNET=(10\.244\.\d+)\.1\/24/.exec(subnetEnv)?.[1];
    assert.ok(subnet !== undefined, subnetEnv);
    // The container's flanneld is the image's Node, started from etcd mode's snapshot.
    const pid = await podman(host.netns, ["inspect", "--format", "{{.State.Pid}}", name]);
    const cmdline = (await readFile(`/proc/${pid.stdout.trim()}/cmdline`, "utf8")).split("\0");
    assert.equal(cmdline[0], "/opt/flannel-ts/bin/../../../usr/lib/flannel-ts/node");
    assert.ok(
      cmdline.includes(
        "--snapshot-blob=/opt/flannel-ts/bin/../../../usr/lib/flannel-ts/flanneld.blob",
      ),
      cmdline.join(" "),
    );
    // Its masquerade rules are in the host's namespace.
    assert.match(await execIn(host.netns, "iptables-save", ["-t", "nat"]), /-A FLANNEL-POSTRTG/);
    // The plugin the install step put on the host wires a pod from that subnet.env.
    await addNetns(pod);
    const add = await cniAdd({
      plugin: join(cniBin, "flannel"),
      hostNetns: host.netns,
      podNetns: pod,
      containerId: "ftimg1",
      subnetFile: join(run, "subnet.env"),
      stateDir: host.dir,
    });
    assert.equal(add.code, 0, add.stdout + add.stderr);
    assert.match(add.stdout, new RegExp(`"address": ?"${subnet.replace(/\./g, "\\.")}\\.\\d+/24"`));
    await execIn(pod, "ping", ["-c", "1", "-W", "2", `${subnet}.1`]);
  } finally {
    await podman(host.netns, ["rm", "-f", "-t", "0", name]);
    await deleteNetns(pod);
    await host.cleanup();
  }
});

test("three hosts with flanneld in containers and pods in containers: every pod reaches every other; a flanneld container killed and restarted keeps its subnet and MAC, and no ping is lost", async (t) => {
  await withLab(
    "ftimlab",
    { nodes: 3, pods: 1, backend: "vxlan", runtime: "podman", flanneldInContainer: true },
    async (lab) => {
      const [h1] = lab.nodes;
      assert.ok(h1);
      await assertAllReach(lab);
      const identity = async () => ({
        subnet: await subnetOf(h1),
        mac: /link\/ether ([0-9a-f:]+)/.exec(
          await ip(["link", "show", "flannel.1"], h1.netns),
        )?.[1],
      });
      const before = await identity();
      const result = await runDrill(lab, "kill-flanneld", { node: h1, times: 1 });
      t.diagnostic(
        `flanneld container killed and restarted: ${result.pings.sent} pings sent, ${result.pings.lost} lost`,
      );
      assert.equal(result.pings.lost, 0);
      assert.ok(result.pings.sent > 0);
      assert.deepEqual(await identity(), before);
      await assertAllReach(lab);
    },
  );
  const left = await podman(null, ["ps", "-a", "--format", "{{.Names}}"]);
  assert.doesNotMatch(left.stdout, /ftimlab/, "lab down removed the flanneld containers");
});
