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

test("parseFlanneldFlags() prints the help for -h, as for --help", () => {
  for (const flag of ["-h", "--help"]) {
    const parsed = parseFlanneldFlags([flag], {});
    assert.equal(parsed.kind, "exit");
    if (parsed.kind !== "exit") continue;
    assert.equal(parsed.code, 0);
    assert.match(parsed.stdout, /--etcd-endpoints/);
  }
});

test("parseFlanneldFlags() takes the etcd endpoints flannel's client takes", () => {
  const o = options(
    parseFlanneldFlags(
      ["--etcd-endpoints=http://10.0.0.1:2379/,10.0.0.2:2379,unix:///run/etcd.sock"],
      {},
    ),
  );
  assert.deepEqual(o.etcdEndpoints, [
    "http://10.0.0.1:2379",
    "10.0.0.2:2379",
    "unix:///run/etcd.sock",
  ]);
});

const refused: { name: string; args: string[]; error: RegExp }[] = [
  {
    name: "a resync period past Node's timers",
    args: ["--iptables-resync=2147484"],
    error: /--iptables-resync: expected whole seconds from 1 to 2147483/,
  },
  {
    name: "a resync period of 0",
    args: ["--iptables-resync=0"],
    error: /--iptables-resync: expected whole seconds from 1/,
  },
  {
    name: "a --public-ip that is not an IPv4 address",
    args: ["--public-ip=10.0.0.300"],
    error: /--public-ip: expected an IPv4 address/,
  },
  {
    name: "a --public-ipv6 that is not an IPv6 address",
    args: ["--public-ipv6=10.0.0.1"],
    error: /--public-ipv6: expected an IPv6 address/,
  },
  {
    name: "an --iface-regex that does not compile",
    args: ["--iface-regex=eth[0-"],
    error: /--iface-regex: expected a regular expression/,
  },
  {
    name: "an --iface-can-reach that is not an address",
    args: ["--iface-can-reach=gateway"],
    error: /--iface-can-reach: expected an IP address/,
  },
  {
    name: "a --healthz-ip that is not an address",
    args: ["--healthz-ip=localhost"],
    error: /--healthz-ip: expected an IP address/,
  },
  {
    name: "--etcd-keyfile without --etcd-certfile",
    args: ["--etcd-keyfile=/k.pem"],
    error: /--etcd-keyfile and --etcd-certfile go together/,
  },
  {
    name: "an etcd endpoint with a path",
    args: ["--etcd-endpoints=http://10.0.0.1:2379/v3"],
    error:
      /--etcd-endpoints: "http:\/\/10.0.0.1:2379\/v3" is not an etcd endpoint \(it has a path\): expected a comma-delimited list/,
  },
  {
    name: "an etcd endpoint that is no URL and has no port (retried forever as a name before)",
    args: ["--etcd-endpoints=notaurl"],
    error:
      /--etcd-endpoints: "notaurl" is not an etcd endpoint \(without http:\/\/ or https:\/\/ it needs host:port\)/,
  },
  {
    name: "an etcd endpoint of another scheme",
    args: ["--etcd-endpoints=http://10.0.0.1:2379,ftp://10.0.0.2:2379"],
    error: /"ftp:\/\/10.0.0.2:2379" is not an etcd endpoint \(scheme ftp: is not http or https\)/,
  },
  {
    name: "an etcd endpoint with a port past 65535",
    args: ["--etcd-endpoints=http://10.0.0.1:70000"],
    error: /"http:\/\/10.0.0.1:70000" is not an etcd endpoint \(not a URL\)/,
  },
  {
    name: "an unknown flag",
    args: ["--no-such-flag"],
    error: /unknown option '--no-such-flag'/,
  },
  {
    name: "a bool flag that is not a bool",
    args: ["--ip-masq=maybe"],
    error: /Invalid value "maybe" for --ip-masq: expected true or false/,
  },
];

const refusedFromVariables: { name: string; env: Record<string, string>; error: RegExp }[] = [
  {
    name: "FLANNELD_IP_MASQ=maybe",
    env: { FLANNELD_IP_MASQ: "maybe" },
    error: /Invalid value "maybe" for FLANNELD_IP_MASQ \(--ip-masq\): expected true or false/,
  },
  {
    name: "FLANNELD_ETCD_ENDPOINTS=notaurl",
    env: { FLANNELD_ETCD_ENDPOINTS: "notaurl" },
    error: /FLANNELD_ETCD_ENDPOINTS \(--etcd-endpoints\): "notaurl" is not an etcd endpoint/,
  },
  {
    name: "FLANNELD_IPTABLES_RESYNC=0",
    env: { FLANNELD_IPTABLES_RESYNC: "0" },
    error: /FLANNELD_IPTABLES_RESYNC \(--iptables-resync\): expected whole seconds/,
  },
];
for (const tc of refusedFromVariables) {
  test(`parseFlanneldFlags() refuses ${tc.name} naming the variable, with exit code 1`, () => {
    const parsed = parseFlanneldFlags([], tc.env);
    assert.equal(parsed.kind, "exit");
    if (parsed.kind !== "exit") return;
    assert.equal(parsed.code, 1);
    assert.match(parsed.stderr, tc.error);
  });
}
for (const tc of refused) {
  test(`parseFlanneldFlags() refuses ${tc.name} at start, saying what is expected`, () => {
    const parsed = parseFlanneldFlags(tc.args, {});
    assert.equal(parsed.kind, "exit");
    if (parsed.kind !== "exit") return;
    assert.equal(parsed.code, 1);
    assert.match(parsed.stderr, tc.error);
  });
}

test("--network-policy (FLANNELD_NETWORK_POLICY) is off by default and needs --kube-subnet-mgr", () => {
  assert.equal(options(parseFlanneldFlags([], {})).networkPolicy, false);
  assert.equal(
    options(parseFlanneldFlags(["--kube-subnet-mgr", "--network-policy"], {})).networkPolicy,
    true,
  );
  assert.equal(
    options(
      parseFlanneldFlags([], { FLANNELD_KUBE_SUBNET_MGR: "true", FLANNELD_NETWORK_POLICY: "true" }),
    ).networkPolicy,
    true,
  );
  const refused = parseFlanneldFlags(["--network-policy"], {});
  assert.equal(refused.kind, "exit");
  assert.equal(
    refused.kind === "exit" ? refused.stderr : "",
    "flanneld: invalid flags: --network-policy needs --kube-subnet-mgr: NetworkPolicy is read from the Kubernetes API\n",
  );
});
