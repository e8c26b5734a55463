/**
 * A host built by hand the way flannel (Go) builds one on vxlan, on a lab's bridge: its own
 * namespace, `flannel.1` made by iproute2 with a fixed MAC, a `cni0` bridge holding the pod
 * gateway address, and, for each peer, the neighbour, FDB entry and route flannel (Go) writes.
 * The tests use it to show that flannel-ts and flannel share a network.
 */
import type { Lab, LabPod } from "../../lab/cluster.js";
import { addNetns, execIn, ip } from "../../lab/netns.js";

/** A hand-made flannel (Go) host on vxlan. */
export interface HandHost extends BareHost {
  readonly mac: string;
  /** Dual-stack: its IPv6 side, flannel-v6.1 and cni0's IPv6 address. */
  readonly v6: {
    readonly publicIP: string;
    readonly subnet: string;
    readonly mac: string;
    readonly pod: LabPod;
  } | null;
  /** Dual-stack: programs a peer's IPv6 side as flannel (Go) does, on flannel-v6.1. */
  addPeer6(peer: {
    readonly subnet: string;
    readonly mac: string;
    readonly publicIP: string;
  }): Promise<void>;
  /** Programs a peer as flannel (Go) does from its lease: neighbour, FDB, onlink route. */
  addPeer(peer: {
    readonly subnet: string;
    readonly mac: string;
    readonly publicIP: string;
  }): Promise<void>;
}

/** A host on the lab's bridge with no flannel device yet: eth0, forwarding, a cni0 bridge. */
export interface BareHost {
  readonly netns: string;
  readonly publicIP: string;
  /** Its subnet's first address, 10.244.<index>.0. */
  readonly subnet: string;
  /** Its gateway address as a pod the lab's ping helpers can aim at. */
  readonly pod: LabPod;
}

/**
 * Builds the namespace of host `h<index>` (public IP 10.250.0.<index>) with a cni0 bridge holding
 * 10.244.<index>.1/24, the way the CNI plugin leaves a flannel host.
 */
export async function buildBareHost(lab: Lab, index: number): Promise<BareHost> {
  const netns = `${lab.name}-h${index}`;
  const publicIP = `10.250.0.${index}`;
  const subnet = `10.244.${index}.0`;
  await addNetns(netns);
  await ip(
    ["link", "add", "eth0", "type", "veth", "peer", "name", `h${index}`, "netns", lab.hub],
    netns,
  );
  await ip(["link", "set", `h${index}`, "master", "br0", "up"], lab.hub);
  await ip(["addr", "add", `${publicIP}/24`, "dev", "eth0"], netns);
  await ip(["link", "set", "eth0", "up"], netns);
  await execIn(netns, "sysctl", ["-qw", "net.ipv4.ip_forward=1"]);
  await ip(["link", "add", "cni0", "type", "bridge"], netns);
  await ip(["addr", "add", `10.244.${index}.1/24`, "dev", "cni0"], netns);
  await ip(["link", "set", "cni0", "up"], netns);
  return {
    netns,
    publicIP,
    subnet,
    pod: { name: `h${index}`, netns, node: `h${index}`, ip: `10.244.${index}.1` },
  };
}

/** A VXLAN device as flannel (Go) makes it: VNI 1, port 8472, no learning, on eth0; up. */
async function addVxlan(
  netns: string,
  name: string,
  mac: string,
  local: string,
  mtu: number,
): Promise<void> {
  await ip(
    [
      ...["link", "add", name, "address", mac, "type", "vxlan", "id", "1", "local", local],
      ...["dev", "eth0", "dstport", "8472", "nolearning"],
    ],
    netns,
  );
  await ip(["link", "set", name, "mtu", String(mtu), "up"], netns);
}

/**
 * Builds the host `h<index>` with subnet 10.244.<index>.0/24 on the lab's bridge, on vxlan; with
 * `mac6`, dual-stack as flannel (Go) builds it: flannel-v6.1 (local fd00:250::<index>, MTU
 * 1430), fd00:10:244:<index>::/128 on it, fd00:10:244:<index>::1/64 on cni0.
 */
export async function buildHandHost(
  lab: Lab,
  index: number,
  mac: string,
  mac6: string | null = null,
): Promise<HandHost> {
  const { netns, publicIP, subnet, pod } = await buildBareHost(lab, index);
  await addVxlan(netns, "flannel.1", mac, publicIP, 1450);
  await ip(["addr", "add", `${subnet}/32`, "dev", "flannel.1"], netns);
  const hex = index.toString(16);
  const v6 =
    mac6 === null
      ? null
      : {
          publicIP: `fd00:250::${hex}`,
          subnet: `fd00:10:244:${hex}::`,
          mac: mac6,
          pod: { name: `h${index}`, netns, node: `h${index}`, ip: `fd00:10:244:${hex}::1` },
        };
  if (v6 !== null) {
    await execIn(netns, "sysctl", ["-qw", "net.ipv6.conf.all.forwarding=1"]);
    await ip(["addr", "add", `${v6.publicIP}/64`, "dev", "eth0", "nodad"], netns);
    await addVxlan(netns, "flannel-v6.1", v6.mac, v6.publicIP, 1430);
    await ip(["addr", "add", `${v6.subnet}/128`, "dev", "flannel-v6.1", "nodad"], netns);
    await ip(["addr", "add", `${v6.pod.ip}/64`, "dev", "cni0", "nodad"], netns);
  }
  const program = async (
    device: string,
    peer: { readonly subnet: string; readonly mac: string; readonly publicIP: string },
    prefixLen: number,
  ) => {
    await ip(
      ["neigh", "replace", peer.subnet, "lladdr", peer.mac, "dev", device, "nud", "permanent"],
      netns,
    );
    await execIn(netns, "bridge", [
      "fdb",
      "replace",
      peer.mac,
      "dev",
      device,
      "dst",
      peer.publicIP,
      "self",
      "permanent",
    ]);
    await ip(
      [
        "route",
        "replace",
        `${peer.subnet}/${prefixLen}`,
        "via",
        peer.subnet,
        "dev",
        device,
        "onlink",
      ],
      netns,
    );
  };
  return {
    netns,
    publicIP,
    subnet,
    mac,
    pod,
    v6,
    addPeer6: (peer) => program("flannel-v6.1", peer, 64),
    addPeer: (peer) => program("flannel.1", peer, 24),
  };
}

/** Whether the hand-made host reaches a pod, from its pod gateway address. */
export async function handHostReaches(host: BareHost, pod: LabPod): Promise<boolean> {
  return execIn(host.netns, "ping", ["-c", "1", "-W", "2", "-I", host.pod.ip, pod.ip]).then(
    () => true,
    () => false,
  );
}
