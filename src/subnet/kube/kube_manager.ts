/**
 * The Kubernetes subnet manager (flannel's pkg/subnet/kube): the lease of a node is its Node
 * object. kube-controller-manager's node IPAM gives each Node `spec.podCIDR(s)`; flanneld takes
 * that as its subnet and publishes what its peers need (backend type and data, public IP) as
 * annotations on its Node, written with a strategic merge patch on `nodes/<name>/status`, which
 * is what flannel's ClusterRole allows. Peers follow every Node annotated
 * `<prefix>kube-subnet-manager: "true"` through a list and watch (node_watch.ts).
 *
 * Compared with flannel:
 * - A Node without a pod CIDR is waited for, with a message saying what to check, instead of
 *   failing the start; /readyz stays not ready meanwhile.
 * - Annotations that cannot be used (bad JSON, a bad IP or MAC) skip that one Node with one
 *   warning naming it; a Node whose annotations turn bad keeps its last good lease.
 * - A lost API server is retried with backoff and logged once; a relist after 410 Gone hands the
 *   backend a snapshot, and the lease watcher diffs it, so no node is lost or doubled.
 * - There is no TTL and no renewal: the lease lives as long as the Node. This node's own
 *   annotations, if someone else changes them, are written back from what flanneld holds.
 */
import { readFile } from "node:fs/promises";
import { parseNetworkConfig } from "../../config/network_config.js";
import type { NetworkConfig } from "../../config/network_config.js";
import { ConfigError } from "../../errors.js";
import { encodeLeaseAttrs, leaseKeyOf } from "../../lease/lease.js";
import type { Lease, LeaseAttrs, LeaseEvent } from "../../lease/lease.js";
import type { Logger } from "../../log/logger.js";
import type { CallOptions } from "../../util/call_options.js";
import { type Clock, systemClock } from "../../util/clock.js";
import { backoff } from "../../util/sleep.js";
import type { LeaseWatchResult, SubnetManager } from "../manager.js";
import { newAnnotations } from "./annotations.js";
import type { Annotations } from "./annotations.js";
import { ClientNodeClient, KubeApiError, loadKubeConfig } from "./kube_client.js";
import type { NodeClient } from "./kube_client.js";
import {
  NodeLeaseError,
  annotationsToWrite,
  nodeToLease,
  podCIDRsOf,
  storedVtepMacs,
} from "./node_lease.js";
import type { Families, NodeView } from "./node_lease.js";
import { watchNodes } from "./node_watch.js";
import type { NodeWatchStats } from "./node_watch.js";

/** flanneld's Kubernetes flags. */
export interface KubeManagerConfig {
  readonly apiUrl: string;
  readonly kubeconfigFile: string;
  readonly annotationPrefix: string;
  readonly netConfigPath: string;
  readonly setNodeNetworkUnavailable: boolean;
}

/** What the manager is built from; tests give their own client. */
export interface KubeManagerDeps {
  readonly client: NodeClient;
  readonly nodeName: string;
  readonly log: Logger;
  /** What retries wait on and condition times are read from. Default: the system's. */
  readonly clock?: Clock;
}

/** How long to wait between two looks at a Node without a pod CIDR. */
const POD_CIDR_POLL_MS = 1_000;
const RETRY_INITIAL_MS = 200;
const RETRY_MAX_MS = 10_000;

/** Finds this node's name: NODE_NAME, else the nodeName of pod POD_NAMESPACE/POD_NAME. */
export async function resolveNodeName(
  client: NodeClient,
  env: NodeJS.ProcessEnv,
  opts: CallOptions,
): Promise<string> {
  const nodeName = env.NODE_NAME ?? "";
  if (nodeName !== "") return nodeName;
  const podName = env.POD_NAME ?? "";
  const podNamespace = env.POD_NAMESPACE ?? "";
  if (podName === "" || podNamespace === "") {
    throw new ConfigError(
      "Cannot find this node's name: set NODE_NAME, or POD_NAME and POD_NAMESPACE so that flanneld can read its pod's spec.nodeName (the DaemonSet sets them from the downward API)",
    );
  }
  const fromPod = await client.getPodNodeName(podNamespace, podName, opts);
  if (fromPod === "") {
    throw new ConfigError(
      `Cannot find this node's name: node name not present in pod spec '${podNamespace}/${podName}'`,
    );
  }
  return fromPod;
}

/** The SubnetManager over Node objects. */
export class KubeSubnetManager implements SubnetManager {
  readonly name = "kube";
  readonly #client: NodeClient;
  readonly #nodeName: string;
  readonly #annotations: Annotations;
  readonly #config: KubeManagerConfig;
  readonly #log: Logger;
  readonly #clock: Clock;
  /** The network config's families and networks (IPv4 only until it is read). */
  #net: Families & {
    readonly network: NetworkConfig["network"];
    readonly ipv6Network: NetworkConfig["ipv6Network"];
  } = { enableIPv4: true, enableIPv6: false, network: null, ipv6Network: null };
  /** The last problem reported per node, so that each is warned about once. */
  readonly #warned = new Map<string, string>();
  /** The attributes this node's lease was acquired with; null before acquireLease(). */
  #ownAttrs: LeaseAttrs | null = null;
  /** Figures of the Node watch, for metrics (flannel_kube_node_*_total). */
  readonly watchStats: NodeWatchStats = { lists: 0, watches: 0, expired: 0, failures: 0 };

  constructor(config: KubeManagerConfig, deps: KubeManagerDeps) {
    this.#config = config;
    this.#annotations = newAnnotations(config.annotationPrefix);
    this.#client = deps.client;
    this.#nodeName = deps.nodeName;
    this.#log = deps.log.child({ component: "kube", node: deps.nodeName });
    this.#clock = deps.clock ?? systemClock;
  }

  /** Connects to the API server the flags name and finds this node's name. */
  static async connect(
    config: KubeManagerConfig,
    env: NodeJS.ProcessEnv,
    log: Logger,
    opts: CallOptions,
  ): Promise<KubeSubnetManager> {
    newAnnotations(config.annotationPrefix); // a bad prefix fails before any request
    const client = new ClientNodeClient(
      loadKubeConfig({ apiUrl: config.apiUrl, kubeconfigFile: config.kubeconfigFile }, env),
    );
    const nodeName = await resolveNodeName(client, env, opts);
    log.info({ node: nodeName, prefix: config.annotationPrefix }, "Kubernetes subnet manager");
    return new KubeSubnetManager(config, { client, nodeName, log });
  }

  /** This node's name. */
  get nodeName(): string {
    return this.#nodeName;
  }

  async getNetworkConfig(): Promise<NetworkConfig> {
    const path = this.#config.netConfigPath;
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (err) {
      const reason =
        (err as NodeJS.ErrnoException).code === "ENOENT"
          ? "file does not exist"
          : (err as Error).message;
      throw new ConfigError(
        `Cannot read network config "${path}": ${reason}: mount the kube-flannel-cfg ConfigMap's net-conf.json there, or set --net-config-path`,
        { cause: err },
      );
    }
    const config = parseNetworkConfig(text);
    this.#net = config;
    return config;
  }

  /** Warns once per node and distinct message (and reason, when the fields give one). */
  #warnOnce(node: string, message: string, fields: Record<string, unknown> = {}): void {
    const said = typeof fields.reason === "string" ? `${message}: ${fields.reason}` : message;
    if (this.#warned.get(node) === said) return;
    this.#warned.set(node, said);
    this.#log.warn({ ...fields, subject: node }, message);
  }

  /**
   * Runs a request until it succeeds, retrying with backoff while the API server cannot be
   * reached or answers an error that may pass (`why` words the warning, given once per key).
   * 401, 403 and other errors are thrown; resolves null when the signal aborts.
   */
  async #retry<T>(
    key: string,
    why: (err: KubeApiError) => string,
    request: () => Promise<T>,
    opts: CallOptions,
  ): Promise<T | null> {
    const delays = backoff(RETRY_INITIAL_MS, RETRY_MAX_MS);
    for (;;) {
      try {
        const result = await request();
        this.#warned.delete(key);
        return result;
      } catch (err) {
        if (opts.signal.aborted) return null;
        if (!(err instanceof KubeApiError) || err.code === 401 || err.code === 403) throw err;
        this.#warnOnce(key, why(err), { err: err.message });
      }
      if (!(await this.#clock.sleep(delays.next().value, opts.signal))) return null;
    }
  }

  /** Gets this node, waiting while the API server cannot be reached or the Node is missing. */
  #getOwnNode(opts: CallOptions): Promise<NodeView | null> {
    return this.#retry(
      `get:${this.#nodeName}`,
      (err) =>
        err.code === 404
          ? `node "${this.#nodeName}" does not exist yet: waiting for it (is NODE_NAME the Node's name?)`
          : "Cannot get this node from the Kubernetes API yet: retrying with backoff",
      () => this.#client.getNode(this.#nodeName, opts),
      opts,
    );
  }

  /** Patches this node's status until it is written; false when the signal aborted first. */
  async #patchStatus(patch: object, what: string, opts: CallOptions): Promise<boolean> {
    const done = await this.#retry(
      `patch:${what}`,
      () => `Cannot write ${what} yet; retrying with backoff`,
      async () => {
        await this.#client.patchNodeStatus(this.#nodeName, patch, opts);
        return true;
      },
      opts,
    );
    return done === true;
  }

  /** The VTEP MACs this node announced before, so that a restarted flanneld keeps them. */
  async getStoredMacAddresses(
    opts: CallOptions,
  ): Promise<{ v4: string | null; v6: string | null }> {
    const node = await this.#getOwnNode(opts);
    return node === null ? { v4: null, v6: null } : storedVtepMacs(node, this.#annotations);
  }

  /** The public addresses this node's `node-public-ip[v6]` annotations impose, if any. */
  async getNodePublicIPs(opts: CallOptions): Promise<{ v4: string | null; v6: string | null }> {
    const node = await this.#getOwnNode(opts);
    const a = this.#annotations;
    const read = (k: string) => {
      const v = node?.annotations[k] ?? "";
      return v === "" ? null : v;
    };
    return { v4: read(a.backendNodePublicIP), v6: read(a.backendNodePublicIPv6) };
  }

  async acquireLease(attrs: LeaseAttrs, opts: CallOptions): Promise<Lease> {
    for (;;) {
      const node = await this.#getOwnNode(opts);
      if (node === null) throw opts.signal.reason as Error;
      let cidrs;
      try {
        cidrs = podCIDRsOf(node);
      } catch (err) {
        if (err instanceof NodeLeaseError)
          throw new ConfigError(`Cannot acquire lease: ${err.message}`);
        throw err;
      }
      const missing =
        (this.#net.enableIPv4 && cidrs.v4 === null) || (!this.#net.enableIPv4 && cidrs.v6 === null);
      if (missing) {
        this.#warnOnce(
          `self:${this.#nodeName}`,
          `node "${this.#nodeName}" has no pod CIDR yet: is kube-controller-manager running with --allocate-node-cidrs?`,
        );
        if (!(await this.#clock.sleep(POD_CIDR_POLL_MS, opts.signal)))
          throw opts.signal.reason as Error;
        continue;
      }
      this.#warned.delete(`self:${this.#nodeName}`);
      const network = this.#net.network;
      if (
        this.#net.enableIPv4 &&
        cidrs.v4 !== null &&
        network !== null &&
        !network.containsNet(cidrs.v4)
      ) {
        throw new ConfigError(
          `Cannot acquire lease: subnet "${network.toString()}" specified in the flannel net config doesn't contain "${cidrs.v4.toString()}" PodCIDR of the "${this.#nodeName}" node`,
        );
      }
      const network6 = this.#net.ipv6Network;
      if (this.#net.enableIPv6 && cidrs.v6 !== null) {
        if (network6 === null || !network6.containsNet(cidrs.v6)) {
          throw new ConfigError(
            `Cannot acquire lease: subnet "${network6?.toString() ?? ""}" specified in the flannel net config doesn't contain "${cidrs.v6.toString()}" IPv6 PodCIDR of the "${this.#nodeName}" node`,
          );
        }
      }
      const changed = annotationsToWrite(node, attrs, this.#annotations);
      if (changed !== null) {
        this.#log.info({ annotations: changed }, "Writing this node's flannel annotations");
        if (!(await this.#patchStatus({ metadata: { annotations: changed } }, "annotations", opts)))
          throw opts.signal.reason as Error;
      }
      const subnet = this.#net.enableIPv4 ? cidrs.v4 : null;
      const ipv6Subnet = this.#net.enableIPv6 ? cidrs.v6 : null;
      if (subnet === null && ipv6Subnet === null)
        throw new ConfigError("Cannot acquire lease: the node has no pod CIDR");
      this.#ownAttrs = attrs;
      return {
        subnet,
        ipv6Subnet,
        attrs,
        expiration: null,
        reserved: false,
      };
    }
  }

  /** Kubernetes leases do not expire: the lease is the Node. */
  renewLease(lease: Lease): Promise<Lease> {
    return Promise.resolve(lease);
  }

  /** Sets NetworkUnavailable=False (with --set-node-network-unavailable), then waits. */
  async completeLease(_lease: Lease, opts: CallOptions): Promise<void> {
    if (this.#config.setNodeNetworkUnavailable) {
      const now = new Date(this.#clock.now()).toISOString().replace(/\.\d+Z$/, "Z");
      const condition = {
        type: "NetworkUnavailable",
        status: "False",
        lastHeartbeatTime: now,
        lastTransitionTime: now,
        reason: "FlannelIsUp",
        message: "Flannel is running on this node",
      };
      if (
        await this.#patchStatus(
          { status: { conditions: [condition] } },
          "the NetworkUnavailable condition",
          opts,
        )
      )
        this.#log.info({}, "Set the NetworkUnavailable=False node condition");
    }
    if (opts.signal.aborted) return;
    await new Promise<void>((resolve) => {
      opts.signal.addEventListener(
        "abort",
        () => {
          resolve();
        },
        { once: true },
      );
    });
  }

  /**
   * This node's annotations as another wrote them (corrupted, or taken away): written back from
   * what flanneld holds, as a restart would write them, with one warning per distinct change.
   */
  async #repairOwnAnnotations(node: NodeView, opts: CallOptions): Promise<void> {
    const attrs = this.#ownAttrs;
    if (attrs === null) return;
    const changed = annotationsToWrite(node, attrs, this.#annotations);
    if (changed === null) return;
    const had = Object.fromEntries(
      Object.keys(changed).map((k) => [k, node.annotations[k] ?? null]),
    );
    this.#warnOnce(
      `own:${this.#nodeName}`,
      "This node's flannel annotations were changed by someone else; writing them back",
      { reason: JSON.stringify(had), annotations: Object.keys(changed) },
    );
    if (await this.#patchStatus({ metadata: { annotations: changed } }, "annotations", opts))
      this.#log.info({ annotations: Object.keys(changed) }, "Wrote this node's annotations back");
  }

  /** Says why a Node that had a lease has none now (the backend removes its routes). */
  #sayLeaseGone(node: NodeView): void {
    const managed = node.annotations[this.#annotations.subnetKubeManaged];
    if (managed !== "true") {
      this.#warnOnce(
        node.name,
        `Node's ${this.#annotations.subnetKubeManaged} annotation is not "true" any more; its routes are removed`,
        { reason: `the annotation is ${JSON.stringify(managed ?? null)}` },
      );
    } else {
      this.#log.info(
        { subject: node.name },
        "Node has no pod CIDR any more; its routes are removed",
      );
    }
  }

  /** A Node's lease, or null when it has none or its annotations cannot be used (warned once). */
  #leaseOf(node: NodeView): Lease | null {
    try {
      const lease = nodeToLease(node, this.#annotations, this.#net);
      this.#warned.delete(node.name);
      return lease;
    } catch (err) {
      if (!(err instanceof NodeLeaseError)) throw err;
      if (node.name === this.#nodeName) return null; // written back: #repairOwnAnnotations
      this.#warnOnce(node.name, "Skipping a node whose flannel annotations cannot be used", {
        reason: err.message,
      });
      return null;
    }
  }

  async *watchLeases(opts: CallOptions): AsyncGenerator<LeaseWatchResult> {
    const known = new Map<string, Lease>();
    for await (const step of watchNodes(this.#client, this.#log, {
      ...opts,
      stats: this.watchStats,
      clock: this.#clock,
    })) {
      if (step.kind === "snapshot") {
        known.clear();
        const own = step.nodes.find((n) => n.name === this.#nodeName);
        if (own !== undefined) await this.#repairOwnAnnotations(own, opts);
        for (const node of step.nodes) {
          const lease = this.#leaseOf(node);
          if (lease !== null) known.set(node.name, lease);
        }
        yield { kind: "snapshot", leases: [...known.values()] };
        continue;
      }
      const { node } = step;
      if (node.name === this.#nodeName && step.type !== "DELETED")
        await this.#repairOwnAnnotations(node, opts);
      const before = known.get(node.name);
      const events: LeaseEvent[] = [];
      if (step.type === "DELETED") {
        if (before !== undefined) events.push({ type: "removed", lease: before });
        known.delete(node.name);
      } else {
        const managed = node.annotations[this.#annotations.subnetKubeManaged] === "true";
        const lease = this.#leaseOf(node);
        if (lease === null) {
          // Not flannel's (any more), or no pod CIDR: its lease goes. Bad annotations: kept.
          const unusable = managed && this.#warned.has(node.name);
          if (before !== undefined && !unusable) {
            this.#sayLeaseGone(node);
            events.push({ type: "removed", lease: before });
            known.delete(node.name);
          }
        } else if (before === undefined) {
          events.push({ type: "added", lease });
          known.set(node.name, lease);
        } else if (leaseKeyOf(before) !== leaseKeyOf(lease)) {
          events.push({ type: "removed", lease: before }, { type: "added", lease });
          known.set(node.name, lease);
        } else if (encodeLeaseAttrs(before.attrs) !== encodeLeaseAttrs(lease.attrs)) {
          events.push({ type: "added", lease });
          known.set(node.name, lease);
        }
      }
      if (events.length > 0) yield { kind: "events", events };
    }
  }

  async listLeases(opts: CallOptions): Promise<readonly Lease[]> {
    const { nodes } = await this.#client.listNodes(opts);
    return nodes.map((n) => this.#leaseOf(n)).filter((l): l is Lease => l !== null);
  }

  async close(): Promise<void> {
    // client-node keeps no connection that outlives a request or a watch.
  }
}
