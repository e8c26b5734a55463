/**
 * What a lab is made of (its hosts, its files, its modes), apart from the code that builds it, so
 * that cluster.ts and the modules it uses (podman.ts) share the types without importing each
 * other.
 */

/** Where a lab keeps its leases: etcd, or Node objects in the Kubernetes API double. */
export type LabDatastore = "etcd" | "kube";

/** One host of a lab. */
export interface LabNode {
  readonly name: string;
  readonly netns: string;
  readonly address: string;
  /** Its IPv6 address on the hub segment (fd00:250::<10+N>). */
  readonly address6: string;
  readonly subnetFile: string;
  readonly logFile: string;
  readonly pidFile: string;
}

/** Where a lab keeps its files, and its names. */
export interface Lab {
  readonly name: string;
  readonly dir: string;
  readonly hub: string;
  readonly backend: string;
  readonly podsPerNode: number;
  /** etcd client URLs, comma-separated, as flanneld's --etcd-endpoints takes them. */
  readonly etcdEndpoint: string;
  readonly etcdMembers: number;
  readonly flanneldArgs: readonly string[];
  readonly nodes: readonly LabNode[];
  readonly datastore: LabDatastore;
  /** Kubernetes mode: the API double's URL, as flanneld's --kube-api-url takes it. */
  readonly kubeApiUrl: string;
  /** Kubernetes mode: the API double's Unix socket, for the lab's own commands. */
  readonly kubeApiSocket: string;
  /** Kubernetes mode: the network config file (net-conf.json). */
  readonly netConfPath: string;
  /** Kubernetes mode with a ServiceAccount: the hosts that find their node through their pod. */
  readonly podIdentity: readonly string[] | null;
  /** The IP families of the pod network, from the network config. */
  readonly families: LabFamilies;
  /** How its pods run. */
  readonly runtime: LabRuntime;
  /** Whether flanneld runs from flannel-ts's image, in a container per host. */
  readonly flanneldInContainer: boolean;
}

/**
 * How a lab's pods run: namespaces wired by calling the plugin, containers podman starts, or
 * sandboxes containerd's CRI makes, with the lab playing the kubelet.
 */
export type LabRuntime = "netns" | "podman" | "containerd";

/** The runtimes, as `lab up --runtime` takes them. */
export const LAB_RUNTIMES: readonly LabRuntime[] = ["netns", "podman", "containerd"];

/** Which IP families a lab's pod network has. */
export type LabFamilies = "ipv4" | "dual" | "ipv6";

/** What a pod is in the Kubernetes API (`lab up --kube --network-policy`). */
export interface LabPodIdentity {
  readonly namespace: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
}

/** A pod: a namespace wired by bin/flannel on its host. */
export interface LabPod {
  readonly name: string;
  readonly netns: string;
  readonly node: string;
  /** Its IPv4 address (its IPv6 one on an IPv6-only network). */
  readonly ip: string;
  /** Its IPv6 address on a dual-stack network. */
  readonly ip6?: string;
  /** The podman container, in a lab with runtime podman. */
  readonly container?: string;
  /** The CRI sandbox's id, in a lab with runtime containerd. */
  readonly sandbox?: string;
  /** Its Pod object, when the lab registers pods (Kubernetes mode with --network-policy). */
  readonly kube?: LabPodIdentity;
}
