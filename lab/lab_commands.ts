/**
 * `flannelctl lab ...`: a whole flannel cluster on this machine. Flags and printing only; the
 * work is in the other files of lab/.
 */
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { BACKENDS, BACKEND_TYPES, backendFor } from "../src/backend/registry.js";
import { FlannelError } from "../src/errors.js";
import {
  LAB_IPV6_NETWORK,
  addNode,
  deleteNode,
  findNode,
  killNode,
  labBackendObject,
  labDown,
  labUp,
  listPods,
  readLab,
  restartNode,
} from "./cluster.js";
import type { Lab, LabRuntime, Progress } from "./cluster.js";
import { LAB_RUNTIMES } from "./lab_model.js";
import { startDashboard } from "./dashboard.js";
import { formatPingMatrix, iperfBetween, pingAll } from "./lab_check.js";
import { formatLabStatus, labStatus } from "./lab_status.js";
import { NETWORK_POLICY_FLAG, registersPods } from "./kubelet.js";
import {
  applyPolicies,
  deleteAllPolicies,
  differences,
  expectedMatrix,
  formatReachability,
  parsePolicies,
  probeMatrix,
} from "./netpol.js";

type Out = (text: string) => void;

function positiveInt(flag: string, min = 1): (text: string) => number {
  return (text) => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < min)
      throw new FlannelError(
        `Invalid value "${text}" for ${flag}: expected a whole number, ${min} or more`,
      );
    return n;
  };
}

async function requireLab(name: string): Promise<Lab> {
  const lab = await readLab(name);
  if (lab === null)
    throw new FlannelError(
      `Cannot find lab "${name}": it is not up: run "flannelctl lab up --name ${name}"`,
    );
  return lab;
}

/** Progress as steps: ticked with timings on a terminal, plain lines otherwise. */
function progressPrinter(out: Out): Progress {
  const tty = process.stdout.isTTY;
  let last = Date.now();
  return (step) => {
    const now = Date.now();
    out(
      tty
        ? `  \u2713 ${step} \u001b[2m(${((now - last) / 1000).toFixed(1)}s)\u001b[0m\n`
        : `  - ${step}\n`,
    );
    last = now;
  };
}

interface UpFlags {
  name: string;
  nodes: number;
  backend: string;
  pods: number;
  etcdMembers: number;
  ipMasq?: boolean;
  nftables?: boolean;
  kube?: boolean;
  dualStack?: boolean;
  ipv6Only?: boolean;
  runtime: string;
  flanneldInContainer?: boolean;
  networkPolicy?: boolean;
}

function labRuntime(text: string): LabRuntime {
  const runtime = LAB_RUNTIMES.find((r) => r === text);
  if (runtime !== undefined) return runtime;
  throw new FlannelError(
    `Invalid value "${text}" for --runtime: expected ${LAB_RUNTIMES.join(", ")}`,
  );
}

async function up(flags: UpFlags, out: Out): Promise<Lab> {
  if (flags.etcdMembers !== 1 && flags.etcdMembers !== 3) {
    throw new FlannelError(
      `Invalid value "${flags.etcdMembers}" for --etcd-members: expected 1 or 3`,
    );
  }
  if (!BACKEND_TYPES.includes(flags.backend)) {
    throw new FlannelError(
      `Invalid value "${flags.backend}" for --backend: expected one of ${BACKEND_TYPES.join(", ")}`,
    );
  }
  if (
    (flags.dualStack === true || flags.ipv6Only === true) &&
    !backendFor(flags.backend).lab.dualStack
  ) {
    const able = BACKENDS.filter((b) => b.lab.dualStack).map((b) => b.type);
    throw new FlannelError(
      `Invalid --${flags.ipv6Only === true ? "ipv6-only" : "dual-stack"} with --backend ${flags.backend}: it carries IPv4 only; expected one of ${able.join(", ")}`,
    );
  }
  const store = flags.kube ? "Kubernetes mode (API double)" : `${flags.etcdMembers} etcd member(s)`;
  out(
    `Starting lab "${flags.name}": ${flags.nodes} hosts, backend ${flags.backend}, ${flags.pods} pods per host, ${store}\n`,
  );
  if (flags.networkPolicy === true && flags.kube !== true) {
    throw new FlannelError(
      "Invalid --network-policy without --kube: NetworkPolicy is read from the Kubernetes API; add --kube",
    );
  }
  if (flags.ipv6Only === true && flags.kube !== true) {
    throw new FlannelError(
      "Invalid --ipv6-only without --kube: flannel's etcd subnet manager always leases an IPv4 subnet; IPv6-only networks are Kubernetes mode only, as in flannel",
    );
  }
  const networkConfig = JSON.stringify({
    ...(flags.ipv6Only ? { EnableIPv4: false } : { Network: "10.244.0.0/16" }),
    ...(flags.dualStack || flags.ipv6Only
      ? { EnableIPv6: true, IPv6Network: LAB_IPV6_NETWORK }
      : {}),
    ...(flags.nftables ? { EnableNFTables: true } : {}),
    Backend: labBackendObject(flags.backend),
  });
  const lab = await labUp(
    {
      name: flags.name,
      nodes: flags.nodes,
      backend: flags.backend,
      pods: flags.pods,
      etcdMembers: flags.etcdMembers === 3 ? 3 : 1,
      networkConfig,
      flanneldArgs: [
        ...(flags.ipMasq || flags.networkPolicy ? ["--ip-masq"] : []),
        ...(flags.networkPolicy ? [NETWORK_POLICY_FLAG] : []),
      ],
      datastore: flags.kube ? "kube" : "etcd",
      runtime: labRuntime(flags.runtime),
      flanneldInContainer: flags.flanneldInContainer === true,
    },
    progressPrinter(out),
  );
  out(`Lab "${flags.name}" is up. Its files: ${lab.dir}\n`);
  return lab;
}

/** Pings every pair, prints the matrix; resolves with the number of failed pairs. */
async function check(lab: Lab, out: Out, throughput: boolean): Promise<number> {
  if (lab.backend === "alloc") return checkAlloc(lab, out);
  if (registersPods(lab)) return checkPolicies(lab, out);
  const pods = await listPods(lab);
  const results = await pingAll(pods);
  out(formatPingMatrix(pods, results));
  const failed = results.filter((r) => !r.ok).length;
  const v6 = results.some((r) => r.family === 6);
  const pairs = results.filter((r) => r.family === 4).length;
  out(
    failed === 0
      ? v6
        ? `All ${pairs} pod pairs reach each other over IPv4 and IPv6.\n`
        : `All ${results.length} pod pairs reach each other.\n`
      : `${failed} of ${results.length} pod pairs FAILED${v6 ? " (IPv4 and IPv6 pings)" : ""}.\n`,
  );
  if (throughput) {
    const a = pods[0];
    const b = pods.find((p) => p.node !== a?.node);
    if (a === undefined || b === undefined) out("Throughput: needs pods on two hosts\n");
    else
      out(
        `Throughput ${a.name} -> ${b.name} (iperf3, 5 s): ${(await iperfBetween(a, b, 5)).toFixed(2)} Gbit/s\n`,
      );
  }
  return failed;
}

/**
 * Under NetworkPolicy: every ordered pair probed over TCP port 80, each judged against what the
 * policies in force allow; resolves with the number of pairs that do not behave as they say.
 */
async function checkPolicies(lab: Lab, out: Out): Promise<number> {
  const pods = await listPods(lab);
  const probe = { protocol: "TCP", port: 80 } as const;
  const expected = await expectedMatrix(lab, pods, probe);
  const actual = await probeMatrix(pods, probe);
  out(
    "Reachability over TCP port 80 under the NetworkPolicies in force (ok: allowed and reached; blocked: as the policies say):\n",
  );
  out(formatReachability(pods, expected, actual));
  const broken = differences(pods, expected, actual);
  for (const line of broken) out(`  BROKEN ${line}\n`);
  const blocked = [...expected.values()].filter((v) => !v).length;
  out(
    broken.length === 0
      ? `All ${expected.size} pod pairs behave as the policies say (${blocked} blocked).\n`
      : `${broken.length} of ${expected.size} pod pairs do NOT behave as the policies say.\n`,
  );
  return broken.length;
}

/**
 * alloc leases a subnet per host and programs no data plane, so its pods do not reach each
 * other: what it promises is a lease and subnet.env on each host, with distinct subnets.
 */
async function checkAlloc(lab: Lab, out: Out): Promise<number> {
  out("Backend alloc carries no traffic: checking what it promises, a distinct lease per host.\n");
  const subnets = new Map<string, string>();
  let failed = 0;
  for (const node of lab.nodes) {
    const env = await readFile(node.subnetFile, "utf8").catch(() => null);
    const subnet = env === null ? undefined : /FLANNEL_SUBNET=(\S+)/.exec(env)?.[1];
    const other = subnet === undefined ? undefined : subnets.get(subnet);
    if (subnet === undefined || other !== undefined) {
      failed++;
      out(
        `  ${node.name}: ${subnet === undefined ? `no subnet in ${node.subnetFile}` : `subnet ${subnet} also held by ${other}`}\n`,
      );
      continue;
    }
    subnets.set(subnet, node.name);
    out(`  ${node.name}: ${subnet}\n`);
  }
  out(
    failed === 0
      ? `All ${lab.nodes.length} hosts hold distinct subnets.\n`
      : `${failed} hosts FAILED.\n`,
  );
  return failed;
}

function nameOption(command: Command): Command {
  return command.option("--name <name>", "lab name", "flannel");
}

/** Adds the `lab` subcommands. */
export function addLabCommands(program: Command, out: Out): void {
  const lab = program
    .command("lab")
    .description("a whole flannel cluster on this machine, in network namespaces");
  addUpCommand(lab, out);
  addLookCommands(lab, out);
  addDoctorCommands(lab, out);
  addDrillCommand(lab, out);
  addPolicyCommand(lab, out);
  addNodeCommands(lab, out);
  addRunCommands(lab, out);
}

/** `lab netpol <file>`: NetworkPolicies into the lab's API double (`lab up --kube --network-policy`). */
function addPolicyCommand(lab: Command, out: Out): void {
  nameOption(
    lab
      .command("netpol [file]")
      .description(
        "apply the NetworkPolicies of a YAML or JSON file (one or more documents) to the lab's Kubernetes API double",
      ),
  )
    .option("--delete-all", "delete every NetworkPolicy of the lab first")
    .action(async (file: string | undefined, flags: { name: string; deleteAll?: boolean }) => {
      const found = await requireLab(flags.name);
      if (!registersPods(found))
        throw new FlannelError(
          `Cannot apply NetworkPolicies to lab "${flags.name}": it does not enforce them: start it with lab up --kube --network-policy`,
        );
      if (flags.deleteAll === true)
        out(`deleted ${String(await deleteAllPolicies(found))} NetworkPolicies\n`);
      if (file === undefined) {
        if (flags.deleteAll !== true)
          throw new FlannelError(
            "Cannot run lab netpol: give a file of NetworkPolicies, or --delete-all",
          );
        return;
      }
      const text = await readFile(file, "utf8").catch((err: unknown) => {
        throw new FlannelError(
          `Cannot read "${file}": ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
        );
      });
      for (const line of await applyPolicies(found, parsePolicies(text, file))) out(`${line}\n`);
      out("lab check shows the reachability matrix under the policies in force\n");
    });
}

/** `lab up`: etcd (or the Kubernetes API double) and N hosts with K pods each. */
function addUpCommand(lab: Command, out: Out): void {
  nameOption(
    lab
      .command("up")
      .description("start etcd and N hosts running flanneld on a shared bridge, with K pods each"),
  )
    .option("--nodes <n>", "number of hosts", positiveInt("--nodes"), 3)
    .option("--backend <type>", `flannel backend: ${BACKEND_TYPES.join(", ")}`, "vxlan")
    .option("--pods <k>", "pods per host", positiveInt("--pods", 0), 2)
    .option("--etcd-members <n>", "etcd members: 1 or 3", positiveInt("--etcd-members"), 1)
    .option("--ip-masq", "run flanneld with --ip-masq")
    .option("--nftables", "set EnableNFTables in the network config")
    .option("--ipv6-only", "an IPv6-only network (EnableIPv4 false); needs --kube")
    .option(
      "--dual-stack",
      `IPv6 beside IPv4: EnableIPv6 with IPv6Network ${LAB_IPV6_NETWORK} (${BACKENDS.filter(
        (b) => b.lab.dualStack,
      )
        .map((b) => b.type)
        .join(", ")})`,
    )
    .option("--kube", "Kubernetes mode: a Kubernetes API double instead of etcd, a Node per host")
    .option(
      "--network-policy",
      "with --kube: flanneld enforces NetworkPolicy (and runs with --ip-masq, as kube-flannel); the lab registers each pod as a Pod object with a probe agent",
    )
    .option(
      "--runtime <runtime>",
      "how pods run: netns (namespaces wired by calling the plugin), podman (containers, networked by podman's CNI backend through the plugin) or containerd (CRI sandboxes, the lab playing the kubelet; containerd's CRI calls the plugin)",
      "netns",
    )
    .option(
      "--flanneld-in-container",
      "run flanneld from flannel-ts's image (npm run image), as the DaemonSet's pod runs it",
    )
    .action(async (flags: UpFlags) => {
      await up(flags, out);
    });
}

/** `lab check`, `status` and `exec`: looking into a running lab. */
function addLookCommands(lab: Command, out: Out): void {
  nameOption(
    lab
      .command("check")
      .description("every pod pings every other pod; exits 0 only when every pair works"),
  )
    .option("--throughput", "add an iperf3 figure between two pods on different hosts")
    .action(async (flags: { name: string; throughput?: boolean }) => {
      const found = await requireLab(flags.name);
      const failed = await check(found, out, flags.throughput === true);
      if (failed > 0)
        throw new FlannelError(
          found.backend === "alloc"
            ? `Lab check failed: ${failed} hosts hold no distinct subnet`
            : registersPods(found)
              ? `Lab check failed: ${failed} pod pairs do not behave as the NetworkPolicies say`
              : `Lab check failed: ${failed} pod pairs cannot reach each other`,
        );
    });

  nameOption(
    lab
      .command("status")
      .description("hosts, subnets, public IPs, VTEP MACs, pods, processes; the leases in etcd"),
  )
    .option("--json", "print JSON")
    .action(async (flags: { name: string; json?: boolean }) => {
      const status = await labStatus(await requireLab(flags.name));
      out(flags.json ? `${JSON.stringify(status, null, 2)}\n` : formatLabStatus(status));
    });

  nameOption(
    lab
      .command("exec <target> [command...]")
      .description(
        "run a command in a host (h1) or pod (h1p2) namespace; put -- before the command",
      ),
  ).action(async (target: string, command: string[], flags: { name: string }) => {
    const found = await requireLab(flags.name);
    const pods = await listPods(found);
    const netns = pods.find((p) => p.name === target)?.netns ?? findNode(found, target).netns;
    const argv = command.length > 0 ? command : ["sh"];
    const code = await new Promise<number>((resolve) => {
      spawn("ip", ["netns", "exec", netns, ...argv], { stdio: "inherit" }).on("exit", (c) => {
        resolve(c ?? 1);
      });
    });
    if (code !== 0) process.exitCode = code;
  });
}

/** `lab doctor` and `lab trace`: flannelctl's doctor and trace on the lab's hosts. */
function addDoctorCommands(lab: Command, out: Out): void {
  nameOption(
    lab
      .command("doctor <node>")
      .description("run flannelctl doctor on a host, with its flanneld's flags")
      .option("--json", "print JSON")
      .option("--fix", "apply the safe fixes"),
  ).action(async (node: string, flags: { name: string; json?: boolean; fix?: boolean }) => {
    const found = await requireLab(flags.name);
    const { flannelctlOn } = await import("./lab_doctor.js");
    const result = await flannelctlOn(found, findNode(found, node), [
      "doctor",
      ...(flags.json === true ? ["--json"] : []),
      ...(flags.fix === true ? ["--fix"] : []),
    ]);
    out(result.stdout);
    process.stderr.write(result.stderr);
    process.exitCode = result.code ?? 1;
  });

  nameOption(
    lab
      .command("trace <src> <dst>")
      .description(
        "the path between two pods (h1p1, x/a, or addresses), hop by hop, read on the hosts of both ends",
      )
      .option("--json", "print JSON")
      .option(
        "--port <port/proto>",
        "with --network-policy: which policy allows or drops 80/tcp (say)",
      ),
  ).action(
    async (src: string, dst: string, flags: { name: string; json?: boolean; port?: string }) => {
      const found = await requireLab(flags.name);
      const [{ labTrace }, { firstProblem, formatTrace }] = await Promise.all([
        import("./lab_doctor.js"),
        import("../src/doctor/trace.js"),
      ]);
      const halves = await labTrace(found, src, dst, flags.port);
      out(flags.json === true ? `${JSON.stringify(halves, null, 2)}\n` : formatTrace(halves));
      if (firstProblem(halves) !== null) process.exitCode = 1;
    },
  );
}

/** `lab drill`: a fault under ping load. */
function addDrillCommand(lab: Command, out: Out): void {
  nameOption(
    lab
      .command("drill <drill> [node]")
      .description(
        "a fault under ping load (every pod pings the next host's every 0.1 s; lost pings counted, live on the dashboard): etcd-outage, etcd-wipe, etcd-failover (3 members), partition hN, kill-flanneld hN, reboot hN",
      )
      .option("--seconds <n>", "how long the fault lasts", positiveInt("--seconds"), 30)
      .option("--times <n>", "kill-flanneld: how many times", positiveInt("--times"), 5),
  ).action(
    async (
      drill: string,
      node: string | undefined,
      flags: { name: string; seconds: number; times: number },
    ) => {
      const found = await requireLab(flags.name);
      const { DRILLS, runDrill } = await import("./drills.js");
      const name = DRILLS.find((d) => d === drill);
      if (name === undefined)
        throw new FlannelError(`Unknown drill "${drill}": expected one of ${DRILLS.join(", ")}`);
      const result = await runDrill(found, name, {
        ...(node === undefined ? {} : { node: findNode(found, node) }),
        seconds: flags.seconds,
        times: flags.times,
        progress: (step) => {
          out(`  - ${step}\n`);
        },
      });
      const { sent, lost } = result.pings;
      out(
        `Drill ${name} done in ${(result.ms / 1000).toFixed(1)} s: ${sent} pings sent, ${lost} lost${sent > 0 ? ` (${((100 * lost) / sent).toFixed(1)} %)` : ""}\n`,
      );
    },
  );
}

/** `lab logs`, `add-node`, `kill-node`, `delete-node` and `restart-node`: one host at a time. */
function addNodeCommands(lab: Command, out: Out): void {
  nameOption(lab.command("logs <node>").description("print a host's flanneld log")).action(
    async (node: string, flags: { name: string }) => {
      out(await readFile(findNode(await requireLab(flags.name), node).logFile, "utf8"));
    },
  );

  nameOption(
    lab.command("add-node").description("add one more host, with the lab's pods per host"),
  ).action(async (flags: { name: string }) => {
    const { node } = await addNode(await requireLab(flags.name), progressPrinter(out));
    out(`Host ${node.name} joined.\n`);
  });

  nameOption(
    lab.command("kill-node <node>").description("crash a host: flanneld killed, its network down"),
  ).action(async (node: string, flags: { name: string }) => {
    await killNode(findNode(await requireLab(flags.name), node));
    out(`Host ${node} is down.\n`);
  });

  nameOption(
    lab
      .command("delete-node <node>")
      .description(
        "Kubernetes mode: delete a host's Node object (its flanneld stops); the peers drop its routes",
      ),
  ).action(async (node: string, flags: { name: string }) => {
    const found = await requireLab(flags.name);
    await deleteNode(found, findNode(found, node));
    out(`Node ${node} deleted.\n`);
  });

  nameOption(
    lab
      .command("restart-node <node>")
      .description("bring a host back: network up, flanneld started"),
  ).action(async (node: string, flags: { name: string }) => {
    const found = await requireLab(flags.name);
    await restartNode(found, findNode(found, node));
    out(`Host ${node} is back.\n`);
  });
}

/** `lab down`, `lab ui` and `lab run` (what `npm run lab` runs). */
function addRunCommands(lab: Command, out: Out): void {
  nameOption(
    lab
      .command("down")
      .description("remove every namespace, process and file of the lab (safe to run twice)"),
  ).action(async (flags: { name: string }) => {
    await labDown(flags.name, progressPrinter(out));
  });

  nameOption(lab.command("ui").description("serve the live dashboard on 127.0.0.1 until Ctrl-C"))
    .option("--port <p>", "port (0 picks a free one)", positiveInt("--port", 0), 8090)
    .action(async (flags: { name: string; port: number }) => {
      await requireLab(flags.name);
      const dashboard = await startDashboard(flags.name, flags.port);
      out(`Dashboard: ${dashboard.url}  (Ctrl-C to stop)\n`);
      await waitForSignal();
      await dashboard.close();
    });

  nameOption(
    lab
      .command("run")
      .description(
        "npm run lab: up with the defaults, check, then serve the dashboard until Ctrl-C and take the lab down",
      ),
  )
    .option("--once", "take the lab down right after the check and exit with its status")
    .option("--kube", "Kubernetes mode: a Kubernetes API double instead of etcd")
    .option("--port <p>", "dashboard port (0 picks a free one)", positiveInt("--port", 0), 8090)
    .action(async (flags: { name: string; once?: boolean; port: number; kube?: boolean }) => {
      const progress = progressPrinter(out);
      await labDown(flags.name, () => undefined); // a lab left by a crash
      let failed = 1;
      try {
        const started = Date.now();
        const found = await up(
          {
            name: flags.name,
            nodes: 3,
            backend: "vxlan",
            pods: 2,
            etcdMembers: 1,
            kube: flags.kube === true,
            runtime: "netns",
          },
          out,
        );
        out(
          `Up in ${((Date.now() - started) / 1000).toFixed(1)} s. Checking that every pod reaches every other pod:\n`,
        );
        failed = await check(found, out, false);
        if (flags.once || !process.stdin.isTTY) return;
        const dashboard = await startDashboard(flags.name, flags.port);
        out(
          `\nDashboard: ${dashboard.url}\nTry: bin/flannelctl lab kill-node h2 --name ${flags.name}   (and restart-node h2)\nCtrl-C takes the lab down.\n`,
        );
        await waitForSignal();
        await dashboard.close();
      } finally {
        out("Taking the lab down.\n");
        await labDown(flags.name, progress);
        if (failed > 0) process.exitCode = 1;
      }
    });
}

function waitForSignal(): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      process.off("SIGINT", done);
      process.off("SIGTERM", done);
      resolve();
    };
    process.once("SIGINT", done);
    process.once("SIGTERM", done);
  });
}
