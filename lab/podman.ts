/**
 * Pods as real containers (`lab up --runtime podman`): on each lab host, Debian's podman starts
 * the pods in that host's network namespace, and its CNI backend networks them through
 * flannel-ts's plugin and the conflist `flannelctl cni install` writes, as a host's container
 * runtime would.
 *
 * Everything of podman's stays in the lab's folder: per host a containers.conf and a
 * storage.conf (named by CONTAINERS_CONF and CONTAINERS_STORAGE_CONF), the CNI config folder,
 * and podman's storage; nothing goes to the machine's /etc. This machine's quirks are set there:
 * runc with cgroupfs (crun refuses the hybrid cgroup layout), no default ulimits (they exceed
 * the hard limits), and podman is entered into a host with `nsenter --net` (`ip netns exec`
 * remounts /sys, which hides the cgroup mounts from runc). The pods' image is made here from
 * Debian's busybox-static: no registry.
 */
import { readFileSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { installCni } from "../src/cni/install.js";
import { runCapture } from "../src/util/exec.js";
import type { RunResult } from "../src/util/exec.js";
import { REPO_ROOT } from "../src/util/repo_root.js";
import { hostCniConfDir, hostCniPaths, labCniBinDir } from "./host_cni.js";
import { writeBusyboxRoot } from "./oci_archive.js";
import type { Lab, LabNode } from "./lab_model.js";

/** The image the lab's pod containers run. */
export const POD_IMAGE = "localhost/flannel-ts-pod:latest";
/** The CNI network podman attaches pods to: flannel's conflist's name. */
const NETWORK = "cbr0";

/** Where a host's podman keeps its configuration and state. */
function podmanDir(lab: Lab, node: LabNode): string {
  return join(lab.dir, node.name, "podman");
}

/** Which configuration a podman call uses: files named by CONTAINERS_CONF and CONTAINERS_STORAGE_CONF. */
export interface PodmanConfig {
  readonly containersConf: string;
  readonly storageConf: string;
}

/** Runs podman with a configuration, in a network namespace (entered with nsenter) or this one. */
export function runPodman(
  config: PodmanConfig,
  netns: string | null,
  args: readonly string[],
): Promise<RunResult> {
  const enter = netns === null ? [] : [`--net=/var/run/netns/${netns}`];
  return runCapture("nsenter", [...enter, "podman", "--log-level=error", ...args], {
    env: {
      ...process.env,
      CONTAINERS_CONF: config.containersConf,
      CONTAINERS_STORAGE_CONF: config.storageConf,
    },
  });
}

/** runPodman, resolving with its output; rejects naming the command when podman fails. */
async function runPodmanOk(
  config: PodmanConfig,
  netns: string | null,
  args: readonly string[],
): Promise<string> {
  const result = await runPodman(config, netns, args);
  if (result.code !== 0)
    throw new Error(
      `podman ${args.slice(0, 2).join(" ")}${netns === null ? "" : ` in ${netns}`} failed (exit ${result.code ?? "signal"}): ${result.stderr.trim() || result.stdout.trim()}`,
    );
  return result.stdout;
}

/** A host's podman configuration (its pods, networked through the flannel plugin). */
function hostConfig(lab: Lab, node: LabNode): PodmanConfig {
  const dir = podmanDir(lab, node);
  return {
    containersConf: join(dir, "containers.conf"),
    storageConf: join(dir, "storage.conf"),
  };
}

/** Runs podman in a host's network namespace with the host's configuration. */
export function podman(lab: Lab, node: LabNode, args: readonly string[]): Promise<RunResult> {
  return runPodman(hostConfig(lab, node), node.netns, args);
}

const podmanOk = (lab: Lab, node: LabNode, args: readonly string[]) =>
  runPodmanOk(hostConfig(lab, node), node.netns, args);

/**
 * A containers.conf with this machine's quirks (runc with cgroupfs, no default ulimits), podman's
 * temporary state in `tmpDir`, and, when given, a CNI network folder and plugin folders.
 */
export async function writeContainersConf(
  path: string,
  options: {
    readonly tmpDir: string;
    readonly network?: { readonly configDir: string; readonly pluginDirs: readonly string[] };
  },
): Promise<void> {
  const network =
    options.network === undefined
      ? ""
      : `
[network]
network_backend = "cni"
network_config_dir = "${options.network.configDir}"
cni_plugin_dirs = [${options.network.pluginDirs.map((d) => `"${d}"`).join(", ")}]
`;
  await writeFile(
    path,
    `[containers]
default_ulimits = []

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "${join(options.tmpDir, "events.log")}"
tmp_dir = "${options.tmpDir}"
${network}`,
  );
}

/** The pods' image as a tar: busybox-static and its applets, nothing else. */
async function podImageTar(lab: Lab): Promise<string> {
  const tar = join(lab.dir, "pod-image.tar");
  const root = join(lab.dir, "pod-image");
  try {
    await readFile(tar);
    return tar;
  } catch {
    // made below
  }
  await writeBusyboxRoot(root, ["sh", "sleep", "ping", "ip", "ifconfig", "cat", "wget", "nc"]);
  const made = await runCapture("tar", ["-C", root, "-cf", tar, "."]);
  if (made.code !== 0) throw new Error(`Cannot make the pod image: ${made.stderr}`);
  return tar;
}

/**
 * Prepares podman on a host: its configuration, the flannel plugin and conflist (by
 * `flannelctl cni install`'s code, with the host's subnet.env), and the pods' image.
 */
export async function setUpPodman(
  lab: Lab,
  node: LabNode,
  options: { readonly installPlugin: boolean } = { installPlugin: true },
): Promise<void> {
  const dir = podmanDir(lab, node);
  const netDir = hostCniConfDir(lab, node);
  const binDir = labCniBinDir(lab);
  await mkdir(dir, { recursive: true });
  await mkdir(netDir, { recursive: true });
  if (options.installPlugin)
    await installCni({ binDir, confDir: netDir, ...hostCniPaths(lab, node) });
  await writeContainersConf(join(dir, "containers.conf"), {
    tmpDir: join(dir, "tmp"),
    network: { configDir: netDir, pluginDirs: [binDir, "/usr/lib/cni"] },
  });
  await writeFile(
    join(dir, "storage.conf"),
    `[storage]
driver = "vfs"
graphroot = "${join(dir, "storage")}"
runroot = "${join(dir, "run")}"
`,
  );
  await podmanOk(lab, node, ["import", await podImageTar(lab), POD_IMAGE]);
}

/** A pod container started: its network namespace's name and its addresses. */
export interface PodContainer {
  readonly netns: string;
  readonly ip: string | null;
  readonly ip6: string | null;
}

/** Starts a pod container named `name` on a host, through the CNI plugin. */
export async function runPodContainer(
  lab: Lab,
  node: LabNode,
  name: string,
): Promise<PodContainer> {
  await podmanOk(lab, node, [
    "run",
    "-d",
    "--name",
    name,
    "--network",
    NETWORK,
    "--sysctl",
    "net.ipv6.conf.all.accept_dad=0",
    POD_IMAGE,
    "sleep",
    "2147483647",
  ]);
  return inspectPodContainer(lab, node, name);
}

/** A pod container's network namespace and addresses, as podman holds them. */
export async function inspectPodContainer(
  lab: Lab,
  node: LabNode,
  name: string,
): Promise<PodContainer> {
  const [info] = JSON.parse(await podmanOk(lab, node, ["inspect", name])) as {
    NetworkSettings: {
      SandboxKey: string;
      Networks: Record<string, { IPAddress?: string; GlobalIPv6Address?: string }>;
    };
  }[];
  if (info === undefined) throw new Error(`podman knows no container ${name} on ${node.name}`);
  const network = info.NetworkSettings.Networks[NETWORK];
  const key = info.NetworkSettings.SandboxKey;
  return {
    netns: key.replace(/^\/(var\/)?run\/netns\//, ""),
    ip: network?.IPAddress || null,
    ip6: network?.GlobalIPv6Address || null,
  };
}

/** Removes every container of a host (each one's CNI DEL runs); quiet when podman has none. */
export async function removePodContainers(lab: Lab, node: LabNode): Promise<void> {
  await podman(lab, node, ["rm", "-a", "-f", "-t", "0"]);
}

/** flannel-ts's image, as `npm run image` builds it into its own store. */
export function flannelImage(): { readonly name: string; readonly storageConf: string } {
  const manifest = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as {
    version: string;
  };
  return {
    name: `localhost/flannel-ts:${manifest.version}`,
    storageConf: join(REPO_ROOT, "dist/image/storage.conf"),
  };
}

/** podman for flanneld's containers: the image's store, the lab's temporary state. */
function imageConfig(lab: Lab): PodmanConfig {
  return {
    containersConf: join(lab.dir, "flanneld-podman", "containers.conf"),
    storageConf: flannelImage().storageConf,
  };
}

const imagePodman = (lab: Lab, netns: string | null, args: readonly string[]) =>
  runPodman(imageConfig(lab), netns, args);
const imagePodmanOk = (lab: Lab, netns: string | null, args: readonly string[]) =>
  runPodmanOk(imageConfig(lab), netns, args);

/** The name of a host's flanneld container. */
function flanneldContainer(lab: Lab, node: LabNode): string {
  return `${lab.name}-${node.name}-flanneld`;
}

/**
 * Readies a lab for flanneld in containers: podman's configuration for them, and the image,
 * which `npm run image` must have built.
 */
export async function setUpFlanneldContainers(lab: Lab): Promise<void> {
  const dir = join(lab.dir, "flanneld-podman");
  await mkdir(dir, { recursive: true });
  await writeContainersConf(join(dir, "containers.conf"), { tmpDir: join(dir, "tmp") });
  const image = flannelImage();
  const found = await imagePodman(lab, null, ["image", "exists", image.name]);
  if (found.code !== 0)
    throw new Error(
      `Cannot run flanneld in containers: the image ${image.name} is not built: run "npm run image" first`,
    );
}

/**
 * The DaemonSet's init container on a host: `flannelctl cni install` from the image puts the
 * plugin and the conflist (with the host's paths) where the host's runtime finds them.
 */
export async function installCniFromImage(lab: Lab, node: LabNode): Promise<void> {
  const netDir = hostCniConfDir(lab, node);
  const binDir = labCniBinDir(lab);
  await mkdir(netDir, { recursive: true });
  await mkdir(binDir, { recursive: true });
  await imagePodmanOk(lab, node.netns, [
    "run",
    "--rm",
    "--network",
    "host",
    "-v",
    `${binDir}:${binDir}`,
    "-v",
    `${netDir}:${netDir}`,
    "--entrypoint",
    "/opt/flannel-ts/bin/flannelctl",
    flannelImage().name,
    ...["cni", "install", `--bin-dir=${binDir}`, `--conf-dir=${netDir}`],
    ...((paths) => [
      `--subnet-file=${paths.subnetFile}`,
      `--data-dir=${paths.dataDir}`,
      `--ipam-data-dir=${paths.ipamDataDir}`,
    ])(hostCniPaths(lab, node)),
  ]);
}

/**
 * `podman run` of flanneld as the kubelet runs the DaemonSet's pod: detached, the host's network
 * namespace, every capability dropped but NET_ADMIN and NET_RAW, and these volumes.
 */
export function daemonSetPodRun(name: string, volumes: readonly string[]): string[] {
  return [
    ...["run", "-d", "--name", name, "--network", "host"],
    ...["--cap-drop", "all", "--cap-add", "NET_ADMIN", "--cap-add", "NET_RAW"],
    ...volumes.flatMap((v) => ["-v", v]),
  ];
}

/**
 * Starts a host's flanneld from the image as the kubelet runs the DaemonSet's pod: the host's
 * network namespace, only NET_ADMIN and NET_RAW, the lab's folder (subnet.env, kubeconfig)
 * mounted at its own path; its log to the host's log file. Resolves with its pid.
 */
export async function startFlanneldContainer(
  lab: Lab,
  node: LabNode,
  args: readonly string[],
  env: Readonly<Record<string, string>>,
): Promise<number> {
  const name = flanneldContainer(lab, node);
  await imagePodman(lab, node.netns, ["rm", "-f", "-t", "0", name]);
  await imagePodmanOk(lab, node.netns, [
    ...daemonSetPodRun(name, [`${lab.dir}:${lab.dir}`]),
    "--log-driver",
    "k8s-file",
    "--log-opt",
    `path=${node.logFile}`,
    ...Object.entries(env).flatMap(([k, v]) => ["-e", `${k}=${v}`]),
    flannelImage().name,
    ...args,
  ]);
  const pid = Number(
    (await imagePodmanOk(lab, node.netns, ["inspect", "--format", "{{.State.Pid}}", name])).trim(),
  );
  await writeFile(node.pidFile, `${pid}\n`);
  return pid;
}

/** Removes every flanneld container of a lab. */
export async function removeFlanneldContainers(lab: Lab): Promise<void> {
  const names = lab.nodes.map((node) => flanneldContainer(lab, node));
  await imagePodman(lab, null, ["rm", "-f", "-t", "0", "--ignore", ...names]);
}
