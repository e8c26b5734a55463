import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import pino from "pino";
import { metricsAllowed, startHealthzServer } from "./server.js";

const log = pino({ level: "silent" });
const metrics = { contentType: "text/plain", metrics: () => Promise.resolve("flannel_up 1\n") };

async function get(host: string, port: number, path: string): Promise<[number, string]> {
  const res = await fetch(`http://${host}:${port}${path}`);
  return [res.status, await res.text()];
}

test("/metrics answers only on --metrics-ip (loopback by default), /healthz everywhere the listener is", async () => {
  const server = await startHealthzServer(
    { host: "0.0.0.0", port: 0 },
    { ready: true },
    log,
    metrics,
  );
  try {
    const { port } = server.address() as AddressInfo;
    assert.deepEqual(await get("127.0.0.1", port, "/metrics"), [200, "flannel_up 1\n"]);
    // 127.0.0.2 stands for any other address of the host.
    const [status, body] = await get("127.0.0.2", port, "/metrics");
    assert.equal(status, 403);
    assert.match(body, /metrics are served on 127\.0\.0\.1 only: .*--metrics-ip=0\.0\.0\.0/);
    assert.deepEqual(await get("127.0.0.2", port, "/healthz"), [200, "flanneld is running"]);
  } finally {
    server.close();
  }
});

test("--metrics-ip=0.0.0.0 serves /metrics on every address", async () => {
  const server = await startHealthzServer(
    { host: "0.0.0.0", port: 0, metricsIP: "0.0.0.0" },
    { ready: true },
    log,
    metrics,
  );
  try {
    const { port } = server.address() as AddressInfo;
    assert.deepEqual(await get("127.0.0.2", port, "/metrics"), [200, "flannel_up 1\n"]);
  } finally {
    server.close();
  }
});

test("metricsAllowed() matches the address reached, IPv4-mapped or not", () => {
  assert.equal(metricsAllowed("127.0.0.1", "::ffff:127.0.0.1"), true);
  assert.equal(metricsAllowed("127.0.0.1", "10.0.0.5"), false);
  assert.equal(metricsAllowed("::", "10.0.0.5"), true);
  assert.equal(metricsAllowed("::1", "::1"), true);
});
