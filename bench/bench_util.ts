/** What the benches share: printing, percentiles, watching routes appear, counting entries. */
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { execIn, ip } from "../src/lab/netns.js";

/** Prints one figure line. */
export const print = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

/** The p-th percentile (nearest rank). */
export function percentile(values: readonly number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? Number.NaN;
}

/**
 * Follows `ip -ts monitor route` in a namespace: the kernel's own time at which each /24 route
 * via a gateway appeared. `stop()` ends the monitor.
 */
export function monitorRoutes(netns: string): { seen: Map<string, number>; stop(): void } {
  const monitor = spawn("ip", ["netns", "exec", netns, "ip", "-ts", "monitor", "route"], {
    stdio: ["ignore", "pipe", "ignore"],
  });
  const seen = new Map<string, number>();
  createInterface({ input: monitor.stdout }).on("line", (line) => {
    const m = /^\[([^\]]+)\]\s*(\d+\.\d+\.\d+\.\d+\/24) via/.exec(line);
    if (m?.[1] !== undefined && m[2] !== undefined)
      seen.set(m[2], Date.parse(m[1].replace(/(\.\d{3})\d*/, "$1")));
  });
  return {
    seen,
    stop: () => {
      monitor.kill();
    },
  };
}

/** Routes, neighbours and FDB entries (with a dst) on a host's flannel.1. */
export async function countEntries(netns: string): Promise<number> {
  const [routes, neighs, fdb] = await Promise.all([
    ip(["route", "show", "dev", "flannel.1"], netns),
    ip(["neigh", "show", "dev", "flannel.1"], netns),
    execIn(netns, "bridge", ["fdb", "show", "dev", "flannel.1"]),
  ]);
  const lines = (s: string) => s.split("\n").filter((l) => l.trim() !== "").length;
  return lines(routes) + lines(neighs) + fdb.split("\n").filter((l) => l.includes(" dst ")).length;
}
