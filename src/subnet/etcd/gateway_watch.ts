/**
 * An etcd watch through the JSON gateway: one streaming POST to /v3/watch, read as
 * newline-delimited JSON. A dropped stream is opened again (on the next endpoint, with backoff)
 * from the revision after the last event seen, so no event is lost or repeated; a compacted
 * start revision ends the watch with WatchCompactedError, for the caller to list again.
 */
import type { IncomingMessage } from "node:http";
import { StoreError } from "../../errors.js";
import type { CallOptions } from "../../util/call_options.js";
import type { Clock } from "../../util/clock.js";
import { linkAbort } from "../../util/abort.js";
import { backoff } from "../../util/sleep.js";
import { EtcdRequestError, EtcdUnavailableError, type EtcdGateway } from "./gateway.js";
import {
  base64,
  listField,
  objectField,
  readHeader,
  readKeyValue,
  readObject,
  textField,
  type EtcdKeyValue,
  type JsonObject,
} from "./gateway_json.js";

/**
 * While a watch is open, its endpoint is asked every KEEPALIVE_MS whether it still answers, and
 * the stream is dropped (and opened again) when it does not within KEEPALIVE_TIMEOUT_MS: a store
 * behind a firewall that drops packets is noticed within ~15 s, as with gRPC's keepalive.
 */
export const KEEPALIVE_MS = 10_000;
export const KEEPALIVE_TIMEOUT_MS = 5_000;

/** gRPC's UNAUTHENTICATED: the auth token expired. */
const UNAUTHENTICATED = 16;

/** etcd compacted the revision the watch was to start from. */
export class WatchCompactedError extends StoreError {
  constructor(readonly compactRevision: bigint) {
    super(`etcd compacted the watched revisions (up to ${compactRevision}): list again`);
  }
}

/** What to watch: one key, or keys from `key` to `rangeEnd`, from `startRevision` on. */
export interface WatchRequest {
  readonly key: Buffer;
  readonly rangeEnd?: Buffer;
  readonly startRevision: bigint;
}

/** One change; `prevKv` is the value before it, when etcd still had it. */
export interface WatchEvent {
  readonly type: "put" | "delete";
  readonly kv: EtcdKeyValue;
  readonly prevKv: EtcdKeyValue | null;
}

/** The events of one watch answer. */
export interface WatchBatch {
  readonly revision: bigint;
  readonly events: readonly WatchEvent[];
}

/** How a watch reports on its connection. */
export interface WatchOptions extends CallOptions {
  readonly clock: Clock;
  /** The stream is open (again). */
  readonly onConnected: () => void;
  /** The stream was lost; it is opened again after a backoff. */
  readonly onDisconnected: (err: Error) => void;
}

/** Follows the keys until `opts.signal` aborts or the gateway closes. */
export async function* watchKeys(
  gateway: EtcdGateway,
  request: WatchRequest,
  opts: WatchOptions,
): AsyncGenerator<WatchBatch> {
  let next = request.startRevision;
  let delays = backoff(100, 5_000);
  for (;;) {
    const link = linkAbort([opts.signal, gateway.closedSignal]);
    const { controller: attempt, signal } = link;
    let failure: Error;
    try {
      const create = createRequest(request, next);
      const stream = await gateway.openStream("/watch", create, signal);
      void keepAlive(gateway, request.key, { attempt, clock: opts.clock });
      try {
        for await (const result of watchResults(stream)) {
          if (result.canceled === true) throw cancelled(result, gateway);
          if (result.created === true) {
            opts.onConnected();
            delays = backoff(100, 5_000);
            continue;
          }
          const events = listField(result, "events").map(readEvent);
          const last = events.at(-1);
          if (last === undefined) continue; // a progress notification
          next = last.kv.modRevision + 1n;
          yield { revision: readHeader(result).revision, events };
        }
      } finally {
        attempt.abort();
        stream.destroy();
        link.dispose();
      }
      failure = new EtcdUnavailableError("etcd ended the watch stream");
    } catch (err) {
      link.dispose();
      if (opts.signal.aborted || gateway.closedSignal.aborted) return;
      if (err instanceof WatchCompactedError) throw err;
      if (err instanceof EtcdRequestError) {
        if (err.code !== UNAUTHENTICATED) throw err;
        gateway.forgetToken(); // the token expired: the next attempt takes a new one
      }
      failure = err instanceof Error ? err : new Error(String(err));
      if (attempt.signal.reason instanceof Error) failure = attempt.signal.reason;
    }
    opts.onDisconnected(failure);
    gateway.nextEndpoint();
    if (!(await opts.clock.sleep(delays.next().value, opts.signal))) return;
  }
}

function createRequest(request: WatchRequest, from: bigint): JsonObject {
  return {
    create_request: {
      key: base64(request.key),
      ...(request.rangeEnd === undefined ? {} : { range_end: base64(request.rangeEnd) }),
      start_revision: String(from),
      prev_kv: true,
    },
  };
}

/** The error a cancelled watch stands for (an expired token is retried with a new one). */
function cancelled(result: JsonObject, gateway: EtcdGateway): Error {
  const compacted = BigInt(textField(result, "compact_revision"));
  if (compacted > 0n) return new WatchCompactedError(compacted);
  const reason = textField(result, "cancel_reason", "no reason given");
  if (reason.includes("invalid auth token")) {
    gateway.forgetToken();
    return new EtcdUnavailableError(`etcd cancelled the watch: ${reason}`);
  }
  return new EtcdRequestError(`etcd cancelled the watch: ${reason}`, -1);
}

function readEvent(event: JsonObject): WatchEvent {
  const prev = objectField(event, "prev_kv");
  return {
    type: event.type === "DELETE" ? "delete" : "put",
    kv: readKeyValue(objectField(event, "kv")),
    prevKv: Object.keys(prev).length === 0 ? null : readKeyValue(prev),
  };
}

/** The `result` objects of a watch stream, one JSON object per line. */
async function* watchResults(stream: IncomingMessage): AsyncGenerator<JsonObject> {
  stream.setEncoding("utf8");
  let buffered = "";
  for await (const chunk of stream as AsyncIterable<string>) {
    buffered += chunk;
    for (let end = buffered.indexOf("\n"); end >= 0; end = buffered.indexOf("\n")) {
      const line = buffered.slice(0, end).trim();
      buffered = buffered.slice(end + 1);
      if (line === "") continue;
      const answer = readObject(line, "a watch answer");
      if (answer.error !== undefined)
        throw new EtcdUnavailableError(`etcd ended the watch: ${textField(answer, "error", "")}`);
      yield objectField(answer, "result");
    }
  }
}

/**
 * Drops the stream (aborts `attempt`) when its endpoint stops answering; ends with the attempt
 * (which the caller's signal and the gateway's closing abort too).
 */
async function keepAlive(
  gateway: EtcdGateway,
  key: Buffer,
  { attempt, clock }: { attempt: AbortController; clock: Clock },
): Promise<void> {
  const endpoint = gateway.currentEndpoint;
  while (await clock.sleep(KEEPALIVE_MS, attempt.signal)) {
    if (await gateway.ping(endpoint, key, KEEPALIVE_TIMEOUT_MS)) continue;
    attempt.abort(
      new EtcdUnavailableError(
        `etcd at ${endpoint.name} did not answer within ${KEEPALIVE_TIMEOUT_MS / 1000} s`,
      ),
    );
  }
}
