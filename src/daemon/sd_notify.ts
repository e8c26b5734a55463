/**
 * systemd's notify protocol (sd_notify(3)), as flannel's flanneld.service (`Type=notify`) expects:
 * `READY=1` once subnet.env is written, `STATUS=` lines as things change, `STOPPING=1` on
 * shutdown, and `WATCHDOG=1` pings when the unit sets WatchdogSec. Each message is one datagram
 * on the AF_UNIX socket NOTIFY_SOCKET names (a path, or `@` for the abstract namespace), sent by
 * our kernel_sockets addon (Node has no AF_UNIX datagrams). Without NOTIFY_SOCKET nothing is
 * sent. A message that cannot be sent is logged once and never stops flanneld.
 */
import type { Logger } from "../log/logger.js";
import { kernelSockets } from "../native/index.js";
import type { KernelSocketsAddon } from "../native/index.js";

type Addon = Pick<KernelSocketsAddon, "unixDatagram" | "unixSend" | "close">;

/** What flanneld tells its supervisor. */
export interface ServiceNotifier {
  /** Started: the lease is held and subnet.env written. */
  ready(status: string): void;
  /** A line for `systemctl status`. */
  status(status: string): void;
  /** Shutting down. */
  stopping(status: string): void;
  /** Sends WATCHDOG=1 at half the interval systemd asks for, until the signal aborts. */
  keepWatchdog(signal: AbortSignal): void;
  close(): void;
}

/** systemd's WATCHDOG_USEC, when it is meant for this process; null otherwise. */
export function watchdogMs(env: NodeJS.ProcessEnv, pid = process.pid): number | null {
  const usec = Number(env.WATCHDOG_USEC ?? "");
  if (!Number.isInteger(usec) || usec <= 0) return null;
  if (env.WATCHDOG_PID !== undefined && env.WATCHDOG_PID !== "" && Number(env.WATCHDOG_PID) !== pid)
    return null;
  return usec / 1000;
}

/** sd_notify over NOTIFY_SOCKET. */
export class SdNotifier implements ServiceNotifier {
  readonly #addon: Addon;
  readonly #fd: number;
  readonly #path: string;
  readonly #log: Logger;
  readonly #watchdogMs: number | null;
  #failed = false;

  private constructor(addon: Addon, path: string, log: Logger, watchdog: number | null) {
    this.#addon = addon;
    this.#fd = addon.unixDatagram("");
    this.#path = path;
    this.#log = log;
    this.#watchdogMs = watchdog;
  }

  /** The notifier NOTIFY_SOCKET asks for; null when it is not set. */
  static fromEnv(env: NodeJS.ProcessEnv, log: Logger): SdNotifier | null {
    const path = env.NOTIFY_SOCKET ?? "";
    if (path === "") return null;
    if (!path.startsWith("/") && !path.startsWith("@")) {
      log.warn(
        { NOTIFY_SOCKET: path },
        "NOTIFY_SOCKET is neither a path nor @abstract; not notifying",
      );
      return null;
    }
    return new SdNotifier(kernelSockets(), path, log, watchdogMs(env));
  }

  #send(lines: readonly string[]): void {
    try {
      this.#addon.unixSend(this.#fd, this.#path, Buffer.from(`${lines.join("\n")}\n`));
      this.#failed = false;
    } catch (err) {
      if (!this.#failed)
        this.#log.warn(
          { err: (err as Error).message, NOTIFY_SOCKET: this.#path },
          "Cannot notify the service manager",
        );
      this.#failed = true;
    }
  }

  ready(status: string): void {
    this.#send(["READY=1", `STATUS=${status}`, `MAINPID=${process.pid}`]);
  }

  status(status: string): void {
    this.#send([`STATUS=${status}`]);
  }

  stopping(status: string): void {
    this.#send(["STOPPING=1", `STATUS=${status}`]);
  }

  keepWatchdog(signal: AbortSignal): void {
    const every = this.#watchdogMs;
    if (every === null) return;
    this.#send(["WATCHDOG=1"]);
    const timer = setInterval(() => {
      this.#send(["WATCHDOG=1"]);
    }, every / 2);
    signal.addEventListener("abort", () => {
      clearInterval(timer);
    });
  }

  close(): void {
    this.#addon.close(this.#fd);
  }
}
