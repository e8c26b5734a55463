import assert from "node:assert/strict";
import { test } from "node:test";
import { decodeLeaseAttrs, encodeLeaseAttrs } from "../../lease/lease.js";
import { newAnnotations } from "./annotations.js";
import { NodeLeaseError, annotationsToWrite, nodeToLease, storedVtepMacs } from "./node_lease.js";
import type { NodeView } from "./node_lease.js";

const a = newAnnotations("flannel.alpha.coreos.com");
const v4 = { enableIPv4: true, enableIPv6: false };
const P = "flannel.alpha.coreos.com/";

/** A Node as flannel (Go) annotates one on vxlan. */
const goNode = (annotations: Record<string, string> = {}): NodeView => ({
  name: "go1",
  podCIDR: "10.244.7.0/24",
  podCIDRs: ["10.244.7.0/24"],
  annotations: {
    [`${P}backend-data`]: '{"VNI":1,"VtepMAC":"6e:2b:0a:11:22:33"}',
    [`${P}backend-type`]: "vxlan",
    [`${P}kube-subnet-manager`]: "true",
    [`${P}public-ip`]: "192.168.50.7",
    ...annotations,
  },
});

test("nodeToLease() reads a Node annotated by flannel (Go) as the lease flannel would make", () => {
  const lease = nodeToLease(goNode(), a, v4);
  assert.ok(lease !== null);
  assert.equal(lease.subnet?.toString(), "10.244.7.0/24");
  assert.equal(
    encodeLeaseAttrs(lease.attrs),
    '{"PublicIP":"192.168.50.7","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"6e:2b:0a:11:22:33"}}',
  );
});

test("nodeToLease() takes spec.podCIDR when spec.podCIDRs is empty, and masks host bits as Go does", () => {
  const lease = nodeToLease({ ...goNode(), podCIDRs: [], podCIDR: "10.244.7.9/24" }, a, v4);
  assert.equal(lease?.subnet?.toString(), "10.244.7.0/24");
});

test("nodeToLease() ignores Nodes that are not flannel's or have no pod CIDR yet", () => {
  assert.equal(nodeToLease(goNode({ [`${P}kube-subnet-manager`]: "false" }), a, v4), null);
  assert.equal(nodeToLease({ ...goNode(), podCIDR: "", podCIDRs: [] }, a, v4), null);
});

const bad: { name: string; node: NodeView; error: RegExp }[] = [
  {
    name: "backend-data that is not JSON",
    node: goNode({ [`${P}backend-data`]: "{VNI:1" }),
    error: /go1.*backend-data that is not JSON/,
  },
  {
    name: "a vxlan backend-data without VtepMAC",
    node: goNode({ [`${P}backend-data`]: '{"VNI":1}' }),
    error: /go1.*without a usable VtepMAC/,
  },
  {
    name: "a vxlan backend-data with a bad MAC",
    node: goNode({ [`${P}backend-data`]: '{"VNI":1,"VtepMAC":"zz:zz"}' }),
    error: /go1.*without a usable VtepMAC/,
  },
  {
    name: "a public-ip that is not an IPv4 address",
    node: goNode({ [`${P}public-ip`]: "10.0.0.300" }),
    error: /go1.*public-ip "10\.0\.0\.300": expected an IPv4 address/,
  },
  {
    name: "no public-ip at all",
    node: goNode({ [`${P}public-ip`]: "" }),
    error: /go1.*public-ip "": expected an IPv4 address/,
  },
  {
    name: "a pod CIDR that is not a CIDR",
    node: { ...goNode(), podCIDRs: ["10.244.7.0/33"] },
    error: /go1.*invalid pod CIDR "10\.244\.7\.0\/33"/,
  },
  {
    name: "three pod CIDRs",
    node: { ...goNode(), podCIDRs: ["10.1.0.0/24", "10.2.0.0/24", "fd00::/64"] },
    error: /go1.*IPv4\/IPv6 only or dualstack/,
  },
];
for (const tc of bad) {
  test(`nodeToLease() refuses a Node with ${tc.name}, naming it`, () => {
    assert.throws(
      () => nodeToLease(tc.node, a, v4),
      (err: unknown) => err instanceof NodeLeaseError && tc.error.test(err.message),
    );
  });
}

test("annotationsToWrite() writes flannel's exact annotations for a vxlan host, and nothing when they are there", () => {
  const fresh: NodeView = {
    name: "h1",
    podCIDR: "10.244.1.0/24",
    podCIDRs: ["10.244.1.0/24"],
    annotations: {},
  };
  const attrs = decodeLeaseAttrs(
    '{"PublicIP":"10.250.0.11","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:ff"}}',
  );
  const want = annotationsToWrite(fresh, attrs, a);
  assert.deepEqual(want, {
    [`${P}backend-data`]: '{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:ff"}',
    [`${P}backend-type`]: "vxlan",
    [`${P}kube-subnet-manager`]: "true",
    [`${P}public-ip`]: "10.250.0.11",
  });
  assert.equal(annotationsToWrite({ ...fresh, annotations: want ?? {} }, attrs, a), null);
});

test("annotationsToWrite() writes backend-data null for host-gw, as Go marshals an empty RawMessage", () => {
  const fresh: NodeView = { name: "h1", podCIDR: "10.244.1.0/24", podCIDRs: [], annotations: {} };
  const want = annotationsToWrite(
    fresh,
    { publicIP: "10.250.0.11", publicIPv6: null, backendType: "host-gw" },
    a,
  );
  assert.equal(want?.[`${P}backend-data`], "null");
});

test("annotationsToWrite() publishes public-ip-overwrite instead of the detected address", () => {
  const node: NodeView = {
    name: "h1",
    podCIDR: "10.244.1.0/24",
    podCIDRs: [],
    annotations: { [`${P}public-ip-overwrite`]: "172.18.0.2" },
  };
  const want = annotationsToWrite(
    node,
    { publicIP: "10.250.0.11", publicIPv6: null, backendType: "host-gw" },
    a,
  );
  assert.equal(want?.[`${P}public-ip`], "172.18.0.2");
});

test("storedVtepMacs() reads back the MAC this node announced", () => {
  assert.deepEqual(storedVtepMacs(goNode(), a), { v4: "6e:2b:0a:11:22:33", v6: null });
  assert.deepEqual(storedVtepMacs(goNode({ [`${P}backend-data`]: "garbage" }), a), {
    v4: null,
    v6: null,
  });
});
