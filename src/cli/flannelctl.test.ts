import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, test } from "node:test";
import { startEtcd } from "../../lab/etcd_server.js";
import { runCapture } from "../util/exec.js";
import type { EtcdServer } from "../../lab/etcd_server.js";

const BIN = resolve(import.meta.dirname, "../../../bin/flannelctl");

function flannelctl(args: readonly string[], input?: string) {
  return runCapture(BIN, args, { input: input ?? "" });
}

let server: EtcdServer;
let dir: string;
before(async () => {
  server = await startEtcd();
  dir = await mkdtemp(join(tmpdir(), "flannel-ts-ctl-"));
});
after(async () => {
  await server.stop();
  await rm(dir, { recursive: true, force: true });
});

test("flannelctl config validate prints the normalized config as one JSON object", async () => {
  const file = join(dir, "ok.json");
  await writeFile(
    file,
    '{"network":"10.1.2.3/16","enableIPv6":true,"ipv6Network":"FC00::/48","backend":{"type":"ALLOC"}}',
  );
  const { code, stdout } = await flannelctl(["config", "validate", file]);
  assert.equal(code, 0);
  assert.deepEqual(JSON.parse(stdout), {
    Network: "10.1.0.0/16",
    SubnetLen: 24,
    SubnetMin: "10.1.1.0",
    SubnetMax: "10.1.255.0",
    EnableIPv4: true,
    EnableIPv6: true,
    IPv6Network: "fc00::/48",
    IPv6SubnetLen: 64,
    IPv6SubnetMin: "fc00:0:0:1::",
    IPv6SubnetMax: "fc00:0:0:ffff::",
    EnableNFTables: false,
    BackendType: "alloc",
    Backend: { type: "ALLOC" },
  });
});

test("flannelctl config validate accepts a config without Backend: udp, as flannel reads it", async () => {
  const file = join(dir, "udp.json");
  await writeFile(file, '{"Network":"10.5.0.0/16"}');
  const { code, stdout, stderr } = await flannelctl(["config", "validate", file]);
  assert.equal(code, 0, stderr);
  const config = JSON.parse(stdout) as { BackendType: string; Backend: unknown };
  assert.equal(config.BackendType, "udp");
  assert.deepEqual(config.Backend, { Type: "udp" });
});

test("flannelctl config validate accepts a dual-stack vxlan config, with flannel's IPv6 defaults", async () => {
  const file = join(dir, "dual.json");
  await writeFile(
    file,
    '{"Network":"10.0.0.0/16","EnableIPv6":true,"IPv6Network":"fd00::/48","Backend":{"Type":"vxlan"}}',
  );
  const { code, stdout, stderr } = await flannelctl(["config", "validate", file]);
  assert.equal(code, 0, stderr);
  const config = JSON.parse(stdout) as Record<string, unknown>;
  assert.equal(config.EnableIPv6, true);
  assert.equal(config.IPv6SubnetLen, 64);
});

test("flannelctl config validate names the commands an extension config makes every host run", async () => {
  const file = join(dir, "extension.json");
  await writeFile(
    file,
    '{"Network":"10.6.0.0/16","Backend":{"Type":"extension","SubnetAddCommand":"ip route replace $SUBNET via $PUBLIC_IP"}}',
  );
  const { code, stdout, stderr } = await flannelctl(["config", "validate", file]);
  assert.equal(code, 0, stderr);
  assert.equal((JSON.parse(stdout) as { BackendType: string }).BackendType, "extension");
  assert.match(
    stderr,
    /run, as root on every host:\n {2}SubnetAddCommand: ip route replace \$SUBNET via \$PUBLIC_IP\n/,
  );
  const plain = await flannelctl(["config", "validate", join(dir, "udp.json")]);
  assert.doesNotMatch(plain.stderr, /as root/, "a config without commands names none");
});

const refusedConfigs = [
  {
    name: "a udp Port that is out of range",
    json: '{"Network":"10.0.0.0/16","Backend":{"Type":"udp","Port":70000}}',
    error: /Invalid udp backend config: .*Port: expected a UDP port from 1 to 65535/,
  },
  {
    name: 'a vxlan "VNI" that is not a number',
    json: '{"Network":"10.0.0.0/16","Backend":{"Type":"vxlan","VNI":"x"}}',
    error: /Invalid vxlan backend config: .*VNI/,
  },
  {
    name: "an extension CommandTimeout that is not whole seconds",
    json: '{"Network":"10.0.0.0/16","Backend":{"Type":"extension","CommandTimeout":1.5}}',
    error:
      /Invalid extension backend config: .*CommandTimeout: expected CommandTimeout as whole seconds/,
  },
  {
    name: "an unknown backend type",
    json: '{"Network":"10.0.0.0/16","Backend":{"Type":"nosuch"}}',
    error: /Cannot use backend "nosuch": expected one of vxlan, host-gw, udp, alloc/,
  },
];
for (const tc of refusedConfigs) {
  test(`flannelctl config validate and set refuse ${tc.name}, storing nothing`, async () => {
    const file = join(dir, "refused.json");
    await writeFile(file, tc.json);
    const validate = await flannelctl(["config", "validate", file]);
    assert.equal(validate.code, 1);
    assert.match(validate.stderr, tc.error);
    const prefix = `/refused-${Math.random().toString(16).slice(2)}`;
    const set = await flannelctl([
      "config",
      "set",
      file,
      `--etcd-endpoints=${server.endpoint}`,
      `--etcd-prefix=${prefix}`,
    ]);
    assert.equal(set.code, 1);
    assert.match(set.stderr, tc.error);
    const get = await flannelctl([
      "config",
      "get",
      `--etcd-endpoints=${server.endpoint}`,
      `--etcd-prefix=${prefix}`,
    ]);
    assert.equal(get.code, 1, "nothing was stored");
  });
}

test("flannelctl config validate exits 1 with the reason on stderr", async () => {
  const file = join(dir, "bad.json");
  await writeFile(file, '{"Network":"10.0.0.0/29"}');
  const { code, stdout, stderr } = await flannelctl(["config", "validate", file]);
  assert.equal(code, 1);
  assert.equal(stdout, "");
  assert.match(stderr, /network is too small. Minimum useful network prefix is \/28/);
});

test("flannelctl config validate names a missing file", async () => {
  const { code, stderr } = await flannelctl(["config", "validate", join(dir, "absent.json")]);
  assert.equal(code, 1);
  assert.match(stderr, /Cannot read network config ".*absent.json": ENOENT/);
});

test("flannelctl config set stores a valid config and refuses an invalid one, keeping the old", async () => {
  const etcd = [`--etcd-endpoints=${server.endpoint}`, "--etcd-prefix=/ctl/network"];
  const good = '{"Network":"10.7.0.0/16","Backend":{"Type":"vxlan"}}';
  const stored = await flannelctl(["config", "set", "-", ...etcd], good);
  assert.equal(stored.code, 0, stored.stderr);
  const bad = await flannelctl(
    ["config", "set", "-", ...etcd],
    '{"Network":"10.7.0.0/16","SubnetLen":31}',
  );
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /SubnetLen must be less than \/31/);
  const got = await flannelctl(["config", "get", ...etcd]);
  assert.equal(got.stdout.trim(), good);
});

test("flannelctl leases lists leases with expiry, marks reservations and names keys that are not leases; --json too", async () => {
  const etcd = [`--etcd-endpoints=${server.endpoint}`, "--etcd-prefix=/leases/network"];
  let granted = 0;
  const { Etcd3 } = await import("etcd3");
  const client = new Etcd3({ hosts: [server.endpoint] });
  try {
    await client
      .put("/leases/network/subnets/10.8.2.0-24")
      .value('{"PublicIP":"192.0.2.2","PublicIPv6":null}')
      .exec();
    granted = Date.now();
    const grant = await client.leaseClient.leaseGrant({ TTL: 3600 });
    await client
      .put("/leases/network/subnets/10.8.1.0-24")
      .value(
        '{"PublicIP":"192.0.2.1","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:ff"}}',
      )
      .lease(grant.ID)
      .exec();
    await client.put("/leases/network/subnets/not-a-subnet").value("junk").exec();
  } finally {
    client.close();
  }
  const table = await flannelctl(["leases", ...etcd]);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stderr, /not-a-subnet/, "a key that is not a lease is named");
  // One plain line per warning on stderr, no JSON log line (in either stream).
  assert.match(
    table.stderr,
    /^flannelctl: warning: Skipping a key that is not a lease \(component=etcd, key=\/leases\/network\/subnets\/not-a-subnet, reason=.+\)$/m,
  );
  assert.doesNotMatch(table.stderr + table.stdout, /"level"|"msg"/);
  const lines = table.stdout.trim().split("\n");
  assert.match(lines[0]!, /^SUBNET\s+PUBLIC IP\s+BACKEND\s+EXPIRES$/);
  const row = /^10\.8\.1\.0\/24\s+192\.0\.2\.1\s+vxlan\s+(\S+) \(in (\d+)h(\d+)m\)$/.exec(
    lines[1]!,
  );
  assert.ok(row, lines[1]);
  // The expiry is the grant plus the 1 h TTL, however long the test took to get here.
  const expires = Date.parse(row[1]!);
  assert.ok(
    Math.abs(expires - (granted + 3_600_000)) < 10_000,
    `${row[1]!} is 1 h after the grant`,
  );
  assert.ok(Number(row[2]) * 60 + Number(row[3]) <= 60);
  assert.match(lines[2]!, /^10\.8\.2\.0\/24\s+192\.0\.2\.2\s+-\s+never \(reserved\)$/);
  const json = JSON.parse((await flannelctl(["leases", "--json", ...etcd])).stdout) as {
    subnet: string;
    reserved: boolean;
    backendData: unknown;
  }[];
  assert.deepEqual(
    json.map((l) => [l.subnet, l.reserved]),
    [
      ["10.8.1.0/24", false],
      ["10.8.2.0/24", true],
    ],
  );
  assert.deepEqual(json[0]?.backendData, { VNI: 1, VtepMAC: "aa:bb:cc:dd:ee:ff" });
});

test("flannelctl config validate warns about a key that looks like a typo, and still accepts the config", async () => {
  const file = join(dir, "typo.json");
  await writeFile(file, '{"Network":"10.0.0.0/16","Backend":{"Type":"vxlan","DirectRoute":true}}');
  const { code, stderr } = await flannelctl(["config", "validate", file]);
  assert.equal(code, 0);
  assert.match(
    stderr,
    /warning: Network config key "Backend.DirectRoute" is not one flannel knows: did you mean "DirectRouting"\?/,
  );
});
