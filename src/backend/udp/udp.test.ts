import assert from "node:assert/strict";
import { test } from "node:test";
import { ConfigError } from "../../errors.js";
import { DEFAULT_UDP_PORT, parseUdpConfig } from "./udp.js";

test("parseUdpConfig: flannel's default port, offloads on, keys in any case", () => {
  const cfg = parseUdpConfig({ Type: "udp" });
  assert.equal(cfg.Port, DEFAULT_UDP_PORT);
  assert.equal(cfg.Offload, true);
  assert.ok(cfg.Workers >= 1 && cfg.Workers <= 2);
  assert.deepEqual(parseUdpConfig({ type: "udp", port: 9000, offload: false, workers: 4 }), {
    Port: 9000,
    Offload: false,
    Workers: 4,
  });
});

test("parseUdpConfig refuses options it cannot use, naming them", () => {
  for (const [backend, words] of [
    [{ Port: 0 }, /Port: expected a UDP port from 1 to 65535/],
    [{ Port: "8285" }, /Port/],
    [{ Workers: 0 }, /Workers: expected 1 to 16 workers/],
    [{ Offload: "yes" }, /Offload/],
  ] as const) {
    assert.throws(
      () => parseUdpConfig({ Type: "udp", ...backend }),
      (err: unknown) => err instanceof ConfigError && words.test(err.message),
      JSON.stringify(backend),
    );
  }
});
