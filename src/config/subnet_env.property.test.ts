import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { IPNet } from "../ip/ip.js";
import { formatSubnetEnv, parseEnvFile } from "./subnet_env.js";

test("parseEnvFile() reads any text without an exception", () => {
  fc.assert(
    fc.property(fc.string({ unit: "binary" }), (text) => {
      assert.ok(parseEnvFile(text) instanceof Map);
    }),
  );
});

test("parseEnvFile() reads back what formatSubnetEnv() writes", () => {
  fc.assert(
    fc.property(
      fc.ipV4(),
      fc.integer({ min: 8, max: 24 }),
      fc.integer({ min: 68, max: 9000 }),
      fc.boolean(),
      (ip, len, mtu, ipMasq) => {
        const network = IPNet.parse(`${ip}/${len}`);
        const subnet = IPNet.parse(`${ip}/${len + 4}`);
        assert.ok(network !== null && subnet !== null);
        const env = parseEnvFile(
          formatSubnetEnv({ network, subnet, ipv6Network: null, ipv6Subnet: null, mtu, ipMasq }),
        );
        assert.equal(env.get("FLANNEL_NETWORK"), network.toString());
        assert.equal(env.get("FLANNEL_MTU"), String(mtu));
        assert.equal(env.get("FLANNEL_IPMASQ"), String(ipMasq));
      },
    ),
  );
});
