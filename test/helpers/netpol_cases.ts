/**
 * The policy cases of the Kubernetes NetworkPolicy e2e suite (test/e2e/network/netpol/
 * network_policy.go), transcribed with their pods, policies and expected truth tables. Only
 * the cases that need an API-server extension are left out: none of the suite's current cases
 * do. The names are the suite's.
 */
import { NS_NAME, Reach, labels, netpol } from "./netpol_model.js";
import type { NetpolCase, PodRef, Step } from "./netpol_model.js";

const TCP80 = { protocol: "TCP", port: 80 } as const;
const TCP81 = { protocol: "TCP", port: 81 } as const;
const ALL = {};
const probe = (p: { protocol: "TCP" | "UDP" | "SCTP"; port: number }, reach: Reach): Step => ({
  probe: p,
  reach,
});
const create = (...policies: ReturnType<typeof netpol>[]): Step => ({ create: policies });
const nsIn = (operator: "In" | "NotIn", ...values: string[]) => ({
  matchExpressions: [{ key: NS_NAME, operator, values }],
});
const podIn = (...values: string[]) => ({
  matchExpressions: [{ key: "pod", operator: "In" as const, values }],
});
const hostCidr = (ip: string) => `${ip}/32`;
/** The suite's makeLargeCIDRForIP: the /4 that holds the address. */
const largeCidr = (ip: string) => `${(Number(ip.split(".")[0]) & 0xf0).toString()}.0.0.0/4`;

function basic(
  name: string,
  pods: PodRef[],
  steps: (ipOf: (p: PodRef) => string) => Step[],
): NetpolCase {
  return { name, pods, steps };
}

/** The suite's TCP cases (its "NetworkPolicy between server and client" context). */
export const TCP_CASES: readonly NetpolCase[] = [
  basic("should support a 'default-deny-ingress' policy", ["x/a", "x/b", "y/a", "y/b"], () => {
    const pods: PodRef[] = ["x/a", "x/b", "y/a", "y/b"];
    return [
      create(netpol("x", "deny-ingress", ALL, { ingress: [] })),
      probe(TCP80, new Reach(pods).expectPeer({}, { ns: "x" }, false)),
    ];
  }),
  basic("should support a 'default-deny-all' policy", ["x/a", "x/b", "y/a"], () => [
    create(netpol("x", "deny-all", ALL, { ingress: [], egress: [] })),
    probe(
      TCP80,
      new Reach(["x/a", "x/b", "y/a"])
        .expectPeer({}, { ns: "x" }, false)
        .expectPeer({ ns: "x" }, {}, false),
    ),
  ]),
  basic(
    "should enforce policy to allow traffic from pods within server namespace based on PodSelector",
    ["x/a", "x/b", "x/c", "y/a"],
    () => [
      create(
        netpol("x", "x-a-allows-x-b", labels("pod", "a"), {
          ingress: [{ from: [{ podSelector: labels("pod", "b") }] }],
        }),
      ),
      probe(
        TCP80,
        new Reach(["x/a", "x/b", "x/c", "y/a"])
          .expectAllIngress("x/a", false)
          .expect("x/b", "x/a", true),
      ),
    ],
  ),
  basic(
    "should enforce policy to allow ingress traffic for a target",
    ["x/a", "x/b", "y/a"],
    () => [
      create(
        netpol("x", "deny-all", ALL, { ingress: [] }),
        netpol("x", "allow-all-to-a", labels("pod", "a"), {
          ingress: [{ from: [{ podSelector: {}, namespaceSelector: {} }] }],
        }),
      ),
      probe(
        TCP80,
        new Reach(["x/a", "x/b", "y/a"])
          .expectAllIngress("x/a", true)
          .expectAllIngress("x/b", false),
      ),
    ],
  ),
  basic(
    "should enforce policy to allow ingress traffic from pods in all namespaces",
    ["x/a", "x/b", "y/a", "z/a"],
    () => [
      create(
        netpol("x", "allow-from-another-ns", labels("pod", "a"), {
          ingress: [{ from: [{ namespaceSelector: { matchLabels: {} } }] }],
        }),
      ),
      probe(TCP80, new Reach(["x/a", "x/b", "y/a", "z/a"])),
    ],
  ),
  basic(
    "should enforce policy to allow traffic only from a different namespace, based on NamespaceSelector",
    ["x/a", "x/b", "y/a", "z/a"],
    () => [
      create(
        netpol("x", "allow-client-a-via-ns-selector", labels("pod", "a"), {
          ingress: [{ from: [{ namespaceSelector: labels(NS_NAME, "y") }] }],
        }),
      ),
      probe(
        TCP80,
        new Reach(["x/a", "x/b", "y/a", "z/a"])
          .expectPeer({ ns: "x" }, { ns: "x", pod: "a" }, false)
          .expectPeer({ ns: "z" }, { ns: "x", pod: "a" }, false),
      ),
    ],
  ),
  basic(
    "should enforce policy based on PodSelector with MatchExpressions",
    ["x/a", "x/b", "y/a"],
    () => [
      create(
        netpol("x", "x-a-allows-x-b", labels("pod", "a"), {
          ingress: [{ from: [{ podSelector: podIn("b") }] }],
        }),
      ),
      probe(
        TCP80,
        new Reach(["x/a", "x/b", "y/a"]).expectAllIngress("x/a", false).expect("x/b", "x/a", true),
      ),
    ],
  ),
  basic(
    "should enforce policy based on NamespaceSelector with MatchExpressions",
    ["x/a", "x/b", "y/a", "z/a"],
    () => [
      create(
        netpol("x", "allow-ns-y-match-selector", labels("pod", "a"), {
          ingress: [{ from: [{ namespaceSelector: nsIn("In", "y") }] }],
        }),
      ),
      probe(
        TCP80,
        new Reach(["x/a", "x/b", "y/a", "z/a"])
          .expectPeer({ ns: "x" }, { ns: "x", pod: "a" }, false)
          .expectPeer({ ns: "z" }, { ns: "x", pod: "a" }, false),
      ),
    ],
  ),
  basic(
    "should enforce policy based on PodSelector or NamespaceSelector",
    ["x/a", "x/b", "x/c", "y/a"],
    () => [
      create(
        netpol("x", "allow-ns-y-match-selector", labels("pod", "a"), {
          ingress: [
            {
              from: [
                { namespaceSelector: nsIn("NotIn", "x") },
                { podSelector: labels("pod", "b") },
              ],
            },
          ],
        }),
      ),
      probe(
        TCP80,
        new Reach(["x/a", "x/b", "x/c", "y/a"])
          .expect("x/a", "x/a", false)
          .expect("x/c", "x/a", false),
      ),
    ],
  ),
  basic(
    "should enforce policy based on PodSelector and NamespaceSelector",
    ["x/a", "x/b", "y/a", "y/b", "z/b"],
    () => [
      create(
        netpol("x", "allow-ns-y-podselector-and-nsselector", labels("pod", "a"), {
          ingress: [
            { from: [{ namespaceSelector: nsIn("NotIn", "x"), podSelector: labels("pod", "b") }] },
          ],
        }),
      ),
      probe(
        TCP80,
        new Reach(["x/a", "x/b", "y/a", "y/b", "z/b"])
          .expectAllIngress("x/a", false)
          .expect("y/b", "x/a", true)
          .expect("z/b", "x/a", true),
      ),
    ],
  ),
  basic(
    "should enforce policy based on Multiple PodSelectors and NamespaceSelectors",
    ["x/a", "x/b", "y/a", "y/b", "y/c"],
    () => [
      create(
        netpol("x", "allow-ns-y-z-pod-b-c", labels("pod", "a"), {
          ingress: [
            { from: [{ namespaceSelector: nsIn("NotIn", "x"), podSelector: podIn("b", "c") }] },
          ],
        }),
      ),
      probe(
        TCP80,
        new Reach(["x/a", "x/b", "y/a", "y/b", "y/c"])
          .expectPeer({ ns: "x" }, { ns: "x", pod: "a" }, false)
          .expect("y/a", "x/a", false),
      ),
    ],
  ),
  basic("should enforce policy based on any PodSelectors", ["x/a", "x/b", "x/c"], () => [
    create(
      netpol("x", "allow-ns-x-pod-b-c", labels("pod", "a"), {
        ingress: [
          { from: [{ podSelector: labels("pod", "b") }, { podSelector: labels("pod", "c") }] },
        ],
      }),
    ),
    probe(
      TCP80,
      new Reach(["x/a", "x/b", "x/c"])
        .expectAllIngress("x/a", false)
        .expect("x/b", "x/a", true)
        .expect("x/c", "x/a", true),
    ),
  ]),
  basic(
    "should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and NamespaceSelector",
    ["x/a", "x/b", "y/a", "y/b", "z/a"],
    () => [
      create(
        netpol("x", "allow-ns-y-pod-a-via-namespace-pod-selector", labels("pod", "a"), {
          ingress: [
            {
              from: [{ namespaceSelector: labels(NS_NAME, "y"), podSelector: labels("pod", "a") }],
            },
          ],
        }),
      ),
      probe(
        TCP80,
        new Reach(["x/a", "x/b", "y/a", "y/b", "z/a"])
          .expectAllIngress("x/a", false)
          .expect("y/a", "x/a", true),
      ),
    ],
  ),
  basic("should enforce policy based on Ports", ["x/a", "x/b", "y/a", "y/b", "z/a"], () => [
    create(
      netpol("x", "allow-client-a-via-ns-selector", labels("pod", "a"), {
        ingress: [
          {
            from: [{ namespaceSelector: labels(NS_NAME, "y") }],
            ports: [{ port: 81, protocol: "TCP" }],
          },
        ],
      }),
    ),
    probe(TCP81, port81FromY(["x/a", "x/b", "y/a", "y/b", "z/a"])),
  ]),
  basic(
    "should enforce multiple, stacked policies with overlapping podSelectors",
    ["x/a", "x/b", "y/a", "y/b", "z/a"],
    () => {
      const pods: PodRef[] = ["x/a", "x/b", "y/a", "y/b", "z/a"];
      return [
        create(
          netpol("x", "allow-client-a-via-ns-selector", labels("pod", "a"), {
            ingress: [
              {
                from: [{ namespaceSelector: labels(NS_NAME, "y") }],
                ports: [{ port: 81, protocol: "TCP" }],
              },
            ],
          }),
        ),
        probe(TCP81, port81FromY(pods)),
        probe(TCP80, new Reach(pods).expectAllIngress("x/a", false)),
        create(
          netpol("x", "allow-client-a-via-ns-selector-80", labels("pod", "a"), {
            ingress: [
              {
                from: [{ namespaceSelector: labels(NS_NAME, "y") }],
                ports: [{ port: 80, protocol: "TCP" }],
              },
            ],
          }),
        ),
        probe(TCP80, port81FromY(pods)),
      ];
    },
  ),
  basic("should support allow-all policy", ["x/a", "x/b", "y/a"], () => [
    create(netpol("x", "allow-all", { matchLabels: {} }, { ingress: [{}] })),
    probe(TCP80, new Reach(["x/a", "x/b", "y/a"])),
    probe(TCP81, new Reach(["x/a", "x/b", "y/a"])),
  ]),
  basic("should allow ingress access on one named port", ["x/a", "x/b", "y/a"], () => [
    create(
      netpol(
        "x",
        "allow-all",
        { matchLabels: {} },
        { ingress: [{ ports: [{ port: "serve-81-tcp" }] }] },
      ),
    ),
    probe(TCP81, new Reach(["x/a", "x/b", "y/a"])),
    probe(TCP80, new Reach(["x/a", "x/b", "y/a"]).expectPeer({}, { ns: "x" }, false)),
  ]),
  basic(
    "should allow ingress access from namespace on one named port",
    ["x/a", "x/b", "y/a", "z/a"],
    () => [
      create(
        netpol("x", "allow-client-a-via-ns-selector-80", labels("pod", "a"), {
          ingress: [
            {
              from: [{ namespaceSelector: labels(NS_NAME, "y") }],
              ports: [{ port: "serve-80-tcp", protocol: "TCP" }],
            },
          ],
        }),
      ),
      probe(
        TCP80,
        new Reach(["x/a", "x/b", "y/a", "z/a"])
          .expectPeer({ ns: "x" }, { ns: "x", pod: "a" }, false)
          .expectPeer({ ns: "z" }, { ns: "x", pod: "a" }, false),
      ),
      probe(TCP81, new Reach(["x/a", "x/b", "y/a", "z/a"]).expectAllIngress("x/a", false)),
    ],
  ),
  basic("should allow egress access on one named port", ["x/a", "y/a"], () => [
    create(
      netpol(
        "x",
        "allow-egress",
        { matchLabels: {} },
        { egress: [{ ports: [{ port: "serve-80-tcp" }] }] },
      ),
    ),
    probe(TCP80, new Reach(["x/a", "y/a"])),
    probe(TCP81, new Reach(["x/a", "y/a"]).expectPeer({ ns: "x" }, {}, false)),
  ]),
  basic("should enforce updated policy", ["x/a", "y/a"], () => [
    create(netpol("x", "allow-all-mutate-to-deny-all", { matchLabels: {} }, { ingress: [{}] })),
    probe(TCP81, new Reach(["x/a", "y/a"])),
    create(netpol("x", "allow-all-mutate-to-deny-all", { matchLabels: {} }, { ingress: [] })),
    probe(TCP81, new Reach(["x/a", "y/a"]).expectPeer({}, { ns: "x" }, false)),
  ]),
  basic("should allow ingress access from updated namespace", ["x/a", "y/a"], () => [
    create(
      netpol("x", "allow-client-a-via-ns-selector", labels("pod", "a"), {
        ingress: [{ from: [{ namespaceSelector: labels("ns2", "updated") }] }],
      }),
    ),
    probe(TCP80, new Reach(["x/a", "y/a"]).expectAllIngress("x/a", false)),
    { labelNamespace: { ns: "y", labels: { ns2: "updated" } } },
    probe(
      TCP80,
      new Reach(["x/a", "y/a"]).expectAllIngress("x/a", false).expectPeer({ ns: "y" }, {}, true),
    ),
  ]),
  basic("should allow ingress access from updated pod", ["x/a", "x/b"], () => [
    create(
      netpol("x", "allow-client-a-via-pod-selector", labels("pod", "a"), {
        ingress: [{ from: [{ podSelector: { matchLabels: { pod: "b", pod2: "updated" } } }] }],
      }),
    ),
    probe(TCP80, new Reach(["x/a", "x/b"]).expectAllIngress("x/a", false)),
    { labelPod: { pod: "x/b", labels: { pod2: "updated" } } },
    probe(
      TCP80,
      new Reach(["x/a", "x/b"]).expectAllIngress("x/a", false).expect("x/b", "x/a", true),
    ),
  ]),
  basic("should deny ingress from pods on other namespaces", ["x/a", "x/b", "y/a", "z/a"], () => [
    create(
      netpol("x", "deny-empty-policy", ALL, {
        ingress: [{ from: [{ podSelector: { matchLabels: {} } }] }],
      }),
    ),
    probe(
      TCP80,
      new Reach(["x/a", "x/b", "y/a", "z/a"])
        .expectPeer({ ns: "y" }, { ns: "x" }, false)
        .expectPeer({ ns: "z" }, { ns: "x" }, false),
    ),
  ]),
  basic("should deny ingress access to updated pod", ["x/a", "y/a"], () => [
    create(
      netpol("x", "deny-ingress-via-label-selector", labels("target", "isolated"), { ingress: [] }),
    ),
    probe(TCP80, new Reach(["x/a", "y/a"])),
    { labelPod: { pod: "x/a", labels: { target: "isolated" } } },
    probe(TCP80, new Reach(["x/a", "y/a"]).expectAllIngress("x/a", false)),
  ]),
  basic("should deny egress from pods based on PodSelector", ["x/a", "x/b", "y/a"], () => [
    create(netpol("x", "deny-egress-pod-a", labels("pod", "a"), { egress: [] })),
    probe(TCP80, new Reach(["x/a", "x/b", "y/a"]).expectAllEgress("x/a", false)),
  ]),
  basic("should deny egress from all pods in a namespace", ["x/a", "x/b", "y/a"], () => [
    create(netpol("x", "deny-egress-ns-x", ALL, { egress: [] })),
    probe(TCP80, new Reach(["x/a", "x/b", "y/a"]).expectPeer({ ns: "x" }, {}, false)),
  ]),
  basic("should work with Ingress, Egress specified together", ["x/a", "x/b", "x/c", "y/a"], () => {
    const pods: PodRef[] = ["x/a", "x/b", "x/c", "y/a"];
    return [
      create(
        netpol("x", "allow-client-a-via-pod-selector", labels("pod", "a"), {
          ingress: [{ from: [{ podSelector: labels("pod", "b") }] }],
          egress: [{ ports: [{ port: 80 }] }],
          types: ["Egress", "Ingress"],
        }),
      ),
      probe(TCP80, new Reach(pods).expectAllIngress("x/a", false).expect("x/b", "x/a", true)),
      probe(
        TCP81,
        new Reach(pods)
          .expectAllIngress("x/a", false)
          .expectAllEgress("x/a", false)
          .expect("x/b", "x/a", true),
      ),
    ];
  }),
  basic(
    "should support denying of egress traffic on the client side (even if the server explicitly allows this traffic)",
    ["x/a", "y/a", "y/b"],
    () => {
      const fromXa = {
        ingress: [
          { from: [{ namespaceSelector: labels(NS_NAME, "x"), podSelector: labels("pod", "a") }] },
        ],
      };
      return [
        create(
          netpol("x", "allow-to-ns-y-pod-a", labels("pod", "a"), {
            egress: [
              {
                to: [{ namespaceSelector: labels(NS_NAME, "y"), podSelector: labels("pod", "a") }],
              },
            ],
          }),
          netpol("y", "allow-from-xa-on-ya-match-selector", labels("pod", "a"), fromXa),
          netpol("y", "allow-from-xa-on-yb-match-selector", labels("pod", "b"), fromXa),
        ),
        probe(
          TCP80,
          new Reach(["x/a", "y/a", "y/b"])
            .expectPeer({ ns: "x", pod: "a" }, {}, false)
            .expectPeer({}, { ns: "y", pod: "a" }, false)
            .expectPeer({ ns: "x", pod: "a" }, { ns: "y", pod: "a" }, true)
            .expectPeer({}, { ns: "y", pod: "b" }, false),
        ),
      ];
    },
  ),
  basic(
    "should enforce egress policy allowing traffic to a server in a different namespace based on PodSelector and NamespaceSelector",
    ["x/a", "y/a", "y/b"],
    () => [
      create(
        netpol("x", "allow-to-ns-y-pod-a", labels("pod", "a"), {
          egress: [
            { to: [{ namespaceSelector: labels(NS_NAME, "y"), podSelector: labels("pod", "a") }] },
          ],
        }),
      ),
      probe(
        TCP80,
        new Reach(["x/a", "y/a", "y/b"]).expectAllEgress("x/a", false).expect("x/a", "y/a", true),
      ),
    ],
  ),
  basic(
    "should enforce ingress policy allowing any port traffic to a server on a specific protocol",
    ["x/a", "y/a"],
    () => [
      create(
        netpol("x", "allow-ingress-by-proto", labels("pod", "a"), {
          ingress: [{ ports: [{ protocol: "TCP" }] }],
        }),
      ),
      probe(TCP80, new Reach(["x/a", "y/a"])),
      probe(
        { protocol: "UDP", port: 80 },
        new Reach(["x/a", "y/a"]).expectPeer({}, { ns: "x", pod: "a" }, false),
      ),
    ],
  ),
  basic(
    "should enforce multiple ingress policies with ingress allow-all policy taking precedence",
    ["x/a", "y/a"],
    () => [
      create(
        netpol(
          "x",
          "allow-ingress-port-80",
          { matchLabels: {} },
          { ingress: [{ ports: [{ port: 80 }] }] },
        ),
      ),
      probe(TCP81, new Reach(["x/a", "y/a"]).expectPeer({}, { ns: "x" }, false)),
      create(netpol("x", "allow-ingress", { matchLabels: {} }, { ingress: [{}] })),
      probe(TCP81, new Reach(["x/a", "y/a"])),
    ],
  ),
  basic(
    "should enforce multiple egress policies with egress allow-all policy taking precedence",
    ["x/a", "y/a"],
    () => [
      create(
        netpol(
          "x",
          "allow-egress-port-80",
          { matchLabels: {} },
          { egress: [{ ports: [{ port: 80 }] }] },
        ),
      ),
      probe(TCP81, new Reach(["x/a", "y/a"]).expectPeer({ ns: "x" }, {}, false)),
      create(netpol("x", "allow-egress", { matchLabels: {} }, { egress: [{}] })),
      probe(TCP81, new Reach(["x/a", "y/a"])),
    ],
  ),
  basic("should stop enforcing policies after they are deleted", ["x/a", "y/a"], () => [
    create(netpol("x", "deny-all", ALL, { ingress: [], egress: [] })),
    probe(
      TCP80,
      new Reach(["x/a", "y/a"])
        .expectPeer({ ns: "x" }, {}, false)
        .expectPeer({}, { ns: "x" }, false),
    ),
    { deleteAll: true },
    probe(TCP80, new Reach(["x/a", "y/a"])),
  ]),
  basic("should allow egress access to server in CIDR block", ["x/a", "y/a", "y/b"], (ipOf) => [
    create(
      netpol("x", "allow-client-a-via-cidr-egress-rule", labels("pod", "a"), {
        egress: [{ to: [{ ipBlock: { cidr: hostCidr(ipOf("y/b")) } }] }],
      }),
    ),
    probe(
      TCP80,
      new Reach(["x/a", "y/a", "y/b"]).expectAllEgress("x/a", false).expect("x/a", "y/b", true),
    ),
  ]),
  basic(
    "should enforce except clause while egress access to server in CIDR block",
    ["x/a", "x/b", "x/c"],
    (ipOf) => [
      create(
        netpol("x", "allow-client-a-via-cidr-egress-rule", labels("pod", "a"), {
          egress: [
            {
              to: [{ ipBlock: { cidr: largeCidr(ipOf("x/b")), except: [hostCidr(ipOf("x/b"))] } }],
            },
          ],
        }),
      ),
      probe(TCP80, new Reach(["x/a", "x/b", "x/c"]).expect("x/a", "x/b", false)),
    ],
  ),
  basic(
    "should ensure an IP overlapping both IPBlock.CIDR and IPBlock.Except is allowed",
    ["x/a", "x/b", "x/c"],
    (ipOf) => [
      create(
        netpol("x", "allow-client-a-via-cidr-egress-rule", labels("pod", "a"), {
          egress: [
            {
              to: [{ ipBlock: { cidr: largeCidr(ipOf("x/b")), except: [hostCidr(ipOf("x/b"))] } }],
            },
          ],
        }),
      ),
      probe(TCP80, new Reach(["x/a", "x/b", "x/c"]).expect("x/a", "x/b", false)),
      create(
        netpol("x", "allow-client-a-via-cidr-egress-rule", labels("pod", "a"), {
          egress: [{ to: [{ ipBlock: { cidr: hostCidr(ipOf("x/b")) } }] }],
        }),
      ),
      probe(
        TCP80,
        new Reach(["x/a", "x/b", "x/c"]).expectAllEgress("x/a", false).expect("x/a", "x/b", true),
      ),
    ],
  ),
  basic(
    "should enforce policies to check ingress and egress policies can be controlled independently based on PodSelector",
    ["x/a", "x/b", "y/a"],
    () => [
      create(netpol("x", "allow-egress-for-target", labels("pod", "a"), { egress: [{}] })),
      probe(TCP80, new Reach(["x/a", "x/b", "y/a"])),
      create(netpol("x", "deny-ingress-via-label-selector", labels("pod", "a"), { ingress: [] })),
      probe(TCP80, new Reach(["x/a", "x/b", "y/a"]).expectAllIngress("x/a", false)),
    ],
  ),
  basic(
    "should not mistakenly treat 'protocol: SCTP' as 'protocol: TCP', even if the plugin doesn't support SCTP",
    ["x/a", "y/a"],
    () => [
      create(
        netpol("x", "deny-ingress", ALL, { ingress: [] }),
        netpol("x", "allow-only-sctp-ingress-on-port-81", labels("pod", "a"), {
          ingress: [{ ports: [{ port: 81, protocol: "SCTP" }] }],
        }),
      ),
      probe(TCP81, new Reach(["x/a", "y/a"]).expectPeer({}, { ns: "x" }, false)),
    ],
  ),
  basic(
    "should properly isolate pods that are selected by a policy allowing SCTP, even if the plugin doesn't support SCTP",
    ["x/a", "y/a"],
    () => [
      create(
        netpol("x", "allow-only-sctp-ingress-on-port-80", labels("pod", "a"), {
          ingress: [{ ports: [{ port: 80, protocol: "SCTP" }] }],
        }),
      ),
      probe(TCP81, new Reach(["x/a", "y/a"]).expectAllIngress("x/a", false)),
    ],
  ),
  basic("should not allow access by TCP when a policy specifies only UDP", ["x/a", "y/a"], () => [
    create(
      netpol("x", "allow-only-udp-ingress-on-port-81", labels("pod", "a"), {
        ingress: [{ ports: [{ port: 81, protocol: "UDP" }] }],
      }),
    ),
    probe(TCP81, new Reach(["x/a", "y/a"]).expectAllIngress("x/a", false)),
  ]),
  basic(
    "should enforce policy to allow traffic based on NamespaceSelector with MatchLabels using default ns label",
    ["x/a", "x/b", "y/a", "z/a"],
    () => [
      create(
        netpol("x", "allow-client-a-via-ns-selector-for-immutable-ns-label", labels("pod", "a"), {
          ingress: [{ from: [{ namespaceSelector: labels(NS_NAME, "y") }] }],
        }),
      ),
      probe(
        TCP80,
        new Reach(["x/a", "x/b", "y/a", "z/a"])
          .expectPeer({ ns: "x" }, { ns: "x", pod: "a" }, false)
          .expectPeer({ ns: "z" }, { ns: "x", pod: "a" }, false),
      ),
    ],
  ),
  basic(
    "should enforce policy based on NamespaceSelector with MatchExpressions using default ns label",
    ["x/a", "x/b", "y/a", "z/a"],
    () => [
      create(
        netpol("x", "allow-ns-y-match-selector-for-immutable-ns-label", labels("pod", "a"), {
          egress: [{ to: [{ namespaceSelector: nsIn("NotIn", "y") }] }],
        }),
      ),
      probe(
        TCP80,
        new Reach(["x/a", "x/b", "y/a", "z/a"]).expectPeer(
          { ns: "x", pod: "a" },
          { ns: "y" },
          false,
        ),
      ),
    ],
  ),
];

function port81FromY(pods: PodRef[]): Reach {
  return new Reach(pods)
    .expectPeer({ ns: "x" }, { ns: "x", pod: "a" }, false)
    .expectPeer({ ns: "y" }, { ns: "x", pod: "a" }, true)
    .expectPeer({ ns: "z" }, { ns: "x", pod: "a" }, false);
}

/** The suite's three cases per protocol for UDP and for SCTP (its LinuxOnly contexts). */
export function protocolCases(protocol: "UDP" | "SCTP"): NetpolCase[] {
  const p80 = { protocol, port: 80 };
  const p81 = { protocol, port: 81 };
  return [
    basic(
      `${protocol}: should support a 'default-deny-ingress' policy`,
      ["x/a", "x/b", "y/a", "y/b"],
      () => [
        create(netpol("x", "deny-all", ALL, { ingress: [] })),
        probe(p80, new Reach(["x/a", "x/b", "y/a", "y/b"]).expectPeer({}, { ns: "x" }, false)),
      ],
    ),
    basic(`${protocol}: should enforce policy based on Ports`, ["x/a", "x/b", "y/a", "z/a"], () => [
      create(
        netpol("x", "allow-ingress-on-port-81-ns-x", labels("pod", "a"), {
          ingress: [
            {
              from: [{ namespaceSelector: labels(NS_NAME, "y") }],
              ports: [{ port: 81, protocol }],
            },
          ],
        }),
      ),
      probe(
        p81,
        new Reach(["x/a", "x/b", "y/a", "z/a"])
          .expectPeer({ ns: "x" }, { ns: "x", pod: "a" }, false)
          .expectPeer({ ns: "z" }, { ns: "x", pod: "a" }, false),
      ),
    ]),
    basic(
      `${protocol}: should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and NamespaceSelector`,
      ["x/a", "x/b", "y/a"],
      () => [
        create(
          netpol("x", "allow-ns-y-pod-a-via-namespace-pod-selector", labels("pod", "a"), {
            ingress: [
              {
                from: [
                  { namespaceSelector: labels(NS_NAME, "y"), podSelector: labels("pod", "a") },
                ],
              },
            ],
          }),
        ),
        probe(
          p80,
          new Reach(["x/a", "x/b", "y/a"])
            .expectAllIngress("x/a", false)
            .expect("y/a", "x/a", true),
        ),
      ],
    ),
  ];
}
