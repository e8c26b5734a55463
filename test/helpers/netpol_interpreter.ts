/**
 * What the compiled rules do to a new connection, read from the plan (src/netpol/plan.ts) the
 * way nftables runs table `inet flannel-policy`: on the source's node the `egress` chain when
 * the source is in that node's egress isolation set, on the destination's node the `ingress`
 * chain when the destination is in its ingress set; the first rule whose matches all hold
 * decides (`return` lets it on, a drop ends it), and falling off the end lets it on. The tests
 * compare this with the evaluator of the API's semantics (src/netpol/evaluate.ts).
 */
import { parseIP } from "../../src/ip/ip.js";
import type { IPFamily } from "../../src/ip/ip.js";
import type { Packet } from "../../src/netpol/index.js";
import { isolatedSetName } from "../../src/netpol/plan.js";
import type { Match, PolicyPlan, RuleSpec, SetSpec } from "../../src/netpol/plan.js";

function addr(text: string): bigint {
  const parsed = parseIP(text.trim());
  if (parsed === null) throw new TypeError(`not an address: ${text}`);
  return parsed.value;
}

function inRange(element: string, value: bigint): boolean {
  const [lo = "", hi] = element.split("-");
  return hi === undefined ? addr(lo) === value : value >= addr(lo) && value <= addr(hi);
}

function portIn(element: string, proto: string, port: number): boolean {
  const [p = "", range = ""] = element.split(" . ");
  const [lo = "0", hi] = range.split("-");
  return p === proto && port >= Number(lo) && port <= Number(hi ?? lo);
}

function holds(set: SetSpec | undefined, m: Match, packet: Packet): boolean {
  if (set === undefined) throw new TypeError(`rule names a set the plan lacks: ${m.set}`);
  const proto = packet.protocol.toLowerCase();
  switch (m.on) {
    case "saddr":
    case "daddr": {
      const value = addr(m.on === "saddr" ? packet.src : packet.dst);
      return set.kind === "range"
        ? set.elements.some((e) => inRange(e, value))
        : set.elements.some((e) => addr(e) === value);
    }
    case "ports":
      return set.elements.some((e) => portIn(e, proto, packet.port));
    case "daddrPorts":
      return set.elements.includes(`${packet.dst} . ${proto} . ${String(packet.port)}`);
  }
}

function familyOf(ip: string): IPFamily {
  return ip.includes(":") ? 6 : 4;
}

function chainLets(plan: PolicyPlan, rules: readonly RuleSpec[], packet: Packet): boolean {
  const family = familyOf(packet.src);
  for (const rule of rules) {
    if (rule.family !== family) continue;
    if (rule.matches.every((m) => holds(plan.sets.get(m.set), m, packet)))
      return rule.verdict === "return";
  }
  return true;
}

function isolated(plan: PolicyPlan, direction: "ingress" | "egress", ip: string): boolean {
  const set = plan.sets.get(isolatedSetName(direction, familyOf(ip)));
  return set?.elements.includes(ip) ?? false;
}

/** Whether the source node's plan lets the packet out and the destination node's lets it in. */
export function planVerdict(
  sourcePlan: PolicyPlan | null,
  destinationPlan: PolicyPlan | null,
  packet: Packet,
): boolean {
  const out =
    sourcePlan === null ||
    !isolated(sourcePlan, "egress", packet.src) ||
    chainLets(sourcePlan, sourcePlan.egress, packet);
  const into =
    destinationPlan === null ||
    !isolated(destinationPlan, "ingress", packet.dst) ||
    chainLets(destinationPlan, destinationPlan.ingress, packet);
  return out && into;
}
