/**
 * flanneld's flags, exactly flannel's names and defaults, each also read from `FLANNELD_<NAME>`
 * (upper case, `-` as `_`) when it is not on the command line and the variable is not empty, as
 * coreos/pkg/flagutil does. Go's single-dash spelling (`-etcd-endpoints=...`) is accepted too.
 * Values are checked with a schema so that a bad one fails at start with a clear message.
 */
import { Command, CommanderError, Option } from "commander";
import * as z from "zod";
import { DEFAULT_SUBNET_FILE } from "../config/subnet_env.js";
import { ConfigError } from "../errors.js";
import { parseIPv4, parseIPv6 } from "../ip/ip.js";

import { ETCD_FLAGS, ETCD_FLAG_SHAPE, ETCD_KEY_PAIR, hasEtcdKeyPair } from "./etcd_flags.js";
import { envName, fieldName } from "./flag_spec.js";
import type { FlagSpec } from "./flag_spec.js";
import type { FlanneldOptions } from "../daemon/run_flanneld.js";

/** Every flag flanneld takes, in the order its help lists them. */
export const FLANNELD_FLAGS: readonly FlagSpec[] = [
  ...ETCD_FLAGS,
  {
    name: "iface",
    kind: "list",
    default: [],
    help: "interface to use (IP or name) for inter-host communication; repeatable",
  },
  {
    name: "iface-regex",
    kind: "list",
    default: [],
    help: "regex of the interface to use (IP or name); repeatable, checked after --iface",
  },
  {
    name: "iface-can-reach",
    kind: "string",
    default: "",
    help: "use the interface that reaches this IP",
  },
  {
    name: "subnet-file",
    kind: "string",
    default: DEFAULT_SUBNET_FILE,
    help: "filename where env variables (subnet, MTU, ...) will be written to",
  },
  {
    name: "public-ip",
    kind: "string",
    default: "",
    help: "IP accessible by other nodes for inter-host communication",
  },
  {
    name: "public-ipv6",
    kind: "string",
    default: "",
    help: "IPv6 accessible by other nodes for inter-host communication",
  },
  {
    name: "subnet-lease-renew-margin",
    kind: "int",
    default: 60,
    help: "subnet lease renewal margin, in minutes, ranging from 1 to 1439",
  },
  {
    name: "ip-masq",
    kind: "bool",
    default: false,
    help: "setup IP masquerade rule for traffic destined outside of overlay network",
  },
  {
    name: "ip-masq-fully-random-disable",
    kind: "bool",
    default: false,
    help: "do not use --random-fully in the masquerade rules",
  },
  {
    name: "kube-subnet-mgr",
    kind: "bool",
    default: false,
    help: "contact the Kubernetes API for subnet assignment instead of etcd",
  },
  {
    name: "kube-api-url",
    kind: "string",
    default: "",
    help: "Kubernetes API server URL; in-cluster config when empty",
  },
  {
    name: "kube-annotation-prefix",
    kind: "string",
    default: "flannel.alpha.coreos.com",
    help: "Kubernetes annotation prefix",
  },
  { name: "kubeconfig-file", kind: "string", default: "", help: "kubeconfig file location" },
  {
    name: "healthz-ip",
    kind: "string",
    default: "0.0.0.0",
    help: "the IP address for healthz server to listen",
  },
  {
    name: "healthz-port",
    kind: "int",
    default: 0,
    help: "the port for healthz server to listen (0 to disable)",
  },
  {
    // flannel-ts only: the healthz listener answers /metrics only on this address.
    name: "metrics-ip",
    kind: "string",
    default: "127.0.0.1",
    help: "the address /metrics answers on, on the healthz port (0.0.0.0 or :: for any)",
  },
  {
    name: "iptables-resync",
    kind: "int",
    default: 5,
    help: "resync period for iptables rules, in seconds",
  },
  {
    name: "iptables-forward-rules",
    kind: "bool",
    default: true,
    help: "add default accept rules to FORWARD chain in iptables",
  },
  {
    name: "ip-blackhole-route",
    kind: "bool",
    default: false,
    help: "add a blackhole route for this node's subnet",
  },
  {
    name: "net-config-path",
    kind: "string",
    default: "/etc/kube-flannel/net-conf.json",
    help: "path to the network configuration file (kube mode)",
  },
  {
    name: "set-node-network-unavailable",
    kind: "bool",
    default: true,
    help: "set the NetworkUnavailable node condition (kube mode)",
  },
  {
    name: "network-policy",
    kind: "bool",
    default: false,
    help: "flannel-ts: enforce Kubernetes NetworkPolicy for this node's pods (kube mode)",
  },
  {
    name: "v",
    kind: "int",
    default: 0,
    help: "log verbosity (klog -v): 4 or more adds debug lines",
  },
  { name: "version", kind: "bool", default: false, help: "print version and exit" },
];

/** The longest period Node's timers take, in whole seconds (2^31 - 1 ms). */
const MAX_TIMER_SECONDS = Math.floor((2 ** 31 - 1) / 1000);

const isIP = (family: 4 | 6) => (s: string) =>
  family === 4 ? parseIPv4(s) !== null : parseIPv6(s) !== null;

const compiles = (pattern: string) => {
  try {
    new RegExp(pattern);
    return true;
  } catch {
    return false;
  }
};

const port = (flag: string) =>
  z
    .number()
    .int()
    .min(0, `${flag}: expected a port from 0 to 65535`)
    .max(65535, `${flag}: expected a port from 0 to 65535`);

const FlanneldOptionsSchema = z
  .object({
    ...ETCD_FLAG_SHAPE,
    iface: z.array(z.string()),
    ifaceRegex: z
      .array(z.string())
      .refine(
        (list) => list.every(compiles),
        "--iface-regex: expected a regular expression such as ^eth[0-9]+$",
      ),
    ifaceCanReach: z
      .string()
      .refine(
        (s) => s === "" || isIP(4)(s) || isIP(6)(s),
        "--iface-can-reach: expected an IP address such as 10.0.0.1",
      ),
    subnetFile: z.string().min(1, "--subnet-file: expected a file path"),
    publicIP: z
      .string()
      .refine(
        (s) => s === "" || isIP(4)(s),
        "--public-ip: expected an IPv4 address such as 10.0.0.5",
      ),
    publicIPv6: z
      .string()
      .refine(
        (s) => s === "" || isIP(6)(s),
        "--public-ipv6: expected an IPv6 address such as fd00::5",
      ),
    subnetLeaseRenewMargin: z
      .number()
      .int()
      .min(1, "--subnet-lease-renew-margin: expected whole minutes from 1 to 1439")
      .max(1439, "--subnet-lease-renew-margin: expected whole minutes from 1 to 1439"),
    ipMasq: z.boolean(),
    ipMasqFullyRandomDisable: z.boolean(),
    kubeSubnetMgr: z.boolean(),
    kubeApiUrl: z.string(),
    kubeAnnotationPrefix: z.string(),
    kubeconfigFile: z.string(),
    healthzIP: z
      .string()
      .refine(
        (s) => isIP(4)(s) || isIP(6)(s),
        "--healthz-ip: expected an IP address to listen on such as 0.0.0.0 or 127.0.0.1",
      ),
    healthzPort: port("--healthz-port"),
    metricsIP: z
      .string()
      .refine(
        (s) => isIP(4)(s) || isIP(6)(s),
        "--metrics-ip: expected an IP address such as 127.0.0.1, or 0.0.0.0 for any",
      ),
    iptablesResync: z
      .number()
      .int()
      .min(1, `--iptables-resync: expected whole seconds from 1 to ${MAX_TIMER_SECONDS}`)
      .max(
        MAX_TIMER_SECONDS,
        `--iptables-resync: expected whole seconds from 1 to ${MAX_TIMER_SECONDS}`,
      ),
    iptablesForwardRules: z.boolean(),
    ipBlackholeRoute: z.boolean(),
    netConfigPath: z.string(),
    setNodeNetworkUnavailable: z.boolean(),
    networkPolicy: z.boolean(),
    v: z.number().int().min(0, "-v: expected a verbosity of 0 or more"),
    version: z.boolean(),
  })
  .refine(hasEtcdKeyPair, ETCD_KEY_PAIR)
  .refine((o) => !o.networkPolicy || o.kubeSubnetMgr, {
    message:
      "--network-policy needs --kube-subnet-mgr: NetworkPolicy is read from the Kubernetes API",
    path: ["networkPolicy"],
  });

export type { FlanneldOptions };

function parseBool(flag: string, text: string | boolean): boolean {
  if (typeof text === "boolean") return text; // commander's preset for a bare --flag
  // Go's strconv.ParseBool.
  if (["1", "t", "T", "TRUE", "true", "True"].includes(text)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(text)) return false;
  throw new ConfigError(`Invalid value "${text}" for ${flag}: expected true or false`);
}

function parseInt10(flag: string, text: string): number {
  if (!/^-?\d+$/.test(text.trim()))
    throw new ConfigError(`Invalid value "${text}" for ${flag}: expected a whole number`);
  return Number(text);
}

/** A flag's value from its text; errors name `variable` (FLANNELD_*) when it came from one. */
function convert(spec: FlagSpec, text: string, variable?: string): string | boolean | number {
  const flag = variable === undefined ? `--${spec.name}` : `${variable} (--${spec.name})`;
  if (spec.kind === "bool") return parseBool(flag, text);
  if (spec.kind === "int") return parseInt10(flag, text);
  return text;
}

/** Go's flag package takes `-name` as well as `--name`; commander wants two dashes. */
function normalizeArgs(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? "";
    if (arg === "--") {
      out.push(...args.slice(i));
      break;
    }
    // `-h` stays commander's short help option.
    out.push(arg !== "-h" && /^-[a-z][a-z0-9-]*(=.*)?$/i.test(arg) ? `-${arg}` : arg);
  }
  return out;
}

/** The outcome of parsing: options to run with, or text to print and an exit code. */
export type ParsedFlags =
  | { readonly kind: "run"; readonly options: FlanneldOptions }
  | {
      readonly kind: "exit";
      readonly code: number;
      readonly stdout: string;
      readonly stderr: string;
    };

/** Parses flanneld's command line and FLANNELD_* variables. */
export function parseFlanneldFlags(args: readonly string[], env: NodeJS.ProcessEnv): ParsedFlags {
  let stdout = "";
  let stderr = "";
  const program = new Command("flanneld")
    .description("flannel-ts: leases this host a pod subnet and carries pod traffic between hosts")
    .exitOverride()
    .configureOutput({ writeOut: (s) => (stdout += s), writeErr: (s) => (stderr += s) })
    .allowExcessArguments(false)
    .helpOption("-h, --help", "show this help");
  const attributes = new Map<FlagSpec, string>();
  for (const spec of FLANNELD_FLAGS) {
    const flag = `--${spec.name}`;
    const env = ` (env ${envName(spec.name)})`;
    let option: Option;
    if (spec.kind === "bool") {
      option = new Option(`${flag} [bool]`, spec.help + env)
        .argParser((v: string | boolean) => parseBool(flag, v))
        .preset(true);
    } else if (spec.kind === "list") {
      option = new Option(`${flag} <value>`, spec.help + env).argParser(
        (v: string, prev: string[] | undefined) => [...(prev ?? []), v],
      );
    } else {
      option = new Option(`${flag} <value>`, spec.help + env).argParser((v: string) =>
        convert(spec, v),
      );
    }
    attributes.set(spec, option.attributeName());
    program.addOption(option.default(spec.default));
  }
  try {
    program.parse(normalizeArgs(args), { from: "user" });
  } catch (err) {
    if (err instanceof CommanderError) {
      // Bad input of any kind exits 1, as flannel's flanneld does.
      const code =
        err.code === "commander.helpDisplayed" || err.code === "commander.version" ? 0 : 1;
      return { kind: "exit", code, stdout, stderr };
    }
    if (err instanceof ConfigError)
      return { kind: "exit", code: 1, stdout, stderr: `flanneld: ${err.message}\n` };
    throw err;
  }
  const values: Record<string, unknown> = {};
  /** The flags whose value came from a FLANNELD_* variable, by field: errors name the variable. */
  const fromVariable = new Map<string, { flag: string; variable: string }>();
  try {
    for (const spec of FLANNELD_FLAGS) {
      const attribute = attributes.get(spec) ?? spec.name;
      const fromCli = program.getOptionValueSource(attribute) === "cli";
      let value: unknown = program.getOptionValue(attribute);
      const variable = envName(spec.name);
      const fromEnv = env[variable];
      if (!fromCli && fromEnv !== undefined && fromEnv !== "") {
        fromVariable.set(fieldName(spec.name), { flag: `--${spec.name}`, variable });
        value = spec.kind === "list" ? [fromEnv] : convert(spec, fromEnv, variable);
      }
      values[fieldName(spec.name)] = value;
    }
  } catch (err) {
    if (err instanceof ConfigError)
      return { kind: "exit", code: 1, stdout, stderr: `flanneld: ${err.message}\n` };
    throw err;
  }
  const parsed = FlanneldOptionsSchema.safeParse(values);
  if (!parsed.success) {
    const reasons = parsed.error.issues
      .map((issue) => {
        const source = fromVariable.get(String(issue.path[0] ?? ""));
        return source === undefined
          ? issue.message
          : issue.message.replace(source.flag, `${source.variable} (${source.flag})`);
      })
      .join("; ");
    return { kind: "exit", code: 1, stdout, stderr: `flanneld: invalid flags: ${reasons}\n` };
  }
  return { kind: "run", options: parsed.data };
}
