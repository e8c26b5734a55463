/**
 * The vxlan backend (flannel's pkg/backend/vxlan), entry for entry compatible with flannel hosts.
 *
 * Per host: a device `flannel.<VNI>` (kernel VXLAN, id VNI, local = public IP, parent = the
 * external interface, port 8472 unless `Port`, learning off unless `Learning`, GBP when set),
 * MTU = (`MTU` or the interface MTU) - 50, address `<subnet IP>/32`. The lease carries
 * `BackendData {"VNI":1,"VtepMAC":"<mac>"}`. Per remote vxlan lease, as flannel writes them:
 *   neighbour  <remote subnet IP> lladdr <VtepMAC> permanent, on flannel.<VNI>
 *   FDB        <VtepMAC> dst <remote public IP> self permanent, on flannel.<VNI>
 *   route      <remote subnet> via <remote subnet IP> dev flannel.<VNI> onlink
 * With `DirectRouting`, a remote whose public IP is on-link gets `<subnet> via <public IP>` on
 * the external interface instead. With EnableIPv6 the same again for IPv6 on a second device
 * `flannel-v6.<VNI>` (local = public IPv6, `<v6 subnet IP>/128`, accept_ra off), its MAC in the
 * lease's `BackendV6Data`. RouteNetwork keeps these in the kernel.
 */
import * as z from "zod";
import { formatIssues, goJson, goJsonField } from "../../config/go_json.js";
import type { NetworkConfig } from "../../config/network_config.js";
import { ConfigError } from "../../errors.js";
import type { IPNet } from "../../ip/ip.js";
import { primarySubnetOf } from "../../lease/lease.js";
import type { Lease } from "../../lease/lease.js";
import { peerLeaseRulesOf } from "../../lease/peer_rules.js";
import { FLANNEL_ROUTE_PROTOCOL } from "../../net/netlink.js";
import type { KernelEntry, Link, Netlink, Route } from "../../net/netlink.js";
import { lookupRoute } from "../../net/route_lookup.js";
import { setDeviceSysctl } from "../../net/sysctl.js";
import type { CallOptions } from "../../util/call_options.js";
import type {
  Backend,
  BackendDeps,
  ExpectedDevice,
  ExternalInterface,
  Network,
  PlaneInspector,
} from "../backend.js";
import type { DeviceAddress } from "../device_address.js";
import { ipv6SideOf, remoteIPv6Of } from "../dual_stack.js";
import type { IPv6Side } from "../dual_stack.js";
import { listOwnedRoutes } from "../owned_routes.js";
import { RouteNetwork, inspectEntries, servesLease } from "../route_network.js";
import type { DataPlane } from "../route_network.js";
import { ensureVxlanDevice } from "./device.js";
import type { VxlanDeviceSpec } from "./device.js";

/** The VXLAN encapsulation overhead flannel subtracts from the MTU. */
export const VXLAN_OVERHEAD = 50;
/** Over IPv6 the outer header is 20 bytes longer. */
export const VXLAN6_OVERHEAD = 70;

const VxlanConfigSchema = goJson({
  VNI: z.number().int().min(0).max(16_777_215, "expected a VNI from 0 to 16777215").default(1),
  Port: z.number().int().min(0).max(65_535, "expected a UDP port from 0 to 65535").default(0),
  MTU: z
    .number()
    .int()
    .min(68 + VXLAN_OVERHEAD, `expected an MTU of at least ${68 + VXLAN_OVERHEAD}`)
    .optional(),
  GBP: z.boolean().default(false),
  Learning: z.boolean().default(false),
  DirectRouting: z.boolean().default(false),
});

/** The vxlan options of the Backend object. */
export type VxlanConfig = z.infer<typeof VxlanConfigSchema>;

/** Decodes the Backend object's vxlan options (keys in any case, as in Go). */
export function parseVxlanConfig(backend: Readonly<Record<string, unknown>>): VxlanConfig {
  const parsed = VxlanConfigSchema.safeParse(backend);
  if (!parsed.success)
    throw new ConfigError(`Invalid vxlan backend config: ${formatIssues(parsed.error)}`);
  return parsed.data;
}

/**
 * The VtepMAC of a remote vxlan lease (of its IPv6 device with `v6`). Throws when the lease does
 * not carry a usable one.
 */
export function vtepMacOf(lease: Lease, v6 = false): string {
  const data = v6 ? lease.attrs.backendV6Data : lease.attrs.backendData;
  const mac =
    typeof data === "object" && data !== null && !Array.isArray(data)
      ? goJsonField(data, "VtepMAC")
      : undefined;
  const field = `${v6 ? "BackendV6Data" : "BackendData"}.VtepMAC`;
  if (typeof mac !== "string" || !/^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/.test(mac)) {
    throw new Error(
      `lease of ${primarySubnetOf(lease).toString()} (public IP ${lease.attrs.publicIP}) has no usable ${field}`,
    );
  }
  const bad = notUnicastMac(mac.toLowerCase());
  if (bad !== null) {
    throw new Error(
      `${field} ${JSON.stringify(mac)} is ${bad}: expected the unicast MAC of that host's VXLAN device`,
    );
  }
  return mac.toLowerCase();
}

/** Why a MAC cannot be a VXLAN device's (all-zero, broadcast, multicast); null when it can. */
function notUnicastMac(mac: string): string | null {
  if (mac === "00:00:00:00:00:00") return "all-zero";
  if (mac === "ff:ff:ff:ff:ff:ff") return "the broadcast address";
  return (Number.parseInt(mac.slice(0, 2), 16) & 1) === 1 ? "a multicast address" : null;
}

/** Whether `ip` is reached without a gateway through `linkIndex`, by longest prefix match. */
export function isOnLink(routes: readonly Route[], ip: string, linkIndex: number): boolean {
  const route = lookupRoute(routes, ip);
  return route !== null && route.gateway === null && route.linkIndex === linkIndex;
}

interface VxlanContext {
  /** flannel.<VNI>; null on an IPv6-only network. */
  readonly device: Link | null;
  /** flannel-v6.<VNI>, with EnableIPv6. */
  readonly device6: Link | null;
  readonly mainRoutes: readonly Route[];
}

/** A remote's entries on one VXLAN device: neighbour, FDB entry, onlink route. */
function vxlanEntries(device: Link, subnet: IPNet, mac: string, publicIP: string): KernelEntry[] {
  const gateway = subnet.ipString;
  return [
    { kind: "neighbor", neighbor: { linkIndex: device.index, ip: gateway, mac } },
    { kind: "fdb", fdb: { linkIndex: device.index, mac, dst: publicIP } },
    {
      kind: "route",
      route: { dst: subnet.toString(), gateway, linkIndex: device.index, onlink: true },
    },
  ];
}

/** DirectRouting's route: the subnet straight via the remote's public address. */
function directRoute(subnet: IPNet, publicIP: string, linkIndex: number): KernelEntry {
  return {
    kind: "route",
    route: { dst: subnet.toString(), gateway: publicIP, linkIndex, onlink: false },
  };
}

/** What this host's VXLAN devices must be, from the config and the interface. */
interface VxlanSpecs {
  readonly network: IPNet | null;
  readonly v6: IPv6Side | null;
  readonly spec: (VxlanDeviceSpec & { readonly publicIP: string }) | null;
  readonly spec6: (VxlanDeviceSpec & { readonly publicIP: string }) | null;
  /** Pods must fit every device. */
  readonly podMtu: number;
}

function vxlanSpecs(
  config: NetworkConfig,
  cfg: VxlanConfig,
  extIface: ExternalInterface,
): VxlanSpecs {
  const network = config.enableIPv4 ? config.network : null;
  if (config.enableIPv4 && (network === null || extIface.extAddr === null)) {
    throw new ConfigError(
      'Cannot start backend "vxlan": IPv4 needs Network in the config and an IPv4 address on the interface',
    );
  }
  const v6 = ipv6SideOf("vxlan", config, extIface);
  if (network === null && v6 === null) {
    throw new ConfigError(
      'Cannot start backend "vxlan": the config enables neither IPv4 (Network) nor IPv6 (EnableIPv6 with IPv6Network)',
    );
  }
  const common = {
    vni: cfg.VNI,
    parentIndex: extIface.index,
    port: cfg.Port,
    learning: cfg.Learning,
    gbp: cfg.GBP,
  };
  const spec =
    network === null || extIface.extAddr === null
      ? null
      : {
          ...common,
          name: `flannel.${cfg.VNI}`,
          local: extIface.extAddr,
          mtu: (cfg.MTU ?? extIface.mtu) - VXLAN_OVERHEAD,
          publicIP: extIface.extAddr,
        };
  const spec6 =
    v6 === null
      ? null
      : {
          ...common,
          name: `flannel-v6.${cfg.VNI}`,
          local: v6.publicIPv6,
          mtu: (cfg.MTU ?? extIface.mtu) - VXLAN6_OVERHEAD,
          publicIP: v6.publicIPv6,
        };
  // flannel gives the IPv6 device its IPv4 figure (the kernel refuses it, or large IPv6 pod
  // packets are dropped); the smaller one is right.
  const podMtu = Math.min(spec?.mtu ?? Infinity, spec6?.mtu ?? Infinity);
  return { network, v6, spec, spec6, podMtu };
}

/**
 * The vxlan data plane: a remote's entries on the devices `devices()` gives (made and kept by
 * flanneld, only found by flannelctl doctor), and the entries of ours on them.
 */
function vxlanPlane(
  netlink: Netlink,
  extIface: ExternalInterface,
  cfg: VxlanConfig,
  { network, v6, spec6 }: VxlanSpecs,
  devices: () => Promise<{ device: Link | null; device6: Link | null }>,
): DataPlane<VxlanContext> {
  return {
    async prepare() {
      return {
        ...(await devices()),
        mainRoutes: cfg.DirectRouting ? await netlink.listRoutes() : [],
      };
    },
    entriesFor(remote, { device: dev, mainRoutes }): KernelEntry[] {
      if (dev === null) return [];
      const publicIP = remote.attrs.publicIP;
      if (cfg.DirectRouting && isOnLink(mainRoutes, publicIP, extIface.index))
        return [directRoute(remote.subnet, publicIP, extIface.index)];
      return vxlanEntries(dev, remote.subnet, vtepMacOf(remote), publicIP);
    },
    ...(spec6 === null
      ? {}
      : {
          entriesForV6(remote: Lease, { device6: dev6, mainRoutes }: VxlanContext) {
            const { subnet, publicIPv6 } = remoteIPv6Of(remote);
            if (dev6 === null) return [];
            if (cfg.DirectRouting && isOnLink(mainRoutes, publicIPv6, extIface.index))
              return [directRoute(subnet, publicIPv6, extIface.index)];
            return vxlanEntries(dev6, subnet, vtepMacOf(remote, true), publicIPv6);
          },
        }),
    // Anything on the devices (or a device going), and routes of ours elsewhere
    // (DirectRouting's, on the external interface).
    concerns: (change, { device: dev, device6: dev6 }) =>
      (dev !== null && change.linkIndex === dev.index) ||
      (dev6 !== null && change.linkIndex === dev6.index) ||
      (change.kind === "link" && change.removed) ||
      (change.kind === "route" && change.protocol === FLANNEL_ROUTE_PROTOCOL),
    async listOwned({ device: dev, device6: dev6 }) {
      const indexes = [dev, dev6].filter((d) => d !== null).map((d) => d.index);
      const [routes, neighbors, fdb] = await Promise.all([
        listOwnedRoutes(netlink, [network, v6?.network ?? null], indexes),
        Promise.all(indexes.map((i) => netlink.listNeighbors(i))),
        Promise.all(indexes.map((i) => netlink.listFdb(i))),
      ]);
      return [
        ...routes,
        ...neighbors
          .flat()
          .filter((n) => n.permanent)
          .map((n): KernelEntry => ({
            kind: "neighbor",
            neighbor: { linkIndex: n.linkIndex, ip: n.ip, mac: n.mac },
          })),
        ...fdb
          .flat()
          .filter((f) => f.permanent)
          .map((f): KernelEntry => ({
            kind: "fdb",
            fdb: { linkIndex: f.linkIndex, mac: f.mac, dst: f.dst },
          })),
      ];
    },
  };
}

/** This host's vxlan data plane as flannelctl doctor sees it: devices found, never made. */
export const inspectVxlan =
  (cfg: VxlanConfig): PlaneInspector =>
  (config, extIface, netlink, lease) => {
    const specs = vxlanSpecs(config, cfg, extIface);
    const expected = (
      spec: VxlanSpecs["spec"],
      subnet: IPNet | null,
      v6: boolean,
    ): ExpectedDevice | null => {
      if (spec === null) return null;
      let mac: string | null = null;
      try {
        mac = vtepMacOf(lease, v6);
      } catch {
        // the lease announces no MAC: the device check says so
      }
      return {
        name: spec.name,
        kind: "vxlan",
        mtu: spec.mtu,
        mac,
        vxlan: { vni: spec.vni, port: spec.port, local: spec.publicIP },
        address: subnet === null ? null : `${subnet.ipString}/${subnet.bits}`,
      };
    };
    const find = async (spec: VxlanSpecs["spec"]): Promise<Link | null> => {
      if (spec === null) return null;
      const link = await netlink.getLink(spec.name);
      return link?.kind === "vxlan" ? link : null;
    };
    const plane = vxlanPlane(netlink, extIface, cfg, specs, async () => ({
      device: await find(specs.spec),
      device6: await find(specs.spec6),
    }));
    return {
      devices: [
        expected(specs.spec, lease.subnet, false),
        expected(specs.spec6, lease.ipv6Subnet, true),
      ].filter((d) => d !== null),
      podMtu: specs.podMtu,
      serves: (remote) => servesLease(remote, "vxlan"),
      entries: (remotes) => inspectEntries(plane, remotes),
    };
  };

/** Makes the vxlan backend, with its options as parseVxlanConfig decoded them. */
export function createVxlanBackend(deps: BackendDeps, cfg: VxlanConfig): Backend {
  const { extIface, netlink, log } = deps;
  return {
    async registerNetwork(config: NetworkConfig, opts: CallOptions): Promise<Network> {
      const specs = vxlanSpecs(config, cfg, extIface);
      const { network, v6, spec, spec6, podMtu } = specs;
      // The devices come first: the lease carries their MACs. A MAC this node announced before
      // (Kubernetes mode keeps it in the Node's backend-data) is reused for a new device.
      const stored = await deps.subnetManager.getStoredMacAddresses?.(opts);
      const create = async (
        want: VxlanDeviceSpec & { readonly publicIP: string },
        mac: string | null | undefined,
        at: IPNet | null,
      ): Promise<Link> =>
        ensureVxlanDevice(
          netlink,
          mac != null ? { ...want, mac } : want,
          { subnet: null, network: at },
          log,
        );
      const device = spec === null ? null : await create(spec, stored?.v4, network);
      const device6 = spec6 === null ? null : await create(spec6, stored?.v6, v6?.network ?? null);
      const lease = await deps.subnetManager.acquireLease(
        {
          publicIP: extIface.extAddr ?? "",
          publicIPv6: v6?.publicIPv6 ?? null,
          backendType: "vxlan",
          ...(device === null ? {} : { backendData: { VNI: cfg.VNI, VtepMAC: device.mac } }),
          ...(device6 === null ? {} : { backendV6Data: { VNI: cfg.VNI, VtepMAC: device6.mac } }),
        },
        opts,
      );
      /** A device removed by hand comes back with the MAC the lease announces. */
      const ensure = async (
        want: (VxlanDeviceSpec & { readonly publicIP: string }) | null,
        leased: Link | null,
        at: DeviceAddress,
      ): Promise<Link | null> => {
        if (want === null || leased === null) return null;
        const now = await ensureVxlanDevice(netlink, { ...want, mac: leased.mac }, at, log);
        if (now.mac !== leased.mac) {
          log.warn(
            { device: want.name, mac: now.mac, leased: leased.mac },
            "VXLAN device MAC differs from the lease's VtepMAC",
          );
        }
        return now;
      };
      const address = { subnet: lease.subnet, network };
      const address6 = { subnet: lease.ipv6Subnet, network: v6?.network ?? null };
      await ensure(spec, device, address);
      if (spec6 !== null) {
        await ensure(spec6, device6, address6);
        // As flannel: the device takes no router advertisements.
        setDeviceSysctl(spec6.name, "accept_ra", "0", 6);
      }
      const plane = vxlanPlane(netlink, extIface, cfg, specs, async () => ({
        device: await ensure(spec, device, address),
        device6: await ensure(spec6, device6, address6),
      }));
      return new RouteNetwork(
        lease,
        podMtu,
        { ...deps, backendType: "vxlan", rules: peerLeaseRulesOf(config, deps.extIface) },
        plane,
      );
    },
  };
}
