import assert from "node:assert/strict";
import { test } from "node:test";
import { parseFlanneldFlags } from "./flanneld_flags.js";
import type { FlanneldOptions, ParsedFlags } from "./flanneld_flags.js";

function options(parsed: ParsedFlags): FlanneldOptions {
  assert.equal(parsed.kind, "run", parsed.kind === "exit" ? parsed.stderr : "");
  return (parsed as { options: FlanneldOptions }).options;
}

test("parseFlanneldFlags() gives flannel's defaults", () => {
  const o = options(parseFlanneldFlags([], {}));
  assert.deepEqual(o.etcdEndpoints, ["http://127.0.0.1:4001", "http://127.0.0.1:2379"]);
  assert.equal(o.etcdPrefix, "/coreos.com/network");
  assert.equal(o.subnetFile, "/run/flannel/subnet.env");
  assert.equal(o.subnetLeaseRenewMargin, 60);
  assert.equal(o.iptablesResync, 5);
  assert.equal(o.iptablesForwardRules, true);
  assert.equal(o.ipMasq, false);
  assert.equal(o.healthzIP, "0.0.0.0");
  assert.equal(o.healthzPort, 0);
});

test("parseFlanneldFlags() takes Go's single-dash and = forms", () => {
  const o = options(
    parseFlanneldFlags(
      [
        "-etcd-prefix=/x/network",
        "--iface",
        "eth0",
        "-iface=10.0.0.1",
        "--ip-masq",
        "--iptables-forward-rules=false",
        "-v=4",
      ],
      {},
    ),
  );
  assert.equal(o.etcdPrefix, "/x/network");
  assert.deepEqual(o.iface, ["eth0", "10.0.0.1"]);
  assert.equal(o.ipMasq, true);
  assert.equal(o.iptablesForwardRules, false);
  assert.equal(o.v, 4);
});

test("parseFlanneldFlags() reads FLANNELD_* variables for flags not given", () => {
  const env = {
    FLANNELD_ETCD_PREFIX: "/env/network",
    FLANNELD_IP_MASQ: "true",
    FLANNELD_IFACE: "eth1",
    FLANNELD_SUBNET_FILE: "",
    FLANNELD_HEALTHZ_PORT: "8081",
  };
  const o = options(parseFlanneldFlags([], env));
  assert.equal(o.etcdPrefix, "/env/network");
  assert.equal(o.ipMasq, true);
  assert.deepEqual(o.iface, ["eth1"]);
  assert.equal(o.subnetFile, "/run/flannel/subnet.env", "an empty variable is ignored");
  assert.equal(o.healthzPort, 8081);
});

test("parseFlanneldFlags() lets a flag win over its variable", () => {
  const o = options(
    parseFlanneldFlags(["--etcd-prefix=/flag/network"], { FLANNELD_ETCD_PREFIX: "/env/network" }),
  );
  assert.equal(o.etcdPrefix, "/flag/network");
});

const bad = [
  {
    args: ["--subnet-lease-renew-margin=0"],
    env: {},
    error: /--subnet-lease-renew-margin: expected whole minutes from 1 to 1439/,
  },
  {
    args: [],
    env: { FLANNELD_SUBNET_LEASE_RENEW_MARGIN: "1440" },
    error: /expected whole minutes from 1 to 1439/,
  },
  {
    args: ["--ip-masq=maybe"],
    env: {},
    error: /Invalid value "maybe" for --ip-masq: expected true or false/,
  },
  {
    args: ["--healthz-port=x"],
    env: {},
    error: /Invalid value "x" for --healthz-port: expected a whole number/,
  },
  { args: ["--healthz-port=70000"], env: {}, error: /--healthz-port: expected a port/ },
  {
    args: ["--etcd-prefix=coreos"],
    env: {},
    error: /--etcd-prefix: expected a key prefix starting with \//,
  },
  { args: ["--no-such-flag"], env: {}, error: /unknown option/ },
];
for (const tc of bad) {
  test(`parseFlanneldFlags() rejects ${JSON.stringify(tc.args)} ${JSON.stringify(tc.env)}`, () => {
    const parsed = parseFlanneldFlags(tc.args, tc.env);
    assert.equal(parsed.kind, "exit");
    if (parsed.kind === "exit") {
      assert.notEqual(parsed.code, 0);
      assert.match(parsed.stderr, tc.error);
    }
  });
}
