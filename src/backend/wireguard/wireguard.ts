/**
 * The wireguard backend (flannel's pkg/backend/wireguard), lease for lease compatible with
 * flannel hosts. Per host: a WireGuard device `flannel-wg` (and `flannel-wg-v6` for IPv6 in
 * separate mode), MTU = (MTU or the interface's) - 80, holding `<subnet IP>/32` (`/128`), up,
 * with one link-scope route for the whole Network (and IPv6Network) through it; the private key
 * in /run/flannel/wgkey; the lease `BackendType "wireguard"`, `BackendData {"PublicKey": ...}`.
 * Each other host's lease is one peer: its key, its public address and port, its subnet(s) as
 * AllowedIPs, the PSK and keepalive. RouteNetwork keeps the devices' addresses and routes;
 * PeerSync keeps the peers.
 */
import type { NetworkConfig } from "../../config/network_config.js";
import { ConfigError } from "../../errors.js";
import type { IPNet } from "../../ip/ip.js";
import type { Lease, LeaseAttrs } from "../../lease/lease.js";
import type { ExternalInterface } from "../../iface/external_interface.js";
import type { Logger } from "../../log/logger.js";
import type { Clock } from "../../util/clock.js";
import { peerLeaseRulesOf } from "../../lease/peer_rules.js";
import type { KernelEntry, Link, Netlink } from "../../net/netlink.js";
import type { CallOptions } from "../../util/call_options.js";
import { systemClock } from "../../util/clock.js";
import { runTogether } from "../../util/run_together.js";
import type { Backend, BackendDeps, Network, PlaneInspector, TunnelPeerStats } from "../backend.js";
import { ensureSubnetAddress } from "../device_address.js";
import { listOwnedRoutes } from "../owned_routes.js";
import { RouteNetwork, inspectEntries, servesLease } from "../route_network.js";
import type { DataPlane } from "../route_network.js";
import { WIREGUARD_OVERHEAD } from "./config.js";
import type { WireGuardConfig } from "./config.js";
import { makeDevice } from "./device.js";
import type { DeviceDeps, WireGuardDevice } from "./device.js";
import { keyFileOf, loadOrCreateKeys } from "./keys.js";
import type { HostKeys } from "./keys.js";
import { inspectTunnels } from "./inspect.js";
import { PeerSync } from "./peer_sync.js";
import { isPrivate } from "./peers.js";
import type { DeviceFamily, PeerPlan } from "./peers.js";

export const DEVICE_V4 = "flannel-wg";
export const DEVICE_V6 = "flannel-wg-v6";

/** One device the backend keeps, the family it carries and its port. */
interface DeviceSpec {
  readonly name: string;
  readonly family: DeviceFamily;
  readonly listenPort: number;
  readonly endpointFamily: 4 | 6 | "auto";
}

/** The devices of a mode: separate gives one per family, the others one for both. */
export function deviceSpecs(config: NetworkConfig, cfg: WireGuardConfig): DeviceSpec[] {
  const v4 = config.enableIPv4;
  const v6 = config.enableIPv6;
  if (cfg.mode === "separate")
    return [
      ...(v4
        ? [
            {
              name: DEVICE_V4,
              family: "ipv4" as const,
              listenPort: cfg.listenPort,
              endpointFamily: 4 as const,
            },
          ]
        : []),
      ...(v6
        ? [
            {
              name: DEVICE_V6,
              family: "ipv6" as const,
              listenPort: cfg.listenPortV6,
              endpointFamily: 6 as const,
            },
          ]
        : []),
    ];
  const family: DeviceFamily = v4 && v6 ? "both" : v4 ? "ipv4" : "ipv6";
  const endpointFamily = cfg.mode === "ipv4" ? 4 : cfg.mode === "ipv6" ? 6 : "auto";
  return [{ name: DEVICE_V4, family, listenPort: cfg.listenPort, endpointFamily }];
}

/** The devices as RouteNetwork sees them: each with its link (null while it is remade). */
type Devices = readonly { readonly spec: DeviceSpec; readonly link: Link | null }[];

/** The route for the whole Network (IPv6Network) through each device that carries it. */
function networkRoutes(devices: Devices, config: NetworkConfig): KernelEntry[] {
  const route = (dst: IPNet | null, link: Link): KernelEntry[] =>
    dst === null
      ? []
      : [
          {
            kind: "route",
            route: { dst: dst.toString(), gateway: null, linkIndex: link.index, onlink: false },
          },
        ];
  return devices.flatMap(({ spec, link }) =>
    link === null
      ? []
      : [
          ...(spec.family !== "ipv6" ? route(config.network, link) : []),
          ...(spec.family !== "ipv4" ? route(config.ipv6Network, link) : []),
        ],
  );
}

/** The kernel side: each device's route; `prepare` finds (flanneld: mends) the devices. */
function wireguardPlane(
  netlink: Netlink,
  config: NetworkConfig,
  prepare: () => Promise<Devices>,
): DataPlane<Devices> {
  return {
    prepare,
    entriesFor: () => [],
    entriesForV6: () => [],
    fixedEntries: (devices) => networkRoutes(devices, config),
    listOwned: (devices) =>
      listOwnedRoutes(
        netlink,
        [config.network, config.ipv6Network],
        devices.flatMap(({ link }) => (link === null ? [] : [link.index])),
      ),
    // Any link change: a device removed by hand, or remade by wireguard-go's restart.
    concerns: (change, devices) =>
      change.kind === "link" ||
      devices.some(({ link }) => link !== null && change.linkIndex === link.index),
  };
}

/** Gives a device its MTU, this host's address(es) and up; null while it is missing. */
async function mendDevice(
  netlink: Netlink,
  device: WireGuardDevice,
  spec: DeviceSpec,
  mtu: number,
  lease: Lease,
  config: NetworkConfig,
): Promise<Link | null> {
  const link = await device.link();
  if (link === null) return null;
  if (link.mtu !== mtu) await netlink.setLinkMtu(link.index, mtu);
  if (spec.family !== "ipv6")
    await ensureSubnetAddress(netlink, link.index, {
      subnet: lease.subnet,
      network: config.network,
    });
  if (spec.family !== "ipv4")
    await ensureSubnetAddress(netlink, link.index, {
      subnet: lease.ipv6Subnet,
      network: config.ipv6Network,
    });
  if (!link.up) await netlink.setLinkUp(link.index);
  return link;
}

/** RouteNetwork for the devices' routes, PeerSync for each device's peers. */
class WireGuardNetwork implements Network {
  constructor(
    readonly routes: RouteNetwork<Devices>,
    readonly syncs: readonly PeerSync[],
    readonly devices: readonly WireGuardDevice[],
  ) {}

  get lease(): Lease {
    return this.routes.lease;
  }

  get mtu(): number {
    return this.routes.mtu;
  }

  get stats() {
    return this.routes.stats;
  }

  get tunnelPeers(): TunnelPeerStats[] {
    return this.syncs.flatMap((sync) =>
      (sync.lastState?.peers ?? []).map((p) => ({ device: sync.device.name, ...p })),
    );
  }

  async run(opts: CallOptions): Promise<void> {
    try {
      await runTogether(
        [(o) => this.routes.run(o), ...this.syncs.map((s) => (o: CallOptions) => s.run(o))],
        opts,
      );
    } finally {
      await Promise.all(this.devices.map((d) => d.stop()));
    }
  }
}

/** Checks that the network config and the interface give each family what it needs. */
function checkFamilies(config: NetworkConfig, deps: BackendDeps): void {
  const { extIface } = deps;
  if (config.enableIPv4 && (config.network === null || extIface.extAddr === null))
    throw new ConfigError(
      'Cannot start backend "wireguard": IPv4 needs Network and an IPv4 address on the interface',
    );
  if (config.enableIPv6 && (config.ipv6Network === null || extIface.extV6Addr === null))
    throw new ConfigError(
      'Cannot start backend "wireguard": EnableIPv6 needs IPv6Network and an IPv6 address on the interface',
    );
}

/** A device flanneld keeps, with what it carries. */
interface KeptDevice {
  readonly spec: DeviceSpec;
  readonly device: WireGuardDevice;
}

/**
 * Makes each device; none is left on failure. Its key and port are PeerSync's to set, at its
 * first sync and after each restart of wireguard-go.
 */
async function openDevices(
  specs: readonly DeviceSpec[],
  mtu: number,
  deps: DeviceDeps,
  opts: CallOptions,
): Promise<KeptDevice[]> {
  const kept: KeptDevice[] = [];
  try {
    for (const spec of specs)
      kept.push({ spec, device: await makeDevice(spec.name, mtu, deps, opts) });
    return kept;
  } catch (err) {
    await Promise.all(kept.map(({ device }) => device.stop()));
    throw err;
  }
}

/** The lease's attributes, as flannel writes them: the public key in each family's data. */
function leaseAttrsOf(
  config: NetworkConfig,
  extIface: ExternalInterface,
  publicKey: string,
): LeaseAttrs {
  const data = { PublicKey: publicKey };
  return {
    publicIP: extIface.extAddr ?? "",
    publicIPv6: config.enableIPv6 ? extIface.extV6Addr : null,
    backendType: "wireguard",
    ...(config.enableIPv4 ? { backendData: data } : {}),
    ...(config.enableIPv6 ? { backendV6Data: data } : {}),
  };
}

/** How a device reaches its peers, but for this host's key (flanneld and doctor alike). */
function planOf(
  spec: DeviceSpec,
  cfg: WireGuardConfig,
  extIface: ExternalInterface,
): Omit<PeerPlan, "ownPublicKey"> {
  const v6 = extIface.extV6Addr;
  return {
    family: spec.family,
    endpointFamily: spec.endpointFamily,
    listenPort: spec.listenPort,
    config: cfg,
    publicIPv6Usable: v6 !== null && !isPrivate(v6),
  };
}

/** The peer sync of one device: it also gives the device this host's key and its port. */
function peerSyncOf(
  { spec, device }: KeptDevice,
  cfg: WireGuardConfig,
  keys: HostKeys,
  extIface: ExternalInterface,
  deps: { readonly log: Logger; readonly clock: Clock },
): PeerSync {
  return new PeerSync(
    device,
    { ...planOf(spec, cfg, extIface), ownPublicKey: keys.publicKey },
    {
      privateKey: keys.privateKey.toString("base64"),
      publicKey: keys.publicKey,
      listenPort: spec.listenPort,
    },
    deps,
  );
}

/** Makes the wireguard backend, with its options as parseWireGuardConfig decoded them. */
export function createWireGuardBackend(
  deps: BackendDeps,
  cfg: WireGuardConfig,
  env: NodeJS.ProcessEnv = process.env,
): Backend {
  const { extIface, netlink, log } = deps;
  const clock = deps.clock ?? systemClock;
  return {
    async registerNetwork(config: NetworkConfig, opts: CallOptions): Promise<Network> {
      checkFamilies(config, deps);
      const keys = await loadOrCreateKeys(keyFileOf(env));
      log.info(
        { keyFile: keys.path, publicKey: keys.publicKey, created: keys.created },
        keys.created ? "Made a WireGuard key" : "Read the WireGuard key",
      );
      const mtu = (cfg.mtu ?? extIface.mtu) - WIREGUARD_OVERHEAD;
      const kept = await openDevices(deviceSpecs(config, cfg), mtu, { netlink, log, clock }, opts);
      try {
        const lease = await deps.subnetManager.acquireLease(
          leaseAttrsOf(config, extIface, keys.publicKey),
          opts,
        );
        const syncs = kept.map((k) => peerSyncOf(k, cfg, keys, extIface, { log, clock }));
        const prepare = (): Promise<Devices> =>
          Promise.all(
            kept.map(async ({ spec, device }) => ({
              spec,
              link: await mendDevice(netlink, device, spec, mtu, lease, config),
            })),
          );
        await prepare();
        const plane: DataPlane<Devices> = {
          ...wireguardPlane(netlink, config, prepare),
          leasesChanged: (remotes) => {
            for (const sync of syncs) sync.leasesChanged(remotes.values());
          },
        };
        const rules = peerLeaseRulesOf(config, extIface);
        const routeDeps = { ...deps, backendType: "wireguard", rules };
        const routes = new RouteNetwork(lease, mtu, routeDeps, plane);
        return new WireGuardNetwork(
          routes,
          syncs,
          kept.map((k) => k.device),
        );
      } catch (err) {
        await Promise.all(kept.map(({ device }) => device.stop()));
        throw err;
      }
    },
  };
}

/** This host's wireguard data plane as flannelctl doctor sees it: the devices and their routes. */
export const inspectWireGuard =
  (cfg: WireGuardConfig): PlaneInspector =>
  (config, extIface, netlink, lease) => {
    const mtu = (cfg.mtu ?? extIface.mtu) - WIREGUARD_OVERHEAD;
    const specs = deviceSpecs(config, cfg);
    const plane = wireguardPlane(netlink, config, async () =>
      Promise.all(specs.map(async (spec) => ({ spec, link: await netlink.getLink(spec.name) }))),
    );
    return {
      devices: specs.map((spec) => ({
        name: spec.name,
        kind: "wireguard" as const,
        mtu,
        mac: null,
        vxlan: null,
        address:
          spec.family === "ipv6"
            ? lease.ipv6Subnet === null
              ? null
              : `${lease.ipv6Subnet.ipString}/128`
            : lease.subnet === null
              ? null
              : `${lease.subnet.ipString}/32`,
      })),
      podMtu: mtu,
      serves: (remote) => servesLease(remote, "wireguard"),
      entries: (remotes) => inspectEntries(plane, remotes),
      tunnels: (remotes) =>
        inspectTunnels(
          specs.map((spec) => ({ name: spec.name, plan: planOf(spec, cfg, extIface) })),
          remotes,
          { netlink, keyFile: keyFileOf(), config: cfg },
        ),
    };
  };
