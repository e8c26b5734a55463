import assert from "node:assert/strict";
import { test } from "node:test";
import { decodeLeaseAttrs, encodeLeaseAttrs } from "./lease.js";

test("encodeLeaseAttrs() writes flannel's bytes with only a PublicIP", () => {
  assert.equal(
    encodeLeaseAttrs({ publicIP: "1.2.3.4", publicIPv6: null, backendType: "" }),
    '{"PublicIP":"1.2.3.4","PublicIPv6":null}',
  );
});

test("encodeLeaseAttrs() writes flannel's vxlan lease", () => {
  const attrs = {
    publicIP: "192.168.64.3",
    publicIPv6: null,
    backendType: "vxlan",
    backendData: { VNI: 1, VtepMAC: "c6:d2:32:6f:8f:44" },
  };
  assert.equal(
    encodeLeaseAttrs(attrs),
    '{"PublicIP":"192.168.64.3","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}',
  );
});

test("encodeLeaseAttrs() escapes <, > and & as Go does", () => {
  const text = encodeLeaseAttrs({
    publicIP: "1.2.3.4",
    publicIPv6: null,
    backendType: "x",
    backendData: { s: "<&>" },
  });
  assert.ok(text.includes('"s":"\\u003c\\u0026\\u003e"'));
});

test("decodeLeaseAttrs() reads keys in any case and round-trips", () => {
  const text =
    '{"PublicIP":"10.0.0.1","PublicIPv6":"fd00::1","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:ff"},"BackendV6Data":{"VNI":1}}';
  assert.equal(encodeLeaseAttrs(decodeLeaseAttrs(text)), text);
  assert.equal(decodeLeaseAttrs('{"publicip":"10.0.0.1"}').publicIP, "10.0.0.1");
});

for (const bad of [
  "{",
  '{"PublicIP":"nope"}',
  '{"PublicIPv6":"fd00::1"}',
  '{"PublicIP":"10.0.0.1","PublicIPv6":"10.0.0.2"}',
]) {
  test(`decodeLeaseAttrs() rejects ${bad}`, () =>
    assert.throws(() => decodeLeaseAttrs(bad), TypeError));
}
