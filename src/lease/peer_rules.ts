/**
 * What makes another host's lease one this host acts on: the one set of rules that flanneld's
 * lease watch (subnet/watch_leases.ts) applies, and that flannelctl doctor judges with, so that
 * the two never disagree about which leases are served.
 *
 * A lease is refused, with a reason naming its field, when its subnet breaks the network's shape
 * (another prefix length than SubnetLen; outside Network or IPv6Network) or when its public
 * address cannot be another host's: unspecified, loopback, multicast, reserved, broadcast, the
 * external interface network's own or broadcast address, or an address of this very host. Anyone who can write the store can write such a lease; flannel accepts them
 * and writes FDB entries to 0.0.0.0 and routes via 127.0.0.1. Two leases naming one public IP
 * stay legal: a host that restarts into a new subnet holds both until the old one expires.
 * What only a backend can judge (a VtepMAC, a host-gw gateway) is refused by its data plane.
 */
import type { NetworkConfig } from "../config/network_config.js";
import type { ExternalInterface } from "../iface/external_interface.js";
import { IPNet, parseIPv4, parseIPv6 } from "../ip/ip.js";
import type { Lease } from "./lease.js";

/** The rules a remote lease is checked against on this host. */
export interface PeerLeaseRules {
  /** The prefix length every IPv4 subnet must have (etcd mode: SubnetLen); null for none. */
  readonly subnetLen: number | null;
  /** The networks subnets must lie in; null where the config has none for that family. */
  readonly network: IPNet | null;
  readonly ipv6Network: IPNet | null;
  /** This host's own addresses: no other host can be reached at one of them. */
  readonly ownAddresses: readonly string[];
  /**
   * The networks of the external interface (`192.168.1.0/24`): their network and broadcast
   * addresses are no host's either.
   */
  readonly localNetworks: readonly IPNet[];
}

/** Why a remote lease is refused: the field at fault and a sentence for logs and the doctor. */
export interface LeaseRefusal {
  readonly rule: "subnet-len" | "outside-network" | "public-ip" | "own-address" | "overlap";
  readonly field: string;
  readonly message: string;
}

/** The SubnetLen a checked config (etcd mode) enforces; null for an unchecked one (Kubernetes). */
export function subnetLenOf(config: NetworkConfig): number | null {
  return config.leaseRanges?.ipv4?.subnetLen ?? null;
}

/** The rules of this network config, on this host's external interface. */
export function peerLeaseRulesOf(
  config: NetworkConfig,
  extIface: Pick<
    ExternalInterface,
    "ifaceAddr" | "ifaceV6Addr" | "extAddr" | "extV6Addr" | "ifaceNet" | "ifaceV6Net"
  >,
): PeerLeaseRules {
  const own = [extIface.ifaceAddr, extIface.ifaceV6Addr, extIface.extAddr, extIface.extV6Addr];
  const nets = [extIface.ifaceNet, extIface.ifaceV6Net].map((n) =>
    n === null ? null : IPNet.parse(n),
  );
  return {
    subnetLen: subnetLenOf(config),
    network: config.enableIPv4 ? config.network : null,
    ipv6Network: config.enableIPv6 ? config.ipv6Network : null,
    ownAddresses: [...new Set(own.filter((a): a is string => a !== null && a !== ""))],
    localNetworks: nets.filter((n): n is IPNet => n !== null),
  };
}

const V4_SPECIAL: readonly [IPNet, string][] = [
  [new IPNet(4, 0n, 8), "in 0.0.0.0/8 (this network: no host's address)"],
  [new IPNet(4, 0x7f000000n, 8), "a loopback address"],
  [new IPNet(4, 0xe0000000n, 4), "a multicast address"],
  [new IPNet(4, 0xffffffffn, 32), "the broadcast address"],
  [new IPNet(4, 0xf0000000n, 4), "in 240.0.0.0/4 (reserved: no host's address)"],
];
const V6_SPECIAL: readonly [IPNet, string][] = [
  [new IPNet(6, 0n, 128), "the unspecified address"],
  [new IPNet(6, 1n, 128), "the loopback address"],
  [new IPNet(6, 0xffn << 120n, 8), "a multicast address"],
];

const OWN_ADDRESS = "is this host's own address (an earlier lease of this host's, or a copy)";

/** Why `address` cannot be another host's public address; null when it can. */
function badPublicAddress(address: string, family: 4 | 6, rules: PeerLeaseRules): string | null {
  const value = family === 4 ? parseIPv4(address) : parseIPv6(address);
  if (value === null) return `is not an IPv${family} address`;
  for (const [net, what] of family === 4 ? V4_SPECIAL : V6_SPECIAL)
    if (net.contains(value)) return `is ${what}`;
  const own = rules.ownAddresses.some((a) => {
    const mine = family === 4 ? parseIPv4(a) : parseIPv6(a);
    return mine !== null && mine === value;
  });
  if (own) return OWN_ADDRESS;
  for (const net of rules.localNetworks) {
    if (net.family !== family || net.bits - net.prefixLen < 2) continue;
    if (value === net.ip) return `is the network address of ${net.toString()}`;
    if (family === 4 && value === net.ip + net.size - 1n)
      return `is the broadcast address of ${net.toString()}`;
  }
  return null;
}

const EXPECTED_PUBLIC = "expected the address other hosts reach that host at";

/**
 * Why this remote lease must not be served under these rules; null when it may. Overlaps with
 * other leases are the lease watch's to judge, as they depend on what it accepted before.
 */
export function refusePeerLease(lease: Lease, rules: PeerLeaseRules): LeaseRefusal | null {
  const { subnet, ipv6Subnet, attrs } = lease;
  if (subnet !== null && rules.subnetLen !== null && subnet.prefixLen !== rules.subnetLen) {
    return {
      rule: "subnet-len",
      field: "subnet",
      message: `its prefix length /${subnet.prefixLen} is not the network's SubnetLen /${rules.subnetLen}`,
    };
  }
  for (const [net, network, name] of [
    [subnet, rules.network, "Network"],
    [ipv6Subnet, rules.ipv6Network, "IPv6Network"],
  ] as const) {
    if (net !== null && network !== null && !network.containsNet(net)) {
      return {
        rule: "outside-network",
        field: "subnet",
        message: `its subnet ${net.toString()} lies outside the network's ${name} ${network.toString()}`,
      };
    }
  }
  const v6Used = ipv6Subnet !== null && (rules.ipv6Network !== null || subnet === null);
  const addresses = [
    ...(subnet !== null ? [["PublicIP", attrs.publicIP, 4] as const] : []),
    ...(v6Used && attrs.publicIPv6 !== null ? [["PublicIPv6", attrs.publicIPv6, 6] as const] : []),
  ];
  for (const [field, address, family] of addresses) {
    const bad = badPublicAddress(address, family, rules);
    if (bad === null) continue;
    return {
      rule: bad === OWN_ADDRESS ? "own-address" : "public-ip",
      field,
      message: `${field} ${JSON.stringify(address)} ${bad}: ${EXPECTED_PUBLIC}`,
    };
  }
  return null;
}
