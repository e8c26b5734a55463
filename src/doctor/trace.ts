/**
 * flannelctl trace: the path a packet from one pod address to another takes, hop by hop, read
 * from this host's kernel: on the source's host its bridge, the route, the flannel device, the
 * neighbour and FDB entries and the underlay route to the peer; on the destination's host the
 * flannel device the peers send to, the route to the pod and the bridge; on an encrypting backend
 * (wireguard) the tunnel peer of the other end on both. What each hop must be
 * comes from the backend's own data plane (the entries flanneld would write for the other
 * host's lease), so trace and flanneld agree. The first hop that is missing or wrong is named.
 */
import { entryKey, entryTarget } from "../net/kernel_entries.js";
import { IPNet, parseIP } from "../ip/ip.js";
import { leaseKeyOf, primarySubnetOf } from "../lease/lease.js";
import type { Lease } from "../lease/lease.js";
import type { KernelEntry, Link, Route } from "../net/netlink.js";
import { lookupRoute } from "../net/route_lookup.js";
import { entryCommand } from "./check_data_plane.js";
import { CNI_BRIDGE } from "./check_kernel.js";
import type { HostView } from "./host_view.js";
import { tunnelHops } from "./trace_tunnel.js";

import type { TraceHop } from "./trace_hop.js";
import { policyHops } from "./trace_policy.js";
import type { TracePolicy } from "./trace_policy.js";

export type { TraceHop, TracePolicy };

/** Who holds an address: the host whose lease covers it. */
export interface TraceEnd {
  readonly ip: string;
  /** The host's public IP; null when no lease covers the address. */
  readonly host: string | null;
  readonly lease: string | null;
}

/** This host's half of a path. */
export interface TraceHalf {
  /** This host's public IP. */
  readonly host: string;
  readonly role: "source" | "destination" | "both" | "neither";
  readonly src: TraceEnd;
  readonly dst: TraceEnd;
  readonly hops: readonly TraceHop[];
}

function ownerOf(leases: readonly Lease[], ip: string): Lease | null {
  const address = parseIP(ip);
  if (address === null) return null;
  return (
    leases.find((l) => (address.family === 4 ? l.subnet : l.ipv6Subnet)?.contains(address.value)) ??
    null
  );
}

function endOf(leases: readonly Lease[], ip: string): TraceEnd {
  const lease = ownerOf(leases, ip);
  return {
    ip,
    host: lease === null ? null : lease.attrs.publicIP || lease.attrs.publicIPv6,
    lease: lease === null ? null : primarySubnetOf(lease).toString(),
  };
}

function describeRoute(route: Route, name: (i: number) => string): string {
  return `${route.dst}${route.gateway === null ? "" : ` via ${route.gateway}`} dev ${name(route.linkIndex)}${route.onlink ? " onlink" : ""}`;
}

const HOP_OF: Record<KernelEntry["kind"], string> = {
  route: "route",
  neighbor: "neighbour",
  fdb: "FDB",
};

/** Compares what flanneld would write for the peer with the kernel's entry under the same key. */
function entryHop(
  wanted: KernelEntry,
  owned: ReadonlyMap<string, KernelEntry>,
  name: (i: number) => string,
): TraceHop {
  const held = owned.get(entryKey(wanted));
  const expected = entryCommand(wanted, "replace", name);
  if (held === undefined)
    return { hop: HOP_OF[wanted.kind], state: "missing", detail: "none", expected };
  const now = entryCommand(held, "replace", name);
  return now === expected
    ? { hop: HOP_OF[wanted.kind], state: "ok", detail: now.replace(/^.* replace /, "") }
    : {
        hop: HOP_OF[wanted.kind],
        state: "wrong",
        detail: now.replace(/^.* replace /, ""),
        expected,
      };
}

/** The bridge the pods of this host hang on: there, up, holding the subnet's gateway. */
async function bridgeHop(view: HostView, links: readonly Link[], pod: string): Promise<TraceHop> {
  const bridge = links.find((l) => l.name === CNI_BRIDGE);
  if (bridge === undefined)
    return {
      hop: "bridge",
      state: "missing",
      detail: `no ${CNI_BRIDGE}`,
      expected: `${CNI_BRIDGE}, made by the CNI plugin with the first pod`,
    };
  const addresses = (await view.netlink.listAddresses(bridge.index)).map(
    (a) => `${a.ip}/${a.prefixLen}`,
  );
  const ip = parseIP(pod);
  const holds = addresses.some((a) => {
    const net = IPNet.parse(a);
    return net !== null && ip !== null && net.family === ip.family && net.contains(ip.value);
  });
  if (!bridge.up)
    return {
      hop: "bridge",
      state: "wrong",
      detail: `${CNI_BRIDGE} is down`,
      expected: `ip link set ${CNI_BRIDGE} up`,
    };
  return holds
    ? { hop: "bridge", state: "ok", detail: `${CNI_BRIDGE} up, ${addresses.join(" ")}` }
    : {
        hop: "bridge",
        state: "wrong",
        detail: `${CNI_BRIDGE} holds ${addresses.join(" ") || "no address"}`,
        expected: `an address of the subnet of ${pod}`,
      };
}

/** What the hop builders read of this host's kernel, listed once. */
interface KernelView {
  readonly links: readonly Link[];
  readonly routes: readonly Route[];
  readonly name: (index: number) => string;
}

/** A peer's underlay address, for the destination's family, and the route to it. */
function underlayHop(dstLease: Lease, family: number | undefined, kernel: KernelView): TraceHop {
  const underlayIP =
    (family === 6 ? dstLease.attrs.publicIPv6 : dstLease.attrs.publicIP) ?? dstLease.attrs.publicIP;
  const underlay = lookupRoute(kernel.routes, underlayIP);
  if (underlay === null)
    return {
      hop: "underlay",
      state: "missing",
      detail: `no route to ${underlayIP}`,
      expected: `a route to the peer's public address ${underlayIP}`,
    };
  const via = underlay.gateway === null ? "on-link" : `via ${underlay.gateway}`;
  return {
    hop: "underlay",
    state: "ok",
    detail: `${underlayIP} ${via} dev ${kernel.name(underlay.linkIndex)}`,
  };
}

/**
 * On the source's host, for a destination on another host: the route, the neighbour and FDB
 * entries the backend wants for the destination's lease, against the kernel's, and the underlay.
 */
async function sourceHops(
  view: HostView,
  dst: string,
  dstLease: Lease | null,
  kernel: KernelView,
): Promise<TraceHop[]> {
  const { inspection } = view;
  const { routes, name } = kernel;
  const route = lookupRoute(routes, dst);
  if (dstLease === null || inspection === null)
    return [
      {
        hop: "route",
        state: "info",
        detail: route === null ? "no route" : describeRoute(route, name),
        expected: "no lease covers the destination: flannel does not carry it",
      },
    ];
  const { wanted, owned } = await inspection.entries(new Map([[leaseKeyOf(dstLease), dstLease]]));
  // The entries of the destination's family (a dual-stack peer has both).
  const family = parseIP(dst)?.family;
  const entries = [...wanted.values()].filter(
    (e) => parseIP(entryTarget(e).split("/")[0] ?? "")?.family === family,
  );
  const hops: TraceHop[] = [];
  // The kernel's route for the address, beside what flanneld would write for the subnet.
  const routeEntry = entries.find((e) => e.kind === "route");
  if (routeEntry === undefined) {
    hops.push({
      hop: "route",
      state: "missing",
      detail: route === null ? "no route" : describeRoute(route, name),
      expected: `a route for ${endOf(view.leases, dst).lease ?? dst} (is the backend's device there? run flannelctl doctor)`,
    });
  } else {
    const hop = entryHop(routeEntry, owned, name);
    hops.push(
      hop.state === "missing" && route !== null
        ? { ...hop, detail: `only ${describeRoute(route, name)}` }
        : hop,
    );
  }
  for (const kind of ["neighbor", "fdb"] as const)
    for (const e of entries.filter((x) => x.kind === kind)) hops.push(entryHop(e, owned, name));
  hops.push(...(await tunnelHops(view, dstLease, family === 6)));
  hops.push(underlayHop(dstLease, family, kernel));
  return hops;
}

/** The backend's devices on the destination's host: there, with the lease's MAC, up. */
function deviceHops(view: HostView, dst: string, kernel: KernelView): TraceHop[] {
  const hops: TraceHop[] = [];
  for (const device of view.inspection?.devices ?? []) {
    if ((device.address?.includes(":") ?? false) !== dst.includes(":")) continue;
    const link = kernel.links.find((l) => l.name === device.name);
    if (link === undefined)
      hops.push({
        hop: "flannel device",
        state: "missing",
        detail: `no ${device.name}`,
        expected: `${device.name}, made by flanneld`,
      });
    else if (device.mac !== null && link.mac !== device.mac)
      hops.push({
        hop: "flannel device",
        state: "wrong",
        detail: `${device.name} MAC ${link.mac}`,
        expected: `MAC ${device.mac}, as this host's lease announces to the peers`,
      });
    else if (!link.up)
      hops.push({
        hop: "flannel device",
        state: "wrong",
        detail: `${device.name} is down`,
        expected: `ip link set ${device.name} up`,
      });
    else
      hops.push({
        hop: "flannel device",
        state: "ok",
        detail: `${device.name} up${device.mac === null ? "" : `, MAC ${link.mac}`}`,
      });
  }
  return hops;
}

/** On the destination's host: the route to the pod through the bridge, the bridge, the pod. */
async function destinationHops(
  view: HostView,
  dst: string,
  isSource: boolean,
  kernel: KernelView,
): Promise<TraceHop[]> {
  const { links, routes, name } = kernel;
  const route = lookupRoute(routes, dst);
  const bridge = links.find((l) => l.name === CNI_BRIDGE);
  const hops: TraceHop[] = [
    route !== null && bridge !== undefined && route.linkIndex === bridge.index
      ? { hop: "route to pod", state: "ok", detail: describeRoute(route, name) }
      : {
          hop: "route to pod",
          state: route === null ? "missing" : "wrong",
          detail: route === null ? "no route" : describeRoute(route, name),
          expected: `${endOf(view.leases, dst).lease ?? dst} dev ${CNI_BRIDGE}`,
        },
  ];
  if (!isSource) hops.push(await bridgeHop(view, links, dst));
  const pod =
    bridge === undefined
      ? []
      : (await view.netlink.listNeighbors(bridge.index)).filter((n) => n.ip === dst);
  hops.push(
    pod.length > 0
      ? { hop: "pod", state: "ok", detail: `${dst} lladdr ${pod[0]?.mac ?? "?"} on ${CNI_BRIDGE}` }
      : {
          hop: "pod",
          state: "info",
          detail: `${dst} not yet in ${CNI_BRIDGE}'s neighbour table (no recent traffic, or no such pod)`,
        },
  );
  return hops;
}

/** This host's half of the path from `src` to `dst`. */
export async function traceLocal(
  view: HostView,
  src: string,
  dst: string,
  policy: TracePolicy | null = null,
): Promise<TraceHalf> {
  for (const ip of [src, dst])
    if (parseIP(ip) === null)
      throw new RangeError(`Invalid address "${ip}": expected an IPv4 or IPv6 address`);
  const { leases, own, netlink } = view;
  const host = view.extIface.extAddr ?? view.extIface.extV6Addr ?? view.extIface.name;
  const ownKey = own === null ? null : leaseKeyOf(own);
  const srcLease = ownerOf(leases, src);
  const dstLease = ownerOf(leases, dst);
  const isSource = srcLease !== null && ownKey !== null && leaseKeyOf(srcLease) === ownKey;
  const isDestination = dstLease !== null && ownKey !== null && leaseKeyOf(dstLease) === ownKey;
  const role =
    isSource && isDestination
      ? "both"
      : isSource
        ? "source"
        : isDestination
          ? "destination"
          : "neither";
  const links = await netlink.listLinks();
  const names = new Map(links.map((l) => [l.index, l.name]));
  const kernel: KernelView = {
    links,
    routes: await netlink.listRoutes(),
    name: (i) => names.get(i) ?? `#${i}`,
  };
  const hops: TraceHop[] = [];
  if (isSource) hops.push(await bridgeHop(view, links, src));
  if (isSource && !isDestination) hops.push(...(await sourceHops(view, dst, dstLease, kernel)));
  if (isDestination && !isSource) {
    hops.push(...deviceHops(view, dst, kernel));
    if (srcLease !== null) hops.push(...(await tunnelHops(view, srcLease, dst.includes(":"))));
  }
  if (isDestination) hops.push(...(await destinationHops(view, dst, isSource, kernel)));
  if (policy !== null) hops.push(...policyHops(policy, src, dst, role));
  return { host, role, src: endOf(leases, src), dst: endOf(leases, dst), hops };
}

/** The first hop of the halves that is missing or wrong; null when every hop is right. */
export function firstProblem(halves: readonly TraceHalf[]): { host: string; hop: TraceHop } | null {
  for (const half of halves)
    for (const hop of half.hops)
      if (hop.state === "missing" || hop.state === "wrong" || hop.state === "denied")
        return { host: half.host, hop };
  return null;
}

function endText(end: TraceEnd): string {
  return end.host === null
    ? `${end.ip} (no lease covers it)`
    : `${end.ip} (host ${end.host}, lease ${end.lease ?? "?"})`;
}

/** The halves as text, the first problem last. */
export function formatTrace(halves: readonly TraceHalf[]): string {
  const [first] = halves;
  if (first === undefined) return "Nothing to trace\n";
  const lines = [`Trace ${endText(first.src)} -> ${endText(first.dst)}`];
  for (const half of halves) {
    lines.push(`on ${half.host} (${half.role === "both" ? "source and destination" : half.role}):`);
    if (half.hops.length === 0)
      lines.push(
        "  (this host is on neither end: run trace on the source's or the destination's host)",
      );
    for (const hop of half.hops) {
      const mark = hop.state === "ok" ? "\u2713" : hop.state === "info" ? "-" : "\u2717";
      lines.push(
        `  ${mark} ${hop.hop.padEnd(15)} ${hop.state === "ok" || hop.state === "info" ? "" : `${hop.state.toUpperCase()}: `}${hop.detail}`,
      );
      if (hop.expected !== undefined) lines.push(`  ${" ".repeat(17)} expected: ${hop.expected}`);
    }
  }
  const problem = firstProblem(halves);
  lines.push(
    problem === null
      ? "Every hop is in place"
      : problem.hop.state === "denied"
        ? `Dropped by NetworkPolicy: ${problem.hop.hop} on ${problem.host}`
        : `First problem: ${problem.hop.hop} on ${problem.host}: ${problem.hop.state}`,
  );
  return `${lines.join("\n")}\n`;
}
