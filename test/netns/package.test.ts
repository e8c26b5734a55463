/**
 * The .deb (`npm run package`): built here with Debian's dpkg-deb, its contents listed, unpacked
 * into an empty folder and run from there with no Node.js on PATH: flanneld runs a host in a
 * namespace against etcd, and the CNI plugin wires a pod; its unit passes systemd-analyze; and
 * dpkg installs and removes it (into a scratch root) leaving only its configuration files.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { before, after, test } from "node:test";
import { REPO_ROOT } from "../../lab/cluster.js";
import { addNetns, deleteNetns, execIn, run, uniquePrefix } from "../../lab/netns.js";
import { runCapture } from "../../src/util/exec.js";
import { eventually } from "../../lab/poll.js";
import { cniAdd } from "../helpers/cni_add.js";
import { openSingleHost } from "../helpers/single_host.js";

/** A PATH with the system's tools (ip, iptables, nft) and no Node.js. */
const NO_NODE_PATH = "/usr/sbin:/sbin";

let deb = "";
let unpacked = "";
/** The package's files (not folders), from its listing. */
let packagedFiles = 0;
let scratch = "";

before(async () => {
  scratch = await mkdtemp(join(tmpdir(), "ftpkg-"));
  deb = (await run(process.execPath, [join(REPO_ROOT, "scripts/package.mjs")])).trim();
  unpacked = join(scratch, "unpacked");
  await mkdir(unpacked);
  await run("dpkg-deb", ["-x", deb, unpacked]);
});

after(async () => {
  if (scratch !== "") await rm(scratch, { recursive: true, force: true });
});

test("the package holds its Node, flanneld's snapshots, the bundles and addons, the launchers, the unit, the defaults file and the conflist, and nothing else", async () => {
  assert.match(deb, /\/flannel-ts_\d+\.\d+\.\d+_[a-z0-9]+\.deb$/);
  const listing = await run("dpkg-deb", ["-c", deb]);
  const entries = listing
    .trim()
    .split("\n")
    .map((line) => {
      const [mode = "", owner = "", , , , ...rest] = line.split(/\s+/);
      return `${mode} ${owner} ${rest.join(" ").replace(/^\.\//, "/")}`;
    })
    .filter((e) => !e.startsWith("d"));
  // flanneld's and flannelctl's bundle: their entries, chunks of hashed names, and the
  // package.json that says its .js files are ES modules.
  const bundle = "-rw-r--r-- root/root /usr/lib/flannel-ts/bundle/";
  const chunks = entries.filter((e) => e.startsWith(bundle));
  for (const name of ["flanneld.js", "flannelctl.js", "package.json"])
    assert.ok(chunks.includes(`${bundle}${name}`), name);
  for (const chunk of chunks)
    assert.match(chunk.slice(bundle.length), /^[\w-]+\.js$|^package\.json$/);
  assert.deepEqual(entries.filter((e) => !e.startsWith(bundle)).sort(), [
    "-rw-r--r-- root/root /etc/cni/net.d/10-flannel.conflist",
    "-rw-r--r-- root/root /etc/default/flanneld",
    "-rw-r--r-- root/root /usr/lib/flannel-ts/flannel.cjs",
    "-rw-r--r-- root/root /usr/lib/flannel-ts/flanneld-kube.blob",
    "-rw-r--r-- root/root /usr/lib/flannel-ts/flanneld.blob",
    "-rw-r--r-- root/root /usr/lib/flannel-ts/kernel_sockets.node",
    "-rw-r--r-- root/root /usr/lib/flannel-ts/udp_forwarder.node",
    "-rw-r--r-- root/root /usr/lib/systemd/system/flanneld.service",
    "-rwxr-xr-x root/root /opt/cni/bin/flannel",
    "-rwxr-xr-x root/root /usr/bin/flannelctl",
    "-rwxr-xr-x root/root /usr/bin/flanneld",
    "-rwxr-xr-x root/root /usr/lib/flannel-ts/node",
  ]);
  packagedFiles = entries.length;
  // No lab code ships: two of the lab's class names (kept by the minifier) are in the
  // repository's bundle, and not in the package's.
  const labClass = /"(CriClient|PingLoad)"/;
  const hasLab = async (dir: string) => {
    for (const name of await readdir(dir))
      if (name.endsWith(".js") && labClass.test(await readFile(join(dir, name), "utf8")))
        return true;
    return false;
  };
  assert.equal(await hasLab(join(REPO_ROOT, "dist/bundle")), true);
  assert.equal(await hasLab(join(unpacked, "usr/lib/flannel-ts/bundle")), false);
  const control = await run("dpkg-deb", ["-f", deb, "Package", "Depends"]);
  assert.equal(control, "Package: flannel-ts\nDepends: iptables\n");
  const unit = await readFile(join(unpacked, "usr/lib/systemd/system/flanneld.service"), "utf8");
  assert.match(unit, /^Type=notify$/m);
  assert.match(unit, /^Restart=always$/m);
  assert.match(unit, /^EnvironmentFile=-\/etc\/default\/flanneld$/m);
  const defaults = await readFile(join(unpacked, "etc/default/flanneld"), "utf8");
  for (const variable of [
    "FLANNELD_ETCD_ENDPOINTS",
    "FLANNELD_IFACE",
    "FLANNELD_KUBE_SUBNET_MGR",
    "FLANNELD_IP_MASQ",
  ])
    assert.match(defaults, new RegExp(`^#${variable}=`, "m"));
});

test("systemd-analyze verify accepts the unit", async (t) => {
  if ((await runCapture("sh", ["-c", "command -v systemd-analyze"])).code !== 0) {
    t.skip("systemd-analyze is not on this machine");
    return;
  }
  // The unit as installed names /usr/bin/flanneld; here it names the unpacked one.
  const unit = (
    await readFile(join(unpacked, "usr/lib/systemd/system/flanneld.service"), "utf8")
  ).replace("ExecStart=/usr/bin/flanneld", `ExecStart=${join(unpacked, "usr/bin/flanneld")}`);
  const dir = join(scratch, "unit");
  await mkdir(dir);
  await writeFile(join(dir, "flanneld.service"), unit);
  const verify = await runCapture("systemd-analyze", ["verify", join(dir, "flanneld.service")]);
  assert.equal(verify.code, 0, verify.stderr);
  assert.equal(verify.stderr.trim(), "");
});

test("unpacked, with no Node.js on PATH: flannelctl runs, flanneld runs a host against etcd from its snapshot and writes subnet.env, and the CNI plugin wires a pod", async () => {
  const noNode = await runCapture("/bin/sh", ["-c", "command -v node"], {
    env: { PATH: NO_NODE_PATH },
  });
  assert.notEqual(noNode.code, 0, "node is not on the PATH the executables run with");
  // flannelctl runs from the package's own Node and bundle.
  const version = await runCapture(join(unpacked, "usr/bin/flannelctl"), ["--version"], {
    env: { PATH: NO_NODE_PATH },
  });
  assert.equal(version.code, 0, version.stderr);
  assert.match(version.stdout + version.stderr, /^v\d+\.\d+\.\d+-flannel-ts$/m);
  const host = await openSingleHost("ftpkgh");
  const pod = uniquePrefix("ftpkgp");
  try {
    await host.etcdctl([
      "put",
      "/coreos.com/network/config",
      '{"Network":"10.244.0.0/16","Backend":{"Type":"host-gw"}}',
    ]);
    const subnetFile = join(host.dir, "subnet.env");
    const flanneld = join(unpacked, "usr/bin/flanneld");
    const daemon = host.flanneld(
      [`--etcd-endpoints=${host.etcd.endpoint}`, "--iface=veth0", `--subnet-file=${subnetFile}`],
      { PATH: NO_NODE_PATH },
      flanneld,
    );
    try {
      const env = await eventually(() => readFile(subnetFile, "utf8"), { timeoutMs: 30_000 });
      assert.match(
        env,
        /^FLANNEL_NETWORK=10\.244\.0\.0\/16\nFLANNEL_SUBNET=10\.244\.\d+\.1\/24\n/,
        daemon.output(),
      );
      const subnet = /FLANNEL_SUBNET=(10\.244\.\d+)\.1\/24/.exec(env)?.[1];
      // The package's own Node runs it, from etcd mode's snapshot.
      // (ip netns exec and the launcher each exec the next: the child's pid is Node's.)
      const cmdline = await readFile(`/proc/${daemon.child.pid}/cmdline`, "utf8");
      const lib = `${unpacked}/usr/bin/../lib/flannel-ts`;
      assert.deepEqual(cmdline.split("\0").slice(0, 5), [
        `${lib}/node`,
        "--max-semi-space-size=4",
        "--optimize-for-size",
        "--interrupt-budget=540672",
        `--snapshot-blob=${lib}/flanneld.blob`,
      ]);
      // The CNI plugin (the launcher in /opt/cni/bin, on the same Node) wires a pod.
      await addNetns(pod);
      const plugin = join(unpacked, "opt/cni/bin/flannel");
      const add = await cniAdd({
        plugin,
        hostNetns: host.netns,
        podNetns: pod,
        containerId: "ftpkg1",
        subnetFile,
        stateDir: host.dir,
      });
      assert.equal(add.code, 0, add.stdout + add.stderr);
      const ip = (JSON.parse(add.stdout) as { ips: { address: string }[] }).ips[0]?.address;
      assert.match(ip ?? "", new RegExp(`^${subnet?.replace(/\./g, "\\.")}\\.\\d+/24$`));
      assert.match(
        await execIn(pod, "ip", ["-4", "addr", "show", "eth0"]),
        new RegExp(`inet ${ip}`),
      );
      // The pod reaches its gateway on the host's bridge.
      await execIn(pod, "ping", ["-c", "1", "-W", "2", `${subnet}.1`]);
    } finally {
      daemon.child.kill("SIGTERM");
    }
  } finally {
    await deleteNetns(pod);
    await host.cleanup();
  }
});

test("dpkg installs the package (into a scratch root) and removes it, leaving only its configuration files", async () => {
  const root = join(scratch, "root");
  for (const d of ["info", "updates", "triggers"])
    await mkdir(join(root, "var/lib/dpkg", d), { recursive: true });
  await writeFile(join(root, "var/lib/dpkg/status"), "");
  const dpkg = (args: string[]) =>
    run("dpkg", [`--root=${root}`, "--force-script-chrootless", "--log=/dev/null", ...args]);
  const files = async (): Promise<string[]> => {
    const out: string[] = [];
    const walk = async (dir: string) => {
      for (const entry of await readdir(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (relative(root, path).startsWith("var")) continue;
        if (entry.isDirectory()) await walk(path);
        else out.push(`/${relative(root, path)}`);
      }
    };
    await walk(root);
    return out.sort();
  };
  // iptables is a dependency the scratch root's package database does not have.
  await dpkg(["--force-depends", "-i", deb]);
  assert.ok(existsSync(join(root, "usr/lib/flannel-ts/node")));
  assert.ok(packagedFiles > 0);
  assert.equal((await files()).length, packagedFiles);
  await dpkg(["-r", "flannel-ts"]);
  assert.deepEqual(await files(), ["/etc/cni/net.d/10-flannel.conflist", "/etc/default/flanneld"]);
  await dpkg(["--purge", "flannel-ts"]);
  assert.deepEqual(await files(), []);
});
