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
export interface NodeWatchStats {
  lists: number;
  watches: number;
  expired: number;
  failures: number;
}

const RETRY_INITIAL_MS = 100;
const RETRY_MAX_MS = 5_000;

function resourceVersionOf(object: unknown): string | null {
  const rv = (object as { metadata?: { resourceVersion?: unknown } } | null)?.metadata
    ?.resourceVersion;
  return typeof rv === "string" && rv !== "" ? rv : null;
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
  let resourceVersion: string | null = null;
  let delays = backoff(RETRY_INITIAL_MS, RETRY_MAX_MS);
  let outage: string | null = null;
  const failed = async (err: unknown): Promise<boolean> => {
    stats.failures++;
    const message = err instanceof Error ? err.message : String(err);
    if (outage === null) {
      log.warn({ err: message }, "Lost the Kubernetes API; retrying with backoff");
      outage = message;
    }
    return (opts.clock ?? systemClock).sleep(delays.next().value, signal);
  };
  const recovered = () => {
    delays = backoff(RETRY_INITIAL_MS, RETRY_MAX_MS);
    if (outage !== null) {
      log.info({ was: outage }, "Reconnected to the Kubernetes API");
      outage = null;
    }
  };

  while (!signal.aborted) {
    if (resourceVersion === null) {
      let listed: { nodes: NodeView[]; resourceVersion: string };
      try {
        listed = await client.listNodes({ signal });
      } catch (err) {
        if (stopped()) return;
        if (!(await failed(err))) return;
        continue;
      }
      stats.lists++;
      recovered();
      resourceVersion = listed.resourceVersion;
      yield { kind: "snapshot", nodes: listed.nodes };
      continue;
    }

    const queue = new AsyncQueue<RawWatchEvent>(signal);
    let handle: { abort(): void } | null = null;
    let gone = false;
    let streamError: unknown = null;
    try {
      handle = await client.watchNodes(
        resourceVersion,
        (event) => {
          queue.push(event);
        },
        (err) => {
          queue.close(err ?? null);
        },
      );
      stats.watches++;
      // The stream is open (client-node resolves after the answer's headers, and has already
      // closed the queue when the request failed): the API server is back.
      if (!queue.closed) recovered();
      for await (const event of queue) {
        if (event.type === "ERROR") {
          if (statusCodeOf(event.object) === 410) gone = true;
          else streamError = event.object;
          continue;
        }
        if (event.type !== "ADDED" && event.type !== "MODIFIED" && event.type !== "DELETED")
          continue; // BOOKMARK
        resourceVersion = resourceVersionOf(event.object) ?? resourceVersion;
        const node = nodeViewOf(event.object);
        if (node === null) continue;
        recovered();
        yield { kind: "event", type: event.type, node };
      }
    } finally {
      queue.close();
      handle?.abort();
    }
    if (stopped()) return;
    const err = queue.error;
    if (gone || statusCodeOf(err) === 410) {
      stats.expired++;
      log.info({ resourceVersion }, "Node watch expired (410 Gone); listing the Nodes again");
      resourceVersion = null;
      continue;
    }
    const timedOut = err instanceof Error && err.name === "TimeoutError";
    if (streamError !== null || (err !== null && !timedOut)) {
      const reason = streamError ?? err;
      if (!(await failed(reason instanceof Error ? reason : new Error(JSON.stringify(reason)))))
        return;
    }
  }
}
