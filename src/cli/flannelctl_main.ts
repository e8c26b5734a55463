/**
 * The flannelctl command: the operator's tool. Subcommands parse their flags here and call into
 * src/; errors become a message on stderr and exit code 1.
 */
import { readFile } from "node:fs/promises";
import { Command, CommanderError } from "commander";
import type { CheckedNetworkConfig } from "../config/network_config.js";
import { FlannelError } from "../errors.js";
import type { EtcdRegistry } from "../subnet/etcd/registry.js";
import { ETCD_FLAGS, etcdConfigOf, parseEtcdFlags } from "./etcd_flags.js";
import type { EtcdFlagValues } from "./etcd_flags.js";
import { envName, fieldName } from "./flag_spec.js";
import { VERSION } from "../version.js";

// Each command loads what it needs when it runs (etcd's client, the config schema, the lab), so
// that `flannelctl --help` starts as fast as Node does.

/** The etcd flags as commander gives them: camel-cased, absent when neither flag nor variable. */
type EtcdFlags = Record<string, string | undefined>;

/** Adds flanneld's etcd flags, which default to the FLANNELD_* variables flanneld reads. */
function withEtcdFlags(command: Command): Command {
  for (const spec of ETCD_FLAGS) {
    const variable = envName(spec.name);
    const fromEnv = process.env[variable];
    const fallback = fromEnv !== undefined && fromEnv !== "" ? fromEnv : spec.default;
    command.option(
      `--${spec.name} <value>`,
      `${spec.help} (env ${variable})`,
      typeof fallback === "string" ? fallback : undefined,
    );
  }
  return command;
}

function etcdFlagValues(flags: EtcdFlags): Record<string, string> {
  return Object.fromEntries(
    ETCD_FLAGS.map((spec) => [fieldName(spec.name), flags[fieldName(spec.name)] ?? ""]),
  );
}

/** The etcd flags checked as flanneld checks them; FlannelError naming every problem. */
function checkedEtcdFlags(flags: EtcdFlags): EtcdFlagValues {
  try {
    return parseEtcdFlags(etcdFlagValues(flags));
  } catch (err) {
    throw new FlannelError((err as Error).message);
  }
}

async function withRegistry<T>(
  flags: EtcdFlags,
  fn: (registry: EtcdRegistry) => Promise<T>,
): Promise<T> {
  const { EtcdRegistry } = await import("../subnet/etcd/registry.js");
  const registry = await EtcdRegistry.connect(etcdConfigOf(checkedEtcdFlags(flags)));
  try {
    return await fn(registry);
  } finally {
    registry.close();
  }
}

async function readConfigFile(file: string): Promise<string> {
  try {
    if (file !== "-") return await readFile(file, "utf8");
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString("utf8");
  } catch (err) {
    throw new FlannelError(`Cannot read network config "${file}": ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/** Prints the network config's warnings on stderr; they do not change the exit code. */
function warn(warnings: readonly string[]): void {
  for (const warning of warnings) process.stderr.write(`flannelctl: warning: ${warning}\n`);
}

/** Checks a network config text as flanneld would; throws naming what is wrong. */
async function checkedConfig(text: string): Promise<CheckedNetworkConfig> {
  const [{ loadNetworkConfig }, { backendFor }] = await Promise.all([
    import("../config/network_config.js"),
    import("../backend/registry.js"),
  ]);
  const checked = loadNetworkConfig(text);
  const configured = backendFor(checked.backendType).configure(checked.backend);
  warn(checked.warnings);
  tellCommands(configured.commands ?? {});
  return checked;
}

/** Names on stderr the shell commands a config makes every host run as root (extension). */
function tellCommands(commands: Readonly<Record<string, string>>): void {
  const set = Object.entries(commands).filter(([, command]) => command !== "");
  if (set.length === 0) return;
  process.stderr.write("flannelctl: this config makes flanneld run, as root on every host:\n");
  for (const [name, command] of set) process.stderr.write(`  ${name}: ${command}\n`);
}

/** Where a command prints. */
export type Out = (text: string) => void;

/**
 * Builds the flannelctl program; `lab` adds the lab commands (loaded only when a lab command
 * runs: otherwise a placeholder stands in `--help`).
 */
export function buildProgram(out: Out, lab: (program: Command, out: Out) => void): Command {
  const program = new Command("flannelctl")
    .description("flannel-ts operator tool: network config, leases")
    .version(VERSION)
    .exitOverride();
  addConfigCommands(program, out);
  addLeasesCommand(program, out);
  addCniCommand(program, out);
  addDoctorCommands(program, out);
  lab(program, out);
  return program;
}

/** `config validate`, `config set` and `config get`. */
function addConfigCommands(program: Command, out: Out): void {
  const config = program.command("config").description("the network config stored in etcd");
  config
    .command("validate <file>")
    .description(
      "check a network config file (- for stdin) and print it normalized, with flannel's field names",
    )
    .action(async (file: string) => {
      const checked = await checkedConfig(await readConfigFile(file));
      const { networkConfigToJson } = await import("../config/network_config.js");
      out(`${JSON.stringify(networkConfigToJson(checked))}\n`);
    });
  withEtcdFlags(
    config
      .command("set <file>")
      .description("validate a network config file (- for stdin) and store it at <prefix>/config"),
  ).action(async (file: string, flags: EtcdFlags) => {
    const text = await readConfigFile(file);
    await checkedConfig(text); // nothing is stored unless it is valid
    await withRegistry(flags, async (registry) => {
      await registry.setNetworkConfigText(text);
      out(`Stored network config at ${registry.configKey}\n`);
    });
  });
  withEtcdFlags(config.command("get").description("print the stored network config")).action(
    async (flags: EtcdFlags) => {
      await withRegistry(flags, async (registry) => {
        const text = await registry.getNetworkConfigText();
        out(text.endsWith("\n") ? text : `${text}\n`);
      });
    },
  );
}

/** `leases`: the leases as flanneld sees them. */
function addLeasesCommand(program: Command, out: Out): void {
  withEtcdFlags(
    program
      .command("leases")
      .description(
        "list the subnet leases: subnet, public IP, backend, expiry (reservations marked)",
      )
      .option("--json", "print JSON, one array"),
  ).action(async (flags: EtcdFlags & { json?: boolean }) => {
    // Through the SubnetManager, as flanneld sees the leases; keys that are not leases are
    // named on stderr.
    const [{ LocalManager }, { plainStderrLogger }, { formatLeaseTable, leaseToJson }] =
      await Promise.all([
        import("../subnet/etcd/local_manager.js"),
        import("../log/logger.js"),
        import("../lease/lease_table.js"),
      ]);
    const manager = await LocalManager.connect(etcdConfigOf(checkedEtcdFlags(flags)), {
      log: plainStderrLogger("flannelctl"),
    });
    try {
      const leases = await manager.listLeases({ signal: AbortSignal.timeout(30_000) });
      if (flags.json) out(`${JSON.stringify(leases.map(leaseToJson), null, 2)}\n`);
      else out(formatLeaseTable(leases, new Date()));
    } finally {
      await manager.close();
    }
  });
}

/** `cni install`. */
function addCniCommand(program: Command, out: Out): void {
  program
    .command("cni")
    .description("the flannel CNI plugin")
    .command("install")
    .description(
      "install bin/flannel and flannel's standard conflist (cbr0: flannel + portmap); other files are left alone",
    )
    .option("--bin-dir <dir>", "CNI plugin folder", "/opt/cni/bin")
    .option("--conf-dir <dir>", "CNI config folder", "/etc/cni/net.d")
    .option("--subnet-file <path>", "subnet.env, when not /run/flannel/subnet.env")
    .option("--data-dir <dir>", "the plugin's state, when not /var/lib/cni/flannel")
    .option("--ipam-data-dir <dir>", "host-local's leases, when not /var/lib/cni/networks")
    .action(async (flags: InstallFlags) => {
      const { installCni } = await import("../cni/install.js");
      const { plugin, conflist } = await installCni(flags);
      out(`Installed ${plugin}\nWrote ${conflist}\n`);
    });
}

/** `doctor` and `trace`, loaded only when they run. */
function addDoctorCommands(program: Command, out: Out): void {
  program
    .command("doctor")
    .description(
      "check this host's flannel data plane, lease, subnet.env and rules; say what is wrong, why, and the fix",
    )
    .usage("[--json] [--fix] [flanneld's flags...]")
    .option("--json", "print JSON, for scripts")
    .option("--fix", "apply the fixes that are safe, then check again")
    .argument(
      "[flags...]",
      "flanneld's flags (default: those of the flanneld running here, else FLANNELD_* variables)",
    )
    .allowUnknownOption()
    .action(async (args: string[], flags: { json?: boolean; fix?: boolean }) => {
      const { doctorCommand } = await import("./doctor_command.js");
      process.exitCode = await doctorCommand(args, flags, out);
    });
  program
    .command("trace")
    .description(
      "the path a packet from <src> to <dst> takes through this host's kernel, hop by hop; the first missing or wrong hop is named",
    )
    .usage("<src IP> <dst IP> [--json] [--port P/proto] [flanneld's flags...]")
    .option("--json", "print JSON, for scripts")
    .option(
      "--port <port/proto>",
      "with flanneld --network-policy: the packet's port and protocol (80/tcp), to say which policy allows or drops it",
    )
    .argument("<src>", "source address (a pod's)")
    .argument("<dst>", "destination address (a pod's)")
    .argument("[flags...]", "flanneld's flags (default: those of the flanneld running here)")
    .allowUnknownOption()
    .action(
      async (
        src: string,
        dst: string,
        args: string[],
        flags: { json?: boolean; port?: string },
      ) => {
        const { traceCommand } = await import("./doctor_command.js");
        process.exitCode = await traceCommand(src, dst, args, flags, out);
      },
    );
}

/** `cni install`'s flags. */
interface InstallFlags {
  binDir: string;
  confDir: string;
  subnetFile?: string;
  dataDir?: string;
  ipamDataDir?: string;
}

/**
 * What flannelctl shows for `lab` where the lab is not loaded: it lives in the repository's lab/
 * (bin/flannelctl loads it for `lab ...`), and the package and the image carry none of it.
 */
function labPlaceholder(program: Command): void {
  program
    .command("lab")
    .description("a whole flannel cluster on this machine, in network namespaces (lab --help)")
    .allowUnknownOption()
    .allowExcessArguments()
    .action(() => {
      throw new FlannelError(
        "Cannot run flannelctl lab here: the lab is part of a flannel-ts repository checkout (bin/flannelctl lab ..., or npm run lab), not of this installed flannelctl",
      );
    });
}

/**
 * Runs flannelctl and resolves with the exit code. `lab` adds the lab's commands: the repository's
 * lab/flannelctl_lab.ts passes them; the installed flannelctl has none.
 */
export async function main(
  args: readonly string[],
  lab: (program: Command, out: Out) => void = labPlaceholder,
): Promise<number> {
  const out: Out = (text) => process.stdout.write(text);
  const program = buildProgram(out, lab);
  try {
    await program.parseAsync(args, { from: "user" });
    return typeof process.exitCode === "number" ? process.exitCode : 0; // doctor: 1 when not healthy
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`flannelctl: ${message}\n`);
    return 1;
  }
}
