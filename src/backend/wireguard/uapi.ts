/**
 * WgControl over wireguard-go's configuration socket (`/var/run/wireguard/<device>.sock`), in the
 * cross-platform protocol of wireguard.com/xplatform: `get=1` or `set=1`, `key=value` lines, an
 * empty line; the answer ends with `errno=N` and an empty line. Keys are hex on this socket.
 */
import { createConnection } from "node:net";
import type { CallOptions } from "../../util/call_options.js";
import { WgControlError } from "./control.js";
import type { WgChange, WgControl, WgDeviceState, WgPeer, WgPeerState } from "./control.js";
import { publicKeyOf } from "./keys.js";

/** Where wireguard-go keeps its sockets (one folder for the whole mount namespace). */
export const UAPI_SOCKET_DIR = "/var/run/wireguard";

const hex = (base64: string) => Buffer.from(base64, "base64").toString("hex");
const base64 = (hexKey: string) => Buffer.from(hexKey, "hex").toString("base64");
const ZERO_KEY = "0".repeat(64);

/** The `set=1` lines of a change. */
export function uapiSetLines(change: WgChange): string[] {
  const lines = ["set=1"];
  if (change.privateKey !== undefined) lines.push(`private_key=${hex(change.privateKey)}`);
  if (change.listenPort !== undefined) lines.push(`listen_port=${change.listenPort}`);
  for (const key of change.remove) lines.push(`public_key=${hex(key)}`, "remove=true");
  for (const peer of change.upsert) lines.push(...peerLines(peer));
  return lines;
}

function peerLines(peer: WgPeer): string[] {
  return [
    `public_key=${hex(peer.publicKey)}`,
    `preshared_key=${peer.presharedKey === null ? ZERO_KEY : hex(peer.presharedKey)}`,
    `endpoint=${peer.endpoint}`,
    `persistent_keepalive_interval=${peer.keepaliveSeconds}`,
    "replace_allowed_ips=true",
    ...peer.allowedIPs.map((cidr) => `allowed_ip=${cidr}`),
  ];
}

/** A peer while its lines are read. */
type PeerBuilder = { -readonly [K in keyof WgPeerState]: WgPeerState[K] } & {
  allowedIPs: string[];
  handshakeSec: number;
  handshakeNsec: number;
};

const newPeer = (hexKey: string): PeerBuilder => ({
  publicKey: base64(hexKey),
  presharedKey: null,
  endpoint: null,
  allowedIPs: [],
  keepaliveSeconds: 0,
  lastHandshakeMs: null,
  rxBytes: 0,
  txBytes: 0,
  handshakeSec: 0,
  handshakeNsec: 0,
});

const finished = ({ handshakeSec, handshakeNsec, ...peer }: PeerBuilder): WgPeerState => ({
  ...peer,
  lastHandshakeMs:
    handshakeSec === 0 && handshakeNsec === 0
      ? null
      : handshakeSec * 1000 + Math.floor(handshakeNsec / 1e6),
});

/** One peer line into the peer being read. */
function readPeerLine(peer: PeerBuilder, key: string, value: string): void {
  switch (key) {
    case "preshared_key":
      peer.presharedKey = value === ZERO_KEY ? null : base64(value);
      break;
    case "endpoint":
      peer.endpoint = value;
      break;
    case "allowed_ip":
      peer.allowedIPs.push(value);
      break;
    case "persistent_keepalive_interval":
      peer.keepaliveSeconds = Number(value);
      break;
    case "last_handshake_time_sec":
      peer.handshakeSec = Number(value);
      break;
    case "last_handshake_time_nsec":
      peer.handshakeNsec = Number(value);
      break;
    case "rx_bytes":
      peer.rxBytes = Number(value);
      break;
    case "tx_bytes":
      peer.txBytes = Number(value);
      break;
  }
}

/** Reads a `get=1` answer. */
export function parseUapiGet(text: string): WgDeviceState {
  let publicKey: string | null = null;
  let listenPort = 0;
  const peers: WgPeerState[] = [];
  let peer: PeerBuilder | null = null;
  for (const line of text.split("\n")) {
    const at = line.indexOf("=");
    if (at < 0) continue;
    const key = line.slice(0, at);
    const value = line.slice(at + 1);
    if (key === "public_key") {
      if (peer !== null) peers.push(finished(peer));
      peer = newPeer(value);
    } else if (peer !== null) readPeerLine(peer, key, value);
    else if (key === "private_key") publicKey = value === ZERO_KEY ? null : publicKeyFromHex(value);
    else if (key === "listen_port") listenPort = Number(value);
  }
  if (peer !== null) peers.push(finished(peer));
  return { publicKey, listenPort, peers };
}

/** The errno of an answer; null when the answer has none yet (not complete). */
function errnoOf(answer: string): number | null {
  // Only the end is looked at: an answer of thousands of peers comes in many chunks.
  const tail = answer.length > 32 ? answer.slice(-32) : `\n${answer}`;
  const m = /\nerrno=(-?\d+)\n\n$/.exec(tail);
  return m === null ? null : Number(m[1]);
}

/** WgControl on wireguard-go's socket for one device. */
export class UapiControl implements WgControl {
  readonly via = "uapi";
  readonly socketPath: string;

  constructor(
    readonly device: string,
    socketDir = UAPI_SOCKET_DIR,
  ) {
    this.socketPath = `${socketDir}/${device}.sock`;
  }

  async get(opts: CallOptions): Promise<WgDeviceState> {
    return parseUapiGet(await this.#request("get=1\n\n", opts));
  }

  async apply(change: WgChange, opts: CallOptions): Promise<void> {
    await this.#request(`${uapiSetLines(change).join("\n")}\n\n`, opts);
  }

  /** One request on a fresh connection; the answer without its errno line. */
  #request(request: string, opts: CallOptions): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = createConnection({ path: this.socketPath });
      let answer = "";
      const fail = (err: Error) => {
        socket.destroy();
        reject(err);
      };
      const onAbort = () => {
        fail(opts.signal.reason as Error);
      };
      opts.signal.addEventListener("abort", onAbort, { once: true });
      socket.setEncoding("utf8");
      socket.on("connect", () => socket.end(request));
      socket.on("data", (chunk: string) => {
        answer += chunk;
        const errno = errnoOf(answer);
        if (errno === null) return;
        opts.signal.removeEventListener("abort", onAbort);
        socket.destroy();
        if (errno === 0) resolve(answer);
        else
          reject(
            new WgControlError(
              `${this.device}: the WireGuard device refused the configuration (errno ${errno})`,
              errno,
            ),
          );
      });
      socket.on("error", (err: NodeJS.ErrnoException) => {
        opts.signal.removeEventListener("abort", onAbort);
        fail(
          new WgControlError(
            `Cannot reach the WireGuard device ${this.device} at ${this.socketPath}: ${err.code ?? err.message}: is wireguard-go running for it, in this mount namespace?`,
            null,
            { cause: err },
          ),
        );
      });
      socket.on("end", () => {
        if (errnoOf(answer) === null)
          fail(new WgControlError(`${this.device}: the WireGuard socket closed before answering`));
      });
    });
  }
}

/** The base64 public key of a hex private key. */
function publicKeyFromHex(privateHex: string): string {
  return publicKeyOf(Buffer.from(privateHex, "hex")).toString("base64");
}
