/**
 * AF_NETLINK sockets through our own small addon (native/kernel_sockets.c, built by
 * `npm run build`): the system calls only, everything above them is TypeScript. A socket is
 * non-blocking and bound; it reports readable through libuv, and a read reports the socket's
 * error (ENOBUFS when the kernel dropped messages for want of room) instead of aborting the
 * process, which is what the `netlink` package's socket does on such an error.
 */
import { kernelSockets } from "../native/index.js";
import type { KernelSocketsAddon } from "../native/index.js";
import { NetlinkError } from "./netlink.js";

type Addon = KernelSocketsAddon;

function load(): Addon {
  try {
    return kernelSockets();
  } catch (err) {
    throw new NetlinkError((err as Error).message, "ENOENT", { cause: err });
  }
}

/** The most datagrams read in one turn of the loop (a burst of announcements is thousands). */
const READ_BURST = 4_096;

/** SOL_NETLINK options (linux/netlink.h). */
export const NETLINK_OPTION = {
  ADD_MEMBERSHIP: 1,
  /** Dump requests are checked strictly, and their filters (table, device) honoured. */
  GET_STRICT_CHK: 12,
} as const;

/** The error code a failed system call carries (`ENOBUFS`...). */
function codeOf(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  return typeof code === "string" ? code : "EIO";
}

/** One AF_NETLINK socket. */
export class NetlinkSocket {
  readonly #addon: Addon;
  readonly #fd: number;
  readonly #onMessage: (data: Buffer) => void;
  readonly #onError: (err: NetlinkError) => void;
  #watcher: object | null = null;
  #closed = false;

  /**
   * Opens and binds a socket of `protocol` (0: rtnetlink); `onMessage` gets each datagram the
   * kernel sends, `onError` each error the socket reports (then reading goes on).
   */
  constructor(
    protocol: number,
    buffers: { readonly receive: number; readonly send: number },
    onMessage: (data: Buffer) => void,
    onError: (err: NetlinkError) => void,
  ) {
    this.#addon = load();
    this.#onMessage = onMessage;
    this.#onError = onError;
    try {
      this.#fd = this.#addon.open(protocol, buffers.receive, buffers.send);
    } catch (err) {
      throw new NetlinkError(
        `Cannot open a netlink socket: ${(err as Error).message}`,
        codeOf(err),
        {
          cause: err,
        },
      );
    }
    this.#watcher = this.#addon.watch(this.#fd, () => {
      this.readNow();
    });
    this.#addon.ref(this.#watcher, false);
  }

  /**
   * Reads what is waiting now, without waiting for the loop to report it: the kernel answers
   * rtnetlink requests before sendmsg returns. Level-triggered: what is left after a bounded
   * read is read at the next turn of the loop.
   */
  readNow(): void {
    const onMessage = this.#onMessage;
    const onError = this.#onError;
    for (let i = 0; i < READ_BURST && !this.#closed; i++) {
      let data: Buffer | null;
      try {
        data = this.#addon.receive(this.#fd);
      } catch (err) {
        onError(
          new NetlinkError(`The netlink socket reported ${codeOf(err)}`, codeOf(err), {
            cause: err,
          }),
        );
        continue;
      }
      if (data === null) return;
      onMessage(data);
    }
  }

  setOption(option: number, value: number): void {
    try {
      this.#addon.setOption(this.#fd, option, value);
    } catch (err) {
      throw new NetlinkError(
        `Cannot set netlink socket option ${option}: ${(err as Error).message}`,
        codeOf(err),
        { cause: err },
      );
    }
  }

  /** Sends one datagram (any number of messages) to the kernel. */
  send(data: Buffer): void {
    try {
      this.#addon.send(this.#fd, data);
    } catch (err) {
      throw new NetlinkError(`Cannot send to netlink: ${codeOf(err)}`, codeOf(err), {
        cause: err,
      });
    }
  }

  /** Whether the socket keeps the process alive (while answers are awaited). */
  ref(on: boolean): void {
    if (this.#watcher !== null) this.#addon.ref(this.#watcher, on);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#watcher !== null) this.#addon.unwatch(this.#watcher);
    this.#watcher = null;
    this.#addon.close(this.#fd);
  }
}
