/**
 * The flannelctl command: the operator's tool. Subcommands parse their flags here and call into
 * src/; errors become a message on stderr and exit code 1.
 */
import { readFile } from "node:fs/promises";
import { Command, CommanderError } from "commander";
import { loadNetworkConfig, networkConfigToJson } from "../config/network_config.js";
import { FlannelError } from "../errors.js";
import { formatLeaseTable, leaseToJson } from "../lease/lease_table.js";
import {
  EtcdRegistry,
  DEFAULT_ETCD_ENDPOINTS,
  DEFAULT_ETCD_PREFIX,
} from "../subnet/etcd/registry.js";
import type { EtcdConfig } from "../subnet/etcd/registry.js";
import { VERSION } from "../version.js";
import { labDown, labEtcdctl, labUp, listPods, readLab } from "../lab/cluster.js";
import { formatPingMatrix, pingAll } from "../lab/lab_check.js";
import { formatLabStatus, labStatus } from "../lab/lab_status.js";
import { installCni } from "../cni/install.js";

interface EtcdFlags {
  etcdEndpoints: string;
  etcdPrefix: string;
  etcdKeyfile?: string;
  etcdCertfile?: string;
  etcdCafile?: string;
  etcdUsername?: string;
  etcdPassword?: string;
}

function etcdConfigOf(flags: EtcdFlags): EtcdConfig {
  return {
    endpoints: flags.etcdEndpoints
      .split(",")
      .map((e) => e.trim())
      .filter((e) => e !== ""),
    prefix: flags.etcdPrefix,
    ...(flags.etcdKeyfile ? { keyFile: flags.etcdKeyfile } : {}),
    ...(flags.etcdCertfile ? { certFile: flags.etcdCertfile } : {}),
    ...(flags.etcdCafile ? { caFile: flags.etcdCafile } : {}),
    ...(flags.etcdUsername ? { username: flags.etcdUsername } : {}),
    ...(flags.etcdPassword ? { password: flags.etcdPassword } : {}),
  };
}

/** Adds the etcd flags, which default to the FLANNELD_* variables flanneld reads. */
function withEtcdFlags(command: Command): Command {
  const env = process.env;
  return command
    .option(
      "--etcd-endpoints <list>",
      "comma-delimited etcd endpoints (env FLANNELD_ETCD_ENDPOINTS)",
      env.FLANNELD_ETCD_ENDPOINTS || DEFAULT_ETCD_ENDPOINTS,
    )
    .option(
      "--etcd-prefix <prefix>",
      "etcd key prefix (env FLANNELD_ETCD_PREFIX)",
      env.FLANNELD_ETCD_PREFIX || DEFAULT_ETCD_PREFIX,
    )
    .option(
      "--etcd-keyfile <file>",
      "TLS key (env FLANNELD_ETCD_KEYFILE)",
      env.FLANNELD_ETCD_KEYFILE,
    )
    .option(
      "--etcd-certfile <file>",
      "TLS certificate (env FLANNELD_ETCD_CERTFILE)",
      env.FLANNELD_ETCD_CERTFILE,
    )
    .option("--etcd-cafile <file>", "TLS CA (env FLANNELD_ETCD_CAFILE)", env.FLANNELD_ETCD_CAFILE)
    .option(
      "--etcd-username <name>",
      "etcd user (env FLANNELD_ETCD_USERNAME)",
      env.FLANNELD_ETCD_USERNAME,
    )
    .option(
      "--etcd-password <password>",
      "etcd password (env FLANNELD_ETCD_PASSWORD)",
      env.FLANNELD_ETCD_PASSWORD,
    );
}

async function withRegistry<T>(
  flags: EtcdFlags,
  fn: (registry: EtcdRegistry) => Promise<T>,
): Promise<T> {
  const registry = await EtcdRegistry.connect(etcdConfigOf(flags));
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

/** Builds the flannelctl program. */
export function buildProgram(out: (text: string) => void): Command {
  const program = new Command("flannelctl")
    .description("flannel-ts operator tool: network config, leases")
    .version(VERSION)
    .exitOverride();

  const config = program.command("config").description("the network config stored in etcd");
  config
    .command("validate <file>")
    .description(
      "check a network config file (- for stdin) and print it normalized, with flannel's field names",
    )
    .action(async (file: string) => {
      const checked = loadNetworkConfig(await readConfigFile(file));
      out(`${JSON.stringify(networkConfigToJson(checked))}\n`);
    });
  withEtcdFlags(
    config
      .command("set <file>")
      .description("validate a network config file (- for stdin) and store it at <prefix>/config"),
  ).action(async (file: string, flags: EtcdFlags) => {
    const text = await readConfigFile(file);
    loadNetworkConfig(text); // nothing is stored unless it is valid
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

  withEtcdFlags(
    program
      .command("leases")
      .description(
        "list the subnet leases: subnet, public IP, backend, expiry (reservations marked)",
      )
      .option("--json", "print JSON, one array"),
  ).action(async (flags: EtcdFlags & { json?: boolean }) => {
    await withRegistry(flags, async (registry) => {
      const listing = await registry.getSubnets({ withExpiration: true });
      if (flags.json) out(`${JSON.stringify(listing.leases.map(leaseToJson), null, 2)}\n`);
      else out(formatLeaseTable(listing.leases, new Date()));
      for (const { key, reason } of listing.skipped)
        process.stderr.write(`flannelctl: skipped "${key}": ${reason}\n`);
    });
  });
  program
    .command("cni")
    .description("the flannel CNI plugin")
    .command("install")
    .description(
      "install bin/flannel and flannel's standard conflist (cbr0: flannel + portmap); other files are left alone",
    )
    .option("--bin-dir <dir>", "CNI plugin folder", "/opt/cni/bin")
    .option("--conf-dir <dir>", "CNI config folder", "/etc/cni/net.d")
    .action(async (flags: { binDir: string; confDir: string }) => {
      const { plugin, conflist } = await installCni(flags);
      out(`Installed ${plugin}\nWrote ${conflist}\n`);
    });
  addLabCommands(program, out);
  return program;
}

function positiveInt(flag: string): (text: string) => number {
  return (text) => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < 1)
      throw new FlannelError(
        `Invalid value "${text}" for ${flag}: expected a whole number, 1 or more`,
      );
    return n;
  };
}

async function requireLab(name: string) {
  const lab = await readLab(name);
  if (lab === null)
    throw new FlannelError(
      `Cannot find lab "${name}": it is not up: run "flannelctl lab up --name ${name}"`,
    );
  return lab;
}

interface LabUpFlags {
  name: string;
  nodes: number;
  backend: string;
  pods: number;
  ipMasq?: boolean;
  nftables?: boolean;
}

function addLabCommands(program: Command, out: (text: string) => void): void {
  const lab = program
    .command("lab")
    .description("a whole flannel cluster on this machine, in network namespaces");
  const progress = (step: string) => {
    out(`  - ${step}\n`);
  };
  lab
    .command("up")
    .description("start etcd, N hosts each running flanneld, on a shared bridge")
    .option(
      "--name <name>",
      "lab name (two labs with different names can run side by side)",
      "flannel",
    )
    .option("--nodes <n>", "number of hosts", positiveInt("--nodes"), 3)
    .option("--backend <type>", "flannel backend: vxlan, host-gw or alloc", "vxlan")
    .option(
      "--pods <k>",
      "pods per host",
      (v: string) => (v === "0" ? 0 : positiveInt("--pods")(v)),
      2,
    )
    .option("--ip-masq", "run flanneld with --ip-masq")
    .option("--nftables", "set EnableNFTables in the network config")
    .action(async (flags: LabUpFlags) => {
      out(
        `Starting lab "${flags.name}": ${flags.nodes} hosts, backend ${flags.backend}, ${flags.pods} pods per host\n`,
      );
      const networkConfig = JSON.stringify({
        Network: "10.244.0.0/16",
        ...(flags.nftables ? { EnableNFTables: true } : {}),
        Backend: { Type: flags.backend },
      });
      const flanneldArgs = flags.ipMasq ? ["--ip-masq"] : [];
      await labUp(
        {
          name: flags.name,
          nodes: flags.nodes,
          backend: flags.backend,
          pods: flags.pods,
          networkConfig,
          flanneldArgs,
        },
        progress,
      );
      out(`Lab "${flags.name}" is up.\n`);
    });
  lab
    .command("status")
    .description("hosts, subnets, public IPs, processes; and the leases in etcd")
    .option("--name <name>", "lab name", "flannel")
    .option("--json", "print JSON")
    .action(async (flags: { name: string; json?: boolean }) => {
      const found = await requireLab(flags.name);
      const nodes = await labStatus(found);
      if (flags.json) {
        out(`${JSON.stringify({ name: found.name, nodes }, null, 2)}\n`);
        return;
      }
      out(formatLabStatus(nodes));
      out(`\nLeases in etcd (${found.etcdEndpoint}):\n`);
      const listing = await labEtcdctl(found, ["get", "--prefix", "/coreos.com/network/subnets/"]);
      out(listing.trim() === "" ? "(none)\n" : listing);
    });
  lab
    .command("check")
    .description("every pod pings every other pod; exits 0 only when every pair works")
    .option("--name <name>", "lab name", "flannel")
    .action(async (flags: { name: string }) => {
      const found = await requireLab(flags.name);
      const pods = await listPods(found);
      const results = await pingAll(pods);
      out(formatPingMatrix(pods, results));
      const failed = results.filter((r) => !r.ok).length;
      out(
        failed === 0
          ? `All ${results.length} pod pairs reach each other.\n`
          : `${failed} of ${results.length} pod pairs FAILED.\n`,
      );
      if (failed > 0)
        throw new FlannelError(
          `Lab check failed: ${failed} of ${results.length} pod pairs cannot reach each other`,
        );
    });
  lab
    .command("down")
    .description("remove every namespace, process and file of the lab (safe to run twice)")
    .option("--name <name>", "lab name", "flannel")
    .action(async (flags: { name: string }) => {
      await labDown(flags.name, progress);
    });
}

/** Runs flannelctl and resolves with the exit code. */
export async function main(args: readonly string[]): Promise<number> {
  const program = buildProgram((text) => process.stdout.write(text));
  try {
    await program.parseAsync(args, { from: "user" });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`flannelctl: ${message}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
process.exit();
