/**
 * The verdict of the policies on one packet, read straight from the NetworkPolicy API's
 * semantics (the Kubernetes docs' NetworkPolicy page): a pod selected by a policy of a
 * direction is isolated for it, and a packet passes an isolated end when some rule of some
 * policy selecting that end allows its peer and port. Both ends must pass. `flannelctl trace`
 * and `doctor` explain with it, and the tests check the compiled nftables rules against it.
 */
import { podKey } from "./cluster_view.js";
import type { ClusterView } from "./cluster_view.js";
import { blockHolds } from "./objects.js";
import type {
  NetworkPolicyView,
  PodView,
  PolicyPeer,
  PolicyPort,
  PolicyRule,
  Protocol,
} from "./objects.js";
import { selects } from "./selector.js";

/** A new connection's first packet. */
export interface Packet {
  readonly src: string;
  readonly dst: string;
  readonly protocol: Protocol;
  readonly port: number;
}

/** What one end's policies say. */
export interface EndVerdict {
  /** The pod at this end. */
  readonly pod: string;
  /** The policies that isolate it for this direction. */
  readonly isolatedBy: readonly string[];
  /** The policies and rule indexes that allow the packet. */
  readonly allowedBy: readonly { readonly policy: string; readonly rule: number }[];
  readonly allowed: boolean;
}

/** The verdict: each end (null when that end is not a pod under policy), and the outcome. */
export interface Verdict {
  readonly egress: EndVerdict | null;
  readonly ingress: EndVerdict | null;
  readonly allowed: boolean;
}

function peerAllows(
  view: ClusterView,
  policy: NetworkPolicyView,
  peers: readonly PolicyPeer[] | null,
  other: { ip: string; pod: PodView | null },
): boolean {
  if (peers === null) return true;
  return peers.some((peer) =>
    peer.kind === "ipBlock"
      ? blockHolds(peer, other.ip)
      : other.pod !== null && view.peerNames(policy, peer, other.pod),
  );
}

/** Whether a rule's ports take the packet; named ports are resolved on `destination`. */
export function portAllows(
  ports: readonly PolicyPort[] | null,
  packet: Pick<Packet, "protocol" | "port">,
  destination: PodView | null,
): boolean {
  if (ports === null) return true;
  return ports.some((p) => {
    if (p.protocol !== packet.protocol) return false;
    if (p.port === null) return true;
    if (typeof p.port === "number")
      return packet.port >= p.port && packet.port <= (p.endPort ?? p.port);
    const name = p.port;
    return (
      destination?.namedPorts.some(
        (n) => n.name === name && n.protocol === packet.protocol && n.port === packet.port,
      ) ?? false
    );
  });
}

function endVerdict(
  view: ClusterView,
  pod: PodView,
  direction: "ingress" | "egress",
  allows: (policy: NetworkPolicyView, rule: PolicyRule) => boolean,
): EndVerdict | null {
  const isolatedBy: string[] = [];
  const allowedBy: { policy: string; rule: number }[] = [];
  for (const policy of view.sortedPolicies()) {
    if (!policy.isolates[direction]) continue;
    if (policy.namespace !== pod.namespace || !selects(policy.podSelector, pod.labels)) continue;
    isolatedBy.push(podKey(policy));
    policy[direction].forEach((rule, i) => {
      if (allows(policy, rule)) allowedBy.push({ policy: podKey(policy), rule: i });
    });
  }
  if (isolatedBy.length === 0) return null;
  return { pod: podKey(pod), isolatedBy, allowedBy, allowed: allowedBy.length > 0 };
}

/** The policies' verdict on a packet. */
export function evaluate(view: ClusterView, packet: Packet): Verdict {
  const srcPod = view.podAt(packet.src);
  const dstPod = view.podAt(packet.dst);
  const egress =
    srcPod === null
      ? null
      : endVerdict(
          view,
          srcPod,
          "egress",
          (policy, rule) =>
            peerAllows(view, policy, rule.peers, { ip: packet.dst, pod: dstPod }) &&
            portAllows(rule.ports, packet, dstPod),
        );
  const ingress =
    dstPod === null
      ? null
      : endVerdict(
          view,
          dstPod,
          "ingress",
          (policy, rule) =>
            peerAllows(view, policy, rule.peers, { ip: packet.src, pod: srcPod }) &&
            portAllows(rule.ports, packet, dstPod),
        );
  return {
    egress,
    ingress,
    allowed: (egress?.allowed ?? true) && (ingress?.allowed ?? true),
  };
}
