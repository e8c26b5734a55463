/**
 * The calls flanneld makes to the Kubernetes API, over the official client
 * (`@kubernetes/client-node`): get, list and watch Nodes, patch a Node's status, get a Pod.
 * Connection set-up follows client-go's BuildConfigFromFlags: a kubeconfig file (with
 * `--kube-api-url` overriding its server), else `--kube-api-url` alone without credentials, else
 * the in-cluster service account.
 *
 * Errors become KubeApiError, whose message names the verb and resource that failed and, for
 * 401 and 403, what to check.
 */
import { existsSync } from "node:fs";
import {
  CoreV1Api,
  KubeConfig,
  PatchStrategy,
  Watch,
  setHeaderOptions,
} from "@kubernetes/client-node";
import { ConfigError, StoreError } from "../../errors.js";
import type { CallOptions } from "../../util/call_options.js";
import { nodeViewOf } from "./node_lease.js";
import type { NodeView } from "./node_lease.js";

/** A request the API server refused or that could not reach it. */
export class KubeApiError extends StoreError {
  constructor(
    message: string,
    /** The HTTP status; 0 when the server was not reached. */
    readonly code: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** How to reach the API server (flanneld's kube flags). */
export interface KubeConnection {
  readonly apiUrl: string;
  readonly kubeconfigFile: string;
}

/** One watch event, with the object as the server sent it. */
export interface RawWatchEvent {
  readonly type: string;
  readonly object: unknown;
}

/** The calls the kube subnet manager makes. */
export interface NodeClient {
  getNode(name: string, opts: CallOptions): Promise<NodeView>;
  listNodes(opts: CallOptions): Promise<{ nodes: NodeView[]; resourceVersion: string }>;
  /**
   * Watches Nodes from `resourceVersion`; `onEvent` gets each event, `onDone` the error that
   * ended the stream (null for a clean end). Resolves once the request is sent.
   */
  watchNodes(
    resourceVersion: string,
    onEvent: (event: RawWatchEvent) => void,
    onDone: (err: unknown) => void,
  ): Promise<{ abort(): void }>;
  /** Applies a strategic merge patch to `nodes/<name>/status`. */
  patchNodeStatus(name: string, patch: object, opts: CallOptions): Promise<NodeView>;
  /** The `spec.nodeName` of a Pod. */
  getPodNodeName(namespace: string, name: string, opts: CallOptions): Promise<string>;
}

const SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/**
 * client-node refuses a plain `http://` server unless TLS verification is off, although there is
 * no TLS to verify; client-go talks plain HTTP as it is told. Turn the flag on for such servers.
 */
function allowPlainHttp(kc: KubeConfig): KubeConfig {
  kc.clusters = kc.clusters.map((c) =>
    c.server.startsWith("http://") ? { ...c, skipTLSVerify: true } : c,
  );
  return kc;
}

/**
 * Builds the client config from flanneld's flags, as client-go's BuildConfigFromFlags does.
 * `rootPrefix` moves the in-cluster service-account files under another root (tests).
 */
export function loadKubeConfig(
  conn: KubeConnection,
  env: NodeJS.ProcessEnv,
  rootPrefix = "",
): KubeConfig {
  return allowPlainHttp(loadKubeConfigAsGiven(conn, env, rootPrefix));
}

function loadKubeConfigAsGiven(
  conn: KubeConnection,
  env: NodeJS.ProcessEnv,
  rootPrefix: string,
): KubeConfig {
  const kc = new KubeConfig();
  if (conn.kubeconfigFile !== "") {
    try {
      kc.loadFromFile(conn.kubeconfigFile);
    } catch (err) {
      throw new ConfigError(
        `Cannot load --kubeconfig-file "${conn.kubeconfigFile}": ${(err as Error).message}`,
        { cause: err },
      );
    }
    if (conn.apiUrl !== "") {
      const current = kc.getCurrentCluster();
      if (current === null) {
        throw new ConfigError(
          `Cannot use --kubeconfig-file "${conn.kubeconfigFile}": it has no current cluster`,
        );
      }
      kc.clusters = kc.clusters.map((c) =>
        c.name === current.name ? { ...c, server: conn.apiUrl } : c,
      );
    }
    return kc;
  }
  if (conn.apiUrl !== "") {
    kc.loadFromClusterAndUser(
      { name: "flanneld", server: conn.apiUrl, skipTLSVerify: false },
      { name: "flanneld" },
    );
    return kc;
  }
  if (
    env.KUBERNETES_SERVICE_HOST === undefined ||
    env.KUBERNETES_SERVICE_HOST === "" ||
    !existsSync(`${rootPrefix}${SERVICE_ACCOUNT_TOKEN}`)
  ) {
    throw new ConfigError(
      "Cannot find the Kubernetes API: not running in a pod (KUBERNETES_SERVICE_HOST is unset or there is no service-account token): pass --kube-api-url or --kubeconfig-file",
    );
  }
  // client-node reads the host and port from process.env, as client-go does.
  const saved = [process.env.KUBERNETES_SERVICE_HOST, process.env.KUBERNETES_SERVICE_PORT];
  process.env.KUBERNETES_SERVICE_HOST = env.KUBERNETES_SERVICE_HOST;
  process.env.KUBERNETES_SERVICE_PORT = env.KUBERNETES_SERVICE_PORT ?? "443";
  try {
    kc.loadFromCluster(rootPrefix);
  } finally {
    restoreEnv("KUBERNETES_SERVICE_HOST", saved[0]);
    restoreEnv("KUBERNETES_SERVICE_PORT", saved[1]);
  }
  return kc;
}

function restoreEnv(name: string, value: string | undefined): void {
  if (value === undefined) Reflect.deleteProperty(process.env, name);
  else process.env[name] = value;
}

/** Waits for `promise`, or rejects with the signal's reason when it aborts first. */
export async function raceSignal<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  signal.throwIfAborted();
  let onAbort = (): void => undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => {
      reject(signal.reason as Error);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
  try {
    return await Promise.race([promise, aborted]);
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

/**
 * The HTTP status of a client error, or of a Status object (an ERROR watch event): `code`, or
 * the watch's `statusCode`; 0 when there is none.
 */
export function statusCodeOf(value: unknown): number {
  if (typeof value !== "object" || value === null) return 0;
  const v = value as { code?: unknown; statusCode?: unknown };
  if (typeof v.code === "number") return v.code;
  return typeof v.statusCode === "number" ? v.statusCode : 0;
}

function serverMessage(err: unknown): string {
  const body = (err as { body?: unknown }).body;
  if (typeof body === "string") {
    try {
      const status = JSON.parse(body) as { message?: unknown };
      if (typeof status.message === "string") return status.message;
    } catch {
      return body.slice(0, 200);
    }
  }
  if (typeof body === "object" && body !== null) {
    const message = (body as { message?: unknown }).message;
    if (typeof message === "string") return message;
  }
  const cause = (err as { cause?: { message?: unknown } }).cause?.message;
  const own = err instanceof Error ? err.message : String(err);
  // client-node's ApiException without a body: "HTTP-Code: 401\nMessage: Unauthorized\n...".
  const line = /^Message: (.*)$/m.exec(own)?.[1];
  if (line !== undefined) return line;
  return typeof cause === "string" ? `${own} (${cause})` : own;
}

/** Turns a client error into a KubeApiError naming the request. */
export function kubeApiError(action: string, err: unknown): KubeApiError {
  const code = statusCodeOf(err);
  const reason = serverMessage(err);
  let hint = "";
  if (code === 401)
    hint =
      ": the API server did not accept the credentials: check the service-account token or the kubeconfig";
  else if (code === 403)
    hint =
      ": the flannel ClusterRole must allow it (pods get; nodes get, list, watch; nodes/status patch)";
  const status = code === 0 ? "API server not reachable" : `HTTP ${code}`;
  return new KubeApiError(`Cannot ${action}: ${status}: ${reason}${hint}`, code, { cause: err });
}

/**
 * Watches a collection (`/api/v1/nodes`) from `resourceVersion` with client-node's Watch, as
 * NodeClient.watchNodes does; resolves once the request is sent.
 */
export async function watchPath(
  watch: Watch,
  path: string,
  resourceVersion: string,
  onEvent: (event: RawWatchEvent) => void,
  onDone: (err: unknown) => void,
): Promise<{ abort(): void }> {
  const controller = await watch.watch(
    path,
    { resourceVersion, allowWatchBookmarks: false },
    (type: string, object: unknown) => {
      onEvent({ type, object });
    },
    onDone,
  );
  return {
    abort: () => {
      controller.abort();
    },
  };
}

/** The NodeClient over @kubernetes/client-node. */
export class ClientNodeClient implements NodeClient {
  readonly #api: CoreV1Api;
  readonly #watch: Watch;

  constructor(kc: KubeConfig) {
    this.#api = kc.makeApiClient(CoreV1Api);
    this.#watch = new Watch(kc);
  }

  async getNode(name: string, opts: CallOptions): Promise<NodeView> {
    try {
      const node = await raceSignal(this.#api.readNode({ name }), opts.signal);
      return viewOrThrow(node, `get nodes "${name}"`);
    } catch (err) {
      if (opts.signal.aborted) throw err;
      throw kubeApiError(`get nodes "${name}"`, err);
    }
  }

  async listNodes(opts: CallOptions): Promise<{ nodes: NodeView[]; resourceVersion: string }> {
    try {
      const list = await raceSignal(this.#api.listNode(), opts.signal);
      const nodes = list.items.map((n) => nodeViewOf(n)).filter((n): n is NodeView => n !== null);
      return { nodes, resourceVersion: list.metadata?.resourceVersion ?? "" };
    } catch (err) {
      if (opts.signal.aborted) throw err;
      throw kubeApiError("list nodes", err);
    }
  }

  async watchNodes(
    resourceVersion: string,
    onEvent: (event: RawWatchEvent) => void,
    onDone: (err: unknown) => void,
  ): Promise<{ abort(): void }> {
    return watchPath(this.#watch, "/api/v1/nodes", resourceVersion, onEvent, onDone);
  }

  async patchNodeStatus(name: string, patch: object, opts: CallOptions): Promise<NodeView> {
    try {
      const node = await raceSignal(
        this.#api.patchNodeStatus(
          { name, body: patch },
          setHeaderOptions("Content-Type", PatchStrategy.StrategicMergePatch),
        ),
        opts.signal,
      );
      return viewOrThrow(node, `patch nodes/status "${name}"`);
    } catch (err) {
      if (opts.signal.aborted) throw err;
      throw kubeApiError(`patch nodes/status "${name}"`, err);
    }
  }

  async getPodNodeName(namespace: string, name: string, opts: CallOptions): Promise<string> {
    try {
      const pod = await raceSignal(this.#api.readNamespacedPod({ name, namespace }), opts.signal);
      return pod.spec?.nodeName ?? "";
    } catch (err) {
      if (opts.signal.aborted) throw err;
      throw kubeApiError(`get pods "${namespace}/${name}"`, err);
    }
  }
}

function viewOrThrow(object: unknown, action: string): NodeView {
  const view = nodeViewOf(object);
  if (view === null) throw new KubeApiError(`Cannot ${action}: the answer is not a Node`, 0);
  return view;
}
