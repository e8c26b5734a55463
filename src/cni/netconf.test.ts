import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { goMapJson } from "../util/go_json.js";
import { buildDelegateConf, loadSubnetEnv, parseNetConf } from "./netconf.js";

async function withEnv(text: string, fn: (path: string) => void): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "flannel-ts-cni-"));
  try {
    const path = join(dir, "subnet.env");
    await writeFile(path, text);
    fn(path);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const V4 =
  "FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=true\n";

test("buildDelegateConf() gives flannel's bytes for flannel's v4 fixture", async () => {
  await withEnv(V4, (path) => {
    const delegate = buildDelegateConf(
      parseNetConf('{"name":"cni-flannel","type":"flannel"}'),
      loadSubnetEnv(path),
    );
    assert.equal(
      goMapJson(delegate),
      '{"ipMasq":false,"ipam":{"ranges":[[{"subnet":"10.1.17.0/24"}]],"routes":[{"dst":"10.1.0.0/16"}],"type":"host-local"},"isGateway":true,"mtu":1472,"name":"cni-flannel","type":"bridge"}',
    );
  });
});

test("buildDelegateConf() adds the IPv6 range and route for dual-stack", async () => {
  await withEnv(
    `${V4}FLANNEL_IPV6_NETWORK=fc00::/48\nFLANNEL_IPV6_SUBNET=fc00:0:0:11::1/64\n`,
    (path) => {
      const delegate = buildDelegateConf(
        parseNetConf('{"name":"n","type":"flannel"}'),
        loadSubnetEnv(path),
      );
      assert.deepEqual(delegate.ipam, {
        type: "host-local",
        ranges: [[{ subnet: "10.1.17.0/24" }], [{ subnet: "fc00:0:0:11::/64" }]],
        routes: [{ dst: "10.1.0.0/16" }, { dst: "fc00::/48" }],
      });
    },
  );
});

test("buildDelegateConf() keeps a custom ipam type and unknown keys, and appends to given routes", async () => {
  await withEnv(
    "FLANNEL_NETWORK=10.1.0.0/16,10.2.0.0/16,10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=false\n",
    (path) => {
      const conf = parseNetConf(
        '{"name":"n","type":"flannel","ipam":{"type":"my-ipam","foo":"bar","routes":[{"dst":"192.168.0.0/16"}]}}',
      );
      const delegate = buildDelegateConf(conf, loadSubnetEnv(path));
      assert.deepEqual(delegate.ipam, {
        type: "my-ipam",
        foo: "bar",
        ranges: [[{ subnet: "10.1.17.0/24" }]],
        routes: [{ dst: "192.168.0.0/16" }, { dst: "10.1.0.0/16" }, { dst: "10.2.0.0/16" }],
      });
      assert.equal(delegate.ipMasq, true);
    },
  );
});

test("buildDelegateConf() keeps the delegate's own type, mtu and ipMasq, and passes runtimeConfig", async () => {
  await withEnv(V4, (path) => {
    const conf = parseNetConf(
      '{"name":"n","type":"flannel","cniVersion":"1.0.0","delegate":{"type":"ipvlan","mtu":1400,"ipMasq":true},"runtimeConfig":{"portMappings":[]}}',
    );
    const delegate = buildDelegateConf(conf, loadSubnetEnv(path));
    assert.equal(delegate.type, "ipvlan");
    assert.equal(delegate.mtu, 1400);
    assert.equal(delegate.ipMasq, true);
    assert.equal(delegate.isGateway, undefined, "isGateway is for bridge only");
    assert.equal(delegate.cniVersion, "1.0.0");
    assert.deepEqual(delegate.runtimeConfig, { portMappings: [] });
  });
});

test("loadSubnetEnv() names the file and every missing key", async () => {
  await withEnv("FLANNEL_MTU=1450\n", (path) => {
    assert.throws(
      () => loadSubnetEnv(path),
      (err: Error & { code?: number }) => {
        assert.match(
          err.message,
          new RegExp(
            `${path} is missing FLANNEL_NETWORK, FLANNEL_IPV6_NETWORK, FLANNEL_SUBNET, FLANNEL_IPV6_SUBNET, FLANNEL_IPMASQ`,
          ),
        );
        assert.match(err.message, /Check that flanneld runs on this host/);
        return true;
      },
    );
  });
});

test("buildDelegateConf() decodes and re-encodes ipam.routes as flannel does through CNI's types.Route", async () => {
  await withEnv(V4, (path) => {
    const conf = parseNetConf(
      '{"name":"n","type":"flannel","ipam":{"routes":[{"dst":"192.168.7.1/16","gw":"10.1.17.1","mtu":9000},{"dst":"fd00::/8"}]}}',
    );
    const delegate = buildDelegateConf(conf, loadSubnetEnv(path));
    assert.deepEqual((delegate.ipam as { routes: unknown }).routes, [
      { dst: "192.168.7.1/16", gw: "10.1.17.1" },
      { dst: "fd00::/8" },
      { dst: "10.1.0.0/16" },
    ]);
  });
});
