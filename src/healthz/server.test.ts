import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { silentLogger } from "../log/logger.js";
import { startHealthzServer } from "./server.js";

test("startHealthzServer() answers /healthz, and /readyz only once ready, with flannel's texts", async () => {
  const readiness = { ready: false };
  const server = await startHealthzServer(
    { host: "127.0.0.1", port: 0 },
    readiness,
    silentLogger(),
  );
  try {
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const get = async (path: string) => {
      const res = await fetch(base + path);
      return [res.status, await res.text()];
    };
    assert.deepEqual(await get("/healthz"), [200, "flanneld is running"]);
    assert.deepEqual(await get("/readyz"), [503, "flanneld is not ready yet"]);
    readiness.ready = true;
    assert.deepEqual(await get("/readyz"), [200, "flanneld is ready"]);
    assert.equal((await get("/nope"))[0], 404);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) =>
      server.close(() => {
        resolve();
      }),
    );
  }
});
