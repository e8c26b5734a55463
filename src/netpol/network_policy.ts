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
import { kubePolicySources } from "./kube_source.js";
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
