/**
 * Building test hosts out of network namespaces with iproute2: the topology that tests, benches
 * and the lab stand on. This is set-up tooling; flanneld itself never runs `ip`.
 */
import { spawn } from "node:child_process";
import type { ChildProcess, SpawnOptions } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";

import { run } from "../src/util/exec.js";

export { run };

/** A short unique prefix for namespace and link names (links allow 15 characters). */
export function uniquePrefix(tag: string): string {
  return `${tag}${randomBytes(2).toString("hex")}`;
}

/** Runs `ip` with the arguments, in a namespace when given. */
export async function ip(args: readonly string[], netns?: string): Promise<string> {
  return run("ip", netns ? ["-n", netns, ...args] : args);
}

/** Runs a command inside a namespace. */
export async function execIn(
  netns: string,
  cmd: string,
  args: readonly string[],
  options: { input?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<string> {
  return run("ip", ["netns", "exec", netns, cmd, ...args], options);
}

/** Starts a long-running command inside a namespace. */
export function spawnIn(
  netns: string,
  cmd: string,
  args: readonly string[],
  options: SpawnOptions = {},
): ChildProcess {
  return spawn("ip", ["netns", "exec", netns, cmd, ...args], options);
}

/** Makes a namespace with its loopback up. */
export async function addNetns(name: string): Promise<void> {
  await ip(["netns", "add", name]);
  await ip(["link", "set", "lo", "up"], name);
}

/** Removes a namespace, killing what still runs in it first; a missing one is fine. */
export async function deleteNetns(name: string): Promise<void> {
  const pids = await ip(["netns", "pids", name]).catch(() => "");
  for (const pid of pids.split(/\s+/).filter((p) => p !== "")) {
    try {
      process.kill(Number(pid), "SIGKILL");
    } catch {
      // already gone
    }
  }
  await ip(["netns", "delete", name]).catch(() => undefined);
}

/** The namespaces whose names start with the prefix. */
export async function listNetns(prefix: string): Promise<string[]> {
  const out = await ip(["netns", "list"]).catch(() => "");
  return out
    .split("\n")
    .map((line) => line.split(" ")[0] ?? "")
    .filter((name) => name !== "" && name.startsWith(prefix));
}

/** wireguard-go's and wg's socket folder: built into both, one for the whole machine. */
export const WIREGUARD_SOCKET_DIR = "/run/wireguard";

/**
 * The command line that runs `cmd` with `dir` bound over /run/wireguard, in the mount namespace
 * of its own that `ip netns exec` gives each command: hosts sharing one machine (the lab's, the
 * tests') each see their own wireguard-go sockets.
 */
export function withOwnWireguardDir(dir: string, cmd: readonly string[]): string[] {
  mkdirSync(WIREGUARD_SOCKET_DIR, { recursive: true });
  mkdirSync(dir, { recursive: true });
  return ["sh", "-c", 'mount --bind "$0" /run/wireguard && exec "$@"', dir, ...cmd];
}
