/**
 * The udp backend's packet loop (native/udp_forwarder/, built by `npm run build`): worker
 * threads of its own, one per TUN queue, each with a UDP socket; nothing per packet runs on the
 * event loop. This module gives it the table of hosts, reads its counters, and restarts a worker
 * that stopped on an error (with backoff, counted).
 */
import { FlannelError } from "../../errors.js";
import type { IPNet } from "../../ip/ip.js";
import { parseIPv4 } from "../../ip/ip.js";
import type { Logger } from "../../log/logger.js";
import { udpForwarderAddon } from "../../native/index.js";
import type { UdpForwarderAddon } from "../../native/index.js";
import type { ForwardingStats } from "../backend.js";
import { type Clock, systemClock } from "../../util/clock.js";

type Addon = UdpForwarderAddon;

/** The counters stats() returns, in native/udp_forwarder/forwarder.h's order (STAT_*), before the drops. */
const COUNTERS = [
  "txPackets",
  "txBytes",
  "rxPackets",
  "rxBytes",
  "icmpUnreachable",
  "tunReads",
  "sendCalls",
  "recvCalls",
  "tunWrites",
  "workerExits",
] as const satisfies readonly (keyof ForwardingStats)[];

/** Why a packet was dropped, in the order native/udp_forwarder/forwarder.h counts them. */
export const DROP_REASONS = [
  "no_route",
  "ttl_expired",
  "not_ipv4",
  "short",
  "malformed",
  "unknown_sender",
  "too_big",
  "wrong_destination",
  "send_failed",
  "tun_write_failed",
] as const;

export type DropReason = (typeof DROP_REASONS)[number];

/** What the forwarder has done since it started. */
export interface ForwarderStats extends ForwardingStats {
  readonly drops: Readonly<Record<DropReason, number>>;
}

/** A packet loop that cannot start or a TUN device that cannot be made. */
export class ForwarderError extends FlannelError {
  constructor(
    message: string,
    readonly errno: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** One remote host: the subnet it leases and where its forwarder listens. */
export interface ForwardHop {
  readonly subnet: IPNet;
  readonly publicIP: string;
  readonly port: number;
}

/** How the forwarder starts. */
export interface ForwarderOptions {
  /** The TUN device, made here (flannel: flannel0). */
  readonly tunName: string;
  /** Worker threads, each on its own TUN queue (IFF_MULTI_QUEUE when more than one). */
  readonly workers: number;
  /** The address and port the UDP sockets listen on (flannel: the interface address, 8285). */
  readonly bindIP: string;
  readonly port: number;
  /** This host's subnet: its first address is the source of ICMP errors, and only packets
   * for it are taken from the network. */
  readonly subnet: IPNet;
  /** The TUN MTU: a datagram larger than this is dropped. */
  readonly mtu: number;
  /**
   * TUN offloads (TSO and checksum in, UDP GSO out, UDP GRO and coalesced writes back in);
   * dropped with a warning when the kernel refuses them.
   */
  readonly offload: boolean;
  readonly log: Logger;
  /** What a worker's restart waits on. Default: the system's. */
  readonly clock?: Clock;
}

const ENTRY_SIZE = 12;
/** Restart backoff for a worker that stops on an error: doubled up to the maximum. */
const RESTART_FIRST_MS = 100;
const RESTART_MAX_MS = 5_000;
/** A worker that ran this long before stopping starts again at the first backoff. */
const RESTART_RESET_MS = 60_000;

function ipv4Number(ip: string, what: string): number {
  const value = parseIPv4(ip);
  if (value === null) throw new RangeError(`${what} "${ip}" is not an IPv4 address`);
  return Number(value);
}

function codeOf(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  return typeof code === "string" ? code : "EIO";
}

/** Makes the TUN device with one queue per worker; the error says what to do. */
function openTun(
  addon: Addon,
  name: string,
  queues: number,
  offload: boolean,
): { fds: number[]; offload: boolean } {
  try {
    return addon.openTun(name, queues, offload);
  } catch (err) {
    const code = codeOf(err);
    const hint =
      code === "EBUSY"
        ? `: another process holds ${name} (is another flanneld running?)`
        : code === "EPERM" || code === "EACCES"
          ? ": flanneld needs CAP_NET_ADMIN and /dev/net/tun"
          : code === "ENOENT" || code === "ENODEV"
            ? ": load the tun module (modprobe tun) and make sure /dev/net/tun exists"
            : "";
    throw new ForwarderError(
      `Cannot create the TUN device ${name}: ${(err as Error).message}${hint}`,
      code,
      { cause: err },
    );
  }
}

/** The packet loop of the udp backend. */
export class UdpForwarder {
  readonly #addon: Addon;
  readonly #handle: object;
  readonly #log: Logger;
  readonly #workers: number;
  readonly #tunName: string;
  readonly #restarts: { delayMs: number; startedAt: number }[];
  readonly #clock: Clock;
  /** Aborted by stop(): ends the restarts' waits. */
  readonly #stopping = new AbortController();
  #stopped = false;

  /** Whether the TUN hands over TCP super-packets and the socket sends and takes UDP trains. */
  readonly offload: boolean;

  private constructor(
    addon: Addon,
    handle: object,
    tun: { readonly name: string; readonly workers: number; readonly offload: boolean },
    log: Logger,
    clock: Clock,
  ) {
    const { workers, offload } = tun;
    this.#clock = clock;
    this.#tunName = tun.name;
    this.#addon = addon;
    this.offload = offload;
    this.#handle = handle;
    this.#workers = workers;
    this.#log = log;
    this.#restarts = Array.from({ length: workers }, () => ({
      delayMs: RESTART_FIRST_MS,
      startedAt: clock.now(),
    }));
  }

  /** Makes the TUN device and starts the workers. */
  static start(options: ForwarderOptions): UdpForwarder {
    let addon: Addon;
    try {
      addon = udpForwarderAddon();
    } catch (err) {
      throw new ForwarderError((err as Error).message, "ENOENT", { cause: err });
    }
    const { fds, offload } = openTun(addon, options.tunName, options.workers, options.offload);
    let forwarder: UdpForwarder | null = null;
    let handle: object;
    try {
      handle = addon.start({
        tunFds: fds,
        offload,
        bindIP: ipv4Number(options.bindIP, "The bind address"),
        port: options.port,
        tunIP: Number(options.subnet.ip),
        mtu: options.mtu,
        ownNet: Number(options.subnet.ip),
        ownPrefixLen: options.subnet.prefixLen,
        onWorkerExit: (index, errno, what) => {
          if (forwarder !== null) forwarder.#workerExited(index, errno, what);
        },
      });
    } catch (err) {
      addon.closeFds(fds);
      const code = codeOf(err);
      const hint =
        code === "EADDRINUSE"
          ? `: another program listens on UDP port ${options.port} (flannel's udp backend?); stop it or set Backend.Port`
          : code === "EADDRNOTAVAIL"
            ? `: ${options.bindIP} is not an address of this host`
            : "";
      throw new ForwarderError(
        `Cannot start the udp forwarder on ${options.bindIP}:${options.port}: ${(err as Error).message}${hint}`,
        code,
        { cause: err },
      );
    }
    forwarder = new UdpForwarder(
      addon,
      handle,
      { name: options.tunName, workers: options.workers, offload },
      options.log,
      options.clock ?? systemClock,
    );
    if (options.offload && !offload)
      options.log.warn(
        { device: options.tunName },
        "The kernel refused TUN offloads (TSO, checksum); forwarding packet by packet",
      );
    return forwarder;
  }

  /** Replaces the table of hosts at once: a host left out gets no more packets from here. */
  setHops(hops: readonly ForwardHop[]): void {
    const entries = Buffer.alloc(hops.length * ENTRY_SIZE);
    hops.forEach((hop, i) => {
      const at = i * ENTRY_SIZE;
      entries.writeUInt32BE(Number(hop.subnet.ip), at);
      entries.writeUInt8(hop.subnet.prefixLen, at + 4);
      entries.writeUInt16BE(hop.port, at + 6);
      entries.writeUInt32BE(ipv4Number(hop.publicIP, "A host's public IP"), at + 8);
    });
    this.#addon.setRoutes(this.#handle, entries);
  }

  get stats(): ForwarderStats {
    const raw = this.#addon.stats(this.#handle);
    const at = (i: number) => raw[i] ?? 0;
    const counters = Object.fromEntries(COUNTERS.map((name, i) => [name, at(i)]));
    const drops = Object.fromEntries(
      DROP_REASONS.map((reason, i) => [reason, at(COUNTERS.length + i)]),
    );
    return {
      ...(counters as Record<(typeof COUNTERS)[number], number>),
      drops: drops as Record<DropReason, number>,
    };
  }

  get workers(): number {
    return this.#workers;
  }

  /**
   * Makes the TUN device again (it was deleted by hand) and moves the workers onto it; the
   * caller then gives it its address, MTU and route.
   */
  recreateTun(): void {
    const { fds } = openTun(this.#addon, this.#tunName, this.#workers, this.offload);
    try {
      this.#addon.replaceTun(this.#handle, fds);
    } catch (err) {
      this.#addon.closeFds(fds);
      throw err;
    }
  }

  /** Stops the workers (never blocked in the kernel: they wait in epoll) and closes the TUN. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#stopping.abort();
    this.#addon.stop(this.#handle);
  }

  #workerExited(index: number, errno: string, what: string): void {
    const restart = this.#restarts[index];
    if (this.#stopped || restart === undefined) return;
    if (this.#clock.now() - restart.startedAt >= RESTART_RESET_MS)
      restart.delayMs = RESTART_FIRST_MS;
    const delayMs = restart.delayMs;
    restart.delayMs = Math.min(RESTART_MAX_MS, delayMs * 2);
    this.#log.error(
      { worker: index, errno, call: what, restartInMs: delayMs },
      "A udp forwarder worker stopped on an error; restarting it",
    );
    void this.#clock.sleep(delayMs, this.#stopping.signal).then((slept) => {
      if (!slept || this.#stopped) return;
      restart.startedAt = this.#clock.now();
      try {
        this.#addon.restartWorker(this.#handle, index);
        this.#log.info({ worker: index }, "udp forwarder worker restarted");
      } catch (err) {
        this.#log.error(
          { worker: index, err: (err as Error).message },
          "Cannot restart a udp forwarder worker",
        );
      }
    });
  }
}
