/**
 * The flannel CNI plugin (flannel-io/cni-plugin): a meta-plugin. ADD turns this host's subnet.env
 * into a bridge + host-local config, saves it under the container's ID and calls the delegate
 * found in CNI_PATH; DEL replays the saved config to the delegate; CHECK verifies what can be
 * verified (saved state, network namespace, interface, addresses, bridge); VERSION and STATUS
 * answer as the spec says.
 *
 * Where flannel differs: a delegate DEL that fails keeps the saved config, so the runtime's
 * retry can finish the job (flannel deletes it anyway); a missing subnet.env is "try again later"
 * (code 11) with a hint, not a bare "no such file".
 */
// Synchronous file system calls: the plugin is one process per call, and libuv's thread pool,
// which the promise API starts, would add to every call (docs/cni.md).
import { accessSync, constants, existsSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { IPNet } from "../ip/ip.js";
import { writeFileAtomic } from "../util/atomic_write.js";
import { run, runCapture } from "../util/exec.js";
import { CniCode, CniError, DelegateError } from "./cni_error.js";
import { goMapJson } from "../util/go_json.js";
import { buildDelegateConf, loadSubnetEnv, parseNetConf } from "./netconf.js";
import type { FlannelNetConf } from "./netconf.js";

/** The CNI spec versions this plugin speaks. */
export const SUPPORTED_VERSIONS = [
  "0.1.0",
  "0.2.0",
  "0.3.0",
  "0.3.1",
  "0.4.0",
  "1.0.0",
  "1.1.0",
] as const;
const LATEST_VERSION = "1.1.0";

/** What the runtime passes: the CNI_* variables and stdin. */
export interface CniRequest {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdin: string;
}

/** What the plugin answers: stdout text and the exit code. */
export interface CniResponse {
  readonly stdout: string;
  readonly code: number;
}

/** What a container ID may be, as the CNI spec's libcni checks it. */
const CONTAINER_ID = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

const REQUIRED_ENV: Record<string, readonly string[]> = {
  ADD: ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"],
  DEL: ["CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"],
  CHECK: ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"],
  STATUS: [],
  VERSION: [],
  GC: ["CNI_PATH"],
};

function checkEnv(env: CniRequest["env"]): string {
  const command = env.CNI_COMMAND ?? "";
  const required = REQUIRED_ENV[command];
  if (required === undefined) {
    throw new CniError(
      CniCode.InvalidEnvironment,
      `CNI_COMMAND "${command}" is not one of ${Object.keys(REQUIRED_ENV).join(", ")}`,
    );
  }
  const missing = required.filter((name) => !env[name]);
  if (missing.length > 0)
    throw new CniError(
      CniCode.InvalidEnvironment,
      `required env variables [${missing.join(",")}] missing`,
    );
  const containerID = env.CNI_CONTAINERID;
  if (
    containerID !== undefined &&
    required.includes("CNI_CONTAINERID") &&
    !CONTAINER_ID.test(containerID)
  ) {
    throw new CniError(
      CniCode.InvalidEnvironment,
      `CNI_CONTAINERID "${containerID}" is invalid: expected letters, digits, "_", "." and "-", starting with a letter or digit`,
    );
  }
  const ifname = env.CNI_IFNAME;
  if (
    ifname !== undefined &&
    required.includes("CNI_IFNAME") &&
    (ifname.length > 15 || !/^[^/:\s]+$/.test(ifname) || ifname === "." || ifname === "..")
  ) {
    throw new CniError(
      CniCode.InvalidEnvironment,
      `CNI_IFNAME "${ifname}" is invalid: expected an interface name of at most 15 characters without "/", ":" or spaces`,
    );
  }
  return command;
}

/** The oldest config version each command exists in (the spec; the reference skel's checks). */
const FIRST_VERSION: Readonly<Record<string, (typeof SUPPORTED_VERSIONS)[number]>> = {
  CHECK: "0.4.0",
  GC: "1.1.0",
  STATUS: "1.1.0",
};

/**
 * Refuses a config version this plugin does not speak, and a command that the config's version
 * does not have (no cniVersion is 0.1.0, as in libcni), with the reference skel library's
 * incompatible-version error: a GC sent with an older conflist must never release anything.
 */
function checkVersion(command: string, conf: FlannelNetConf): void {
  const versions: readonly string[] = SUPPORTED_VERSIONS;
  const version = conf.cniVersion === "" ? "0.1.0" : conf.cniVersion;
  if (!versions.includes(version)) {
    throw new CniError(
      CniCode.IncompatibleVersion,
      `incompatible CNI versions: config is "${conf.cniVersion}", plugin supports [${SUPPORTED_VERSIONS.join(", ")}]`,
    );
  }
  const first = FIRST_VERSION[command];
  if (first === undefined || versions.indexOf(version) >= versions.indexOf(first)) return;
  throw new CniError(
    CniCode.IncompatibleVersion,
    `config version does not allow ${command}: the config's cniVersion is "${version}", ${command} needs "${first}" or later`,
  );
}

/** Finds an executable plugin in CNI_PATH. */
function findPlugin(type: string, cniPath: string): string {
  const dirs = cniPath.split(":").filter((d) => d !== "");
  if (/[/\\]/.test(type) || type === "")
    throw new CniError(
      CniCode.InvalidNetworkConfig,
      `delegate type "${type}" is not a plugin name`,
    );
  for (const dir of dirs) {
    const path = join(dir, type);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not here
    }
  }
  throw new CniError(
    CniCode.InvalidEnvironment,
    `failed to find plugin "${type}" in path [${dirs.join(" ")}]: check CNI_PATH`,
  );
}

/** Runs a delegate plugin and resolves with its stdout; its CNI error is passed on unchanged. */
async function invokeDelegate(
  type: string,
  command: string,
  confBytes: string,
  env: CniRequest["env"],
): Promise<string> {
  const path = findPlugin(type, env.CNI_PATH ?? "");
  let result;
  try {
    // The delegate's stderr goes to ours, and so to the runtime's log, as in flannel.
    result = await runCapture(path, [], {
      input: confBytes,
      env: { ...env, CNI_COMMAND: command },
      inheritStderr: true,
    });
  } catch (err) {
    throw new CniError(
      CniCode.IOFailure,
      `failed to run delegate "${path}": ${(err as Error).message}`,
    );
  }
  const { code, stdout } = result;
  if (code === 0) return stdout;
  let parsed: { code?: unknown; msg?: unknown } = {};
  try {
    parsed = JSON.parse(stdout) as typeof parsed;
  } catch {
    // not JSON: reported below as the delegate's failure
  }
  if (typeof parsed.code === "number" && typeof parsed.msg === "string") {
    throw new DelegateError(stdout, `failed to delegate ${command.toLowerCase()}: ${parsed.msg}`);
  }
  throw new CniError(
    CniCode.DelegateFailed,
    `failed to delegate ${command.toLowerCase()}: "${type}" exited with ${code ?? "a signal"}`,
    stdout.trim(),
  );
}

function statePath(conf: FlannelNetConf, env: CniRequest["env"]): string {
  return join(conf.dataDir, env.CNI_CONTAINERID ?? "");
}

async function cmdAdd(conf: FlannelNetConf, env: CniRequest["env"]): Promise<string> {
  const subnetEnv = loadSubnetEnv(conf.subnetFile);
  const delegate = buildDelegateConf(conf, subnetEnv);
  const bytes = goMapJson(delegate);
  try {
    writeFileAtomic(statePath(conf, env), bytes, { mode: 0o600, dirMode: 0o700 });
  } catch (err) {
    throw new CniError(
      CniCode.IOFailure,
      `failed to save the delegate config in ${conf.dataDir}: ${(err as Error).message}`,
    );
  }
  return invokeDelegate(delegate.type as string, "ADD", bytes, env);
}

async function cmdDel(
  conf: FlannelNetConf,
  env: CniRequest["env"],
  delegateVersion?: string,
): Promise<string> {
  const path = statePath(conf, env);
  let bytes: string;
  try {
    bytes = readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return ""; // DEL is idempotent
    throw new CniError(
      CniCode.IOFailure,
      `failed to read the saved delegate config ${path}: ${(err as Error).message}`,
    );
  }
  let type: unknown;
  try {
    type = (JSON.parse(bytes) as { type?: unknown }).type;
  } catch {
    type = undefined;
  }
  if (typeof type !== "string") {
    // As flannel: the interface stays on the bridge until reboot; the file is kept for a person.
    process.stderr.write(
      `flannel: cannot parse the saved delegate config ${path}; leaving it in place\n`,
    );
    return "";
  }
  const sent =
    delegateVersion === undefined
      ? bytes
      : bytes.replace(/"cniVersion":"[^"]*"/, `"cniVersion":"${delegateVersion}"`);
  await invokeDelegate(type, "DEL", sent, env); // on failure the file stays for the retry
  rmSync(path, { force: true });
  return "";
}

/**
 * The container IDs of GC's `cni.dev/valid-attachments` (CNI 1.1); null when the runtime sent
 * none, which GC takes as "release nothing" (never as "nothing is valid").
 */
function validAttachments(raw: Record<string, unknown>): Set<string> | null {
  const list = raw["cni.dev/valid-attachments"];
  const bad = () =>
    new CniError(
      CniCode.InvalidNetworkConfig,
      'failed to parse "cni.dev/valid-attachments": expected a list of {"containerID": ..., "ifname": ...}',
    );
  if (list === undefined) return null;
  if (!Array.isArray(list)) throw bad();
  return new Set(
    list.map((a: unknown) => {
      const id = (a as { containerID?: unknown } | null)?.containerID;
      if (typeof id !== "string") throw bad();
      return id;
    }),
  );
}

/**
 * GC (CNI 1.1): releases every attachment flannel saved state for that the runtime no longer
 * lists as valid (none at all when it sends no list), through the delegate's DEL, as a DEL would. The delegates Debian ships speak
 * CNI 1.0, which has no GC of its own, so the DEL is sent as 1.0.0; the interface is taken to be
 * `eth0` (what Kubernetes runtimes use) unless CNI_IFNAME says otherwise. Every stale attachment
 * is tried; the ones that fail keep their state and are named in the error.
 */
async function cmdGc(conf: FlannelNetConf, env: CniRequest["env"]): Promise<string> {
  const valid = validAttachments(conf.raw);
  if (valid === null) {
    process.stderr.write(
      'flannel: GC without "cni.dev/valid-attachments" releases nothing: the runtime must list the attachments that are still valid\n',
    );
    return "";
  }
  let names: string[];
  try {
    names = readdirSync(conf.dataDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return "";
    throw new CniError(
      CniCode.IOFailure,
      `failed to list the saved delegate configs in ${conf.dataDir}: ${(err as Error).message}`,
    );
  }
  const failures: string[] = [];
  for (const id of names) {
    if (valid.has(id) || !CONTAINER_ID.test(id)) continue; // and the atomic writes' temp files
    try {
      await cmdDel(
        conf,
        { ...env, CNI_CONTAINERID: id, CNI_IFNAME: env.CNI_IFNAME ?? "eth0" },
        "1.0.0",
      );
    } catch (err) {
      failures.push(`${id}: ${(err as Error).message}`);
    }
  }
  if (failures.length > 0) {
    throw new CniError(
      CniCode.IOFailure,
      `GC could not release ${failures.length} attachment(s); their state is kept for the next GC`,
      failures.join("; "),
    );
  }
  return "";
}

async function cmdCheck(conf: FlannelNetConf, env: CniRequest["env"]): Promise<string> {
  const path = statePath(conf, env);
  let saved: Record<string, unknown>;
  try {
    saved = JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
  } catch {
    throw new CniError(
      CniCode.UnknownContainer,
      `CHECK failed: flannel has no saved state for container "${env.CNI_CONTAINERID ?? ""}" (${path}): ADD was not run, or DEL already ran`,
    );
  }
  const netns = env.CNI_NETNS ?? "";
  if (!existsSync(netns)) {
    throw new CniError(
      CniCode.CheckFailed,
      `CHECK failed: network namespace ${netns} does not exist`,
    );
  }
  const ifname = env.CNI_IFNAME ?? "";
  let addresses: string[];
  try {
    const json = await run("nsenter", [
      `--net=${netns}`,
      "ip",
      "-j",
      "addr",
      "show",
      "dev",
      ifname,
    ]);
    const links = JSON.parse(json) as { addr_info?: { local?: string; prefixlen?: number }[] }[];
    addresses = (links[0]?.addr_info ?? []).map((a) => `${a.local ?? ""}/${a.prefixlen ?? ""}`);
  } catch {
    throw new CniError(
      CniCode.CheckFailed,
      `CHECK failed: interface "${ifname}" is missing in network namespace ${netns}`,
    );
  }
  for (const ip of prevResultIPs(conf.raw.prevResult)) {
    if (!addresses.includes(ip)) {
      throw new CniError(
        CniCode.CheckFailed,
        `CHECK failed: interface "${ifname}" in ${netns} lacks address ${ip} (it has ${addresses.join(", ") || "none"})`,
      );
    }
  }
  if (saved.type === "bridge") {
    const bridge = typeof saved.bridge === "string" ? saved.bridge : "cni0";
    if (!existsSync(`/sys/class/net/${bridge}`)) {
      throw new CniError(
        CniCode.CheckFailed,
        `CHECK failed: bridge "${bridge}" does not exist on this host`,
      );
    }
  }
  return "";
}

/**
 * The addresses of a CHECK's prevResult (`{"ips": [{"address": "10.244.1.2/24"}, ...]}`),
 * checked before use: a prevResult that is not of that shape is an invalid config (code 7).
 */
function prevResultIPs(prevResult: unknown): string[] {
  if (prevResult === undefined) return [];
  const bad = (why: string) =>
    new CniError(
      CniCode.InvalidNetworkConfig,
      `failed to parse prevResult: ${why}: expected {"ips": [{"address": "10.244.1.2/24"}, ...]}`,
    );
  if (typeof prevResult !== "object" || prevResult === null || Array.isArray(prevResult))
    throw bad("it is not an object");
  const ips = (prevResult as { ips?: unknown }).ips;
  if (ips === undefined) return [];
  if (!Array.isArray(ips)) throw bad('"ips" is not a list');
  return ips.map((ip: unknown, i) => {
    const address = (ip as { address?: unknown } | null)?.address;
    if (typeof address !== "string" || IPNet.parse(address) === null)
      throw bad(`ips[${i}].address is not a CIDR`);
    return address;
  });
}

function cmdStatus(conf: FlannelNetConf): string {
  try {
    loadSubnetEnv(conf.subnetFile);
  } catch (err) {
    throw new CniError(
      CniCode.PluginNotAvailable,
      `flannel is not ready: ${(err as Error).message}`,
    );
  }
  return "";
}

/** Handles one CNI call. Never throws: errors become CNI error objects. */
export async function handleCniRequest(request: CniRequest): Promise<CniResponse> {
  let cniVersion = LATEST_VERSION;
  try {
    const command = checkEnv(request.env);
    if (command === "VERSION") {
      try {
        const given = (JSON.parse(request.stdin || "{}") as { cniVersion?: unknown }).cniVersion;
        if (typeof given === "string" && given !== "") cniVersion = given;
      } catch {
        // VERSION needs no config
      }
      return {
        stdout: JSON.stringify({ cniVersion, supportedVersions: SUPPORTED_VERSIONS }),
        code: 0,
      };
    }
    const conf = parseNetConf(request.stdin);
    if (conf.cniVersion !== "") cniVersion = conf.cniVersion;
    checkVersion(command, conf);
    const handlers: Record<string, () => string | Promise<string>> = {
      ADD: () => cmdAdd(conf, request.env),
      DEL: () => cmdDel(conf, request.env),
      CHECK: () => cmdCheck(conf, request.env),
      STATUS: () => cmdStatus(conf),
      GC: () => cmdGc(conf, request.env),
    };
    const handler = handlers[command];
    if (handler === undefined)
      throw new CniError(CniCode.InvalidEnvironment, `CNI_COMMAND "${command}" is not supported`);
    return { stdout: await handler(), code: 0 };
  } catch (err) {
    if (err instanceof DelegateError) return { stdout: err.output, code: 1 };
    const cniError =
      err instanceof CniError ? err : new CniError(CniCode.IOFailure, (err as Error).message);
    return { stdout: JSON.stringify(cniError.toJSON(cniVersion)), code: 1 };
  }
}
