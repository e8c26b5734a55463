/** Reading Pods, Namespaces and NetworkPolicies from what the API sends. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { networkPolicyViewOf, podViewOf } from "./objects.js";
import { blockRanges, formatRange } from "./ranges.js";
import { IPNet } from "../ip/ip.js";

test("a Pod's addresses, node, hostNetwork, named ports and phase", () => {
  const pod = podViewOf({
    metadata: { name: "a", namespace: "x", labels: { pod: "a", bad: 3 } },
    spec: {
      nodeName: "n1",
      containers: [{ ports: [{ name: "serve-80-tcp", containerPort: 80 }, { containerPort: 81 }] }],
      initContainers: [{ ports: [{ name: "dns", containerPort: 53, protocol: "UDP" }] }],
    },
    status: {
      phase: "Running",
      podIP: "10.244.1.2",
      podIPs: [{ ip: "10.244.1.2" }, { ip: "fd00::2" }],
    },
  });
  assert.deepEqual(pod, {
    namespace: "x",
    name: "a",
    labels: { pod: "a" },
    nodeName: "n1",
    hostNetwork: false,
    ips: [
      { family: 4, ip: "10.244.1.2" },
      { family: 6, ip: "fd00::2" },
    ],
    namedPorts: [
      { name: "serve-80-tcp", port: 80, protocol: "TCP" },
      { name: "dns", port: 53, protocol: "UDP" },
    ],
    finished: false,
  });
  assert.equal(podViewOf({ metadata: { name: "a" } }), null, "a Pod has a namespace");
  assert.equal(
    podViewOf({ metadata: { name: "a", namespace: "x" }, status: { phase: "Succeeded" } })
      ?.finished,
    true,
  );
});

test("policyTypes: as given, else Ingress and, with egress rules, Egress", () => {
  const types = (spec: object) =>
    networkPolicyViewOf({ metadata: { name: "p", namespace: "x" }, spec })?.policy?.isolates;
  assert.deepEqual(types({ podSelector: {} }), { ingress: true, egress: false });
  assert.deepEqual(types({ podSelector: {}, egress: [{}] }), { ingress: true, egress: true });
  assert.deepEqual(types({ podSelector: {}, egress: [] }), { ingress: true, egress: false });
  assert.deepEqual(types({ podSelector: {}, policyTypes: ["Egress"] }), {
    ingress: false,
    egress: true,
  });
});

test("rules: absent or empty peers and ports mean everyone and every port; ports default to TCP", () => {
  const policy = networkPolicyViewOf({
    metadata: { name: "p", namespace: "x" },
    spec: {
      podSelector: {},
      ingress: [
        {},
        { from: [], ports: [{ port: 80 }, { protocol: "UDP" }, { port: 80, endPort: 90 }] },
      ],
    },
  })?.policy;
  assert.deepEqual(policy?.ingress, [
    { peers: null, ports: null },
    {
      peers: null,
      ports: [
        { protocol: "TCP", port: 80, endPort: null },
        { protocol: "UDP", port: null, endPort: null },
        { protocol: "TCP", port: 80, endPort: 90 },
      ],
    },
  ]);
});

test("a policy that cannot be used names each problem and keeps no rules", () => {
  const problems = (spec: object) =>
    networkPolicyViewOf({ metadata: { name: "p", namespace: "x" }, spec });
  const cases: [object, string][] = [
    [
      { ingress: [{ from: [{ ipBlock: { cidr: "10.0.0.0/33" } }] }] },
      'spec.ingress[0].from[0].ipBlock.cidr "10.0.0.0/33" is not a CIDR such as "10.0.0.0/8"',
    ],
    [
      { ingress: [{ from: [{ ipBlock: { cidr: "10.0.0.0/8", except: ["11.0.0.0/16"] } }] }] },
      'spec.ingress[0].from[0].ipBlock.except[0] "11.0.0.0/16" is not inside cidr "10.0.0.0/8"',
    ],
    [
      { egress: [{ ports: [{ port: "Serve_80" }] }] },
      'spec.egress[0].ports[0].port "Serve_80" is not a port name (1-15 lowercase letters, digits and "-")',
    ],
    [
      { egress: [{ ports: [{ port: "web", endPort: 90 }] }] },
      'spec.egress[0].ports[0].endPort needs a numeric port, not "web"',
    ],
    [
      { egress: [{ ports: [{ port: 90, endPort: 80 }] }] },
      "spec.egress[0].ports[0].endPort 80 must be a port number at or above port",
    ],
    [
      { egress: [{ ports: [{ port: 80, protocol: "ICMP" }] }] },
      'spec.egress[0].ports[0].protocol "ICMP" is not TCP, UDP or SCTP',
    ],
    [
      { ingress: [{ from: [{ podSelector: { matchLabels: { app: true } } }] }] },
      "spec.ingress[0].from[0].podSelector.matchLabels must map label keys to string values",
    ],
    [
      { ingress: [{ from: [{}] }] },
      "spec.ingress[0].from[0] names no podSelector, namespaceSelector or ipBlock",
    ],
  ];
  for (const [rules, message] of cases) {
    const read = problems({ podSelector: {}, ...rules });
    assert.deepEqual(read?.problems, [message]);
    assert.deepEqual([read?.policy?.ingress, read?.policy?.egress], [[], []], message);
  }
  const unknowable = problems({
    podSelector: { matchExpressions: [{ key: "a", operator: "Near" }] },
  });
  assert.equal(
    unknowable?.policy,
    null,
    "a podSelector that cannot be read: the policy is skipped",
  );
});

test("an ipBlock minus its exceptions, as merged ranges", () => {
  const net = (s: string) => IPNet.parse(s) as IPNet;
  const ranges = blockRanges(net("10.0.0.0/24"), [
    net("10.0.0.0/26"),
    net("10.0.0.128/32"),
    net("10.0.0.64/26"),
  ]);
  assert.deepEqual(
    ranges.map((r) => formatRange(4, r)),
    ["10.0.0.129-10.0.0.255"],
  );
  assert.deepEqual(
    blockRanges(net("10.0.0.5/32"), []).map((r) => formatRange(4, r)),
    ["10.0.0.5"],
  );
  assert.deepEqual(blockRanges(net("10.0.0.0/30"), [net("10.0.0.0/30")]), []);
});
