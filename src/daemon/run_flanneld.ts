/**
 * flanneld's start-up and run (flannel's main.go, minus flag parsing): subnet manager, network
 * config, external interface, backend and lease, subnet.env, then the backend and the lease
 * keeper side by side until the signal aborts. Stopping keeps the lease, so a restart gets the
 * same subnet; the data plane is left in place.
 *
 * Where flannel loops forever on any config error, an invalid config stops flanneld with the
 * reason and a non-zero exit; a config that is only missing, or an etcd that cannot be reached,
 * is waited for, as in flannel.
 */
import { dirname } from "node:path";
import type { Server } from "node:http";
import { backendFor } from "../backend/registry.js";
import type { ConfiguredBackend, ExternalInterface, Network } from "../backend/backend.js";
import { writeSubnetEnv } from "../config/subnet_env.js";
import type { SubnetEnv } from "../config/subnet_env.js";
import type { NetworkConfig } from "../config/network_config.js";
import type { IPNet } from "../ip/ip.js";
import { ConfigError, ConfigNotFoundError, StoreError } from "../errors.js";
import { startHealthzServer } from "../healthz/server.js";
import type { Readiness } from "../healthz/server.js";
import { interfaceChoiceOf, lookupExternalInterface } from "../iface/external_interface.js";
import type { Logger } from "../log/logger.js";
import { checkBrNetfilter, checkIPForwarding, enableBridgeNetfilter } from "../net/sysctl.js";
import { ensureBlackholeRoute, keepBlackholeRoute } from "../net/blackhole_route.js";
import type { Netlink } from "../net/netlink.js";
import { flannelRulesFor, keepTrafficRules } from "../trafficmngr/traffic_manager.js";
import type { FlannelRules, TrafficManager } from "../trafficmngr/traffic_manager.js";
import type { StoreEvent, SubnetManager } from "../subnet/manager.js";
import type { PolicyEnforcer } from "../netpol/enforcer.js";
import type { IPFamily } from "../ip/ip.js";
import type { ServiceNotifier } from "./sd_notify.js";
import { trimHeapPeriodically } from "./heap_trim.js";
import { leaseKeyOf, primarySubnetOf } from "../lease/lease.js";
import type { CallOptions } from "../util/call_options.js";
import { runTogether } from "../util/run_together.js";
import { type Clock, systemClock } from "../util/clock.js";

/**
 * flanneld's settings, after flags and FLANNELD_* variables (src/cli/flanneld_flags.ts reads and
 * checks them): flannel's flags, camel-cased.
 */
export interface FlanneldOptions {
  readonly etcdEndpoints: readonly string[];
  readonly etcdPrefix: string;
  readonly etcdKeyfile: string;
  readonly etcdCertfile: string;
  readonly etcdCafile: string;
  readonly etcdUsername: string;
  readonly etcdPassword: string;
  readonly iface: readonly string[];
  readonly ifaceRegex: readonly string[];
  readonly ifaceCanReach: string;
  readonly subnetFile: string;
  readonly publicIP: string;
  readonly publicIPv6: string;
  readonly subnetLeaseRenewMargin: number;
  readonly ipMasq: boolean;
  readonly ipMasqFullyRandomDisable: boolean;
  readonly kubeSubnetMgr: boolean;
  readonly kubeApiUrl: string;
  readonly kubeAnnotationPrefix: string;
  readonly kubeconfigFile: string;
  readonly healthzIP: string;
  readonly healthzPort: number;
  /** flannel-ts: the address /metrics answers on (on the healthz port); 0.0.0.0 or :: for any. */
  readonly metricsIP: string;
  readonly iptablesResync: number;
  readonly iptablesForwardRules: boolean;
  readonly ipBlackholeRoute: boolean;
  readonly netConfigPath: string;
  readonly setNodeNetworkUnavailable: boolean;
  /** flannel-ts: enforce NetworkPolicy for this node's pods (kube mode only). */
  readonly networkPolicy: boolean;
  readonly v: number;
  readonly version: boolean;
}

/** How often a missing config or an unreachable store is retried, as flannel does. */
const CONFIG_RETRY_MS = 1_000;

/**
 * The implementations flanneld runs with, chosen by src/cli/ (the only place, with the backend
 * registry, that names implementations).
 */
export interface FlanneldDeps {
  /** Connects the subnet manager the flags ask for. */
  newSubnetManager(opts: CallOptions): Promise<SubnetManager>;
  /** The kernel, in flanneld's network namespace. */
  newNetlink(): Netlink;
  /** The traffic rules writer for the config's mode. */
  newTrafficManager(enableNFTables: boolean): TrafficManager;
  /** Where the kernel's /proc is; tests point it elsewhere. Default: /proc. */
  readonly procDir?: string;
  /** The service manager (systemd's NOTIFY_SOCKET), told readiness and status; absent: none. */
  readonly notifier?: ServiceNotifier | null;
  /** What retries and periodic checks wait on. Default: the system's. */
  readonly clock?: Clock;
  /**
   * With --network-policy (Kubernetes mode): the enforcer of this node's pods, for the network's
   * address families. Absent: the flag is refused.
   */
  newPolicyEnforcer?(families: readonly IPFamily[]): Promise<PolicyEnforcer>;
  /** Gives the C heap's freed pages back to the kernel (heap_trim.ts); absent: never. */
  readonly trimHeap?: () => void;
}

/** A store event as a status line for `systemctl status`. */
function statusOf(event: StoreEvent, subnet: string): string {
  switch (event.kind) {
    case "renewed":
      return `Lease ${subnet} renewed until ${event.expiration?.toISOString() ?? "never (reserved)"}`;
    case "disconnected":
      return `Lease ${subnet}; datastore unreachable (${event.reason}); the data plane stays as it is`;
    case "connected":
      return `Lease ${subnet}; datastore reachable again after ${Math.round(event.downMs / 1000)} s`;
  }
}

/** Reads the network config, waiting while it is missing or etcd is unreachable. */
async function getConfig(
  manager: SubnetManager,
  clock: Clock,
  log: Logger,
  opts: CallOptions,
): Promise<NetworkConfig | null> {
  for (;;) {
    try {
      return await manager.getNetworkConfig(opts);
    } catch (err) {
      if (!(err instanceof ConfigNotFoundError || err instanceof StoreError)) throw err;
      log.warn({ err: err.message }, "Cannot read network config yet; retrying in 1 s");
    }
    if (!(await clock.sleep(CONFIG_RETRY_MS, opts.signal))) return null;
  }
}

/**
 * Writes subnet.env; a file that cannot be written stops flanneld with the path and the errno
 * (the lease is kept: a restart with a writable --subnet-file gets the same subnet).
 */
function writeSubnetFileOrFail(path: string, env: SubnetEnv): void {
  try {
    writeSubnetEnv(path, env);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const where = e.path !== undefined && e.path !== path ? ` (at "${e.path}")` : "";
    throw new ConfigError(
      `Cannot write subnet file "${path}": ${e.code ?? e.message}${where}: give --subnet-file (FLANNELD_SUBNET_FILE) a path in a writable folder`,
      { cause: err },
    );
  }
}

/** Writes the masquerade and forward rules the flags ask for, after clearing the other mode's. */
async function setUpTrafficRules(
  traffic: TrafficManager,
  options: FlanneldOptions,
  config: NetworkConfig,
  subnet: IPNet | null,
  ipv6Subnet: IPNet | null,
  log: Logger,
): Promise<FlannelRules> {
  const randomFully =
    options.ipMasq && !options.ipMasqFullyRandomDisable && (await traffic.supportsRandomFully());
  const rules = flannelRulesFor(options, config, subnet, ipv6Subnet, randomFully);
  await traffic.cleanUpOtherMode();
  await traffic.apply(rules);
  log.info(
    { mode: traffic.mode, masq: rules.masq !== null, forward: rules.forward !== null, randomFully },
    "Traffic rules written",
  );
  return rules;
}

/** What the metrics read while flanneld runs: its network once registered, its repairs. */
interface LiveState {
  network: Network | null;
  policy: PolicyEnforcer | null;
  readonly trafficRepairs: { repairs: number };
  readonly readiness: Readiness;
  /** What /readyz waits for: subnet.env, and with --network-policy the first policy write. */
  readonly waitingFor: Set<"subnet" | "policy">;
}

/** Marks one thing /readyz waits for as done; ready once none is left. */
function done(live: LiveState, what: "subnet" | "policy"): void {
  live.waitingFor.delete(what);
  live.readiness.ready = live.waitingFor.size === 0;
}

/** The health and metrics listener (--healthz-port); null when the port is 0. */
async function startHealthz(
  options: FlanneldOptions,
  manager: SubnetManager,
  live: LiveState,
  log: Logger,
): Promise<Server | null> {
  if (options.healthzPort <= 0) return null;
  // prom-client is loaded only when there is somewhere to serve it.
  const { createMetrics } = await import("../metrics/metrics.js");
  const registry = createMetrics({
    leaseExpiration: () => {
      const expiration = live.network?.lease.expiration;
      return expiration ? expiration.getTime() / 1000 : null;
    },
    leaseConflicts: () => manager.stats?.conflicts ?? 0,
    nodeWatch: () => manager.watchStats ?? null,
    remoteLeases: () => live.network?.stats?.remoteLeases ?? 0,
    dataPlane: () => live.network?.stats ?? null,
    forwarding: () => live.network?.forwarding ?? null,
    tunnelPeers: () => live.network?.tunnelPeers ?? [],
    trafficRuleRepairs: () => live.trafficRepairs.repairs,
    ready: () => live.readiness.ready,
    ...(options.networkPolicy
      ? {
          networkPolicy: () =>
            live.policy === null
              ? null
              : { stats: live.policy.stats, watches: live.policy.watchStats },
        }
      : {}),
  });
  return startHealthzServer(
    { host: options.healthzIP, port: options.healthzPort, metricsIP: options.metricsIP },
    live.readiness,
    log,
    registry,
  );
}

/** Closes the health listener, dropping a probe's keep-alive connection that would hold it. */
async function closeHealthz(server: Server | null): Promise<void> {
  if (server === null) return;
  await new Promise<void>((resolve) => {
    server.close(() => {
      resolve();
    });
    server.closeAllConnections();
  });
}

/**
 * The network config, waited for, with the backend's options decoded once (a bad one stops
 * flanneld before anything is done); null when the signal aborted first.
 */
async function readNetworkConfig(
  manager: SubnetManager,
  deps: FlanneldDeps,
  log: Logger,
  opts: CallOptions,
): Promise<{ config: NetworkConfig; backend: ConfiguredBackend } | null> {
  const config = await getConfig(manager, deps.clock ?? systemClock, log, opts);
  if (config === null) return null;
  const backend = backendFor(config.backendType).configure(config.backend);
  for (const warning of config.warnings) log.warn({}, warning);
  if (!config.enableNFTables) checkBrNetfilter(config, deps.procDir);
  log.info(
    { network: config.network?.toString(), backend: config.backendType },
    "Network config read",
  );
  return { config, backend };
}

/** With --network-policy, the enforcer for the network's families; null without the flag. */
async function newPolicyEnforcer(
  options: FlanneldOptions,
  deps: FlanneldDeps,
  config: NetworkConfig,
  log: Logger,
): Promise<PolicyEnforcer | null> {
  if (!options.networkPolicy) return null;
  if (deps.newPolicyEnforcer === undefined)
    throw new ConfigError("Cannot enforce NetworkPolicy: --network-policy needs --kube-subnet-mgr");
  const families: IPFamily[] = [
    ...(config.enableIPv4 ? [4 as const] : []),
    ...(config.enableIPv6 ? [6 as const] : []),
  ];
  if (!options.ipMasq)
    log.warn(
      { flag: "--ip-masq" },
      "NetworkPolicy without --ip-masq: subnet.env then asks the CNI plugin's bridge to masquerade pod traffic to other nodes, so policies there see this node's address instead of the pod's; run flanneld with --ip-masq, as kube-flannel's DaemonSet does",
    );
  enableBridgeNetfilter(families, log, deps.procDir);
  const enforcer = await deps.newPolicyEnforcer(families);
  log.info(
    { node: enforcer.scope.nodeName, families, table: "inet flannel-policy" },
    "Enforcing NetworkPolicy for this node's pods",
  );
  return enforcer;
}

/** The external interface, with Kubernetes mode's node-public-ip[v6] annotations applied. */
async function findExternalInterface(
  options: FlanneldOptions,
  manager: SubnetManager,
  config: NetworkConfig,
  log: Logger,
  opts: CallOptions,
): Promise<ExternalInterface | null> {
  // Kubernetes mode: the node-public-ip[v6] annotations override --public-ip[v6].
  const imposed = (await manager.getNodePublicIPs?.(opts)) ?? { v4: null, v6: null };
  if (opts.signal.aborted) return null;
  if (imposed.v4 !== null || imposed.v6 !== null)
    log.info({ publicIP: imposed.v4, publicIPv6: imposed.v6 }, "Public IP from node annotation");
  const extIface = await lookupExternalInterface(interfaceChoiceOf(options, imposed, config));
  const { name, ifaceAddr, extAddr, mtu } = extIface;
  log.info({ iface: name, ifaceAddr, extAddr, mtu }, "Using interface");
  return extIface;
}

/** What runs once flanneld holds its lease and has written subnet.env and its rules. */
interface Started {
  readonly network: Network;
  readonly traffic: TrafficManager;
  readonly rules: FlannelRules;
  readonly ownSubnet: IPNet;
}

/**
 * subnet.env, the traffic rules and the blackhole route, in flannel's order: with --ip-masq the
 * masquerading is in place before subnet.env lets pods start (no pod traffic leaves
 * unmasqueraded); without it, subnet.env goes first, so that pods do not wait for iptables.
 */
async function announceLease(
  network: Network,
  config: NetworkConfig,
  ctx: { options: FlanneldOptions; deps: FlanneldDeps; manager: SubnetManager; netlink: Netlink },
  live: LiveState,
  log: Logger,
): Promise<Started> {
  const { options, deps, manager, netlink } = ctx;
  const writeSubnetFile = () => {
    writeSubnetFileOrFail(options.subnetFile, {
      network: config.enableIPv4 ? config.network : null,
      subnet: config.enableIPv4 ? network.lease.subnet : null,
      ipv6Network: config.enableIPv6 ? config.ipv6Network : null,
      ipv6Subnet: config.enableIPv6 ? network.lease.ipv6Subnet : null,
      mtu: network.mtu,
      ipMasq: options.ipMasq,
    });
    done(live, "subnet");
    log.info({ path: options.subnetFile }, "Wrote subnet file");
    const subnet = primarySubnetOf(network.lease).toString();
    deps.notifier?.ready(`Lease ${subnet}, backend ${config.backendType}, MTU ${network.mtu}`);
    manager.onStoreEvent?.((event) => deps.notifier?.status(statusOf(event, subnet)));
  };
  const traffic = deps.newTrafficManager(config.enableNFTables);
  if (!options.ipMasq) writeSubnetFile();
  const { subnet, ipv6Subnet } = network.lease;
  const rules = await setUpTrafficRules(traffic, options, config, subnet, ipv6Subnet, log);
  const ownSubnet = primarySubnetOf(network.lease);
  if (options.ipBlackholeRoute) {
    await ensureBlackholeRoute(netlink, ownSubnet);
    log.info({ subnet: ownSubnet.toString() }, "Blackhole route added");
  }
  if (options.ipMasq) writeSubnetFile();
  return { network, traffic, rules, ownSubnet };
}

/** The data plane, the lease, the traffic rules and the blackhole route, kept side by side. */
async function keepRunning(
  started: Started,
  ctx: { options: FlanneldOptions; deps: FlanneldDeps; manager: SubnetManager; netlink: Netlink },
  live: LiveState,
  log: Logger,
  opts: CallOptions,
): Promise<void> {
  const { network, traffic, rules, ownSubnet } = started;
  const { options, manager, netlink } = ctx;
  const resync = { resyncSeconds: options.iptablesResync, clock: ctx.deps.clock ?? systemClock };
  await runTogether(
    [
      (o) => network.run(o),
      (o) => manager.completeLease(network.lease, o),
      (o) => keepTrafficRules(traffic, rules, log, { ...o, ...resync, stats: live.trafficRepairs }),
      async (o) => {
        if (options.ipBlackholeRoute)
          await keepBlackholeRoute(netlink, ownSubnet, log, { ...o, ...resync });
      },
      async (o) => {
        if (ctx.deps.trimHeap) await trimHeapPeriodically(ctx.deps.trimHeap, resync.clock, o);
      },
      async (o) => {
        await live.policy?.run({
          ...o,
          resyncSeconds: options.iptablesResync,
          onReady: () => {
            done(live, "policy");
          },
        });
      },
    ],
    opts,
  );
}

/** Runs flanneld until the signal aborts. Rejects on a fatal error, such as a revoked lease. */
export async function runFlanneld(
  options: FlanneldOptions,
  deps: FlanneldDeps,
  log: Logger,
  opts: CallOptions,
): Promise<void> {
  const { signal } = opts;
  const notifier = deps.notifier ?? null;
  if (notifier !== null) {
    notifier.keepWatchdog(signal);
    signal.addEventListener("abort", () => {
      notifier.stopping("Stopping; the lease and the data plane are kept for the next start");
    });
  }
  const manager = await deps.newSubnetManager(opts);
  const netlink = deps.newNetlink();
  const live: LiveState = {
    network: null,
    policy: null,
    trafficRepairs: { repairs: 0 },
    readiness: { ready: false },
    waitingFor: new Set(options.networkPolicy ? ["subnet", "policy"] : ["subnet"]),
  };
  let healthz: Server | null = null;
  try {
    healthz = await startHealthz(options, manager, live, log);
    const read = await readNetworkConfig(manager, deps, log, opts);
    if (read === null) return;
    const { config } = read;
    live.policy = await newPolicyEnforcer(options, deps, config, log);
    const extIface = await findExternalInterface(options, manager, config, log, opts);
    if (extIface === null) return;
    checkIPForwarding(log);
    const backend = read.backend.create({
      subnetManager: manager,
      extIface,
      netlink,
      log: log.child({ component: config.backendType }),
      ...(deps.clock ? { clock: deps.clock } : {}),
      stateDir: dirname(options.subnetFile),
    });
    const network = await backend.registerNetwork(config, opts);
    live.network = network;
    log.info({ subnet: leaseKeyOf(network.lease), mtu: network.mtu }, "Lease acquired");
    const ctx = { options, deps, manager, netlink };
    const started = await announceLease(network, config, ctx, live, log);
    await keepRunning(started, ctx, live, log, opts);
    if (signal.aborted)
      log.info({}, "Stopping; the lease and the data plane are kept for the next start");
  } finally {
    netlink.close();
    await manager.close();
    await closeHealthz(healthz);
  }
}
