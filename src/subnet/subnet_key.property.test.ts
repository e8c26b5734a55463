import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { IPNet } from "../ip/ip.js";
import { makeSubnetKey } from "../lease/lease.js";
import { parseSubnetKey } from "./subnet_key.js";

test("parseSubnetKey() gives a subnet or null for any string, never an exception", () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.string(),
        fc.ipV4().map((ip) => `${ip}-24`),
        fc.ipV6().map((ip) => `10.0.0.0-8&${ip}-64`),
      ),
      (key) => {
        const parsed = parseSubnetKey(key);
        assert.ok(parsed === null || parsed.subnet.family === 4);
      },
    ),
  );
});

test("parseSubnetKey() reads back every key makeSubnetKey() writes", () => {
  fc.assert(
    fc.property(fc.ipV4(), fc.integer({ min: 8, max: 30 }), (ip, len) => {
      const subnet = IPNet.parse(`${ip}/${len}`);
      assert.ok(subnet !== null);
      const parsed = parseSubnetKey(makeSubnetKey(subnet, null));
      assert.equal(parsed?.subnet.toString(), subnet.toString());
    }),
  );
});
