/** Doctor's lease checks: this host's lease, subnet.env, and the store's leases as a whole. */
import { formatSubnetEnv, parseEnvFile, writeSubnetEnv } from "../config/subnet_env.js";
import type { SubnetEnv } from "../config/subnet_env.js";
import type { IPNet } from "../ip/ip.js";
import { leaseKeyOf } from "../lease/lease.js";
import type { Lease } from "../lease/lease.js";
import { finding } from "./finding.js";
import type { CheckGroup, Finding } from "./finding.js";
import type { HostView } from "./host_view.js";

const RESTART = "restart flanneld (systemctl restart flanneld, or delete its kube-flannel pod)";

function minutesLeft(lease: Lease, now: Date): number | null {
  return lease.expiration === null ? null : (lease.expiration.getTime() - now.getTime()) / 60_000;
}

/** This host's lease: there, its public IP right, renewed in time. */
export function checkOwnLease(view: HostView): CheckGroup {
  const { own, extIface, options } = view;
  const findings: Finding[] = [];
  if (own === null) {
    findings.push(
      finding(
        "lease-missing",
        "error",
        `host ${extIface.extAddr ?? extIface.extV6Addr ?? extIface.name}`,
        "the store holds no lease for this host",
        "without a lease this host has no pod subnet, and no other host routes to it",
        RESTART,
      ),
    );
    return { name: "lease", findings };
  }
  const key = leaseKeyOf(own);
  // Only the families the network uses: an IPv6-only lease has no IPv4 PublicIP to compare.
  const addresses = [
    ...(view.config.enableIPv4
      ? [["PublicIP", own.attrs.publicIP, extIface.extAddr] as const]
      : []),
    ...(view.config.enableIPv6
      ? [["PublicIPv6", own.attrs.publicIPv6, extIface.extV6Addr] as const]
      : []),
  ];
  for (const [field, leased, actual] of addresses) {
    if (actual === null || leased === actual) continue;
    findings.push(
      finding(
        "lease-public-ip",
        "error",
        `lease ${key}`,
        `the lease's ${field} is ${leased ?? "unset"}, but this host's interface ${extIface.name} has ${actual}`,
        "other hosts send this subnet's traffic to the lease's address",
        RESTART,
      ),
    );
  }
  const left = minutesLeft(own, view.now);
  if (left !== null && left < options.subnetLeaseRenewMargin) {
    findings.push(
      finding(
        "lease-expiring",
        "error",
        `lease ${key}`,
        left <= 0
          ? "the lease has expired"
          : `the lease expires in ${Math.round(left)} min and was not renewed (flanneld renews ${options.subnetLeaseRenewMargin} min before)`,
        "when it expires other hosts remove their routes to this host, and its subnet can be given to another",
        `check that flanneld runs and reaches the store, then ${RESTART}`,
      ),
    );
  }
  return { name: "lease", findings };
}

/** subnet.env as flanneld would write it now; null without a lease. */
export function expectedSubnetEnv(view: HostView): SubnetEnv | null {
  const { own, config, inspection } = view;
  if (own === null || inspection === null) return null;
  return {
    network: own.subnet === null ? null : config.network,
    subnet: own.subnet,
    ipv6Network: own.ipv6Subnet === null ? null : config.ipv6Network,
    ipv6Subnet: own.ipv6Subnet,
    mtu: inspection.podMtu,
    ipMasq: view.options.ipMasq,
  };
}

/** subnet.env: there, and saying what the lease and the config say. */
export function checkSubnetEnv(view: HostView): CheckGroup {
  const env = expectedSubnetEnv(view);
  const path = view.options.subnetFile;
  if (env === null) return { name: "subnet.env", findings: [], skipped: "no lease" };
  const want = formatSubnetEnv(env);
  const write = () => {
    writeSubnetEnv(path, env);
  };
  const command = `cat > ${path} <<'EOF'\n${want}EOF`;
  if (view.subnetEnv === null) {
    return {
      name: "subnet.env",
      findings: [
        finding(
          "subnet-env-missing",
          "error",
          path,
          "the file is missing",
          `every pod's network set-up fails ("open ${path}: no such file or directory"), so no pod starts on this host`,
          command,
          write,
        ),
      ],
    };
  }
  const have = parseEnvFile(view.subnetEnv);
  const differs = [...parseEnvFile(want)]
    .filter(([name, value]) => have.get(name) !== value)
    .map(([name, value]) => `${name} is ${have.get(name) ?? "absent"}, expected ${value}`);
  if (differs.length === 0) return { name: "subnet.env", findings: [] };
  return {
    name: "subnet.env",
    findings: [
      finding(
        "subnet-env-mismatch",
        "error",
        path,
        differs.join("; "),
        "new pods get addresses or an MTU that do not match this host's lease and device",
        command,
        write,
      ),
    ],
  };
}

/** How an operator takes a lease away: its etcd key deleted, or its Node's pod CIDR changed. */
export function releaseCommand(view: HostView, lease: Lease): string {
  if (view.options.kubeSubnetMgr)
    return `give node ${lease.attrs.publicIP} a pod CIDR inside the network (kube-controller-manager --cluster-cidr; spec.podCIDR is set once: delete and re-register the Node)`;
  const endpoints = view.options.etcdEndpoints.join(",");
  return `etcdctl --endpoints=${endpoints} del ${view.options.etcdPrefix}/subnets/${leaseKeyOf(lease)}`;
}

/**
 * Leases that overlap, or (other hosts') were not renewed in time. What flanneld's lease watch
 * refuses (outside the network, a public address no host can have) is checkEntries' to report.
 */
export function checkStoreLeases(view: HostView): CheckGroup {
  const { config, leases, options, now } = view;
  const findings: Finding[] = [];
  const check = (family: 4 | 6) => {
    const nets = leases
      .map((lease) => ({ lease, net: family === 4 ? lease.subnet : lease.ipv6Subnet }))
      .filter((x): x is { lease: Lease; net: IPNet } => x.net !== null)
      .sort((a, b) => (a.net.ip < b.net.ip ? -1 : a.net.ip > b.net.ip ? 1 : 0));
    // Sorted by start: a subnet that starts at or before the furthest end so far overlaps.
    let reach: { item: { lease: Lease; net: IPNet }; end: bigint } | null = null;
    for (const item of nets) {
      if (reach !== null && item.net.ip <= reach.end) findings.push(overlap(reach.item, item));
      const end = item.net.ip + item.net.size - 1n;
      if (reach === null || end > reach.end) reach = { item, end };
    }
  };
  const overlap = (a: { lease: Lease; net: IPNet }, b: { lease: Lease; net: IPNet }): Finding =>
    finding(
      "lease-overlap",
      "error",
      `leases ${a.net.toString()} and ${b.net.toString()}`,
      `the subnets of hosts ${a.lease.attrs.publicIP} and ${b.lease.attrs.publicIP} overlap`,
      "pods on the two hosts can get the same addresses, and traffic to them goes to one host only",
      `${releaseCommand(view, b.lease)}, then restart flanneld on ${b.lease.attrs.publicIP}`,
    );
  if (config.enableIPv4) check(4);
  if (config.enableIPv6) check(6);
  for (const lease of leases) {
    if (view.own !== null && leaseKeyOf(lease) === leaseKeyOf(view.own)) continue;
    const left = minutesLeft(lease, now);
    if (left === null || left >= options.subnetLeaseRenewMargin) continue;
    findings.push(
      finding(
        "peer-lease-expiring",
        "warning",
        `lease ${leaseKeyOf(lease)}`,
        `host ${lease.attrs.publicIP}'s lease expires in ${Math.max(0, Math.round(left))} min and was not renewed`,
        "when it expires every host removes its routes to that host's pods",
        `run flannelctl doctor on ${lease.attrs.publicIP}: its flanneld is down or cannot reach the store`,
      ),
    );
  }
  return { name: "leases", findings };
}
