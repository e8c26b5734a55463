/**
 * Runs one hook as flannel does: `sh -c COMMAND` with flanneld's environment plus the hook's
 * variables, `stdin` followed by a newline on its standard input, and stdout and stderr combined
 * and trimmed. Unlike flannel, it is bounded: killed (its whole process group) at the timeout or
 * when flanneld stops, and only the output's last 64 KiB are kept.
 */
import { spawn } from "node:child_process";
import { performance } from "node:perf_hooks";

/** The most output kept of one run (its end). */
export const OUTPUT_KEPT_BYTES = 64 * 1024;

export interface HookRun {
  /** The exit code; null when it was killed or could not start. */
  readonly code: number | null;
  /** Combined stdout and stderr, trimmed (the end, when there was more than OUTPUT_KEPT_BYTES). */
  readonly output: string;
  /** Why it did not succeed beyond its exit code: "timeout", "stopped", or a spawn error. */
  readonly killed: string | null;
  readonly ms: number;
}

export interface HookOptions {
  readonly env: Readonly<Record<string, string>>;
  readonly stdin: string;
  readonly timeoutMs: number;
  readonly signal: AbortSignal;
}

/** Whether a run succeeded. */
export const succeeded = (run: HookRun): boolean => run.code === 0 && run.killed === null;

/** "exit 3", "killed after the 60 s timeout", ...: how a run ended, for logs and errors. */
export function endOf(run: HookRun, timeoutMs: number): string {
  if (run.killed === "timeout") return `killed after the ${timeoutMs / 1000} s timeout`;
  if (run.killed === "stopped") return "killed as flanneld stopped";
  if (run.killed !== null) return `could not start: ${run.killed}`;
  return `exit ${run.code ?? "by a signal"}`;
}

export function runHook(command: string, opts: HookOptions): Promise<HookRun> {
  const started = performance.now();
  return new Promise((resolve) => {
    let output = Buffer.alloc(0);
    let killed: string | null = null;
    const child = spawn("sh", ["-c", command], {
      env: { ...process.env, ...opts.env },
      stdio: ["pipe", "pipe", "pipe"],
      detached: true, // its own process group, so that a kill reaches what it started
    });
    const keep = (chunk: Buffer) => {
      output = Buffer.concat([output, chunk]);
      if (output.length > OUTPUT_KEPT_BYTES) output = output.subarray(-OUTPUT_KEPT_BYTES);
    };
    const kill = (why: string) => {
      killed ??= why;
      try {
        if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
      } catch {
        // already gone
      }
    };
    const timer = setTimeout(() => {
      kill("timeout");
    }, opts.timeoutMs);
    const onAbort = () => {
      kill("stopped");
    };
    opts.signal.addEventListener("abort", onAbort, { once: true });
    if (opts.signal.aborted) onAbort();
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    child.stdin.on("error", () => undefined); // a command that ignores its stdin may close it
    child.stdin.end(`${opts.stdin}\n`);
    child.on("error", (err) => (killed ??= err.message));
    child.on("close", (code) => {
      clearTimeout(timer);
      opts.signal.removeEventListener("abort", onAbort);
      resolve({
        code: killed === null ? code : null,
        output: output.toString("utf8").trim(),
        killed,
        ms: Math.round(performance.now() - started),
      });
    });
  });
}
