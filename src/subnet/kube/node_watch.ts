/**
 * Following the Nodes (client-go's reflector, which flannel's informer runs on): list, then
 * watch from the list's resourceVersion, yielding a snapshot for every list and one event per
 * change.
 *
 * - A stream that ends cleanly (the server's or the client's 30 s idle timeout) is watched again
 *   from the last resourceVersion seen, at once.
 * - 410 Gone, as the HTTP answer or as an ERROR event in the stream, means the server no longer
 *   has the events after that resourceVersion: list again and yield a fresh snapshot, which the
 *   consumer diffs against what it knew, so that no node is lost or doubled.
 * - Any other failure (the server down, 5xx, a connection reset) is retried with backoff from
 *   100 ms to 5 s, from the last resourceVersion seen; the outage is logged once when it starts
 *   and once when it ends. client-node's own informer stops for good on such errors, which is
 *   why this loop is ours.
 */
import type { NodeWatchFigures } from "../manager.js";
import type { Logger } from "../../log/logger.js";
import { AsyncQueue } from "../../util/async_queue.js";
import type { CallOptions } from "../../util/call_options.js";
import { type Clock, systemClock } from "../../util/clock.js";
import { backoff } from "../../util/sleep.js";
import { statusCodeOf } from "./kube_client.js";
import type { NodeClient, RawWatchEvent } from "./kube_client.js";
import { nodeViewOf } from "./node_lease.js";
import type { NodeView } from "./node_lease.js";

/** One step of the Node watch. */
export type NodeWatchResult =
  | { readonly kind: "snapshot"; readonly nodes: readonly NodeView[] }
  | {
      readonly kind: "event";
      readonly type: "ADDED" | "MODIFIED" | "DELETED";
      readonly node: NodeView;
    };

/** Counters of what the watch went through, for metrics and tests. */
export type NodeWatchStats = NodeWatchFigures;

const RETRY_INITIAL_MS = 100;
const RETRY_MAX_MS = 5_000;

function resourceVersionOf(object: unknown): string | null {
  const rv = (object as { metadata?: { resourceVersion?: unknown } } | null)?.metadata
    ?.resourceVersion;
  return typeof rv === "string" && rv !== "" ? rv : null;
}

/** Retries with backoff; says once when the API is lost and once when it is back. */
class Outage {
  #delays = backoff(RETRY_INITIAL_MS, RETRY_MAX_MS);
  #reason: string | null = null;

  constructor(
    readonly log: Logger,
    readonly stats: NodeWatchStats,
    readonly clock: Clock,
    readonly signal: AbortSignal,
  ) {}

  /** Counts a failure and waits the next delay; false when the signal aborted first. */
  failed(err: unknown): Promise<boolean> {
    this.stats.failures++;
    const message = err instanceof Error ? err.message : String(err);
    if (this.#reason === null) {
      this.log.warn({ err: message }, "Lost the Kubernetes API; retrying with backoff");
      this.#reason = message;
    }
    return this.clock.sleep(this.#delays.next().value, this.signal);
  }

  recovered(): void {
    this.#delays = backoff(RETRY_INITIAL_MS, RETRY_MAX_MS);
    if (this.#reason !== null) {
      this.log.info({ was: this.#reason }, "Reconnected to the Kubernetes API");
      this.#reason = null;
    }
  }
}

/** How a watch stream ended: expired (410 Gone), failed, or closed (the server's timeout). */
type StreamEnd = { kind: "gone" } | { kind: "failed"; err: Error } | { kind: "closed" };

/** Yields the events of one watch stream from `at.resourceVersion`, moving it on. */
async function* followStream(
  client: NodeClient,
  at: { resourceVersion: string },
  outage: Outage,
  signal: AbortSignal,
): AsyncGenerator<NodeWatchResult, StreamEnd> {
  const queue = new AsyncQueue<RawWatchEvent>(signal);
  let handle: { abort(): void } | null = null;
  let gone = false;
  let streamError: unknown = null;
  try {
    handle = await client.watchNodes(
      at.resourceVersion,
      (event) => {
        queue.push(event);
      },
      (err) => {
        queue.close(err ?? null);
      },
    );
    outage.stats.watches++;
    // The stream is open (client-node resolves after the answer's headers, and has already
    // closed the queue when the request failed): the API server is back.
    if (!queue.closed) outage.recovered();
    for await (const event of queue) {
      if (event.type === "ERROR") {
        if (statusCodeOf(event.object) === 410) gone = true;
        else streamError = event.object;
        continue;
      }
      if (event.type !== "ADDED" && event.type !== "MODIFIED" && event.type !== "DELETED") continue; // BOOKMARK
      at.resourceVersion = resourceVersionOf(event.object) ?? at.resourceVersion;
      const node = nodeViewOf(event.object);
      if (node === null) continue;
      outage.recovered();
      yield { kind: "event", type: event.type, node };
    }
  } finally {
    queue.close();
    handle?.abort();
  }
  const err = queue.error;
  if (gone || statusCodeOf(err) === 410) return { kind: "gone" };
  const timedOut = err instanceof Error && err.name === "TimeoutError";
  if (streamError === null && (err === null || timedOut)) return { kind: "closed" };
  const reason = streamError ?? err;
  return {
    kind: "failed",
    err: reason instanceof Error ? reason : new Error(JSON.stringify(reason)),
  };
}

/** Yields Node snapshots and events until the signal aborts. */
export async function* watchNodes(
  client: NodeClient,
  log: Logger,
  opts: CallOptions & { readonly stats?: NodeWatchStats; readonly clock?: Clock },
): AsyncGenerator<NodeWatchResult> {
  const { signal } = opts;
  const stopped = () => signal.aborted; // read afresh: awaits change it
  const stats = opts.stats ?? { lists: 0, watches: 0, expired: 0, failures: 0 };
  const outage = new Outage(log, stats, opts.clock ?? systemClock, signal);
  let at: { resourceVersion: string } | null = null;
  while (!signal.aborted) {
    if (at === null) {
      let listed: { nodes: NodeView[]; resourceVersion: string };
      try {
        listed = await client.listNodes({ signal });
      } catch (err) {
        if (stopped() || !(await outage.failed(err))) return;
        continue;
      }
      stats.lists++;
      outage.recovered();
      at = { resourceVersion: listed.resourceVersion };
      yield { kind: "snapshot", nodes: listed.nodes };
      continue;
    }
    const end = yield* followStream(client, at, outage, signal);
    if (stopped()) return;
    if (end.kind === "gone") {
      stats.expired++;
      log.info(
        { resourceVersion: at.resourceVersion },
        "Node watch expired (410 Gone); listing the Nodes again",
      );
      at = null;
    } else if (end.kind === "failed" && !(await outage.failed(end.err))) return;
  }
}
