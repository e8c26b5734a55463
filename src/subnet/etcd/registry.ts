/**
 * The etcd v3 side of the etcd subnet manager (flannel's pkg/subnet/etcd/registry.go): the key
 * layout, lease values, create-if-absent, TTLs and watches. It knows nothing of allocation.
 *
 * Layout, as flannel's: `<prefix>/config` holds the network config; each lease is
 * `<prefix>/subnets/<subnet key>` holding flannel's LeaseAttrs JSON, attached to an etcd lease
 * whose TTL is the lease's life. A key with no etcd lease is a reservation: it never expires.
 */
import { on } from "node:events";
import { readFile } from "node:fs/promises";
import { setTimeout as delay } from "node:timers/promises";
import { Etcd3, GRPCDeadlineExceededError, GRPCUnavailableError } from "etcd3";
import type { IKeyValue, IOptions, IRangeResponse, IWatchResponse, Watcher } from "etcd3";
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

/** The part of etcd3's (private) watch manager that close() clears; see close(). */
interface WatchManagerInternals {
  watchers: unknown[];
  expectedClosers?: Set<unknown>;
}

export { DEFAULT_ETCD_ENDPOINTS, DEFAULT_ETCD_PREFIX, SUBNET_TTL_SECONDS } from "./defaults.js";

/** How long closing a watch may take before it is left to etcd3. */
const WATCH_CANCEL_TIMEOUT_MS = 2_000;

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

/** The etcd v3 store of one flannel network. */
/** How long a request to etcd may take before it fails (and is retried by its caller). */
const REQUEST_TIMEOUT_MS = 10_000;
/**
 * gRPC keepalive: a ping after 10 s without traffic, the connection dropped when it is not
 * answered within 5 s. etcd accepts pings every 5 s or slower (--grpc-keepalive-min-time).
 */
const KEEPALIVE_MS = 10_000;
const KEEPALIVE_TIMEOUT_MS = 5_000;

/** The store stopped answering (once per outage), or answers again after `downMs`. */
export type ConnectionChange =
  { readonly up: false; readonly err: Error } | { readonly up: true; readonly downMs: number };

export class EtcdRegistry {
  readonly #client: Etcd3;
  readonly #prefix: string;
  readonly #watchers = new Set<Watcher>();
  /** When the watches lost the store; null while it answers. */
  #downSince: number | null = null;
  readonly #connectionListeners = new Set<(change: ConnectionChange) => void>();

  private constructor(
    client: Etcd3,
    prefix: string,
    readonly clock: Clock,
  ) {
    this.#client = client;
    this.#prefix = prefix.replace(/\/+$/, "");
  }

  /**
   * Tells `listener` when the watches lose the store and when they have it again: one call per
   * outage each way, however many watches notice it (etcd3 reconnects them with backoff).
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

  /** Connects (lazily) to etcd. TLS is used when both key and cert are given, as in flannel. */
  static async connect(config: EtcdConfig, clock: Clock = systemClock): Promise<EtcdRegistry> {
    const options: IOptions = {
      hosts: [...config.endpoints],
      dialTimeout: 5_000,
      // A store behind a firewall that drops packets (rather than refusing) must not hang a
      // request, nor leave a watch waiting silently on a dead connection: requests have a
      // deadline, and keepalive pings find a dead connection within ~15 s, after which etcd3
      // reconnects (to another endpoint when there are several) with backoff.
      // (gRPC's deadline is a time of the system's clock, whatever clock flanneld runs on.)
      defaultCallOptions: (context) =>
        context.isStream ? {} : { deadline: Date.now() + REQUEST_TIMEOUT_MS },
      grpcOptions: {
        "grpc.keepalive_time_ms": KEEPALIVE_MS,
        "grpc.keepalive_timeout_ms": KEEPALIVE_TIMEOUT_MS,
      },
    };
    if (config.keyFile && config.certFile) {
      const [privateKey, certChain, rootCertificate] = await Promise.all([
        readFlagFile("--etcd-keyfile", config.keyFile),
        readFlagFile("--etcd-certfile", config.certFile),
        config.caFile ? readFlagFile("--etcd-cafile", config.caFile) : Promise.resolve(undefined),
      ]);
      // grpc-js falls back to the system CAs when rootCertificate is undefined.
      options.credentials = { rootCertificate: rootCertificate as Buffer, privateKey, certChain };
    } else if (config.caFile) {
      options.credentials = { rootCertificate: await readFlagFile("--etcd-cafile", config.caFile) };
    }
    if (config.username)
      options.auth = { username: config.username, password: config.password ?? "" };
    return new EtcdRegistry(new Etcd3(options), config.prefix, clock);
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
    const text = await this.#call("read the network config", () =>
      this.#client.get(this.configKey).string(),
    );
    if (text === null) {
      throw new ConfigNotFoundError(
        `Cannot read network config at "${this.configKey}": flannel config not found in etcd store. Did you create your config using etcdv3 API?`,
      );
    }
    return text;
  }

  /** Stores the network config text. */
  async setNetworkConfigText(text: string): Promise<void> {
    await this.#call("store the network config", () =>
      this.#client.put(this.configKey).value(text).exec(),
    );
  }

  /**
   * Every key under the subnets prefix, in pages of LIST_PAGE_SIZE read at one revision (the
   * first page's), so that a big cluster is never one huge response (gRPC refuses answers over
   * 4 MiB: about 20,000 leases) and the listing is still one consistent snapshot.
   */
  async #listSubnetKeys(): Promise<{ kvs: IKeyValue[]; revision: string }> {
    const end = prefixEnd(Buffer.from(this.subnetsPrefix));
    let from = Buffer.from(this.subnetsPrefix);
    let revision: string | null = null;
    const kvs: IKeyValue[] = [];
    for (;;) {
      const at: string | null = revision;
      const page: IRangeResponse = await this.#call("list the subnet leases", () =>
        this.#client.kv.range({
          key: from,
          range_end: end,
          limit: LIST_PAGE_SIZE,
          ...(at === null ? {} : { revision: at }),
        }),
      );
      const pinned: string = at ?? page.header.revision;
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
    const response: IRangeResponse = await this.#call("read the store's revision", () =>
      this.#client.kv.range({ key: Buffer.from(this.configKey), count_only: true }),
    );
    return { clusterId: response.header.cluster_id, revision: BigInt(response.header.revision) };
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
    return { leases, skipped, revision: BigInt(response.revision) };
  }

  /** Reads one lease; null when its key is absent. Throws UnreadableLeaseError for a non-lease. */
  async getSubnet(
    subnet: IPNet,
    ipv6Subnet: IPNet | null,
  ): Promise<{ lease: IPv4Lease | null; revision: bigint }> {
    const key = this.subnetKey(subnet, ipv6Subnet);
    const response = await this.#call("read a subnet lease", () => this.#client.get(key).exec());
    const revision = BigInt(response.header.revision);
    const kv = response.kvs[0];
    if (kv === undefined) return { lease: null, revision };
    const decoded = this.#decode(kv);
    if ("reason" in decoded) throw new UnreadableLeaseError(key, decoded.reason);
    let lease = decoded.lease;
    if (kv.lease !== "0") {
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
    const result = await this.#call("create a subnet lease", () =>
      this.#client
        .if(key, "Version", "==", 0)
        .then(this.#client.put(key).value(encodeLeaseAttrs(attrs)).lease(etcdLease))
        .commit(),
    );
    if (!result.succeeded) {
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
   * Returns null when the key is gone. The etcd lease it replaces is revoked once unused.
   */
  async updateSubnet(
    lease: Pick<IPv4Lease, "subnet" | "ipv6Subnet">,
    attrs: LeaseAttrs,
    ttlSeconds: number | null,
  ): Promise<IPv4Lease | null> {
    const key = this.subnetKey(lease.subnet, lease.ipv6Subnet);
    const previous = await this.#call("read a subnet lease", () => this.#client.get(key).exec());
    const oldEtcdLease = previous.kvs[0]?.lease ?? "0";
    const etcdLease = ttlSeconds === null ? null : await this.#grant(ttlSeconds);
    const put = this.#client.put(key).value(encodeLeaseAttrs(attrs));
    const result = await this.#call("renew a subnet lease", () =>
      this.#client
        .if(key, "Version", ">", 0)
        .then(etcdLease === null ? put : put.lease(etcdLease))
        .commit(),
    );
    if (!result.succeeded) {
      if (etcdLease !== null) await this.#revoke(etcdLease);
      return null;
    }
    if (oldEtcdLease !== "0" && oldEtcdLease !== etcdLease) await this.#revoke(oldEtcdLease);
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
    await this.#call("delete a subnet lease", () => this.#client.delete().key(key).exec());
  }

  /**
   * Follows changes under the subnets prefix (or of one key) from `startRevision`. etcd3
   * reconnects by itself after a dropped connection and resumes from the last revision it saw;
   * when etcd cancels the watch (a compacted revision) the iteration throws, and the caller starts
   * again from a fresh listing.
   */
  async *watchSubnets(
    startRevision: bigint,
    opts: CallOptions & {
      readonly key?: string;
      /** Told each time the watch stream is opened again after the connection was lost. */
      readonly onReconnect?: () => void;
    },
  ): AsyncGenerator<SubnetChangeBatch> {
    const builder = this.#client.watch().withPreviousKV().startRevision(String(startRevision));
    // watcher() rather than create(): create() resolves on "connected", and etcd may send the
    // first events, or the cancellation of a compacted revision, in the same read, before a
    // listener could be attached. on() attaches its "data" and "error" listeners right here.
    const watcher = (
      opts.key === undefined ? builder.prefix(this.subnetsPrefix) : builder.key(opts.key)
    ).watcher();
    this.#watchers.add(watcher);
    let connections = 0;
    const connected = () => {
      this.#connectionBack();
      if (++connections > 1) opts.onReconnect?.();
    };
    const disconnected = (err: Error) => {
      this.#connectionLost(err);
    };
    watcher.on("connected", connected);
    watcher.on("disconnected", disconnected);
    const responses = on(watcher, "data", { signal: opts.signal });
    let cancelled = false;
    try {
      for await (const args of responses) {
        const response = (args as [IWatchResponse])[0];
        const changes = response.events.map((event): SubnetChange => {
          const key = event.kv.key.toString();
          if (event.type === "Delete") {
            const parsed = parseSubnetKey(key.slice(this.subnetsPrefix.length));
            if (parsed === null)
              return { type: "delete", key, lease: null, reason: "the key is not a subnet key" };
            const previous = (event.prev_kv as IKeyValue | undefined)
              ? this.#decode(event.prev_kv)
              : null;
            const attrs =
              previous !== null && "lease" in previous ? previous.lease.attrs : EMPTY_ATTRS;
            return {
              type: "delete",
              key,
              lease: { ...parsed, attrs, expiration: null, reserved: false },
            };
          }
          const decoded = this.#decode(event.kv);
          if ("reason" in decoded) return { type: "put", key, lease: null, reason: decoded.reason };
          return { type: "put", key, lease: decoded.lease };
        });
        yield { revision: BigInt(response.header.revision), changes };
      }
    } catch (err) {
      // etcd cancelled the watch (e.g. a compacted revision): etcd3 has already dropped it, and
      // cancel() would wait for an "end" that never comes.
      cancelled = true;
      throw err;
    } finally {
      watcher.off("connected", connected);
      watcher.off("disconnected", disconnected);
      this.#watchers.delete(watcher);
      if (!cancelled)
        await Promise.race([
          watcher.cancel().catch(() => undefined),
          delay(WATCH_CANCEL_TIMEOUT_MS, undefined, { ref: false }),
        ]);
    }
  }

  /** Closes the connection. */
  close(): void {
    // A watch still open (its reader stopped without finishing it) would keep etcd3 reconnecting.
    for (const watcher of this.#watchers) void watcher.cancel().catch(() => undefined);
    this.#watchers.clear();
    // A watcher whose cancellation was sent but not yet answered (our reader gave up waiting,
    // WATCH_CANCEL_TIMEOUT_MS) stays in etcd3's watch manager, which then re-opens the watch
    // stream on the closed client forever, each time after a timer: the process never exits.
    // etcd3 offers no way to drop them, so its manager is told there is nothing left to watch.
    const manager = (this.#client as unknown as { watchManager?: WatchManagerInternals })
      .watchManager;
    if (manager !== undefined) {
      manager.watchers = [];
      manager.expectedClosers?.clear();
    }
    this.#client.close();
  }

  #decode(kv: IKeyValue): { lease: IPv4Lease } | { reason: string } {
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
    const response = await this.#call("grant an etcd lease", () =>
      this.#client.leaseClient.leaseGrant({ TTL: ttlSeconds }),
    );
    return response.ID;
  }

  async #revoke(etcdLease: string): Promise<void> {
    await this.#client.leaseClient.leaseRevoke({ ID: etcdLease }).catch(() => undefined);
  }

  async #ttlSeconds(etcdLease: string): Promise<number> {
    const response = await this.#call("read a lease TTL", () =>
      this.#client.leaseClient.leaseTimeToLive({ ID: etcdLease }),
    );
    return Number(response.TTL);
  }

  /**
   * One request. A request that cannot reach etcd marks the connection lost, and one that
   * answers marks it back, as the watches' own connection events do: an etcd that goes away
   * before any watch has connected (or while none is open) is reported too.
   */
  async #call<T>(action: string, fn: () => Promise<T>): Promise<T> {
    try {
      const result = await fn();
      this.#connectionBack();
      return result;
    } catch (err) {
      if (err instanceof LeaseConflictError) throw err;
      if (err instanceof GRPCUnavailableError || err instanceof GRPCDeadlineExceededError)
        this.#connectionLost(err);
      throw new StoreError(`Cannot ${action} in etcd: ${(err as Error).message}`, { cause: err });
    }
  }
}

const EMPTY_ATTRS: LeaseAttrs = { publicIP: "", publicIPv6: null, backendType: "" };
