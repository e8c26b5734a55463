/**
 * From the cluster view to the plan for this node (plan.ts): for every policy, a set of the
 * node's pods it selects and, per rule, sets of the peers' addresses, of the peers' address
 * blocks, of numeric ports and of named ports resolved to (address, protocol, port). The shape
 * of the rules depends on the policies alone; pods and labels only fill the sets, so that a pod
 * that comes, goes or is relabelled changes set elements and never a chain.
 *
 * Every policy gets its rules whether or not it selects a pod here now: the pod that makes it
 * select one is then a set element too.
 */
import { createHash } from "node:crypto";
import type { IPFamily } from "../ip/ip.js";
import { ipsOf, podKey } from "./cluster_view.js";
import type { ClusterView } from "./cluster_view.js";
import { blockHolds } from "./objects.js";
import type { NetworkPolicyView, PodView, PolicyPeer, PolicyPort, PolicyRule } from "./objects.js";
import { isolatedSetName } from "./plan.js";
import type { CounterSpec, Match, PolicyPlan, RuleSpec, SetKind, SetSpec } from "./plan.js";
import { blockRanges, formatRange, mergeRanges } from "./ranges.js";
import type { Range } from "./ranges.js";
import { selects } from "./selector.js";

/** Whose pods this node enforces, and which families the network has. */
export interface CompileScope {
  readonly nodeName: string;
  readonly families: readonly IPFamily[];
}

/** A short, stable name for a policy's sets: `p` and 10 hex digits of its key's hash. */
export function policyId(policy: { namespace: string; name: string }): string {
  return `p${createHash("sha256").update(podKey(policy)).digest("hex").slice(0, 10)}`;
}

const PROTO = { TCP: "tcp", UDP: "udp", SCTP: "sctp" } as const;

/** Builds the sets and rules; one instance per compile. */
class Compiler {
  readonly sets = new Map<string, SetSpec>();
  readonly ingress: RuleSpec[] = [];
  readonly egress: RuleSpec[] = [];
  readonly counters = new Map<string, CounterSpec>();
  readonly #local: PodView[];
  readonly #all: PodView[];

  constructor(
    readonly view: ClusterView,
    readonly scope: CompileScope,
  ) {
    this.#all = [...view.policyPods()];
    this.#local = this.#all.filter((p) => p.nodeName === scope.nodeName);
  }

  set(name: string, kind: SetKind, family: IPFamily | null, elements: Iterable<string>): string {
    this.sets.set(name, { name, kind, family, elements: [...new Set(elements)].sort() });
    return name;
  }

  /** Every policy's rules, then the isolation sets and the drops. */
  compile(): PolicyPlan {
    const isolated = {
      ingress: new Map<IPFamily, Set<string>>(),
      egress: new Map<IPFamily, Set<string>>(),
    };
    const drops: RuleSpec[][] = [[], []];
    for (const policy of this.view.sortedPolicies()) {
      const id = policyId(policy);
      const targets = this.#local.filter(
        (p) => p.namespace === policy.namespace && selects(policy.podSelector, p.labels),
      );
      for (const family of this.scope.families) {
        const t = this.set(
          `${id}_t${family}`,
          "addr",
          family,
          targets.flatMap((p) => ipsOf(p, family)),
        );
        for (const direction of ["ingress", "egress"] as const) {
          if (!policy.isolates[direction]) continue;
          const into = isolated[direction].get(family) ?? new Set<string>();
          for (const p of targets) for (const ip of ipsOf(p, family)) into.add(ip);
          isolated[direction].set(family, into);
          const end = direction === "ingress" ? "daddr" : "saddr";
          const counter = `${id}_d${direction === "ingress" ? "i" : "e"}`;
          this.counters.set(counter, { name: counter, policy: podKey(policy), direction });
          drops[direction === "ingress" ? 0 : 1]?.push({
            family,
            matches: [{ on: end, set: t }],
            verdict: "drop",
            comment: `drop ${podKey(policy)}`,
            counter,
          });
        }
      }
      for (const direction of ["ingress", "egress"] as const)
        if (policy.isolates[direction])
          policy[direction].forEach((rule, i) => {
            this.#rule(policy, direction, i, rule, targets);
          });
    }
    for (const direction of ["ingress", "egress"] as const)
      for (const family of this.scope.families)
        this.set(
          isolatedSetName(direction, family),
          "addr",
          family,
          isolated[direction].get(family) ?? [],
        );
    this.ingress.push(...(drops[0] ?? []));
    this.egress.push(...(drops[1] ?? []));
    return {
      families: this.scope.families,
      sets: this.sets,
      ingress: this.ingress,
      egress: this.egress,
      counters: this.counters,
    };
  }

  /** The rules of one ingress or egress rule of a policy. */
  #rule(
    policy: NetworkPolicyView,
    direction: "ingress" | "egress",
    index: number,
    rule: PolicyRule,
    targets: readonly PodView[],
  ): void {
    const id = `${policyId(policy)}_${direction === "ingress" ? "i" : "e"}${index}`;
    const out = direction === "ingress" ? this.ingress : this.egress;
    const comment = `${podKey(policy)} ${direction}[${index}]`;
    const numeric = rule.ports?.filter((p) => typeof p.port !== "string") ?? [];
    const named = rule.ports?.filter((p) => typeof p.port === "string") ?? [];
    const portSet =
      numeric.length > 0 ? this.set(`${id}_n`, "ports", null, portElements(numeric)) : null;
    for (const family of this.scope.families) {
      const self: Match = {
        on: direction === "ingress" ? "daddr" : "saddr",
        set: `${policyId(policy)}_t${family}`,
      };
      const peers = this.#peerMatches(policy, direction, rule.peers, family, id);
      const withPeer = (m: Match | null) =>
        peers.map((peer) => [peer, m].filter((x): x is Match => x !== null));
      const rules: Match[][] = [];
      if (rule.ports === null) rules.push(...withPeer(null));
      if (portSet !== null) rules.push(...withPeer({ on: "ports", set: portSet }));
      if (named.length > 0) {
        const resolvedOn =
          direction === "ingress"
            ? targets
            : this.#all.filter((p) => this.#peerTakes(policy, rule.peers, p));
        const elements = namedElements(named, resolvedOn, family);
        const m: Match = {
          on: "daddrPorts",
          set: this.set(`${id}_m${family}`, "addrPort", family, elements),
        };
        // Egress: the set holds only the peers' own (address, port) pairs, so it is the peer match too.
        rules.push(...(direction === "ingress" ? withPeer(m) : [[m]]));
      }
      for (const matches of rules)
        out.push({
          family,
          matches: [self, ...matches],
          verdict: "return",
          comment,
          chain: `${policyId(policy)}_${direction === "ingress" ? "i" : "e"}`,
        });
    }
  }

  /** The peer matches of a rule: none (everyone), a set of pod addresses, a set of blocks. */
  #peerMatches(
    policy: NetworkPolicyView,
    direction: "ingress" | "egress",
    peers: readonly PolicyPeer[] | null,
    family: IPFamily,
    id: string,
  ): (Match | null)[] {
    if (peers === null) return [null];
    const on = direction === "ingress" ? "saddr" : "daddr";
    const out: Match[] = [];
    const podPeers = peers.filter((p): p is PolicyPeer & { kind: "pods" } => p.kind === "pods");
    const blocks = peers.filter((p): p is PolicyPeer & { kind: "ipBlock" } => p.kind === "ipBlock");
    if (podPeers.length > 0) {
      const ips = this.#all
        .filter((pod) => podPeers.some((peer) => this.view.peerNames(policy, peer, pod)))
        .flatMap((pod) => ipsOf(pod, family));
      out.push({ on, set: this.set(`${id}_p${family}`, "addr", family, ips) });
    }
    if (blocks.length > 0) {
      const ranges = mergeRanges(
        blocks
          .filter((b) => b.cidr.family === family)
          .flatMap((b) => blockRanges(b.cidr, b.except)),
      );
      out.push({
        on,
        set: this.set(
          `${id}_c${family}`,
          "range",
          family,
          ranges.map((r) => formatRange(family, r)),
        ),
      });
    }
    return out;
  }

  /** Whether a pod is a peer of the rule (any pod when the rule names no peers). */
  #peerTakes(
    policy: NetworkPolicyView,
    peers: readonly PolicyPeer[] | null,
    pod: PodView,
  ): boolean {
    if (peers === null) return true;
    return peers.some((peer) =>
      peer.kind === "pods"
        ? this.view.peerNames(policy, peer, pod)
        : pod.ips.some((a) => blockHolds(peer, a.ip)),
    );
  }
}

/** Numeric ports (and whole protocols) as merged `proto . lo-hi` elements. */
function portElements(ports: readonly PolicyPort[]): string[] {
  const out: string[] = [];
  for (const protocol of ["TCP", "UDP", "SCTP"] as const) {
    const ranges: Range[] = ports
      .filter((p) => p.protocol === protocol)
      .map((p) => {
        const lo = typeof p.port === "number" ? p.port : 0;
        const hi = typeof p.port === "number" ? (p.endPort ?? p.port) : 65535;
        return [BigInt(lo), BigInt(hi)] as const;
      });
    for (const [lo, hi] of mergeRanges(ranges))
      out.push(`${PROTO[protocol]} . ${lo === hi ? String(lo) : `${String(lo)}-${String(hi)}`}`);
  }
  return out;
}

/** Named ports resolved on `pods`: `address . proto . port` for each pod that has the name. */
function namedElements(
  ports: readonly PolicyPort[],
  pods: readonly PodView[],
  family: IPFamily,
): string[] {
  const out: string[] = [];
  for (const p of ports)
    for (const pod of pods)
      for (const n of pod.namedPorts)
        if (n.name === p.port && n.protocol === p.protocol)
          for (const ip of ipsOf(pod, family))
            out.push(`${ip} . ${PROTO[n.protocol]} . ${String(n.port)}`);
  return out;
}

/** The plan of this node's rules under the cluster's policies. */
export function compilePlan(view: ClusterView, scope: CompileScope): PolicyPlan {
  return new Compiler(view, scope).compile();
}
