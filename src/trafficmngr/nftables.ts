/**
 * Traffic rules with nftables (flannel's pkg/trafficmngr/nftables, `EnableNFTables`): table
 * `ip flannel-ipv4`, chain `postrtg` (nat, postrouting, srcnat) and chain `forward` (filter,
 * forward, filter). One `nft -f` script declares the table and chains, flushes the chains and
 * writes the rules, atomically. The rules are written in the form `nft list` prints them, so the
 * resync compares listings directly. Unlike flannel, the rules are kept on stop (as in iptables
 * mode) and re-checked every resync period. IPv6 rules go into table `ip6 flannel-ipv6`, the
 * same rules with `ip6` matches and ff00::/8; both tables are always declared, as flannel does.
 */
import { run } from "../util/exec.js";
import type { FlannelRules, TrafficManager } from "./traffic_manager.js";
import { MULTICAST, rulesOfFamily } from "./traffic_manager.js";

const TABLE = { 4: "flannel-ipv4", 6: "flannel-ipv6" } as const;
const NFT_FAMILY = { 4: "ip", 6: "ip6" } as const;

/** The rules of each chain of one family, as `nft list` prints them, in flannel's order. */
export function nftablesRules(
  all: FlannelRules,
  family: 4 | 6 = 4,
): { postrtg: string[]; forward: string[] } {
  const rules = rulesOfFamily(all, family);
  const ip = NFT_FAMILY[family];
  const postrtg: string[] = [];
  const forward: string[] = [];
  if (rules.masq !== null) {
    const cc = rules.masq.network.toString();
    const pc = rules.masq.subnet.toString();
    const masquerade = rules.masq.randomFully ? "masquerade fully-random" : "masquerade";
    postrtg.push(
      "meta mark 0x00004000 return",
      `${ip} saddr ${pc} ${ip} daddr ${cc} return`,
      `${ip} saddr ${cc} ${ip} daddr ${pc} return`,
      // flannel's nftables rule differs from its iptables one here (! -s <cc> -d <pc>); kept as flannel has it.
      `${ip} saddr != ${pc} ${ip} daddr ${cc} return`,
      `${ip} saddr ${cc} ${ip} daddr != ${MULTICAST[family]} ${masquerade}`,
      `${ip} saddr != ${cc} ${ip} daddr ${cc} ${masquerade}`,
    );
  }
  if (rules.forward !== null) {
    const net = rules.forward.network.toString();
    forward.push(`${ip} saddr ${net} accept`, `${ip} daddr ${net} accept`);
  }
  return { postrtg, forward };
}

/** The `nft -f` script that writes the rules of both families. */
export function nftScript(all: FlannelRules): string {
  const lines: string[] = [];
  for (const family of [4, 6] as const) {
    const rules = rulesOfFamily(all, family);
    const { postrtg, forward } = nftablesRules(all, family);
    const table = `${NFT_FAMILY[family]} ${TABLE[family]}`;
    lines.push(`add table ${table} { comment "rules for ${TABLE[family]}" ; }`);
    const chain = (name: string, spec: string, comment: string, body: readonly string[]) => {
      lines.push(
        `add chain ${table} ${name} { comment "${comment}" ; ${spec} ; }`,
        `flush chain ${table} ${name}`,
      );
      for (const rule of body) lines.push(`add rule ${table} ${name} ${rule}`);
    };
    if (rules.masq !== null)
      chain(
        "postrtg",
        "type nat hook postrouting priority srcnat",
        "chain to manage traffic masquerading by flannel",
        postrtg,
      );
    else lines.push(`add chain ${table} postrtg`, `delete chain ${table} postrtg`);
    if (rules.forward !== null)
      chain(
        "forward",
        "type filter hook forward priority filter",
        "chain to accept flannel traffic",
        forward,
      );
    else lines.push(`add chain ${table} forward`, `delete chain ${table} forward`);
  }
  return `${lines.join("\n")}\n`;
}

/** The rule lines of one chain in an `nft list table` listing. */
export function chainRulesOf(listing: string, chain: string): string[] | null {
  const start = listing.indexOf(`chain ${chain} {`);
  if (start < 0) return null;
  const end = listing.indexOf("}", start);
  return listing
    .slice(start, end)
    .split("\n")
    .slice(1)
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("comment ") && !l.startsWith("type "));
}

/** Traffic rules through nftables. */
export class NFTablesManager implements TrafficManager {
  readonly mode = "nftables";

  async cleanUpOtherMode(): Promise<void> {
    // flannel's iptables chains and their jumps, in one restore per table.
    const payload = (table: string, chain: string, parent: string, comment: string) =>
      `*${table}\n:${chain} - [0:0]\n-D ${parent} -m comment --comment "${comment}" -j ${chain}\n-X ${chain}\nCOMMIT\n`;
    await run("iptables-restore", ["--noflush", "--wait"], {
      input: payload("nat", "FLANNEL-POSTRTG", "POSTROUTING", "flanneld masq"),
    }).catch(() => undefined);
    await run("iptables-restore", ["--noflush", "--wait"], {
      input: payload("filter", "FLANNEL-FWD", "FORWARD", "flanneld forward"),
    }).catch(() => undefined);
    // Chains without a jump: the -D above failed the whole batch; flush and delete them alone.
    await run("iptables-restore", ["--noflush", "--wait"], {
      input: "*nat\n:FLANNEL-POSTRTG - [0:0]\n-X FLANNEL-POSTRTG\nCOMMIT\n",
    }).catch(() => undefined);
    await run("iptables-restore", ["--noflush", "--wait"], {
      input: "*filter\n:FLANNEL-FWD - [0:0]\n-X FLANNEL-FWD\nCOMMIT\n",
    }).catch(() => undefined);
  }

  async apply(rules: FlannelRules): Promise<void> {
    await run("nft", ["-f", "-"], { input: nftScript(rules) });
  }

  fixCommand(rules: FlannelRules): Promise<string> {
    return Promise.resolve(`nft -f - <<'EOF'\n${nftScript(rules)}EOF`);
  }

  async check(all: FlannelRules): Promise<boolean> {
    for (const family of [4, 6] as const) {
      const rules = rulesOfFamily(all, family);
      const listing = await run("nft", ["list", "table", NFT_FAMILY[family], TABLE[family]]).catch(
        () => "",
      );
      const want = nftablesRules(all, family);
      for (const [chain, expected, wanted] of [
        ["postrtg", want.postrtg, rules.masq !== null],
        ["forward", want.forward, rules.forward !== null],
      ] as const) {
        const present = chainRulesOf(listing, chain);
        if (!wanted) {
          if (present !== null) return false;
          continue;
        }
        if (present === null || present.join("\n") !== expected.join("\n")) return false;
      }
    }
    return true;
  }

  async supportsRandomFully(): Promise<boolean> {
    const probe = `add table ip flannel-probe\nadd chain ip flannel-probe masqueradeTest { type nat hook postrouting priority srcnat ; }\nadd rule ip flannel-probe masqueradeTest masquerade fully-random\n`;
    return run("nft", ["--check", "-f", "-"], { input: probe }).then(
      () => true,
      () => false,
    );
  }
}
