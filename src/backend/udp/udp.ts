/**
 * The udp backend (flannel's pkg/backend/udp), packet for packet compatible with flannel hosts.
 *
 * Per host: a TUN device `flannel0` with `<subnet IP>/32`, MTU = interface MTU - 28 (IPv4 and
 * UDP headers), up, and a route for the whole Network through it; a UDP socket on the interface
 * address, port `Port` (8285). Each IPv4 packet the kernel routes into flannel0 goes as one UDP
 * datagram, with no header of ours, to the public IP of the host whose lease covers its
 * destination; datagrams from hosts are written into flannel0. The lease has no BackendType and
 * no BackendData, byte for byte as flannel writes it; peers' leases with no type or "udp" are
 * followed. The packet loop (forwarder.ts, native/udp_forwarder/) runs on threads of its own;
 * RouteNetwork keeps the device's route in the kernel and tells the loop the leases.
 */
import { availableParallelism } from "node:os";
import * as z from "zod";
import { formatIssues, goJson } from "../../config/go_json.js";
import type { NetworkConfig } from "../../config/network_config.js";
import { ConfigError } from "../../errors.js";
import { parseIPv4 } from "../../ip/ip.js";
import type { IPNet } from "../../ip/ip.js";
import { hasIPv4 } from "../../lease/lease.js";
import { peerLeaseRulesOf } from "../../lease/peer_rules.js";
import type { Lease } from "../../lease/lease.js";
import type { KernelEntry, Link, Netlink } from "../../net/netlink.js";
import { setDeviceSysctl } from "../../net/sysctl.js";
import type { CallOptions } from "../../util/call_options.js";
import type { Backend, BackendDeps, Network, PlaneInspector } from "../backend.js";
import { ensureSubnetAddress } from "../device_address.js";
import type { DeviceAddress } from "../device_address.js";
import { listOwnedRoutes } from "../owned_routes.js";
import { RouteNetwork, inspectEntries, servesLease } from "../route_network.js";
import type { DataPlane } from "../route_network.js";
import { UdpForwarder } from "./forwarder.js";
import type { ForwardHop, ForwarderStats } from "./forwarder.js";

/** What flannel subtracts from the interface MTU: an IPv4 and a UDP header. */
export const UDP_OVERHEAD = 28;
/** flannel's default udp port. */
export const DEFAULT_UDP_PORT = 8285;
/**
 * Packet-loop threads by default (each on its own TUN queue), fewer on a host with fewer CPUs:
 * with offloads, two gave 4 to 11 % more than one on a 2-core host; without them, nothing.
 */
const DEFAULT_WORKERS = 2;
/** The TUN device, as flannel names it (`flannel%d`, which is flannel0 on a host). */
export const TUN_NAME = "flannel0";

const UdpConfigSchema = goJson({
  Port: z
    .number()
    .int()
    .min(1, "expected a UDP port from 1 to 65535")
    .max(65_535, "expected a UDP port from 1 to 65535")
    .default(DEFAULT_UDP_PORT),
  // flannel-ts only (flannel ignores unknown keys): TUN offloads (TSO in, UDP GSO/GRO out and
  // back), and packet-loop threads, each on a TUN queue.
  Offload: z.boolean().default(true),
  Workers: z
    .number()
    .int()
    .min(1, "expected 1 to 16 workers")
    .max(16, "expected 1 to 16 workers")
    .default(() => Math.min(DEFAULT_WORKERS, availableParallelism())),
});

/** The udp options of the Backend object. */
export type UdpConfig = z.infer<typeof UdpConfigSchema>;

/** Decodes the Backend object's udp options (keys in any case, as in Go). */
export function parseUdpConfig(backend: Readonly<Record<string, unknown>>): UdpConfig {
  const parsed = UdpConfigSchema.safeParse(backend);
  if (!parsed.success)
    throw new ConfigError(`Invalid udp backend config: ${formatIssues(parsed.error)}`);
  return parsed.data;
}

/** The network of the udp backend: RouteNetwork for the kernel, plus the packet loop. */
class UdpNetwork implements Network {
  readonly #routes: RouteNetwork<Link | null>;
  readonly #forwarder: UdpForwarder;

  constructor(routes: RouteNetwork<Link | null>, forwarder: UdpForwarder) {
    this.#routes = routes;
    this.#forwarder = forwarder;
  }

  get lease(): Lease {
    return this.#routes.lease;
  }

  get mtu(): number {
    return this.#routes.mtu;
  }

  get stats() {
    return this.#routes.stats;
  }

  get forwarding(): ForwarderStats {
    return this.#forwarder.stats;
  }

  async run(opts: CallOptions): Promise<void> {
    try {
      await this.#routes.run(opts);
    } finally {
      this.#forwarder.stop();
    }
  }
}

/** The one route udp needs whatever the leases: the whole Network through the TUN device. */
function networkRoute(network: IPNet, tun: Link): KernelEntry {
  return {
    kind: "route",
    route: { dst: network.toString(), gateway: null, linkIndex: tun.index, onlink: false },
  };
}

/**
 * The udp data plane's kernel side: the Network's route through the TUN device that `prepare`
 * gives (flanneld makes it; doctor only finds it, and may find none).
 */
function udpPlane(
  netlink: Netlink,
  network: IPNet,
  prepare: () => Promise<Link | null>,
): DataPlane<Link | null> {
  return {
    prepare,
    entriesFor: () => [],
    fixedEntries: (tun) => (tun === null ? [] : [networkRoute(network, tun)]),
    listOwned: (tun) => listOwnedRoutes(netlink, [network], tun === null ? [] : [tun.index]),
    concerns: (change, tun) =>
      (tun !== null && change.linkIndex === tun.index) ||
      (change.kind === "link" && change.removed),
  };
}

/** This host's udp data plane as flannelctl doctor sees it: flannel0 and its one route. */
export const inspectUdp =
  (_cfg: UdpConfig): PlaneInspector =>
  (config, extIface, netlink, lease) => {
    const network = config.network;
    if (network === null)
      throw new ConfigError('Cannot inspect backend "udp": it carries IPv4 only: set Network');
    const mtu = extIface.mtu - UDP_OVERHEAD;
    const plane = udpPlane(netlink, network, () => netlink.getLink(TUN_NAME));
    return {
      devices: [
        {
          name: TUN_NAME,
          kind: "tun",
          mtu,
          mac: null,
          vxlan: null,
          address: lease.subnet === null ? null : `${lease.subnet.ipString}/32`,
        },
      ],
      podMtu: mtu,
      serves: (remote) => servesLease(remote, "udp", [""]),
      entries: (remotes) => inspectEntries(plane, remotes),
    };
  };

/**
 * Makes flannel0 as it must be, again when it was deleted by hand (the workers moved onto the
 * new device, the route written back): MTU, this host's address, accept_local, up.
 */
function tunKeeper(
  deps: BackendDeps,
  forwarder: UdpForwarder,
  address: DeviceAddress,
  mtu: number,
) {
  const { netlink, log } = deps;
  return async (): Promise<Link> => {
    let link = await netlink.getLink(TUN_NAME);
    if (link === null) {
      forwarder.recreateTun();
      link = await netlink.getLink(TUN_NAME);
      if (link === null) throw new Error(`the TUN device ${TUN_NAME} cannot be made again`);
      log.warn({ device: TUN_NAME }, "The TUN device was gone; made it again");
    }
    if (link.mtu !== mtu) {
      await netlink.setLinkMtu(link.index, mtu);
      log.info({ device: TUN_NAME, mtu, was: link.mtu }, "Set TUN device MTU");
    }
    await ensureSubnetAddress(netlink, link.index, address);
    // The forwarder's ICMP errors come from flannel0's own address (as flannel's do); the
    // kernel drops such packets as martians unless the device accepts local sources.
    // flannel never sets this, so its net-unreachable messages are lost.
    if (setDeviceSysctl(TUN_NAME, "accept_local", "1"))
      log.info({ device: TUN_NAME }, "Set accept_local on the TUN device for its ICMP errors");
    if (!link.up) await netlink.setLinkUp(link.index);
    return link;
  };
}

/** The forwarder's next hops: each udp host's subnet and public address. */
function hopsOf(remotes: Iterable<Lease>, port: number): ForwardHop[] {
  const hops: ForwardHop[] = [];
  for (const remote of remotes) {
    // Not a udp host's: no IPv4 subnet or public IP.
    if (!hasIPv4(remote) || parseIPv4(remote.attrs.publicIP) === null) continue;
    hops.push({ subnet: remote.subnet, publicIP: remote.attrs.publicIP, port });
  }
  return hops;
}

/** Makes the udp backend, with its options as parseUdpConfig decoded them. */
export function createUdpBackend(deps: BackendDeps, cfg: UdpConfig): Backend {
  const { extIface, netlink, log } = deps;
  return {
    async registerNetwork(config: NetworkConfig, opts: CallOptions): Promise<Network> {
      const network = config.network;
      if (network === null || extIface.extAddr === null || extIface.ifaceAddr === null) {
        throw new ConfigError(
          'Cannot start backend "udp": it carries IPv4 only: set Network and give the host an IPv4 address',
        );
      }
      const mtu = extIface.mtu - UDP_OVERHEAD;
      const lease = await deps.subnetManager.acquireLease(
        { publicIP: extIface.extAddr, publicIPv6: null, backendType: "" },
        opts,
      );
      if (!hasIPv4(lease))
        throw new ConfigError(
          'Cannot start backend "udp": it carries IPv4 only, and the lease has no IPv4 subnet',
        );
      const forwarder = UdpForwarder.start({
        tunName: TUN_NAME,
        workers: cfg.Workers,
        offload: cfg.Offload,
        bindIP: extIface.ifaceAddr,
        port: cfg.Port,
        subnet: lease.subnet,
        mtu,
        log,
        ...(deps.clock ? { clock: deps.clock } : {}),
      });
      try {
        const ensureDevice = tunKeeper(deps, forwarder, { subnet: lease.subnet, network }, mtu);
        await ensureDevice();
        const { Port: port, Workers: workers } = cfg;
        const started = { device: TUN_NAME, mtu, port, workers, offload: forwarder.offload };
        log.info(started, "udp backend: TUN device and forwarder started");
        const plane: DataPlane<Link | null> = {
          ...udpPlane(netlink, network, ensureDevice),
          leasesChanged: (remotes) => {
            forwarder.setHops(hopsOf(remotes.values(), port));
          },
        };
        const rules = peerLeaseRulesOf(config, deps.extIface);
        const routeDeps = { ...deps, backendType: "udp", alsoAccepts: [""], rules };
        return new UdpNetwork(new RouteNetwork(lease, mtu, routeDeps, plane), forwarder);
      } catch (err) {
        forwarder.stop();
        throw err;
      }
    },
  };
}
