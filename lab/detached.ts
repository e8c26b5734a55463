/**
 * The processes the lab starts detached (flanneld, etcd, the API double, containerd): started
 * with their output to a log file and their pid to a pid file, found alive by that pid file, and
 * ended through it.
 */
import { spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { setTimeout as delay } from "node:timers/promises";

/** Where a detached process writes its output and its pid. */
export interface DetachedFiles {
  readonly logFile: string;
  readonly pidFile: string;
}

/**
 * Starts `argv` detached, output appended to `logFile`, pid to `pidFile`; `env` is its whole
 * environment. Resolves with the pid.
 */
export async function startDetached(
  argv: readonly [string, ...string[]],
  files: DetachedFiles,
  env: NodeJS.ProcessEnv,
): Promise<number> {
  const [cmd, ...args] = argv;
  const fd = openSync(files.logFile, "a");
  try {
    const child = spawn(cmd, args, { detached: true, stdio: ["ignore", fd, fd], env });
    child.unref();
    if (child.pid === undefined) throw new Error(`Cannot start ${argv.join(" ")}`);
    await writeFile(files.pidFile, `${child.pid}\n`);
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

/** Starts a command detached in a namespace (`ip netns exec`), this environment plus `env`. */
export function startDetachedIn(
  netns: string,
  cmd: string,
  args: readonly string[],
  files: DetachedFiles,
  env: Readonly<Record<string, string>> = {},
): Promise<number> {
  return startDetached(["ip", "netns", "exec", netns, cmd, ...args], files, {
    ...process.env,
    ...env,
  });
}

/** The pid in a pid file, when that process is alive; null otherwise. */
export async function livePid(pidFile: string): Promise<number | null> {
  const pid = Number((await readFile(pidFile, "utf8").catch(() => "")).trim());
  if (!(pid > 0)) return null;
  try {
    process.kill(pid, 0);
    return pid;
  } catch {
    return null;
  }
}

/** Signals the process of a pid file (if alive) and resolves once it is gone (SIGKILL after 10 s). */
export async function killPidFile(pidFile: string, signal: NodeJS.Signals): Promise<void> {
  const pid = await livePid(pidFile);
  if (pid === null) return;
  try {
    process.kill(pid, signal);
  } catch {
    return;
  }
  for (let i = 0; i < 400 && (await livePid(pidFile)) !== null; i++) await delay(25);
  // Still there after 10 s: a stuck process must not outlive the lab's next step.
  if (signal !== "SIGKILL" && (await livePid(pidFile)) !== null) {
    await killPidFile(pidFile, "SIGKILL");
  }
}
