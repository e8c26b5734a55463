import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { CniError } from "./cni_error.js";
import { buildDelegateConf, parseNetConf } from "./netconf.js";
import type { FlannelSubnetEnv } from "./netconf.js";
import { IPNet } from "../ip/ip.js";

const env: FlannelSubnetEnv = {
  networks: [IPNet.parse("10.1.0.0/16")!],
  subnet: IPNet.parse("10.1.17.0/24"),
  ipv6Networks: [],
  ipv6Subnet: null,
  mtu: 1450,
  ipMasq: true,
};

const confKeys = [
  "name",
  "type",
  "cniVersion",
  "delegate",
  "ipam",
  "subnetFile",
  "dataDir",
  "runtimeConfig",
  "prevResult",
];

test("parseNetConf() and buildDelegateConf() give a config or a CniError for any stdin, never another exception", () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.string(),
        fc.jsonValue().map((v) => JSON.stringify(v)),
        fc.dictionary(fc.constantFrom(...confKeys), fc.jsonValue()).map((o) => JSON.stringify(o)),
        fc
          .record({
            name: fc.string(),
            delegate: fc.dictionary(fc.string(), fc.jsonValue()),
            ipam: fc.record({ routes: fc.jsonValue() }),
          })
          .map((o) => JSON.stringify(o)),
      ),
      (stdin) => {
        try {
          buildDelegateConf(parseNetConf(stdin), env);
        } catch (err) {
          assert.ok(err instanceof CniError, `${stdin}: ${String(err)}`);
        }
      },
    ),
  );
});
