/**
 * Configuring a WireGuard device: one interface, with two implementations beside it. uapi.ts
 * speaks wireguard-go's configuration protocol over its UNIX socket (wireguard.com/xplatform);
 * wg_tool.ts runs `wg`, which reaches the kernel's device over generic netlink and a userspace
 * one over the same socket. control.case.test.ts is the contract both pass. Keys are base64
 * here, as in leases and in `wg`.
 */
import { FlannelError } from "../../errors.js";
import type { CallOptions } from "../../util/call_options.js";

/** A request the device refused, or a socket that does not answer. */
export class WgControlError extends FlannelError {
  constructor(
    message: string,
    readonly errno: number | null = null,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** A peer as flanneld wants it. */
export interface WgPeer {
  readonly publicKey: string;
  /** The preshared key (base64); null for none. */
  readonly presharedKey: string | null;
  /** `ip:port`, or `[ipv6]:port`. */
  readonly endpoint: string;
  /** CIDRs, in their canonical form (`10.244.2.0/24`). */
  readonly allowedIPs: readonly string[];
  /** Seconds; 0 is off. */
  readonly keepaliveSeconds: number;
}

/** A peer as the device holds it, with its figures. */
export interface WgPeerState {
  readonly publicKey: string;
  readonly presharedKey: string | null;
  /** null when the device knows no endpoint for it. */
  readonly endpoint: string | null;
  readonly allowedIPs: readonly string[];
  readonly keepaliveSeconds: number;
  /** When the latest handshake completed (ms since the epoch); null: never. */
  readonly lastHandshakeMs: number | null;
  readonly rxBytes: number;
  readonly txBytes: number;
}

/** The device as it is. */
export interface WgDeviceState {
  /** Base64; null when it has no private key. */
  readonly publicKey: string | null;
  readonly listenPort: number;
  readonly peers: readonly WgPeerState[];
}

/** One transaction: the device's own settings, then peers set or removed. */
export interface WgChange {
  /** The private key (base64); absent: unchanged. */
  readonly privateKey?: string;
  readonly listenPort?: number;
  /** Peers to add or replace (AllowedIPs replaced, not added to). */
  readonly upsert: readonly WgPeer[];
  /** Public keys of peers to remove. */
  readonly remove: readonly string[];
}

/** Configures one WireGuard device. */
export interface WgControl {
  /** "uapi" or "wg": what reaches the device. */
  readonly via: string;
  /** The device's settings and peers. */
  get(opts: CallOptions): Promise<WgDeviceState>;
  /** Applies a change in one transaction. */
  apply(change: WgChange, opts: CallOptions): Promise<void>;
}
