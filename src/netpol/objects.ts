/**
 * The Kubernetes objects the NetworkPolicy enforcer reads, as typed views of what the API sends:
 * Namespaces (name, labels), Pods (labels, addresses, node, hostNetwork, named container ports)
 * and NetworkPolicies (networking.k8s.io/v1). Anything that is not such an object gives null;
 * a policy whose rules cannot be used (a bad CIDR, port or protocol) keeps its isolation and
 * lists its problems, so that flanneld warns once and never opens anything because of it.
 */
import { IPNet, parseIP } from "../ip/ip.js";
import type { IPFamily } from "../ip/ip.js";
import type { LabelSelector, Labels, SelectorRequirement } from "./selector.js";

/** A transport protocol a NetworkPolicy port names. */
export type Protocol = "TCP" | "UDP" | "SCTP";
const PROTOCOLS: readonly Protocol[] = ["TCP", "UDP", "SCTP"];

/** A Namespace: its name and labels. */
export interface NamespaceView {
  readonly name: string;
  readonly labels: Labels;
}

/** A named container port of a pod. */
export interface NamedPort {
  readonly name: string;
  readonly port: number;
  readonly protocol: Protocol;
}

/** A pod address with its family. */
export interface PodAddress {
  readonly family: IPFamily;
  readonly ip: string;
}

/** A Pod, as far as policies care. */
export interface PodView {
  readonly namespace: string;
  readonly name: string;
  readonly labels: Labels;
  readonly nodeName: string;
  readonly hostNetwork: boolean;
  /** From status.podIPs (or status.podIP); empty until the kubelet reports them. */
  readonly ips: readonly PodAddress[];
  readonly namedPorts: readonly NamedPort[];
  /** Succeeded or Failed: its addresses may already belong to another pod. */
  readonly finished: boolean;
}

/** A peer of a rule: pods chosen by selectors, or addresses. */
export type PolicyPeer =
  | {
      readonly kind: "pods";
      /** null: every pod of the chosen namespaces. */
      readonly podSelector: LabelSelector | null;
      /** null: the policy's own namespace. */
      readonly namespaceSelector: LabelSelector | null;
    }
  | { readonly kind: "ipBlock"; readonly cidr: IPNet; readonly except: readonly IPNet[] };

/** A port of a rule: a number (with endPort, a range), a container port's name, or every port. */
export interface PolicyPort {
  readonly protocol: Protocol;
  /** null: every port of the protocol. */
  readonly port: number | string | null;
  readonly endPort: number | null;
}

/** One ingress or egress rule; null lists mean "everyone" and "every port". */
export interface PolicyRule {
  readonly peers: readonly PolicyPeer[] | null;
  readonly ports: readonly PolicyPort[] | null;
}

/** A NetworkPolicy. */
export interface NetworkPolicyView {
  readonly namespace: string;
  readonly name: string;
  readonly podSelector: LabelSelector;
  /** Whether it isolates the pods it selects for ingress and for egress (policyTypes). */
  readonly isolates: { readonly ingress: boolean; readonly egress: boolean };
  readonly ingress: readonly PolicyRule[];
  readonly egress: readonly PolicyRule[];
  /** Why its rules cannot be used; when not empty, the policy allows nothing. */
  readonly problems: readonly string[];
}

/** Whether an address lies in an ipBlock and outside its exceptions. */
export function blockHolds(peer: PolicyPeer & { kind: "ipBlock" }, ip: string): boolean {
  const parsed = parseIP(ip);
  if (parsed === null || parsed.family !== peer.cidr.family) return false;
  return peer.cidr.contains(parsed.value) && !peer.except.some((e) => e.contains(parsed.value));
}

type Raw = Record<string, unknown>;

function isObject(value: unknown): value is Raw {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function objectAt(value: unknown, key: string): Raw {
  return isObject(value) && isObject(value[key]) ? value[key] : {};
}

function stringAt(value: Raw, key: string): string {
  return typeof value[key] === "string" ? value[key] : "";
}

function labelsOf(metadata: Raw): Labels {
  const labels = metadata.labels;
  if (!isObject(labels)) return {};
  return Object.fromEntries(
    Object.entries(labels).filter((e): e is [string, string] => typeof e[1] === "string"),
  );
}

/** The metadata's namespace and name, or null when it has no name. */
function identityOf(object: unknown): { namespace: string; name: string; metadata: Raw } | null {
  const metadata = objectAt(object, "metadata");
  const name = stringAt(metadata, "name");
  if (name === "") return null;
  return { namespace: stringAt(metadata, "namespace"), name, metadata };
}

/** A Namespace view, or null when the object is not one. */
export function namespaceViewOf(object: unknown): NamespaceView | null {
  const id = identityOf(object);
  if (id === null) return null;
  return { name: id.name, labels: labelsOf(id.metadata) };
}

function podAddressesOf(status: Raw): PodAddress[] {
  const listed = Array.isArray(status.podIPs)
    ? status.podIPs.map((p) => (isObject(p) ? stringAt(p, "ip") : ""))
    : [];
  const texts = listed.length > 0 ? listed : [stringAt(status, "podIP")];
  const out: PodAddress[] = [];
  for (const text of texts) {
    const parsed = parseIP(text);
    if (parsed !== null) out.push({ family: parsed.family, ip: text });
  }
  return out;
}

function protocolOf(value: unknown): Protocol | null {
  if (value === undefined || value === null) return "TCP";
  return PROTOCOLS.find((p) => p === value) ?? null;
}

function namedPortsOf(spec: Raw): NamedPort[] {
  const listOf = (v: unknown): unknown[] => (Array.isArray(v) ? (v as unknown[]) : []);
  const containers = [...listOf(spec.containers), ...listOf(spec.initContainers)];
  const out: NamedPort[] = [];
  for (const container of containers) {
    const ports = isObject(container) && Array.isArray(container.ports) ? container.ports : [];
    for (const port of ports) {
      if (!isObject(port)) continue;
      const name = stringAt(port, "name");
      const number = port.containerPort;
      const protocol = protocolOf(port.protocol);
      if (name === "" || typeof number !== "number" || protocol === null) continue;
      out.push({ name, port: number, protocol });
    }
  }
  return out;
}

/** A Pod view, or null when the object is not one. */
export function podViewOf(object: unknown): PodView | null {
  const id = identityOf(object);
  if (id === null || id.namespace === "") return null;
  const spec = objectAt(object, "spec");
  const status = objectAt(object, "status");
  const phase = stringAt(status, "phase");
  return {
    namespace: id.namespace,
    name: id.name,
    labels: labelsOf(id.metadata),
    nodeName: stringAt(spec, "nodeName"),
    hostNetwork: spec.hostNetwork === true,
    ips: podAddressesOf(status),
    namedPorts: namedPortsOf(spec),
    finished: phase === "Succeeded" || phase === "Failed",
  };
}

/** Collects what is wrong while a policy is read. */
class Problems {
  readonly list: string[] = [];
  add(message: string): void {
    this.list.push(message);
  }
}

const OPERATORS = ["In", "NotIn", "Exists", "DoesNotExist"] as const;

/** A label selector, or null (with a problem) when it cannot be read. */
function selectorOf(value: unknown, where: string, problems: Problems): LabelSelector | null {
  if (!isObject(value)) {
    problems.add(`${where} is not a label selector`);
    return null;
  }
  const raw0 = value.matchLabels ?? {};
  if (!isObject(raw0) || Object.values(raw0).some((v) => typeof v !== "string")) {
    problems.add(`${where}.matchLabels must map label keys to string values`);
    return null;
  }
  const matchLabels = labelsOf({ labels: raw0 });
  const expressions: SelectorRequirement[] = [];
  const raw = Array.isArray(value.matchExpressions) ? value.matchExpressions : [];
  for (const [i, term] of raw.entries()) {
    const operator = isObject(term) ? OPERATORS.find((o) => o === term.operator) : undefined;
    const key = isObject(term) ? stringAt(term, "key") : "";
    const values =
      isObject(term) && Array.isArray(term.values)
        ? term.values.filter((v): v is string => typeof v === "string")
        : [];
    if (operator === undefined || key === "") {
      problems.add(
        `${where}.matchExpressions[${i}] needs a key and an operator (In, NotIn, Exists or DoesNotExist)`,
      );
      return null;
    }
    if ((operator === "In" || operator === "NotIn") && values.length === 0) {
      problems.add(`${where}.matchExpressions[${i}]: operator ${operator} needs values`);
      return null;
    }
    expressions.push({ key, operator, values });
  }
  return { matchLabels, matchExpressions: expressions };
}

/** An IANA service name, as the API validates a named port (IsValidPortName). */
function isPortName(name: string): boolean {
  return (
    name.length >= 1 &&
    name.length <= 15 &&
    /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(name) &&
    !name.includes("--") &&
    /[a-z]/.test(name)
  );
}

function portOf(value: unknown, where: string, problems: Problems): PolicyPort | null {
  if (!isObject(value)) return { protocol: "TCP", port: null, endPort: null };
  const protocol = protocolOf(value.protocol);
  if (protocol === null) {
    problems.add(`${where}.protocol "${String(value.protocol)}" is not TCP, UDP or SCTP`);
    return null;
  }
  const port = value.port ?? null;
  const endPort = value.endPort ?? null;
  const valid = (n: unknown): n is number =>
    typeof n === "number" && Number.isInteger(n) && n >= 1 && n <= 65535;
  if (typeof port === "string") {
    if (!isPortName(port)) {
      problems.add(
        `${where}.port "${port}" is not a port name (1-15 lowercase letters, digits and "-")`,
      );
      return null;
    }
    if (endPort !== null) {
      problems.add(`${where}.endPort needs a numeric port, not "${port}"`);
      return null;
    }
    return { protocol, port, endPort: null };
  }
  if (port !== null && !valid(port)) {
    problems.add(`${where}.port ${JSON.stringify(port)} is not a port number (1-65535) or name`);
    return null;
  }
  if (endPort !== null && (!valid(endPort) || port === null || endPort < port)) {
    problems.add(
      `${where}.endPort ${JSON.stringify(endPort)} must be a port number at or above port`,
    );
    return null;
  }
  return { protocol, port, endPort };
}

function cidrOf(text: unknown, where: string, problems: Problems): IPNet | null {
  const net = typeof text === "string" ? IPNet.parse(text) : null;
  if (net === null)
    problems.add(`${where} ${JSON.stringify(text)} is not a CIDR such as "10.0.0.0/8"`);
  return net;
}

function ipBlockOf(value: Raw, where: string, problems: Problems): PolicyPeer | null {
  const cidr = cidrOf(value.cidr, `${where}.cidr`, problems);
  if (cidr === null) return null;
  const except: IPNet[] = [];
  const raw = Array.isArray(value.except) ? value.except : [];
  for (const [i, text] of raw.entries()) {
    const net = cidrOf(text, `${where}.except[${i}]`, problems);
    if (net === null) return null;
    if (!cidr.containsNet(net)) {
      problems.add(
        `${where}.except[${i}] "${net.toString()}" is not inside cidr "${cidr.toString()}"`,
      );
      return null;
    }
    except.push(net);
  }
  return { kind: "ipBlock", cidr, except };
}

function peerOf(value: unknown, where: string, problems: Problems): PolicyPeer | null {
  if (!isObject(value)) {
    problems.add(`${where} is not a peer`);
    return null;
  }
  if (isObject(value.ipBlock)) return ipBlockOf(value.ipBlock, `${where}.ipBlock`, problems);
  const hasPods = value.podSelector !== undefined && value.podSelector !== null;
  const hasNamespaces = value.namespaceSelector !== undefined && value.namespaceSelector !== null;
  if (!hasPods && !hasNamespaces) {
    problems.add(`${where} names no podSelector, namespaceSelector or ipBlock`);
    return null;
  }
  const podSelector = hasPods
    ? selectorOf(value.podSelector, `${where}.podSelector`, problems)
    : null;
  const namespaceSelector = hasNamespaces
    ? selectorOf(value.namespaceSelector, `${where}.namespaceSelector`, problems)
    : null;
  if ((hasPods && podSelector === null) || (hasNamespaces && namespaceSelector === null))
    return null;
  return { kind: "pods", podSelector, namespaceSelector };
}

function listOf<T>(
  value: unknown,
  where: string,
  read: (item: unknown, where: string) => T | null,
): T[] | null {
  if (!Array.isArray(value) || value.length === 0) return null; // absent or empty: everyone
  const out: T[] = [];
  for (const [i, item] of value.entries()) {
    const read1 = read(item, `${where}[${i}]`);
    if (read1 !== null) out.push(read1);
  }
  return out;
}

function rulesOf(
  value: unknown,
  direction: "ingress" | "egress",
  problems: Problems,
): PolicyRule[] {
  if (!Array.isArray(value)) return [];
  const peersKey = direction === "ingress" ? "from" : "to";
  return value.map((raw, i) => {
    const rule = isObject(raw) ? raw : {};
    const where = `spec.${direction}[${i}]`;
    // client-node's typed lists name `from` `_from` (a reserved word in its generator).
    const peers = rule[peersKey] ?? rule[`_${peersKey}`];
    return {
      peers: listOf(peers, `${where}.${peersKey}`, (p, w) => peerOf(p, w, problems)),
      ports: listOf(rule.ports, `${where}.ports`, (p, w) => portOf(p, w, problems)),
    };
  });
}

/** Which directions a policy isolates: policyTypes, or Ingress plus Egress when it has egress rules. */
function isolationOf(spec: Raw): { ingress: boolean; egress: boolean } {
  const types = Array.isArray(spec.policyTypes) ? spec.policyTypes : null;
  if (types === null || types.length === 0)
    return { ingress: true, egress: Array.isArray(spec.egress) && spec.egress.length > 0 };
  return { ingress: types.includes("Ingress"), egress: types.includes("Egress") };
}

/**
 * A NetworkPolicy view; null when the object is not one or its podSelector cannot be read (then
 * the caller cannot know which pods it selects, and warns).
 */
export function networkPolicyViewOf(
  object: unknown,
): { policy: NetworkPolicyView | null; problems: readonly string[] } | null {
  const id = identityOf(object);
  if (id === null || id.namespace === "") return null;
  const problems = new Problems();
  if (!isObject((object as Raw).spec)) {
    problems.add("spec is not an object");
    return { policy: null, problems: problems.list };
  }
  const spec = objectAt(object, "spec");
  const podSelector = selectorOf(spec.podSelector ?? {}, "spec.podSelector", problems);
  if (podSelector === null) return { policy: null, problems: problems.list };
  const ingress = rulesOf(spec.ingress, "ingress", problems);
  const egress = rulesOf(spec.egress, "egress", problems);
  const usable = problems.list.length === 0;
  const policy: NetworkPolicyView = {
    namespace: id.namespace,
    name: id.name,
    podSelector,
    isolates: isolationOf(spec),
    ingress: usable ? ingress : [],
    egress: usable ? egress : [],
    problems: problems.list,
  };
  return { policy, problems: problems.list };
}
