/**
 * doctor's NetworkPolicy group (flanneld --network-policy): the table exists, and every pod of
 * this host (its address in this host's lease) that a policy isolates is in the kernel's
 * isolation set for that direction; and, as information, each such pod's policy state.
 */
import { parseIP } from "../ip/ip.js";
import type { ClusterView, PodPolicyState, PodView } from "../netpol/index.js";
import { podPolicyState } from "../netpol/describe.js";
import { setElementsOf } from "../netpol/nft_policy.js";
import { isolatedSetName } from "../netpol/plan.js";
import { finding } from "./finding.js";
import type { CheckGroup, Finding } from "./finding.js";
import type { HostView } from "./host_view.js";

/** What the policy check reads: the cluster once, and this host's table. */
export interface PolicySources {
  readonly cluster: () => Promise<ClusterView>;
  readonly table: () => Promise<string | null>;
}

/** The pods whose addresses lie in this host's lease, that take part in policy. */
function localPods(view: HostView, cluster: ClusterView): PodView[] {
  const own = view.own;
  if (own === null) return [];
  return [...cluster.policyPods()].filter((pod) =>
    pod.ips.some((a) => {
      const ip = parseIP(a.ip);
      const subnet = a.family === 4 ? own.subnet : own.ipv6Subnet;
      return ip !== null && subnet !== null && subnet.contains(ip.value);
    }),
  );
}

/** The NetworkPolicy group and each of this host's pods' state; null when policy is off. */
export async function checkPolicy(
  view: HostView,
  sources: PolicySources | null,
): Promise<{ group: CheckGroup; pods: PodPolicyState[] } | null> {
  if (!view.options.networkPolicy || sources === null) return null;
  const findings: Finding[] = [];
  let cluster: ClusterView;
  try {
    cluster = await sources.cluster();
  } catch (err) {
    return {
      group: {
        name: "network policy",
        findings: [],
        skipped: `cannot list the policies: ${(err as Error).message}`,
      },
      pods: [],
    };
  }
  const listing = await sources.table();
  if (listing === null)
    findings.push(
      finding(
        "policy-table-missing",
        "error",
        "table inet flannel-policy",
        "the NetworkPolicy table does not exist",
        "this host's pods are not isolated: every NetworkPolicy is ignored here",
        "check that flanneld runs with --network-policy (it writes the table before /readyz turns ready, and again at each resync)",
      ),
    );
  const pods = localPods(view, cluster).map((pod) => podPolicyState(cluster, pod));
  for (const state of pods)
    for (const direction of ["ingress", "egress"] as const) {
      if (listing === null || state[direction].isolatedBy.length === 0) continue;
      for (const ip of state.ips) {
        const set = isolatedSetName(direction, ip.includes(":") ? 6 : 4);
        if (setElementsOf(listing, set).has(ip)) continue;
        findings.push(
          finding(
            "policy-pod-not-enforced",
            "error",
            `pod ${state.pod} ${ip}`,
            `${state[direction].isolatedBy.join(", ")} isolate it for ${direction}, but ${ip} is not in set ${set}`,
            `its ${direction} traffic is not filtered: what the policies refuse gets through`,
            'flanneld repairs the table at its next resync; if this stays, restart flanneld and read its log for "NetworkPolicy"',
          ),
        );
      }
    }
  return { group: { name: "network policy", findings }, pods };
}
