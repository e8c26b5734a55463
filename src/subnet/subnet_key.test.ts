import assert from "node:assert/strict";
import { test } from "node:test";
import { IPNet } from "../ip/ip.js";
import { makeSubnetKey, parseSubnetKey } from "./subnet_key.js";

test("makeSubnetKey() writes flannel's keys", () => {
  assert.equal(makeSubnetKey(IPNet.parse("10.1.5.0/24")!, null), "10.1.5.0-24");
  assert.equal(
    makeSubnetKey(IPNet.parse("10.12.13.0/24")!, IPNet.parse("fd00:12:13::/56")!),
    "10.12.13.0-24&fd00:12:13::-56",
  );
});

for (const key of ["10.1.5.0-24", "10.12.13.0-24&fd00:12:13::-56", "10.244.0.0-16"]) {
  test(`parseSubnetKey() round-trips ${key}`, () => {
    const parsed = parseSubnetKey(key);
    assert.ok(parsed);
    assert.equal(makeSubnetKey(parsed.subnet, parsed.ipv6Subnet), key);
  });
}

// flannel's TestSubnetNodeInvalid list, and keys with host bits set.
for (const key of [
  "10.1.5.0",
  "10.1.5.0-",
  "10.1.5.0-24-",
  "foo",
  "10.1.5.0-33",
  "256.1.5.0-24",
  "10.1.5.1-24",
  "10.1.5.0-24&fd00::",
  "10.1.5.0-24&fd00::1-64",
  "10.1.5.0/24",
]) {
  test(`parseSubnetKey() rejects "${key}"`, () => assert.equal(parseSubnetKey(key), null));
}
