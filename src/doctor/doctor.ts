/**
 * flannelctl doctor: reads this host's lease, subnet.env and kernel, and says what is wrong, why
 * it matters and the command that fixes it. Read-only unless asked to fix; `--fix` applies the
 * fixes that are safe unattended and checks again.
 */
import { dirname } from "node:path";
import { checkHooks } from "./check_hooks.js";
import { readFile } from "node:fs/promises";
import { release } from "node:os";
import { backendFor } from "../backend/registry.js";
import type { NetworkConfig } from "../config/network_config.js";
import { parseEnvFile } from "../config/subnet_env.js";
import type { FlanneldOptions } from "../daemon/run_flanneld.js";
import { interfaceChoiceOf, lookupExternalInterface } from "../iface/external_interface.js";
import type { ExternalInterface } from "../iface/external_interface.js";
import { parseIP } from "../ip/ip.js";
import { primarySubnetOf } from "../lease/lease.js";
import type { Lease } from "../lease/lease.js";
import type { Netlink } from "../net/netlink.js";
import type { SubnetManager } from "../subnet/manager.js";
import type { TrafficManager } from "../trafficmngr/traffic_manager.js";
import { checkDevices, checkEntries } from "./check_data_plane.js";
import { checkFlanneld } from "./check_flanneld.js";
import { checkKernelSettings, checkPodMtu, checkTrafficRules } from "./check_kernel.js";
import { checkOwnLease, checkStoreLeases, checkSubnetEnv } from "./check_leases.js";
import { checkTunnels } from "./check_tunnels.js";
import { checkPolicy } from "./check_policy.js";
import type { PolicySources } from "./check_policy.js";
import type { PodPolicyState } from "../netpol/index.js";
import { finding } from "./finding.js";
import type { CheckGroup, Finding } from "./finding.js";
import type { FlanneldProcess } from "./flanneld_process.js";
import type { HostView } from "./host_view.js";

/** What doctor runs with. */
export interface DoctorDeps {
  readonly netlink: Netlink;
  readonly openManager: () => Promise<SubnetManager>;
  readonly newTrafficManager: (enableNFTables: boolean) => TrafficManager;
  /** The flanneld processes of this network namespace. */
  readonly processes: readonly FlanneldProcess[];
  readonly procDir?: string;
  readonly kernelRelease?: string;
  readonly now?: () => Date;
  /** With --network-policy: the cluster's policies and this host's table. */
  readonly policy?: PolicySources | null;
}

/** What doctor found. */
export interface DoctorReport {
  /** This host as doctor identified it; null where it could not. */
  readonly host: {
    readonly interface: string;
    readonly publicIP: string | null;
    readonly lease: string | null;
    readonly backend: string;
    /** The address families the network uses: "IPv4", "IPv6" or "IPv4+IPv6". */
    readonly families: string;
    readonly peers: number;
  } | null;
  readonly groups: readonly CheckGroup[];
  /** With --network-policy: the policy state of each of this host's pods; null without. */
  readonly policy: readonly PodPolicyState[] | null;
}

/** Every finding of a report, in order. */
export function findingsOf(report: DoctorReport): Finding[] {
  return report.groups.flatMap((g) => g.findings);
}

/** Healthy: no error-level finding. */
export function isHealthy(report: DoctorReport): boolean {
  return findingsOf(report).every((f) => f.severity !== "error");
}

const STORE_WHY = "doctor needs the network config and the leases to know what this host must have";

/** This host's lease: the one subnet.env names, else the one with this host's public address. */
function ownLease(
  leases: readonly Lease[],
  subnetEnv: string | null,
  ext: ExternalInterface,
): Lease | null {
  const env = subnetEnv === null ? null : parseEnvFile(subnetEnv);
  const named = [env?.get("FLANNEL_SUBNET"), env?.get("FLANNEL_IPV6_SUBNET")]
    .map((s) => (s === undefined ? null : parseIP(s.split("/")[0] ?? "")))
    .filter((ip) => ip !== null);
  const bySubnet = leases.find((lease) =>
    named.some((ip) => (ip.family === 4 ? lease.subnet : lease.ipv6Subnet)?.contains(ip.value)),
  );
  if (
    bySubnet !== undefined &&
    bySubnet.attrs.publicIP === (ext.extAddr ?? bySubnet.attrs.publicIP)
  )
    return bySubnet;
  return (
    leases.find(
      (lease) =>
        (ext.extAddr !== null && lease.attrs.publicIP === ext.extAddr) ||
        (ext.extV6Addr !== null && lease.attrs.publicIPv6 === ext.extV6Addr),
    ) ??
    bySubnet ??
    null
  );
}

/**
 * Reads what doctor and trace need of this host: the store's config and leases, the external
 * interface, subnet.env, this host's lease and its backend's inspection. A failure is returned as
 * a check group whose one finding says what could not be read.
 */
export async function readHostView(
  options: FlanneldOptions,
  deps: DoctorDeps,
  signal: AbortSignal,
): Promise<{ view: HostView } | { failure: CheckGroup }> {
  let config: NetworkConfig;
  let leases: readonly Lease[];
  let publicIPs: { v4: string | null; v6: string | null } = { v4: null, v6: null };
  let manager: SubnetManager | null = null;
  try {
    manager = await deps.openManager();
    config = await manager.getNetworkConfig({ signal });
    leases = await manager.listLeases({ signal });
    publicIPs = (await manager.getNodePublicIPs?.({ signal })) ?? publicIPs;
  } catch (err) {
    return {
      failure: {
        name: "store",
        findings: [
          finding(
            "store-unreadable",
            "error",
            options.kubeSubnetMgr ? "Kubernetes API" : `etcd ${options.etcdEndpoints.join(",")}`,
            `cannot read the network config and leases: ${(err as Error).message}`,
            STORE_WHY,
            "check the store flags (the same as flanneld's) and that the store is reachable from this host",
          ),
        ],
      },
    };
  } finally {
    await manager?.close();
  }
  let extIface: ExternalInterface;
  try {
    extIface = await lookupExternalInterface(interfaceChoiceOf(options, publicIPs, config));
  } catch (err) {
    return {
      failure: {
        name: "interface",
        findings: [
          finding(
            "interface-not-found",
            "error",
            options.iface.join(",") || "default route interface",
            (err as Error).message,
            "flanneld cannot start without its external interface",
            "give flanneld (and doctor) the right --iface, --iface-regex or --public-ip",
          ),
        ],
      },
    };
  }
  const subnetEnv = await readFile(options.subnetFile, "utf8").catch(() => null);
  const own = ownLease(leases, subnetEnv, extIface);
  const inspection =
    own === null
      ? null
      : backendFor(config.backendType)
          .configure(config.backend)
          .inspect(config, extIface, deps.netlink, own, dirname(options.subnetFile));
  return {
    view: {
      options,
      config,
      leases,
      own,
      extIface,
      inspection,
      subnetEnv,
      netlink: deps.netlink,
      traffic: deps.newTrafficManager(config.enableNFTables),
      procDir: deps.procDir ?? "/proc",
      kernelRelease: deps.kernelRelease ?? release(),
      now: deps.now?.() ?? new Date(),
    },
  };
}

/** Runs every check once. */
export async function runDoctor(
  options: FlanneldOptions,
  deps: DoctorDeps,
  signal: AbortSignal,
): Promise<DoctorReport> {
  const flanneld = await checkFlanneld(deps.processes, options);
  const read = await readHostView(options, deps, signal);
  if ("failure" in read) return { host: null, groups: [flanneld, read.failure], policy: null };
  const { view } = read;
  const groups = [
    flanneld,
    checkOwnLease(view),
    checkSubnetEnv(view),
    await checkDevices(view),
    await checkEntries(view),
    await checkTrafficRules(view),
    checkKernelSettings(view),
    await checkPodMtu(view),
    await checkTunnels(view),
    await checkHooks(view),
    checkStoreLeases(view),
  ];
  const policy = await checkPolicy(view, deps.policy ?? null);
  if (policy !== null) groups.push(policy.group);
  return {
    host: {
      interface: view.extIface.name,
      publicIP: view.config.enableIPv4
        ? view.extIface.extAddr
        : (view.extIface.extV6Addr ?? view.extIface.extAddr),
      lease: view.own === null ? null : primarySubnetOf(view.own).toString(),
      backend: view.config.backendType,
      families: [view.config.enableIPv4 ? "IPv4" : "", view.config.enableIPv6 ? "IPv6" : ""]
        .filter((f) => f !== "")
        .join("+"),
      peers: view.leases.length - (view.own === null ? 0 : 1),
    },
    groups,
    policy: policy?.pods ?? null,
  };
}

/** What --fix did: each safe fix applied, or why it failed. */
export interface FixResult {
  readonly finding: Finding;
  readonly error: string | null;
}

/** Applies the safe fixes of a report, in its order (which is the order they must go in). */
export async function applyFixes(report: DoctorReport): Promise<FixResult[]> {
  const results: FixResult[] = [];
  for (const f of findingsOf(report)) {
    if (f.repair === undefined) continue;
    try {
      await f.repair();
      results.push({ finding: f, error: null });
    } catch (err) {
      results.push({ finding: f, error: (err as Error).message });
    }
  }
  return results;
}
