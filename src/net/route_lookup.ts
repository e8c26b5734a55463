/** Which route the kernel takes for an address: longest prefix match over a table's routes. */
import { IPNet, parseIP } from "../ip/ip.js";
import type { Route } from "./netlink.js";

/** The unicast route for `ip` among `routes` (one table), by longest prefix; null for none. */
export function lookupRoute(routes: readonly Route[], ip: string): Route | null {
  const address = parseIP(ip);
  if (address === null) return null;
  let best: { route: Route; len: number } | null = null;
  for (const route of routes) {
    const dst = IPNet.parse(route.dst);
    if (!route.unicast || dst === null || dst.family !== address.family) continue;
    if (!dst.contains(address.value)) continue;
    if (best === null || dst.prefixLen > best.len) best = { route, len: dst.prefixLen };
  }
  return best?.route ?? null;
}
