/**
 * The Namespaces, Pods and NetworkPolicies, listed and watched over the official client with
 * the same reflector as the Nodes (relist on 410, backoff and one log line per outage).
 */
import { CoreV1Api, NetworkingV1Api, Watch } from "@kubernetes/client-node";
import type { KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "../log/logger.js";
import { kubeApiError, raceSignal, reflect, watchPath } from "../subnet/kube/index.js";
import type { ListWatch, NodeWatchStats, ReflectorStep } from "../subnet/kube/index.js";
import type { CallOptions } from "../util/call_options.js";
import { namespaceViewOf, networkPolicyViewOf, podViewOf } from "./objects.js";
import type { NamespaceView, NetworkPolicyView, PodView } from "./objects.js";

/** A NetworkPolicy as read: its key, the view (null when unusable) and what is wrong with it. */
export interface PolicyRead {
  readonly key: string;
  readonly policy: NetworkPolicyView | null;
  readonly problems: readonly string[];
}

/** The three kinds the enforcer follows. */
export interface PolicySources {
  namespaces(opts: CallOptions): AsyncIterable<ReflectorStep<NamespaceView>>;
  pods(opts: CallOptions): AsyncIterable<ReflectorStep<PodView>>;
  policies(opts: CallOptions): AsyncIterable<ReflectorStep<PolicyRead>>;
  /** Counters of each kind's watch, for the metrics. */
  readonly stats: Readonly<Record<"namespaces" | "pods" | "networkpolicies", NodeWatchStats>>;
}

function policyReadOf(object: unknown): PolicyRead | null {
  const read = networkPolicyViewOf(object);
  if (read === null) return null;
  const metadata = (object as { metadata: { namespace: string; name: string } }).metadata;
  return { key: `${metadata.namespace}/${metadata.name}`, ...read };
}

function newStats(): NodeWatchStats {
  return { lists: 0, watches: 0, expired: 0, failures: 0 };
}

/** How to list and watch each of the three kinds over a cluster's API. */
export function policyListWatches(kc: KubeConfig): {
  readonly namespaces: ListWatch<NamespaceView>;
  readonly pods: ListWatch<PodView>;
  readonly policies: ListWatch<PolicyRead>;
} {
  const core = kc.makeApiClient(CoreV1Api);
  const networking = kc.makeApiClient(NetworkingV1Api);
  const watch = new Watch(kc);
  const listWatch = <T>(
    spec: { kind: string; kinds: string; path: string; view: (o: unknown) => T | null },
    list: () => Promise<{ items: unknown[]; metadata?: { resourceVersion?: string } }>,
  ): ListWatch<T> => ({
    kind: spec.kind,
    kinds: spec.kinds,
    view: spec.view,
    async list(opts) {
      try {
        const listed = await raceSignal(list(), opts.signal);
        const items = listed.items.map(spec.view).filter((v): v is T => v !== null);
        return { items, resourceVersion: listed.metadata?.resourceVersion ?? "" };
      } catch (err) {
        if (opts.signal.aborted) throw err;
        throw kubeApiError(`list ${spec.path.split("/").at(-1) ?? spec.kinds}`, err);
      }
    },
    watch: (resourceVersion, onEvent, onDone) =>
      watchPath(watch, spec.path, resourceVersion, onEvent, onDone),
  });
  return {
    namespaces: listWatch(
      { kind: "Namespace", kinds: "Namespaces", path: "/api/v1/namespaces", view: namespaceViewOf },
      () => core.listNamespace(),
    ),
    pods: listWatch({ kind: "Pod", kinds: "Pods", path: "/api/v1/pods", view: podViewOf }, () =>
      core.listPodForAllNamespaces(),
    ),
    policies: listWatch(
      {
        kind: "NetworkPolicy",
        kinds: "NetworkPolicies",
        path: "/apis/networking.k8s.io/v1/networkpolicies",
        view: policyReadOf,
      },
      () => networking.listNetworkPolicyForAllNamespaces(),
    ),
  };
}

/** The sources over a cluster's API, as the kubeconfig reaches it. */
export function kubePolicySources(kc: KubeConfig, log: Logger): PolicySources {
  const stats = { namespaces: newStats(), pods: newStats(), networkpolicies: newStats() };
  const { namespaces, pods, policies } = policyListWatches(kc);
  return {
    namespaces: (opts) => reflect(namespaces, log, { ...opts, stats: stats.namespaces }),
    pods: (opts) => reflect(pods, log, { ...opts, stats: stats.pods }),
    policies: (opts) => reflect(policies, log, { ...opts, stats: stats.networkpolicies }),
    stats,
  };
}
