/**
 * Doctor's data-plane checks: the backend's devices against what this host's lease announces, and
 * every route, neighbour and FDB entry the other hosts' leases need, against the kernel's, through
 * the backend's own data plane (the very code flanneld programs with), so that the two never
 * disagree about what is right.
 */
import type { ExpectedDevice } from "../backend/backend.js";
import { ensureSubnetAddress } from "../backend/device_address.js";
import { diffEntries, leaseOfEntry } from "../net/kernel_entries.js";
import { parseIP } from "../ip/ip.js";
import { primarySubnetOf } from "../lease/lease.js";
import type { Lease } from "../lease/lease.js";
import { peerLeaseRulesOf } from "../lease/peer_rules.js";
import type { LeaseRefusal } from "../lease/peer_rules.js";
import { LeaseWatcher } from "../subnet/watch_leases.js";
import { releaseCommand } from "./check_leases.js";
import type { KernelEntry, Link } from "../net/netlink.js";
import { finding } from "./finding.js";
import type { CheckGroup, Finding } from "./finding.js";
import type { HostView } from "./host_view.js";

const RESTART =
  "systemctl restart flanneld (or delete this host's kube-flannel pod): flanneld makes it again";

function sameVxlan(link: Link, want: NonNullable<ExpectedDevice["vxlan"]>): string[] {
  const vx = link.vxlan;
  if (vx === null) return ["it is not a VXLAN device"];
  const port = (p: number) => (p === 0 ? 8472 : p);
  const wrong: string[] = [];
  if (vx.vni !== want.vni) wrong.push(`VNI ${vx.vni}, expected ${want.vni}`);
  if (port(vx.port) !== port(want.port))
    wrong.push(`port ${port(vx.port)}, expected ${port(want.port)}`);
  if (vx.local !== want.local) wrong.push(`local ${vx.local ?? "unset"}, expected ${want.local}`);
  return wrong;
}

/** The backend's devices: there, of the right kind and identity, MTU, MAC, up, addressed. */
export async function checkDevices(view: HostView): Promise<CheckGroup> {
  const { inspection, netlink } = view;
  if (inspection === null) return { name: "devices", findings: [], skipped: "no lease" };
  const findings: Finding[] = [];
  for (const want of inspection.devices) {
    const link = await netlink.getLink(want.name);
    const found = link === null ? [missingDevice(want)] : identityFindings(link, want);
    if (link !== null && found.length === 0)
      found.push(
        ...settingFindings(view, link, want),
        ...(await addressFindings(view, link, want)),
      );
    findings.push(...found);
  }
  return { name: "devices", findings };
}

function missingDevice(want: ExpectedDevice): Finding {
  return finding(
    "device-missing",
    "error",
    want.name,
    `the ${{ vxlan: "VXLAN", tun: "TUN", wireguard: "WireGuard" }[want.kind]} device is missing`,
    "no pod traffic leaves or reaches this host through the overlay",
    RESTART,
  );
}

/** A device of another kind or identity (VNI, port, local address) than the backend's. */
function identityFindings(link: Link, want: ExpectedDevice): Finding[] {
  // A WireGuard device is the kernel's (kind wireguard) or wireguard-go's TUN.
  const kinds = want.kind === "wireguard" ? ["wireguard", "tun"] : [want.kind];
  const identity =
    want.vxlan === null
      ? kinds.includes(link.kind ?? "")
        ? []
        : [`kind ${link.kind ?? "none"}, expected ${kinds.join(" or ")}`]
      : sameVxlan(link, want.vxlan);
  if (identity.length === 0) return [];
  return [
    finding(
      "device-config",
      "error",
      want.name,
      identity.join("; "),
      "the device does not carry this network's traffic as the other hosts expect",
      `ip link del ${want.name}; ${RESTART}`,
    ),
  ];
}

/** MTU, MAC and up, each with its fix. */
function settingFindings(view: HostView, link: Link, want: ExpectedDevice): Finding[] {
  const { netlink } = view;
  const findings: Finding[] = [];
  if (link.mtu !== want.mtu) {
    findings.push(
      finding(
        "device-mtu",
        "error",
        want.name,
        `MTU ${link.mtu}, expected ${want.mtu}`,
        link.mtu > want.mtu
          ? "encapsulated packets exceed the underlay MTU: pings pass, large transfers stall"
          : "pods send packets larger than the device takes: large transfers stall",
        `ip link set ${want.name} mtu ${want.mtu}`,
        () => netlink.setLinkMtu(link.index, want.mtu),
      ),
    );
  }
  if (want.mac !== null && link.mac !== want.mac) {
    findings.push(
      finding(
        "device-mac",
        "error",
        want.name,
        `MAC ${link.mac}, but this host's lease announces ${want.mac}`,
        "the other hosts send to the lease's MAC: their traffic to this host is dropped",
        `ip link set ${want.name} address ${want.mac}`,
        () => netlink.setLinkMac(link.index, want.mac ?? link.mac),
      ),
    );
  }
  if (!link.up) {
    findings.push(
      finding(
        "device-down",
        "error",
        want.name,
        "the device is down",
        "no pod traffic goes through it",
        `ip link set ${want.name} up`,
        () => netlink.setLinkUp(link.index),
      ),
    );
  }
  return findings;
}

/** The device's own address (this host's subnet's first), when the backend gives it one. */
async function addressFindings(
  view: HostView,
  link: Link,
  want: ExpectedDevice,
): Promise<Finding[]> {
  if (want.address === null) return [];
  const { netlink } = view;
  const [ip, len] = want.address.split("/");
  const v6 = parseIP(ip ?? "")?.family === 6;
  const addresses = await netlink.listAddresses(link.index);
  if (addresses.some((a) => a.ip === ip && String(a.prefixLen) === len)) return [];
  const address = {
    subnet: (v6 ? view.own?.ipv6Subnet : view.own?.subnet) ?? null,
    network: v6 ? view.config.ipv6Network : view.config.network,
  };
  return [
    finding(
      "device-address",
      "error",
      want.name,
      `the device lacks its address ${want.address}`,
      "traffic from this host to other hosts' pods leaves with the wrong source address",
      `ip addr add ${want.address} dev ${want.name}`,
      () => ensureSubnetAddress(netlink, link.index, address),
    ),
  ];
}

/** The very lease watch flanneld runs, with its rules, over the store's unexpired leases. */
export function watchedLeases(view: HostView, own: Lease): LeaseWatcher {
  const watcher = new LeaseWatcher(own, { rules: peerLeaseRulesOf(view.config, view.extIface) });
  watcher.reset(view.leases.filter((l) => l.expiration === null || l.expiration > view.now));
  return watcher;
}

/** The remote leases flanneld serves: those its lease watch keeps, of this backend. */
export function servedRemotes(view: HostView, own: Lease): Map<string, Lease> {
  const inspection = view.inspection;
  return new Map(
    [...watchedLeases(view, own).leases].filter(([, l]) => inspection?.serves(l) === true),
  );
}

/** An entry as the `ip`/`bridge` command that writes it (`op` "replace") or removes it. */
export function entryCommand(
  entry: KernelEntry,
  op: "replace" | "delete",
  name: (index: number) => string,
): string {
  switch (entry.kind) {
    case "route": {
      const r = entry.route;
      const ip6 = parseIP(r.dst.split("/")[0] ?? "")?.family === 6 ? "ip -6" : "ip";
      if (op === "delete") return `${ip6} route del ${r.dst} dev ${name(r.linkIndex)}`;
      const via = r.gateway === null ? "" : ` via ${r.gateway}`;
      return `${ip6} route replace ${r.dst}${via} dev ${name(r.linkIndex)}${r.onlink ? " onlink" : ""} proto 76`;
    }
    case "neighbor": {
      const n = entry.neighbor;
      if (op === "delete") return `ip neigh del ${n.ip} dev ${name(n.linkIndex)}`;
      return `ip neigh replace ${n.ip} lladdr ${n.mac} dev ${name(n.linkIndex)} nud permanent`;
    }
    case "fdb": {
      const f = entry.fdb;
      const verb = op === "delete" ? "del" : "replace";
      return `bridge fdb ${verb} ${f.mac} dev ${name(f.linkIndex)} dst ${f.dst} self${op === "delete" ? "" : " permanent"}`;
    }
  }
}

/** What an entry is, in a finding's subject: `route 10.244.2.0/24`, `neighbour 10.244.2.0`. */
function subjectOf(entry: KernelEntry, name: (index: number) => string): string {
  switch (entry.kind) {
    case "route":
      return `route ${entry.route.dst}`;
    case "neighbor":
      return `neighbour ${entry.neighbor.ip} on ${name(entry.neighbor.linkIndex)}`;
    case "fdb":
      return `FDB ${entry.fdb.mac} dst ${entry.fdb.dst} on ${name(entry.fdb.linkIndex)}`;
  }
}

const KIND_NAME = { route: "route", neighbor: "neighbor", fdb: "fdb" } as const;

/** A remote lease flanneld's lease watch refuses, as a finding (overlaps: see checkStoreLeases). */
function refusedLease(view: HostView, key: string, lease: Lease, refusal: LeaseRefusal): Finding {
  return finding(
    refusal.rule === "public-ip" ? "lease-bad-public-ip" : `lease-${refusal.rule}`,
    refusal.rule === "own-address" ? "warning" : "error",
    `lease ${key}`,
    refusal.message,
    `flanneld skips it (its ${refusal.field} cannot be served): pods in ${primarySubnetOf(lease).toString()} are not reachable from here`,
    refusal.rule === "own-address"
      ? "nothing, if this host restarted into a new subnet: the old lease expires by itself"
      : `${releaseCommand(view, lease)}; its host, if it is one, leases a new one`,
  );
}

/**
 * Every route, neighbour and FDB entry the other hosts' leases need, against the kernel's: what
 * is missing or different (errors), and entries of ours no lease justifies (warnings).
 */
export async function checkEntries(view: HostView): Promise<CheckGroup> {
  const { inspection, netlink, own } = view;
  if (inspection === null || own === null)
    return { name: "routes", findings: [], skipped: "no lease" };
  const findings: Finding[] = [];
  const remotes = new Map<string, Lease>();
  const watcher = watchedLeases(view, own);
  for (const [key, { lease, refusal }] of watcher.refused) {
    if (refusal.rule !== "overlap") findings.push(refusedLease(view, key, lease, refusal));
  }
  for (const [key, lease] of watcher.leases) {
    if (inspection.serves(lease)) {
      remotes.set(key, lease);
      continue;
    }
    findings.push(
      finding(
        "lease-other-backend",
        "warning",
        `lease ${key}`,
        `host ${lease.attrs.publicIP} runs backend "${lease.attrs.backendType || "udp"}", not this network's`,
        "flanneld skips its lease: pods on that host are not reachable from here",
        `run the same backend on every host (the network config's Backend.Type), then restart flanneld on ${lease.attrs.publicIP}`,
      ),
    );
  }
  const { wanted, owned, skipped } = await inspection.entries(remotes);
  for (const skip of skipped) {
    findings.push(
      finding(
        "lease-unusable",
        "error",
        `lease ${skip.subnet}${skip.v6 ? " (IPv6 part)" : ""}`,
        skip.message,
        "flanneld skips it: that host's pods are not reachable from here",
        `fix flanneld on ${skip.lease.attrs.publicIP}, which writes the lease`,
      ),
    );
  }
  const names = new Map((await netlink.listLinks()).map((l) => [l.index, l.name]));
  const name = (index: number) => names.get(index) ?? `#${index}`;
  const { stale, missing } = diffEntries(owned, wanted);
  // Stale entries first: the order flanneld removes and writes them in (and --fix applies).
  for (const [, entry] of stale) {
    findings.push(
      finding(
        `${KIND_NAME[entry.kind]}-stale`,
        "warning",
        subjectOf(entry, name),
        "no lease needs this entry of flannel's",
        "traffic to an address no host leases goes astray, and the entry hides a later host's",
        entryCommand(entry, "delete", name),
        () => writeOne(view, { op: "delete", entry }),
      ),
    );
  }
  for (const [key, entry] of missing) {
    const present = owned.has(key);
    const host = leaseOfEntry(entry, remotes.values());
    const command = entryCommand(entry, "replace", name);
    findings.push(
      finding(
        `${KIND_NAME[entry.kind]}-${present ? "wrong" : "missing"}`,
        "error",
        subjectOf(entry, name),
        `${present ? "differs from" : "is missing:"} ${command.replace(/^(ip( -6)?|bridge) \w+ replace /, "")}`,
        `pods here cannot reach the pods of ${host === undefined ? "the network" : `host ${host.attrs.publicIP} (${primarySubnetOf(host).toString()})`}`,
        command,
        () => writeOne(view, { op: "replace", entry }),
      ),
    );
  }
  return { name: "routes", findings };
}

async function writeOne(
  view: HostView,
  write: { op: "replace" | "delete"; entry: KernelEntry },
): Promise<void> {
  const [err] = await view.netlink.writeEntries([write]);
  if (err != null) throw err;
}
