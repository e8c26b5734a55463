/**
 * trace's NetworkPolicy hops (`--port P/proto`, with flanneld --network-policy): on the
 * source's host the egress verdict, on the destination's host the ingress verdict, each with the
 * policy and rule that allow the packet or the policies that isolate the pod and allow nothing
 * that matches; and whether this host's kernel isolates the pod as they say.
 */
import { evaluate } from "../netpol/evaluate.js";
import { setElementsOf } from "../netpol/nft_policy.js";
import { isolatedSetName } from "../netpol/plan.js";
import type { ClusterView, EndVerdict, Packet } from "../netpol/index.js";
import type { TraceHop } from "./trace_hop.js";

/** What the policy hops read. */
export interface TracePolicy {
  readonly packet: Pick<Packet, "protocol" | "port">;
  readonly cluster: ClusterView;
  /** This host's `nft list table inet flannel-policy`; null when it does not exist. */
  readonly table: string | null;
}

function endHop(
  direction: "ingress" | "egress",
  end: EndVerdict | null,
  ip: string,
  policy: TracePolicy,
  other: string,
): TraceHop {
  const hop = `policy ${direction}`;
  const what = `${policy.packet.protocol}/${String(policy.packet.port)} ${direction === "ingress" ? "from" : "to"} ${other}`;
  if (end === null)
    return { hop, state: "ok", detail: `${ip} is not isolated for ${direction}: ${what} allowed` };
  const set = isolatedSetName(direction, ip.includes(":") ? 6 : 4);
  if (policy.table === null || !setElementsOf(policy.table, set).has(ip))
    return {
      hop,
      state: "wrong",
      detail: `${end.pod} is isolated by ${end.isolatedBy.join(", ")}, but ${ip} is not in this host's set ${set}`,
      expected: `${ip} in table inet flannel-policy set ${set} (flanneld writes it)`,
    };
  if (end.allowed) {
    const by = end.allowedBy.map((a) => `${a.policy} ${direction}[${String(a.rule)}]`).join(", ");
    return { hop, state: "ok", detail: `${what} allowed by ${by}` };
  }
  return {
    hop,
    state: "denied",
    detail: `${what} dropped: ${end.pod} is isolated by ${end.isolatedBy.join(", ")} and no rule of theirs allows it`,
  };
}

/** The policy hops for this host's role in the path. */
export function policyHops(
  policy: TracePolicy,
  src: string,
  dst: string,
  role: "source" | "destination" | "both" | "neither",
): TraceHop[] {
  const verdict = evaluate(policy.cluster, { src, dst, ...policy.packet });
  const hops: TraceHop[] = [];
  if (role === "source" || role === "both")
    hops.push(endHop("egress", verdict.egress, src, policy, dst));
  if (role === "destination" || role === "both")
    hops.push(endHop("ingress", verdict.ingress, dst, policy, src));
  return hops;
}
