/**
 * The extension backend (flannel's pkg/backend/extension): the operator's commands program the
 * data plane. PreStartupCommand's output becomes this lease's BackendData; PostStartupCommand
 * runs once the lease is held; SubnetAddCommand and SubnetRemoveCommand run once per remote
 * lease of type "extension" that comes or goes, with its SUBNET and PUBLIC_IP and, on stdin, its
 * BackendData string. Every run is logged (command, lease, how it ended, time); a failing
 * Pre/Post command stops flanneld, a failing add/remove command does not.
 */
import { join } from "node:path";
import { ConfigError, FlannelError } from "../../errors.js";
import type { NetworkConfig } from "../../config/network_config.js";
import { leaseKeyOf } from "../../lease/lease.js";
import type { Lease } from "../../lease/lease.js";
import { peerLeaseRulesOf } from "../../lease/peer_rules.js";
import type { PeerLeaseRules } from "../../lease/peer_rules.js";
import type { Logger } from "../../log/logger.js";
import { warnSkippedLeases, watchLeases } from "../../subnet/watch_leases.js";
import type { CallOptions } from "../../util/call_options.js";
import { systemClock } from "../../util/clock.js";
import type { Backend, BackendDeps, Network, PlaneInspector } from "../backend.js";
import type { ExtensionConfig, HookName } from "./config.js";
import { endOf, runHook, succeeded } from "./hook_command.js";
import type { HookRun } from "./hook_command.js";
import { HOOK_STATE_FILE, readHookState, seen, writeHookState } from "./hook_state.js";
import type { HookState, LeaseHooks } from "./hook_state.js";

export const BACKEND_TYPE = "extension";

/** A Pre- or PostStartupCommand that failed: flanneld stops with its output. */
export class HookFailedError extends FlannelError {}

/** Where the hook state is kept when the daemon names no folder. */
const DEFAULT_STATE_DIR = "/run/flannel";

/** Runs one hook and logs it: info when it succeeds, error when it does not. */
async function runLogged(
  hook: HookName,
  command: string,
  env: Record<string, string>,
  stdin: string,
  deps: { readonly log: Logger; readonly timeoutMs: number; readonly signal: AbortSignal },
): Promise<HookRun> {
  const run = await runHook(command, {
    env,
    stdin,
    timeoutMs: deps.timeoutMs,
    signal: deps.signal,
  });
  const fields = {
    hook,
    command,
    subnet: env["SUBNET"] ?? null,
    publicIP: env["PUBLIC_IP"] ?? null,
    exitCode: run.code,
    ms: run.ms,
    output: run.output.slice(-2_000),
  };
  if (succeeded(run)) deps.log.info(fields, `Ran ${hook}`);
  else deps.log.error({ ...fields, end: endOf(run, deps.timeoutMs) }, `${hook} failed`);
  return run;
}

/** A remote lease's BackendData as the commands get it: the JSON string, "" for none. */
function backendDataOf(lease: Lease): string | Error {
  const data = lease.attrs.backendData;
  if (data === undefined || data === null) return "";
  if (typeof data === "string") return data;
  return new Error(`BackendData ${JSON.stringify(data)} is not a JSON string`);
}

/** What doctor sees of the extension data plane: no device, no entry; the commands' runs. */
export const inspectExtension =
  (config: ExtensionConfig): PlaneInspector =>
  (_network, extIface, _netlink, _lease, stateDir) => ({
    devices: [],
    podMtu: extIface.mtu,
    serves: (lease) => lease.attrs.backendType === BACKEND_TYPE,
    entries: () => Promise.resolve({ wanted: new Map(), owned: new Map(), skipped: [] }),
    hooks: async () => ({
      stateFile: join(stateDir, HOOK_STATE_FILE),
      addCommand: config.commands.SubnetAddCommand !== "",
      removeCommand: config.commands.SubnetRemoveCommand !== "",
      leases: await readHookState(stateDir),
    }),
  });

/** Follows the remote leases and runs the add and remove commands, keeping what ran. */
class HookNetwork implements Network {
  readonly #state: Promise<HookState>;

  constructor(
    readonly lease: Lease,
    readonly mtu: number,
    readonly deps: BackendDeps,
    readonly config: ExtensionConfig,
    readonly stateDir: string,
    readonly rules: PeerLeaseRules,
  ) {
    this.#state = readHookState(stateDir, (reason) => {
      deps.log.warn(
        { dir: stateDir, reason },
        "Cannot read the extension hooks' state; starting afresh",
      );
    });
  }

  async run({ signal }: CallOptions): Promise<void> {
    const state = await this.#state;
    let first = true;
    try {
      const watch = watchLeases(this.deps.subnetManager, this.lease, {
        signal,
        rules: this.rules,
        onSkip: warnSkippedLeases(this.deps.log),
      });
      for await (const batch of watch) {
        const current = new Set(batch.map((e) => leaseKeyOf(e.lease)));
        if (first) {
          // Leases that vanished while flanneld was down get their remove command now.
          for (const [key, kept] of [...state])
            if (!current.has(key)) await this.#remove(state, key, kept, signal);
          first = false;
        }
        for (const event of batch) {
          if (signal.aborted) return;
          await this.#handle(state, event.type, event.lease, signal);
        }
        await this.#save(state);
      }
    } catch (err) {
      if (!signal.aborted) throw err;
    } finally {
      await this.#save(state);
    }
  }

  async #handle(state: HookState, type: "added" | "removed", lease: Lease, signal: AbortSignal) {
    const key = leaseKeyOf(lease);
    const what = { subnet: key, publicIP: lease.attrs.publicIP };
    if (lease.attrs.backendType !== BACKEND_TYPE) {
      this.deps.log.warn(
        { ...what, backendType: lease.attrs.backendType },
        "Ignoring a lease of another backend type",
      );
      return;
    }
    const data = backendDataOf(lease);
    if (data instanceof Error) {
      this.deps.log.error(
        { ...what, reason: data.message },
        "Ignoring a lease: BackendData unreadable",
      );
      return;
    }
    const now: LeaseHooks = {
      subnet: lease.subnet?.toString() ?? "",
      publicIP: lease.attrs.publicIP,
      backendData: data,
      added: true,
      last: [],
    };
    if (type === "removed") {
      await this.#remove(state, key, now, signal);
      return;
    }
    const command = this.config.commands.SubnetAddCommand;
    // Kept even without an add command: a remove command then still runs after a restart.
    if (command === "") {
      state.set(key, now);
      return;
    }
    const run = await this.#run("SubnetAddCommand", command, now, signal);
    if (signal.aborted) return;
    const ok = succeeded(run);
    const end = endOf(run, this.config.timeoutMs);
    const last = seen({
      hook: "SubnetAddCommand",
      ok,
      end,
      at: (this.deps.clock ?? systemClock).now(),
      ms: run.ms,
      output: run.output,
    });
    state.set(key, { ...now, added: ok, last: [last] });
  }

  async #remove(state: HookState, key: string, kept: LeaseHooks, signal: AbortSignal) {
    const command = this.config.commands.SubnetRemoveCommand;
    if (command !== "") await this.#run("SubnetRemoveCommand", command, kept, signal);
    if (!signal.aborted) state.delete(key);
  }

  #run(hook: HookName, command: string, lease: LeaseHooks, signal: AbortSignal): Promise<HookRun> {
    return runLogged(
      hook,
      command,
      { SUBNET: lease.subnet, PUBLIC_IP: lease.publicIP },
      lease.backendData,
      {
        log: this.deps.log,
        timeoutMs: this.config.timeoutMs,
        signal,
      },
    );
  }

  async #save(state: HookState): Promise<void> {
    try {
      await writeHookState(this.stateDir, state);
    } catch (err) {
      this.deps.log.warn(
        { dir: this.stateDir, err: (err as Error).message },
        "Cannot keep the extension hooks' state; a restart will not run the remove commands of leases gone meanwhile",
      );
    }
  }
}

/** Runs a Pre- or PostStartupCommand; throws HookFailedError with its output when it fails. */
async function runStartupHook(
  hook: "PreStartupCommand" | "PostStartupCommand",
  config: ExtensionConfig,
  env: Record<string, string>,
  deps: BackendDeps,
  signal: AbortSignal,
): Promise<string | null> {
  const command = config.commands[hook];
  if (command === "") {
    deps.log.info({ hook }, `No ${hook} configured; skipping`);
    return null;
  }
  const run = await runLogged(hook, command, env, "", {
    log: deps.log,
    timeoutMs: config.timeoutMs,
    signal,
  });
  if (succeeded(run)) return run.output;
  throw new HookFailedError(
    `${hook} failed (${endOf(run, config.timeoutMs)}): ${command}\nOutput: ${run.output || "(none)"}\nFix the command in the network config's Backend, or the host it needs, and start flanneld again`,
  );
}

/** Makes the extension backend. */
export function createExtensionBackend(deps: BackendDeps, config: ExtensionConfig): Backend {
  const { extIface } = deps;
  return {
    async registerNetwork(network: NetworkConfig, opts: CallOptions): Promise<Network> {
      if (!network.enableIPv4 || extIface.extAddr === null)
        throw new ConfigError(
          `Cannot start backend "extension": it runs on IPv4 (flannel's does too); the config needs a Network and interface "${extIface.name}" an IPv4 address`,
        );
      const data = await runStartupHook("PreStartupCommand", config, {}, deps, opts.signal);
      const publicIP = extIface.extAddr;
      const lease = await deps.subnetManager.acquireLease(
        {
          publicIP,
          publicIPv6: null,
          backendType: BACKEND_TYPE,
          ...(data === null ? {} : { backendData: data }),
        },
        opts,
      );
      await runStartupHook(
        "PostStartupCommand",
        config,
        {
          NETWORK: network.network?.toString() ?? "",
          SUBNET: lease.subnet?.toString() ?? "",
          PUBLIC_IP: publicIP,
        },
        deps,
        opts.signal,
      );
      const stateDir = deps.stateDir ?? DEFAULT_STATE_DIR;
      const rules = peerLeaseRulesOf(network, extIface);
      return new HookNetwork(lease, extIface.mtu, deps, config, stateDir, rules);
    },
  };
}
