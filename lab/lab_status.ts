/**
 * What `flannelctl lab status` and the dashboard show: each host (subnet, public IP, VTEP MAC,
 * pods, whether flanneld runs and the host is on the network), the etcd members, and the
 * leases stored in etcd.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { parseEnvFile } from "../src/config/subnet_env.js";
import { formatTable } from "../src/util/table.js";
import { labEtcdctl, labKube, listPods, livePid } from "./cluster.js";
import type { Lab, LabPod } from "./cluster.js";
import { ip } from "./netns.js";
import { backendFor } from "../src/backend/registry.js";
import { DEFAULT_ANNOTATION_PREFIX, newAnnotations } from "../src/subnet/kube/annotations.js";
import { nodeViewOf, storedVtepMacs } from "../src/subnet/kube/node_lease.js";

/** One host's state. */
export interface NodeStatus {
  readonly name: string;
  readonly netns: string;
  readonly publicIP: string;
  readonly subnet: string | null;
  /** Dual-stack and IPv6-only: the host's IPv6 subnet and address. */
  readonly ipv6Subnet: string | null;
  readonly publicIPv6: string | null;
  readonly mtu: number | null;
  readonly vtepMac: string | null;
  /** On wireguard: the public key in its lease. */
  readonly publicKey: string | null;
  readonly flanneldPid: number | null;
  readonly flanneldAlive: boolean;
  /** Whether the host's eth0 is up (false after `lab kill-node`). */
  readonly online: boolean;
  readonly pods: readonly LabPod[];
}

/** One lease as etcd holds it, or (Kubernetes mode) one Node and its flannel annotations. */
export interface LeaseRow {
  /** The Node's name in Kubernetes mode; null in etcd mode. */
  readonly node: string | null;
  readonly subnet: string;
  readonly publicIP: string;
  /** Dual-stack and IPv6-only: the IPv6 subnet and public IPv6; null without IPv6. */
  readonly ipv6Subnet: string | null;
  readonly publicIPv6: string | null;
  readonly backendType: string;
  readonly vtepMac: string | null;
  /** On wireguard: BackendData's PublicKey. */
  readonly publicKey: string | null;
  /**
   * How old the lease is, for sorting: etcd mode, the revision it was last written at (a renewal
   * rewrites it); Kubernetes mode, the Node's creation time (ms since epoch).
   */
  readonly age: { readonly revision: number } | { readonly createdAt: number } | null;
}

/** A lab's whole state. */
export interface LabStatus {
  readonly name: string;
  readonly backend: string;
  /** Whether the backend encrypts pod traffic between hosts. */
  readonly encrypted: boolean;
  /** Where the leases are: etcd, or Node objects (Kubernetes mode). */
  readonly datastore: "etcd" | "kube";
  /** Kubernetes mode: the API double's URL and whether it runs. */
  readonly kubeApi: { readonly url: string; readonly alive: boolean } | null;
  readonly etcdEndpoint: string;
  readonly etcdMembers: readonly { readonly name: string; readonly alive: boolean }[];
  readonly nodes: readonly NodeStatus[];
  /** Leases in etcd, or Nodes; null when the store cannot be reached. */
  readonly leases: readonly LeaseRow[] | null;
}

async function linkJson(
  netns: string,
  dev: string,
): Promise<{ address?: string; operstate?: string; flags?: string[] } | null> {
  try {
    const parsed = JSON.parse(await ip(["-j", "link", "show", "dev", dev], netns)) as {
      address?: string;
      operstate?: string;
      flags?: string[];
    }[];
    return parsed[0] ?? null;
  } catch {
    return null;
  }
}

/** Kubernetes mode: each Node, with what its flannel annotations say (read as flanneld reads them). */
/** A Node's creation time, from its metadata. */
function createdAtOf(object: unknown): { createdAt: number } | null {
  const stamp = (object as { metadata?: { creationTimestamp?: unknown } }).metadata
    ?.creationTimestamp;
  const ms = typeof stamp === "string" ? Date.parse(stamp) : NaN;
  return Number.isNaN(ms) ? null : { createdAt: ms };
}

async function labNodes(lab: Lab): Promise<LeaseRow[] | null> {
  let nodes: unknown[];
  try {
    nodes = await labKube(lab).listNodes();
  } catch {
    return null;
  }
  const a = newAnnotations(DEFAULT_ANNOTATION_PREFIX);
  return nodes.flatMap((object) => {
    const node = nodeViewOf(object);
    if (node === null) return [];
    return [
      {
        node: node.name,
        subnet: node.podCIDRs.find((c) => c.includes(".")) ?? "",
        publicIP: node.annotations[a.backendPublicIP] ?? "",
        ipv6Subnet: node.podCIDRs.find((c) => c.includes(":")) ?? null,
        publicIPv6: node.annotations[a.backendPublicIPv6] ?? null,
        backendType: node.annotations[a.backendType] ?? "",
        vtepMac: storedVtepMacs(node, a).v4,
        publicKey: publicKeyIn(node.annotations[a.backendData]),
        age: createdAtOf(object),
      },
    ];
  });
}

/** The PublicKey of a backend-data annotation (JSON); null without one. */
function publicKeyIn(backendData: string | undefined): string | null {
  try {
    const data = JSON.parse(backendData ?? "null") as { PublicKey?: unknown } | null;
    return typeof data?.PublicKey === "string" ? data.PublicKey : null;
  } catch {
    return null;
  }
}

/** Reads the leases stored in the lab's etcd, or (Kubernetes mode) its Nodes. */
export async function labLeases(lab: Lab): Promise<LeaseRow[] | null> {
  if (lab.datastore === "kube") return labNodes(lab);
  let out: string;
  try {
    out = await labEtcdctl(lab, ["get", "--prefix", "/coreos.com/network/subnets/", "-w", "json"]);
  } catch {
    return null;
  }
  const parsed = JSON.parse(out) as {
    kvs?: { key: string; value: string; mod_revision?: number }[];
  };
  return (parsed.kvs ?? []).flatMap((kv) => {
    const key = Buffer.from(kv.key, "base64").toString();
    const subnet = /subnets\/(\d+\.\d+\.\d+\.\d+)-(\d+)/.exec(key);
    const subnet6 = /&([0-9a-f:]+)-(\d+)$/.exec(key);
    if (subnet === null) return [];
    try {
      const value = JSON.parse(Buffer.from(kv.value, "base64").toString()) as {
        PublicIP?: string;
        PublicIPv6?: string | null;
        BackendType?: string;
        BackendData?: { VtepMAC?: string; PublicKey?: string };
      };
      return [
        {
          node: null,
          subnet: `${subnet[1] ?? ""}/${subnet[2] ?? ""}`,
          publicIP: value.PublicIP ?? "",
          ipv6Subnet: subnet6 === null ? null : `${subnet6[1] ?? ""}/${subnet6[2] ?? ""}`,
          publicIPv6: value.PublicIPv6 ?? null,
          backendType: value.BackendType ?? "",
          vtepMac: value.BackendData?.VtepMAC ?? null,
          publicKey: value.BackendData?.PublicKey ?? null,
          age: kv.mod_revision === undefined ? null : { revision: kv.mod_revision },
        },
      ];
    } catch {
      return [];
    }
  });
}

/** Reads each host's state from its files, processes and links, and the leases from etcd. */
export async function labStatus(lab: Lab): Promise<LabStatus> {
  const pods = await listPods(lab);
  const leases = await labLeases(lab);
  const nodes = await Promise.all(
    lab.nodes.map(async (node): Promise<NodeStatus> => {
      const env = parseEnvFile(await readFile(node.subnetFile, "utf8").catch(() => ""));
      const pid = await livePid(node.pidFile);
      const [eth0, vtep] = await Promise.all([
        linkJson(node.netns, "eth0"),
        linkJson(node.netns, "flannel.1"),
      ]);
      const subnet = env.get("FLANNEL_SUBNET")?.replace(/\.1\/(\d+)$/, ".0/$1") ?? null;
      const ipv6Subnet = env.get("FLANNEL_IPV6_SUBNET")?.replace(/::1\/(\d+)$/, "::/$1") ?? null;
      return {
        name: node.name,
        netns: node.netns,
        publicIP: node.address,
        subnet,
        ipv6Subnet,
        publicIPv6: ipv6Subnet === null ? null : node.address6,
        mtu: env.has("FLANNEL_MTU") ? Number(env.get("FLANNEL_MTU")) : null,
        vtepMac: vtep?.address ?? null,
        publicKey: leases?.find((l) => l.subnet === subnet)?.publicKey ?? null,
        flanneldPid: pid,
        flanneldAlive: pid !== null,
        online: eth0?.flags?.includes("UP") === true,
        pods: pods.filter((p) => p.node === node.name),
      };
    }),
  );
  const etcdMembers = await Promise.all(
    Array.from({ length: lab.datastore === "kube" ? 0 : lab.etcdMembers }, async (_, i) => ({
      name: `m${i + 1}`,
      alive: (await livePid(join(lab.dir, "etcd", `m${i + 1}`, "etcd.pid"))) !== null,
    })),
  );
  const kube = lab.datastore === "kube";
  return {
    name: lab.name,
    backend: lab.backend,
    encrypted: backendFor(lab.backend).lab.encrypts,
    datastore: lab.datastore,
    kubeApi: kube
      ? {
          url: lab.kubeApiUrl,
          alive: (await livePid(join(lab.dir, "kubeapi", "kubeapi.pid"))) !== null,
        }
      : null,
    etcdEndpoint: lab.etcdEndpoint,
    etcdMembers,
    nodes,
    leases,
  };
}

/** A table of host states, then the leases. */
export function formatLabStatus(status: LabStatus): string {
  const rows = [
    ["HOST", "PUBLIC IP", "SUBNET", "MTU", "VTEP MAC / KEY", "PODS", "FLANNELD", "NETWORK"],
  ];
  for (const n of status.nodes) {
    rows.push([
      n.name,
      n.publicIP,
      n.subnet ?? "-",
      n.mtu === null ? "-" : String(n.mtu),
      n.vtepMac ?? n.publicKey ?? "-",
      n.pods.map((p) => `${p.name}=${p.ip}`).join(" ") || "-",
      n.flanneldAlive ? `running (pid ${n.flanneldPid ?? "?"})` : "not running",
      n.online ? "up" : "down",
    ]);
  }
  const members = status.etcdMembers
    .map((m) => `${m.name} ${m.alive ? "running" : "not running"}`)
    .join(", ");
  const store =
    status.kubeApi === null
      ? `etcd ${status.etcdEndpoint} (${members})`
      : `Kubernetes API double ${status.kubeApi.url} (${status.kubeApi.alive ? "running" : "not running"})`;
  let out = `Lab "${status.name}", backend ${status.backend}; ${store}\n\n${formatTable(rows)}`;
  if (status.kubeApi !== null) {
    if (status.leases === null) return `${out}\nNodes: the API double cannot be reached\n`;
    const nodeRows = [
      ["NODE", "POD CIDR", "PUBLIC IP", "BACKEND", "VTEP MAC / KEY"],
      ...status.leases.map((l) => [
        l.node ?? "-",
        l.subnet || "-",
        l.publicIP || "-",
        l.backendType || "-",
        l.vtepMac ?? l.publicKey ?? "-",
      ]),
    ];
    return `${out}\nNodes and their flannel annotations:\n${formatTable(nodeRows)}`;
  }
  if (status.leases === null) return `${out}\nLeases: etcd cannot be reached\n`;
  const leaseRows = [
    ["SUBNET", "PUBLIC IP", "BACKEND", "VTEP MAC / KEY"],
    ...status.leases.map((l) => [
      l.subnet,
      l.publicIP,
      l.backendType || "-",
      l.vtepMac ?? l.publicKey ?? "-",
    ]),
  ];
  out += `\nLeases in etcd:\n${formatTable(leaseRows)}`;
  return out;
}
