import assert from "node:assert/strict";
import { test } from "node:test";
import { parseWireGuardConfig } from "./config.js";

test("parseWireGuardConfig() has flannel's defaults", () => {
  assert.deepEqual(parseWireGuardConfig({ Type: "wireguard" }), {
    listenPort: 51_820,
    listenPortV6: 51_821,
    psk: null,
    keepaliveSeconds: 0,
    mode: "separate",
    mtu: null,
  });
});

test("parseWireGuardConfig() takes each option, keys in any case, as Go does", () => {
  const psk = Buffer.alloc(32, 7).toString("base64");
  const c = parseWireGuardConfig({
    listenport: 5000,
    ListenPortV6: 5001,
    psk,
    PersistentKeepaliveInterval: 25,
    Mode: "auto",
    MTU: 9000,
  });
  assert.equal(c.listenPort, 5000);
  assert.equal(c.listenPortV6, 5001);
  assert.equal(c.psk?.toString("base64"), psk);
  assert.equal(c.keepaliveSeconds, 25);
  assert.equal(c.mode, "auto");
  assert.equal(c.mtu, 9000);
});

test("parseWireGuardConfig() refuses bad options with flannel's words and what is expected", () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [
      { Mode: "both" },
      /No valid Mode configured \("both"\): expected separate, auto, ipv4 or ipv6/,
    ],
    [
      { PSK: "not base64!" },
      /could not parse psk: wgtypes: failed to parse base64-encoded key: illegal base64 data at input byte 3/,
    ],
    [
      { PSK: Buffer.alloc(31).toString("base64") },
      /could not parse psk: wgtypes: incorrect key size: 31/,
    ],
    [{ ListenPort: 70_000 }, /ListenPort: expected ListenPort as a UDP port from 1 to 65535/],
    [{ PersistentKeepaliveInterval: "25s" }, /PersistentKeepaliveInterval/],
    [{ PersistentKeepaliveInterval: 1.5 }, /whole seconds/],
  ];
  for (const [backend, message] of cases)
    assert.throws(
      () => parseWireGuardConfig(backend),
      (err: Error) => {
        assert.match(err.message, /^Invalid wireguard backend config: /);
        assert.match(err.message, message);
        return true;
      },
    );
});
