/**
 * Running a program and collecting its output: for the few tools flanneld drives (iptables, nft),
 * the CNI plugin's delegate, and the lab's set-up.
 */
import { spawn } from "node:child_process";

/** How a program ended and what it printed. */
export interface RunResult {
  /** The exit code; null when a signal ended it. */
  readonly code: number | null;
  readonly stdout: string;
  /** Empty when stderr was passed through. */
  readonly stderr: string;
}

/** Options of runCapture and run. */
export interface RunOptions {
  /** Written to the program's stdin, which is closed after it (no stdin when absent). */
  readonly input?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Pass the program's stderr through to ours instead of collecting it. */
  readonly inheritStderr?: boolean;
}

/** Runs a program to its end; resolves whatever its exit code. Rejects only when it cannot start. */
export async function runCapture(
  cmd: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const input = options.input;
    const child = spawn(cmd, args, {
      stdio: [
        input === undefined ? "ignore" : "pipe",
        "pipe",
        options.inheritStderr ? "inherit" : "pipe",
      ],
      env: options.env ?? process.env,
    });
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", (err) => {
      reject(new Error(`Cannot run ${cmd}: ${err.message}`, { cause: err }));
    });
    child.on("close", (code) => {
      resolve({ code, stdout, stderr });
    });
    if (input !== undefined && child.stdin !== null) {
      child.stdin.on("error", () => undefined); // the exit code and stderr tell what went wrong
      child.stdin.end(input);
    }
  });
}

/** Runs a program; resolves with stdout, rejects with stderr in the message unless it exits 0. */
export async function run(
  cmd: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<string> {
  const { code, stdout, stderr } = await runCapture(cmd, args, options);
  if (code === 0) return stdout;
  throw new Error(
    `${cmd} ${args.join(" ")} failed (exit ${code ?? "signal"}): ${stderr.trim() || stdout.trim()}`,
  );
}
