import assert from "node:assert/strict";
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { execIn } from "../../lab/netns.js";
import { eventually, waitFor } from "../../lab/poll.js";
import { openSingleHost } from "../helpers/single_host.js";
import type { SingleHost } from "../helpers/single_host.js";

const CONFIG = '{"Network":"10.244.0.0/16","Backend":{"Type":"alloc"}}';

/** The file's text once it exists. */
function waitForFile(path: string): Promise<string> {
  return eventually(() => readFile(path, "utf8"), { timeoutMs: 30_000, intervalMs: 50 });
}

function flags(host: SingleHost, subnetFile: string): string[] {
  return [`--etcd-endpoints=${host.etcd.endpoint}`, "--iface=veth0", `--subnet-file=${subnetFile}`];
}

test("flanneld writes subnet.env and flannel's lease, and a restart keeps the subnet", async () => {
  const host = await openSingleHost("ftfd");
  try {
    await host.etcdctl(["put", "/coreos.com/network/config", CONFIG]);
    // A host that does not forward IPv4 (new namespaces copy the machine's own setting).
    await execIn(host.netns, "sysctl", ["-qw", "net.ipv4.ip_forward=0"]);
    const subnetFile = join(host.dir, "run", "subnet.env");
    const first = host.flanneld(flags(host, subnetFile));
    const env = await waitForFile(subnetFile);
    const match =
      /^FLANNEL_NETWORK=10\.244\.0\.0\/16\nFLANNEL_SUBNET=10\.244\.(\d+)\.1\/24\nFLANNEL_MTU=1500\nFLANNEL_IPMASQ=false\n$/.exec(
        env,
      );
    assert.ok(match, env);
    assert.equal((await stat(subnetFile)).mode & 0o777, 0o644);
    // The host does not forward IPv4: flanneld says so (after subnet.env, maybe).
    await eventually(() =>
      Promise.resolve().then(() => {
        assert.match(first.output(), /IPv4 forwarding is off/);
      }),
    );
    const subnetKey = `/coreos.com/network/subnets/10.244.${match[1]}.0-24`;
    const stored = await host.etcdctl(["get", subnetKey, "--print-value-only"]);
    assert.equal(
      stored.trim(),
      '{"PublicIP":"10.250.0.2","PublicIPv6":null,"BackendType":"alloc"}',
    );

    first.child.kill("SIGTERM");
    assert.equal(await first.exited, 0, first.output());
    assert.ok(
      (await host.etcdctl(["get", subnetKey, "--print-value-only"])).trim() !== "",
      "the lease is kept on stop",
    );

    const second = host.flanneld(flags(host, subnetFile));
    await waitFor(
      "the restarted flanneld to write subnet.env",
      () => Promise.resolve(second.output().includes("Wrote subnet file")),
      { timeoutMs: 15_000 },
    );
    assert.equal(await readFile(subnetFile, "utf8"), env, "same subnet after restart");
    second.child.kill("SIGTERM");
    assert.equal(await second.exited, 0, second.output());
  } finally {
    await host.cleanup();
  }
});

test("flanneld reads FLANNELD_* variables in place of flags", async () => {
  const host = await openSingleHost("ftfe");
  try {
    await host.etcdctl(["put", "/custom/network/config", CONFIG]);
    const subnetFile = join(host.dir, "env-subnet.env");
    const daemon = host.flanneld([], {
      FLANNELD_ETCD_ENDPOINTS: host.etcd.endpoint,
      FLANNELD_ETCD_PREFIX: "/custom/network",
      FLANNELD_IFACE: "veth0",
      FLANNELD_SUBNET_FILE: subnetFile,
      FLANNELD_IP_MASQ: "true",
    });
    assert.match(await waitForFile(subnetFile), /FLANNEL_IPMASQ=true/);
    assert.match(
      await host.etcdctl(["get", "--prefix", "--keys-only", "/custom/network/subnets/"]),
      /\/custom\/network\/subnets\/10\.244\.\d+\.0-24/,
    );
    daemon.child.kill("SIGTERM");
    assert.equal(await daemon.exited, 0, daemon.output());
  } finally {
    await host.cleanup();
  }
});

const invalidConfigs = [
  {
    name: "the config in etcd is invalid (flannel's reason)",
    json: '{"Network":"10.244.0.0/16","SubnetLen":17}',
    error: /Invalid network config: network must be able to accommodate at least four subnets/,
  },
  {
    name: "the config asks for EnableIPv6 and the host has no IPv6 address to advertise",
    json: '{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd00::/48","Backend":{"Type":"vxlan"}}',
    error: /failed to find IPv6 address for interface/,
  },
];
for (const tc of invalidConfigs) {
  test(`flanneld exits non-zero, takes no lease and writes no subnet.env when ${tc.name}`, async () => {
    const host = await openSingleHost("ftfb");
    try {
      await host.etcdctl(["put", "/coreos.com/network/config", tc.json]);
      const subnetFile = join(host.dir, "subnet.env");
      const daemon = host.flanneld(flags(host, subnetFile));
      const code = await daemon.exited;
      assert.notEqual(code, 0);
      assert.match(daemon.output(), tc.error);
      await assert.rejects(stat(subnetFile), "no subnet.env is written");
      assert.equal(
        (
          await host.etcdctl(["get", "--prefix", "--keys-only", "/coreos.com/network/subnets/"])
        ).trim(),
        "",
        "no lease is taken",
      );
    } finally {
      await host.cleanup();
    }
  });
}

test("flanneld exits 0, as flannel does, when its lease is deleted by someone else, and says why", async () => {
  const host = await openSingleHost("ftfr");
  try {
    await host.etcdctl(["put", "/coreos.com/network/config", CONFIG]);
    const subnetFile = join(host.dir, "subnet.env");
    const daemon = host.flanneld(flags(host, subnetFile));
    await waitForFile(subnetFile);
    await host.etcdctl(["del", "--prefix", "/coreos.com/network/subnets/"]);
    assert.equal(await daemon.exited, 0);
    assert.match(
      daemon.output(),
      /Lease has been revoked by someone else; exiting 0 as flannel does/,
    );
  } finally {
    await host.cleanup();
  }
});

test("flanneld waits for a config that is not stored yet, then starts", async () => {
  const host = await openSingleHost("ftfw");
  try {
    const subnetFile = join(host.dir, "subnet.env");
    const daemon = host.flanneld(flags(host, subnetFile));
    await waitFor(
      "flanneld to report the missing config",
      () => Promise.resolve(daemon.output().includes("Cannot read network config yet")),
      { timeoutMs: 10_000 },
    );
    assert.match(daemon.output(), /flannel config not found in etcd store/);
    await host.etcdctl(["put", "/coreos.com/network/config", CONFIG]);
    assert.match(await waitForFile(subnetFile), /FLANNEL_SUBNET=10\.244\./);
    daemon.child.kill("SIGTERM");
    assert.equal(await daemon.exited, 0);
  } finally {
    await host.cleanup();
  }
});

/** The exit code, or "still running" when the process has not exited within `ms`. */
function exitedWithin(daemon: { exited: Promise<number | null> }, ms: number) {
  return Promise.race([
    daemon.exited,
    new Promise<"still running">((resolve) =>
      setTimeout(() => resolve("still running"), ms).unref(),
    ),
  ]);
}

test("flanneld exits non-zero naming the path and errno when the subnet file cannot be written", async () => {
  const host = await openSingleHost("ftfs");
  try {
    await host.etcdctl(["put", "/coreos.com/network/config", CONFIG]);
    // /proc refuses new folders with ENOENT: Node's recursive mkdir used to spin on it forever.
    const daemon = host.flanneld([
      `--etcd-endpoints=${host.etcd.endpoint}`,
      "--iface=veth0",
      "--subnet-file=/proc/nope/subnet.env",
    ]);
    const code = await exitedWithin(daemon, 60_000);
    if (code === "still running") daemon.child.kill("SIGKILL");
    assert.equal(code, 1, daemon.output());
    assert.match(
      daemon.output(),
      /Cannot write subnet file \\"\/proc\/nope\/subnet.env\\": ENOENT \(at \\"\/proc\/nope\\"\): give --subnet-file/,
    );
    // The error's class is named as written (the bundle keeps names), with no stack at info level.
    assert.match(daemon.output(), /"kind":"ConfigError"/);
    assert.doesNotMatch(daemon.output(), /"stack"/);
  } finally {
    await host.cleanup();
  }
});

test("flanneld writes its own lease back when someone overwrites it with garbage, and says so once", async () => {
  const host = await openSingleHost("ftfg");
  try {
    await host.etcdctl(["put", "/coreos.com/network/config", CONFIG]);
    const subnetFile = join(host.dir, "subnet.env");
    const daemon = host.flanneld(flags(host, subnetFile));
    const env = await waitForFile(subnetFile);
    const third = /FLANNEL_SUBNET=10\.244\.(\d+)\.1\/24/.exec(env)?.[1];
    assert.ok(third !== undefined, env);
    const key = `/coreos.com/network/subnets/10.244.${third}.0-24`;
    const good = (await host.etcdctl(["get", key, "--print-value-only"])).trim();
    const said = () =>
      daemon
        .output()
        .split("\n")
        .filter((l) => l.includes("This node's lease is unreadable"));
    for (const round of [1, 2]) {
      await host.etcdctl(["put", key, "{ garbage"]);
      await waitFor(
        `flanneld to write its lease back (round ${round})`,
        async () => (await host.etcdctl(["get", key, "--print-value-only"])).trim() === good,
        { timeoutMs: 30_000 },
      );
    }
    assert.equal(said().length, 1, daemon.output());
    assert.match(said()[0] ?? "", new RegExp(`"key":"${key}"`));
    assert.doesNotMatch(daemon.output(), /"stack"/);
    // Written back with a TTL again (etcdctl put had taken it off).
    const withLease = await host.etcdctl(["get", key, "-w", "json"]);
    assert.match(withLease, /"lease":\d+/);
    daemon.child.kill("SIGTERM");
    assert.equal(await daemon.exited, 0, "the same flanneld ran throughout");
  } finally {
    await host.cleanup();
  }
});

test("flanneld says it cannot reach etcd while it retries, and SIGTERM ends it", async () => {
  const host = await openSingleHost("ftft");
  try {
    // Nothing listens on port 1 in the host's namespace: every connection is refused.
    const daemon = host.flanneld([
      "--etcd-endpoints=http://127.0.0.1:1",
      "--iface=veth0",
      `--subnet-file=${join(host.dir, "subnet.env")}`,
    ]);
    await waitFor(
      "flanneld to say it is retrying",
      () => Promise.resolve(daemon.output().includes("Cannot read network config yet")),
      { timeoutMs: 30_000 },
    );
    daemon.child.kill("SIGTERM");
    const code = await exitedWithin(daemon, 30_000);
    if (code === "still running") daemon.child.kill("SIGKILL");
    assert.equal(code, 0, daemon.output());
    assert.doesNotMatch(daemon.output(), /Shutdown did not finish in time/);
  } finally {
    await host.cleanup();
  }
});
