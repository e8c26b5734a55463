import assert from "node:assert/strict";
import { test } from "node:test";
import { IPNet, formatIPv6, parseIPv4, parseIPv6 } from "./ip.js";

const v6cases = [
  { text: "fc00::", want: "fc00::" },
  { text: "fc00:0:0:1::", want: "fc00:0:0:1::" },
  { text: "FC00:0000:0000:0001:0000:0000:0000:0000", want: "fc00:0:0:1::" },
  { text: "::1", want: "::1" },
  { text: "::", want: "::" },
  { text: "1:0:0:1:0:0:0:1", want: "1:0:0:1::1" },
  { text: "1:0:1:0:1:0:1:0", want: "1:0:1:0:1:0:1:0" },
  // Go's net.IP.String() prints an IPv4-mapped address as the IPv4 address.
  { text: "::ffff:1.2.3.4", want: "1.2.3.4" },
];
for (const tc of v6cases) {
  test(`formatIPv6() prints ${tc.text} as Go does`, () => {
    const value = parseIPv6(tc.text);
    assert.notEqual(value, null);
    assert.equal(formatIPv6(value!), tc.want);
  });
}

for (const bad of ["1.2.3", "1.2.3.256", "01.2.3.4", "1.2.3.4.5", "a.b.c.d", ""]) {
  test(`parseIPv4() rejects "${bad}"`, () => assert.equal(parseIPv4(bad), null));
}
for (const bad of [":::", "1::2::3", "12345::", "1:2:3:4:5:6:7:8:9", "fe80::1%eth0", "g::"]) {
  test(`parseIPv6() rejects "${bad}"`, () => assert.equal(parseIPv6(bad), null));
}

test("IPNet.parse() masks host bits", () => {
  assert.equal(IPNet.parse("10.1.2.3/16")?.toString(), "10.1.0.0/16");
  assert.equal(IPNet.parse("fd00:10:244:3::1/56")?.toString(), "fd00:10:244::/56");
});

test("IPNet.parse() rejects a prefix longer than the family allows", () => {
  assert.equal(IPNet.parse("10.0.0.0/33"), null);
  assert.equal(IPNet.parse("10.0.0.0"), null);
});

test("IPNet overlaps(), containsNet() and next() follow flannel's IP4Net", () => {
  const net = IPNet.parse("10.244.0.0/16")!;
  const sub = IPNet.parse("10.244.3.0/24")!;
  assert.ok(net.containsNet(sub));
  assert.ok(net.overlaps(sub) && sub.overlaps(net));
  assert.ok(!sub.overlaps(IPNet.parse("10.244.4.0/24")!));
  assert.equal(sub.next().toString(), "10.244.4.0/24");
  assert.equal(net.size, 65536n);
});
