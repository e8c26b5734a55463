/**
 * A lab of any size for the dashboard, without namespaces: N hosts with their leases, pods and
 * ping results made up, and hosts that can be "killed" (their pods' pairs then fail). The page
 * and the server's summing up are real; only the source of the figures is not.
 */
import type { LabPod } from "../../lab/cluster.js";
import type { DashboardSource } from "../../lab/dashboard.js";
import type { PingResult } from "../../lab/lab_check.js";
import type { LabStatus, NodeStatus } from "../../lab/lab_status.js";

export interface SyntheticLab extends DashboardSource {
  /** Takes a host down, as `lab kill-node` does. */
  kill(host: string): void;
}

const hex = (n: number) => n.toString(16).padStart(2, "0");

/** A made-up WireGuard public key for host n (44 characters of base64, as `wg` prints them). */
const publicKeyOf = (n: number) => Buffer.alloc(32, n).toString("base64");

export function syntheticLab(
  hosts: number,
  podsPerHost = 2,
  backend: "vxlan" | "wireguard" = "vxlan",
): SyntheticLab {
  const wireguard = backend === "wireguard";
  const down = new Set<string>();
  const pods: LabPod[] = [];
  const nodes = Array.from(
    { length: hosts },
    (_, i): Omit<NodeStatus, "flanneldAlive" | "online"> => {
      const n = i + 1;
      const own = Array.from({ length: podsPerHost }, (_, k) => ({
        name: `h${n}p${k + 1}`,
        netns: `synthetic-h${n}p${k + 1}`,
        node: `h${n}`,
        ip: `10.244.${n}.${k + 2}`,
      }));
      pods.push(...own);
      return {
        name: `h${n}`,
        netns: `synthetic-h${n}`,
        publicIP: `10.250.0.${10 + n}`,
        subnet: `10.244.${n}.0/24`,
        ipv6Subnet: null,
        publicIPv6: null,
        mtu: 1450,
        vtepMac: wireguard ? null : `0e:00:00:00:${hex(n >> 8)}:${hex(n & 255)}`,
        publicKey: wireguard ? publicKeyOf(n) : null,
        flanneldPid: 1000 + n,
        pods: own,
      };
    },
  );
  const status = (): LabStatus => ({
    name: `synthetic-${hosts}`,
    backend,
    encrypted: wireguard,
    datastore: "etcd",
    kubeApi: null,
    etcdEndpoint: "http://10.250.0.1:2379",
    etcdMembers: [{ name: "m1", alive: true }],
    nodes: nodes.map((n) => ({
      ...n,
      flanneldAlive: !down.has(n.name),
      online: !down.has(n.name),
    })),
    leases: nodes.map((n, i) => ({
      node: null,
      subnet: n.subnet ?? "",
      publicIP: n.publicIP,
      ipv6Subnet: null,
      publicIPv6: null,
      backendType: backend,
      vtepMac: n.vtepMac,
      publicKey: n.publicKey,
      age: { revision: 10 + i },
    })),
  });
  return {
    kill: (host) => {
      down.add(host);
    },
    status: () => Promise.resolve(status()),
    drill: () => Promise.resolve(null),
    measure() {
      const results: PingResult[] = [];
      for (const from of pods)
        for (const to of pods) {
          if (from === to) continue;
          const ok = !down.has(from.node) && !down.has(to.node);
          results.push({ from: from.name, to: to.name, ok, rttMs: ok ? 0.05 : null, family: 4 });
        }
      return Promise.resolve({ pods, results });
    },
  };
}
