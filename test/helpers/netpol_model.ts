/**
 * The Kubernetes NetworkPolicy e2e suite's model (kubernetes/kubernetes
 * test/e2e/network/netpol/): namespaces x, y and z, pods a, b and c in each, labelled
 * `pod: <name>`, every pod serving ports 80 and 81 over TCP, UDP and SCTP with the model's
 * port names (`serve-80-tcp`...). `Reach` is the suite's Reachability, with its helpers under
 * the same names (Expect, ExpectPeer, ExpectAllIngress, ExpectAllEgress); like the suite, a
 * pod's traffic to itself is not judged.
 */
import type { Json } from "../../lab/kubeapi/patch.js";
import type { Protocol } from "../../src/netpol/index.js";

/** A pod of the model: `x/a`. */
export type PodRef = `${"x" | "y" | "z"}/${"a" | "b" | "c"}`;

/** Every pod of the model. */
export const MODEL_PODS: readonly PodRef[] = (["x", "y", "z"] as const).flatMap((ns) =>
  (["a", "b", "c"] as const).map((p): PodRef => `${ns}/${p}`),
);

/** A pattern of pods: a namespace, a pod name, both, or neither (every pod). */
export interface Peer {
  readonly ns?: "x" | "y" | "z";
  readonly pod?: "a" | "b" | "c";
}

function matches(peer: Peer, ref: PodRef): boolean {
  const [ns, pod] = ref.split("/");
  return (peer.ns === undefined || peer.ns === ns) && (peer.pod === undefined || peer.pod === pod);
}

/** The expected truth table over some of the model's pods. */
export class Reach {
  readonly #expected = new Map<string, boolean>();

  constructor(
    readonly pods: readonly PodRef[],
    connected = true,
  ) {
    for (const from of pods) for (const to of pods) this.#expected.set(`${from}>${to}`, connected);
  }

  expect(from: PodRef, to: PodRef, connected: boolean): this {
    if (this.#expected.has(`${from}>${to}`)) this.#expected.set(`${from}>${to}`, connected);
    return this;
  }

  expectPeer(from: Peer, to: Peer, connected: boolean): this {
    for (const f of this.pods)
      for (const t of this.pods)
        if (matches(from, f) && matches(to, t)) this.expect(f, t, connected);
    return this;
  }

  expectAllIngress(to: PodRef, connected: boolean): this {
    for (const f of this.pods) this.expect(f, to, connected);
    return this;
  }

  expectAllEgress(from: PodRef, connected: boolean): this {
    for (const t of this.pods) this.expect(from, t, connected);
    return this;
  }

  /** Whether `from` should reach `to` (never asked for a pod and itself). */
  get(from: PodRef, to: PodRef): boolean {
    return this.#expected.get(`${from}>${to}`) ?? true;
  }
}

/** A label selector as the API takes it. */
export type Selector = {
  readonly matchLabels?: Readonly<Record<string, string>>;
  readonly matchExpressions?: readonly {
    key: string;
    operator: "In" | "NotIn" | "Exists" | "DoesNotExist";
    values?: readonly string[];
  }[];
};

/** The label every Namespace has with its name. */
export const NS_NAME = "kubernetes.io/metadata.name";

/** A rule as the API takes it (`from` for ingress, `to` for egress). */
export type Rule = Readonly<Record<string, unknown>>;

/**
 * A NetworkPolicy as the suite's GenNetworkPolicyWithNameAndPodSelector and SetSpec*Rules make
 * it: a direction's key present (even empty) also lists it in policyTypes.
 */
export function netpol(
  namespace: "x" | "y" | "z",
  name: string,
  podSelector: Selector,
  spec: {
    readonly ingress?: readonly Rule[];
    readonly egress?: readonly Rule[];
    readonly types?: readonly string[];
  },
): Json {
  const types = spec.types ?? [
    ...(spec.ingress !== undefined ? ["Ingress"] : []),
    ...(spec.egress !== undefined ? ["Egress"] : []),
  ];
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name, namespace },
    spec: {
      podSelector: podSelector as unknown as Json,
      policyTypes: [...types],
      ...(spec.ingress !== undefined ? { ingress: spec.ingress as unknown as Json } : {}),
      ...(spec.egress !== undefined ? { egress: spec.egress as unknown as Json } : {}),
    },
  };
}

/** A label selector of one label. */
export const labels = (key: string, value: string): Selector => ({ matchLabels: { [key]: value } });

/** One step of a case. */
export type Step =
  | { readonly create: readonly Json[] }
  | { readonly deleteAll: true }
  | {
      readonly labelNamespace: {
        readonly ns: "x" | "y" | "z";
        readonly labels: Readonly<Record<string, string | null>>;
      };
    }
  | {
      readonly labelPod: {
        readonly pod: PodRef;
        readonly labels: Readonly<Record<string, string | null>>;
      };
    }
  | {
      readonly probe: { readonly protocol: Protocol; readonly port: number };
      readonly reach: Reach;
    };

/** A case of the suite: its name, its pods, its steps. */
export interface NetpolCase {
  readonly name: string;
  readonly pods: readonly PodRef[];
  /** Builds the steps; `ipOf` gives a model pod's address (for ipBlock cases). */
  readonly steps: (ipOf: (pod: PodRef) => string) => readonly Step[];
}
