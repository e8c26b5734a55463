/**
 * A WireGuard device, made as wg-quick makes one: the kernel's (`ip link add ... type wireguard`)
 * when the kernel has WireGuard, otherwise wireguard-go's over a TUN device, which flanneld starts
 * in the foreground and supervises: restarted with backoff when it dies (the caller configures
 * the new device again), stopped with flanneld. The kernel's device is configured through `wg`
 * (generic netlink), wireguard-go's through its socket.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { FlannelError } from "../../errors.js";
import type { Logger } from "../../log/logger.js";
import { NetlinkError } from "../../net/netlink.js";
import type { Link, Netlink } from "../../net/netlink.js";
import type { CallOptions } from "../../util/call_options.js";
import type { Clock } from "../../util/clock.js";
import { backoff } from "../../util/sleep.js";
import type { WgControl } from "./control.js";
import { UapiControl, UAPI_SOCKET_DIR } from "./uapi.js";
import { WgToolControl } from "./wg_tool.js";

/** Neither kernel WireGuard nor wireguard-go. */
export class WireGuardUnavailableError extends FlannelError {}

/** How long wireguard-go may take to open its socket. */
const START_TIMEOUT_MS = 10_000;
const RESTART_FIRST_MS = 500;
const RESTART_MAX_MS = 30_000;

/** What makes and keeps a device. */
export interface DeviceDeps {
  readonly netlink: Netlink;
  readonly log: Logger;
  readonly clock: Clock;
  /** The wireguard-go program (default: found on PATH). */
  readonly wireguardGo?: string;
  /** Where wireguard-go's sockets are (default /var/run/wireguard). */
  readonly socketDir?: string;
}

/** One WireGuard device flanneld keeps. */
export interface WireGuardDevice {
  readonly name: string;
  readonly implementation: "kernel" | "wireguard-go";
  readonly control: WgControl;
  /** The link as it is now; null while wireguard-go restarts. */
  link(): Promise<Link | null>;
  /** Told each time wireguard-go was started again (the device is new and unconfigured). */
  onRestart(listener: () => void): void;
  /** Stops wireguard-go (its device goes with it); a kernel device is kept. */
  stop(): Promise<void>;
}

/** Makes the device `name`: the kernel's if it can, else wireguard-go's. */
export async function makeDevice(
  name: string,
  mtu: number,
  deps: DeviceDeps,
  opts: CallOptions,
): Promise<WireGuardDevice> {
  const existing = await deps.netlink.getLink(name);
  if (existing?.kind === "wireguard") return kernelDevice(name, deps);
  // A TUN of a wireguard-go this flanneld does not own (its last run was killed): it goes, and
  // a supervised one takes its place.
  if (existing !== null) await deps.netlink.deleteLink(existing.index);
  try {
    await deps.netlink.addWireguardLink(name, mtu);
    deps.log.info({ device: name }, "Made a kernel WireGuard device");
    return kernelDevice(name, deps);
  } catch (err) {
    if (!(err instanceof NetlinkError) || err.errno !== "EOPNOTSUPP") throw err;
  }
  const device = new WireGuardGo(name, deps);
  await device.start(opts);
  return device;
}

/**
 * How a device is configured, by what made it: a kernel device (kind wireguard) through `wg`,
 * wireguard-go's TUN through its socket.
 */
export function controlFor(
  name: string,
  kind: string | null,
  socketDir = UAPI_SOCKET_DIR,
): WgControl {
  return kind === "wireguard" ? new WgToolControl(name) : new UapiControl(name, socketDir);
}

function kernelDevice(name: string, deps: DeviceDeps): WireGuardDevice {
  return {
    name,
    implementation: "kernel",
    control: controlFor(name, "wireguard"),
    link: () => deps.netlink.getLink(name),
    onRestart: () => undefined,
    stop: () => Promise.resolve(),
  };
}

/** wireguard-go for one device, in the foreground, restarted when it dies. */
class WireGuardGo implements WireGuardDevice {
  readonly implementation = "wireguard-go";
  readonly control: UapiControl;
  readonly #deps: DeviceDeps;
  readonly #stopping = new AbortController();
  readonly #listeners = new Set<() => void>();
  #child: ChildProcess | null = null;
  #delays = backoff(RESTART_FIRST_MS, RESTART_MAX_MS);

  constructor(
    readonly name: string,
    deps: DeviceDeps,
  ) {
    this.#deps = deps;
    this.control = new UapiControl(name, deps.socketDir ?? UAPI_SOCKET_DIR);
  }

  link(): Promise<Link | null> {
    return this.#deps.netlink.getLink(this.name);
  }

  onRestart(listener: () => void): void {
    this.#listeners.add(listener);
  }

  /** Starts wireguard-go; resolves once its socket answers. */
  async start(opts: CallOptions): Promise<void> {
    const program = this.#deps.wireguardGo ?? "wireguard-go";
    const child = spawn(program, ["-f", this.name], {
      stdio: ["ignore", "ignore", "pipe"],
      env: { ...process.env, WG_PROCESS_FOREGROUND: "1", LOG_LEVEL: "error" },
    });
    this.#child = child;
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<string>((resolve) => {
      child.on("error", (err: NodeJS.ErrnoException) => {
        resolve(err.code === "ENOENT" ? "ENOENT" : err.message);
      });
      child.on("exit", (code, signal) => {
        resolve(`exit ${code ?? signal ?? "?"}${stderr.trim() === "" ? "" : `: ${stderr.trim()}`}`);
      });
    });
    const ready = await Promise.race([this.#socketAnswers(opts), exited]);
    if (ready !== true) {
      child.kill("SIGKILL");
      throw ready === "ENOENT"
        ? new WireGuardUnavailableError(
            `Cannot make the WireGuard device ${this.name}: this kernel has no WireGuard and ${program} is not installed: apt-get install wireguard-go (or load the wireguard module)`,
          )
        : new WireGuardUnavailableError(`${program} could not make ${this.name}: ${String(ready)}`);
    }
    this.#deps.log.info(
      { device: this.name, pid: child.pid },
      "Started wireguard-go for the WireGuard device",
    );
    void exited.then((why) => this.#exited(child, why));
  }

  /** Polls the socket until it answers; false when it did not in time. */
  async #socketAnswers(opts: CallOptions): Promise<boolean> {
    const { clock } = this.#deps;
    const deadline = clock.now() + START_TIMEOUT_MS;
    while (clock.now() < deadline) {
      try {
        await this.control.get(opts);
        return true;
      } catch {
        if (!(await clock.sleep(20, opts.signal))) return false;
      }
    }
    return false;
  }

  async #exited(child: ChildProcess, why: string): Promise<void> {
    if (this.#child !== child || this.#stopping.signal.aborted) return;
    const { log, clock } = this.#deps;
    const delayMs = this.#delays.next().value;
    log.warn(
      { device: this.name, why, restartInMs: delayMs },
      "wireguard-go exited; restarting it",
    );
    const signal = this.#stopping.signal;
    if (!(await clock.sleep(delayMs, signal))) return;
    try {
      const existing = await this.link();
      if (existing !== null) await this.#deps.netlink.deleteLink(existing.index);
      await this.start({ signal });
      this.#delays = backoff(RESTART_FIRST_MS, RESTART_MAX_MS);
      for (const tell of this.#listeners) tell();
    } catch (err) {
      if (signal.aborted) return;
      log.error(
        { device: this.name, err: (err as Error).message },
        "Cannot restart wireguard-go; trying again",
      );
      void this.#exited(this.#child, (err as Error).message);
    }
  }

  async stop(): Promise<void> {
    this.#stopping.abort();
    const child = this.#child;
    if (child === null || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => {
      child.once("exit", () => {
        resolve();
      });
    });
    child.kill("SIGTERM");
    await gone;
  }
}
