/**
 * containerd as a Kubernetes node runs it, for the lab and the tests: Debian's containerd (1.6,
 * its CRI plugin) with runc, one instance per host, entered into the host's network namespace
 * with `nsenter --net` (as podman is: `ip netns exec` remounts /sys and hides the cgroups from
 * runc). Each instance has its own root, state, socket, config and CNI folders under one folder
 * of ours; nothing goes to the machine's /etc or /var/lib/containerd. The CRI plugin calls the
 * CNI plugins in its bin folder with the first conflist of its conf folder, as on a kubelet's
 * node; pods' network namespaces are containerd's own (/var/run/netns/cni-<uuid>).
 *
 * The sandbox image ("pause") is made here from Debian's busybox-static (no registry is
 * reachable) and imported with `ctr`; containerd is told it is the sandbox image, so it never
 * looks for one on a registry.
 */
import { mkdir, readdir, readFile, stat, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { run } from "../src/util/exec.js";
import { CriClient } from "./cri_client.js";
import { writeBusyboxRoot, writeOciArchive } from "./oci_archive.js";
import { killPidFile, livePid, startDetached } from "./detached.js";
import { eventually } from "./poll.js";

/** The sandbox image every instance is given. */
export const PAUSE_IMAGE = "localhost/flannel-ts-pause:1";
/** The standard CNI plugins (bridge, host-local, portmap, loopback) on this machine. */
const SYSTEM_CNI_DIR = "/usr/lib/cni";
/**
 * containerd's environment, as systemd starts it on a node: PATH alone. The plugins it runs
 * inherit it; what this shell has (NODE_EXTRA_CA_CERTS, say, which costs every Node start a
 * certificate file's parse) must not leak into them.
 */
const SERVICE_ENV = { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" };
/** Where named network namespaces are mounted (containerd's sandboxes' among them). */
const NETNS_DIR = "/var/run/netns";
/** The pause process: waits for its end, reaps what it inherits; exits 0 on TERM or INT. */
const PAUSE_ENTRYPOINT = [
  "/bin/sh",
  "-c",
  "trap 'exit 0' TERM INT; while :; do sleep 2147483647 & wait $!; done",
];

/** One containerd: where its files are, the namespace it runs in, its CNI folders. */
export interface Containerd {
  readonly dir: string;
  /** The network namespace (a name under /var/run/netns) it runs in: the node's. */
  readonly netns: string;
  readonly socket: string;
  readonly configFile: string;
  readonly logFile: string;
  readonly pidFile: string;
  /** The CNI conflist folder (the node's /etc/cni/net.d). */
  readonly cniConfDir: string;
  /** The CNI plugin folder (the node's /opt/cni/bin): one folder, as containerd 1.6 takes it. */
  readonly cniBinDir: string;
}

/** An instance with its files in `dir`, run in `netns`; the CNI folders default to inside `dir`. */
export function containerdIn(
  dir: string,
  netns: string,
  cni: { readonly confDir?: string; readonly binDir?: string } = {},
): Containerd {
  return {
    dir,
    netns,
    socket: join(dir, "containerd.sock"),
    configFile: join(dir, "config.toml"),
    logFile: join(dir, "containerd.log"),
    pidFile: join(dir, "containerd.pid"),
    cniConfDir: cni.confDir ?? join(dir, "net.d"),
    cniBinDir: cni.binDir ?? join(dir, "cni-bin"),
  };
}

/** containerd's config: its folders, the CRI plugin with runc (cgroupfs), native snapshots. */
function configText(c: Containerd): string {
  const cri = 'plugins."io.containerd.grpc.v1.cri"';
  return `version = 2
root = "${join(c.dir, "root")}"
state = "${join(c.dir, "state")}"
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = "${c.socket}"

[plugins."io.containerd.internal.v1.opt"]
  path = "${join(c.dir, "opt")}"

[${cri}]
  sandbox_image = "${PAUSE_IMAGE}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  disable_apparmor = true
  restrict_oom_score_adj = true
  [${cri}.containerd]
    snapshotter = "native"
    default_runtime_name = "runc"
    [${cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [${cri}.containerd.runtimes.runc.options]
        SystemdCgroup = false
  [${cri}.cni]
    bin_dir = "${c.cniBinDir}"
    conf_dir = "${c.cniConfDir}"
    max_conf_num = 1
`;
}

/**
 * Fills the CNI bin folder with links to the machine's standard plugins, next to what is there
 * already (the flannel plugin `flannelctl cni install` put there is kept).
 */
export async function linkStandardPlugins(binDir: string): Promise<void> {
  await mkdir(binDir, { recursive: true });
  const present = new Set(await readdir(binDir));
  for (const name of await readdir(SYSTEM_CNI_DIR))
    if (!present.has(name)) await symlink(join(SYSTEM_CNI_DIR, name), join(binDir, name));
}

/** The last lines of the instance's log, for an error message. */
async function logTail(c: Containerd): Promise<string> {
  const text = await readFile(c.logFile, "utf8").catch(() => "");
  return text.trimEnd().split("\n").slice(-6).join("\n");
}

/**
 * Starts the instance (its config written first) and resolves with its pid once its CRI
 * answers Version; rejects with its log's end when it exits or does not answer in 30 s.
 */
export async function startContainerd(c: Containerd): Promise<number> {
  await mkdir(c.dir, { recursive: true });
  await mkdir(c.cniConfDir, { recursive: true });
  await mkdir(c.cniBinDir, { recursive: true });
  await writeFile(c.configFile, configText(c));
  const pid = await startDetached(
    ["nsenter", `--net=/var/run/netns/${c.netns}`, "containerd", "--config", c.configFile],
    c,
    SERVICE_ENV,
  );
  const client = new CriClient(c.socket, 2_000);
  try {
    await eventually(
      async () => {
        if ((await livePid(c.pidFile)) === null)
          throw new Error(
            `containerd in ${c.netns} exited at start; the end of ${c.logFile}:\n${await logTail(c)}`,
          );
        await client.version();
      },
      { timeoutMs: 30_000, intervalMs: 100 },
    );
  } catch (err) {
    await stopContainerd(c, "SIGKILL");
    throw new Error(
      `containerd in ${c.netns} did not answer on ${c.socket}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  } finally {
    client.close();
  }
  return pid;
}

/** Signals the instance and resolves once it has exited (SIGKILL after 10 s). Its pods live on. */
export async function stopContainerd(
  c: Containerd,
  signal: NodeJS.Signals = "SIGTERM",
): Promise<void> {
  await killPidFile(c.pidFile, signal);
}

/**
 * Readies an instance for pods: the standard plugins linked into its CNI bin folder, the
 * instance started, the pause image (made in `imageDir` once) imported.
 */
export async function startForPods(c: Containerd, imageDir: string): Promise<void> {
  await linkStandardPlugins(c.cniBinDir);
  await startContainerd(c);
  await importImage(c, await pauseImageArchive(imageDir));
}

/** Imports an image archive into the CRI's namespace (k8s.io), unpacked for its snapshotter. */
export async function importImage(c: Containerd, archive: string): Promise<void> {
  await run("ctr", [
    ...["--address", c.socket, "--namespace", "k8s.io"],
    ...["images", "import", "--snapshotter", "native", archive],
  ]);
}

/** The pause image's archive in `dir` (made once): busybox-static's sh and sleep. */
export async function pauseImageArchive(dir: string): Promise<string> {
  const archive = join(dir, "pause.oci.tar");
  if (
    await stat(archive).then(
      () => true,
      () => false,
    )
  )
    return archive;
  const root = join(dir, "pause-root");
  await writeBusyboxRoot(root, ["sh", "sleep"]);
  await writeOciArchive(
    { name: PAUSE_IMAGE, rootDir: root, entrypoint: PAUSE_ENTRYPOINT },
    archive,
  );
  return archive;
}

/** Stops and removes every sandbox the instance has (each one's CNI DEL runs); quiet when none. */
export async function removeAllSandboxes(c: Containerd): Promise<void> {
  if ((await livePid(c.pidFile)) === null) return;
  const client = new CriClient(c.socket, 30_000);
  try {
    const sandboxes = await client.listPodSandbox();
    await Promise.all(sandboxes.map((s) => client.stopAndRemove(s.id)));
  } finally {
    client.close();
  }
}

/** Ends an instance and everything of it: its sandboxes (through the CNI DEL), itself, leftovers. */
export async function endContainerd(c: Containerd): Promise<void> {
  await removeAllSandboxes(c).catch(() => undefined);
  await stopContainerd(c);
  await killLeftovers(c);
}

/**
 * Kills what the instance leaves when it is killed rather than asked: its shims (whose command
 * lines name its socket), the sandboxes' processes under them, the sandboxes' network
 * namespaces (the /var/run/netns/cni-* mounts of the namespaces those processes were in), and
 * its mounts (each sandbox's shm and rootfs).
 */
export async function killLeftovers(c: Containerd): Promise<void> {
  const processes = await listProcesses();
  const shims = processes.filter(
    (p) =>
      p.cmdline.startsWith("/usr/bin/containerd-shim") && p.cmdline.includes(`\0${c.socket}\0`),
  );
  const shimPids = new Set(shims.map((p) => p.pid));
  const sandboxes = processes.filter((p) => shimPids.has(p.ppid));
  const namespaces = new Set<number>();
  for (const p of sandboxes) {
    const ns = await stat(`/proc/${p.pid}/ns/net`).catch(() => null);
    if (ns !== null) namespaces.add(ns.ino);
  }
  for (const p of [...sandboxes, ...shims]) {
    try {
      process.kill(p.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  for (const name of await readdir(NETNS_DIR).catch(() => [] as string[])) {
    if (!name.startsWith("cni-")) continue;
    const mount = await stat(join(NETNS_DIR, name)).catch(() => null);
    if (mount !== null && namespaces.has(mount.ino)) await run("ip", ["netns", "delete", name]);
  }
  await unmountUnder(c.dir);
}

/** Unmounts what is mounted under `dir` (a sandbox's shm, its rootfs), deepest first. */
async function unmountUnder(dir: string): Promise<void> {
  const mountinfo = await readFile("/proc/self/mountinfo", "utf8");
  const points = mountinfo
    .split("\n")
    .map((line) => line.split(" ")[4] ?? "")
    .filter((point) => point.startsWith(`${dir}/`))
    .sort()
    .reverse();
  for (const point of points) await run("umount", ["--lazy", point]).catch(() => undefined);
}

interface ProcessEntry {
  readonly pid: number;
  readonly ppid: number;
  /** Its arguments, each followed by a NUL. */
  readonly cmdline: string;
}

/** Every process on the machine: pid, parent, command line. */
async function listProcesses(): Promise<ProcessEntry[]> {
  const found: ProcessEntry[] = [];
  for (const entry of await readdir("/proc")) {
    const pid = Number(entry);
    if (!(pid > 0)) continue;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
    const statLine = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
    const ppid = Number(statLine.slice(statLine.lastIndexOf(")") + 2).split(" ")[1]);
    found.push({ pid, ppid, cmdline });
  }
  return found;
}
