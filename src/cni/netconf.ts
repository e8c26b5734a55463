/**
 * The flannel CNI plugin's input (flannel-io/cni-plugin flannel.go): its network config and the
 * host's subnet.env, and the delegate config built from them (flannel_linux.go doCmdAdd).
 * Plain TypeScript without schema libraries: the plugin starts once per pod, so its imports
 * are kept light.
 */
import { readFileSync } from "node:fs";
import { parseEnvFile } from "../config/subnet_env.js";
import { IPNet, formatIP, parseIP } from "../ip/ip.js";
import { CniCode, CniError } from "./cni_error.js";

/** flannel's default subnet.env and state folder. */
export const DEFAULT_SUBNET_FILE = "/run/flannel/subnet.env";
export const DEFAULT_DATA_DIR = "/var/lib/cni/flannel";

type JsonObject = Record<string, unknown>;

/** The plugin's network config (`"type": "flannel"`). */
export interface FlannelNetConf {
  readonly name: string;
  readonly cniVersion: string;
  readonly subnetFile: string;
  readonly dataDir: string;
  readonly delegate: JsonObject | null;
  readonly ipam: JsonObject | null;
  readonly runtimeConfig: JsonObject | null;
  /** The whole config as given, for CHECK's prevResult. */
  readonly raw: JsonObject;
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function optionalObject(conf: JsonObject, key: string): JsonObject | null {
  const value = conf[key];
  if (value === undefined || value === null) return null;
  if (!isObject(value))
    throw new CniError(
      CniCode.InvalidNetworkConfig,
      `failed to load netconf: "${key}" must be a JSON object`,
    );
  return value;
}

function optionalString(conf: JsonObject, key: string, fallback: string): string {
  const value = conf[key];
  if (value === undefined || value === null || value === "") return fallback;
  if (typeof value !== "string")
    throw new CniError(
      CniCode.InvalidNetworkConfig,
      `failed to load netconf: "${key}" must be a string`,
    );
  return value;
}

/** Decodes the network config from stdin. */
export function parseNetConf(stdin: string): FlannelNetConf {
  let raw: unknown;
  try {
    raw = JSON.parse(stdin);
  } catch (err) {
    throw new CniError(
      CniCode.DecodingFailure,
      "failed to load netconf: the network config on stdin is not valid JSON",
      (err as Error).message,
    );
  }
  if (!isObject(raw))
    throw new CniError(
      CniCode.DecodingFailure,
      "failed to load netconf: expected a JSON object on stdin",
    );
  const name = optionalString(raw, "name", "");
  if (name === "") {
    throw new CniError(
      CniCode.InvalidNetworkConfig,
      'failed to load netconf: "name" is missing: the network config needs the network\'s name, such as "cbr0"',
    );
  }
  return {
    name,
    cniVersion: optionalString(raw, "cniVersion", ""),
    subnetFile: optionalString(raw, "subnetFile", DEFAULT_SUBNET_FILE),
    dataDir: optionalString(raw, "dataDir", DEFAULT_DATA_DIR),
    delegate: optionalObject(raw, "delegate"),
    ipam: optionalObject(raw, "ipam"),
    runtimeConfig: optionalObject(raw, "runtimeConfig"),
    raw,
  };
}

/**
 * One `ipam.routes` entry decoded and encoded again as flannel's plugin does through CNI's
 * types.Route: `dst` a CIDR (its address kept as given, as types.ParseCIDR keeps it), `gw` an
 * optional address, anything else dropped.
 */
function decodeRoute(route: unknown, index: number): JsonObject {
  const bad = (why: string) =>
    new CniError(
      CniCode.InvalidNetworkConfig,
      `failed to assemble Delegate IPAM: failed to read IPAM routes: ipam.routes[${index}] ${why}: expected {"dst": "10.0.0.0/8", "gw": "10.244.1.1"} with "gw" optional`,
    );
  if (!isObject(route)) throw bad("is not an object");
  const dst = route.dst;
  if (typeof dst !== "string") throw bad('has no "dst"');
  const slash = dst.indexOf("/");
  const ip = slash < 0 ? null : parseIP(dst.slice(0, slash));
  const net = IPNet.parse(dst);
  if (ip === null || net === null) throw bad(`has "dst" ${JSON.stringify(dst)}, not a CIDR`);
  const out: JsonObject = { dst: `${formatIP(ip.family, ip.value)}/${net.prefixLen}` };
  const gw = route.gw;
  if (gw !== undefined && gw !== null && gw !== "") {
    const parsed = typeof gw === "string" ? parseIP(gw) : null;
    if (parsed === null) throw bad(`has "gw" ${JSON.stringify(gw)}, not an IP address`);
    out.gw = formatIP(parsed.family, parsed.value);
  }
  return out;
}

/** What the plugin reads from subnet.env. Networks may be comma lists, as flannel allows. */
export interface FlannelSubnetEnv {
  readonly networks: readonly IPNet[];
  readonly subnet: IPNet | null;
  readonly ipv6Networks: readonly IPNet[];
  readonly ipv6Subnet: IPNet | null;
  readonly mtu: number;
  readonly ipMasq: boolean;
}

/** Reads subnet.env. A missing file is "try again later": flanneld has not started here yet. */
export function loadSubnetEnv(path: string): FlannelSubnetEnv {
  const hint = "Check that flanneld runs on this host and has written it";
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") {
      throw new CniError(
        CniCode.TryAgainLater,
        `failed to load flannel 'subnet.env' file: ${path} does not exist yet. ${hint}.`,
      );
    }
    throw new CniError(
      CniCode.IOFailure,
      `failed to load flannel 'subnet.env' file: cannot read ${path}: ${(err as Error).message}. ${hint}.`,
    );
  }
  const env = parseEnvFile(text);
  const bad = (key: string, value: string, expected: string) =>
    new CniError(
      CniCode.InvalidNetworkConfig,
      `failed to load flannel 'subnet.env' file: ${path} has ${key}="${value}", expected ${expected}. ${hint}.`,
    );
  const cidrs = (key: string, family: 4 | 6): IPNet[] => {
    const value = env.get(key);
    if (value === undefined || value === "") return [];
    const out: IPNet[] = [];
    for (const part of value.split(",")) {
      const net = IPNet.parse(part.trim());
      if (net === null || net.family !== family) throw bad(key, value, `IPv${family} CIDR(s)`);
      if (!out.some((known) => known.equals(net))) out.push(net);
    }
    return out;
  };
  const networks = cidrs("FLANNEL_NETWORK", 4);
  const subnets = cidrs("FLANNEL_SUBNET", 4);
  const ipv6Networks = cidrs("FLANNEL_IPV6_NETWORK", 6);
  const ipv6Subnets = cidrs("FLANNEL_IPV6_SUBNET", 6);
  const mtuText = env.get("FLANNEL_MTU");
  const masqText = env.get("FLANNEL_IPMASQ");
  const missing: string[] = [];
  if (networks.length === 0 && ipv6Networks.length === 0)
    missing.push("FLANNEL_NETWORK", "FLANNEL_IPV6_NETWORK");
  if (subnets.length === 0 && ipv6Subnets.length === 0)
    missing.push("FLANNEL_SUBNET", "FLANNEL_IPV6_SUBNET");
  if (mtuText === undefined) missing.push("FLANNEL_MTU");
  if (masqText === undefined) missing.push("FLANNEL_IPMASQ");
  if (missing.length > 0) {
    throw new CniError(
      CniCode.InvalidNetworkConfig,
      `failed to load flannel 'subnet.env' file: ${path} is missing ${missing.join(", ")}. ${hint}.`,
    );
  }
  if (masqText !== "true" && masqText !== "false")
    throw bad("FLANNEL_IPMASQ", masqText ?? "", "true or false");
  const mtu = Number(mtuText);
  if (!/^\d+$/.test(mtuText ?? "") || mtu < 68 || mtu > 65535)
    throw bad("FLANNEL_MTU", mtuText ?? "", "an MTU from 68 to 65535");
  return {
    networks,
    subnet: subnets[0] ?? null,
    ipv6Networks,
    ipv6Subnet: ipv6Subnets[0] ?? null,
    mtu,
    ipMasq: masqText === "true",
  };
}

/** Checks the `delegate` dictionary with flannel's words. */
export function checkDelegate(delegate: JsonObject | null): void {
  if (delegate === null) return;
  if ("type" in delegate && typeof delegate.type !== "string") {
    throw new CniError(
      CniCode.InvalidNetworkConfig,
      "'delegate' dictionary, if present, must have (string) 'type' field",
    );
  }
  if ("name" in delegate) {
    throw new CniError(
      CniCode.InvalidNetworkConfig,
      "'delegate' dictionary must not have 'name' field, it'll be set by flannel",
    );
  }
  if ("ipam" in delegate) {
    throw new CniError(
      CniCode.InvalidNetworkConfig,
      "'delegate' dictionary must not have 'ipam' field, it'll be set by flannel",
    );
  }
}

/** Builds the delegate config exactly as flannel does (flannel_linux.go doCmdAdd, getDelegateIPAM). */
export function buildDelegateConf(conf: FlannelNetConf, env: FlannelSubnetEnv): JsonObject {
  checkDelegate(conf.delegate);
  const delegate: JsonObject = { ...(conf.delegate ?? {}) };
  if (conf.runtimeConfig !== null) delegate.runtimeConfig = conf.runtimeConfig;
  delegate.name = conf.name;
  if (!("type" in delegate)) delegate.type = "bridge";
  if (!("ipMasq" in delegate)) delegate.ipMasq = !env.ipMasq; // flannel masquerades, or the bridge does
  if (!("mtu" in delegate)) delegate.mtu = env.mtu;
  if (delegate.type === "bridge" && !("isGateway" in delegate)) delegate.isGateway = true;
  if (conf.cniVersion !== "") delegate.cniVersion = conf.cniVersion;

  const ipam: JsonObject = { ...(conf.ipam ?? {}) };
  if (!("type" in ipam)) ipam.type = "host-local";
  const ranges: JsonObject[][] = [];
  if (env.subnet !== null) ranges.push([{ subnet: env.subnet.toString() }]);
  if (env.ipv6Subnet !== null) ranges.push([{ subnet: env.ipv6Subnet.toString() }]);
  ipam.ranges = ranges;
  const givenRoutes = conf.ipam?.routes;
  if (givenRoutes !== undefined && !Array.isArray(givenRoutes)) {
    throw new CniError(
      CniCode.InvalidNetworkConfig,
      'failed to assemble Delegate IPAM: failed to read IPAM routes: "ipam.routes" must be a list such as [{"dst": "0.0.0.0/0"}]',
    );
  }
  ipam.routes = [
    ...((givenRoutes as unknown[] | undefined) ?? []).map(decodeRoute),
    ...[...env.networks, ...env.ipv6Networks].map((net) => ({ dst: net.toString() })),
  ];
  delegate.ipam = ipam;
  return delegate;
}
