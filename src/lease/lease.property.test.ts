import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { decodeLeaseAttrs, encodeLeaseAttrs } from "./lease.js";
import type { JsonValue } from "./lease.js";

test("decodeLeaseAttrs() gives attributes or a TypeError for any text, never another exception", () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.string(),
        fc.jsonValue().map((v) => JSON.stringify(v)),
        fc
          .record({ PublicIP: fc.oneof(fc.ipV4(), fc.string()), BackendData: fc.jsonValue() })
          .map((o) => JSON.stringify(o)),
      ),
      (text) => {
        try {
          decodeLeaseAttrs(text);
        } catch (err) {
          assert.ok(err instanceof TypeError, `${text}: ${String(err)}`);
        }
      },
    ),
  );
});

test("decodeLeaseAttrs() reads back what encodeLeaseAttrs() writes, byte for byte", () => {
  fc.assert(
    fc.property(
      fc.ipV4(),
      fc.constantFrom("vxlan", "host-gw", ""),
      fc.option(fc.jsonValue(), { nil: undefined }),
      (publicIP, backendType, data) => {
        const attrs = {
          publicIP,
          publicIPv6: null,
          backendType,
          ...(data !== undefined && data !== null ? { backendData: data as JsonValue } : {}),
        };
        const text = encodeLeaseAttrs(attrs);
        assert.equal(encodeLeaseAttrs(decodeLeaseAttrs(text)), text);
      },
    ),
  );
});
