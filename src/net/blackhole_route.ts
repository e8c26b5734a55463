/**
 * `--ip-blackhole-route` (flannel's "add blackhole route for the local podCIDR"): traffic to an
 * address of this host's subnet that no pod holds is dropped here instead of following the
 * default route out of the host. The route sits at BLACKHOLE_ROUTE_METRIC, behind the CNI
 * bridge's connected route to the same subnet, and is re-checked every `--iptables-resync`
 * seconds like the traffic rules.
 */
import type { IPNet } from "../ip/ip.js";
import type { Logger } from "../log/logger.js";
import type { CallOptions } from "../util/call_options.js";
import type { Netlink } from "./netlink.js";
import { type Clock, systemClock } from "../util/clock.js";

/** Adds the route when it is missing; resolves true when it had to. */
export async function ensureBlackholeRoute(netlink: Netlink, subnet: IPNet): Promise<boolean> {
  const dst = subnet.toString();
  const routes = await netlink.listRoutes();
  if (routes.some((r) => r.blackhole && r.dst === dst)) return false;
  await netlink.replaceBlackholeRoute(dst);
  return true;
}

/** Keeps the blackhole route until the signal aborts; `onRepair` counts the times it came back. */
export async function keepBlackholeRoute(
  netlink: Netlink,
  subnet: IPNet,
  log: Logger,
  opts: CallOptions & {
    readonly resyncSeconds: number;
    readonly onRepair?: () => void;
    readonly clock?: Clock;
  },
): Promise<void> {
  try {
    const clock = opts.clock ?? systemClock;
    while (await clock.sleep(opts.resyncSeconds * 1000, opts.signal)) {
      try {
        if (await ensureBlackholeRoute(netlink, subnet)) {
          opts.onRepair?.();
          log.warn({ subnet: subnet.toString() }, "Blackhole route was missing; added it again");
        }
      } catch (err) {
        log.error(
          { subnet: subnet.toString(), err: (err as Error).message },
          "Cannot check the blackhole route; trying again at the next resync",
        );
      }
    }
  } catch (err) {
    if (!opts.signal.aborted) throw err;
  }
}
