/**
 * The CNI plugin as a container runtime runs it: the single executable the build makes
 * (dist/sea/flannel), copied alone into an empty folder, with the CNI variables and a PATH.
 */
import assert from "node:assert/strict";
import { copyFile, mkdtemp, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { existsSync } from "node:fs";
import { after, before, test } from "node:test";
import { addNetns, deleteNetns, execIn, ip, uniquePrefix } from "../../lab/netns.js";
import { REPO_ROOT } from "../helpers/single_host.js";
import { runCapture } from "../../src/util/exec.js";

const CNI_PATH = "/usr/lib/cni";
const IP =
  ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].find((p) => existsSync(p)) ?? "ip";
const RUNTIME_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** The plugin: the single executable, alone in a folder of its own (set up before the tests). */
let PLUGIN = "";
let pluginDir = "";
before(async () => {
  pluginDir = await mkdtemp(join(tmpdir(), "flannel-ts-cni-bin-"));
  PLUGIN = join(pluginDir, "flannel");
  await copyFile(join(REPO_ROOT, "dist/sea/flannel"), PLUGIN);
  const { run } = await import("../../lab/netns.js");
  await run("chmod", ["755", PLUGIN]);
});
after(async () => {
  if (pluginDir !== "") await rm(pluginDir, { recursive: true, force: true });
});

interface CniCall {
  readonly code: number | null;
  readonly stdout: string;
  readonly json: Record<string, unknown>;
}

/** A host namespace (where the plugin runs) and pod namespaces, with a subnet.env. */
interface CniHost {
  readonly host: string;
  readonly dir: string;
  readonly dataDir: string;
  readonly ipamDir: string;
  readonly subnetFile: string;
  pod(name: string): Promise<string>;
  call(
    plugin: string,
    command: string,
    conf: unknown,
    env: Record<string, string>,
  ): Promise<CniCall>;
  cleanup(): Promise<void>;
}

async function openCniHost(tag: string): Promise<CniHost> {
  const prefix = uniquePrefix(tag);
  const host = `${prefix}-host`;
  const dir = await mkdtemp(join(tmpdir(), `${prefix}-`));
  const pods: string[] = [];
  await addNetns(host);
  const subnetFile = join(dir, "subnet.env");
  await writeFile(
    subnetFile,
    "FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=true\n",
  );
  return {
    host,
    dir,
    dataDir: join(dir, "flannel"),
    ipamDir: join(dir, "ipam"),
    subnetFile,
    async pod(name) {
      const netns = `${prefix}-${name}`;
      pods.push(netns);
      await addNetns(netns);
      return netns;
    },
    async call(plugin, command, conf, env) {
      // ip by its path: the call's PATH is the plugin's, which may hold nothing at all.
      const { code, stdout } = await runCapture(IP, ["netns", "exec", host, plugin], {
        input: typeof conf === "string" ? conf : JSON.stringify(conf),
        env: {
          PATH: RUNTIME_PATH,
          CNI_COMMAND: command,
          CNI_PATH,
          ...env,
        },
      });
      let json: Record<string, unknown> = {};
      try {
        json = stdout.trim() === "" ? {} : (JSON.parse(stdout) as Record<string, unknown>);
      } catch {
        json = { unparsable: stdout };
      }
      return { code, stdout, json };
    },
    async cleanup() {
      for (const netns of [...pods, host]) await deleteNetns(netns);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function flannelConf(h: CniHost, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    cniVersion: "0.3.1",
    name: "cni-flannel",
    type: "flannel",
    subnetFile: h.subnetFile,
    dataDir: h.dataDir,
    ipam: { dataDir: h.ipamDir },
    ...extra,
  };
}

const podEnv = (id: string, netns: string) => ({
  CNI_CONTAINERID: id,
  CNI_NETNS: `/var/run/netns/${netns}`,
  CNI_IFNAME: "eth0",
});

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

test("flannel ADD wires a pod through bridge and host-local; the saved config is flannel's; DEL frees the address", async () => {
  const h = await openCniHost("ftca");
  try {
    const p1 = await h.pod("p1");
    const p2 = await h.pod("p2");
    const add1 = await h.call(PLUGIN, "ADD", flannelConf(h), podEnv("pod-one", p1));
    assert.equal(add1.code, 0, add1.stdout);
    const ips = add1.json.ips as { address: string; gateway: string }[];
    assert.match(ips[0]!.address, /^10\.1\.17\.\d+\/24$/);
    assert.equal(ips[0]!.gateway, "10.1.17.1");
    assert.match(await ip(["route", "show"], p1), /10\.1\.0\.0\/16 via 10\.1\.17\.1 dev eth0/);
    assert.match(await ip(["link", "show", "eth0"], p1), /mtu 1472/);

    const saved = await readFile(join(h.dataDir, "pod-one"), "utf8");
    assert.equal(
      saved,
      `{"cniVersion":"0.3.1","ipMasq":false,"ipam":{"dataDir":${JSON.stringify(h.ipamDir)},"ranges":[[{"subnet":"10.1.17.0/24"}]],"routes":[{"dst":"10.1.0.0/16"}],"type":"host-local"},"isGateway":true,"mtu":1472,"name":"cni-flannel","type":"bridge"}`,
    );
    assert.equal((await stat(join(h.dataDir, "pod-one"))).mode & 0o777, 0o600);
    assert.equal((await stat(h.dataDir)).mode & 0o777, 0o700);

    const add2 = await h.call(PLUGIN, "ADD", flannelConf(h), podEnv("pod-two", p2));
    assert.equal(add2.code, 0, add2.stdout);
    const ip2 = (add2.json.ips as { address: string }[])[0]!.address.split("/")[0]!;
    await execIn(p1, "ping", ["-c", "1", "-W", "2", ip2]);

    const check = await h.call(
      PLUGIN,
      "CHECK",
      { ...flannelConf(h, { cniVersion: "0.4.0" }), prevResult: add1.json },
      podEnv("pod-one", p1),
    );
    assert.equal(check.code, 0, check.stdout);

    const ip1 = ips[0]!.address.split("/")[0]!;
    const lease = join(h.ipamDir, "cni-flannel", ip1);
    assert.ok(await exists(lease), "host-local holds the address");
    const del = await h.call(PLUGIN, "DEL", flannelConf(h), podEnv("pod-one", p1));
    assert.equal(del.code, 0, del.stdout);
    assert.ok(!(await exists(lease)), "DEL frees the address in host-local");
    assert.ok(!(await exists(join(h.dataDir, "pod-one"))), "DEL removes the saved config");
    const again = await h.call(PLUGIN, "DEL", flannelConf(h), podEnv("pod-one", p1));
    assert.equal(again.code, 0, "a second DEL succeeds");
  } finally {
    await h.cleanup();
  }
});

test("flannel CHECK fails clearly when the saved state or the interface is missing", async () => {
  const h = await openCniHost("ftcc");
  try {
    const p1 = await h.pod("p1");
    const none = await h.call(
      PLUGIN,
      "CHECK",
      flannelConf(h, { cniVersion: "0.4.0" }),
      podEnv("never-added", p1),
    );
    assert.equal(none.code, 1);
    assert.equal(none.json.code, 3);
    assert.match(none.json.msg as string, /no saved state for container "never-added"/);

    const add = await h.call(
      PLUGIN,
      "ADD",
      flannelConf(h, { cniVersion: "0.4.0" }),
      podEnv("pod-c", p1),
    );
    assert.equal(add.code, 0, add.stdout);
    await ip(["link", "del", "eth0"], p1);
    const gone = await h.call(
      PLUGIN,
      "CHECK",
      { ...flannelConf(h, { cniVersion: "0.4.0" }), prevResult: add.json },
      podEnv("pod-c", p1),
    );
    assert.equal(gone.code, 1);
    assert.match(gone.json.msg as string, /interface "eth0" is missing/);
  } finally {
    await h.cleanup();
  }
});

test("flannel DEL keeps the saved config when the delegate's DEL fails, so a retry can finish", async () => {
  const h = await openCniHost("ftcd");
  try {
    const p1 = await h.pod("p1");
    const add = await h.call(PLUGIN, "ADD", flannelConf(h), podEnv("pod-d", p1));
    assert.equal(add.code, 0, add.stdout);
    // A CNI_PATH without the delegate makes its DEL fail.
    const failed = await h.call(PLUGIN, "DEL", flannelConf(h), {
      ...podEnv("pod-d", p1),
      CNI_PATH: h.dir,
    });
    assert.equal(failed.code, 1);
    assert.ok(await exists(join(h.dataDir, "pod-d")), "the saved config is kept");
    const retried = await h.call(PLUGIN, "DEL", flannelConf(h), podEnv("pod-d", p1));
    assert.equal(retried.code, 0, retried.stdout);
    assert.ok(!(await exists(join(h.dataDir, "pod-d"))));
  } finally {
    await h.cleanup();
  }
});

const errorCases: {
  name: string;
  stdin?: string;
  conf?: Record<string, unknown>;
  subnetEnv?: string;
  env: Record<string, string>;
  code: number;
  msg: RegExp;
}[] = [
  { name: "bad stdin", stdin: "{not json", env: {}, code: 6, msg: /not valid JSON/ },
  {
    name: "a config without name",
    conf: { name: "" },
    env: {},
    code: 7,
    msg: /"name" is missing: the network config needs the network's name, such as "cbr0"/,
  },
  {
    name: "an ipam.routes entry without dst",
    conf: { ipam: { routes: [{ gw: "10.1.0.1" }] } },
    env: {},
    code: 7,
    msg: /ipam\.routes\[0\] has no "dst"/,
  },
  {
    name: "FLANNEL_IPMASQ that is neither true nor false",
    subnetEnv:
      "FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=yes\n",
    env: {},
    code: 7,
    msg: /has FLANNEL_IPMASQ="yes", expected true or false/,
  },
  {
    name: "a delegate with name",
    conf: { delegate: { name: "x" } },
    env: {},
    code: 7,
    msg: /'delegate' dictionary must not have 'name' field, it'll be set by flannel/,
  },
  {
    name: "a delegate with ipam",
    conf: { delegate: { ipam: {} } },
    env: {},
    code: 7,
    msg: /'delegate' dictionary must not have 'ipam' field, it'll be set by flannel/,
  },
  {
    name: "a delegate type that is not a string",
    conf: { delegate: { type: 5 } },
    env: {},
    code: 7,
    msg: /must have \(string\) 'type' field/,
  },
  {
    name: "a missing subnet.env",
    conf: { subnetFile: "/nonexistent/subnet.env" },
    env: {},
    code: 11,
    msg: /\/nonexistent\/subnet.env does not exist yet. Check that flanneld runs on this host/,
  },
  {
    name: "missing env vars",
    conf: {},
    env: { CNI_NETNS: "" },
    code: 4,
    msg: /required env variables \[CNI_NETNS\] missing/,
  },
  {
    name: "an unsupported cniVersion",
    conf: { cniVersion: "9.9.9" },
    env: {},
    code: 1,
    msg: /incompatible CNI versions/,
  },
  {
    name: "a container ID with a slash",
    conf: {},
    env: { CNI_CONTAINERID: "../escape" },
    code: 4,
    msg: /CNI_CONTAINERID "..\/escape" is invalid/,
  },
];

for (const tc of errorCases) {
  test(`flannel ADD answers ${tc.name} with CNI error ${tc.code} and changes nothing on the host`, async () => {
    const h = await openCniHost("ftce");
    try {
      const p1 = await h.pod("p1");
      if (tc.subnetEnv !== undefined) await writeFile(h.subnetFile, tc.subnetEnv);
      const stdin = tc.stdin ?? JSON.stringify(flannelConf(h, tc.conf));
      const result = await h.call(PLUGIN, "ADD", stdin, { ...podEnv("pod-e", p1), ...tc.env });
      assert.equal(result.code, 1);
      assert.equal(result.json.code, tc.code, result.stdout);
      assert.match(result.json.msg as string, tc.msg);
      assert.equal(typeof result.json.cniVersion, "string");
      assert.doesNotMatch(await ip(["link", "show"], h.host), /cni0/, "no bridge");
      assert.doesNotMatch(await ip(["link", "show"], p1), /eth0/, "no pod interface");
      assert.deepEqual(await readdir(h.dir), ["subnet.env"], "no state written");
    } finally {
      await h.cleanup();
    }
  });
}

test("flannel VERSION lists every CNI version flannel's plugin speaks, 0.1.0 to 1.1.0", async () => {
  const h = await openCniHost("ftcv");
  try {
    const version = await h.call(PLUGIN, "VERSION", { cniVersion: "1.0.0" }, {});
    assert.deepEqual(version.json, {
      cniVersion: "1.0.0",
      supportedVersions: ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"],
    });
  } finally {
    await h.cleanup();
  }
});

test("flannel DEL never fails on the cniVersion of an old conflist (0.1.0, 0.2.0)", async () => {
  const h = await openCniHost("ftco");
  try {
    const p1 = await h.pod("p1");
    for (const cniVersion of ["0.1.0", "0.2.0"]) {
      const del = await h.call(
        PLUGIN,
        "DEL",
        flannelConf(h, { cniVersion }),
        podEnv(`old-${cniVersion.replace(/\./g, "")}`, p1),
      );
      assert.equal(del.code, 0, `${cniVersion}: ${del.stdout}`);
    }
  } finally {
    await h.cleanup();
  }
});

test("flannel CHECK answers a prevResult of the wrong shape with code 7, not a crash", async () => {
  const h = await openCniHost("ftcp");
  try {
    const p1 = await h.pod("p1");
    const add = await h.call(
      PLUGIN,
      "ADD",
      flannelConf(h, { cniVersion: "0.4.0" }),
      podEnv("pod-p", p1),
    );
    assert.equal(add.code, 0, add.stdout);
    for (const prevResult of [{ ips: "10.1.17.2/24" }, { ips: [{ address: 7 }] }, "nope"]) {
      const check = await h.call(
        PLUGIN,
        "CHECK",
        { ...flannelConf(h, { cniVersion: "0.4.0" }), prevResult },
        podEnv("pod-p", p1),
      );
      assert.equal(check.code, 1);
      assert.equal(check.json.code, 7, check.stdout);
      assert.match(check.json.msg as string, /failed to parse prevResult/);
    }
  } finally {
    await h.cleanup();
  }
});

test("flannel's standard conflist (flannel + portmap) runs the way a runtime runs it", async () => {
  const h = await openCniHost("ftcl");
  try {
    const p1 = await h.pod("p1");
    const binDir = join(h.dir, "bin");
    const confDir = join(h.dir, "net.d");
    const { run } = await import("../../lab/netns.js");
    await run(join(REPO_ROOT, "bin/flannelctl"), [
      "cni",
      "install",
      "--bin-dir",
      binDir,
      "--conf-dir",
      confDir,
    ]);
    const conflist = JSON.parse(await readFile(join(confDir, "10-flannel.conflist"), "utf8")) as {
      name: string;
      cniVersion: string;
      plugins: Record<string, unknown>[];
    };
    assert.equal(conflist.name, "cbr0");
    const env = { ...podEnv("pod-l", p1), CNI_PATH: `${binDir}:${CNI_PATH}` };
    const portMappings = [{ hostPort: 18080, containerPort: 80, protocol: "tcp" }];
    const confFor = (plugin: Record<string, unknown>, prevResult?: unknown) => ({
      ...plugin,
      name: conflist.name,
      cniVersion: conflist.cniVersion,
      // The test's own subnet.env and state folders; the rest is the installed conflist.
      ...(plugin.type === "flannel"
        ? { subnetFile: h.subnetFile, dataDir: h.dataDir, ipam: { dataDir: h.ipamDir } }
        : {}),
      ...(plugin.capabilities ? { runtimeConfig: { portMappings } } : {}),
      ...(prevResult === undefined ? {} : { prevResult }),
    });
    // The runtime finds each plugin in CNI_PATH: flannel in the install folder, portmap in Debian's.
    const pathOf = (plugin: Record<string, unknown>) =>
      join(plugin.type === "flannel" ? binDir : CNI_PATH, plugin.type as string);
    let prev: unknown;
    for (const plugin of conflist.plugins) {
      const result = await h.call(pathOf(plugin), "ADD", confFor(plugin, prev), env);
      assert.equal(result.code, 0, `${String(plugin.type)}: ${result.stdout}`);
      prev = result.json;
    }
    const saved = JSON.parse(await readFile(join(h.dataDir, "pod-l"), "utf8")) as Record<
      string,
      unknown
    >;
    assert.equal(saved.hairpinMode, true);
    assert.equal(saved.isDefaultGateway, true);
    assert.match(await ip(["route", "show"], p1), /default via 10\.1\.17\.1/);
    assert.match(await execIn(h.host, "iptables-save", ["-t", "nat"]), /--dport 18080/);
    for (const plugin of [...conflist.plugins].reverse()) {
      const result = await h.call(pathOf(plugin), "DEL", confFor(plugin, prev), env);
      assert.equal(result.code, 0, `${String(plugin.type)} DEL: ${result.stdout}`);
    }
    assert.doesNotMatch(await execIn(h.host, "iptables-save", ["-t", "nat"]), /--dport 18080/);
    assert.deepEqual(await readdir(h.dataDir), []);
  } finally {
    await h.cleanup();
  }
});

test("the plugin runs with no Node.js anywhere on PATH: VERSION answers, and a pod gets its address", async () => {
  const h = await openCniHost("ftcn");
  try {
    const p1 = await h.pod("p1");
    const noNode = { PATH: "/nonexistent" };
    const version = await h.call(PLUGIN, "VERSION", { cniVersion: "1.0.0" }, noNode);
    assert.equal(version.code, 0, version.stdout);
    assert.ok((version.json.supportedVersions as string[]).includes("1.1.0"));
    const add = await h.call(PLUGIN, "ADD", flannelConf(h), { ...podEnv("pod-n", p1), ...noNode });
    assert.equal(add.code, 0, add.stdout);
    assert.match((add.json.ips as { address: string }[])[0]!.address, /^10\.1\.17\.\d+\/24$/);
    const del = await h.call(PLUGIN, "DEL", flannelConf(h), { ...podEnv("pod-n", p1), ...noNode });
    assert.equal(del.code, 0, del.stdout);
  } finally {
    await h.cleanup();
  }
});

test("30 concurrent ADDs on one host give 30 distinct addresses; 30 concurrent DELs release them all", async () => {
  const h = await openCniHost("ftcc");
  try {
    const pods = await Promise.all(Array.from({ length: 30 }, (_, i) => h.pod(`c${i}`)));
    const adds = await Promise.all(
      pods.map((netns, i) => h.call(PLUGIN, "ADD", flannelConf(h), podEnv(`pod-c${i}`, netns))),
    );
    for (const add of adds) assert.equal(add.code, 0, add.stdout);
    const addresses = adds.map((add) => (add.json.ips as { address: string }[])[0]!.address);
    assert.equal(new Set(addresses).size, 30, addresses.join(" "));
    const ipamFiles = async () =>
      (await readdir(join(h.ipamDir, "cni-flannel"))).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f));
    assert.equal((await ipamFiles()).length, 30);

    const dels = await Promise.all(
      pods.map((netns, i) => h.call(PLUGIN, "DEL", flannelConf(h), podEnv(`pod-c${i}`, netns))),
    );
    for (const del of dels) assert.equal(del.code, 0, del.stdout);
    assert.deepEqual(await ipamFiles(), []);
    assert.deepEqual(await readdir(h.dataDir), []);
  } finally {
    await h.cleanup();
  }
});

test("flannelctl cni install writes only its two files", async () => {
  const dir = await mkdtemp(join(tmpdir(), "flannel-ts-install-"));
  try {
    const { run } = await import("../../lab/netns.js");
    const binDir = join(dir, "bin");
    const confDir = join(dir, "net.d");
    await run("mkdir", ["-p", binDir, confDir]);
    await writeFile(join(binDir, "bridge"), "keep");
    await writeFile(join(confDir, "99-other.conf"), "keep");
    await run(join(REPO_ROOT, "bin/flannelctl"), [
      "cni",
      "install",
      "--bin-dir",
      binDir,
      "--conf-dir",
      confDir,
    ]);
    assert.deepEqual((await readdir(binDir)).sort(), ["bridge", "flannel"]);
    assert.deepEqual((await readdir(confDir)).sort(), ["10-flannel.conflist", "99-other.conf"]);
    assert.equal(await readFile(join(binDir, "bridge"), "utf8"), "keep");
    assert.equal((await stat(join(binDir, "flannel"))).mode & 0o777, 0o755);
    // The installed plugin is the single executable: it runs with no Node.js on PATH.
    const { stdout } = await runCapture(join(binDir, "flannel"), [], {
      input: "",
      env: { PATH: "/nonexistent", CNI_COMMAND: "VERSION" },
    });
    assert.match(stdout, /"supportedVersions"/);
    assert.deepEqual(JSON.parse(await readFile(join(confDir, "10-flannel.conflist"), "utf8")), {
      name: "cbr0",
      cniVersion: "0.3.1",
      plugins: [
        { type: "flannel", delegate: { hairpinMode: true, isDefaultGateway: true } },
        { type: "portmap", capabilities: { portMappings: true } },
      ],
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("flannel GC (CNI 1.1) releases the attachments the runtime no longer lists, and keeps the others", async () => {
  const h = await openCniHost("ftcg");
  try {
    const [p1, p2] = [await h.pod("p1"), await h.pod("p2")];
    const keep = await h.call(
      PLUGIN,
      "ADD",
      flannelConf(h, { cniVersion: "1.0.0" }),
      podEnv("pod-keep", p1),
    );
    const stale = await h.call(
      PLUGIN,
      "ADD",
      flannelConf(h, { cniVersion: "1.0.0" }),
      podEnv("pod-stale", p2),
    );
    assert.equal(keep.code, 0, keep.stdout);
    assert.equal(stale.code, 0, stale.stdout);
    const ipOf = (r: CniCall) =>
      ((r.json.ips as { address: string }[])[0]?.address ?? "").split("/")[0]!;
    const ipamFiles = () => readdir(join(h.ipamDir, "cni-flannel"));
    assert.ok((await ipamFiles()).includes(ipOf(stale)));

    // An older conflist has no GC (refused, code 1), and a GC without the list releases nothing.
    const old = await h.call(PLUGIN, "GC", flannelConf(h, { cniVersion: "1.0.0" }), { CNI_PATH });
    assert.equal(old.json.code, 1, old.stdout);
    assert.match(old.json.msg as string, /config version does not allow GC/);
    const unlisted = await h.call(PLUGIN, "GC", flannelConf(h, { cniVersion: "1.1.0" }), {
      CNI_PATH,
    });
    assert.equal(unlisted.code, 0, unlisted.stdout);
    assert.deepEqual((await readdir(h.dataDir)).sort(), ["pod-keep", "pod-stale"]);
    assert.ok((await ipamFiles()).includes(ipOf(stale)), "no address is released");
    assert.ok((await ipamFiles()).includes(ipOf(keep)), "no address is released");

    const gc = await h.call(
      PLUGIN,
      "GC",
      {
        ...flannelConf(h, { cniVersion: "1.1.0" }),
        "cni.dev/valid-attachments": [{ containerID: "pod-keep", ifname: "eth0" }],
      },
      { CNI_PATH },
    );
    assert.equal(gc.code, 0, gc.stdout);
    assert.deepEqual(await readdir(h.dataDir), ["pod-keep"]);
    const left = await ipamFiles();
    assert.ok(!left.includes(ipOf(stale)), `the stale address is released (${left.join(", ")})`);
    assert.ok(left.includes(ipOf(keep)), "the valid one is kept");

    const bad = await h.call(
      PLUGIN,
      "GC",
      { ...flannelConf(h, { cniVersion: "1.1.0" }), "cni.dev/valid-attachments": "all" },
      { CNI_PATH },
    );
    assert.equal(bad.json.code, 7, bad.stdout);
  } finally {
    await h.cleanup();
  }
});
