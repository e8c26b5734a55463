/**
 * flanneld's Prometheus metrics (flannel has none): what the lease, the data plane and the
 * traffic rules are doing, served at /metrics on the healthz port. Values are read from the
 * components' own counters when Prometheus scrapes, so nothing on the hot path pays for them.
 * Loaded only when --healthz-port is set.
 */
import type { DataPlaneStats, ForwardingStats, TunnelPeerStats } from "../backend/backend.js";
import type { NodeWatchFigures } from "../subnet/manager.js";
import type { PolicyStats } from "../netpol/enforcer.js";
import { Counter, Gauge, Registry, collectDefaultMetrics } from "prom-client";

/** What the metrics read. Each getter is called at scrape time. */
export interface MetricSources {
  /** Seconds since the epoch when this node's lease expires; null for a reservation. */
  readonly leaseExpiration: () => number | null;
  /** Create transactions lost to another node since start. */
  readonly leaseConflicts: () => number;
  /** The wireguard backend's peers as last read from its devices; [] for other backends. */
  readonly tunnelPeers: () => readonly TunnelPeerStats[];
  /** The Node watch's figures in Kubernetes mode; null in etcd mode. */
  readonly nodeWatch: () => Readonly<NodeWatchFigures> | null;
  /** Other nodes' leases the data plane follows now. */
  readonly remoteLeases: () => number;
  /** Data-plane sync figures since start. */
  readonly dataPlane: () => DataPlaneStats | null;
  /** The udp backend's packet loop; null for other backends. */
  readonly forwarding: () => ForwardingStats | null;
  /** Traffic-rule rewrites after a resync found rules missing. */
  readonly trafficRuleRepairs: () => number;
  /** With --network-policy: the enforcer's figures and its watches' (by kind); else null. */
  readonly networkPolicy?: () => {
    readonly stats: Readonly<PolicyStats>;
    readonly watches: Readonly<Record<string, NodeWatchFigures>>;
  } | null;
  readonly ready: () => boolean;
}

/** The data plane's counters: DataPlaneStats field, metric name (flannel_dataplane_*_total), help. */
const DATA_PLANE_COUNTERS: readonly [keyof DataPlaneStats, string, string][] = [
  ["syncs", "syncs", "Kernel syncs run"],
  ["written", "entries_written", "Kernel entries written (missing or changed)"],
  ["removed", "entries_removed", "Kernel entries removed because no lease needs them"],
  ["failed", "failures", "Kernel writes that failed"],
  [
    "syncFailures",
    "sync_failures",
    "Whole kernel syncs that failed and were retried at the next tick",
  ],
  [
    "eventSyncs",
    "event_syncs",
    "Kernel syncs started by a change the kernel announced (repair by events)",
  ],
  [
    "relistRepairs",
    "relist_repairs",
    "Repairs that had to list the kernel, because the announcement did not name the entry",
  ],
  [
    "echoes",
    "echoes",
    "The kernel's announcements of flanneld's own writes, recognised as such (no repair)",
  ],
  [
    "checkFindings",
    "check_findings",
    "Entries the periodic full check had to repair, that the event path missed (should stay 0)",
  ],
];

/** The Node watch's counters (Kubernetes mode): field, metric name (flannel_kube_node_*_total), help. */
const NODE_WATCH_COUNTERS: readonly [keyof NodeWatchFigures, string, string][] = [
  ["lists", "lists", "Node listings (at start, and after a watch expired)"],
  ["watches", "watches", "Node watches opened"],
  ["expired", "watch_expirations", "Node watches that ended in 410 Gone and were listed again"],
  ["failures", "watch_failures", "Failed Node listings or watches, retried with backoff"],
];

/** A registry with flanneld's metrics and Node's process metrics. */
export function createMetrics(sources: MetricSources): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "flanneld_" });
  const gauge = (name: string, help: string, read: () => number | null) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        const value = read();
        if (value !== null) this.set(value);
      },
    });
  const counter = (name: string, help: string, read: () => number) => {
    let last = 0;
    return new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        const value = read();
        if (value > last) this.inc(value - last);
        last = Math.max(last, value);
      },
    });
  };
  gauge("flannel_ready", "1 once subnet.env is written", () => (sources.ready() ? 1 : 0));
  gauge(
    "flannel_lease_expiration_timestamp_seconds",
    "When this node's lease expires (absent for a reservation)",
    sources.leaseExpiration,
  );
  gauge(
    "flannel_remote_leases",
    "Other nodes' leases the data plane follows",
    sources.remoteLeases,
  );
  counter(
    "flannel_lease_conflicts_total",
    "Subnet creations lost to another node and retried",
    sources.leaseConflicts,
  );
  for (const [key, name, help] of DATA_PLANE_COUNTERS)
    counter(`flannel_dataplane_${name}_total`, help, () => sources.dataPlane()?.[key] ?? 0);
  for (const [key, name, help] of NODE_WATCH_COUNTERS)
    counter(`flannel_kube_node_${name}_total`, help, () => sources.nodeWatch()?.[key] ?? 0);
  forwardingMetrics(registry, sources.forwarding);
  tunnelMetrics(registry, sources.tunnelPeers);
  counter(
    "flannel_traffic_rule_repairs_total",
    "Times the traffic rules were found missing and rewritten",
    sources.trafficRuleRepairs,
  );
  if (sources.networkPolicy !== undefined) networkPolicyMetrics(registry, sources.networkPolicy);
  return registry;
}

/** The NetworkPolicy enforcer's figures (--network-policy), flannel_netpol_*. */
function networkPolicyMetrics(
  registry: Registry,
  read: NonNullable<MetricSources["networkPolicy"]>,
): void {
  const one = (pick: (s: Readonly<PolicyStats>) => number) => () => {
    const now = read();
    return now === null ? [] : [[{}, pick(now.stats)] as const];
  };
  labelledGauge(
    registry,
    "flannel_netpol_policies",
    "NetworkPolicies in the cluster",
    [],
    one((s) => s.policies),
  );
  labelledGauge(
    registry,
    "flannel_netpol_pods_enforced",
    "This node's pods that a NetworkPolicy isolates",
    [],
    one((s) => s.podsEnforced),
  );
  labelledGauge(
    registry,
    "flannel_netpol_rules",
    "Rules in table inet flannel-policy",
    [],
    one((s) => s.rules),
  );
  labelledGauge(
    registry,
    "flannel_netpol_set_elements",
    "Set elements in table inet flannel-policy",
    [],
    one((s) => s.setElements),
  );
  labelledCounter(
    registry,
    "flannel_netpol_transactions_total",
    "nft transactions written",
    [],
    one((s) => s.transactions),
  );
  labelledCounter(
    registry,
    "flannel_netpol_repairs_total",
    "Times the table was found changed outside flanneld and rewritten",
    [],
    one((s) => s.repairs),
  );
  labelledCounter(
    registry,
    "flannel_netpol_write_failures_total",
    "nft transactions that failed and were retried",
    [],
    one((s) => s.failures),
  );
  labelledCounter(
    registry,
    "flannel_netpol_dropped_packets_total",
    "Packets dropped, by the first policy (namespace/name) isolating the pod, and direction",
    ["policy", "direction"],
    () =>
      [...(read()?.stats.drops ?? [])].flatMap(([policy, d]) => [
        [{ policy, direction: "ingress" }, d.ingress] as const,
        [{ policy, direction: "egress" }, d.egress] as const,
      ]),
  );
  for (const [field, name, help] of NODE_WATCH_COUNTERS)
    labelledCounter(
      registry,
      `flannel_netpol_watch_${name.replace(/^watch_/, "")}_total`,
      `${help.replace("Node", "Object")}, by kind`,
      ["kind"],
      () => Object.entries(read()?.watches ?? {}).map(([kind, w]) => [{ kind }, w[field]] as const),
    );
}

/**
 * A counter read at scrape time from a source that may be absent or labelled: each label set
 * keeps the last value read, and only the growth is added.
 */
function labelledCounter(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly string[],
  read: () => readonly (readonly [Record<string, string>, number])[],
): void {
  const last = new Map<string, number>();
  new Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      for (const [labels, value] of read()) {
        const key = JSON.stringify(labels);
        const before = last.get(key);
        // A series shows from the first scrape, at 0 if so (a drop reason seen as 0 is news).
        if (before === undefined || value > before) this.inc(labels, value - (before ?? 0));
        last.set(key, Math.max(before ?? 0, value));
      }
    },
  });
}

/** A gauge with labels, each series set from `read` at scrape time (gone ones dropped). */
function labelledGauge(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly string[],
  read: () => readonly (readonly [Record<string, string>, number])[],
): void {
  new Gauge({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const [labels, value] of read()) this.set(labels, value);
    },
  });
}

/**
 * The wireguard backend's peers: how many per device, and per peer the latest handshake and the
 * bytes each way. Gauges: a device remade by wireguard-go's restart starts again from 0.
 */
function tunnelMetrics(registry: Registry, read: () => readonly TunnelPeerStats[]): void {
  labelledGauge(
    registry,
    "flannel_wireguard_peers",
    "WireGuard peers on each device",
    ["device"],
    () => {
      const counts = new Map<string, number>();
      for (const p of read()) counts.set(p.device, (counts.get(p.device) ?? 0) + 1);
      return [...counts].map(([device, n]) => [{ device }, n] as const);
    },
  );
  const peer = (p: TunnelPeerStats) => ({ device: p.device, public_key: p.publicKey });
  labelledGauge(
    registry,
    "flannel_wireguard_peer_latest_handshake_seconds",
    "When each peer's latest handshake completed (Unix time; 0: none yet)",
    ["device", "public_key"],
    () => read().map((p) => [peer(p), (p.lastHandshakeMs ?? 0) / 1000] as const),
  );
  labelledGauge(
    registry,
    "flannel_wireguard_peer_bytes",
    "Bytes sent (tx) to and received (rx) from each peer, since its device was made",
    ["device", "public_key", "direction"],
    () =>
      read().flatMap((p) => [
        [{ ...peer(p), direction: "rx" }, p.rxBytes] as const,
        [{ ...peer(p), direction: "tx" }, p.txBytes] as const,
      ]),
  );
}

/** The udp backend's packets, bytes and drops (absent for other backends). */
function forwardingMetrics(registry: Registry, read: () => ForwardingStats | null): void {
  const each = (
    pick: (s: ForwardingStats) => readonly (readonly [Record<string, string>, number])[],
  ) => {
    return () => {
      const stats = read();
      return stats === null ? [] : pick(stats);
    };
  };
  labelledCounter(
    registry,
    "flannel_udp_packets_total",
    "Packets the udp backend moved: tx from the TUN to a host, rx from a host into the TUN",
    ["direction"],
    each((s) => [
      [{ direction: "tx" }, s.txPackets],
      [{ direction: "rx" }, s.rxPackets],
    ]),
  );
  labelledCounter(
    registry,
    "flannel_udp_bytes_total",
    "Bytes of IP packets the udp backend moved, by direction",
    ["direction"],
    each((s) => [
      [{ direction: "tx" }, s.txBytes],
      [{ direction: "rx" }, s.rxBytes],
    ]),
  );
  labelledCounter(
    registry,
    "flannel_udp_dropped_packets_total",
    "Packets the udp backend dropped, by reason",
    ["reason"],
    each((s) => Object.entries(s.drops).map(([reason, n]) => [{ reason }, n] as const)),
  );
  labelledCounter(
    registry,
    "flannel_udp_icmp_unreachable_total",
    "ICMP net-unreachable messages sent for packets to subnets without a lease",
    [],
    each((s) => [[{}, s.icmpUnreachable]]),
  );
  labelledCounter(
    registry,
    "flannel_udp_worker_restarts_total",
    "udp forwarder workers that stopped on an error and were restarted",
    [],
    each((s) => [[{}, s.workerExits]]),
  );
}
