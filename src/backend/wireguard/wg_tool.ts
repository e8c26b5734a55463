/**
 * WgControl through `wg` (wireguard-tools): `wg show <device> dump` to read, one `wg set` per
 * change. `wg` reaches a kernel device over generic netlink and a userspace one over its socket,
 * so this works for both; keys go through files of mode 0600 in a private folder, never argv.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CallOptions } from "../../util/call_options.js";
import { runCapture } from "../../util/exec.js";
import type { WgChange, WgControl, WgDeviceState, WgPeerState } from "./control.js";
import { WgControlError } from "./control.js";

const none = (value: string | undefined) =>
  value === undefined || value === "(none)" || value === "" ? null : value;

/** Reads `wg show <device> dump`: the device's line, then one line per peer, tab-separated. */
export function parseWgDump(text: string): WgDeviceState {
  const [device = "", ...lines] = text.trim().split("\n");
  const [, publicKey, listenPort] = device.split("\t");
  const peers: WgPeerState[] = lines
    .filter((line) => line !== "")
    .map((line) => {
      const [key = "", psk, endpoint, allowed, handshake, rx, tx, keepalive] = line.split("\t");
      return {
        publicKey: key,
        presharedKey: none(psk),
        endpoint: none(endpoint),
        allowedIPs: none(allowed)?.split(",") ?? [],
        keepaliveSeconds: keepalive === "off" || keepalive === undefined ? 0 : Number(keepalive),
        lastHandshakeMs: Number(handshake ?? 0) === 0 ? null : Number(handshake) * 1000,
        rxBytes: Number(rx ?? 0),
        txBytes: Number(tx ?? 0),
      };
    });
  return { publicKey: none(publicKey), listenPort: Number(listenPort ?? 0), peers };
}

/** WgControl by running `wg`. */
export class WgToolControl implements WgControl {
  readonly via = "wg";

  /** `command`: how `wg` is run (default `wg`; a test puts it in another namespace). */
  constructor(
    readonly device: string,
    readonly command: readonly string[] = ["wg"],
  ) {}

  async get(_opts: CallOptions): Promise<WgDeviceState> {
    const { code, stdout, stderr } = await this.#wg(["show", this.device, "dump"]);
    if (code !== 0)
      throw new WgControlError(`wg show ${this.device} dump failed: ${stderr.trim()}`);
    return parseWgDump(stdout);
  }

  async apply(change: WgChange, _opts: CallOptions): Promise<void> {
    const folder = await mkdtemp(join(tmpdir(), "flannel-wg-"));
    try {
      const args = await this.#setArgs(change, folder);
      const { code, stderr } = await this.#wg(args);
      if (code !== 0) throw new WgControlError(`wg set ${this.device} failed: ${stderr.trim()}`);
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  }

  /** `wg set` arguments; the keys written into files in `folder`. */
  async #setArgs(change: WgChange, folder: string): Promise<string[]> {
    const keyFile = async (name: string, key: string) => {
      const path = join(folder, name);
      await writeFile(path, key, { mode: 0o600 });
      return path;
    };
    const args = ["set", this.device];
    if (change.privateKey !== undefined)
      args.push("private-key", await keyFile("private", change.privateKey));
    if (change.listenPort !== undefined) args.push("listen-port", String(change.listenPort));
    for (const key of change.remove) args.push("peer", key, "remove");
    const psks = new Map<string, string>();
    for (const peer of change.upsert) {
      args.push("peer", peer.publicKey);
      let psk = "/dev/null"; // wg takes an empty file for "no preshared key"
      if (peer.presharedKey !== null) {
        psk = psks.get(peer.presharedKey) ?? (await keyFile(`psk${psks.size}`, peer.presharedKey));
        psks.set(peer.presharedKey, psk);
      }
      args.push("preshared-key", psk, "endpoint", peer.endpoint);
      args.push(
        "persistent-keepalive",
        peer.keepaliveSeconds === 0 ? "off" : String(peer.keepaliveSeconds),
      );
      args.push("allowed-ips", peer.allowedIPs.join(","));
    }
    return args;
  }

  #wg(args: readonly string[]) {
    const [program = "wg", ...before] = this.command;
    return runCapture(program, [...before, ...args]).catch((err: unknown) => {
      throw new WgControlError(
        `Cannot run ${program}: ${(err as Error).message}: install wireguard-tools (apt-get install wireguard-tools)`,
        null,
        { cause: err },
      );
    });
  }
}
