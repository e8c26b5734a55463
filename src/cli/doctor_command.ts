/**
 * `flannelctl doctor [--json] [--fix] [flanneld's flags...]`: flanneld's flags tell doctor the
 * store, the interface and subnet.env; without any, it reads them from the flanneld running in
 * this network namespace (its command line and FLANNELD_* variables), else from FLANNELD_*.
 */
import { FlannelError } from "../errors.js";
import type { FlanneldOptions } from "../daemon/run_flanneld.js";
import { applyFixes, isHealthy, readHostView, runDoctor } from "../doctor/doctor.js";
import type { DoctorDeps, DoctorReport, FixResult } from "../doctor/doctor.js";
import { firstProblem, formatTrace, traceLocal } from "../doctor/trace.js";
import { findFlanneld } from "../doctor/flanneld_process.js";
import type { FlanneldProcess } from "../doctor/flanneld_process.js";
import { formatReport, reportJson } from "../doctor/report.js";
import pino from "pino";
import { RtNetlink } from "../net/rtnetlink.js";
import { flanneldDeps } from "./flanneld_deps.js";
import { parsePortSpec } from "../netpol/describe.js";
import type { ClusterView } from "../netpol/index.js";
import { parseFlanneldFlags } from "./flanneld_flags.js";

function optionsFrom(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  from: string,
): FlanneldOptions {
  const parsed = parseFlanneldFlags(args, env);
  if (parsed.kind === "exit")
    throw new FlannelError(
      `Cannot read flanneld's flags (${from}): ${parsed.stderr.trim().replace(/^flanneld: /, "")}`,
    );
  return parsed.options;
}

/** flanneld's options, from doctor's arguments, the running flanneld, or the environment. */
function chooseOptions(
  args: readonly string[],
  processes: readonly FlanneldProcess[],
): { options: FlanneldOptions; env: NodeJS.ProcessEnv; source: string } {
  if (args.length > 0)
    return {
      options: optionsFrom(args, process.env, "the command line"),
      env: process.env,
      source: "the command line",
    };
  const [only] = processes;
  if (processes.length === 1 && only !== undefined) {
    const source = `flanneld pid ${only.pid}`;
    return { options: optionsFrom(only.args, only.env, source), env: only.env, source };
  }
  return {
    options: optionsFrom([], process.env, "FLANNELD_* variables"),
    env: process.env,
    source: "FLANNELD_* variables and defaults",
  };
}

/** Runs `fn` with doctor's dependencies for this host, and flanneld's settings chosen. */
async function withHost<T>(
  args: readonly string[],
  fn: (
    options: FlanneldOptions,
    deps: DoctorDeps,
    signal: AbortSignal,
    source: string,
  ) => Promise<T>,
): Promise<T> {
  const processes = await findFlanneld();
  const { options, env, source } = chooseOptions(args, processes);
  const log = pino({ level: "error", base: null, timestamp: false }, pino.destination(2));
  const chosen = flanneldDeps(options, log, env);
  const netlink = new RtNetlink();
  const signal = AbortSignal.timeout(60_000);
  const deps: DoctorDeps = {
    netlink,
    openManager: () => chosen.newSubnetManager({ signal }),
    newTrafficManager: (nft: boolean) => chosen.newTrafficManager(nft),
    processes,
    policy: options.networkPolicy ? await policySources(options, env, signal) : null,
  };
  try {
    return await fn(options, deps, signal, source);
  } finally {
    netlink.close();
  }
}

/** The cluster's policies (listed once) and this host's table, for --network-policy. */
async function policySources(
  options: FlanneldOptions,
  env: NodeJS.ProcessEnv,
  signal: AbortSignal,
): Promise<NonNullable<DoctorDeps["policy"]>> {
  const [{ listClusterView }, { nftPolicyTable }, { loadKubeConfig }] = await Promise.all([
    import("../netpol/network_policy.js"),
    import("../netpol/nft_policy.js"),
    import("../subnet/kube/kube_client.js"),
  ]);
  const kc = loadKubeConfig(
    { apiUrl: options.kubeApiUrl, kubeconfigFile: options.kubeconfigFile },
    env,
  );
  let cluster: Promise<ClusterView> | null = null;
  return {
    cluster: () => (cluster ??= listClusterView(kc, signal)),
    table: () => nftPolicyTable.list(),
  };
}

export async function doctorCommand(
  args: readonly string[],
  flags: { readonly json?: boolean; readonly fix?: boolean },
  out: (text: string) => void,
): Promise<number> {
  return withHost(args, async (options, deps, signal, source) => {
    let report: DoctorReport = await runDoctor(options, deps, signal);
    let fixes: FixResult[] | null = null;
    if (flags.fix === true) {
      fixes = await applyFixes(report);
      if (fixes.length > 0) report = await runDoctor(options, deps, signal);
    }
    if (flags.json === true)
      out(`${JSON.stringify({ source, ...(reportJson(report, fixes) as object) }, null, 2)}\n`);
    else out(`flanneld's settings from ${source}\n${formatReport(report, fixes)}`);
    return isHealthy(report) ? 0 : 1;
  });
}

/**
 * `flannelctl trace <src> <dst> [--port P/proto]`: this host's half of the path; with --port
 * and flanneld --network-policy, the policy that allows or drops the packet. Exit 1 when a hop
 * is wrong or the packet is dropped.
 */
export async function traceCommand(
  src: string,
  dst: string,
  args: readonly string[],
  flags: { readonly json?: boolean; readonly port?: string },
  out: (text: string) => void,
): Promise<number> {
  const packet = flags.port === undefined ? null : parsePortSpec(flags.port);
  return withHost(args, async (options, deps, signal) => {
    const read = await readHostView(options, deps, signal);
    if ("failure" in read) {
      const [problem] = read.failure.findings;
      throw new FlannelError(`Cannot trace: ${problem?.problem ?? read.failure.name}`);
    }
    const policy =
      packet !== null && deps.policy
        ? { packet, cluster: await deps.policy.cluster(), table: await deps.policy.table() }
        : null;
    const half = await traceLocal(read.view, src, dst, policy);
    out(flags.json === true ? `${JSON.stringify(half, null, 2)}\n` : formatTrace([half]));
    return firstProblem([half]) === null ? 0 : 1;
  });
}
