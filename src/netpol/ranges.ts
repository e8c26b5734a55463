/** Address and port ranges for interval sets: a CIDR minus its exceptions, merged ranges. */
import { formatIP, maskOf } from "../ip/ip.js";
import type { IPFamily, IPNet } from "../ip/ip.js";

/** An inclusive range of addresses or ports. */
export type Range = readonly [bigint, bigint];

/** The first and last address of a network. */
export function rangeOfNet(net: IPNet): Range {
  return [net.ip, net.ip | (~maskOf(net.family, net.prefixLen) & maskOf(net.family, net.bits))];
}

/** Sorted, merged ranges (touching ones joined). */
export function mergeRanges(ranges: readonly Range[]): Range[] {
  const sorted = [...ranges].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const out: [bigint, bigint][] = [];
  for (const [lo, hi] of sorted) {
    const last = out.at(-1);
    if (last !== undefined && lo <= last[1] + 1n) {
      if (hi > last[1]) last[1] = hi;
    } else out.push([lo, hi]);
  }
  return out;
}

/** `ranges` without the addresses in `holes`. */
export function subtractRanges(ranges: readonly Range[], holes: readonly Range[]): Range[] {
  let out: Range[] = mergeRanges(ranges);
  for (const [hlo, hhi] of mergeRanges(holes)) {
    const next: Range[] = [];
    for (const [lo, hi] of out) {
      if (hhi < lo || hlo > hi) {
        next.push([lo, hi]);
        continue;
      }
      if (hlo > lo) next.push([lo, hlo - 1n]);
      if (hhi < hi) next.push([hhi + 1n, hi]);
    }
    out = next;
  }
  return out;
}

/** A CIDR minus its exceptions, as ranges. */
export function blockRanges(cidr: IPNet, except: readonly IPNet[]): Range[] {
  return subtractRanges([rangeOfNet(cidr)], except.map(rangeOfNet));
}

/** A range as an interval set element: one address, or `first-last`. */
export function formatRange(family: IPFamily, [lo, hi]: Range): string {
  return lo === hi ? formatIP(family, lo) : `${formatIP(family, lo)}-${formatIP(family, hi)}`;
}
