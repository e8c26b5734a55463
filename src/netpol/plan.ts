/**
 * The rules the enforcer programs, as data: named sets and the rules of the `ingress` and
 * `egress` chains, before they are written as nftables text (nft_policy.ts). The tests read
 * this form to check the compiler against the API's semantics without parsing nft.
 */
import type { IPFamily } from "../ip/ip.js";

/**
 * What a set holds: addresses (`10.0.0.1`), address ranges (`10.0.0.0-10.0.0.127`),
 * protocol and port ranges (`tcp . 80-90`), or address, protocol and port (`10.0.0.1 . tcp . 80`).
 */
export type SetKind = "addr" | "range" | "ports" | "addrPort";

/** A named set and its elements, as nft writes them. */
export interface SetSpec {
  readonly name: string;
  readonly kind: SetKind;
  /** The address family; null for `ports`, which both families share. */
  readonly family: IPFamily | null;
  readonly elements: readonly string[];
}

/** One match of a rule: an address against a set, or the protocol and port. */
export type Match =
  | { readonly on: "saddr" | "daddr"; readonly set: string }
  | { readonly on: "ports"; readonly set: string }
  | { readonly on: "daddrPorts"; readonly set: string };

/** One rule: all matches, then `return` (allowed: go on) or a counted drop. */
export interface RuleSpec {
  readonly family: IPFamily;
  readonly matches: readonly Match[];
  readonly verdict: "return" | "drop";
  /** The policy (and rule) it comes from, kept as the rule's comment. */
  readonly comment: string;
  /** A drop's named counter (kept when the chain is rewritten). */
  readonly counter?: string;
  /** An allow's own chain: the policy's for that direction (`p<hash>_i`), written apart. */
  readonly chain?: string;
}

/** A named counter of drops: the policy (`namespace/name`) and direction it counts for. */
export interface CounterSpec {
  readonly name: string;
  readonly policy: string;
  readonly direction: "ingress" | "egress";
}

/** Everything the table holds but the connection-tracking rules. */
export interface PolicyPlan {
  readonly families: readonly IPFamily[];
  readonly sets: ReadonlyMap<string, SetSpec>;
  readonly ingress: readonly RuleSpec[];
  readonly egress: readonly RuleSpec[];
  readonly counters: ReadonlyMap<string, CounterSpec>;
}

/** The sets of the pods isolated for a direction, per family: the base chain jumps on them. */
export function isolatedSetName(direction: "ingress" | "egress", family: IPFamily): string {
  return `${direction === "ingress" ? "in" : "eg"}_isolated${family}`;
}
