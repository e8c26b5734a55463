/**
 * What the lab and the tests do to the API double as cluster operators would: register Nodes
 * with a pod CIDR (kube-controller-manager's node IPAM), assign one later, delete Nodes, read
 * them, and pull the double's fault hooks. Plain HTTP with the admin token, so it works against
 * a double in another process or namespace.
 */
import { request } from "node:http";
import type { Json } from "./patch.js";
import type { AuditRecord } from "./server.js";

/** A Node as the lab registers it. */
export interface NodeSpec {
  readonly name: string;
  /** Empty or absent: no pod CIDR yet. */
  readonly podCIDR?: string;
  /** Dual-stack: both pod CIDRs (spec.podCIDRs); the first is also spec.podCIDR. */
  readonly podCIDRs?: readonly string[];
  readonly internalIP?: string;
  readonly annotations?: Readonly<Record<string, string>>;
}

/** Where the double listens: a URL, or a Unix socket (the lab's, reachable from any namespace). */
export type KubeEndpoint = { readonly url: string } | { readonly socketPath: string };

/** Talks to a double (or any API server) as an admin. */
export class KubeAdmin {
  readonly #endpoint: KubeEndpoint;
  readonly #token: string | null;

  constructor(endpoint: KubeEndpoint, token: string | null = null) {
    this.#endpoint = endpoint;
    this.#token = token;
  }

  async #request(
    method: string,
    path: string,
    body?: Json,
    contentType = "application/json",
  ): Promise<Json> {
    const headers: Record<string, string> = { Accept: "application/json" };
    if (this.#token !== null) headers.Authorization = `Bearer ${this.#token}`;
    const payload = body === undefined ? null : JSON.stringify(body);
    if (payload !== null) {
      headers["Content-Type"] = contentType;
      headers["Content-Length"] = String(Buffer.byteLength(payload));
    }
    const endpoint = this.#endpoint;
    const { status, text } = await new Promise<{ status: number; text: string }>(
      (resolve, reject) => {
        const options = { method, headers, timeout: 10_000 };
        const req = request(
          "url" in endpoint
            ? { ...options, ...urlParts(new URL(path, endpoint.url)) }
            : { ...options, socketPath: endpoint.socketPath, path },
          (res) => {
            const chunks: Buffer[] = [];
            res.on("data", (c: Buffer) => chunks.push(c));
            res.on("end", () => {
              resolve({
                status: res.statusCode ?? 0,
                text: Buffer.concat(chunks).toString("utf8"),
              });
            });
            res.on("error", reject);
          },
        );
        req.on("timeout", () =>
          req.destroy(new Error(`Cannot ${method} ${path}: no answer in 10 s`)),
        );
        req.on("error", reject);
        req.end(payload ?? undefined);
      },
    );
    if (status < 200 || status > 299)
      throw new Error(`Cannot ${method} ${path}: HTTP ${status}: ${text.slice(0, 300)}`);
    return text === "" ? null : (JSON.parse(text) as Json);
  }

  /** Registers a Node, as the kubelet does, with the pod CIDR node IPAM gives it. */
  async createNode(spec: NodeSpec): Promise<void> {
    const podCIDRs = spec.podCIDRs ?? (spec.podCIDR ? [spec.podCIDR] : []);
    const podCIDR = podCIDRs[0] ?? "";
    await this.#request("POST", "/api/v1/nodes", {
      apiVersion: "v1",
      kind: "Node",
      metadata: {
        name: spec.name,
        labels: { "kubernetes.io/hostname": spec.name },
        ...(spec.annotations !== undefined ? { annotations: { ...spec.annotations } } : {}),
      },
      spec: podCIDR === "" ? {} : { podCIDR, podCIDRs: [...podCIDRs] },
      status: {
        conditions: [
          {
            type: "Ready",
            status: "True",
            reason: "KubeletReady",
            message: "kubelet is posting ready status",
          },
        ],
        addresses:
          spec.internalIP === undefined
            ? [{ type: "Hostname", address: spec.name }]
            : [
                { type: "InternalIP", address: spec.internalIP },
                { type: "Hostname", address: spec.name },
              ],
      },
    });
  }

  /** Gives a Node its pod CIDR, as node IPAM does once it gets to it. */
  async assignPodCIDR(name: string, podCIDR: string): Promise<void> {
    await this.#request(
      "PATCH",
      `/api/v1/nodes/${encodeURIComponent(name)}`,
      { spec: { podCIDR, podCIDRs: [podCIDR] } },
      "application/merge-patch+json",
    );
  }

  /** Sets (or, with null, removes) annotations on a Node, as `kubectl annotate` does. */
  async annotate(
    name: string,
    annotations: Readonly<Record<string, string | null>>,
  ): Promise<void> {
    await this.#request(
      "PATCH",
      `/api/v1/nodes/${encodeURIComponent(name)}`,
      { metadata: { annotations: { ...annotations } } },
      "application/merge-patch+json",
    );
  }

  async deleteNode(name: string): Promise<void> {
    await this.#request("DELETE", `/api/v1/nodes/${encodeURIComponent(name)}`);
  }

  /** Every Node, as plain JSON. */
  async listNodes(): Promise<Json[]> {
    const list = (await this.#request("GET", "/api/v1/nodes")) as { items?: Json[] } | null;
    return list?.items ?? [];
  }

  async getNode(name: string): Promise<Json> {
    return this.#request("GET", `/api/v1/nodes/${encodeURIComponent(name)}`);
  }

  /** Creates a Pod bound to a node, as the scheduler leaves a DaemonSet's pod. */
  async createPod(namespace: string, name: string, nodeName: string): Promise<void> {
    await this.#request("POST", `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`, {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name, namespace },
      spec: { nodeName, containers: [{ name: "kube-flannel", image: "flannel-ts" }] },
    });
  }

  /** Creates a Namespace with labels (the double adds `kubernetes.io/metadata.name`). */
  async createNamespace(
    name: string,
    labels: Readonly<Record<string, string>> = {},
  ): Promise<void> {
    await this.#request("POST", "/api/v1/namespaces", {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name, labels: { ...labels } },
    });
  }

  /** Creates any object at its collection's path (`/api/v1/namespaces/x/pods`). */
  async create(collectionPath: string, object: Json): Promise<Json> {
    return this.#request("POST", collectionPath, object);
  }

  /** Applies a JSON merge patch to an object (`kubectl label` and `annotate` do). */
  async mergePatch(objectPath: string, patch: Json): Promise<Json> {
    return this.#request("PATCH", objectPath, patch, "application/merge-patch+json");
  }

  /** Replaces an object (PUT), as `kubectl replace` does: one MODIFIED event. */
  async replace(objectPath: string, object: Json): Promise<Json> {
    return this.#request("PUT", objectPath, object);
  }

  /** Deletes an object by its path. */
  async delete(objectPath: string): Promise<void> {
    await this.#request("DELETE", objectPath);
  }

  /** Lists a collection, as plain JSON. */
  async list(collectionPath: string): Promise<Json[]> {
    const list = (await this.#request("GET", collectionPath)) as { items?: Json[] } | null;
    return list?.items ?? [];
  }

  /** Pulls a fault hook of the double: `cut-watches`, `expire`, `fail`, `delay`, `heal`. */
  async fault(hook: string, query: Readonly<Record<string, string>> = {}): Promise<void> {
    const q = new URLSearchParams(query).toString();
    await this.#request("POST", `/_double/${hook}${q === "" ? "" : `?${q}`}`);
  }

  /** The (verb, resource, subresource) of every request the double served. */
  async audit(): Promise<AuditRecord[]> {
    return (await this.#request("GET", "/_double/audit")) as unknown as AuditRecord[];
  }
}

function urlParts(url: URL): { host: string; port: string; path: string } {
  return { host: url.hostname, port: url.port, path: `${url.pathname}${url.search}` };
}
