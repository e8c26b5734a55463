/**
 * Following a kind of object (client-go's reflector, which flannel's informer runs on): list,
 * then watch from the list's resourceVersion, yielding a snapshot for every list and one event
 * per change. The Nodes (`watchNodes`) and, with --network-policy, the Namespaces, Pods and
 * NetworkPolicies go through it.
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

/** One step of a watch of any kind: a snapshot after each list, or one change. */
export type ReflectorStep<T> =
  | { readonly kind: "snapshot"; readonly items: readonly T[] }
  | {
      readonly kind: "event";
      readonly type: "ADDED" | "MODIFIED" | "DELETED";
      readonly item: T;
    };

/** How to list and watch one kind, and read its objects. */
export interface ListWatch<T> {
  /** The kind and its plural, for the logs: "Node", "Nodes". */
  readonly kind: string;
  readonly kinds: string;
  list(opts: CallOptions): Promise<{ items: T[]; resourceVersion: string }>;
  /** As NodeClient.watchNodes: resolves once the request is sent. */
  watch(
    resourceVersion: string,
    onEvent: (event: RawWatchEvent) => void,
    onDone: (err: unknown) => void,
  ): Promise<{ abort(): void }>;
  /** The typed view of a watched object; null for one that is not of the kind. */
  view(object: unknown): T | null;
}

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
    readonly kinds: string,
    readonly stats: NodeWatchStats,
    readonly clock: Clock,
    readonly signal: AbortSignal,
  ) {}

  /** Counts a failure and waits the next delay; false when the signal aborted first. */
  failed(err: unknown): Promise<boolean> {
    this.stats.failures++;
    const message = err instanceof Error ? err.message : String(err);
    if (this.#reason === null) {
      this.log.warn(
        { err: message, watching: this.kinds },
        "Lost the Kubernetes API; retrying with backoff",
      );
      this.#reason = message;
    }
    return this.clock.sleep(this.#delays.next().value, this.signal);
  }

  recovered(): void {
    this.#delays = backoff(RETRY_INITIAL_MS, RETRY_MAX_MS);
    if (this.#reason !== null) {
      this.log.info(
        { was: this.#reason, watching: this.kinds },
        "Reconnected to the Kubernetes API",
      );
      this.#reason = null;
    }
  }
}

/** How a watch stream ended: expired (410 Gone), failed, or closed (the server's timeout). */
type StreamEnd = { kind: "gone" } | { kind: "failed"; err: Error } | { kind: "closed" };

/** Yields the events of one watch stream from `at.resourceVersion`, moving it on. */
async function* followStream<T>(
  lw: ListWatch<T>,
  at: { resourceVersion: string },
  outage: Outage,
  signal: AbortSignal,
): AsyncGenerator<ReflectorStep<T>, StreamEnd> {
  const queue = new AsyncQueue<RawWatchEvent>(signal);
  let handle: { abort(): void } | null = null;
  let gone = false;
  let streamError: unknown = null;
  try {
    handle = await lw.watch(
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
      const item = lw.view(event.object);
      if (item === null) continue;
      outage.recovered();
      yield { kind: "event", type: event.type, item };
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

/** Yields snapshots and events of one kind until the signal aborts. */
export async function* reflect<T>(
  lw: ListWatch<T>,
  log: Logger,
  opts: CallOptions & { readonly stats?: NodeWatchStats; readonly clock?: Clock },
): AsyncGenerator<ReflectorStep<T>> {
  const { signal } = opts;
  const stopped = () => signal.aborted; // read afresh: awaits change it
  const stats = opts.stats ?? { lists: 0, watches: 0, expired: 0, failures: 0 };
  const outage = new Outage(log, lw.kinds, stats, opts.clock ?? systemClock, signal);
  let at: { resourceVersion: string } | null = null;
  while (!signal.aborted) {
    if (at === null) {
      let listed: { items: T[]; resourceVersion: string };
      try {
        listed = await lw.list({ signal });
      } catch (err) {
        if (stopped() || !(await outage.failed(err))) return;
        continue;
      }
      stats.lists++;
      outage.recovered();
      at = { resourceVersion: listed.resourceVersion };
      yield { kind: "snapshot", items: listed.items };
      continue;
    }
    const end = yield* followStream(lw, at, outage, signal);
    if (stopped()) return;
    if (end.kind === "gone") {
      stats.expired++;
      log.info(
        { resourceVersion: at.resourceVersion, watching: lw.kinds },
        `${lw.kind} watch expired (410 Gone); listing the ${lw.kinds} again`,
      );
      at = null;
    } else if (end.kind === "failed" && !(await outage.failed(end.err))) return;
  }
}

/** Yields Node snapshots and events until the signal aborts. */
export async function* watchNodes(
  client: NodeClient,
  log: Logger,
  opts: CallOptions & { readonly stats?: NodeWatchStats; readonly clock?: Clock },
): AsyncGenerator<NodeWatchResult> {
  const lw: ListWatch<NodeView> = {
    kind: "Node",
    kinds: "Nodes",
    list: async (o) => {
      const { nodes, resourceVersion } = await client.listNodes(o);
      return { items: nodes, resourceVersion };
    },
    watch: (rv, onEvent, onDone) => client.watchNodes(rv, onEvent, onDone),
    view: nodeViewOf,
  };
  for await (const step of reflect(lw, log, opts))
    yield step.kind === "snapshot"
      ? { kind: "snapshot", nodes: step.items }
      : { kind: "event", type: step.type, node: step.item };
}
