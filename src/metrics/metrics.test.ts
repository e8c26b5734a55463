import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { startHealthzServer } from "../healthz/server.js";
import { silentLogger } from "../log/logger.js";
import { createMetrics } from "./metrics.js";

test("createMetrics() reports the lease, data plane and traffic rule figures at scrape time", async () => {
  const figures = {
    remoteLeases: 4,
    syncs: 3,
    written: 12,
    removed: 1,
    failed: 0,
    syncFailures: 0,
    eventSyncs: 0,
    relistRepairs: 0,
    echoes: 0,
    checkFindings: 0,
  };
  let repairs = 0;
  const forwarding = {
    txPackets: 10,
    txBytes: 1_000,
    rxPackets: 7,
    rxBytes: 700,
    icmpUnreachable: 1,
    tunReads: 10,
    sendCalls: 2,
    recvCalls: 3,
    tunWrites: 7,
    workerExits: 0,
    drops: { no_route: 1, unknown_sender: 0 },
  };
  const nodeWatch = { lists: 2, watches: 3, expired: 1, failures: 0 };
  const registry = createMetrics({
    leaseExpiration: () => 1_900_000_000,
    leaseConflicts: () => 2,
    nodeWatch: () => nodeWatch,
    remoteLeases: () => 4,
    dataPlane: () => figures,
    forwarding: () => forwarding,
    tunnelPeers: () => [
      {
        device: "flannel-wg",
        publicKey: "K1=",
        endpoint: "10.0.0.2:51820",
        lastHandshakeMs: 1_900_000_000_000,
        rxBytes: 148,
        txBytes: 92,
      },
    ],
    trafficRuleRepairs: () => repairs,
    ready: () => true,
  });
  let text = await registry.metrics();
  for (const line of [
    "flannel_ready 1",
    "flannel_lease_expiration_timestamp_seconds 1900000000",
    "flannel_remote_leases 4",
    "flannel_lease_conflicts_total 2",
    "flannel_dataplane_entries_written_total 12",
    "flannel_traffic_rule_repairs_total 0",
    'flannel_udp_packets_total{direction="tx"} 10',
    'flannel_udp_bytes_total{direction="rx"} 700',
    'flannel_udp_dropped_packets_total{reason="no_route"} 1',
    'flannel_udp_dropped_packets_total{reason="unknown_sender"} 0',
    "flannel_udp_icmp_unreachable_total 1",
    "flannel_kube_node_lists_total 2",
    'flannel_wireguard_peers{device="flannel-wg"} 1',
    'flannel_wireguard_peer_latest_handshake_seconds{device="flannel-wg",public_key="K1="} 1900000000',
    'flannel_wireguard_peer_bytes{device="flannel-wg",public_key="K1=",direction="rx"} 148',
    "flannel_kube_node_watches_total 3",
    "flannel_kube_node_watch_expirations_total 1",
    "flannel_kube_node_watch_failures_total 0",
  ]) {
    assert.ok(text.includes(`\n${line}\n`), `${line} in\n${text}`);
  }
  assert.match(text, /flanneld_process_resident_memory_bytes/);
  figures.written = 15;
  repairs = 1;
  forwarding.drops.unknown_sender = 4;
  nodeWatch.failures = 3;
  text = await registry.metrics();
  assert.ok(text.includes("\nflannel_kube_node_watch_failures_total 3\n"));
  assert.ok(text.includes('\nflannel_udp_dropped_packets_total{reason="unknown_sender"} 4\n'));
  assert.ok(text.includes("\nflannel_dataplane_entries_written_total 15\n"));
  assert.ok(text.includes("\nflannel_traffic_rule_repairs_total 1\n"));
});

test("the healthz server serves /metrics when given a registry", async () => {
  const registry = createMetrics({
    leaseExpiration: () => null,
    leaseConflicts: () => 0,
    nodeWatch: () => null,
    remoteLeases: () => 0,
    dataPlane: () => null,
    forwarding: () => null,
    tunnelPeers: () => [],
    trafficRuleRepairs: () => 0,
    ready: () => false,
  });
  const server = await startHealthzServer(
    { host: "127.0.0.1", port: 0 },
    { ready: false },
    silentLogger(),
    registry,
  );
  try {
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /text\/plain/);
    assert.match(await res.text(), /\nflannel_ready 0\n/);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) =>
      server.close(() => {
        resolve();
      }),
    );
  }
});
