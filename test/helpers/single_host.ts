/**
 * One test host: a network namespace with a veth pair inside it (veth0 10.250.0.2/24, its peer
 * 10.250.0.1/24 as the gateway of a default route) and its own etcd on the namespace's loopback.
 * Everything the test sends stays inside the namespace.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT } from "../../lab/cluster.js";
import { startEtcd } from "../../lab/etcd_server.js";
import type { EtcdServer } from "../../lab/etcd_server.js";
import { addNetns, deleteNetns, execIn, ip, uniquePrefix } from "../../lab/netns.js";

export { REPO_ROOT };

/** A namespace with an address, a default route and an etcd. */
export interface SingleHost {
  readonly netns: string;
  readonly address: string;
  readonly etcd: EtcdServer;
  readonly dir: string;
  etcdctl(args: readonly string[], input?: string): Promise<string>;
  /**
   * Starts bin/flanneld (or `program`) in the namespace; output is collected in `output()`. With
   * `env.PATH` set, the environment is that alone (a host without Node.js on its PATH).
   */
  flanneld(args: readonly string[], env?: NodeJS.ProcessEnv, program?: string): FlanneldProcess;
  cleanup(): Promise<void>;
}

/** A flanneld started by a test. */
export interface FlanneldProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  output(): string;
}

/** Builds the host; call cleanup() in finally. */
export async function openSingleHost(tag: string): Promise<SingleHost> {
  const netns = uniquePrefix(tag);
  const dir = await mkdtemp(join(tmpdir(), `${netns}-`));
  const children: ChildProcess[] = [];
  let etcd: EtcdServer | null = null;
  const cleanup = async () => {
    for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
    await etcd?.stop();
    await deleteNetns(netns);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await addNetns(netns);
    await ip(["link", "add", "veth0", "type", "veth", "peer", "name", "veth1"], netns);
    await ip(["addr", "add", "10.250.0.2/24", "dev", "veth0"], netns);
    await ip(["addr", "add", "10.250.0.1/24", "dev", "veth1"], netns);
    await ip(["link", "set", "veth0", "up"], netns);
    await ip(["link", "set", "veth1", "up"], netns);
    await ip(["route", "add", "default", "via", "10.250.0.1", "dev", "veth0"], netns);
    etcd = await startEtcd({ netns, dataDir: join(dir, "etcd") });
  } catch (err) {
    await cleanup();
    throw err;
  }
  const server = etcd;
  return {
    netns,
    address: "10.250.0.2",
    etcd: server,
    dir,
    etcdctl: (args, input) =>
      execIn(
        netns,
        "etcdctl",
        ["--endpoints", server.endpoint, ...args],
        input === undefined ? {} : { input },
      ),
    flanneld(args, env = {}, program = join(REPO_ROOT, "bin/flanneld")) {
      const child = spawn("/usr/sbin/ip", ["netns", "exec", netns, program, ...args], {
        stdio: ["ignore", "pipe", "pipe"],
        env: env.PATH === undefined ? { ...process.env, ...env } : env,
      });
      children.push(child);
      let out = "";
      child.stdout.on("data", (d: Buffer) => (out += d.toString()));
      child.stderr.on("data", (d: Buffer) => (out += d.toString()));
      const exited = new Promise<number | null>((done) =>
        child.once("exit", (code) => {
          done(code);
        }),
      );
      return { child, exited, output: () => out };
    },
    cleanup,
  };
}
