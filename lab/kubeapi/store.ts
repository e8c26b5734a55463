/**
 * The object store of the Kubernetes API double: Nodes and Namespaces (cluster-scoped), Pods
 * and NetworkPolicies (namespaced),
 * one global resourceVersion bumped on every write as etcd's revision is in a real API server,
 * and a bounded event log that watches replay from. A watch that asks for a resourceVersion
 * older than the log holds is told 410 Gone ("Expired"), as the real server does after a
 * compaction.
 */
import { randomUUID } from "node:crypto";
import type { Json } from "./patch.js";
import { FlannelError } from "../../src/errors.js";

/** The kinds this double stores, by their plural resource name. */
export type Resource = "nodes" | "pods" | "namespaces" | "networkpolicies";

/** What the API says of each kind: kind, group, version, scope, names. */
export interface ResourceInfo {
  readonly kind: string;
  readonly group: string;
  readonly version: string;
  readonly namespaced: boolean;
  readonly singular: string;
  readonly shortNames: readonly string[];
  /** Its subresources (`status`). */
  readonly subresources: readonly string[];
}

/** The kinds, in the order discovery lists them. */
export const RESOURCE_INFO: Readonly<Record<Resource, ResourceInfo>> = {
  namespaces: {
    kind: "Namespace",
    group: "",
    version: "v1",
    namespaced: false,
    singular: "namespace",
    shortNames: ["ns"],
    subresources: ["status"],
  },
  nodes: {
    kind: "Node",
    group: "",
    version: "v1",
    namespaced: false,
    singular: "node",
    shortNames: ["no"],
    subresources: ["status"],
  },
  pods: {
    kind: "Pod",
    group: "",
    version: "v1",
    namespaced: true,
    singular: "pod",
    shortNames: ["po"],
    subresources: ["status"],
  },
  networkpolicies: {
    kind: "NetworkPolicy",
    group: "networking.k8s.io",
    version: "v1",
    namespaced: true,
    singular: "networkpolicy",
    shortNames: ["netpol"],
    subresources: [],
  },
};

/** The apiVersion of a kind's objects: `v1`, `networking.k8s.io/v1`. */
export function apiVersionOf(resource: Resource): string {
  const info = RESOURCE_INFO[resource];
  return info.group === "" ? info.version : `${info.group}/${info.version}`;
}

/** The label every Namespace carries with its own name (since Kubernetes 1.21). */
export const NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name";

/** A stored object: plain JSON with `metadata.name` and `metadata.resourceVersion`. */
export type KubeObject = { [key: string]: Json } & { metadata: { [key: string]: Json } };

/** One change, as a watch streams it. */
export interface WatchEvent {
  readonly type: "ADDED" | "MODIFIED" | "DELETED";
  readonly resource: Resource;
  readonly object: KubeObject;
  readonly rv: number;
}

/** A failed store operation, with the HTTP status and Status reason the server answers. */
export class ApiError extends FlannelError {
  constructor(
    message: string,
    readonly code: number,
    readonly reason: string,
  ) {
    super(message);
  }
}

/** The store's state, as saved to disk between runs of the lab's double. */
export interface StoreSnapshot {
  readonly rv: number;
  readonly objects: readonly { resource: Resource; key: string; object: KubeObject }[];
}

/** Objects, resourceVersions and the event log. */
export class ObjectStore {
  #rv = 1;
  readonly #objects = new Map<Resource, Map<string, KubeObject>>(
    (Object.keys(RESOURCE_INFO) as Resource[]).map((r) => [r, new Map()]),
  );
  #log: WatchEvent[] = [];
  /** Events at or below this resourceVersion are gone: a watch from there gets 410. */
  #compactedRv = 0;
  readonly #listeners = new Set<(event: WatchEvent) => void>();

  readonly #maxEvents: number;

  constructor(maxEvents = 10_000, snapshot?: StoreSnapshot) {
    this.#maxEvents = maxEvents;
    if (snapshot !== undefined) {
      this.#rv = snapshot.rv;
      this.#compactedRv = snapshot.rv;
      for (const { resource, key, object } of snapshot.objects)
        this.#objects.get(resource)?.set(key, object);
    }
  }

  /** The current resourceVersion, as lists return it. */
  get resourceVersion(): string {
    return String(this.#rv);
  }

  /** Calls `listener` with every change from now on; returns the function that stops it. */
  subscribe(listener: (event: WatchEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** The events after `rv`, or null when some of them were compacted away (410). */
  eventsSince(rv: number): WatchEvent[] | null {
    if (rv < this.#compactedRv) return null;
    return this.#log.filter((e) => e.rv > rv);
  }

  /** Forgets every event so far: a watch from any older resourceVersion now gets 410. */
  compact(): void {
    this.#compactedRv = this.#rv;
    this.#log = [];
  }

  list(resource: Resource): KubeObject[] {
    return [...(this.#objects.get(resource)?.values() ?? [])].map((o) => structuredClone(o));
  }

  get(resource: Resource, key: string): KubeObject {
    const object = this.#objects.get(resource)?.get(key);
    if (object === undefined) throw notFound(resource, key);
    return structuredClone(object);
  }

  create(resource: Resource, key: string, object: KubeObject): KubeObject {
    const objects = this.#map(resource);
    if (objects.has(key)) {
      throw new ApiError(`${resource} "${nameOf(key)}" already exists`, 409, "AlreadyExists");
    }
    const stored = structuredClone(object);
    stored.kind = RESOURCE_INFO[resource].kind;
    stored.apiVersion = apiVersionOf(resource);
    stored.metadata = {
      ...stored.metadata,
      uid: randomUUID(),
      creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    };
    if (resource === "namespaces") labelNamespace(stored);
    return this.#write(resource, key, stored, "ADDED");
  }

  /**
   * Replaces an object with `next` (the result of an update or patch). A `resourceVersion` in
   * `next` that is not the stored one is a conflict (409), as optimistic concurrency demands.
   */
  update(resource: Resource, key: string, next: KubeObject): KubeObject {
    const current = this.get(resource, key);
    const asked = next.metadata.resourceVersion;
    if (typeof asked === "string" && asked !== "" && asked !== current.metadata.resourceVersion) {
      throw new ApiError(
        `Operation cannot be fulfilled on ${resource} "${nameOf(key)}": the object has been modified; please apply your changes to the latest version and try again`,
        409,
        "Conflict",
      );
    }
    const stored = structuredClone(next);
    stored.kind = RESOURCE_INFO[resource].kind;
    stored.apiVersion = apiVersionOf(resource);
    stored.metadata = {
      ...stored.metadata,
      name: current.metadata.name ?? nameOf(key),
      uid: current.metadata.uid ?? null,
      creationTimestamp: current.metadata.creationTimestamp ?? null,
    };
    if (current.metadata.namespace !== undefined)
      stored.metadata.namespace = current.metadata.namespace;
    if (resource === "namespaces") labelNamespace(stored);
    if (JSON.stringify(stripRv(stored)) === JSON.stringify(stripRv(current))) return current;
    return this.#write(resource, key, stored, "MODIFIED");
  }

  /** Deletes an object; a Namespace takes the objects in it along (at once, not Terminating). */
  delete(resource: Resource, key: string): KubeObject {
    const current = this.get(resource, key);
    if (resource === "namespaces")
      for (const [inner, info] of Object.entries(RESOURCE_INFO) as [Resource, ResourceInfo][])
        if (info.namespaced)
          for (const innerKey of [...this.#map(inner).keys()])
            if (innerKey.startsWith(`${key}/`)) this.delete(inner, innerKey);
    this.#map(resource).delete(key);
    this.#rv++;
    const gone = {
      ...current,
      metadata: { ...current.metadata, resourceVersion: String(this.#rv) },
    };
    this.#emit({ type: "DELETED", resource, object: gone, rv: this.#rv });
    return gone;
  }

  /** The state to save. */
  snapshot(): StoreSnapshot {
    const objects: { resource: Resource; key: string; object: KubeObject }[] = [];
    for (const [resource, map] of this.#objects)
      for (const [key, object] of map) objects.push({ resource, key, object });
    return { rv: this.#rv, objects };
  }

  #map(resource: Resource): Map<string, KubeObject> {
    const map = this.#objects.get(resource);
    if (map === undefined) throw new ApiError(`Unknown resource "${resource}"`, 404, "NotFound");
    return map;
  }

  #write(
    resource: Resource,
    key: string,
    object: KubeObject,
    type: "ADDED" | "MODIFIED",
  ): KubeObject {
    this.#rv++;
    object.metadata.resourceVersion = String(this.#rv);
    this.#map(resource).set(key, object);
    this.#emit({ type, resource, object: structuredClone(object), rv: this.#rv });
    return structuredClone(object);
  }

  #emit(event: WatchEvent): void {
    this.#log.push(event);
    if (this.#log.length > this.#maxEvents) {
      const dropped = this.#log.splice(0, this.#log.length - this.#maxEvents);
      this.#compactedRv = dropped.at(-1)?.rv ?? this.#compactedRv;
    }
    for (const listener of this.#listeners) listener(event);
  }
}

/** Sets `kubernetes.io/metadata.name` to the Namespace's name, as the API server does. */
function labelNamespace(object: KubeObject): void {
  const labels = object.metadata.labels;
  const own = typeof labels === "object" && labels !== null && !Array.isArray(labels) ? labels : {};
  object.metadata.labels = { ...own, [NAMESPACE_NAME_LABEL]: object.metadata.name ?? "" };
}

function nameOf(key: string): string {
  return key.includes("/") ? key.slice(key.indexOf("/") + 1) : key;
}

function notFound(resource: Resource, key: string): ApiError {
  return new ApiError(`${resource} "${nameOf(key)}" not found`, 404, "NotFound");
}

function stripRv(object: KubeObject): KubeObject {
  return { ...object, metadata: { ...object.metadata, resourceVersion: null } };
}
