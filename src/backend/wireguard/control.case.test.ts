/**
 * What every WgControl must do, as one suite each implementation runs against a real device:
 * test/netns/wireguard_control.test.ts runs it for the UAPI socket and for `wg`, on wireguard-go
 * (this machine's kernel has no WireGuard).
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { WgControl, WgPeer } from "./control.js";
import { generatePrivateKey, publicKeyOf } from "./keys.js";

/** A device to run the contract on, and its teardown. */
export interface WgControlHarness {
  readonly control: WgControl;
  cleanup(): Promise<void>;
}

const opts = () => ({ signal: AbortSignal.timeout(30_000) });
const newKey = () => publicKeyOf(generatePrivateKey()).toString("base64");
const peer = (i: number, extra: Partial<WgPeer> = {}): WgPeer => ({
  publicKey: newKey(),
  presharedKey: null,
  endpoint: `192.0.2.${(i % 250) + 1}:${51_820 + Math.floor(i / 250)}`,
  allowedIPs: [`10.${Math.floor(i / 256)}.${i % 256}.0/24`],
  keepaliveSeconds: 0,
  ...extra,
});

async function withDevice(
  open: () => Promise<WgControlHarness>,
  body: (c: WgControl) => Promise<void>,
) {
  const h = await open();
  try {
    await body(h.control);
  } finally {
    await h.cleanup();
  }
}

/** Runs the contract suite against one implementation. */
export function describeWgControl(name: string, open: () => Promise<WgControlHarness>): void {
  describe(`WgControl contract: ${name}`, () => {
    test("apply() sets the private key and port; get() gives the public key back", async () => {
      await withDevice(open, async (c) => {
        const privateKey = generatePrivateKey();
        await c.apply(
          { privateKey: privateKey.toString("base64"), listenPort: 51_900, upsert: [], remove: [] },
          opts(),
        );
        const state = await c.get(opts());
        assert.equal(state.publicKey, publicKeyOf(privateKey).toString("base64"));
        assert.equal(state.listenPort, 51_900);
        assert.deepEqual(state.peers, []);
      });
    });

    test("apply() adds peers with endpoint, AllowedIPs, PSK and keepalive; get() reads them as set", async () => {
      await withDevice(open, async (c) => {
        const psk = generatePrivateKey().toString("base64");
        const a = peer(1, {
          presharedKey: psk,
          keepaliveSeconds: 25,
          allowedIPs: ["10.244.1.0/24", "fd00:10:244:1::/64"],
        });
        const b = peer(2, { endpoint: "[fd00::2]:51821" });
        await c.apply({ upsert: [a, b], remove: [] }, opts());
        const peers = new Map((await c.get(opts())).peers.map((p) => [p.publicKey, p]));
        assert.equal(peers.size, 2);
        const gotA = peers.get(a.publicKey);
        assert.equal(gotA?.endpoint, a.endpoint);
        assert.deepEqual([...(gotA?.allowedIPs ?? [])].sort(), [...a.allowedIPs].sort());
        assert.equal(gotA?.presharedKey, psk);
        assert.equal(gotA?.keepaliveSeconds, 25);
        assert.equal(gotA?.lastHandshakeMs, null, "no handshake yet");
        const gotB = peers.get(b.publicKey);
        assert.equal(gotB?.endpoint, "[fd00::2]:51821");
        assert.equal(gotB?.presharedKey, null);
        assert.equal(gotB?.keepaliveSeconds, 0);
      });
    });

    test("apply() replaces a peer's AllowedIPs and endpoint rather than adding to them, and removes peers", async () => {
      await withDevice(open, async (c) => {
        const a = peer(1);
        const b = peer(2);
        await c.apply({ upsert: [a, b], remove: [] }, opts());
        const moved = { ...a, endpoint: "192.0.2.99:51820", allowedIPs: ["10.99.0.0/24"] };
        await c.apply({ upsert: [moved], remove: [b.publicKey] }, opts());
        const { peers } = await c.get(opts());
        assert.deepEqual(
          peers.map((p) => [p.publicKey, p.endpoint, p.allowedIPs]),
          [[a.publicKey, "192.0.2.99:51820", ["10.99.0.0/24"]]],
        );
      });
    });

    test("a PSK set can be taken away again", async () => {
      await withDevice(open, async (c) => {
        const a = peer(1, { presharedKey: generatePrivateKey().toString("base64") });
        await c.apply({ upsert: [a], remove: [] }, opts());
        await c.apply({ upsert: [{ ...a, presharedKey: null }], remove: [] }, opts());
        assert.equal((await c.get(opts())).peers[0]?.presharedKey, null);
      });
    });

    test("1,000 peers go in one apply() and all read back", async () => {
      await withDevice(open, async (c) => {
        const peers = Array.from({ length: 1_000 }, (_, i) => peer(i));
        await c.apply({ upsert: peers, remove: [] }, opts());
        const got = new Map((await c.get(opts())).peers.map((p) => [p.publicKey, p]));
        assert.equal(got.size, 1_000);
        for (const p of peers) assert.deepEqual(got.get(p.publicKey)?.allowedIPs, p.allowedIPs);
      });
    });
  });
}
