/** Cancelling one thing when any of several others is cancelled. */

/** An AbortController that aborts with the first of `signals` to abort, and a way to unlink it. */
export interface LinkedAbort {
  readonly controller: AbortController;
  readonly signal: AbortSignal;
  /** Unlinks it from `signals`; call when the work it guards is over. */
  dispose(): void;
}

/**
 * Links a new controller to `signals` with plain listeners. Unlike AbortSignal.any(), whose
 * signal Node 20 may garbage-collect while a request still waits on it (so that it never
 * aborts), the sources hold it for as long as it is linked.
 */
export function linkAbort(signals: readonly AbortSignal[]): LinkedAbort {
  const controller = new AbortController();
  const listeners = signals.map((source) => {
    const listener = () => {
      controller.abort(source.reason);
    };
    source.addEventListener("abort", listener, { once: true });
    return { source, listener };
  });
  const aborted = signals.find((s) => s.aborted);
  if (aborted !== undefined) controller.abort(aborted.reason);
  return {
    controller,
    signal: controller.signal,
    dispose: () => {
      for (const { source, listener } of listeners) source.removeEventListener("abort", listener);
    },
  };
}
