/**
 * One etcd per test file, and a fresh key prefix per test, so tests do not see each other's keys.
 */
import { randomBytes } from "node:crypto";
import { Etcd3 } from "etcd3";
import { startEtcd } from "../../lab/etcd_server.js";
import type { EtcdServer } from "../../lab/etcd_server.js";
import { silentLogger } from "../../src/log/logger.js";
import { EtcdRegistry } from "../../src/subnet/etcd/registry.js";
import { LocalManager } from "../../src/subnet/etcd/local_manager.js";
import type { LocalManagerOptions } from "../../src/subnet/etcd/local_manager.js";

/** A test's view of the shared etcd. */
export interface EtcdFixture {
  readonly server: EtcdServer;
  readonly prefix: string;
  /** A registry for the test's own reads and writes. */
  readonly registry: EtcdRegistry;
  /** A plain etcd client, for what no flannel code does: odd keys, raw TTLs, compaction. */
  readonly client: Etcd3;
  /** Makes a manager for one more node; closed by cleanup(). */
  manager(options?: Partial<LocalManagerOptions>, endpoint?: string): Promise<LocalManager>;
  setConfig(json: string): Promise<void>;
  /** Revokes the etcd lease under a key, as etcd does when it expires: the key goes. */
  expire(key: string): Promise<void>;
  cleanup(): Promise<void>;
}

/** Opens a fixture with a fresh prefix on the given etcd. */
export async function openFixture(server: EtcdServer): Promise<EtcdFixture> {
  const prefix = `/flannel-ts-test/${randomBytes(4).toString("hex")}/network`;
  const registry = await EtcdRegistry.connect({ endpoints: [server.endpoint], prefix });
  const client = new Etcd3({ hosts: [server.endpoint] });
  const managers: LocalManager[] = [];
  return {
    server,
    prefix,
    registry,
    client,
    async manager(options = {}, endpoint = server.endpoint) {
      const m = await LocalManager.connect(
        { endpoints: [endpoint], prefix },
        { log: silentLogger(), ...options },
      );
      managers.push(m);
      return m;
    },
    async setConfig(json) {
      await registry.setNetworkConfigText(json);
    },
    async expire(key) {
      const kv = (await client.get(key).exec()).kvs[0];
      if (!kv || kv.lease === "0") throw new Error(`${key} has no etcd lease to expire`);
      await client.leaseClient.leaseRevoke({ ID: kv.lease });
    },
    async cleanup() {
      await Promise.all(managers.map((m) => m.close()));
      registry.close();
      client.close();
    },
  };
}

export { startEtcd };
