/**
 * Random clusters for the NetworkPolicy property tests (fast-check): three namespaces with
 * random labels, pods on two nodes with random labels and named ports (and a hostNetwork pod,
 * which policies must ignore), and policy sets drawn over the same small label alphabet, so
 * that selectors often select something. Everything is raw API JSON, read through the same
 * views as the enforcer reads the watches (clusterViewOf).
 */
import fc from "fast-check";

const key = fc.constantFrom("app", "tier", "role");
const value = fc.constantFrom("a", "b", "c");
const labelsArb = fc.dictionary(key, value, { maxKeys: 2 });

const selector = fc.record(
  {
    matchLabels: labelsArb,
    matchExpressions: fc.array(
      fc.record({
        key,
        operator: fc.constantFrom("In", "NotIn", "Exists", "DoesNotExist"),
        values: fc.array(value, { minLength: 1, maxLength: 2 }),
      }),
      { maxLength: 2 },
    ),
  },
  { requiredKeys: [] },
);

/** The pods' addresses, by node: n1 holds 10.244.1.0/24, n2 10.244.2.0/24. */
export const POD_IPS = [
  "10.244.1.2",
  "10.244.1.3",
  "10.244.1.4",
  "10.244.2.2",
  "10.244.2.3",
  "10.244.2.4",
];
/** An address outside the cluster, and the hostNetwork pod's (a node's). */
export const OUTSIDE_IP = "192.168.7.7";
export const HOST_NETWORK_IP = "10.250.0.12";

const ipBlock = fc.record({
  cidr: fc.constantFrom(
    "10.244.0.0/16",
    "10.244.1.0/24",
    "10.244.2.2/32",
    "0.0.0.0/0",
    "192.168.0.0/16",
  ),
  except: fc.subarray(["10.244.1.3/32", "10.244.2.0/25", "192.168.7.0/24"], { maxLength: 2 }),
});

const peer = fc.oneof(
  fc.record({ podSelector: selector }),
  fc.record({ namespaceSelector: selector }),
  fc.record({ podSelector: selector, namespaceSelector: selector }),
  fc.record({ ipBlock }),
);

const port = fc.record(
  {
    protocol: fc.constantFrom("TCP", "UDP", "SCTP"),
    port: fc.oneof(fc.constantFrom(80, 81), fc.constantFrom("web", "alt", "dns", "none")),
    endPort: fc.constant(81),
  },
  { requiredKeys: [] },
);

const rule = (peers: "from" | "to") =>
  fc.record(
    { [peers]: fc.array(peer, { maxLength: 2 }), ports: fc.array(port, { maxLength: 2 }) },
    { requiredKeys: [] },
  );

const policy = fc.record(
  {
    namespace: fc.constantFrom("x", "y", "z"),
    podSelector: selector,
    policyTypes: fc.subarray(["Ingress", "Egress"]),
    ingress: fc.array(rule("from"), { maxLength: 2 }),
    egress: fc.array(rule("to"), { maxLength: 2 }),
  },
  { requiredKeys: ["namespace", "podSelector"] },
);

/** Named container ports a pod may declare (one name per protocol, as the API demands). */
const NAMED_PORTS = [
  { name: "web", containerPort: 80, protocol: "TCP" },
  { name: "alt", containerPort: 81, protocol: "UDP" },
  { name: "dns", containerPort: 80, protocol: "SCTP" },
  { name: "web", containerPort: 81, protocol: "UDP" },
];

/** A random cluster: its raw objects and the view of them. */
export const clusterArb = fc
  .record({
    namespaces: fc.tuple(labelsArb, labelsArb, labelsArb),
    pods: fc.tuple(
      ...POD_IPS.map(() =>
        fc.record({
          ns: fc.constantFrom("x", "y", "z"),
          labels: labelsArb,
          ports: fc.subarray(NAMED_PORTS.slice(0, 3)),
        }),
      ),
    ),
    hostPodLabels: labelsArb,
    policies: fc.array(policy, { minLength: 1, maxLength: 4 }),
  })
  .map((drawn) => {
    const objects: unknown[][] = [[], [], []];
    ["x", "y", "z"].forEach((name, i) =>
      objects[0]?.push({
        metadata: { name, labels: { ...drawn.namespaces[i], "kubernetes.io/metadata.name": name } },
      }),
    );
    drawn.pods.forEach((p, i) => {
      const ip = POD_IPS[i] ?? "";
      objects[1]?.push({
        metadata: { name: `p${i}`, namespace: p.ns, labels: p.labels },
        spec: {
          nodeName: ip.startsWith("10.244.1.") ? "n1" : "n2",
          containers: [{ name: "c", ports: p.ports }],
        },
        status: { phase: "Running", podIPs: [{ ip }] },
      });
    });
    objects[1]?.push({
      metadata: { name: "host", namespace: "x", labels: drawn.hostPodLabels },
      spec: { nodeName: "n2", hostNetwork: true, containers: [{ name: "c", ports: NAMED_PORTS }] },
      status: { phase: "Running", podIPs: [{ ip: HOST_NETWORK_IP }] },
    });
    drawn.policies.forEach((p, i) => {
      const { namespace, ...spec } = p;
      objects[2]?.push({ metadata: { name: `np${i}`, namespace }, spec });
    });
    return { namespaces: objects[0] ?? [], pods: objects[1] ?? [], policies: objects[2] ?? [] };
  });

/**
 * Random policy sets over the e2e model's pods (labels `pod: a|b|c`, namespaces x, y, z with
 * their name label), for checking the evaluator's verdicts on real packets: selectors on those
 * labels, ipBlocks around the pods' own subnets, the model's numeric and named ports.
 */
export function modelPoliciesArb(subnets: readonly string[]): fc.Arbitrary<unknown[]> {
  const podSel = fc.oneof(
    fc.constant({}),
    fc.constantFrom("a", "b", "c").map((p) => ({ matchLabels: { pod: p } })),
    fc
      .subarray(["a", "b", "c"], { minLength: 1 })
      .map((v) => ({ matchExpressions: [{ key: "pod", operator: "NotIn", values: v }] })),
  );
  const nsSel = fc.oneof(
    fc.constant({}),
    fc
      .constantFrom("x", "y", "z")
      .map((n) => ({ matchLabels: { "kubernetes.io/metadata.name": n } })),
  );
  const modelPeer = fc.oneof(
    fc.record({ podSelector: podSel }),
    fc.record({ namespaceSelector: nsSel }),
    fc.record({ podSelector: podSel, namespaceSelector: nsSel }),
    fc
      .constantFrom(...subnets)
      .map((cidr) => ({ ipBlock: { cidr: "10.244.0.0/16", except: [cidr] } })),
  );
  const modelPort = fc.oneof(
    fc.record({ protocol: fc.constantFrom("TCP", "UDP"), port: fc.constantFrom(80, 81) }),
    fc.record({
      protocol: fc.constantFrom("TCP", "UDP"),
      port: fc.constantFrom("serve-80-tcp", "serve-81-udp"),
    }),
  );
  const modelRule = (key: "from" | "to") =>
    fc.record(
      {
        [key]: fc.array(modelPeer, { maxLength: 2 }),
        ports: fc.array(modelPort, { maxLength: 2 }),
      },
      { requiredKeys: [] },
    );
  const one = fc.record({
    namespace: fc.constantFrom("x", "y", "z"),
    podSelector: podSel,
    policyTypes: fc.subarray(["Ingress", "Egress"], { minLength: 1 }),
    ingress: fc.array(modelRule("from"), { maxLength: 2 }),
    egress: fc.array(modelRule("to"), { maxLength: 2 }),
  });
  return fc.array(one, { minLength: 1, maxLength: 3 }).map((list) =>
    list.map(({ namespace, ...spec }, i) => ({
      apiVersion: "networking.k8s.io/v1",
      kind: "NetworkPolicy",
      metadata: { name: `random-${String(i)}`, namespace },
      spec,
    })),
  );
}
