/**
 * flannel_udp_proxy.c (a forwarder written as flannel (Go)'s C proxy loop), compiled once per
 * source version into the temp folder and run in a host's namespace: the interop test's flannel
 * host and the udp bench's baseline.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { access, mkdir, readFile, rename } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { ip, run } from "../../lab/netns.js";
import { REPO_ROOT } from "../../src/util/repo_root.js";

const SOURCE = join(REPO_ROOT, "test/helpers/flannel_udp_proxy.c");

/** The compiled proxy, built when its source changed. */
export async function compileCProxy(): Promise<string> {
  const source = await readFile(SOURCE);
  const hash = createHash("sha256").update(source).digest("hex").slice(0, 16);
  const dir = join(tmpdir(), "flannel-ts-c-proxy");
  const binary = join(dir, `flannel_udp_proxy-${hash}`);
  try {
    await access(binary);
    return binary;
  } catch {
    await mkdir(dir, { recursive: true });
    const partial = `${binary}.${process.pid}`;
    await run("cc", ["-O2", "-Wall", "-o", partial, SOURCE]);
    await rename(partial, binary);
    return binary;
  }
}

/** A running C proxy. */
export interface CProxy {
  /** The proxy's process (nsenter runs it in place). */
  readonly pid: number;
  /** Forwards `subnet` (a.b.c.d/n) to a host, as flannel's CMD_SET_ROUTE. */
  addRoute(subnet: string, hostIP: string, port: number): Promise<void>;
  /** Stops forwarding to `subnet`, as flannel's CMD_DEL_ROUTE. */
  deleteRoute(subnet: string): Promise<void>;
  /** Stops the proxy (its TUN goes with it). */
  stop(): Promise<void>;
}

/** What the proxy's host looks like. */
export interface CProxySpec {
  readonly netns: string;
  readonly bindIP: string;
  readonly port: number;
  /** The host's lease subnet (a.b.c.0/n): its first address goes on flannel0. */
  readonly subnet: string;
  /** The flannel Network, routed through flannel0. */
  readonly network: string;
  readonly mtu: number;
}

/**
 * Starts the proxy in `spec.netns` and sets up flannel0 as flannel (Go) does: `<subnet IP>/32`,
 * the MTU, up, and a route for the Network through it.
 */
export async function startCProxy(spec: CProxySpec): Promise<CProxy> {
  const binary = await compileCProxy();
  const tunIP = spec.subnet.split("/")[0] ?? "";
  const child: ChildProcess = spawn(
    "nsenter",
    [
      `--net=/var/run/netns/${spec.netns}`,
      binary,
      "flannel0",
      spec.bindIP,
      String(spec.port),
      tunIP,
      String(spec.mtu),
    ],
    { stdio: ["pipe", "pipe", "inherit"] },
  );
  const lines = createInterface({ input: child.stdout ?? process.stdin });
  const waiting: ((line: string) => void)[] = [];
  lines.on("line", (line) => waiting.shift()?.(line));
  const exited = new Promise<never>((_, reject) => {
    child.once("exit", (code) => {
      reject(new Error(`flannel_udp_proxy in ${spec.netns} exited with code ${String(code)}`));
    });
  });
  exited.catch(() => undefined);
  const nextLine = () =>
    Promise.race([new Promise<string>((resolve) => waiting.push(resolve)), exited]);
  const send = async (command: string) => {
    const answer = nextLine();
    child.stdin?.write(`${command}\n`);
    const line = await answer;
    if (line !== "ok") throw new Error(`flannel_udp_proxy refused "${command}": ${line}`);
  };
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await gone;
  };
  try {
    const ready = await nextLine();
    if (ready !== "ready") throw new Error(`flannel_udp_proxy did not start: ${ready}`);
    await ip(["addr", "add", `${tunIP}/32`, "dev", "flannel0"], spec.netns);
    await ip(["link", "set", "flannel0", "mtu", String(spec.mtu), "up"], spec.netns);
    await ip(["route", "replace", spec.network, "dev", "flannel0"], spec.netns);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    pid: child.pid ?? 0,
    addRoute: (subnet, hostIP, port) => send(`add ${subnet} ${hostIP} ${port}`),
    deleteRoute: (subnet) => send(`del ${subnet}`),
    stop,
  };
}
