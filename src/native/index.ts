/**
 * The one typed binding for flannel-ts's C addons (native/*.c): which addon holds which system
 * calls, with their TypeScript signatures declared here and nowhere else. Each addon is loaded
 * once, on first use (load_addon.ts says from where).
 */
import { loadAddon } from "./load_addon.js";

/**
 * native/kernel_sockets.c: the system calls Node has no API for. AF_NETLINK sockets (the
 * rtnetlink layer), the SIOCETHTOOL ioctl (TX checksum offload), AF_UNIX datagrams
 * (sd_notify), and glibc's malloc_trim (daemon/heap_trim.ts).
 */
export interface KernelSocketsAddon {
  open(protocol: number, rcvbuf: number, sndbuf: number): number;
  setOption(fd: number, option: number, value: number): void;
  send(fd: number, data: Buffer): number;
  receive(fd: number): Buffer | null;
  watch(fd: number, onReadable: () => void): object;
  unwatch(watcher: object): void;
  ref(watcher: object, on: boolean): void;
  close(fd: number): void;
  ethtool(name: string, cmd: number, data: number): number;
  unixDatagram(path: string): number;
  unixSend(fd: number, path: string, data: Buffer): number;
  /** glibc's malloc_trim(0); false when nothing was given back (or the C library is not glibc). */
  trimHeap(): boolean;
}

/** What udpForwarder().start() takes. */
export interface UdpForwarderOptions {
  readonly tunFds: readonly number[];
  readonly offload: boolean;
  readonly bindIP: number;
  readonly port: number;
  readonly tunIP: number;
  readonly mtu: number;
  readonly ownNet: number;
  readonly ownPrefixLen: number;
  readonly onWorkerExit: (index: number, errno: string, what: string) => void;
}

/** native/udp_forwarder/: the udp backend's packet loop, on threads of its own. */
export interface UdpForwarderAddon {
  openTun(name: string, queues: number, offload: boolean): { fds: number[]; offload: boolean };
  closeFds(fds: readonly number[]): void;
  start(options: UdpForwarderOptions): object;
  setRoutes(handle: object, entries: Buffer): void;
  stats(handle: object): number[];
  restartWorker(handle: object, index: number): void;
  /** Makes a worker fail as a real error would (its restart is what the tests check). */
  replaceTun(handle: object, fds: readonly number[]): void;
  stop(handle: object): void;
}

/** The kernel-sockets addon; throws, saying how to build it, when it is missing. */
export function kernelSockets(): KernelSocketsAddon {
  return loadAddon("kernel_sockets") as KernelSocketsAddon;
}

/** The udp forwarder addon; throws, saying how to build it, when it is missing. */
export function udpForwarderAddon(): UdpForwarderAddon {
  return loadAddon("udp_forwarder") as UdpForwarderAddon;
}
