/**
 * A Kubernetes API server double: the part of the real API that flanneld, kubectl and the lab
 * use, with the real semantics, over HTTP. Used by tests and the lab only; flannel-ts itself
 * talks to it through the official client, exactly as it would talk to a real cluster.
 *
 * - Discovery: `/version`, `/api`, `/api/v1`, `/apis`, `/apis/networking.k8s.io[/v1]`.
 * - Nodes, Namespaces (cluster-scoped), Pods and NetworkPolicies (networking.k8s.io/v1,
 *   namespaced): list, get, watch, create, update, patch, delete, across namespaces or in one,
 *   with `fieldSelector=metadata.name` and simple `labelSelector`s; the `status` subresource of
 *   Nodes, Namespaces and Pods. A Namespace gets its `kubernetes.io/metadata.name` label and
 *   takes its objects along when deleted (at once: there is no Terminating phase).
 * - One global resourceVersion (store.ts). A list returns it; a watch replays the events after
 *   the one it is given, or ADDED for every object when it is `0` or empty, then streams one
 *   JSON event per line, flushed. A resourceVersion older than the event log holds is answered
 *   with an in-stream ERROR event, 410 Expired, as the real server does (or with HTTP 410 when
 *   the `expire` fault asks for it).
 * - PATCH in the three formats (patch.ts), 415 for any other content type, 409 for a stale
 *   `metadata.resourceVersion`. A write to `status` keeps the spec; a write to the object keeps
 *   the status (the Node strategies of the real server).
 * - Bearer tokens and ClusterRole rules (rbac.ts): an unknown token is 401, a refused request
 *   403 with the real server's message. Every request is recorded as (verb, resource,
 *   subresource) in `audit`.
 * - Faults for tests: cut every watch stream, force 410, answer 500s, delay every answer. The
 *   same faults are reachable over HTTP under `/_double/` for an admin, for a double that runs
 *   as its own process (the lab's).
 * - Errors are `Status` objects.
 */
import { rm } from "node:fs/promises";
import { createServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as delay } from "node:timers/promises";
import { openApiV3 } from "./openapi.js";
import { PatchError, PATCH_TYPES } from "./patch.js";
import type { Json } from "./patch.js";
import { ADMIN_RULES, allows, forbiddenMessage } from "./rbac.js";
import type { ApiUser, RequestAttributes } from "./rbac.js";
import { ApiError, ObjectStore, RESOURCE_INFO, apiVersionOf } from "./store.js";
import type { KubeObject, Resource, StoreSnapshot, WatchEvent } from "./store.js";

/** The Kubernetes version the double reports. */
export const DOUBLE_VERSION = "v1.32.0";

/** How the double is started. */
export interface KubeApiDoubleOptions {
  readonly host?: string;
  readonly port?: number;
  /** A Unix socket to listen on as well: reachable from every network namespace. */
  readonly socketPath?: string;
  /** Bearer token → user. */
  readonly users?: Readonly<Record<string, ApiUser>>;
  /** Who a request without a token is; null answers such requests 401. Default: an admin. */
  readonly anonymous?: ApiUser | null;
  /** State from an earlier run. */
  readonly snapshot?: StoreSnapshot;
  /** Called after every write, e.g. to save the state. */
  readonly onChange?: (store: ObjectStore) => void;
  /** How many events a watch can replay; older resourceVersions get 410. */
  readonly maxEvents?: number;
}

/** One request as the double served it. */
export interface AuditRecord {
  readonly user: string;
  readonly verb: string;
  readonly resource: string;
  readonly subresource: string;
  readonly name: string;
  readonly code: number;
  /** The Content-Type of a PATCH; empty for other verbs. */
  readonly contentType: string;
}

/** The faults a test can inject. */
export interface Faults {
  /** Ends every open watch stream, as a dropped connection does. */
  cutWatches(): void;
  /** Forgets the event log: open watches get an in-stream 410 and end; older RVs get 410. */
  expire(options?: { readonly http?: boolean }): void;
  /** Answers the next `count` requests (every request when null) with `status`. */
  fail(status: number, count: number | null): void;
  /** Delays every answer by `ms`. */
  delay(ms: number): void;
  /** Clears fail and delay. */
  heal(): void;
}

/** A running double. */
export interface KubeApiDouble {
  /** `http://host:port`. */
  readonly url: string;
  readonly store: ObjectStore;
  readonly audit: AuditRecord[];
  readonly faults: Faults;
  /** The number of watch streams open now. */
  readonly openWatches: number;
  close(): Promise<void>;
}

const RESOURCES = Object.keys(RESOURCE_INFO) as Resource[];

/** A group/version's APIResourceList, as discovery serves it. */
function apiResources(group: string, version: string): Json {
  const groupVersion = group === "" ? version : `${group}/${version}`;
  const resources: Json[] = [];
  for (const resource of RESOURCES) {
    const info = RESOURCE_INFO[resource];
    if (info.group !== group || info.version !== version) continue;
    resources.push({
      name: resource,
      singularName: info.singular,
      namespaced: info.namespaced,
      kind: info.kind,
      verbs: ["create", "delete", "get", "list", "patch", "update", "watch"],
      shortNames: [...info.shortNames],
    });
    for (const sub of info.subresources)
      resources.push({
        name: `${resource}/${sub}`,
        singularName: "",
        namespaced: info.namespaced,
        kind: info.kind,
        verbs: ["get", "patch", "update"],
      });
  }
  return { kind: "APIResourceList", apiVersion: "v1", groupVersion, resources };
}

/** The API groups besides the core one. */
function apiGroups(): Json[] {
  const groups = new Set(RESOURCES.map((r) => RESOURCE_INFO[r].group).filter((g) => g !== ""));
  return [...groups].map((name) => ({
    name,
    versions: [{ groupVersion: `${name}/v1`, version: "v1" }],
    preferredVersion: { groupVersion: `${name}/v1`, version: "v1" },
  }));
}

function status(code: number, reason: string, message: string): Json {
  return {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message,
    reason,
    code,
  };
}

function send(res: ServerResponse, code: number, body: Json): void {
  const text = JSON.stringify(body);
  res.writeHead(code, {
    "Content-Type": "application/json",
    "Content-Length": Buffer.byteLength(text),
  });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<Json> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString("utf8");
  if (text.trim() === "") return null;
  try {
    return JSON.parse(text) as Json;
  } catch (err) {
    throw new ApiError(`Cannot decode request body: ${(err as Error).message}`, 400, "BadRequest");
  }
}

/** What a path names: a resource, maybe namespaced, maybe one object and a subresource. */
interface Target {
  readonly resource: Resource;
  readonly namespace: string;
  readonly name: string;
  readonly subresource: string;
  /** The old `/api/v1/watch/...` path form. */
  readonly watchPath: boolean;
}

/** The group and the rest of a resource path: `/api/v1/...` or `/apis/<group>/v1/...`. */
function splitGroup(parts: readonly string[]): { group: string; rest: string[] } | null {
  if (parts[0] === "api" && parts[1] === "v1") return { group: "", rest: parts.slice(2) };
  if (parts[0] === "apis" && parts[2] === "v1" && parts[1] !== undefined)
    return { group: parts[1], rest: parts.slice(3) };
  return null;
}

function parseTarget(path: string): Target | null {
  const split = splitGroup(path.split("/").filter((p) => p !== ""));
  if (split === null) return null;
  let rest = split.rest;
  const watchPath = rest[0] === "watch";
  if (watchPath) rest = rest.slice(1);
  let namespace = "";
  const inner = rest[2] as Resource | undefined;
  if (rest[0] === "namespaces" && inner !== undefined && RESOURCES.includes(inner)) {
    namespace = decodeURIComponent(rest[1] ?? "");
    rest = rest.slice(2);
  }
  const resource = rest[0] as Resource | undefined;
  if (resource === undefined || !RESOURCES.includes(resource)) return null;
  const info = RESOURCE_INFO[resource];
  if (info.group !== split.group) return null;
  if (info.namespaced && namespace === "" && rest.length > 1) return null;
  return {
    resource,
    namespace,
    name: decodeURIComponent(rest[1] ?? ""),
    subresource: rest[2] ?? "",
    watchPath,
  };
}

function keyOf(target: Target): string {
  return target.namespace === "" ? target.name : `${target.namespace}/${target.name}`;
}

function verbOf(method: string, target: Target, query: URLSearchParams): string {
  if (method === "GET") {
    if (target.watchPath || ["true", "1"].includes(query.get("watch") ?? "")) return "watch";
    return target.name === "" ? "list" : "get";
  }
  return (
    { POST: "create", PUT: "update", PATCH: "patch", DELETE: "delete" }[method] ??
    method.toLowerCase()
  );
}

function matchesField(object: KubeObject, selector: string | null): boolean {
  if (selector === null || selector === "") return true;
  return selector.split(",").every((term) => {
    const m = /^metadata\.name(==?|!=)(.*)$/.exec(term);
    if (m === null) return true;
    return m[1] === "!=" ? object.metadata.name !== m[2] : object.metadata.name === m[2];
  });
}

/**
 * A label selector of the simple forms kubectl sends (`a=b`, `a==b`, `a!=b`, `a`, `!a`,
 * `a in (x,y)`, `a notin (x,y)`), all ANDed.
 */
function matchesLabels(object: KubeObject, selector: string | null): boolean {
  if (selector === null || selector.trim() === "") return true;
  const raw = object.metadata.labels;
  const labels = (
    typeof raw === "object" && raw !== null && !Array.isArray(raw) ? raw : {}
  ) as Record<string, Json>;
  const terms = selector.match(/[^,(]+(\([^)]*\))?/g) ?? [];
  return terms.every((t) => {
    const term = t.trim();
    const set = /^(\S+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(term);
    if (set !== null) {
      const values = (set[3] ?? "").split(",").map((v) => v.trim());
      const has =
        Object.hasOwn(labels, set[1] ?? "") && values.includes(labels[set[1] ?? ""] as string);
      return set[2] === "in" ? has : !has;
    }
    const eq = /^([^!=]+)(==|=|!=)(.*)$/.exec(term);
    if (eq !== null) {
      const value = labels[eq[1] ?? ""];
      return eq[2] === "!=" ? value !== eq[3] : value === eq[3];
    }
    return term.startsWith("!")
      ? !Object.hasOwn(labels, term.slice(1))
      : Object.hasOwn(labels, term);
  });
}

function inNamespace(object: KubeObject, namespace: string): boolean {
  return namespace === "" || object.metadata.namespace === namespace;
}

/** Keeps the side a write may not change: spec on `status`, status on the object itself. */
function keepOther(current: KubeObject, next: KubeObject, subresource: string): KubeObject {
  const out = { ...next };
  const keep = subresource === "status" ? "spec" : "status";
  if (current[keep] === undefined) Reflect.deleteProperty(out, keep);
  else out[keep] = current[keep];
  return out;
}

/** Answers for /version and the discovery paths, as a v1.32 API server does; null for others. */
function discovery(path: string, req: IncomingMessage): Json | null {
  switch (path) {
    case "/version":
      return {
        major: "1",
        minor: "32",
        gitVersion: DOUBLE_VERSION,
        gitCommit: "flannel-ts-kube-api-double",
        gitTreeState: "clean",
        buildDate: "2026-01-01T00:00:00Z",
        goVersion: "go1.23",
        compiler: "gc",
        platform: "linux/amd64",
      };
    case "/api":
      return {
        kind: "APIVersions",
        versions: ["v1"],
        serverAddressByClientCIDRs: [
          { clientCIDR: "0.0.0.0/0", serverAddress: req.headers.host ?? "" },
        ],
      };
    case "/apis":
      return { kind: "APIGroupList", apiVersion: "v1", groups: apiGroups() };
    case "/api/v1":
      return apiResources("", "v1");
    default: {
      const group = apiGroups().find((g) => path === `/apis/${(g as { name: string }).name}`);
      if (group !== undefined) return { kind: "APIGroup", apiVersion: "v1", ...(group as object) };
      const m = /^\/apis\/([^/]+)\/(v1)$/.exec(path);
      if (m !== null && RESOURCES.some((r) => RESOURCE_INFO[r].group === m[1]))
        return apiResources(m[1] ?? "", "v1");
      return null;
    }
  }
}

/** A body that must be a JSON object; 400 otherwise. */
async function readObject(req: IncomingMessage, what: string): Promise<KubeObject> {
  const body = await readBody(req);
  if (typeof body !== "object" || body === null || Array.isArray(body))
    throw new ApiError(`Cannot ${what}: the body is not an object`, 400, "BadRequest");
  return body as KubeObject;
}

/** A patch's own resourceVersion (a precondition), or undefined. */
function resourceVersionAsked(patch: Json): Json | undefined {
  return typeof patch === "object" && patch !== null && !Array.isArray(patch)
    ? (patch.metadata as { resourceVersion?: Json } | undefined)?.resourceVersion
    : undefined;
}

/** The double's state and its answers to each request. */
class KubeApiHandler {
  readonly store: ObjectStore;
  readonly audit: AuditRecord[] = [];
  readonly watches = new Set<{ res: ServerResponse; expire: () => void }>();
  readonly faults: Faults;
  readonly #users: Readonly<Record<string, ApiUser>>;
  readonly #anonymous: ApiUser | null;
  #failing: { status: number; remaining: number | null } | null = null;
  #delayMs = 0;
  #expiredAsHttp = false;

  constructor(options: KubeApiDoubleOptions) {
    this.store = new ObjectStore(options.maxEvents, options.snapshot);
    this.#users = options.users ?? {};
    this.#anonymous =
      options.anonymous === undefined
        ? { name: "system:admin", rules: ADMIN_RULES }
        : options.anonymous;
    this.faults = this.#newFaults();
    const onChange = options.onChange;
    if (onChange !== undefined)
      this.store.subscribe(() => {
        onChange(this.store);
      });
  }

  #newFaults(): Faults {
    return {
      cutWatches: () => {
        for (const w of this.watches) w.res.destroy();
        this.watches.clear();
      },
      expire: (opts = {}) => {
        this.#expiredAsHttp = opts.http ?? false;
        this.store.compact();
        for (const w of this.watches) w.expire();
        this.watches.clear();
      },
      fail: (code, count) => {
        this.#failing = { status: code, remaining: count };
      },
      delay: (ms) => {
        this.#delayMs = ms;
      },
      heal: () => {
        this.#failing = null;
        this.#delayMs = 0;
      },
    };
  }

  #authenticate(req: IncomingMessage): ApiUser | null | "unknown" {
    const header = req.headers.authorization ?? "";
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (m === null) return this.#anonymous;
    return this.#users[m[1] ?? ""] ?? "unknown";
  }

  /** The fault hooks under /_double/. */
  #control(path: string, query: URLSearchParams, res: ServerResponse): void {
    const { faults } = this;
    switch (path) {
      case "/_double/cut-watches":
        faults.cutWatches();
        break;
      case "/_double/expire":
        faults.expire({ http: query.get("http") === "true" });
        break;
      case "/_double/fail":
        faults.fail(
          Number(query.get("status") ?? "500"),
          query.has("count") ? Number(query.get("count")) : null,
        );
        break;
      case "/_double/delay":
        faults.delay(Number(query.get("ms") ?? "0"));
        break;
      case "/_double/heal":
        faults.heal();
        break;
      case "/_double/audit":
        send(res, 200, this.audit as unknown as Json);
        return;
      default:
        send(res, 404, status(404, "NotFound", `No fault hook at ${path}`));
        return;
    }
    send(res, 200, { ok: true });
  }

  /** What a watch from `rvText` starts with: the objects (from 0), the events since, or null. */
  #replay(target: Target, rvText: string): WatchEvent[] | null {
    if (rvText === "" || rvText === "0")
      return this.store
        .list(target.resource)
        .map((object) => ({ type: "ADDED" as const, resource: target.resource, object, rv: 0 }));
    return this.store.eventsSince(Number(rvText));
  }

  #watch(target: Target, query: URLSearchParams, res: ServerResponse): void {
    const rvText = query.get("resourceVersion") ?? "";
    const selector = query.get("fieldSelector");
    const labels = query.get("labelSelector");
    const wanted = (e: WatchEvent) =>
      e.resource === target.resource &&
      inNamespace(e.object, target.namespace) &&
      (target.name === "" || e.object.metadata.name === target.name) &&
      matchesField(e.object, selector) &&
      matchesLabels(e.object, labels);
    const replay = this.#replay(target, rvText);
    const tooOld = `too old resource version: ${rvText} (${this.store.resourceVersion})`;
    if (replay === null && this.#expiredAsHttp) {
      send(res, 410, status(410, "Expired", tooOld));
      return;
    }
    res.writeHead(200, { "Content-Type": "application/json", "Transfer-Encoding": "chunked" });
    res.flushHeaders();
    const write = (e: { type: string; object: Json }) => res.write(`${JSON.stringify(e)}\n`);
    if (replay === null) {
      write({ type: "ERROR", object: status(410, "Expired", tooOld) });
      res.end();
      return;
    }
    for (const e of replay.filter(wanted)) write({ type: e.type, object: e.object });
    this.#follow(res, query, write, wanted);
  }

  /** Streams the store's events that `wanted` takes, until the client goes or the timeout. */
  #follow(
    res: ServerResponse,
    query: URLSearchParams,
    write: (e: { type: string; object: Json }) => void,
    wanted: (e: WatchEvent) => boolean,
  ): void {
    const entry = {
      res,
      expire: () => {
        write({
          type: "ERROR",
          object: status(410, "Expired", "too old resource version: the event log was compacted"),
        });
        res.end();
      },
    };
    const unsubscribe = this.store.subscribe((e) => {
      if (wanted(e)) write({ type: e.type, object: e.object });
    });
    this.watches.add(entry);
    const timeout = Number(query.get("timeoutSeconds") ?? "0");
    const timer =
      timeout > 0
        ? setTimeout(() => {
            res.end();
          }, timeout * 1000)
        : null;
    res.on("close", () => {
      unsubscribe();
      this.watches.delete(entry);
      if (timer !== null) clearTimeout(timer);
    });
  }

  /** One verb on one resource; resolves with the status code sent. */
  async #serve(
    target: Target,
    verb: string,
    req: IncomingMessage,
    query: URLSearchParams,
    res: ServerResponse,
  ): Promise<number> {
    const { store } = this;
    const key = keyOf(target);
    switch (verb) {
      case "watch":
        this.#watch(target, query, res);
        return 200;
      case "list": {
        const selector = query.get("fieldSelector");
        const labels = query.get("labelSelector");
        const items = store
          .list(target.resource)
          .filter(
            (o) =>
              inNamespace(o, target.namespace) &&
              matchesField(o, selector) &&
              matchesLabels(o, labels),
          );
        send(res, 200, {
          kind: `${RESOURCE_INFO[target.resource].kind}List`,
          apiVersion: apiVersionOf(target.resource),
          metadata: { resourceVersion: store.resourceVersion },
          items,
        });
        return 200;
      }
      case "get":
        send(res, 200, store.get(target.resource, key));
        return 200;
      case "create":
        send(res, 201, await this.#create(target, req));
        return 201;
      case "update": {
        const body = (await readBody(req)) as KubeObject;
        const current = store.get(target.resource, key);
        const next = keepOther(current, body, target.subresource);
        send(res, 200, store.update(target.resource, key, next));
        return 200;
      }
      case "patch":
        send(res, 200, await this.#patch(target, req));
        return 200;
      case "delete":
        send(res, 200, store.delete(target.resource, key));
        return 200;
      default:
        throw new ApiError(`Method not allowed: ${verb}`, 405, "MethodNotAllowed");
    }
  }

  async #create(target: Target, req: IncomingMessage): Promise<KubeObject> {
    const object = await readObject(req, "create");
    const name = (object.metadata as KubeObject["metadata"] | undefined)?.name;
    if (typeof name !== "string" || name === "")
      throw new ApiError("Cannot create: metadata.name is required", 422, "Invalid");
    if (target.namespace !== "") object.metadata.namespace = target.namespace;
    const key = target.namespace === "" ? name : `${target.namespace}/${name}`;
    return this.store.create(target.resource, key, object);
  }

  async #patch(target: Target, req: IncomingMessage): Promise<KubeObject> {
    const type = (req.headers["content-type"] ?? "").split(";")[0]?.trim() ?? "";
    const apply = PATCH_TYPES[type];
    if (apply === undefined) {
      throw new ApiError(
        `the body of the request was in an unknown format - accepted media types include: ${Object.keys(PATCH_TYPES).join(", ")}`,
        415,
        "UnsupportedMediaType",
      );
    }
    const patch = await readBody(req);
    const key = keyOf(target);
    const current = this.store.get(target.resource, key);
    let next: Json;
    try {
      next = apply(current, patch);
    } catch (err) {
      if (err instanceof PatchError) throw new ApiError(err.message, err.status, "Invalid");
      throw err;
    }
    if (typeof next !== "object" || next === null || Array.isArray(next))
      throw new ApiError("The patch does not leave an object", 422, "Invalid");
    const patched = next as KubeObject;
    // A resourceVersion in the patch is a precondition; none means "whatever is stored".
    const asked = resourceVersionAsked(patch);
    patched.metadata = {
      ...patched.metadata,
      resourceVersion: typeof asked === "string" ? asked : (current.metadata.resourceVersion ?? ""),
    };
    return this.store.update(target.resource, key, keepOther(current, patched, target.subresource));
  }

  /** An injected failure or delay, when the faults ask for one; true when it answered. */
  async #injected(res: ServerResponse): Promise<boolean> {
    if (this.#delayMs > 0) await delay(this.#delayMs);
    const current = this.#failing;
    if (current === null) return false;
    if (current.remaining !== null) {
      current.remaining--;
      if (current.remaining <= 0) this.#failing = null;
    }
    send(
      res,
      current.status,
      status(current.status, "InternalError", "fault injected by the test"),
    );
    return true;
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://double");
    const path = url.pathname;
    const user = this.#authenticate(req);
    if (user === null || user === "unknown") {
      send(res, 401, status(401, "Unauthorized", "Unauthorized"));
      return;
    }
    if (path.startsWith("/_double/")) {
      if (!allows(user.rules, { verb: "*", resource: "*", subresource: "", name: "" })) {
        send(res, 403, status(403, "Forbidden", "Fault hooks are for an admin"));
        return;
      }
      this.#control(path, url.searchParams, res);
      return;
    }
    if (await this.#injected(res)) return;
    const answer = discovery(path, req) ?? openApiV3(path);
    if (answer !== null) {
      send(res, 200, answer);
      return;
    }
    const target = parseTarget(path);
    if (target === null) {
      send(res, 404, status(404, "NotFound", "the server could not find the requested resource"));
      return;
    }
    await this.#resourceRequest(user, target, req, url.searchParams, res);
  }

  /** A request on a resource: authorised, recorded in the audit, then served. */
  async #resourceRequest(
    user: ApiUser,
    target: Target,
    req: IncomingMessage,
    query: URLSearchParams,
    res: ServerResponse,
  ): Promise<void> {
    const verb = verbOf(req.method ?? "GET", target, query);
    const attributes: RequestAttributes = {
      verb,
      apiGroup: RESOURCE_INFO[target.resource].group,
      namespace: target.namespace,
      resource: target.resource,
      subresource: target.subresource,
      name: target.name,
    };
    const record = (code: number) =>
      this.audit.push({
        user: user.name,
        ...attributes,
        code,
        contentType: verb === "patch" ? (req.headers["content-type"] ?? "") : "",
      });
    if (!allows(user.rules, attributes)) {
      record(403);
      send(res, 403, status(403, "Forbidden", forbiddenMessage(user.name, attributes)));
      return;
    }
    if (
      target.subresource !== "" &&
      !RESOURCE_INFO[target.resource].subresources.includes(target.subresource)
    ) {
      record(404);
      send(res, 404, status(404, "NotFound", `no subresource "${target.subresource}"`));
      return;
    }
    try {
      record(await this.#serve(target, verb, req, query, res));
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      record(err.code);
      send(res, err.code, status(err.code, err.reason, err.message));
    }
  }
}

function listen(server: Server, where: { port: number; host: string } | { path: string }) {
  return new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(where, () => {
      resolve();
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => {
      resolve();
    });
  });
}

/** Starts the double; resolves once it listens. */
export async function startKubeApiDouble(
  options: KubeApiDoubleOptions = {},
): Promise<KubeApiDouble> {
  const handler = new KubeApiHandler(options);
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    handler.handle(req, res).catch((err: unknown) => {
      if (!res.headersSent)
        send(
          res,
          500,
          status(500, "InternalError", err instanceof Error ? err.message : String(err)),
        );
      else res.destroy();
    });
  };
  const server: Server = createServer(onRequest);
  server.keepAliveTimeout = 60_000;
  await listen(server, { port: options.port ?? 0, host: options.host ?? "127.0.0.1" });
  const servers = [server];
  if (options.socketPath !== undefined) {
    await rm(options.socketPath, { force: true });
    const unix = createServer(onRequest);
    await listen(unix, { path: options.socketPath });
    servers.push(unix);
  }
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const { store, audit, faults, watches } = handler;
  return {
    url: `http://${host}:${address.port}`,
    store,
    audit,
    faults,
    get openWatches() {
      return watches.size;
    },
    async close() {
      faults.cutWatches();
      await Promise.all(servers.map(closeServer));
    },
  };
}
