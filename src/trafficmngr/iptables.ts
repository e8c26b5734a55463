/**
 * Traffic rules with iptables (flannel's pkg/trafficmngr/iptables), rule for rule: chain
 * FLANNEL-POSTRTG in nat (comment "flanneld masq") and FLANNEL-FWD in filter (comment
 * "flanneld forward"), jumped to from POSTROUTING and FORWARD. Each write is one
 * `iptables-restore --noflush` run: declaring a chain flushes it, the jump rules are deleted and
 * appended again, so the rules stay contiguous and ordered, as flannel's bootstrap keeps them.
 * IPv6 (EnableIPv6) gets the same chains and rules through ip6tables, with ff00::/8 for
 * multicast, as flannel writes them.
 */
import { run } from "../util/exec.js";
import type { FlannelRules, TrafficManager } from "./traffic_manager.js";
import { KUBE_PROXY_MARK, MULTICAST, rulesOfFamily } from "./traffic_manager.js";

/** A rule as `iptables -S` prints it, without the `-A <chain>` head. */
interface Rule {
  readonly table: "nat" | "filter";
  readonly chain: string;
  readonly spec: string;
}

const MASQ = '-m comment --comment "flanneld masq"';
const FWD = '-m comment --comment "flanneld forward"';

/** The jump rules and chain rules of one family (iptables or ip6tables), in flannel's order. */
export function iptablesRules(all: FlannelRules, family: 4 | 6 = 4): Rule[] {
  const rules = rulesOfFamily(all, family);
  const out: Rule[] = [];
  if (rules.masq !== null) {
    const cc = rules.masq.network.toString();
    const pc = rules.masq.subnet.toString();
    const masquerade = rules.masq.randomFully ? "-j MASQUERADE --random-fully" : "-j MASQUERADE";
    out.push(
      { table: "nat", chain: "POSTROUTING", spec: `${MASQ} -j FLANNEL-POSTRTG` },
      {
        table: "nat",
        chain: "FLANNEL-POSTRTG",
        spec: `-m mark --mark ${KUBE_PROXY_MARK} ${MASQ} -j RETURN`,
      },
      { table: "nat", chain: "FLANNEL-POSTRTG", spec: `-s ${pc} -d ${cc} ${MASQ} -j RETURN` },
      { table: "nat", chain: "FLANNEL-POSTRTG", spec: `-s ${cc} -d ${pc} ${MASQ} -j RETURN` },
      { table: "nat", chain: "FLANNEL-POSTRTG", spec: `! -s ${cc} -d ${pc} ${MASQ} -j RETURN` },
      {
        table: "nat",
        chain: "FLANNEL-POSTRTG",
        spec: `-s ${cc} ! -d ${MULTICAST[family]} ${MASQ} ${masquerade}`,
      },
      { table: "nat", chain: "FLANNEL-POSTRTG", spec: `! -s ${cc} -d ${cc} ${MASQ} ${masquerade}` },
    );
  }
  if (rules.forward !== null) {
    const net = rules.forward.network.toString();
    out.push(
      { table: "filter", chain: "FORWARD", spec: `${FWD} -j FLANNEL-FWD` },
      { table: "filter", chain: "FLANNEL-FWD", spec: `-s ${net} ${FWD} -j ACCEPT` },
      { table: "filter", chain: "FLANNEL-FWD", spec: `-d ${net} ${FWD} -j ACCEPT` },
    );
  }
  return out;
}

const OWN_CHAINS = { nat: "FLANNEL-POSTRTG", filter: "FLANNEL-FWD" } as const;
const PARENT = { nat: "POSTROUTING", filter: "FORWARD" } as const;

/** Builds the iptables-restore payload that rewrites flannel's chains from the current state. */
export function restorePayload(
  want: readonly Rule[],
  saved: Readonly<Record<"nat" | "filter", string>>,
  remove: ReadonlySet<"nat" | "filter">,
): string {
  const lines: string[] = [];
  for (const table of ["nat", "filter"] as const) {
    const rules = want.filter((r) => r.table === table);
    const chain = OWN_CHAINS[table];
    const jump = `-A ${PARENT[table]} ${table === "nat" ? MASQ : FWD} -j ${chain}`;
    const jumps = saved[table].split("\n").filter((l) => l === jump).length;
    const chainExists = saved[table].split("\n").some((l) => l.startsWith(`:${chain} `));
    if (rules.length === 0 && !(remove.has(table) && (chainExists || jumps > 0))) continue;
    lines.push(`*${table}`, `:${chain} - [0:0]`);
    for (let i = 0; i < jumps; i++) lines.push(`-D ${jump.slice(3)}`);
    if (rules.length === 0) {
      lines.push(`-X ${chain}`);
    } else {
      for (const rule of rules) lines.push(`-A ${rule.chain} ${rule.spec}`);
    }
    lines.push("COMMIT");
  }
  return lines.length === 0 ? "" : `${lines.join("\n")}\n`;
}

const COMMAND = { 4: "iptables", 6: "ip6tables" } as const;

async function save(table: "nat" | "filter", family: 4 | 6): Promise<string> {
  return run(`${COMMAND[family]}-save`, ["-t", table]);
}

/** Whether the rules ask for anything of this family (IPv6 only with EnableIPv6). */
function wantsFamily(rules: FlannelRules, family: 4 | 6): boolean {
  return family === 4 || rules.masq6 != null || rules.forward6 != null;
}

/** Traffic rules through iptables (the nf_tables or legacy backend the host's iptables uses). */
export class IPTablesManager implements TrafficManager {
  readonly mode = "iptables";

  async cleanUpOtherMode(): Promise<void> {
    // One script, one process; it fails harmlessly when neither table exists.
    const script =
      "add table ip flannel-ipv4\ndelete table ip flannel-ipv4\nadd table ip6 flannel-ipv6\ndelete table ip6 flannel-ipv6\n";
    await run("nft", ["-f", "-"], { input: script }).catch(() => undefined);
  }

  /** The iptables-restore payloads that rewrite flannel's chains, per family. */
  async #payloads(rules: FlannelRules): Promise<{ family: 4 | 6; payload: string }[]> {
    const out: { family: 4 | 6; payload: string }[] = [];
    for (const family of [4, 6] as const) {
      // Without IPv6, chains ip6tables holds from an earlier IPv6 config are removed too; a
      // host without ip6tables is left alone.
      const saved = await Promise.all([save("nat", family), save("filter", family)]).then(
        ([nat, filter]) => ({ nat, filter }),
        (err: unknown) => {
          if (wantsFamily(rules, family)) throw err;
          return null;
        },
      );
      if (saved === null) continue;
      // A table whose rules are off (no --ip-masq, or no forward rules) loses flannel's chain.
      const payload = restorePayload(
        iptablesRules(rules, family),
        saved,
        new Set(["nat", "filter"]),
      );
      if (payload !== "") out.push({ family, payload });
    }
    return out;
  }

  async apply(rules: FlannelRules): Promise<void> {
    for (const { family, payload } of await this.#payloads(rules))
      await run(`${COMMAND[family]}-restore`, ["--noflush", "--wait"], { input: payload });
  }

  async fixCommand(rules: FlannelRules): Promise<string> {
    return (await this.#payloads(rules))
      .map(({ family, payload }) => `${COMMAND[family]}-restore --noflush <<'EOF'\n${payload}EOF`)
      .join("\n");
  }

  async check(rules: FlannelRules): Promise<boolean> {
    for (const family of [4, 6] as const) {
      if (wantsFamily(rules, family) && !(await this.#checkFamily(rules, family))) return false;
    }
    return true;
  }

  async #checkFamily(rules: FlannelRules, family: 4 | 6): Promise<boolean> {
    const want = iptablesRules(rules, family);
    for (const table of ["nat", "filter"] as const) {
      const lines = (await save(table, family)).split("\n");
      const chainRules = lines.filter((l) => l.startsWith(`-A ${OWN_CHAINS[table]} `));
      const expected = want
        .filter((r) => r.table === table && r.chain === OWN_CHAINS[table])
        .map((r) => `-A ${r.chain} ${r.spec}`);
      if (chainRules.join("\n") !== expected.join("\n")) return false;
      const jump = want.find((r) => r.table === table && r.chain === PARENT[table]);
      if (jump !== undefined && !lines.includes(`-A ${jump.chain} ${jump.spec}`)) return false;
    }
    return true;
  }

  async supportsRandomFully(): Promise<boolean> {
    // go-iptables' HasRandomFully: iptables 1.6.2 and later.
    const version = /v(\d+)\.(\d+)\.(\d+)/.exec(
      await run("iptables", ["--version"]).catch(() => ""),
    );
    if (version === null) return false;
    const [major, minor, patch] = version.slice(1).map(Number) as [number, number, number];
    return major > 1 || (major === 1 && (minor > 6 || (minor === 6 && patch >= 2)));
  }
}
