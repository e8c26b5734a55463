/**
 * A CRI client playing the kubelet: the runtime.v1 calls the kubelet makes for a pod's sandbox
 * (RunPodSandbox, PodSandboxStatus, StopPodSandbox, RemovePodSandbox, ListPodSandbox), over gRPC
 * on a container runtime's socket, with the messages in cri/runtime_v1.proto. Every call has a
 * deadline, so that a runtime that hangs fails the call with a clear error instead.
 */
import { join } from "node:path";
import { credentials, loadPackageDefinition } from "@grpc/grpc-js";
import type { Client, ServiceClientConstructor, ServiceError } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { REPO_ROOT } from "../src/util/repo_root.js";

const PROTO = join(REPO_ROOT, "lab/cri/runtime_v1.proto");

/** A port of the sandbox published on the host, as a Pod's `hostPort` asks for. */
export interface SandboxPortMapping {
  readonly protocol: "TCP" | "UDP" | "SCTP";
  readonly containerPort: number;
  readonly hostPort: number;
  readonly hostIp?: string;
}

/** What the kubelet tells the runtime about a pod when it asks for its sandbox. */
export interface SandboxSpec {
  readonly name: string;
  readonly namespace: string;
  readonly uid: string;
  readonly attempt?: number;
  readonly hostname?: string;
  readonly logDirectory: string;
  readonly portMappings?: readonly SandboxPortMapping[];
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
}

/** A sandbox as PodSandboxStatus (verbose) reports it. */
export interface SandboxStatus {
  readonly id: string;
  readonly name: string;
  readonly namespace: string;
  readonly ready: boolean;
  /** The pod's addresses: status.network.ip, then its additional IPs (as the kubelet's podIPs). */
  readonly ips: readonly string[];
  /** The sandbox's network namespace, from the runtime's verbose info (a path). */
  readonly netnsPath: string | null;
  /** The sandbox's first process (its pause), from the verbose info. */
  readonly pid: number | null;
}

/** A sandbox as ListPodSandbox lists it. */
export interface SandboxSummary {
  readonly id: string;
  readonly name: string;
  readonly namespace: string;
  readonly ready: boolean;
}

/** The runtime's name and versions, from Version. */
export interface RuntimeVersion {
  readonly runtimeName: string;
  readonly runtimeVersion: string;
  readonly runtimeApiVersion: string;
}

/** A CRI call that failed: the runtime's own message (what `kubectl describe pod` shows). */
export class CriCallError extends Error {
  constructor(
    readonly call: string,
    readonly grpcCode: number,
    readonly details: string,
  ) {
    super(`CRI ${call} failed (gRPC code ${grpcCode}): ${details}`);
    this.name = "CriCallError";
  }
}

interface Metadata {
  name: string;
  namespace: string;
  uid: string;
}
interface StatusReply {
  status: {
    id: string;
    metadata: Metadata | null;
    state: string;
    network: { ip: string; additionalIps: { ip: string }[] } | null;
  } | null;
  info: Record<string, string>;
}
interface ListReply {
  items: { id: string; metadata: Metadata | null; state: string }[];
}

type Callback = (err: ServiceError | null, reply: unknown) => void;
type Method = (request: unknown, options: { deadline: Date }, callback: Callback) => void;

let serviceClass: ServiceClientConstructor | null = null;

/** The RuntimeService client class, made from the .proto once. */
function runtimeServiceClass(): ServiceClientConstructor {
  if (serviceClass !== null) return serviceClass;
  const definition = loadSync(PROTO, { longs: String, enums: String, defaults: true });
  const api = loadPackageDefinition(definition) as unknown as {
    runtime?: { v1?: { RuntimeService?: ServiceClientConstructor } };
  };
  const found = api.runtime?.v1?.RuntimeService;
  if (found === undefined) throw new Error(`${PROTO} has no runtime.v1.RuntimeService`);
  serviceClass = found;
  return found;
}

/** The verbose info's sandbox pid and network namespace path (containerd's "info" JSON). */
function parseInfo(info: Record<string, string>): { pid: number | null; netnsPath: string | null } {
  const text = info["info"];
  if (text === undefined) return { pid: null, netnsPath: null };
  const parsed = JSON.parse(text) as {
    pid?: number;
    runtimeSpec?: { linux?: { namespaces?: { type: string; path?: string }[] } };
  };
  const net = parsed.runtimeSpec?.linux?.namespaces?.find((n) => n.type === "network");
  return { pid: parsed.pid ?? null, netnsPath: net?.path ?? null };
}

/** A connection to a runtime's CRI socket. */
export class CriClient {
  readonly #client: Client;

  /** Connects to the runtime's Unix socket; `timeoutMs` bounds every call. */
  constructor(
    readonly socketPath: string,
    readonly timeoutMs = 60_000,
  ) {
    const Service = runtimeServiceClass();
    this.#client = new Service(`unix://${socketPath}`, credentials.createInsecure());
  }

  #call<T>(name: string, request: unknown, timeoutMs = this.timeoutMs): Promise<T> {
    const method = (this.#client as unknown as Record<string, Method>)[name];
    if (method === undefined) throw new Error(`runtime_v1.proto has no call ${name}`);
    return new Promise((resolve, reject) => {
      method.call(
        this.#client,
        request,
        { deadline: new Date(Date.now() + timeoutMs) },
        (err, reply) => {
          if (err !== null) reject(new CriCallError(name, err.code, err.details));
          else resolve(reply as T);
        },
      );
    });
  }

  /** The runtime's name and versions; a quick call that tells the runtime answers. */
  version(timeoutMs?: number): Promise<RuntimeVersion> {
    return this.#call("Version", { version: "v1" }, timeoutMs);
  }

  /** RunPodSandbox as the kubelet sends it; resolves with the sandbox's id. */
  async runPodSandbox(spec: SandboxSpec): Promise<string> {
    const reply = await this.#call<{ podSandboxId: string }>("RunPodSandbox", {
      config: {
        metadata: {
          name: spec.name,
          uid: spec.uid,
          namespace: spec.namespace,
          attempt: spec.attempt ?? 0,
        },
        hostname: spec.hostname ?? spec.name,
        logDirectory: spec.logDirectory,
        portMappings: spec.portMappings ?? [],
        labels: spec.labels ?? {},
        annotations: spec.annotations ?? {},
        linux: {
          securityContext: { namespaceOptions: { network: "POD", pid: "CONTAINER", ipc: "POD" } },
        },
      },
      runtimeHandler: "",
    });
    return reply.podSandboxId;
  }

  /** PodSandboxStatus, verbose: its state, addresses, network namespace and pid. */
  async podSandboxStatus(id: string): Promise<SandboxStatus> {
    const reply = await this.#call<StatusReply>("PodSandboxStatus", {
      podSandboxId: id,
      verbose: true,
    });
    const status = reply.status;
    if (status === null) throw new Error(`CRI PodSandboxStatus of ${id} gave no status`);
    const network = status.network;
    const ips = network === null ? [] : [network.ip, ...network.additionalIps.map((a) => a.ip)];
    return {
      id: status.id,
      name: status.metadata?.name ?? "",
      namespace: status.metadata?.namespace ?? "",
      ready: status.state === "SANDBOX_READY",
      ips: ips.filter((ip) => ip !== ""),
      ...parseInfo(reply.info),
    };
  }

  /** StopPodSandbox: the runtime calls the CNI DEL and stops the sandbox; idempotent. */
  async stopPodSandbox(id: string): Promise<void> {
    await this.#call("StopPodSandbox", { podSandboxId: id });
  }

  /** RemovePodSandbox: idempotent. */
  async removePodSandbox(id: string): Promise<void> {
    await this.#call("RemovePodSandbox", { podSandboxId: id });
  }

  /** Stop, then remove, as the kubelet does when a pod goes. */
  async stopAndRemove(id: string): Promise<void> {
    await this.stopPodSandbox(id);
    await this.removePodSandbox(id);
  }

  /** ListPodSandbox, unfiltered. */
  async listPodSandbox(): Promise<SandboxSummary[]> {
    const reply = await this.#call<ListReply>("ListPodSandbox", {});
    return reply.items.map((item) => ({
      id: item.id,
      name: item.metadata?.name ?? "",
      namespace: item.metadata?.namespace ?? "",
      ready: item.state === "SANDBOX_READY",
    }));
  }

  close(): void {
    this.#client.close();
  }
}
