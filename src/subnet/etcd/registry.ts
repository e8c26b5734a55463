/**
 * The etcd v3 side of the etcd subnet manager (flannel's pkg/subnet/etcd/registry.go): the key
 * layout, lease values, create-if-absent, TTLs and watches. It knows nothing of allocation.
 *
 * Layout, as flannel's: `<prefix>/config` holds the network config; each lease is
 * `<prefix>/subnets/<subnet key>` holding flannel's LeaseAttrs JSON, attached to an etcd lease
 * whose TTL is the lease's life. A key with no etcd lease is a reservation: it never expires.
 */
import { readFile } from "node:fs/promises";
import {
  ConfigError,
  ConfigNotFoundError,
  LeaseConflictError,
  StoreError,
  UnreadableLeaseError,
} from "../../errors.js";
import { decodeLeaseAttrs, encodeLeaseAttrs, makeSubnetKey } from "../../lease/lease.js";
import type { IPv4Lease, LeaseAttrs } from "../../lease/lease.js";
import type { IPNet } from "../../ip/ip.js";
import type { CallOptions } from "../../util/call_options.js";
import { type Clock, systemClock } from "../../util/clock.js";
import { parseSubnetKey } from "../subnet_key.js";
import { EtcdGateway, EtcdUnavailableError, type GatewayConfig } from "./gateway.js";
import {
  base64,
  listField,
  objectField,
  readHeader,
  readKeyValue,
  textField,
} from "./gateway_json.js";
import type { EtcdKeyValue, JsonObject } from "./gateway_json.js";
import { watchKeys } from "./gateway_watch.js";

export { DEFAULT_ETCD_ENDPOINTS, DEFAULT_ETCD_PREFIX, SUBNET_TTL_SECONDS } from "./defaults.js";
export { WatchCompactedError } from "./gateway_watch.js";

/** How to reach etcd: flannel's --etcd-* flags. */
export interface EtcdConfig {
  readonly endpoints: readonly string[];
  readonly prefix: string;
  readonly keyFile?: string;
  readonly certFile?: string;
  readonly caFile?: string;
  readonly username?: string;
  readonly password?: string;
}

/** Reads a file a flag names; the error names the flag and the file. */
async function readFlagFile(flag: string, path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    const reason =
      (err as NodeJS.ErrnoException).code === "ENOENT"
        ? "file does not exist"
        : (err as Error).message;
    throw new ConfigError(`Cannot read ${flag} "${path}": ${reason}`, { cause: err });
  }
}

/** Keys per page when the leases are listed. */
export const LIST_PAGE_SIZE = 1_000;

/** The end of the range of keys that start with `prefix` (etcd's prefix range_end). */
function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    const byte = end.readUInt8(i);
    if (byte < 0xff) {
      end.writeUInt8(byte + 1, i);
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]); // every key
}

/** A key under `<prefix>/subnets/` that could not be read as a lease, and why. */
export interface SkippedKey {
  readonly key: string;
  readonly reason: string;
}

/** Every lease at one etcd revision. */
export interface SubnetListing {
  readonly leases: readonly IPv4Lease[];
  readonly skipped: readonly SkippedKey[];
  readonly revision: bigint;
}

/** One change seen by a watch. `lease` is null when the key or value could not be read. */
export interface SubnetChange {
  readonly type: "put" | "delete";
  readonly key: string;
  readonly lease: IPv4Lease | null;
  readonly reason?: string;
}

/** The changes of one etcd watch response. */
export interface SubnetChangeBatch {
  readonly revision: bigint;
  readonly changes: readonly SubnetChange[];
}

/** A page of keys, as a range answer holds them. */
interface RangeAnswer {
  readonly kvs: readonly EtcdKeyValue[];
  readonly more: boolean;
  readonly revision: bigint;
  readonly clusterId: string;
}

/** The store stopped answering (once per outage), or answers again after `downMs`. */
export type ConnectionChange =
  { readonly up: false; readonly err: Error } | { readonly up: true; readonly downMs: number };

/** The etcd v3 store of one flannel network. */
export class EtcdRegistry {
  readonly #client: EtcdGateway;
  readonly #prefix: string;
  /** When the watches lost the store; null while it answers. */
  #downSince: number | null = null;
  readonly #connectionListeners = new Set<(change: ConnectionChange) => void>();

  private constructor(
    client: EtcdGateway,
    prefix: string,
    readonly clock: Clock,
  ) {
    this.#client = client;
    this.#prefix = prefix.replace(/\/+$/, "");
  }

  /**
   * Tells `listener` when the watches lose the store and when they have it again: one call per
   * outage each way, however many watches notice it (they reconnect by themselves, with backoff).
   */
  onConnectionChange(listener: (change: ConnectionChange) => void): void {
    this.#connectionListeners.add(listener);
  }

  #connectionLost(err: Error): void {
    if (this.#downSince !== null) return;
    this.#downSince = this.clock.now();
    for (const listener of this.#connectionListeners) listener({ up: false, err });
  }

  #connectionBack(): void {
    if (this.#downSince === null) return;
    const downMs = this.clock.now() - this.#downSince;
    this.#downSince = null;
    for (const listener of this.#connectionListeners) listener({ up: true, downMs });
  }

  /**
   * Connects (lazily) to etcd. TLS is used when both key and cert are given, as in flannel, or
   * when an endpoint is https://. Requests fail after REQUEST_TIMEOUT_MS (gateway.ts), and the
   * watches notice a dead connection within ~15 s (gateway_watch.ts): a store behind a firewall
   * that drops packets never hangs flanneld.
   */
  static async connect(config: EtcdConfig, clock: Clock = systemClock): Promise<EtcdRegistry> {
    const gateway: { -readonly [K in keyof GatewayConfig]: GatewayConfig[K] } = {
      endpoints: config.endpoints,
    };
    if (config.keyFile && config.certFile) {
      const [key, cert, ca] = await Promise.all([
        readFlagFile("--etcd-keyfile", config.keyFile),
        readFlagFile("--etcd-certfile", config.certFile),
        config.caFile ? readFlagFile("--etcd-cafile", config.caFile) : Promise.resolve(undefined),
      ]);
      // Without a CA file, the system's CAs check etcd's certificate.
      gateway.tls = { key, cert, ...(ca === undefined ? {} : { ca }) };
    } else if (config.caFile) {
      gateway.tls = { ca: await readFlagFile("--etcd-cafile", config.caFile) };
    }
    if (config.username) {
      gateway.username = config.username;
      gateway.password = config.password ?? "";
    }
    return new EtcdRegistry(new EtcdGateway(gateway), config.prefix, clock);
  }

  /** The key that holds the network config. */
  get configKey(): string {
    return `${this.#prefix}/config`;
  }

  /** The folder that holds the leases, with a trailing slash. */
  get subnetsPrefix(): string {
    return `${this.#prefix}/subnets/`;
  }

  /** The key of a lease. */
  subnetKey(subnet: IPNet, ipv6Subnet: IPNet | null): string {
    return this.subnetsPrefix + makeSubnetKey(subnet, ipv6Subnet);
  }

  /** Reads the network config text. */
  async getNetworkConfigText(): Promise<string> {
    const page = await this.#range("read the network config", { key: base64(this.configKey) });
    const text = page.kvs[0]?.value.toString("utf8") ?? null;
    if (text === null) {
      throw new ConfigNotFoundError(
        `Cannot read network config at "${this.configKey}": flannel config not found in etcd store. Did you create your config using etcdv3 API?`,
      );
    }
    return text;
  }

  /** Stores the network config text. */
  async setNetworkConfigText(text: string): Promise<void> {
    await this.#call("store the network config", "/kv/put", {
      key: base64(this.configKey),
      value: base64(text),
    });
  }

  /**
   * Every key under the subnets prefix, in pages of LIST_PAGE_SIZE read at one revision (the
   * first page's), so that a big cluster is never one huge response (etcd's gRPC side refuses answers over
   * 4 MiB: about 20,000 leases) and the listing is still one consistent snapshot.
   */
  async #listSubnetKeys(): Promise<{ kvs: EtcdKeyValue[]; revision: bigint }> {
    const end = base64(prefixEnd(Buffer.from(this.subnetsPrefix)));
    let from = Buffer.from(this.subnetsPrefix);
    let revision: bigint | null = null;
    const kvs: EtcdKeyValue[] = [];
    for (;;) {
      const at: bigint | null = revision;
      const page = await this.#range("list the subnet leases", {
        key: base64(from),
        range_end: end,
        limit: LIST_PAGE_SIZE,
        ...(at === null ? {} : { revision: String(at) }),
      });
      const pinned: bigint = at ?? page.revision;
      revision = pinned;
      kvs.push(...page.kvs);
      const last = page.kvs.at(-1);
      if (!page.more || last === undefined) return { kvs, revision: pinned };
      from = Buffer.concat([last.key, Buffer.from([0])]);
    }
  }

  /**
   * Which store this is and how far it has got: etcd's cluster ID and current revision, from
   * the header of a count-only read.
   */
  async storeState(): Promise<{ clusterId: string; revision: bigint }> {
    const page = await this.#range("read the store's revision", {
      key: base64(this.configKey),
      count_only: true,
    });
    return { clusterId: page.clusterId, revision: page.revision };
  }

  /** Lists every lease under the prefix. Keys that do not parse are returned in `skipped`. */
  async getSubnets(options: { withExpiration: boolean }): Promise<SubnetListing> {
    const response = await this.#listSubnetKeys();
    const leases: IPv4Lease[] = [];
    const skipped: SkippedKey[] = [];
    const now = this.clock.now();
    await Promise.all(
      response.kvs.map(async (kv) => {
        const key = kv.key.toString();
        const decoded = this.#decode(kv);
        if ("reason" in decoded) {
          skipped.push({ key, reason: decoded.reason });
          return;
        }
        let lease = decoded.lease;
        if (options.withExpiration && kv.lease !== "0") {
          const ttl = await this.#ttlSeconds(kv.lease);
          lease = { ...lease, expiration: ttl < 0 ? null : new Date(now + ttl * 1000) };
        }
        leases.push(lease);
      }),
    );
    leases.sort((a, b) => (a.subnet.ip < b.subnet.ip ? -1 : a.subnet.ip > b.subnet.ip ? 1 : 0));
    return { leases, skipped, revision: response.revision };
  }

  /**
   * Reads one lease; null when its key is absent. Throws UnreadableLeaseError for a non-lease.
   * Its expiration is read too (one more request) unless `withExpiration` is false.
   */
  async getSubnet(
    subnet: IPNet,
    ipv6Subnet: IPNet | null,
    options: { withExpiration: boolean } = { withExpiration: true },
  ): Promise<{ lease: IPv4Lease | null; revision: bigint }> {
    const key = this.subnetKey(subnet, ipv6Subnet);
    const response = await this.#range("read a subnet lease", { key: base64(key) });
    const revision = response.revision;
    const kv = response.kvs[0];
    if (kv === undefined) return { lease: null, revision };
    const decoded = this.#decode(kv);
    if ("reason" in decoded) throw new UnreadableLeaseError(key, decoded.reason);
    let lease = decoded.lease;
    if (options.withExpiration && kv.lease !== "0") {
      const ttl = await this.#ttlSeconds(kv.lease);
      lease = { ...lease, expiration: ttl < 0 ? null : new Date(this.clock.now() + ttl * 1000) };
    }
    return { lease, revision };
  }

  /**
   * Creates a lease if its key is absent (a transaction on the key's version). Throws
   * LeaseConflictError when another node got there first.
   */
  async createSubnet(
    subnet: IPNet,
    ipv6Subnet: IPNet | null,
    attrs: LeaseAttrs,
    ttlSeconds: number,
  ): Promise<IPv4Lease> {
    const key = this.subnetKey(subnet, ipv6Subnet);
    const etcdLease = await this.#grant(ttlSeconds);
    const put = { key, value: encodeLeaseAttrs(attrs), lease: etcdLease };
    if (!(await this.#putIfVersion("create a subnet lease", "EQUAL", put)).put) {
      await this.#revoke(etcdLease);
      throw new LeaseConflictError(makeSubnetKey(subnet, ipv6Subnet));
    }
    return {
      subnet,
      ipv6Subnet,
      attrs,
      expiration: new Date(this.clock.now() + ttlSeconds * 1000),
      reserved: false,
    };
  }

  /**
   * Rewrites an existing lease with new attributes and a fresh TTL, only if its key still exists.
   * A reservation (`ttlSeconds` null) is rewritten without an etcd lease, so it stays one.
   * Returns null when the key is gone. The etcd lease it replaced (which the put names, from
   * the same transaction) is revoked once unused, without waiting for it: a lease that holds no
   * key deletes nothing, and one left by a process ended meanwhile expires at its TTL.
   */
  async updateSubnet(
    lease: Pick<IPv4Lease, "subnet" | "ipv6Subnet">,
    attrs: LeaseAttrs,
    ttlSeconds: number | null,
  ): Promise<IPv4Lease | null> {
    const key = this.subnetKey(lease.subnet, lease.ipv6Subnet);
    const etcdLease = ttlSeconds === null ? null : await this.#grant(ttlSeconds);
    const put = { key, value: encodeLeaseAttrs(attrs), lease: etcdLease };
    const { put: kept, replacedLease } = await this.#putIfVersion(
      "renew a subnet lease",
      "GREATER",
      put,
    );
    if (!kept) {
      if (etcdLease !== null) await this.#revoke(etcdLease);
      return null;
    }
    if (replacedLease !== "0" && replacedLease !== etcdLease) void this.#revoke(replacedLease);
    return {
      subnet: lease.subnet,
      ipv6Subnet: lease.ipv6Subnet,
      attrs,
      expiration: ttlSeconds === null ? null : new Date(this.clock.now() + ttlSeconds * 1000),
      reserved: ttlSeconds === null,
    };
  }

  /** Deletes a lease key. */
  async deleteSubnet(subnet: IPNet, ipv6Subnet: IPNet | null): Promise<void> {
    const key = this.subnetKey(subnet, ipv6Subnet);
    await this.#call("delete a subnet lease", "/kv/deleterange", { key: base64(key) });
  }

  /**
   * Follows changes under the subnets prefix (or of one key) from `startRevision`. The watch
   * reconnects by itself after a dropped connection and resumes after the last revision it saw;
   * when etcd has compacted that revision the iteration throws WatchCompactedError, and the
   * caller starts again from a fresh listing.
   */
  async *watchSubnets(
    startRevision: bigint,
    opts: CallOptions & {
      readonly key?: string;
      /** Told each time the watch stream is opened again after the connection was lost. */
      readonly onReconnect?: () => void;
    },
  ): AsyncGenerator<SubnetChangeBatch> {
    const key = Buffer.from(opts.key ?? this.subnetsPrefix);
    let connections = 0;
    const batches = watchKeys(
      this.#client,
      { key, ...(opts.key === undefined ? { rangeEnd: prefixEnd(key) } : {}), startRevision },
      {
        signal: opts.signal,
        clock: this.clock,
        onConnected: () => {
          this.#connectionBack();
          if (++connections > 1) opts.onReconnect?.();
        },
        onDisconnected: (err) => {
          this.#connectionLost(err);
        },
      },
    );
    for await (const batch of batches) {
      const changes = batch.events.map((event): SubnetChange => {
        const eventKey = event.kv.key.toString();
        if (event.type === "delete") return this.#deletion(eventKey, event.prevKv);
        const decoded = this.#decode(event.kv);
        if ("reason" in decoded)
          return { type: "put", key: eventKey, lease: null, reason: decoded.reason };
        return { type: "put", key: eventKey, lease: decoded.lease };
      });
      yield { revision: batch.revision, changes };
    }
  }

  #deletion(key: string, previous: EtcdKeyValue | null): SubnetChange {
    const parsed = parseSubnetKey(key.slice(this.subnetsPrefix.length));
    if (parsed === null)
      return { type: "delete", key, lease: null, reason: "the key is not a subnet key" };
    const decoded = previous === null ? null : this.#decode(previous);
    const attrs = decoded !== null && "lease" in decoded ? decoded.lease.attrs : EMPTY_ATTRS;
    return { type: "delete", key, lease: { ...parsed, attrs, expiration: null, reserved: false } };
  }

  /** Closes the connections; watches under way end. */
  close(): void {
    this.#client.close();
  }

  #decode(kv: EtcdKeyValue): { lease: IPv4Lease } | { reason: string } {
    const key = kv.key.toString();
    const parsed = parseSubnetKey(key.slice(this.subnetsPrefix.length));
    if (!key.startsWith(this.subnetsPrefix) || parsed === null) {
      return { reason: "the key is not a subnet key such as 10.244.1.0-24" };
    }
    try {
      const attrs = decodeLeaseAttrs(kv.value.toString());
      const reserved = kv.lease === "0";
      return { lease: { ...parsed, attrs, expiration: null, reserved } };
    } catch (err) {
      return { reason: (err as Error).message };
    }
  }

  async #grant(ttlSeconds: number): Promise<string> {
    const answer = await this.#call("grant an etcd lease", "/lease/grant", { TTL: ttlSeconds });
    return textField(answer, "ID");
  }

  async #revoke(etcdLease: string): Promise<void> {
    await this.#client.call("/lease/revoke", { ID: etcdLease }).catch(() => undefined);
  }

  async #ttlSeconds(etcdLease: string): Promise<number> {
    const answer = await this.#call("read a lease TTL", "/lease/timetolive", { ID: etcdLease });
    return Number(textField(answer, "TTL"));
  }

  /** A range read (`/v3/kv/range`). */
  async #range(action: string, request: JsonObject): Promise<RangeAnswer> {
    const answer = await this.#call(action, "/kv/range", request);
    const { revision, clusterId } = readHeader(answer);
    const kvs = listField(answer, "kvs").map(readKeyValue);
    return { kvs, more: answer.more === true, revision, clusterId };
  }

  /**
   * Puts a key in a transaction on its version: created only if absent ("EQUAL" 0), or rewritten
   * only if present ("GREATER" than 0). Whether it was put, and the etcd lease the value it
   * replaced was attached to ("0": none).
   */
  async #putIfVersion(
    action: string,
    result: "EQUAL" | "GREATER",
    put: { readonly key: string; readonly value: string; readonly lease: string | null },
  ): Promise<{ put: boolean; replacedLease: string }> {
    const key = base64(put.key);
    const answer = await this.#call(action, "/kv/txn", {
      compare: [{ key, target: "VERSION", result, version: "0" }],
      success: [
        {
          request_put: {
            key,
            value: base64(put.value),
            ...(put.lease === null ? {} : { lease: put.lease }),
            prev_kv: true,
          },
        },
      ],
    });
    if (answer.succeeded !== true) return { put: false, replacedLease: "0" };
    const [reply = {}] = listField(answer, "responses");
    const replaced = objectField(objectField(reply, "response_put"), "prev_kv");
    return { put: true, replacedLease: textField(replaced, "lease") };
  }

  /**
   * One request. A request that cannot reach etcd marks the connection lost, and one that
   * answers marks it back, as the watches' own connection events do: an etcd that goes away
   * before any watch has connected (or while none is open) is reported too.
   */
  async #call(action: string, path: string, body: JsonObject): Promise<JsonObject> {
    try {
      const result = await this.#client.call(path, body);
      this.#connectionBack();
      return result;
    } catch (err) {
      if (err instanceof EtcdUnavailableError) this.#connectionLost(err);
      throw new StoreError(`Cannot ${action} in etcd: ${(err as Error).message}`, { cause: err });
    }
  }
}

const EMPTY_ATTRS: LeaseAttrs = { publicIP: "", publicIPv6: null, backendType: "" };
