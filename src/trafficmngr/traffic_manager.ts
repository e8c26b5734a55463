/**
 * flannel's traffic rules (pkg/trafficmngr): masquerade for pod traffic leaving the flannel
 * network, and FORWARD accept rules for it. One interface, with iptables.ts and nftables.ts
 * beside it. Both write their rules as one atomic batch (`iptables-restore --noflush`, one
 * `nft -f`), never a process per rule, and both are re-checked every `--iptables-resync` seconds
 * and rewritten when anything is missing (flannel does not re-check in nftables mode).
 */
import type { IPNet } from "../ip/ip.js";
import type { Logger } from "../log/logger.js";
import type { CallOptions } from "../util/call_options.js";
import { type Clock, systemClock } from "../util/clock.js";

/** kube-proxy's mark: traffic it marked is never masqueraded by flannel (double-NAT bug). */
export const KUBE_PROXY_MARK = "0x4000/0x4000";

/** Masquerade for one family: the flannel network and this host's subnet. */
export interface MasqRules {
  readonly network: IPNet;
  readonly subnet: IPNet;
  readonly randomFully: boolean;
}

/** The rules flanneld wants on this host. */
export interface FlannelRules {
  /** With --ip-masq: the flannel network and this host's subnet. */
  readonly masq: MasqRules | null;
  /** With --iptables-forward-rules: the flannel network. */
  readonly forward: { readonly network: IPNet } | null;
  /** The same for IPv6 (EnableIPv6): ip6tables, or the `ip6 flannel-ipv6` table. */
  readonly masq6?: MasqRules | null;
  readonly forward6?: { readonly network: IPNet } | null;
}

/**
 * The rules flanneld's flags ask for on a host with these subnets: masquerade with --ip-masq,
 * FORWARD accepts with --iptables-forward-rules, per family the host has.
 */
export function flannelRulesFor(
  flags: { readonly ipMasq: boolean; readonly iptablesForwardRules: boolean },
  config: {
    readonly network: IPNet | null;
    readonly enableIPv6: boolean;
    readonly ipv6Network: IPNet | null;
  },
  subnet: IPNet | null,
  ipv6Subnet: IPNet | null,
  randomFully: boolean,
): FlannelRules {
  const network = subnet === null ? null : config.network;
  const network6 = config.enableIPv6 && ipv6Subnet !== null ? config.ipv6Network : null;
  return {
    masq:
      flags.ipMasq && network !== null && subnet !== null ? { network, subnet, randomFully } : null,
    forward: flags.iptablesForwardRules && network !== null ? { network } : null,
    masq6:
      flags.ipMasq && network6 !== null && ipv6Subnet !== null
        ? { network: network6, subnet: ipv6Subnet, randomFully }
        : null,
    forward6: flags.iptablesForwardRules && network6 !== null ? { network: network6 } : null,
  };
}

/** One family's rules out of FlannelRules. */
export function rulesOfFamily(
  rules: FlannelRules,
  family: 4 | 6,
): { masq: MasqRules | null; forward: { readonly network: IPNet } | null } {
  return family === 4
    ? { masq: rules.masq, forward: rules.forward }
    : { masq: rules.masq6 ?? null, forward: rules.forward6 ?? null };
}

/** The multicast range masquerade leaves alone, per family. */
export const MULTICAST = { 4: "224.0.0.0/4", 6: "ff00::/8" } as const;

/** One way of writing the rules into the kernel. */
export interface TrafficManager {
  readonly mode: "iptables" | "nftables";
  /** Removes the rules of the other mode, so a host that switched keeps no stale ones. */
  cleanUpOtherMode(): Promise<void>;
  /** Writes the rules in one atomic batch, replacing flannel's chains. */
  apply(rules: FlannelRules): Promise<void>;
  /** Whether the kernel holds these rules, in order. */
  check(rules: FlannelRules): Promise<boolean>;
  /** The shell command that writes these rules as apply() would (for flannelctl doctor). */
  fixCommand(rules: FlannelRules): Promise<string>;
  /** Whether masquerade can use fully random ports (`--random-fully`, `fully-random`). */
  supportsRandomFully(): Promise<boolean>;
}

/**
 * Re-checks rules already written every `resyncSeconds` and rewrites them when something is
 * missing, until the signal aborts. Rules are left in place on stop, as flannel leaves them.
 */
export async function keepTrafficRules(
  manager: TrafficManager,
  rules: FlannelRules,
  log: Logger,
  opts: CallOptions & {
    readonly resyncSeconds: number;
    readonly stats?: { repairs: number };
    readonly clock?: Clock;
  },
): Promise<void> {
  try {
    const clock = opts.clock ?? systemClock;
    while (await clock.sleep(opts.resyncSeconds * 1000, opts.signal)) {
      try {
        if (await manager.check(rules)) continue;
        log.warn(
          { mode: manager.mode },
          "Some traffic rules are missing; deleting and recreating rules",
        );
        await manager.apply(rules);
        if (opts.stats !== undefined) opts.stats.repairs++;
      } catch (err) {
        log.error(
          { mode: manager.mode, err: (err as Error).message },
          "Cannot check or write traffic rules; retrying at the next resync",
        );
      }
    }
  } catch (err) {
    if (!opts.signal.aborted) throw err;
  }
}
