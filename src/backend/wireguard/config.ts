/**
 * The wireguard options of the Backend object, as flannel's pkg/backend/wireguard reads them:
 * `ListenPort` (51820), `ListenPortV6` (51821, the IPv6 device's in separate mode), `PSK` (base64
 * of 32 bytes, shared by every host), `PersistentKeepaliveInterval` (seconds, 0 = off), `Mode`
 * (`separate`: a device per family; `auto`, `ipv4`, `ipv6`: one device, peers reached over the
 * family the mode names), and `MTU` (the underlay's, default the external interface's).
 */
import * as z from "zod";
import { formatIssues, goJson } from "../../config/go_json.js";
import { ConfigError } from "../../errors.js";
import { parseKey } from "./keys.js";

/** What WireGuard adds to a packet: an IPv6 and a UDP header, type, index, nonce and tag. */
export const WIREGUARD_OVERHEAD = 80;

/** flannel's modes. */
export const MODES = ["separate", "auto", "ipv4", "ipv6"] as const;
export type WireGuardMode = (typeof MODES)[number];

const port = (what: string) =>
  z
    .number()
    .int(`expected ${what} as a UDP port from 1 to 65535`)
    .min(1, `expected ${what} as a UDP port from 1 to 65535`)
    .max(65_535, `expected ${what} as a UDP port from 1 to 65535`);

const WireGuardConfigSchema = goJson({
  ListenPort: port("ListenPort").default(51_820),
  ListenPortV6: port("ListenPortV6").default(51_821),
  PSK: z.string("expected PSK as a string: the base64 of 32 bytes (wg genpsk)").default(""),
  // A Go time.Duration read from JSON: whole numbers only, then taken as seconds.
  PersistentKeepaliveInterval: z
    .number()
    .int("expected PersistentKeepaliveInterval as whole seconds (0 turns it off)")
    .min(0, "expected PersistentKeepaliveInterval as whole seconds (0 turns it off)")
    .max(65_535, "expected PersistentKeepaliveInterval of at most 65535 seconds")
    .default(0),
  Mode: z.string("expected Mode as a string: separate, auto, ipv4 or ipv6").default("separate"),
  MTU: z
    .number()
    .int()
    .min(1280 + WIREGUARD_OVERHEAD, `expected an MTU of at least ${1280 + WIREGUARD_OVERHEAD}`)
    .optional(),
});

/** The wireguard options, decoded and checked. */
export interface WireGuardConfig {
  readonly listenPort: number;
  readonly listenPortV6: number;
  /** The preshared key; null when none is set. */
  readonly psk: Buffer | null;
  readonly keepaliveSeconds: number;
  readonly mode: WireGuardMode;
  /** The underlay MTU the devices' are derived from; null: the external interface's. */
  readonly mtu: number | null;
}

/** Decodes the Backend object's wireguard options (keys in any case, as in Go). */
export function parseWireGuardConfig(backend: Readonly<Record<string, unknown>>): WireGuardConfig {
  const parsed = WireGuardConfigSchema.safeParse(backend);
  if (!parsed.success)
    throw new ConfigError(`Invalid wireguard backend config: ${formatIssues(parsed.error)}`);
  const c = parsed.data;
  const mode = MODES.find((m) => m === c.Mode);
  if (mode === undefined)
    throw new ConfigError(
      `Invalid wireguard backend config: No valid Mode configured ("${c.Mode}"): expected separate, auto, ipv4 or ipv6`,
    );
  let psk: Buffer | null = null;
  try {
    psk = c.PSK === "" ? null : parseKey(c.PSK, "psk");
  } catch (err) {
    throw new ConfigError(`Invalid wireguard backend config: ${(err as Error).message}`);
  }
  return {
    listenPort: c.ListenPort,
    listenPortV6: c.ListenPortV6,
    psk,
    keepaliveSeconds: c.PersistentKeepaliveInterval,
    mode,
    mtu: c.MTU ?? null,
  };
}
