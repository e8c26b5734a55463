import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ConfigError } from "../../errors.js";
import { parseExtensionConfig } from "./config.js";

describe("parseExtensionConfig", () => {
  test("reads flannel's four commands in any case, with a 60 s timeout by default", () => {
    const c = parseExtensionConfig({
      Type: "extension",
      prestartupcommand: "echo pre",
      SubnetAddCommand: "ip route replace $SUBNET via $PUBLIC_IP",
    });
    assert.deepEqual(c.commands, {
      PreStartupCommand: "echo pre",
      PostStartupCommand: "",
      SubnetAddCommand: "ip route replace $SUBNET via $PUBLIC_IP",
      SubnetRemoveCommand: "",
    });
    assert.equal(c.timeoutMs, 60_000);
    assert.equal(parseExtensionConfig({ CommandTimeout: 5 }).timeoutMs, 5_000);
  });

  test("names the option and what it expects", () => {
    assert.throws(
      () => parseExtensionConfig({ SubnetAddCommand: ["ip", "route"] }),
      (err: Error) =>
        err instanceof ConfigError &&
        /SubnetAddCommand/.test(err.message) &&
        /a shell command/.test(err.message),
    );
    assert.throws(
      () => parseExtensionConfig({ CommandTimeout: 0 }),
      (err: Error) =>
        err instanceof ConfigError && /CommandTimeout of at least 1 second/.test(err.message),
    );
  });
});
