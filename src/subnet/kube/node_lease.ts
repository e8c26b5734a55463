/**
 * Nodes as leases (flannel's nodeToLease and the annotation half of AcquireLease): what a Node's
 * `spec.podCIDRs` and flannel annotations say about its lease, and which annotations this node
 * must write so that its peers can reach it.
 *
 * Unlike flannel, a Node whose annotations cannot be used (bad JSON in backend-data, a bad
 * public IP, a vxlan backend-data without a MAC) is refused here with a reason naming the node,
 * so the manager can skip it with one warning; flannel logs at info level and, for bad JSON,
 * hands the backend a lease it then fails on.
 */
import { goJsonStringify } from "../../util/go_json.js";
import { IPNet, parseIPv4, parseIPv6 } from "../../ip/ip.js";
import type { JsonValue, Lease, LeaseAttrs } from "../../lease/lease.js";
import type { Annotations } from "./annotations.js";
import { FlannelError } from "../../errors.js";

/** The parts of a Node flannel reads. */
export interface NodeView {
  readonly name: string;
  readonly annotations: Readonly<Record<string, string>>;
  readonly podCIDR: string;
  readonly podCIDRs: readonly string[];
}

/** Which address families the network config enables. */
export interface Families {
  readonly enableIPv4: boolean;
  readonly enableIPv6: boolean;
}

/** A Node flannel cannot turn into a lease; the message names the node and the reason. */
export class NodeLeaseError extends FlannelError {}

/** Reads the parts of a Node that flannel uses from an API object (`unknown` JSON). */
export function nodeViewOf(object: unknown): NodeView | null {
  if (typeof object !== "object" || object === null) return null;
  const o = object as {
    metadata?: { name?: unknown; annotations?: unknown };
    spec?: { podCIDR?: unknown; podCIDRs?: unknown };
  };
  const name = o.metadata?.name;
  if (typeof name !== "string") return null;
  const annotations: Record<string, string> = {};
  const raw = o.metadata?.annotations;
  if (typeof raw === "object" && raw !== null) {
    for (const [k, v] of Object.entries(raw)) if (typeof v === "string") annotations[k] = v;
  }
  const podCIDRs = Array.isArray(o.spec?.podCIDRs)
    ? o.spec.podCIDRs.filter((c): c is string => typeof c === "string")
    : [];
  const podCIDR = typeof o.spec?.podCIDR === "string" ? o.spec.podCIDR : "";
  return { name, annotations, podCIDR, podCIDRs };
}

/** The node's pod CIDRs by family: `spec.podCIDRs` (one per family), else `spec.podCIDR`. */
export function podCIDRsOf(node: NodeView): { v4: IPNet | null; v6: IPNet | null } {
  const list = node.podCIDRs.length > 0 ? node.podCIDRs : node.podCIDR === "" ? [] : [node.podCIDR];
  if (list.length > 2) {
    throw new NodeLeaseError(
      `node "${node.name}" pod cidrs should be IPv4/IPv6 only or dualstack: it has ${list.length}`,
    );
  }
  let v4: IPNet | null = null;
  let v6: IPNet | null = null;
  for (const text of list) {
    const net = IPNet.parse(text);
    if (net === null) {
      throw new NodeLeaseError(
        `node "${node.name}" has an invalid pod CIDR "${text}": expected a CIDR such as 10.244.1.0/24`,
      );
    }
    // Go's net.ParseCIDR masks the host bits off.
    const masked = net;
    if (masked.family === 4) v4 ??= masked;
    else v6 ??= masked;
  }
  return { v4, v6 };
}

function parseBackendData(
  node: NodeView,
  name: string,
  text: string | undefined,
): JsonValue | undefined {
  if (text === undefined || text === "") return undefined;
  try {
    return JSON.parse(text) as JsonValue;
  } catch {
    throw new NodeLeaseError(
      `node "${node.name}" has annotation ${name} that is not JSON: ${JSON.stringify(text.slice(0, 80))}`,
    );
  }
}

const MAC = /^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/;

function checkVxlanData(node: NodeView, name: string, data: JsonValue | undefined): void {
  if (data === undefined || data === null) return;
  const mac =
    typeof data === "object" && !Array.isArray(data)
      ? Object.entries(data).find(([k]) => k.toLowerCase() === "vtepmac")?.[1]
      : undefined;
  if (typeof mac !== "string" || !MAC.test(mac)) {
    throw new NodeLeaseError(
      `node "${node.name}" has annotation ${name} without a usable VtepMAC: expected {"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:ff"}`,
    );
  }
}

/**
 * The lease a flannel-managed Node stands for; null when the node is not flannel's (no
 * `kube-subnet-manager: "true"`) or has no pod CIDR yet. Throws NodeLeaseError when its
 * annotations cannot be used.
 */
export function nodeToLease(node: NodeView, a: Annotations, families: Families): Lease | null {
  if (node.annotations[a.subnetKubeManaged] !== "true") return null;
  const cidrs = podCIDRsOf(node);
  const backendType = node.annotations[a.backendType] ?? "";
  let subnet: IPNet | null = null;
  let publicIP = "";
  let backendData: JsonValue | undefined;
  if (families.enableIPv4) {
    if (cidrs.v4 === null) return null;
    subnet = cidrs.v4;
    publicIP = node.annotations[a.backendPublicIP] ?? "";
    if (parseIPv4(publicIP) === null) {
      throw new NodeLeaseError(
        `node "${node.name}" has annotation ${a.backendPublicIP} ${JSON.stringify(publicIP)}: expected an IPv4 address`,
      );
    }
    backendData = parseBackendData(node, a.backendData, node.annotations[a.backendData]);
    if (backendType === "vxlan") checkVxlanData(node, a.backendData, backendData);
  }
  let ipv6Subnet: IPNet | null = null;
  let publicIPv6: string | null = null;
  let backendV6Data: JsonValue | undefined;
  if (families.enableIPv6) {
    ipv6Subnet = cidrs.v6;
    const v6 = node.annotations[a.backendPublicIPv6] ?? "";
    if (v6 !== "" && parseIPv6(v6) === null) {
      throw new NodeLeaseError(
        `node "${node.name}" has annotation ${a.backendPublicIPv6} ${JSON.stringify(v6)}: expected an IPv6 address`,
      );
    }
    publicIPv6 = v6 === "" ? null : v6;
    backendV6Data = parseBackendData(node, a.backendV6Data, node.annotations[a.backendV6Data]);
  }
  // An IPv6-only lease (EnableIPv4 false) is named by its IPv6 subnet alone.
  if (subnet === null && ipv6Subnet === null) return null;
  const attrs: LeaseAttrs = {
    publicIP,
    publicIPv6,
    backendType,
    ...(backendData !== undefined ? { backendData } : {}),
    ...(backendV6Data !== undefined ? { backendV6Data } : {}),
  };
  return { subnet, ipv6Subnet, attrs, expiration: null, reserved: false };
}

/** Go's json.Marshal of a json.RawMessage: `null` when absent. */
function rawJson(value: JsonValue | undefined): string {
  return value === undefined ? "null" : goJsonStringify(value);
}

/**
 * The annotations this node must carry for `attrs` (flannel's AcquireLease), or null when the
 * node already carries them. Only the annotations that change are returned, as flannel's
 * two-way strategic merge patch holds only those.
 */
export function annotationsToWrite(
  node: NodeView,
  attrs: LeaseAttrs,
  a: Annotations,
): Record<string, string> | null {
  const have = node.annotations;
  const bd = rawJson(attrs.backendData);
  const v6bd = rawJson(attrs.backendV6Data);
  const overwrite = have[a.backendPublicIPOverwrite] ?? "";
  const overwrite6 = have[a.backendPublicIPv6Overwrite] ?? "";
  const stale4 =
    have[a.backendData] !== bd ||
    have[a.backendType] !== attrs.backendType ||
    have[a.backendPublicIP] !== attrs.publicIP ||
    have[a.subnetKubeManaged] !== "true" ||
    (overwrite !== "" && overwrite !== attrs.publicIP);
  const stale6 =
    attrs.publicIPv6 !== null &&
    (have[a.backendV6Data] !== v6bd ||
      have[a.backendType] !== attrs.backendType ||
      have[a.backendPublicIPv6] !== attrs.publicIPv6 ||
      have[a.subnetKubeManaged] !== "true" ||
      (overwrite6 !== "" && overwrite6 !== attrs.publicIPv6));
  if (!stale4 && !stale6) return null;
  const want: Record<string, string> = { [a.backendType]: attrs.backendType };
  const type = attrs.backendType;
  if (
    (type === "vxlan" && bd !== "null") ||
    (type === "wireguard" && bd !== "null") ||
    type !== "vxlan"
  ) {
    want[a.backendData] = bd;
    want[a.backendPublicIP] = overwrite !== "" ? overwrite : attrs.publicIP;
  }
  if (
    (type === "vxlan" && v6bd !== "null") ||
    (type === "wireguard" && v6bd !== "null" && attrs.publicIPv6 !== null) ||
    (type === "host-gw" && attrs.publicIPv6 !== null)
  ) {
    want[a.backendV6Data] = v6bd;
    want[a.backendPublicIPv6] = overwrite6 !== "" ? overwrite6 : (attrs.publicIPv6 ?? "");
  }
  want[a.subnetKubeManaged] = "true";
  const changed: Record<string, string> = {};
  for (const key of Object.keys(want).sort()) {
    const value = want[key] ?? "";
    if (have[key] !== value) changed[key] = value;
  }
  return Object.keys(changed).length === 0 ? null : changed;
}

/** The VTEP MACs stored in this node's backend-data annotations (flannel's GetStoredMacAddresses). */
export function storedVtepMacs(
  node: NodeView,
  a: Annotations,
): { v4: string | null; v6: string | null } {
  const read = (name: string): string | null => {
    try {
      const data = JSON.parse(node.annotations[name] ?? "null") as unknown;
      const mac =
        typeof data === "object" && data !== null
          ? (Object.entries(data) as [string, unknown][]).find(
              ([k]) => k.toLowerCase() === "vtepmac",
            )?.[1]
          : undefined;
      return typeof mac === "string" && MAC.test(mac) ? mac.toLowerCase() : null;
    } catch {
      return null;
    }
  };
  return { v4: read(a.backendData), v6: read(a.backendV6Data) };
}
