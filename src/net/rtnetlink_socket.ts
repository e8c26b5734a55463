/**
 * An rtnetlink socket spoken to message by message, for the entries flanneld keeps by the
 * thousand (routes, neighbours, FDB entries): requests are encoded by the caller (codec in
 * rtnetlink_codec.ts) and matched to the kernel's answers by sequence number.
 *
 * Writes go in batches: many requests in one sendmsg, which the kernel applies in order before
 * sendmsg returns. Only the last request of a chunk asks for an acknowledgement (NLM_F_ACK); the
 * kernel answers every refused request with an error message whatever its flags, so once the
 * last one is answered, each request without an error was applied. The receive buffer is sized
 * so that a chunk where every request fails still fits; should the kernel drop answers anyway
 * (ENOBUFS), the batch fails as a whole and the caller lists the kernel again.
 *
 * The socket checks dump requests strictly (NETLINK_GET_STRICT_CHK), so that the kernel honours
 * their filters (a table, a device) instead of dumping everything.
 */
import { constants } from "node:os";
import { setImmediate } from "node:timers/promises";
import { NetlinkError } from "./netlink.js";
import { NETLINK_OPTION, NetlinkSocket } from "./netlink_socket.js";

export const NETLINK_ROUTE = 0;
const NLM_F_REQUEST = 0x1;
const NLM_F_MULTI = 0x2;
const NLM_F_ACK = 0x4;
const NLM_F_DUMP_INTR = 0x10;
const NLM_F_DUMP = 0x300;
const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const HEADER = 16;

/** The most requests in one sendmsg, and the most bytes (below the default socket send buffer). */
const CHUNK_MESSAGES = 1_024;
const CHUNK_BYTES = 96 * 1024;
/** How many chunks are sent between two turns of the event loop. */
const YIELD_EVERY_CHUNKS = 4;
/** Room for the answers to a chunk whose every request fails (each echoes its request). */
const RECEIVE_BUFFER = 4 * 1024 * 1024;
/** How often a dump the kernel marks interrupted (the table changed meanwhile) is retried. */
const DUMP_RETRIES = 5;

const ERRNO_NAMES = new Map(Object.entries(constants.errno).map(([name, n]) => [n, name]));

/** The name of a kernel errno (`ENOENT`); `E<n>` for one Node does not name. */
export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? `E${errno}`;
}

/** A request body: message type, flags and payload (the header is added here). */
export interface NetlinkRequest {
  readonly type: number;
  readonly flags: number;
  readonly payload: Buffer;
}

/** One message of a dump: its type and payload. */
export interface NetlinkMessage {
  readonly type: number;
  readonly payload: Buffer;
}

interface Pending {
  /** Takes one answer; returns true when the exchange is over. */
  take(type: number, flags: number, payload: Buffer): boolean;
  fail(err: Error): void;
}

/** The errno an NLMSG_ERROR payload carries (0 for an acknowledgement). */
function errorOf(payload: Buffer): number {
  return payload.length >= 4 ? -payload.readInt32LE(0) : 0;
}

/** Calls `visit` for each netlink message in a datagram. */
export function forEachMessage(
  data: Buffer,
  visit: (type: number, flags: number, seq: number, payload: Buffer) => void,
): void {
  for (let offset = 0; offset + HEADER <= data.length;) {
    const length = data.readUInt32LE(offset);
    if (length < HEADER || offset + length > data.length) return;
    visit(
      data.readUInt16LE(offset + 4),
      data.readUInt16LE(offset + 6),
      data.readUInt32LE(offset + 8),
      data.subarray(offset + HEADER, offset + length),
    );
    offset += (length + 3) & ~3;
  }
}

/** Writes a request header (with NLM_F_REQUEST) at `offset`; returns where the payload goes. */
function writeHeader(
  buffer: Buffer,
  offset: number,
  type: number,
  flags: number,
  seq: number,
  payloadLength: number,
): number {
  buffer.writeUInt32LE(HEADER + payloadLength, offset);
  buffer.writeUInt16LE(type, offset + 4);
  buffer.writeUInt16LE(flags | NLM_F_REQUEST, offset + 6);
  buffer.writeUInt32LE(seq, offset + 8);
  buffer.writeUInt32LE(0, offset + 12);
  return offset + HEADER;
}

/** Splits requests into chunks of at most CHUNK_MESSAGES requests and about CHUNK_BYTES. */
function chunksOf(requests: readonly NetlinkRequest[]): NetlinkRequest[][] {
  const chunks: NetlinkRequest[][] = [];
  let chunk: NetlinkRequest[] = [];
  let bytes = 0;
  for (const request of requests) {
    const size = HEADER + request.payload.length;
    if (chunk.length > 0 && (chunk.length >= CHUNK_MESSAGES || bytes + size > CHUNK_BYTES)) {
      chunks.push(chunk);
      chunk = [];
      bytes = 0;
    }
    chunk.push(request);
    bytes += size;
  }
  if (chunk.length > 0) chunks.push(chunk);
  return chunks;
}

/** A bound rtnetlink socket for requests, dumps and batches, one exchange at a time. */
export class RtnlSocket {
  readonly #socket: NetlinkSocket;
  readonly #pending = new Map<number, Pending>();
  #seq = Math.floor(Math.random() * 0x7fff_0000);
  #queue: Promise<unknown> = Promise.resolve();

  constructor() {
    this.#socket = new NetlinkSocket(
      NETLINK_ROUTE,
      { receive: RECEIVE_BUFFER, send: 2 * CHUNK_BYTES },
      (data) => {
        this.#receive(data);
      },
      (err) => {
        // ENOBUFS: answers were dropped; nothing in flight can be trusted.
        const failure = new NetlinkError(
          `The rtnetlink socket lost answers (${err.errno}); the kernel is listed again`,
          err.errno,
          { cause: err },
        );
        for (const pending of this.#pending.values()) pending.fail(failure);
        this.#pending.clear();
      },
    );
    this.#socket.setOption(NETLINK_OPTION.GET_STRICT_CHK, 1);
  }

  #receive(data: Buffer): void {
    forEachMessage(data, (type, flags, seq, payload) => {
      if (this.#pending.get(seq)?.take(type, flags, payload) === true) this.#pending.delete(seq);
    });
  }

  /** Runs exchanges one after the other: a second dump on a socket gets EBUSY. */
  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  #nextSeq(): number {
    this.#seq = (this.#seq + 1) >>> 0 || 1;
    return this.#seq;
  }

  /** Sends, then reads the answers the kernel has already queued. */
  #send(buffer: Buffer): void {
    this.#socket.ref(true);
    this.#socket.send(buffer);
    this.#socket.readNow();
  }

  /**
   * Sends a buffer whose sequence numbers have their handlers registered, and waits for
   * `answered`; when the send fails, the handlers go and the send's error is thrown.
   */
  async #exchange(buffer: Buffer, seqs: readonly number[], answered: Promise<void>): Promise<void> {
    answered.catch(() => undefined); // awaited below, once sent
    try {
      this.#send(buffer);
    } catch (err) {
      for (const seq of seqs) this.#pending.delete(seq);
      throw err;
    }
    await answered;
  }

  #settled(): void {
    if (this.#pending.size === 0) this.#socket.ref(false);
  }

  /**
   * Sends the requests in order, many to a sendmsg; resolves with one result per request: 0 when
   * the kernel applied it, else the errno it answered.
   */
  batch(requests: readonly NetlinkRequest[]): Promise<number[]> {
    return this.#exclusive(async () => {
      const results = new Array<number>(requests.length).fill(0);
      try {
        let chunkStart = 0;
        let chunks = 0;
        for (const chunk of chunksOf(requests)) {
          // One buffer per chunk: sendmsg takes at most 1,024 iovecs (UIO_MAXIOV).
          const buffer = Buffer.allocUnsafe(
            chunk.reduce((sum, r) => sum + HEADER + r.payload.length, 0),
          );
          const seqs: number[] = [];
          let offset = 0;
          chunk.forEach(({ type, flags, payload }, i) => {
            const ack = i === chunk.length - 1 ? NLM_F_ACK : 0;
            const seq = this.#nextSeq();
            seqs.push(seq);
            offset = writeHeader(buffer, offset, type, flags | ack, seq, payload.length);
            offset += payload.copy(buffer, offset);
          });
          const base = chunkStart;
          const answered = new Promise<void>((resolve, reject) => {
            // Only refused requests and the last one are answered; the last answer ends the chunk.
            seqs.forEach((seq, i) => {
              const last = i === seqs.length - 1;
              this.#pending.set(seq, {
                take: (type, _flags, payload) => {
                  if (type !== NLMSG_ERROR) return false;
                  results[base + i] = errorOf(payload);
                  if (last) {
                    for (const s of seqs) this.#pending.delete(s);
                    resolve();
                  }
                  return true;
                },
                fail: reject,
              });
            });
          });
          await this.#exchange(buffer, seqs, answered);
          chunkStart += chunk.length;
          // Let the loop turn now and then: timers, signals and the announcements these writes
          // cause are served while a big batch goes on (every chunk costs a few ms of kernel
          // time, and a turn of the loop costs the batch little).
          chunks++;
          if (chunkStart < requests.length && chunks % YIELD_EVERY_CHUNKS === 0)
            await setImmediate();
        }
        return results;
      } finally {
        this.#settled();
      }
    });
  }

  /** One request with an acknowledgement; throws NetlinkError with the kernel's errno. */
  async request(request: NetlinkRequest, action: string): Promise<void> {
    const [errno = 0] = await this.batch([request]);
    if (errno !== 0) {
      const name = errnoName(errno);
      throw new NetlinkError(`Cannot ${action}: ${name}`, name);
    }
  }

  /** A dump: every message the kernel answers, retried while the kernel says it was interrupted. */
  dump(request: NetlinkRequest, action: string): Promise<NetlinkMessage[]> {
    return this.#exclusive(async () => {
      try {
        for (let attempt = 1; ; attempt++) {
          const { messages, interrupted } = await this.#dumpOnce(request, action);
          if (!interrupted || attempt >= DUMP_RETRIES) return messages;
        }
      } finally {
        this.#settled();
      }
    });
  }

  async #dumpOnce(
    request: NetlinkRequest,
    action: string,
  ): Promise<{ messages: NetlinkMessage[]; interrupted: boolean }> {
    const seq = this.#nextSeq();
    const buffer = Buffer.allocUnsafe(HEADER + request.payload.length);
    const at = writeHeader(
      buffer,
      0,
      request.type,
      request.flags | NLM_F_DUMP,
      seq,
      request.payload.length,
    );
    request.payload.copy(buffer, at);
    const messages: NetlinkMessage[] = [];
    let interrupted = false;
    const done = new Promise<void>((resolve, reject) => {
      this.#pending.set(seq, {
        take: (type, flags, payload) => {
          if ((flags & NLM_F_DUMP_INTR) !== 0) interrupted = true;
          if (type === NLMSG_DONE) {
            resolve();
            return true;
          }
          if (type === NLMSG_ERROR) {
            const name = errnoName(errorOf(payload));
            reject(new NetlinkError(`Cannot ${action}: ${name}`, name));
            return true;
          }
          messages.push({ type, payload });
          if ((flags & NLM_F_MULTI) !== 0) return false;
          resolve(); // a single answer, not a multipart one
          return true;
        },
        fail: reject,
      });
    });
    await this.#exchange(buffer, [seq], done);
    return { messages, interrupted };
  }

  close(): void {
    const closed = new NetlinkError("The rtnetlink socket is closed", "EBADF");
    for (const pending of this.#pending.values()) pending.fail(closed);
    this.#pending.clear();
    this.#socket.close();
  }
}
