/**
 * A flannel cluster on one machine, for the lab, tests and benches.
 *
 * Design: every lab has a hub namespace `<name>-hub` holding a bridge (`br0`, 10.250.0.1/24, the
 * hosts' shared L2 segment) and etcd: one member on 10.250.0.1, or three on 10.250.0.1-3, each
 * on port 2379. Each host is a namespace `<name>-h<N>` whose `eth0` is one end of a veth pair;
 * the other end (`h<N>`) sits in the hub on the bridge. Hosts get 10.250.0.<10+N>/24, a default
 * route via the hub and IPv4 forwarding. Pods are namespaces `<name>-h<N>p<K>` wired by
 * bin/flannel, run in their host's namespace as a container runtime would. Link names live
 * inside the lab's namespaces, so two labs never collide, and nothing of a lab is in the root
 * namespace: `down` kills its processes, deletes its namespaces and its state folder.
 *
 * With `datastore: "kube"` (`lab up --kube`) the hub runs the Kubernetes API double
 * (lab/kubeapi/) on 10.250.0.1:6443 instead of etcd, also on a Unix socket in the state
 * folder so that the lab's own commands reach it from the root namespace. The lab then plays
 * kube-controller-manager's node IPAM (a Node per host, `spec.podCIDR` 10.244.<N>.0/24) and
 * the kubelet's downward API (`NODE_NAME`), and net-conf.json is a file, as the DaemonSet
 * mounts it.
 *
 * Processes (etcd or the API double, flanneld) run detached, with logs and pid files in the state folder
 * (`/run/flannel-ts/lab/<name>`, or $FLANNEL_TS_LAB_DIR), so they outlive the command that
 * started them. `lab.json` there records what the lab was built with.
 */
import { cp, mkdir, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { BACKEND_TYPES } from "../src/backend/registry.js";
import { FlannelError } from "../src/errors.js";
import { waitFor } from "./poll.js";
import { REPO_ROOT } from "../src/util/repo_root.js";
import { etcdArgs } from "./etcd_server.js";
import { labKube, registerPod, registersPods, startProbeAgent, unregisterPod } from "./kubelet.js";
import type { PolicyRule } from "./kubeapi/rbac.js";
import { addNetns, deleteNetns, execIn, ip, listNetns, run, withOwnWireguardDir } from "./netns.js";
import {
  installCniFromImage,
  removeFlanneldContainers,
  removePodContainers,
  runPodContainer,
  setUpFlanneldContainers,
  setUpPodman,
  startFlanneldContainer,
} from "./podman.js";
import {
  addSandboxPod,
  removeSandboxPod,
  setUpContainerd,
  tearDownContainerd,
} from "./containerd_pods.js";
import { LAB_RUNTIMES } from "./lab_model.js";
import { killPidFile, livePid, startDetachedIn } from "./detached.js";
import type {
  Lab,
  LabDatastore,
  LabFamilies,
  LabNode,
  LabPod,
  LabPodIdentity,
  LabRuntime,
} from "./lab_model.js";

export type {
  Lab,
  LabDatastore,
  LabFamilies,
  LabNode,
  LabPod,
  LabPodIdentity,
  LabRuntime,
} from "./lab_model.js";

/** The repository root (bin/ lives there), from dist/lab. */
export { REPO_ROOT };
const STATE_ROOT = process.env.FLANNEL_TS_LAB_DIR ?? "/run/flannel-ts/lab";
const HUB_ADDRESS = "10.250.0.1";
/** The hub's IPv6 address; host N has fd00:250::<10+N> (every lab host has IPv6 on its eth0). */
const HUB_ADDRESS6 = "fd00:250::1";
/** The IPv6 pod network of `--dual-stack` labs (IPv6SubnetLen defaults to 64). */
export const LAB_IPV6_NETWORK = "fd00:10:244::/56";

/**
 * No duplicate address detection in a lab namespace: addresses are unique by construction, and
 * DAD would hold each new IPv6 address (the pods', cni0's) unusable for a second or two.
 */
async function noDad(netns: string): Promise<void> {
  await execIn(netns, "sysctl", [
    "-qw",
    "net.ipv6.conf.all.accept_dad=0",
    "net.ipv6.conf.default.accept_dad=0",
  ]);
}
const KUBE_API_PORT = 6443;

/** What `lab up` builds. */
export interface LabSpec {
  readonly name: string;
  readonly nodes: number;
  readonly backend: string;
  /** Pods per host, wired with bin/flannel. */
  readonly pods?: number;
  /** etcd members in the hub: 1 or 3. */
  readonly etcdMembers?: 1 | 3;
  /** The flannel network config; a default one for the backend when absent. */
  readonly networkConfig?: string;
  /** Extra flanneld flags, e.g. --ip-masq. */
  readonly flanneldArgs?: readonly string[];
  /** etcd (the default) or Kubernetes mode on the API double. */
  readonly datastore?: LabDatastore;
  /** Kubernetes mode: hosts whose Node gets no pod CIDR at first (names such as "h3"). */
  readonly withoutPodCIDR?: readonly string[];
  /**
   * Kubernetes mode: flanneld runs as kube-flannel's ServiceAccount, with a token and these
   * ClusterRole rules, through a kubeconfig file; the API double refuses what they do not allow.
   * Hosts named in `podIdentity` find their node as a DaemonSet pod without NODE_NAME does:
   * POD_NAME and POD_NAMESPACE, and a Pod object bound to the node.
   */
  /**
   * How pods run: namespaces wired by calling bin/flannel (the default), podman containers, or
   * containerd's CRI sandboxes.
   */
  readonly runtime?: LabRuntime;
  /** flanneld from flannel-ts's image (npm run image), as the DaemonSet's pod runs it. */
  readonly flanneldInContainer?: boolean;
  readonly kubeServiceAccount?: {
    readonly rules: readonly PolicyRule[];
    readonly podIdentity: readonly string[];
  };
}

/** The ServiceAccount user the lab's double knows flanneld as. */
export const FLANNEL_SERVICE_ACCOUNT = "system:serviceaccount:kube-flannel:flannel";
const SERVICE_ACCOUNT_TOKEN = "flannel-ts-lab-service-account-token";

/** What lab.json records. */
interface LabState {
  readonly name: string;
  readonly nodes: number;
  readonly backend: string;
  readonly pods: number;
  readonly etcdMembers: 1 | 3;
  readonly flanneldArgs: readonly string[];
  readonly datastore?: LabDatastore;
  readonly podIdentity?: readonly string[] | null;
  readonly families?: LabFamilies;
  readonly runtime?: LabRuntime;
  readonly flanneldInContainer?: boolean;
}

/** The families a network config enables (EnableIPv4 defaults to true, EnableIPv6 to false). */
export function familiesOf(networkConfig: string): LabFamilies {
  const config = JSON.parse(networkConfig) as { EnableIPv4?: unknown; EnableIPv6?: unknown };
  const v6 = config.EnableIPv6 === true;
  if (config.EnableIPv4 === false) return "ipv6";
  return v6 ? "dual" : "ipv4";
}

/** Progress lines, for a terminal or a log. */
export type Progress = (step: string) => void;

function validateName(name: string): void {
  if (!/^[a-z][a-z0-9-]{0,19}$/.test(name)) {
    throw new RangeError(
      `Invalid lab name "${name}": expected lower-case letters, digits and dashes, 1 to 20 characters, starting with a letter`,
    );
  }
}

function memberAddress(member: number): string {
  return `10.250.0.${member}`;
}

function labOf(state: LabState): Lab {
  validateName(state.name);
  const dir = join(STATE_ROOT, state.name);
  const members = Array.from({ length: state.etcdMembers }, (_, i) => i + 1);
  return {
    name: state.name,
    dir,
    hub: `${state.name}-hub`,
    backend: state.backend,
    podsPerNode: state.pods,
    etcdEndpoint: members.map((m) => `http://${memberAddress(m)}:2379`).join(","),
    etcdMembers: state.etcdMembers,
    flanneldArgs: state.flanneldArgs,
    nodes: Array.from({ length: state.nodes }, (_, i) => nodeOf(state.name, dir, i + 1)),
    datastore: state.datastore ?? "etcd",
    kubeApiUrl: `http://${HUB_ADDRESS}:${KUBE_API_PORT}`,
    kubeApiSocket: join(dir, "kubeapi", "api.sock"),
    netConfPath: join(dir, "net-conf.json"),
    podIdentity: state.podIdentity ?? null,
    families: state.families ?? "ipv4",
    runtime: state.runtime ?? "netns",
    flanneldInContainer: state.flanneldInContainer === true,
  };
}

export { labKube };

/** The pod CIDR the lab's node IPAM gives host number `index`. */
export function labPodCIDR(index: number): string {
  return `10.244.${index}.0/24`;
}

/** The IPv6 pod CIDR the lab's node IPAM gives host number `index` (dual-stack, IPv6-only). */
export function labPodCIDR6(index: number): string {
  return `fd00:10:244:${index.toString(16)}::/64`;
}

/** The pod CIDRs of host `index`, as node IPAM lists them in spec.podCIDRs. */
function labPodCIDRs(lab: Lab, index: number): string[] {
  if (lab.families === "ipv6") return [labPodCIDR6(index)];
  if (lab.families === "dual") return [labPodCIDR(index), labPodCIDR6(index)];
  return [labPodCIDR(index)];
}

function nodeOf(lab: string, dir: string, index: number): LabNode {
  const name = `h${index}`;
  return {
    name,
    netns: `${lab}-${name}`,
    address: `10.250.0.${10 + index}`,
    address6: `fd00:250::${10 + index}`,
    subnetFile: join(dir, name, "subnet.env"),
    logFile: join(dir, name, "flanneld.log"),
    pidFile: join(dir, name, "flanneld.pid"),
  };
}

async function saveState(lab: Lab): Promise<void> {
  const state: LabState = {
    name: lab.name,
    nodes: lab.nodes.length,
    backend: lab.backend,
    pods: lab.podsPerNode,
    etcdMembers: lab.etcdMembers === 3 ? 3 : 1,
    flanneldArgs: lab.flanneldArgs,
    datastore: lab.datastore,
    podIdentity: lab.podIdentity,
    families: lab.families,
    runtime: lab.runtime,
    flanneldInContainer: lab.flanneldInContainer,
  };
  await writeFile(join(lab.dir, "lab.json"), `${JSON.stringify(state)}\n`);
}

/** Finds a host by name (`h2`). */
export function findNode(lab: Lab, name: string): LabNode {
  const node = lab.nodes.find((n) => n.name === name);
  if (node === undefined) {
    throw new RangeError(
      `Cannot find host "${name}" in lab "${lab.name}": its hosts are ${lab.nodes.map((n) => n.name).join(", ")}`,
    );
  }
  return node;
}

/**
 * The extension backend's sample (docs/extension.md shows it): host-gw's routes made by the
 * operator's commands, with each host's eth0 MAC as its BackendData.
 */
export const EXTENSION_SAMPLE_BACKEND = {
  Type: "extension",
  PreStartupCommand: "cat /sys/class/net/eth0/address",
  PostStartupCommand: 'echo "this host has $SUBNET of $NETWORK, public IP $PUBLIC_IP"',
  SubnetAddCommand: "read mac && ip route replace $SUBNET via $PUBLIC_IP dev eth0",
  SubnetRemoveCommand: "ip route del $SUBNET via $PUBLIC_IP dev eth0",
  CommandTimeout: 10,
} as const;

/** A lab's network config's Backend object for a backend type (the sample, for extension). */
export function labBackendObject(backend: string): Readonly<Record<string, unknown>> {
  return backend === "extension" ? EXTENSION_SAMPLE_BACKEND : { Type: backend };
}

/** The default network config of a lab. */
export function defaultNetworkConfig(backend: string): string {
  return JSON.stringify({ Network: "10.244.0.0/16", Backend: labBackendObject(backend) });
}

/** Runs etcdctl in the lab's hub, against every member. */
export async function labEtcdctl(lab: Lab, args: readonly string[]): Promise<string> {
  return execIn(lab.hub, "etcdctl", [
    "--endpoints",
    lab.etcdEndpoint,
    "--dial-timeout",
    "2s",
    ...args,
  ]);
}

/** Writes the double's users (the ServiceAccount's token and rules) and flanneld's kubeconfig. */
async function writeServiceAccount(lab: Lab, rules: readonly PolicyRule[]): Promise<void> {
  await mkdir(join(lab.dir, "kubeapi"), { recursive: true });
  await writeFile(
    join(lab.dir, "kubeapi", "users.json"),
    JSON.stringify({ [SERVICE_ACCOUNT_TOKEN]: { name: FLANNEL_SERVICE_ACCOUNT, rules } }),
  );
  await writeFile(
    join(lab.dir, "kubeconfig"),
    JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "lab", cluster: { server: lab.kubeApiUrl } }],
      users: [{ name: "flannel", user: { token: SERVICE_ACCOUNT_TOKEN } }],
      contexts: [{ name: "lab", context: { cluster: "lab", user: "flannel" } }],
      "current-context": "lab",
    }),
  );
}

/** Where the lab writes a kubeconfig for the real kubectl, pointed at the API double. */
export function kubectlConfigPath(lab: Lab): string {
  return join(lab.dir, "kubectl.kubeconfig");
}

/** How to run kubectl against the lab's API double: in the hub, where it listens. */
export function kubectlHint(lab: Lab): string {
  return `ip netns exec ${lab.hub} kubectl --kubeconfig ${kubectlConfigPath(lab)} get nodes`;
}

/** A kubeconfig for kubectl as the lab's administrator (the double lets the admin do anything). */
async function writeKubectlConfig(lab: Lab): Promise<void> {
  await writeFile(
    kubectlConfigPath(lab),
    JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "flannel-ts-lab", cluster: { server: lab.kubeApiUrl } }],
      users: [{ name: "admin", user: {} }],
      contexts: [{ name: "lab", context: { cluster: "flannel-ts-lab", user: "admin" } }],
      "current-context": "lab",
    }),
  );
}

/** Builds the hub: namespace, bridge, etcd members. */
async function upHub(
  lab: Lab,
  progress: Progress,
  serviceAccount?: LabSpec["kubeServiceAccount"],
): Promise<void> {
  progress(`hub namespace ${lab.hub} with bridge br0 (${HUB_ADDRESS}/24)`);
  await addNetns(lab.hub);
  await ip(["link", "add", "br0", "type", "bridge"], lab.hub);
  await ip(["addr", "add", `${HUB_ADDRESS}/24`, "dev", "br0"], lab.hub);
  await ip(["addr", "add", `${HUB_ADDRESS6}/64`, "dev", "br0", "nodad"], lab.hub);
  for (let m = 2; m <= lab.etcdMembers; m++)
    await ip(["addr", "add", `${memberAddress(m)}/24`, "dev", "br0"], lab.hub);
  await ip(["link", "set", "br0", "up"], lab.hub);
  if (lab.datastore === "kube") {
    if (serviceAccount !== undefined) await writeServiceAccount(lab, serviceAccount.rules);
    await startKubeApi(lab);
    await writeKubectlConfig(lab);
    progress(`Kubernetes API double on ${lab.kubeApiUrl} (and ${lab.kubeApiSocket})`);
    progress(`kubectl: ${kubectlHint(lab)}`);
    return;
  }
  for (const m of etcdMembersOf(lab)) await startEtcdMember(lab, m);
  progress(
    `etcd: ${lab.etcdMembers} member${lab.etcdMembers > 1 ? "s" : ""} on ${lab.etcdEndpoint}`,
  );
  await waitForEtcd(lab);
}

const etcdMembersOf = (lab: Lab) => Array.from({ length: lab.etcdMembers }, (_, i) => i + 1);

/** Starts etcd member `m` of the lab in the hub (its data under the lab's state folder). */
export async function startEtcdMember(lab: Lab, m: number): Promise<void> {
  const cluster = etcdMembersOf(lab)
    .map((i) => `m${i}=http://${memberAddress(i)}:2380`)
    .join(",");
  const dir = join(lab.dir, "etcd", `m${m}`);
  await mkdir(dir, { recursive: true });
  const address = memberAddress(m);
  await startDetachedIn(
    lab.hub,
    "etcd",
    etcdArgs({
      name: `m${m}`,
      dataDir: join(dir, "data"),
      listenClientUrls: `http://${address}:2379${m === 1 ? ",http://127.0.0.1:2379" : ""}`,
      clientUrl: `http://${address}:2379`,
      peerUrl: `http://${address}:2380`,
      cluster,
    }),
    { logFile: join(dir, "etcd.log"), pidFile: join(dir, "etcd.pid") },
  );
}

/** Stops etcd member `m` (SIGKILL: as a crash); its data stays. Resolves once it is gone. */
export async function stopEtcdMember(
  lab: Lab,
  m: number,
  signal: NodeJS.Signals = "SIGKILL",
): Promise<void> {
  await killPidFile(join(lab.dir, "etcd", `m${m}`, "etcd.pid"), signal);
}

/** Resolves once the lab's etcd answers. */
export async function waitForEtcd(lab: Lab): Promise<void> {
  await waitFor(
    "etcd to answer",
    () =>
      labEtcdctl(lab, ["endpoint", "health"]).then(
        () => true,
        () => false,
      ),
    { timeoutMs: 30_000 },
  );
}

/**
 * The drill flannel users meet when etcd is rebuilt: every member stopped, its data deleted, and
 * an empty cluster started in its place (the network config is not written again: the caller
 * does that, as an operator would).
 */
export async function wipeEtcd(lab: Lab): Promise<void> {
  for (const m of etcdMembersOf(lab)) {
    const dir = join(lab.dir, "etcd", `m${m}`);
    await killPidFile(join(dir, "etcd.pid"), "SIGTERM");
    await rm(join(dir, "data"), { recursive: true, force: true });
  }
  for (const m of etcdMembersOf(lab)) await startEtcdMember(lab, m);
  await waitForEtcd(lab);
}

/** Starts (or restarts) the lab's Kubernetes API double in the hub; resolves once it answers. */
export async function startKubeApi(lab: Lab): Promise<number> {
  const dir = join(lab.dir, "kubeapi");
  await mkdir(dir, { recursive: true });
  const pid = await startDetachedIn(
    lab.hub,
    process.execPath,
    [
      join(REPO_ROOT, "dist/lab/kubeapi/main.js"),
      `--listen=${HUB_ADDRESS}:${KUBE_API_PORT}`,
      `--socket=${lab.kubeApiSocket}`,
      `--state=${join(dir, "state.json")}`,
      ...(lab.podIdentity !== null ? [`--users=${join(dir, "users.json")}`] : []),
    ],
    { logFile: join(dir, "kubeapi.log"), pidFile: join(dir, "kubeapi.pid") },
  );
  await waitFor(
    "the Kubernetes API double to answer",
    () =>
      labKube(lab)
        .listNodes()
        .then(
          () => true,
          () => false,
        ),
    { timeoutMs: 30_000 },
  );
  return pid;
}

/** Stops the lab's Kubernetes API double (SIGTERM: it saves its objects first). */
export async function stopKubeApi(lab: Lab): Promise<void> {
  await killPidFile(join(lab.dir, "kubeapi", "kubeapi.pid"), "SIGTERM");
}

/** Makes one host namespace on the bridge and starts flanneld in it. */
async function upNode(
  lab: Lab,
  node: LabNode,
  progress: Progress,
  withoutPodCIDR: readonly string[] = [],
): Promise<void> {
  await mkdir(join(lab.dir, node.name), { recursive: true });
  await addNetns(node.netns);
  await ip(
    ["link", "add", "eth0", "type", "veth", "peer", "name", node.name, "netns", lab.hub],
    node.netns,
  );
  await ip(["link", "set", node.name, "master", "br0", "up"], lab.hub);
  await noDad(node.netns);
  await ip(["addr", "add", `${node.address}/24`, "dev", "eth0"], node.netns);
  await ip(["addr", "add", `${node.address6}/64`, "dev", "eth0", "nodad"], node.netns);
  await ip(["link", "set", "eth0", "up"], node.netns);
  await ip(["route", "add", "default", "via", HUB_ADDRESS], node.netns);
  await ip(["-6", "route", "add", "default", "via", HUB_ADDRESS6], node.netns);
  await execIn(node.netns, "sysctl", [
    "-qw",
    "net.ipv4.ip_forward=1",
    "net.ipv6.conf.all.forwarding=1",
  ]);
  if (lab.datastore === "kube") {
    // kube-controller-manager's node IPAM and the kubelet's registration, played by the lab.
    const index = Number(node.name.slice(1));
    await labKube(lab).createNode({
      name: node.name,
      podCIDRs: withoutPodCIDR.includes(node.name) ? [] : labPodCIDRs(lab, index),
      internalIP: node.address,
    });
    if (lab.podIdentity?.includes(node.name) === true)
      await labKube(lab).createPod("kube-flannel", `kube-flannel-ds-${node.name}`, node.name);
  }
  if (lab.flanneldInContainer) {
    // The DaemonSet's init container: the plugin and conflist onto the host first.
    await installCniFromImage(lab, node);
    progress(`host ${node.name}: CNI plugin and conflist installed from the image`);
  }
  await startFlanneld(lab, node);
  progress(
    `host ${node.name}: namespace ${node.netns}, eth0 ${node.address}/24, flanneld started${lab.flanneldInContainer ? " in a container" : ""}`,
  );
}

/** flanneld's flags and variables on a lab host (flannelctl doctor takes the same). */
export function flanneldCommand(
  lab: Lab,
  node: LabNode,
): { readonly args: string[]; readonly env: Record<string, string> } {
  const api =
    lab.podIdentity !== null
      ? `--kubeconfig-file=${join(lab.dir, "kubeconfig")}`
      : `--kube-api-url=${lab.kubeApiUrl}`;
  const store =
    lab.datastore === "kube"
      ? ["--kube-subnet-mgr", api, `--net-config-path=${lab.netConfPath}`]
      : [`--etcd-endpoints=${lab.etcdEndpoint}`];
  // The kubelet's downward API gives the DaemonSet's flanneld its node's name, or its pod's.
  const identity =
    lab.podIdentity?.includes(node.name) === true
      ? { POD_NAME: `kube-flannel-ds-${node.name}`, POD_NAMESPACE: "kube-flannel" }
      : { NODE_NAME: node.name };
  return {
    // A health port, so that doctor can ask /readyz (a stopped flanneld is then seen).
    args: [
      ...store,
      "--iface=eth0",
      `--subnet-file=${node.subnetFile}`,
      `--healthz-port=${LAB_HEALTHZ_PORT}`,
      ...lab.flanneldArgs,
    ],
    // Each host its own WireGuard key (flannel's default path would be one for the machine).
    env: {
      ...(lab.datastore === "kube" ? identity : {}),
      WIREGUARD_KEY_FILE: join(dirname(node.subnetFile), "wgkey"),
    },
  };
}

/** The host's own folder for wireguard-go's sockets (bound over /run/wireguard for it). */
export function wireguardSocketDir(node: LabNode): string {
  return join(dirname(node.subnetFile), "wireguard");
}

/**
 * The command line that runs `cmd` as on the host itself: in its namespace (the caller's `ip
 * netns exec`), with its own /run/wireguard, whatever the backend.
 */
export function onHost(node: LabNode, cmd: string, args: readonly string[]): [string, string[]] {
  const [sh = "sh", ...rest] = withOwnWireguardDir(wireguardSocketDir(node), [cmd, ...args]);
  return [sh, rest];
}

/** `wg` as a host's flanneld sees its devices: in its mount and network namespaces. */
export async function wgOn(node: LabNode, args: readonly string[]): Promise<string> {
  const pid = await livePid(node.pidFile);
  if (pid === null) throw new Error(`flanneld does not run on ${node.name}`);
  return run("nsenter", ["-t", String(pid), "-m", "-n", "wg", ...args]);
}

/**
 * Waits until each host has a session with every other (flanneld opens the handshakes as peers
 * appear): the pods' first packets then never race two handshakes, which WireGuard sorts out
 * only after 5 s.
 */
async function waitForWireguardPeers(nodes: readonly LabNode[]): Promise<void> {
  for (const node of nodes)
    await waitFor(
      `${node.name} to have a WireGuard handshake with each of its ${nodes.length - 1} peers`,
      async () => {
        const handshakes = await wgOn(node, ["show", "flannel-wg", "latest-handshakes"]).catch(
          () => "",
        );
        const done = handshakes.split("\n").filter((l) => /\t[1-9]\d*$/.test(l));
        return done.length >= nodes.length - 1;
      },
      { timeoutMs: 30_000 },
    );
}

/** The port each lab host's flanneld serves /healthz, /readyz and /metrics on (in its namespace). */
export const LAB_HEALTHZ_PORT = 8081;

/** Starts (or restarts) flanneld on a host, with the lab's flanneld flags. */
export async function startFlanneld(lab: Lab, node: LabNode): Promise<number> {
  const { args, env } = flanneldCommand(lab, node);
  if (lab.flanneldInContainer) return startFlanneldContainer(lab, node, args, env);
  const [cmd, wrapped] = onHost(node, join(REPO_ROOT, "bin/flanneld"), args);
  return startDetachedIn(node.netns, cmd, wrapped, node, env);
}

/** Restarts flanneld on a host. */
export async function restartFlanneld(lab: Lab, node: LabNode): Promise<number> {
  return startFlanneld(lab, node);
}

export { livePid };

/** Kills a host's flanneld (SIGKILL by default, as a crash); resolves once it is gone. */
export async function killFlanneld(
  node: LabNode,
  signal: NodeJS.Signals = "SIGKILL",
): Promise<void> {
  await killPidFile(node.pidFile, signal);
}

/** Takes a host off the network, as a crash would: flanneld killed, eth0 down. */
export async function killNode(node: LabNode): Promise<void> {
  await killFlanneld(node, "SIGKILL");
  await ip(["link", "set", "eth0", "down"], node.netns);
}

/** Brings a killed host back: eth0 up, default route, flanneld started. */
export async function restartNode(lab: Lab, node: LabNode): Promise<void> {
  await killFlanneld(node, "SIGTERM");
  await ip(["link", "set", "eth0", "up"], node.netns);
  await ip(["route", "replace", "default", "via", HUB_ADDRESS], node.netns);
  const started = Date.now();
  await startFlanneld(lab, node);
  await waitForSubnetFile(node, started);
}

/** How long a restarted flanneld may take to write subnet.env. */
const RESTART_TIMEOUT_MS = 60_000;

/**
 * Waits until the host's flanneld writes subnet.env (again), or exits: then throws with the last
 * lines of its log. Only a flanneld that never does either reaches the bound.
 */
async function waitForSubnetFile(node: LabNode, sinceMs: number): Promise<void> {
  const seen = { exited: false };
  await waitFor(
    `${node.name} to write subnet.env (log: ${node.logFile})`,
    async () => {
      const written = await stat(node.subnetFile).then(
        (s) => s.mtimeMs >= sinceMs - 1_000,
        () => false,
      );
      seen.exited = !written && (await livePid(node.pidFile)) === null;
      return written || seen.exited;
    },
    { timeoutMs: RESTART_TIMEOUT_MS, intervalMs: 100 },
  );
  if (!seen.exited) return;
  const log = await readFile(node.logFile, "utf8").catch(() => "");
  const last = log.trimEnd().split("\n").slice(-8).join("\n");
  throw new FlannelError(
    `flanneld on ${node.name} exited without writing ${node.subnetFile}; the last lines of ${node.logFile}:\n${last}`,
  );
}

/** The flannel CNI config a lab host uses (flannel's cbr0 conflist entry, with the lab's paths). */
export function podNetConf(
  lab: Lab,
  node: LabNode,
  delegate: Readonly<Record<string, unknown>> = {},
): string {
  return JSON.stringify({
    cniVersion: "0.3.1",
    name: "cbr0",
    type: "flannel",
    subnetFile: node.subnetFile,
    dataDir: join(lab.dir, node.name, "cni"),
    ipam: { dataDir: join(lab.dir, node.name, "ipam") },
    delegate: { hairpinMode: true, isDefaultGateway: true, ...delegate },
  });
}

/**
 * Adds pod number `index` on a host through bin/flannel ADD, run in the host's namespace. With
 * an identity (namespace, name, labels) the pod is named after it (`x-a`); in Kubernetes mode
 * with --network-policy the lab then plays the kubelet: it registers the Pod object (with its
 * address and the e2e model's named ports) and starts the probe agent in the pod.
 */
export async function addPod(
  lab: Lab,
  node: LabNode,
  index: number,
  delegate: Readonly<Record<string, unknown>> = {},
  identity?: LabPodIdentity,
): Promise<LabPod> {
  const name =
    identity === undefined ? `${node.name}p${index}` : `${identity.namespace}-${identity.name}`;
  const wired = await wirePod(lab, node, name, delegate);
  if (!registersPods(lab)) return recordPod(lab, node, wired);
  const kube = identity ?? { namespace: "default", name, labels: { pod: name, node: node.name } };
  const pod = { ...wired, kube };
  await startProbeAgent(lab, pod);
  await registerPod(lab, pod, kube);
  return recordPod(lab, node, pod);
}

/** Removes a pod: its network as the runtime undoes it (see unwirePod), its Pod object. */
export async function removePod(lab: Lab, pod: LabPod): Promise<void> {
  const node = findNode(lab, pod.node);
  await unwirePod(lab, node, pod);
  if (pod.kube !== undefined) await unregisterPod(lab, pod.kube);
  const file = join(lab.dir, node.name, "pods.json");
  const pods = JSON.parse(await readFile(file, "utf8").catch(() => "[]")) as LabPod[];
  await writeFile(file, JSON.stringify(pods.filter((p) => p.name !== pod.name)));
}

function cniEnv(command: "ADD" | "DEL", lab: Lab, name: string, netns: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
    CNI_COMMAND: command,
    CNI_CONTAINERID: `${lab.name}-${name}`,
    CNI_NETNS: `/var/run/netns/${netns}`,
    CNI_IFNAME: "eth0",
    CNI_PATH: "/usr/lib/cni",
  };
}

/**
 * Undoes wirePod: a sandbox stopped and removed through the CRI (containerd runs the DEL), or
 * bin/flannel DEL and the pod's namespace deleted.
 */
async function unwirePod(lab: Lab, node: LabNode, pod: LabPod): Promise<void> {
  if (pod.sandbox !== undefined) return removeSandboxPod(lab, node, pod.sandbox);
  await execIn(node.netns, join(REPO_ROOT, "bin/flannel"), [], {
    input: podNetConf(lab, node),
    env: cniEnv("DEL", lab, pod.name, pod.netns),
  }).catch(() => undefined);
  await deleteNetns(pod.netns);
}

/** A pod wired by the runtime: podman's container, or a namespace and bin/flannel ADD. */
async function wirePod(
  lab: Lab,
  node: LabNode,
  name: string,
  delegate: Readonly<Record<string, unknown>>,
): Promise<LabPod> {
  if (lab.runtime === "podman") return addPodContainer(lab, node, name);
  if (lab.runtime === "containerd") return addSandboxPod(lab, node, name);
  const netns = `${lab.name}-${name}`;
  await addNetns(netns);
  await noDad(netns);
  const out = await execIn(node.netns, join(REPO_ROOT, "bin/flannel"), [], {
    input: podNetConf(lab, node, delegate),
    env: cniEnv("ADD", lab, name, netns),
  });
  const result = JSON.parse(out) as { ips?: { address?: string }[] };
  const addresses = (result.ips ?? []).map((i) => i.address?.split("/")[0] ?? "");
  const ip4 = addresses.find((a) => a.includes("."));
  const ip6 = addresses.find((a) => a.includes(":"));
  if (ip4 === undefined && ip6 === undefined)
    throw new Error(`Cannot add pod ${name}: bin/flannel gave no address: ${out}`);
  return {
    name,
    netns,
    node: node.name,
    ip: ip4 ?? ip6 ?? "",
    ...(ip6 !== undefined && ip4 !== undefined ? { ip6 } : {}),
  };
}

/** Notes a pod in its host's pods.json (listPods reads them). */
async function recordPod(lab: Lab, node: LabNode, pod: LabPod): Promise<LabPod> {
  const file = join(lab.dir, node.name, "pods.json");
  const pods = JSON.parse(await readFile(file, "utf8").catch(() => "[]")) as LabPod[];
  await writeFile(file, JSON.stringify([...pods.filter((p) => p.name !== pod.name), pod]));
  return pod;
}

/** A pod as a podman container on the host, networked by podman through the CNI plugin. */
export async function addPodContainer(lab: Lab, node: LabNode, name: string): Promise<LabPod> {
  const container = `${lab.name}-${name}`;
  const started = await runPodContainer(lab, node, container);
  const ip = started.ip ?? started.ip6;
  if (ip === null) throw new Error(`Cannot add pod ${name}: podman gave its container no address`);
  return {
    name,
    netns: started.netns,
    node: node.name,
    ip,
    ...(started.ip !== null && started.ip6 !== null ? { ip6: started.ip6 } : {}),
    container,
  };
}

/** Every pod of the lab, as recorded when they were added. */
export async function listPods(lab: Lab): Promise<LabPod[]> {
  const all: LabPod[] = [];
  for (const node of lab.nodes) {
    all.push(
      ...(JSON.parse(
        await readFile(join(lab.dir, node.name, "pods.json"), "utf8").catch(() => "[]"),
      ) as LabPod[]),
    );
  }
  return all;
}

async function waitForSubnetEnv(node: LabNode): Promise<void> {
  await waitForSubnetFile(node, 0);
}

async function addPods(lab: Lab, node: LabNode, progress: Progress): Promise<void> {
  if (lab.runtime === "podman" && lab.podsPerNode > 0) {
    await setUpPodman(lab, node, { installPlugin: !lab.flanneldInContainer });
    progress(`host ${node.name}: podman set up, its CNI network through the flannel plugin`);
  }
  if (lab.runtime === "containerd") {
    await setUpContainerd(lab, node, { installPlugin: !lab.flanneldInContainer });
    progress(
      `host ${node.name}: containerd started, its CRI networking pods through the flannel plugin`,
    );
  }
  for (let i = 1; i <= lab.podsPerNode; i++) {
    const pod = await addPod(lab, node, i);
    progress(`pod ${pod.name} on ${node.name}: ${pod.ip}`);
  }
}

/** The most hosts the address plan holds: 10.250.0.11 to 10.250.0.254 on the hub's /24. */
export const MAX_LAB_NODES = 244;

/** Builds a lab and waits until every host has its lease and its pods. */
export async function labUp(spec: LabSpec, progress: Progress): Promise<Lab> {
  if (!Number.isInteger(spec.nodes) || spec.nodes < 1 || spec.nodes > MAX_LAB_NODES) {
    throw new RangeError(
      `Cannot start a lab with ${spec.nodes} hosts: expected 1 to ${MAX_LAB_NODES} (the hosts take 10.250.0.11-254 on the hub's one /24)`,
    );
  }
  if (!BACKEND_TYPES.includes(spec.backend)) {
    throw new RangeError(
      `Cannot start a lab with backend "${spec.backend}": expected one of ${BACKEND_TYPES.join(", ")}`,
    );
  }
  const lab = labOf({
    name: spec.name,
    nodes: spec.nodes,
    backend: spec.backend,
    pods: spec.pods ?? 0,
    etcdMembers: spec.etcdMembers ?? 1,
    flanneldArgs: spec.flanneldArgs ?? [],
    datastore: spec.datastore ?? "etcd",
    podIdentity: spec.kubeServiceAccount?.podIdentity ?? null,
    families: familiesOf(spec.networkConfig ?? defaultNetworkConfig(spec.backend)),
    runtime: spec.runtime ?? "netns",
    flanneldInContainer: spec.flanneldInContainer === true,
  });
  if ((await labNamespaces(lab.name)).length > 0) {
    throw new Error(
      `Cannot start lab "${lab.name}": it is already up: run "flannelctl lab down --name ${lab.name}" first`,
    );
  }
  await rm(lab.dir, { recursive: true, force: true });
  await mkdir(lab.dir, { recursive: true });
  await saveState(lab);
  try {
    if (lab.flanneldInContainer) await setUpFlanneldContainers(lab);
    await upHub(lab, progress, spec.kubeServiceAccount);
    const config = spec.networkConfig ?? defaultNetworkConfig(spec.backend);
    if (lab.datastore === "kube") await writeFile(lab.netConfPath, config);
    else await labEtcdctl(lab, ["put", "/coreos.com/network/config", config]);
    progress(`network config: ${config}`);
    const waiting = spec.withoutPodCIDR ?? [];
    for (const node of lab.nodes) await upNode(lab, node, progress, waiting);
    for (const node of lab.nodes) if (!waiting.includes(node.name)) await waitForSubnetEnv(node);
    progress("every host has its lease and subnet.env");
    if (lab.backend === "wireguard") {
      await waitForWireguardPeers(lab.nodes.filter((n) => !waiting.includes(n.name)));
      progress("every host has a WireGuard session with every other");
    }
    for (const node of lab.nodes)
      if (!waiting.includes(node.name)) await addPods(lab, node, progress);
    return lab;
  } catch (err) {
    // The lab goes, its files stay (logs, state) for a person to read: in a folder of their own.
    const kept = `${lab.dir}.failed`;
    await rm(kept, { recursive: true, force: true });
    await cp(lab.dir, kept, { recursive: true }).catch(() => undefined);
    await labDown(lab.name, () => undefined);
    const message = (err as Error).message.replaceAll(lab.dir, kept);
    throw new FlannelError(
      `${message}\nThe lab was taken down; its logs and files are kept in ${kept}`,
      { cause: err },
    );
  }
}

/** Adds one more host (with the lab's pods per host) to a running lab. */
export async function addNode(lab: Lab, progress: Progress): Promise<{ lab: Lab; node: LabNode }> {
  const node = nodeOf(lab.name, lab.dir, lab.nodes.length + 1);
  const grown: Lab = { ...lab, nodes: [...lab.nodes, node] };
  await saveState(grown);
  await upNode(grown, node, progress);
  await waitForSubnetEnv(node);
  await addPods(grown, node, progress);
  return { lab: grown, node };
}

/**
 * Kubernetes mode: deletes a host's Node object, as `kubectl delete node` does when a machine
 * leaves the cluster, and stops its flanneld (its DaemonSet pod goes with the Node). The
 * peers drop its routes; the host's namespace stays for `lab down`.
 */
export async function deleteNode(lab: Lab, node: LabNode): Promise<void> {
  if (lab.datastore !== "kube") {
    throw new RangeError(
      `Cannot delete the Node of ${node.name}: lab "${lab.name}" keeps its leases in etcd: delete-node is for a lab started with --kube`,
    );
  }
  await killFlanneld(node, "SIGTERM");
  await labKube(lab).deleteNode(node.name);
}

/** Reads a running lab's layout; null when there is none. */
export async function readLab(name: string): Promise<Lab | null> {
  validateName(name);
  try {
    const state = JSON.parse(
      await readFile(join(STATE_ROOT, name, "lab.json"), "utf8"),
    ) as Partial<LabState>;
    return labOf({
      name,
      nodes: state.nodes ?? 0,
      backend: state.backend ?? "vxlan",
      pods: state.pods ?? 0,
      etcdMembers: state.etcdMembers === 3 ? 3 : 1,
      flanneldArgs: state.flanneldArgs ?? [],
      datastore: state.datastore === "kube" ? "kube" : "etcd",
      families: state.families ?? "ipv4",
      runtime: LAB_RUNTIMES.find((r) => r === state.runtime) ?? "netns",
      flanneldInContainer: state.flanneldInContainer === true,
      podIdentity: state.podIdentity ?? null,
    });
  } catch {
    return null;
  }
}

async function killPidFiles(dir: string): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(dir, { recursive: true });
  } catch {
    return;
  }
  for (const entry of entries.filter((e) => e.endsWith(".pid"))) {
    const pid = await livePid(join(dir, entry));
    if (pid !== null) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }
}

/** The namespaces of a lab: its hub, hosts and pods, and no other lab's. */
export async function labNamespaces(name: string): Promise<string[]> {
  const own = new RegExp(`^${name}-(hub|h\\d+(p\\d+)?)$`);
  return (await listNetns(`${name}-`)).filter((netns) => own.test(netns));
}

/** Removes every namespace, process and file of a lab. Safe to run twice or after a crash. */
export async function labDown(name: string, progress: Progress): Promise<void> {
  validateName(name);
  const dir = join(STATE_ROOT, name);
  const lab = await readLab(name);
  // Containers go first, each through its CNI DEL, while the hosts' namespaces are still there.
  if (lab?.runtime === "podman")
    for (const node of lab.nodes) await removePodContainers(lab, node).catch(() => undefined);
  if (lab?.runtime === "containerd") await tearDownContainerd(lab).catch(() => undefined);
  if (lab?.flanneldInContainer === true) await removeFlanneldContainers(lab).catch(() => undefined);
  await killPidFiles(dir);
  // Pods named after their Pod object (x-a), and containerd's (cni-<uuid>), are known by the
  // hosts' pods.json only.
  const named = lab === null ? [] : (await listPods(lab)).map((p) => p.netns);
  const live = new Set(await listNetns(""));
  const pods = named.filter((netns) => live.has(netns));
  for (const netns of [...new Set([...pods, ...(await labNamespaces(name))])]) {
    progress(`deleting namespace ${netns}`);
    await deleteNetns(netns);
  }
  await rm(dir, { recursive: true, force: true });
  progress(`lab "${name}" is down`);
}
