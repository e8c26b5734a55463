/**
 * The plan as nftables: table `inet flannel-policy`, written whole (at start and to repair
 * drift) or as the difference from the plan last written, each as one `nft -f` transaction, so
 * that no packet ever meets half of a change.
 *
 * The base chain `forward` (hook forward, before flannel's own forward rules) accepts replies
 * and related packets, then connections already checked under the current generation of the
 * rules (a connection-tracking mark); a new connection, or one checked under older rules, goes
 * through `egress` when its source is an isolated pod of this node and `ingress` when its
 * destination is, and is marked with the generation once both let it pass. Every change bumps
 * the generation, so a connection that the new policies refuse is cut at its next packet and
 * one they allow goes on.
 *
 * `ingress` and `egress` dispatch: a jump per policy into the policy's own chain (`p<hash>_i`,
 * `_e`), whose rules set a packet mark bit when they allow; then `return` when the bit is set,
 * else the policies' counted drops. A policy added or changed rewrites its own chain and the
 * dispatch's one line per policy, never the other policies' rules.
 */
import type { IPFamily } from "../ip/ip.js";
import { run } from "../util/exec.js";
import { isolatedSetName } from "./plan.js";
import type { Match, PolicyPlan, RuleSpec, SetSpec } from "./plan.js";

/** The table, as `nft` names it. */
export const POLICY_TABLE = "inet flannel-policy";

/** The connection-tracking mark bits that hold the rules' generation (1 to 255). */
export const GENERATION_MASK = 0x00ff0000;

/** The packet mark bit a policy chain sets when it allows the packet (cleared after the checks). */
export const ALLOWED_BIT = 0x01000000;

const ADDR = { 4: "ipv4_addr", 6: "ipv6_addr" } as const;
const IP = { 4: "ip", 6: "ip6" } as const;

function hex(value: number): string {
  return `0x${value.toString(16).padStart(8, "0")}`;
}

function setType(set: SetSpec): string {
  const addr = ADDR[set.family ?? 4];
  switch (set.kind) {
    case "addr":
      return `type ${addr} ;`;
    case "range":
      return `type ${addr} ; flags interval ;`;
    case "ports":
      return "type inet_proto . inet_service ; flags interval ;";
    case "addrPort":
      return `type ${addr} . inet_proto . inet_service ;`;
  }
}

function matchText(family: IPFamily, m: Match): string {
  const ip = IP[family];
  switch (m.on) {
    case "saddr":
    case "daddr":
      return `${ip} ${m.on} @${m.set}`;
    case "ports":
      return `meta l4proto . th dport @${m.set}`;
    case "daddrPorts":
      return `${ip} daddr . meta l4proto . th dport @${m.set}`;
  }
}

/** A rule as `nft add rule` takes it (after the chain name). */
export function ruleText(rule: RuleSpec): string {
  const matches = rule.matches.map((m) => matchText(rule.family, m)).join(" ");
  const verdict =
    rule.verdict === "return"
      ? rule.chain === undefined
        ? "return"
        : `meta mark set meta mark or ${hex(ALLOWED_BIT)} return`
      : rule.counter === undefined
        ? "counter drop"
        : `counter name "${rule.counter}" drop`;
  return `${matches} ${verdict} comment "${rule.comment.slice(0, 120)}"`;
}

function addSet(set: SetSpec): string[] {
  const lines = [`add set ${POLICY_TABLE} ${set.name} { ${setType(set)} }`];
  if (set.elements.length > 0) lines.push(elements("add", set.name, set.elements));
  return lines;
}

function elements(verb: "add" | "delete", name: string, list: readonly string[]): string {
  return `${verb} element ${POLICY_TABLE} ${name} { ${list.join(", ")} }`;
}

function chainRules(chain: string, rules: readonly string[]): string[] {
  return rules.map((r) => `add rule ${POLICY_TABLE} ${chain} ${r}`);
}

/** The rules of the base chain, for the network's families. */
function forwardRules(families: readonly IPFamily[]): string[] {
  const isolated = (family: IPFamily) => [
    `${IP[family]} saddr @${isolatedSetName("egress", family)} jump egress`,
    `${IP[family]} daddr @${isolatedSetName("ingress", family)} jump ingress`,
  ];
  return [
    "ct state related accept",
    "ct direction reply accept",
    "jump known",
    ...families.flatMap(isolated),
    `meta mark set meta mark and ${hex(~ALLOWED_BIT >>> 0)}`,
    "jump remember",
  ];
}

/** The two one-rule chains that hold the generation, flushed and written in every transaction. */
function generationLines(generation: number): string[] {
  const mark = hex(generation << 16);
  return [
    `flush chain ${POLICY_TABLE} known`,
    `add rule ${POLICY_TABLE} known ct mark and ${hex(GENERATION_MASK)} == ${mark} accept`,
    `flush chain ${POLICY_TABLE} remember`,
    `add rule ${POLICY_TABLE} remember ct mark set ct mark and ${hex(~GENERATION_MASK >>> 0)} or ${mark}`,
  ];
}

/** The next generation after `generation` (1 to 255, never 0: new connections carry 0). */
export function nextGeneration(generation: number): number {
  return (generation % 255) + 1;
}

/** The policy chains of a direction: chain name -> its rules' text, in order. */
function policyChains(rules: readonly RuleSpec[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const rule of rules)
    if (rule.chain !== undefined)
      out.set(rule.chain, [...(out.get(rule.chain) ?? []), ruleText(rule)]);
  return out;
}

/** The dispatch chain's rules: clear the bit, a jump per policy chain, return when allowed, drops. */
function dispatchRules(rules: readonly RuleSpec[]): string[] {
  const jumps = new Map<string, string>();
  for (const rule of rules) {
    const [self] = rule.matches;
    const key = `${rule.chain ?? ""}/${String(rule.family)}`;
    if (rule.chain === undefined || self === undefined || jumps.has(key)) continue;
    jumps.set(key, `${matchText(rule.family, self)} jump ${rule.chain}`);
  }
  return [
    `meta mark set meta mark and ${hex(~ALLOWED_BIT >>> 0)}`,
    ...jumps.values(),
    `meta mark and ${hex(ALLOWED_BIT)} == ${hex(ALLOWED_BIT)} return`,
    ...rules.filter((r) => r.chain === undefined).map(ruleText),
  ];
}

/** Every chain the plan writes but the base chain and the generation's: name -> rules' text. */
function planChains(plan: PolicyPlan): Map<string, string[]> {
  return new Map([
    ["ingress", dispatchRules(plan.ingress)],
    ["egress", dispatchRules(plan.egress)],
    ...policyChains(plan.ingress),
    ...policyChains(plan.egress),
  ]);
}

/** The script that replaces the whole table with the plan. */
export function fullScript(plan: PolicyPlan, generation: number): string {
  const chains = planChains(plan);
  const lines = [
    `add table ${POLICY_TABLE}`,
    `delete table ${POLICY_TABLE}`,
    `add table ${POLICY_TABLE} { comment "NetworkPolicy of this node's pods, written by flanneld" ; }`,
    `add chain ${POLICY_TABLE} forward { type filter hook forward priority filter - 5 ; policy accept ; }`,
    ...["known", "remember"].map((c) => `add chain ${POLICY_TABLE} ${c}`),
    ...[...plan.sets.values()].flatMap(addSet),
    ...[...plan.counters.keys()].map((name) => `add counter ${POLICY_TABLE} ${name}`),
    ...[...chains.keys()].map((c) => `add chain ${POLICY_TABLE} ${c}`),
    ...chainRules("forward", forwardRules(plan.families)),
    ...[...chains].flatMap(([name, rules]) => chainRules(name, rules)),
    ...generationLines(generation),
  ];
  return `${lines.join("\n")}\n`;
}

function setChanges(before: SetSpec, after: SetSpec): string[] {
  if (before.kind !== after.kind || before.family !== after.family) return [];
  const old = new Set(before.elements);
  const now = new Set(after.elements);
  const gone = before.elements.filter((e) => !now.has(e));
  const added = after.elements.filter((e) => !old.has(e));
  if (gone.length === 0 && added.length === 0) return [];
  if (after.kind === "range" || after.kind === "ports") {
    // Interval sets: their elements are merged ranges, replaced whole.
    return [
      `flush set ${POLICY_TABLE} ${after.name}`,
      ...(after.elements.length > 0 ? [elements("add", after.name, after.elements)] : []),
    ];
  }
  return [
    ...(gone.length > 0 ? [elements("delete", after.name, gone)] : []),
    ...(added.length > 0 ? [elements("add", after.name, added)] : []),
  ];
}

/** What a transaction from `before` to `after` changes, counted for the logs and metrics. */
export interface ScriptSummary {
  readonly setsAdded: number;
  readonly setsChanged: number;
  readonly setsDeleted: number;
  readonly chainsRewritten: number;
}

/**
 * The script that takes the table from `before` (as last written) to `after`: new sets, element
 * changes, rewritten chains (only when a policy changed), the new generation, then the sets no
 * rule uses any more. Null when a set changed kind (the caller writes the whole table).
 */
export function diffScript(
  before: PolicyPlan,
  after: PolicyPlan,
  generation: number,
): { script: string; summary: ScriptSummary; empty: boolean } | null {
  if (before.families.join() !== after.families.join()) return null;
  const lines: string[] = [];
  let setsAdded = 0;
  let setsChanged = 0;
  for (const set of after.sets.values()) {
    const old = before.sets.get(set.name);
    if (old === undefined) {
      lines.push(...addSet(set));
      setsAdded++;
      continue;
    }
    if (old.kind !== set.kind || old.family !== set.family) return null;
    const changes = setChanges(old, set);
    if (changes.length > 0) setsChanged++;
    lines.push(...changes);
  }
  // Counters first (rules name them); an existing one is left as it is, with its figures.
  for (const name of after.counters.keys())
    if (!before.counters.has(name)) lines.push(`add counter ${POLICY_TABLE} ${name}`);
  // New chains first, then every changed chain flushed and written, then the gone ones deleted
  // (no rule jumps to them any more once the dispatch chains are written).
  const [old, now] = [planChains(before), planChains(after)];
  let chainsRewritten = 0;
  for (const name of now.keys())
    if (!old.has(name)) lines.push(`add chain ${POLICY_TABLE} ${name}`);
  for (const [name, rules] of now) {
    if (old.get(name)?.join("\n") === rules.join("\n")) continue;
    chainsRewritten++;
    lines.push(`flush chain ${POLICY_TABLE} ${name}`, ...chainRules(name, rules));
  }
  const goneChains = [...old.keys()].filter((name) => !now.has(name));
  lines.push(...goneChains.map((name) => `flush chain ${POLICY_TABLE} ${name}`));
  lines.push(...goneChains.map((name) => `delete chain ${POLICY_TABLE} ${name}`));
  lines.push(...generationLines(generation));
  const deleted = [...before.sets.keys()].filter((name) => !after.sets.has(name));
  lines.push(...deleted.map((name) => `delete set ${POLICY_TABLE} ${name}`));
  for (const name of before.counters.keys())
    if (!after.counters.has(name)) lines.push(`delete counter ${POLICY_TABLE} ${name}`);
  return {
    script: `${lines.join("\n")}\n`,
    summary: { setsAdded, setsChanged, setsDeleted: deleted.length, chainsRewritten },
    empty: setsAdded + setsChanged + deleted.length + chainsRewritten + goneChains.length === 0,
  };
}

/** The elements of a set in an `nft list table` listing (empty when it has none). */
export function setElementsOf(listing: string, name: string): Set<string> {
  const start = listing.indexOf(`set ${name} {`);
  if (start < 0) return new Set();
  const block = listing.slice(start, listing.indexOf("\n\t}", start));
  const m = /elements = \{([^}]*)\}/.exec(block);
  return new Set(
    (m?.[1] ?? "")
      .split(",")
      .map((e) => e.trim())
      .filter((e) => e !== ""),
  );
}

/** The generation a listing's `known` chain holds (as generationLines wrote it); null when none. */
export function generationOf(listing: string | null): number | null {
  const m = /ct mark & 0x00ff0000 == 0x00([0-9a-f]{2})0000 accept/.exec(listing ?? "");
  return m === null ? null : Number.parseInt(m[1] ?? "0", 16);
}

/** A listing with the counters' figures taken out, for comparing two listings. */
export function withoutCounters(listing: string): string {
  return listing.replace(/packets \d+ bytes \d+/g, "packets bytes");
}

/** Packets dropped per direction. */
export interface DropCount {
  ingress: number;
  egress: number;
}

/**
 * The drop counters of a listing, by policy key (`namespace/name`): the named counter of each
 * policy and direction. A packet refused at an end that several policies isolate is counted
 * against the first of them (by namespace and name).
 */
export function dropCounters(listing: string, plan: PolicyPlan): Map<string, DropCount> {
  const out = new Map<string, DropCount>();
  for (const m of listing.matchAll(/counter (\S+) \{\s*packets (\d+) bytes \d+/g)) {
    const spec = plan.counters.get(m[1] ?? "");
    if (spec === undefined) continue;
    const count = out.get(spec.policy) ?? { ingress: 0, egress: 0 };
    count[spec.direction] += Number(m[2]);
    out.set(spec.policy, count);
  }
  return out;
}

/** The table in this network namespace's kernel, through the `nft` command. */
export const nftPolicyTable = {
  async apply(script: string): Promise<void> {
    await run("nft", ["-f", "-"], { input: script });
  },
  list(): Promise<string | null> {
    return run("nft", ["list", "table", "inet", "flannel-policy"]).catch(() => null);
  },
};
