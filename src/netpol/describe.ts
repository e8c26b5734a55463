/**
 * The policies as an operator reads them: what selects a pod, and each rule in one line
 * (`from pods pod=b in x; TCP/80`), for `flannelctl doctor`; and a `--port 80/tcp` argument.
 */
import { podKey } from "./cluster_view.js";
import type { ClusterView } from "./cluster_view.js";
import type {
  NetworkPolicyView,
  PodView,
  PolicyPeer,
  PolicyPort,
  PolicyRule,
  Protocol,
} from "./objects.js";
import { describeSelector, selects } from "./selector.js";

function peerText(policy: NetworkPolicyView, peer: PolicyPeer): string {
  if (peer.kind === "ipBlock")
    return peer.except.length === 0
      ? peer.cidr.toString()
      : `${peer.cidr.toString()} except ${peer.except.map((e) => e.toString()).join(",")}`;
  const pods =
    peer.podSelector === null ? "all pods" : `pods ${describeSelector(peer.podSelector)}`;
  const where =
    peer.namespaceSelector === null
      ? `in ${policy.namespace}`
      : `in namespaces ${describeSelector(peer.namespaceSelector)}`;
  return `${pods} ${where}`;
}

function portText(port: PolicyPort): string {
  if (port.port === null) return `${port.protocol}/any`;
  return `${port.protocol}/${String(port.port)}${port.endPort === null ? "" : `-${String(port.endPort)}`}`;
}

/** One rule in one line: its peers (or everyone) and its ports (or every port). */
export function describeRule(
  policy: NetworkPolicyView,
  rule: PolicyRule,
  direction: "ingress" | "egress",
): string {
  const peers =
    rule.peers === null ? "anyone" : rule.peers.map((p) => peerText(policy, p)).join(" or ");
  const ports = rule.ports === null ? "any port" : rule.ports.map(portText).join(", ");
  return `${direction === "ingress" ? "from" : "to"} ${peers}; ${ports}`;
}

/** One direction of a pod's policy state. */
export interface DirectionState {
  /** The policies that isolate the pod for this direction; empty: not isolated, all allowed. */
  readonly isolatedBy: readonly string[];
  /** What they allow, a line per rule (`ns/name: from ...; TCP/80`). */
  readonly allows: readonly string[];
}

/** A pod's policy state: which policies select it, what is allowed in and out. */
export interface PodPolicyState {
  readonly pod: string;
  readonly ips: readonly string[];
  readonly ingress: DirectionState;
  readonly egress: DirectionState;
}

function directionState(
  view: ClusterView,
  pod: PodView,
  direction: "ingress" | "egress",
): DirectionState {
  const isolatedBy: string[] = [];
  const allows: string[] = [];
  for (const policy of view.sortedPolicies()) {
    if (!policy.isolates[direction] || policy.namespace !== pod.namespace) continue;
    if (!selects(policy.podSelector, pod.labels)) continue;
    isolatedBy.push(podKey(policy));
    for (const rule of policy[direction])
      allows.push(`${podKey(policy)}: ${describeRule(policy, rule, direction)}`);
  }
  return { isolatedBy, allows };
}

/** The policy state of a pod. */
export function podPolicyState(view: ClusterView, pod: PodView): PodPolicyState {
  return {
    pod: podKey(pod),
    ips: pod.ips.map((a) => a.ip),
    ingress: directionState(view, pod, "ingress"),
    egress: directionState(view, pod, "egress"),
  };
}

/** `80/tcp`, `53/UDP`, `81` (TCP) as a protocol and port; throws RangeError naming the form. */
export function parsePortSpec(text: string): { protocol: Protocol; port: number } {
  const m = /^(\d{1,5})(?:\/(tcp|udp|sctp))?$/i.exec(text.trim());
  const port = Number(m?.[1]);
  if (m === null || port < 1 || port > 65535)
    throw new RangeError(
      `Invalid --port "${text}": expected a port and protocol such as 80/tcp, 53/udp or 9000/sctp`,
    );
  return { protocol: (m[2]?.toUpperCase() ?? "TCP") as Protocol, port };
}
