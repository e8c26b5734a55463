/** Options every long or cancellable call takes last, as `fetch(url, { signal })` does. */
export interface CallOptions {
  /** Aborts the call; flanneld aborts it on SIGINT and SIGTERM. */
  readonly signal: AbortSignal;
}
