/**
 * etcd's v3 API through its JSON gateway: HTTP/1.1 and JSON on etcd's own client port (on by
 * default since etcd 3.4 at /v3, at /v3beta on 3.3), the same calls, revisions and leases as gRPC.
 * Only the calls the etcd subnet manager makes are here, with TLS, user and password, several
 * endpoints (the next is tried when one cannot be reached) and the errors a caller branches on.
 *
 * Why not gRPC: loading etcd3 with grpc-js and protobufjs was most of flanneld's start (342 ms
 * to subnet.env with it, 211 ms without) and 12 MiB of its memory; node:http takes a few ms
 * (issue #27, bench/footprint_bench.ts).
 */
import type {
  Agent,
  ClientRequest,
  IncomingMessage,
  RequestOptions,
  request as httpRequest,
} from "node:http";
import { StoreError } from "../../errors.js";
import { linkAbort } from "../../util/abort.js";
import { parseEndpoint, type Endpoint } from "./gateway_endpoint.js";
import { readObject, type JsonObject } from "./gateway_json.js";

export { parseEndpoint, type Endpoint } from "./gateway_endpoint.js";

/** How long one request may take before it fails (and the next endpoint is tried). */
export const REQUEST_TIMEOUT_MS = 10_000;

/**
 * Connections kept open to one endpoint; further requests wait for one (listing 5,000 leases
 * with their TTLs is 5,000 requests). Watches have connections of their own.
 */
const MAX_SOCKETS = 16;

/** No endpoint could be reached, or etcd answered that it cannot serve (no leader, a timeout). */
export class EtcdUnavailableError extends StoreError {}

/** etcd refused a request; `code` is its gRPC status code (3 invalid argument, 7 permission...). */
export class EtcdRequestError extends StoreError {
  constructor(
    message: string,
    readonly code: number,
  ) {
    super(message);
  }
}

/** How to reach etcd: endpoints, TLS material (already read) and a user. */
export interface GatewayConfig {
  readonly endpoints: readonly string[];
  readonly tls?: { readonly ca?: Buffer; readonly cert?: Buffer; readonly key?: Buffer };
  readonly username?: string;
  readonly password?: string;
}

/** gRPC status codes that mean "try again, maybe elsewhere" rather than "refused". */
const UNAVAILABLE_CODES = new Set([4, 14]); // DEADLINE_EXCEEDED, UNAVAILABLE
const UNAUTHENTICATED = 16;

/** An HTTP answer: its status and body text. */
interface Answer {
  readonly status: number;
  readonly text: string;
}

/** etcd's v3 API over HTTP, on one or more endpoints. */
export class EtcdGateway {
  readonly #endpoints: readonly Endpoint[];
  readonly #config: GatewayConfig;
  readonly #closed = new AbortController();
  #agents: { http: Agent | null; https: Agent | null } = { http: null, https: null };
  #current = 0;
  #token: Promise<string | null> | null = null;
  #apiPrefix = "/v3";

  constructor(config: GatewayConfig) {
    if (config.endpoints.length === 0) throw new TypeError("EtcdGateway needs an endpoint");
    this.#endpoints = config.endpoints.map((e) => parseEndpoint(e, config.tls !== undefined));
    this.#config = config;
  }

  /** Aborted by close(): every request and watch under way ends. */
  get closedSignal(): AbortSignal {
    return this.#closed.signal;
  }

  /** The endpoint requests go to now (the first that answered). */
  get currentEndpoint(): Endpoint {
    return this.#endpointAt(this.#current);
  }

  #endpointAt(index: number): Endpoint {
    const endpoint = this.#endpoints[index % this.#endpoints.length];
    if (endpoint === undefined) throw new RangeError(`no endpoint ${index}`);
    return endpoint;
  }

  /**
   * One unary call (`/v3/kv/range`, `/v3/lease/grant`...): tries each endpoint in turn, from the
   * one that answered last, and re-authenticates once when etcd says the token expired.
   */
  async call(path: string, body: JsonObject): Promise<JsonObject> {
    let lastError: Error | null = null;
    for (let tried = 0; tried < this.#endpoints.length; tried++) {
      const index = (this.#current + tried) % this.#endpoints.length;
      try {
        const result = await this.#callOn(this.#endpointAt(index), path, body);
        this.#current = index;
        return result;
      } catch (err) {
        if (!(err instanceof EtcdUnavailableError) || this.#closed.signal.aborted) throw err;
        lastError = err;
      }
    }
    throw lastError ?? new EtcdUnavailableError("no etcd endpoint");
  }

  async #callOn(endpoint: Endpoint, path: string, body: JsonObject): Promise<JsonObject> {
    for (let attempt = 0; ; attempt++) {
      const token = await this.#authToken(endpoint);
      const answer = await this.#post(endpoint, `${this.#apiPrefix}${path}`, body, token);
      if (answer.status === 404 && this.#apiPrefix === "/v3" && attempt === 0) {
        this.#apiPrefix = "/v3beta"; // etcd 3.3
        continue;
      }
      const failure = answerError(answer, endpoint);
      if (failure === null) return readObject(answer.text, "etcd's answer");
      if (
        failure instanceof EtcdRequestError &&
        failure.code === UNAUTHENTICATED &&
        token !== null &&
        attempt === 0
      ) {
        this.#token = null; // the token expired (etcd restarted, or its TTL passed)
        continue;
      }
      throw failure;
    }
  }

  /** The auth token for requests; null without a user. Fetched once and shared. */
  #authToken(endpoint: Endpoint): Promise<string | null> {
    const { username, password } = this.#config;
    if (username === undefined) return Promise.resolve(null);
    if (this.#token !== null) return this.#token;
    const token = this.#post(endpoint, `${this.#apiPrefix}/auth/authenticate`, {
      name: username,
      password: password ?? "",
    }).then((answer) => {
      const failure = answerError(answer, endpoint);
      if (failure !== null) throw failure;
      const value = readObject(answer.text, "etcd's answer").token;
      if (typeof value !== "string") throw new EtcdRequestError("etcd sent no auth token", 16);
      return value;
    });
    // A failed authentication is not kept: the next request tries again.
    token.catch(() => {
      if (this.#token === token) this.#token = null;
    });
    this.#token = token;
    return token;
  }

  /**
   * Opens a streaming POST (a watch) on the current endpoint; the caller reads it, and it ends
   * when `signal` aborts or the gateway closes.
   */
  async openStream(path: string, body: JsonObject, signal: AbortSignal): Promise<IncomingMessage> {
    const endpoint = this.currentEndpoint;
    const token = await this.#authToken(endpoint);
    this.#throwIfClosed();
    const { request } = this.#module(endpoint);
    const options = this.#options(endpoint, `${this.#apiPrefix}${path}`, token, false);
    const res = await send(request, options, body, {
      endpoint,
      signals: [signal, this.#closed.signal],
    });
    if (res.statusCode === 200) return res;
    const text = await readText(res);
    throw (
      answerError({ status: res.statusCode ?? 0, text }, endpoint) ?? new EtcdRequestError(text, -1)
    );
  }

  /**
   * Whether `endpoint` answers within `timeoutMs` (a count-only read of `key`): how a watch finds
   * out that the connection it streams on is dead, as gRPC's keepalive pings did.
   */
  async ping(endpoint: Endpoint, key: Buffer, timeoutMs: number): Promise<boolean> {
    try {
      const token = await this.#authToken(endpoint);
      const answer = await this.#post(
        endpoint,
        `${this.#apiPrefix}/kv/range`,
        { key: key.toString("base64"), count_only: true },
        token,
        timeoutMs,
      );
      return !(answerError(answer, endpoint) instanceof EtcdUnavailableError);
    } catch (err) {
      return !(err instanceof EtcdUnavailableError);
    }
  }

  /** Forgets the auth token (etcd cancelled a watch for an expired one). */
  forgetToken(): void {
    this.#token = null;
  }

  /** Moves on to the next endpoint (a watch whose endpoint stopped answering). */
  nextEndpoint(): void {
    this.#current = (this.#current + 1) % this.#endpoints.length;
  }

  /** After close(), nothing opens a connection again (one kept open would hold the process). */
  #throwIfClosed(): void {
    if (this.#closed.signal.aborted) throw this.#closed.signal.reason as Error;
  }

  /** Ends every request and watch, and the connections kept open. */
  close(): void {
    this.#closed.abort(new EtcdUnavailableError("the etcd client was closed"));
    this.#agents.http?.destroy();
    this.#agents.https?.destroy();
  }

  async #post(
    endpoint: Endpoint,
    path: string,
    body: JsonObject,
    token: string | null = null,
    timeoutMs = REQUEST_TIMEOUT_MS,
  ): Promise<Answer> {
    this.#throwIfClosed();
    const { request, agent } = this.#module(endpoint);
    const options = this.#options(endpoint, path, token, agent);
    const res = await send(request, options, body, {
      endpoint,
      signals: [this.#closed.signal],
      timeoutMs,
    });
    return { status: res.statusCode ?? 0, text: await readText(res) };
  }

  #options(
    endpoint: Endpoint,
    path: string,
    token: string | null,
    agent: Agent | false,
  ): RequestOptions {
    const tls = endpoint.tls ? (this.#config.tls ?? {}) : {};
    return {
      ...(endpoint.socketPath !== undefined
        ? { socketPath: endpoint.socketPath }
        : { host: endpoint.host, port: endpoint.port }),
      path,
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...(token === null ? {} : { authorization: token }),
      },
      ...tls,
      agent,
    };
  }

  /**
   * node:http or node:https (loaded only for TLS) and its keep-alive agent. Loaded when first
   * needed with getBuiltinModule(), which, unlike import(), works in the single executable too.
   */
  #module(endpoint: Endpoint): { request: typeof httpRequest; agent: Agent } {
    if (endpoint.tls) {
      const https = process.getBuiltinModule("node:https");
      this.#agents.https ??= new https.Agent({
        keepAlive: true,
        maxSockets: MAX_SOCKETS,
        ...this.#config.tls,
      });
      return { request: https.request, agent: this.#agents.https };
    }
    const http = process.getBuiltinModule("node:http");
    this.#agents.http ??= new http.Agent({ keepAlive: true, maxSockets: MAX_SOCKETS });
    return { request: http.request, agent: this.#agents.http };
  }
}

/** The error an answer stands for, or null for a 200. */
function answerError(answer: Answer, endpoint: Endpoint): StoreError | null {
  if (answer.status === 200) return null;
  let message = answer.text.trim();
  let code = -1;
  try {
    const body = JSON.parse(answer.text) as { message?: unknown; error?: unknown; code?: unknown };
    const reason = body.message ?? body.error;
    if (typeof reason === "string") message = reason;
    code = typeof body.code === "number" ? body.code : -1;
  } catch {
    // not JSON: a proxy's page, or "Not Found" from an etcd without the gateway
  }
  if (answer.status === 404)
    return new EtcdRequestError(
      `${endpoint.name} has no etcd v3 JSON gateway (HTTP 404 at /v3 and /v3beta): flannel-ts needs etcd 3.3 or later with --enable-grpc-gateway (the default)`,
      12,
    );
  if (UNAVAILABLE_CODES.has(code) || answer.status === 503)
    return new EtcdUnavailableError(`${endpoint.name}: ${message}`);
  return new EtcdRequestError(message || `HTTP ${answer.status}`, code);
}

function unreachable(endpoint: Endpoint, err: unknown): EtcdUnavailableError {
  const reason =
    err instanceof Error && err.name === "TimeoutError"
      ? "no answer in time"
      : err instanceof Error
        ? err.message
        : String(err);
  return new EtcdUnavailableError(`Cannot reach etcd at ${endpoint.name}: ${reason}`, {
    cause: err,
  });
}

/**
 * Sends one POST and resolves with the answer's head. It fails with EtcdUnavailableError when
 * the endpoint cannot be reached, no answer has come within `timeoutMs`, or a signal aborts; a
 * signal that aborts later ends the answer's stream.
 */
function send(
  request: typeof httpRequest,
  options: RequestOptions,
  body: JsonObject,
  how: { endpoint: Endpoint; signals: readonly AbortSignal[]; timeoutMs?: number },
): Promise<IncomingMessage> {
  const link = linkAbort(how.signals);
  return new Promise<IncomingMessage>((resolve, reject) => {
    const req: ClientRequest = request(options, (res) => {
      clearTimeout(timer);
      res.once("close", () => {
        link.dispose();
      });
      resolve(res);
    });
    const timer =
      how.timeoutMs === undefined
        ? undefined
        : setTimeout(() => req.destroy(new TimeoutError()), how.timeoutMs);
    const cancel = () => req.destroy(link.signal.reason as Error);
    if (link.signal.aborted) cancel();
    else link.signal.addEventListener("abort", cancel, { once: true });
    req.on("error", (err) => {
      clearTimeout(timer);
      link.dispose();
      reject(unreachable(how.endpoint, err));
    });
    req.end(JSON.stringify(body));
  });
}

class TimeoutError extends Error {
  override name = "TimeoutError";
}

function readText(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on("data", (chunk: Buffer) => {
      chunks.push(chunk);
    });
    res.on("end", () => {
      resolve(Buffer.concat(chunks).toString("utf8"));
    });
    res.on("error", reject);
  });
}
