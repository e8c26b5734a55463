/**
 * Reachability between a lab's pods: every pod pings every other pod, over IPv4 and, on a
 * dual-stack lab, over IPv6 too.
 */
import { formatTable } from "../src/util/table.js";
import { setTimeout as delay } from "node:timers/promises";
import { execIn, spawnIn } from "./netns.js";
import type { LabPod } from "./cluster.js";

/** One ping from a pod to another. */
export interface PingResult {
  readonly from: string;
  readonly to: string;
  readonly ok: boolean;
  /** Round-trip time in ms; null when the ping failed. */
  readonly rttMs: number | null;
  /** Which address was pinged: the IPv4 one (or an IPv6-only pod's), or the IPv6 one. */
  readonly family: 4 | 6;
  /**
   * Under NetworkPolicy (a TCP probe instead of a ping): the policies block the pair and it was
   * blocked; `ok` is then true, as for every pair that behaves as the policies say.
   */
  readonly blockedByPolicy?: boolean;
}

/** Pings once from one pod to another's address (its IPv6 address with `family` 6). */
export async function ping(
  from: LabPod,
  to: LabPod,
  timeoutSeconds = 2,
  family: 4 | 6 = 4,
): Promise<PingResult> {
  const target = family === 6 ? (to.ip6 ?? to.ip) : to.ip;
  try {
    const out = await execIn(from.netns, "ping", ["-c", "1", "-W", String(timeoutSeconds), target]);
    const rtt = /time=([\d.]+) ms/.exec(out)?.[1];
    return {
      from: from.name,
      to: to.name,
      ok: true,
      rttMs: rtt === undefined ? null : Number(rtt),
      family,
    };
  } catch {
    return { from: from.name, to: to.name, ok: false, rttMs: null, family };
  }
}

/** Every ordered pair of distinct pods, pinged a few pairs at a time. */
export async function pingAll(
  pods: readonly LabPod[],
  parallel = 4,
  timeoutSeconds = 2,
): Promise<PingResult[]> {
  // IPv4 pairs first, then (dual-stack) the IPv6 ones.
  const pairs = ([4, 6] as const).flatMap((family) =>
    pods.flatMap((from) =>
      pods
        .filter((to) => to !== from && (family === 4 || (from.ip6 && to.ip6)))
        .map((to) => [from, to, family] as const),
    ),
  );
  const results: PingResult[] = [];
  for (let i = 0; i < pairs.length; i += parallel) {
    results.push(
      ...(await Promise.all(
        pairs
          .slice(i, i + parallel)
          .map(([from, to, family]) => ping(from, to, timeoutSeconds, family)),
      )),
    );
  }
  return results;
}

/**
 * The pod × pod matrix: round-trip times in ms, "FAIL" for a failed pair; a second matrix for
 * IPv6 on a dual-stack lab.
 */
export function formatPingMatrix(pods: readonly LabPod[], results: readonly PingResult[]): string {
  const matrix = (family: 4 | 6) => {
    const address = (p: LabPod) => (family === 6 ? (p.ip6 ?? p.ip) : p.ip);
    const cell = (from: LabPod, to: LabPod) => {
      if (from === to) return "-";
      const r = results.find(
        (x) => x.from === from.name && x.to === to.name && x.family === family,
      );
      if (r === undefined) return "?";
      return r.ok ? (r.rttMs === null ? "ok" : `${r.rttMs.toFixed(2)}ms`) : "FAIL";
    };
    return formatTable([
      ["from \\ to", ...pods.map((p) => `${p.name} ${address(p)}`)],
      ...pods.map((from) => [`${from.name} ${address(from)}`, ...pods.map((to) => cell(from, to))]),
    ]);
  };
  const v6 = results.some((r) => r.family === 6);
  return v6 ? `${matrix(4)}\nIPv6:\n${matrix(6)}` : matrix(4);
}

/** TCP throughput from one pod to another with iperf3, in Gbit/s. */
export async function iperfBetween(
  from: Pick<LabPod, "netns">,
  to: Pick<LabPod, "netns" | "ip">,
  seconds: number,
  streams = 1,
): Promise<number> {
  const server = spawnIn(to.netns, "iperf3", ["-s", "-1", "-B", to.ip], { stdio: "ignore" });
  try {
    for (let i = 0; i < 50; i++) {
      try {
        const out = JSON.parse(
          await execIn(from.netns, "iperf3", [
            "-c",
            to.ip,
            "-t",
            String(seconds),
            "-P",
            String(streams),
            "-J",
          ]),
        ) as { end: { sum_received: { bits_per_second: number } } };
        return out.end.sum_received.bits_per_second / 1e9;
      } catch (err) {
        if (i === 49) throw err;
        await delay(100); // the server is not listening yet
      }
    }
    return 0;
  } finally {
    server.kill();
  }
}
