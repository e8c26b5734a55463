/**
 * flanneld's --network-policy: the enforcer for this node over the cluster's API and the
 * kernel's nftables. src/cli/ builds it only in Kubernetes mode with the flag, so that nothing
 * of it is loaded, watched or written otherwise.
 */
import type { KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "../log/logger.js";
import type { Clock } from "../util/clock.js";
import type { CompileScope } from "./compile.js";
import { PolicyEnforcer } from "./enforcer.js";
import { ClusterView, podKey } from "./cluster_view.js";
import { kubePolicySources, policyListWatches } from "./kube_source.js";
import { nftPolicyTable } from "./nft_policy.js";

/** The enforcer of this node's pods, following the API server `kc` reaches. */
export function newNetworkPolicyEnforcer(
  kc: KubeConfig,
  scope: CompileScope,
  log: Logger,
  clock?: Clock,
): PolicyEnforcer {
  const policyLog = log.child({ component: "network-policy" });
  return new PolicyEnforcer(scope, {
    sources: kubePolicySources(kc, policyLog),
    table: nftPolicyTable,
    log: policyLog,
    ...(clock ? { clock } : {}),
  });
}

/** The cluster as the API lists it now (doctor and trace read it once). */
export async function listClusterView(kc: KubeConfig, signal: AbortSignal): Promise<ClusterView> {
  const lw = policyListWatches(kc);
  const [namespaces, pods, policies] = await Promise.all([
    lw.namespaces.list({ signal }),
    lw.pods.list({ signal }),
    lw.policies.list({ signal }),
  ]);
  const view = new ClusterView();
  for (const ns of namespaces.items) view.namespaces.set(ns.name, ns);
  for (const pod of pods.items) view.pods.set(podKey(pod), pod);
  for (const read of policies.items)
    if (read.policy !== null) view.policies.set(read.key, read.policy);
  return view;
}
