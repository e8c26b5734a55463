import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { ConfigError } from "../errors.js";
import { loadNetworkConfig } from "./network_config.js";

/** Values of every JSON kind, and strings that look like what the keys want. */
const value = fc.oneof(
  fc.jsonValue(),
  fc.tuple(fc.ipV4(), fc.integer({ min: 0, max: 32 })).map(([ip, len]) => `${ip}/${len}`),
  fc.ipV6().map((ip) => `${ip}/64`),
  fc.integer({ min: -5, max: 200 }),
);
const keys = [
  "Network",
  "network",
  "SubnetLen",
  "SubnetMin",
  "SubnetMax",
  "EnableIPv4",
  "EnableIPv6",
  "IPv6Network",
  "IPv6SubnetLen",
  "EnableNFTables",
  "Backend",
  "backend",
];

test("loadNetworkConfig() gives a config or a ConfigError for any input, never another exception", () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.string(),
        fc.jsonValue().map((v) => JSON.stringify(v)),
        fc.dictionary(fc.constantFrom(...keys), value).map((o) => JSON.stringify(o)),
        fc
          .record({
            Network: fc.ipV4().map((ip) => `${ip}/16`),
            Backend: fc.dictionary(fc.constantFrom("Type", "VNI", "Port"), value),
          })
          .map((o) => JSON.stringify(o)),
      ),
      (text) => {
        try {
          const config = loadNetworkConfig(text);
          assert.equal(typeof config.backendType, "string");
        } catch (err) {
          assert.ok(err instanceof ConfigError, `${text}: ${String(err)}`);
        }
      },
    ),
  );
});
