/**
 * A throwaway etcd (Debian's etcd-server) for tests, benches and the lab: free ports, data in a
 * temp folder, optionally inside a network namespace, stopped and wiped by `stop()`.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCapture } from "../src/util/exec.js";
import { waitFor } from "./poll.js";

/** A running etcd. */
export interface EtcdServer {
  /** Client URL, e.g. http://127.0.0.1:23791. */
  readonly endpoint: string;
  readonly dataDir: string;
  readonly process: ChildProcess;
  /** Stops etcd (SIGTERM, then SIGKILL) and removes its data folder. Safe to call twice. */
  stop(): Promise<void>;
}

/** Options of startEtcd. */
export interface StartEtcdOptions {
  /** Address to listen on; 127.0.0.1 by default. */
  readonly host?: string;
  /** Run inside this network namespace (made by the caller). */
  readonly netns?: string;
  readonly clientPort?: number;
  readonly peerPort?: number;
  /** Folder for data; a new temp folder by default (removed by stop()). */
  readonly dataDir?: string;
  readonly name?: string;
  /** Where etcd's own output goes; discarded by default. */
  readonly logFile?: number;
  /** Serve clients over TLS and require client certificates signed by `caFile`. */
  readonly tls?: { readonly certFile: string; readonly keyFile: string; readonly caFile: string };
}

/** Finds a free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) =>
    server.close(() => {
      resolve();
    }),
  );
  if (address === null || typeof address === "string") throw new Error("Cannot find a free port");
  return address.port;
}

/** What one etcd member is started with. */
export interface EtcdMemberArgs {
  readonly name: string;
  readonly dataDir: string;
  /** Comma-separated URLs to listen on for clients. */
  readonly listenClientUrls: string;
  /** The client URL to advertise. */
  readonly clientUrl: string;
  readonly peerUrl: string;
  /** `--initial-cluster`: name=peerUrl pairs, comma-separated. */
  readonly cluster: string;
}

/** The command line of one etcd member of a new cluster, quiet in its logs. */
export function etcdArgs(m: EtcdMemberArgs): string[] {
  return [
    "--name",
    m.name,
    "--data-dir",
    m.dataDir,
    "--listen-client-urls",
    m.listenClientUrls,
    "--advertise-client-urls",
    m.clientUrl,
    "--listen-peer-urls",
    m.peerUrl,
    "--initial-advertise-peer-urls",
    m.peerUrl,
    "--initial-cluster",
    m.cluster,
    "--initial-cluster-state",
    "new",
    "--log-level",
    "warn",
    "--logger",
    "zap",
  ];
}

/** Asks etcdctl whether the endpoint is healthy. */
async function healthy(
  endpoint: string,
  netns: string | undefined,
  tls: StartEtcdOptions["tls"],
): Promise<boolean> {
  const tlsArgs = tls ? ["--cacert", tls.caFile, "--cert", tls.certFile, "--key", tls.keyFile] : [];
  const args = [
    ...tlsArgs,
    "--endpoints",
    endpoint,
    "--dial-timeout",
    "1s",
    "--command-timeout",
    "2s",
    "endpoint",
    "health",
  ];
  const [cmd, argv] = netns
    ? ["ip", ["netns", "exec", netns, "etcdctl", ...args]]
    : ["etcdctl", args];
  const { code } = await runCapture(cmd, argv, { env: { ...process.env, ETCDCTL_API: "3" } });
  return code === 0;
}

/** Starts etcd and resolves once it answers. */
export async function startEtcd(options: StartEtcdOptions = {}): Promise<EtcdServer> {
  const host = options.host ?? "127.0.0.1";
  const clientPort = options.clientPort ?? (options.netns ? 2379 : await freePort());
  const peerPort = options.peerPort ?? (options.netns ? 2380 : await freePort());
  const ownDataDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), "flannel-ts-etcd-")));
  const name = options.name ?? "default";
  const endpoint = `${options.tls ? "https" : "http"}://${host}:${clientPort}`;
  const peer = `http://${host}:${peerPort}`;
  const tlsArgs = options.tls
    ? [
        "--cert-file",
        options.tls.certFile,
        "--key-file",
        options.tls.keyFile,
        "--trusted-ca-file",
        options.tls.caFile,
        "--client-cert-auth",
      ]
    : [];
  const args = [
    ...tlsArgs,
    ...etcdArgs({
      name,
      dataDir,
      listenClientUrls: endpoint,
      clientUrl: endpoint,
      peerUrl: peer,
      cluster: `${name}=${peer}`,
    }),
  ];
  // setpriv --pdeathsig: etcd ends with the process that started it, even when that process is
  // killed before it can stop etcd (a test run cut short, a bench piped into head).
  const etcd = ["--pdeathsig", "TERM", "etcd", ...args];
  const [cmd, argv] = options.netns
    ? ["ip", ["netns", "exec", options.netns, "setpriv", ...etcd]]
    : ["setpriv", etcd];
  const child = spawn(cmd, argv, {
    stdio: ["ignore", options.logFile ?? "ignore", options.logFile ?? "ignore"],
  });
  const state = { exited: false };
  const exit = new Promise<void>((resolve) =>
    child.once("exit", () => {
      state.exited = true;
      resolve();
    }),
  );
  const stop = async () => {
    if (!state.exited) {
      child.kill("SIGTERM");
      const killer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exit;
      clearTimeout(killer);
    }
    if (ownDataDir) await rm(dataDir, { recursive: true, force: true });
  };
  try {
    // An etcd that exited ends the wait at once; the check below tells which it was.
    const ready = async () => state.exited || (await healthy(endpoint, options.netns, options.tls));
    await waitFor(`etcd at ${endpoint} to answer`, ready, { timeoutMs: 20_000, intervalMs: 100 });
    if (!state.exited) return { endpoint, dataDir, process: child, stop };
  } catch {
    // timed out: reported below
  }
  await stop();
  throw new Error(
    `Cannot start etcd at ${endpoint}: it did not become healthy (is etcd-server installed?)`,
  );
}
