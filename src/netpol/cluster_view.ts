/**
 * What the enforcer knows of the cluster: the Namespaces, Pods and NetworkPolicies from the
 * watches, kept by key, with the questions both the compiler and the evaluator ask of them:
 * which pods a policy selects, which pods a peer names.
 */
import type { IPFamily } from "../ip/ip.js";
import { selects } from "./selector.js";
import { namespaceViewOf, networkPolicyViewOf, podViewOf } from "./objects.js";
import type { NamespaceView, NetworkPolicyView, PodView, PolicyPeer } from "./objects.js";

/** A pod's key: `namespace/name`. */
export function podKey(pod: { readonly namespace: string; readonly name: string }): string {
  return `${pod.namespace}/${pod.name}`;
}

/** The cluster as the watches last told it. */
export class ClusterView {
  readonly namespaces = new Map<string, NamespaceView>();
  readonly pods = new Map<string, PodView>();
  readonly policies = new Map<string, NetworkPolicyView>();

  /** Pods that take part in policy: not hostNetwork, not finished, with an address. */
  *policyPods(): Iterable<PodView> {
    for (const pod of this.pods.values())
      if (!pod.hostNetwork && !pod.finished && pod.ips.length > 0) yield pod;
  }

  /** The labels of a namespace; a namespace not (yet) seen has none. */
  namespaceLabels(name: string): Readonly<Record<string, string>> {
    return this.namespaces.get(name)?.labels ?? {};
  }

  /** The pods a policy's podSelector selects (in its own namespace). */
  selectedBy(policy: NetworkPolicyView): PodView[] {
    const out: PodView[] = [];
    for (const pod of this.policyPods())
      if (pod.namespace === policy.namespace && selects(policy.podSelector, pod.labels))
        out.push(pod);
    return out;
  }

  /** Whether a pod is one of the pods a peer of `policy` names. */
  peerNames(policy: NetworkPolicyView, peer: PolicyPeer & { kind: "pods" }, pod: PodView): boolean {
    if (peer.namespaceSelector === null) {
      if (pod.namespace !== policy.namespace) return false;
    } else if (!selects(peer.namespaceSelector, this.namespaceLabels(pod.namespace))) return false;
    return peer.podSelector === null || selects(peer.podSelector, pod.labels);
  }

  /** The pod that holds an address, if any. */
  podAt(ip: string): PodView | null {
    for (const pod of this.policyPods()) if (pod.ips.some((a) => a.ip === ip)) return pod;
    return null;
  }

  /** The policies in a stable order (namespace, then name). */
  sortedPolicies(): NetworkPolicyView[] {
    return [...this.policies.values()].sort((a, b) =>
      podKey(a) < podKey(b) ? -1 : podKey(a) > podKey(b) ? 1 : 0,
    );
  }
}

/** The view of raw API objects, read as the enforcer reads its watches (unusable ones skipped). */
export function clusterViewOf(raw: {
  readonly namespaces: readonly unknown[];
  readonly pods: readonly unknown[];
  readonly policies: readonly unknown[];
}): ClusterView {
  const view = new ClusterView();
  for (const o of raw.namespaces) {
    const ns = namespaceViewOf(o);
    if (ns !== null) view.namespaces.set(ns.name, ns);
  }
  for (const o of raw.pods) {
    const pod = podViewOf(o);
    if (pod !== null) view.pods.set(podKey(pod), pod);
  }
  for (const o of raw.policies) {
    const read = networkPolicyViewOf(o);
    if (read?.policy) view.policies.set(podKey(read.policy), read.policy);
  }
  return view;
}

/** A pod's addresses of one family. */
export function ipsOf(pod: PodView, family: IPFamily): string[] {
  return pod.ips.filter((a) => a.family === family).map((a) => a.ip);
}
