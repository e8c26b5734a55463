/**
 * Choosing the external interface and the public address (flannel's main.go LookupExtIface and
 * pkg/ipmatch): `--iface` (name or address, first match wins), then `--iface-regex` (over
 * addresses, then names), then `--iface-can-reach`; with none of them, the interface that holds
 * `--public-ip`, else the one of the default route.
 *
 * It reads the kernel through /proc and /sys and Node's os.networkInterfaces(). `--iface-can-reach`
 * asks the kernel for the source address of a route with a connected UDP socket, which sends
 * nothing.
 */
import { createSocket } from "node:dgram";
import { readFileSync } from "node:fs";
import { networkInterfaces } from "node:os";
import { InterfaceError } from "../errors.js";
import { parseIP } from "../ip/ip.js";

/** The interface flannel uses to reach other nodes, and the addresses it advertises. */
export interface ExternalInterface {
  readonly name: string;
  readonly index: number;
  readonly mtu: number;
  readonly mac: string;
  /** The interface's own IPv4 address (flannel's IfaceAddr); null when it has none. */
  readonly ifaceAddr: string | null;
  readonly ifaceV6Addr: string | null;
  /**
   * The networks of those addresses, as the interface holds them (`192.168.1.5/24`); null
   * without the address. host-gw's gateways must lie in them.
   */
  readonly ifaceNet: string | null;
  readonly ifaceV6Net: string | null;
  /** The address other nodes use (flannel's ExtAddr): --public-ip, else ifaceAddr. */
  readonly extAddr: string | null;
  readonly extV6Addr: string | null;
}

/** The --iface* and --public-ip* flags that steer the choice. */
export interface InterfaceChoice {
  readonly iface: readonly string[];
  readonly ifaceRegex: readonly string[];
  readonly ifaceCanReach: string;
  readonly publicIP: string;
  readonly publicIPv6: string;
  readonly enableIPv4: boolean;
  readonly enableIPv6: boolean;
}

/**
 * The choice flanneld's flags make, with the public addresses the store imposes over
 * --public-ip[v6] (Kubernetes mode's node-public-ip annotations), for the config's families.
 */
export function interfaceChoiceOf(
  flags: Pick<
    InterfaceChoice,
    "iface" | "ifaceRegex" | "ifaceCanReach" | "publicIP" | "publicIPv6"
  >,
  imposed: { readonly v4: string | null; readonly v6: string | null },
  families: Pick<InterfaceChoice, "enableIPv4" | "enableIPv6">,
): InterfaceChoice {
  return {
    iface: flags.iface,
    ifaceRegex: flags.ifaceRegex,
    ifaceCanReach: flags.ifaceCanReach,
    publicIP: imposed.v4 ?? flags.publicIP,
    publicIPv6: imposed.v6 ?? flags.publicIPv6,
    enableIPv4: families.enableIPv4,
    enableIPv6: families.enableIPv6,
  };
}

interface HostInterface {
  readonly name: string;
  readonly mac: string;
  readonly v4: readonly string[];
  readonly v6: readonly string[];
  /** Each address's CIDR (`10.0.0.5/24`). */
  readonly cidrs: ReadonlyMap<string, string>;
}

function listInterfaces(): HostInterface[] {
  const out: HostInterface[] = [];
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    if (addrs === undefined) continue;
    // Global addresses first, link-local last, as flannel's compareAddrs orders them.
    const rank = (a: string) => (a.startsWith("fe80:") ? 1 : 0);
    const v4 = addrs.filter((a) => a.family === "IPv4" && !a.internal).map((a) => a.address);
    const v6 = addrs
      .filter((a) => a.family === "IPv6" && !a.internal && a.scopeid === 0)
      .map((a) => a.address)
      .sort((a, b) => rank(a) - rank(b));
    const cidrs = new Map(addrs.flatMap((a) => (a.cidr === null ? [] : [[a.address, a.cidr]])));
    out.push({ name, mac: addrs[0]?.mac ?? "00:00:00:00:00:00", v4, v6, cidrs });
  }
  return out;
}

function readSysNumber(name: string, file: string): number {
  try {
    return Number(readFileSync(`/sys/class/net/${name}/${file}`, "utf8").trim());
  } catch (err) {
    throw new InterfaceError(
      `Cannot read ${file} of interface "${name}": ${(err as Error).message}`,
      { cause: err },
    );
  }
}

/** The interface that holds the IPv4 default route with the lowest metric; null when none. */
export function defaultRouteInterface(family: 4 | 6 = 4): string | null {
  let text: string;
  try {
    text = readFileSync(family === 4 ? "/proc/net/route" : "/proc/net/ipv6_route", "utf8");
  } catch {
    return null;
  }
  let best: { name: string; metric: number } | null = null;
  const lines = family === 4 ? text.split("\n").slice(1) : text.split("\n");
  for (const line of lines) {
    const f = line.trim().split(/\s+/);
    let name: string | undefined;
    let metric: number;
    if (family === 4) {
      const [dev, destination, , , , , m, mask] = f;
      if (dev === undefined || destination !== "00000000" || mask !== "00000000") continue;
      name = dev;
      metric = Number(m);
    } else {
      // dest, prefix length, source, source length, next hop, metric, refs, use, flags, device
      const [destination, length, , , , m, , , flags, dev] = f;
      const reject = (parseInt(flags ?? "0", 16) & RTF_REJECT) !== 0;
      if (dev === undefined || dev === "lo" || reject) continue;
      if (destination !== "0".repeat(32) || length !== "00") continue;
      name = dev;
      metric = parseInt(m ?? "0", 16);
    }
    if (best === null || metric < best.metric) best = { name, metric };
  }
  return best?.name ?? null;
}

const RTF_REJECT = 0x0200;

/** The local source address the kernel would use to reach `address`; nothing is sent. */
export async function sourceAddressFor(address: string): Promise<string> {
  const parsed = parseIP(address);
  if (parsed === null)
    throw new InterfaceError(`Cannot use --iface-can-reach "${address}": expected an IP address`);
  const socket = createSocket(parsed.family === 4 ? "udp4" : "udp6");
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.connect(9, address, () => {
        resolve();
      });
    });
    return socket.address().address;
  } catch (err) {
    throw new InterfaceError(
      `Cannot find a route to ${address} for --iface-can-reach: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  } finally {
    socket.close();
  }
}

function byAddress(all: readonly HostInterface[], address: string): HostInterface | undefined {
  return all.find((i) => i.v4.includes(address) || i.v6.includes(address));
}

async function pick(choice: InterfaceChoice): Promise<HostInterface> {
  const all = listInterfaces();
  const wantsChoice =
    choice.iface.length > 0 || choice.ifaceRegex.length > 0 || choice.ifaceCanReach !== "";
  if (!wantsChoice) {
    if (choice.publicIP !== "") {
      const holder = byAddress(all, choice.publicIP);
      if (holder !== undefined) return holder;
    }
    // flannel's rule: IPv4's default route names the interface (IPv6's on an IPv6-only
    // network), and with both families the two default routes must use the same one.
    const v4 = choice.enableIPv4 ? defaultRouteInterface(4) : null;
    const v6 = choice.enableIPv6 ? defaultRouteInterface(6) : null;
    if (v4 !== null && v6 !== null && v4 !== v6) {
      throw new InterfaceError(
        `Cannot choose the external interface: the IPv4 default route uses ${v4} and the IPv6 one ${v6}; pass --iface (name or address) to say which carries flannel's traffic`,
      );
    }
    const name = v4 ?? v6;
    const found = all.find((i) => i.name === name);
    if (found === undefined) {
      throw new InterfaceError(
        `Cannot choose the external interface: this host has no ${choice.enableIPv4 ? "IPv4" : "IPv6"} default route: pass --iface (name or address), --iface-regex or --iface-can-reach`,
      );
    }
    return found;
  }
  for (const want of choice.iface) {
    const found = parseIP(want) !== null ? byAddress(all, want) : all.find((i) => i.name === want);
    if (found !== undefined) return found;
  }
  for (const pattern of choice.ifaceRegex) {
    let re: RegExp;
    try {
      re = new RegExp(pattern);
    } catch (err) {
      throw new InterfaceError(`Cannot use --iface-regex "${pattern}": ${(err as Error).message}`, {
        cause: err,
      });
    }
    const found =
      all.find((i) => [...i.v4, ...i.v6].some((a) => re.test(a))) ??
      all.find((i) => re.test(i.name));
    if (found !== undefined) return found;
  }
  if (choice.ifaceCanReach !== "") {
    const source = await sourceAddressFor(choice.ifaceCanReach);
    const found = byAddress(all, source);
    if (found !== undefined) return found;
  }
  const names = all.map((i) => i.name).join(", ");
  throw new InterfaceError(
    `Cannot choose the external interface: none matches --iface [${choice.iface.join(", ")}], --iface-regex [${choice.ifaceRegex.join(", ")}] or --iface-can-reach "${choice.ifaceCanReach}": interfaces here are ${names}`,
  );
}

/** Finds the external interface and the addresses to advertise, as flanneld does at start. */
export async function lookupExternalInterface(choice: InterfaceChoice): Promise<ExternalInterface> {
  for (const [flag, value, family] of [
    ["--public-ip", choice.publicIP, 4],
    ["--public-ipv6", choice.publicIPv6, 6],
  ] as const) {
    if (value !== "" && parseIP(value)?.family !== family) {
      throw new InterfaceError(`Cannot use ${flag} "${value}": expected an IPv${family} address`);
    }
  }
  const chosen = await pick(choice);
  // With --iface given as an address, that address is the interface address.
  const givenV4 = choice.iface.find((a) => chosen.v4.includes(a));
  const givenV6 = choice.iface.find((a) => chosen.v6.includes(a));
  const ifaceAddr = givenV4 ?? chosen.v4[0] ?? null;
  const ifaceV6Addr = givenV6 ?? chosen.v6[0] ?? null;
  if (choice.enableIPv4 && ifaceAddr === null) {
    throw new InterfaceError(
      `Cannot use interface "${chosen.name}": failed to find IPv4 address for interface ${chosen.name}`,
    );
  }
  if (choice.enableIPv6 && ifaceV6Addr === null) {
    throw new InterfaceError(
      `Cannot use interface "${chosen.name}": failed to find IPv6 address for interface ${chosen.name}`,
    );
  }
  const mtu = readSysNumber(chosen.name, "mtu");
  if (!(mtu > 0))
    throw new InterfaceError(
      `Cannot use interface "${chosen.name}": failed to determine MTU for ${chosen.name} interface`,
    );
  return {
    name: chosen.name,
    index: readSysNumber(chosen.name, "ifindex"),
    mtu,
    mac: chosen.mac,
    ifaceAddr,
    ifaceV6Addr,
    ifaceNet: ifaceAddr === null ? null : (chosen.cidrs.get(ifaceAddr) ?? null),
    ifaceV6Net: ifaceV6Addr === null ? null : (chosen.cidrs.get(ifaceV6Addr) ?? null),
    extAddr: choice.publicIP !== "" ? choice.publicIP : ifaceAddr,
    extV6Addr: choice.publicIPv6 !== "" ? choice.publicIPv6 : ifaceV6Addr,
  };
}
