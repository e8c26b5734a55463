import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { StoreError } from "../../errors.js";
import { startEtcd } from "../../../lab/etcd_server.js";
import { run } from "../../util/exec.js";
import { silentLogger } from "../../log/logger.js";
import { LocalManager } from "./local_manager.js";
import { EtcdRegistry } from "./registry.js";
import type { EtcdConfig } from "./registry.js";

/** Stores the network config through a registry of its own, as `flannelctl config set` does. */
async function storeConfig(config: EtcdConfig): Promise<void> {
  const registry = await EtcdRegistry.connect(config);
  try {
    await registry.setNetworkConfigText(CONFIG);
  } finally {
    registry.close();
  }
}

const attrs = { publicIP: "192.0.2.1", publicIPv6: null, backendType: "alloc" };
const CONFIG = '{"Network":"10.40.0.0/16","Backend":{"Type":"alloc"}}';

/** A CA, a server certificate for 127.0.0.1, and a client certificate, made with openssl. */
async function makeCertificates(dir: string) {
  const path = (name: string) => join(dir, name);
  await run("openssl", [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    path("ca.key"),
    "-out",
    path("ca.crt"),
    "-days",
    "1",
    "-subj",
    "/CN=flannel-ts test CA",
  ]);
  for (const [name, usage] of [
    ["server", "serverAuth,clientAuth"],
    ["client", "clientAuth"],
  ] as const) {
    await writeFile(
      path(`${name}.ext`),
      `subjectAltName=IP:127.0.0.1\nextendedKeyUsage=${usage}\n`,
    );
    await run("openssl", [
      "req",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      path(`${name}.key`),
      "-out",
      path(`${name}.csr`),
      "-subj",
      `/CN=${name}`,
    ]);
    await run("openssl", [
      "x509",
      "-req",
      "-in",
      path(`${name}.csr`),
      "-CA",
      path("ca.crt"),
      "-CAkey",
      path("ca.key"),
      "-CAcreateserial",
      "-out",
      path(`${name}.crt`),
      "-days",
      "1",
      "-extfile",
      path(`${name}.ext`),
    ]);
  }
  return {
    ca: path("ca.crt"),
    serverCert: path("server.crt"),
    serverKey: path("server.key"),
    clientCert: path("client.crt"),
    clientKey: path("client.key"),
  };
}

test("LocalManager talks to etcd over TLS with a client certificate (--etcd-cafile/certfile/keyfile)", async () => {
  const dir = await mkdtemp(join(tmpdir(), "flannel-ts-tls-"));
  const certs = await makeCertificates(dir);
  const server = await startEtcd({
    tls: { certFile: certs.serverCert, keyFile: certs.serverKey, caFile: certs.ca },
  });
  const managers: LocalManager[] = [];
  try {
    const connect = async (extra: { certFile?: string; keyFile?: string }) => {
      const m = await LocalManager.connect(
        { endpoints: [server.endpoint], prefix: "/tls/network", caFile: certs.ca, ...extra },
        { log: silentLogger() },
      );
      managers.push(m);
      return m;
    };
    const withCert = await connect({ certFile: certs.clientCert, keyFile: certs.clientKey });
    await storeConfig({
      endpoints: [server.endpoint],
      prefix: "/tls/network",
      caFile: certs.ca,
      certFile: certs.clientCert,
      keyFile: certs.clientKey,
    });
    const lease = await withCert.acquireLease(attrs, { signal: AbortSignal.timeout(20_000) });
    assert.ok(lease.subnet.toString().startsWith("10.40."));
    const withoutCert = await connect({});
    await assert.rejects(
      withoutCert.getNetworkConfig({ signal: AbortSignal.timeout(20_000) }),
      StoreError,
    );
  } finally {
    await Promise.all(managers.map((m) => m.close()));
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test("LocalManager authenticates with --etcd-username and --etcd-password", async () => {
  const server = await startEtcd();
  const managers: LocalManager[] = [];
  try {
    const etcdctl = (args: string[]) => run("etcdctl", ["--endpoints", server.endpoint, ...args]);
    await etcdctl(["user", "add", "root:secret-pw"]);
    await etcdctl(["auth", "enable"]);
    const connect = async (auth: { username?: string; password?: string }) => {
      const m = await LocalManager.connect(
        { endpoints: [server.endpoint], prefix: "/auth/network", ...auth },
        { log: silentLogger() },
      );
      managers.push(m);
      return m;
    };
    const root = await connect({ username: "root", password: "secret-pw" });
    await storeConfig({
      endpoints: [server.endpoint],
      prefix: "/auth/network",
      username: "root",
      password: "secret-pw",
    });
    assert.ok(
      (await root.acquireLease(attrs, { signal: AbortSignal.timeout(20_000) })).subnet
        .toString()
        .startsWith("10.40."),
    );
    const anonymous = await connect({});
    await assert.rejects(
      anonymous.getNetworkConfig({ signal: AbortSignal.timeout(20_000) }),
      StoreError,
    );
    const wrong = await connect({ username: "root", password: "wrong" });
    await assert.rejects(
      wrong.getNetworkConfig({ signal: AbortSignal.timeout(20_000) }),
      StoreError,
    );
  } finally {
    await Promise.all(managers.map((m) => m.close()));
    await server.stop();
  }
});

test("EtcdRegistry.connect() names the flag and the file it cannot read", async () => {
  await assert.rejects(
    EtcdRegistry.connect({
      endpoints: ["http://127.0.0.1:9"],
      prefix: "/x",
      caFile: "/nonexistent/ca.pem",
    }),
    /Cannot read --etcd-cafile "\/nonexistent\/ca\.pem": file does not exist/,
  );
});
