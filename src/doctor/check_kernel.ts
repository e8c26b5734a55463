/**
 * Doctor's kernel checks: forwarding, br_netfilter, rp_filter and TX checksum offload on the
 * flannel devices, the CNI bridge's and pods' MTU, and flannel's masquerade and forward rules.
 */
import type { ExpectedDevice } from "../backend/backend.js";
import { setTxChecksumOffload, txChecksumOffload } from "../net/ethtool.js";
import { readSysctl, setDeviceSysctl, writeSysctl } from "../net/sysctl.js";
import { flannelRulesFor } from "../trafficmngr/traffic_manager.js";
import { finding } from "./finding.js";
import type { CheckGroup, Finding } from "./finding.js";
import type { HostView } from "./host_view.js";

/** The CNI bridge flannel's CNI plugin asks for (the `bridge` plugin's default name). */
export const CNI_BRIDGE = "cni0";

const readSysctlOf = (view: HostView, path: string) => readSysctl(path, view.procDir);

function sysctlName(path: string): string {
  return path.replaceAll("/", ".");
}

/** A sysctl that must hold `want`; its fix writes it. */
function sysctlFinding(
  view: HostView,
  check: string,
  path: string,
  want: string,
  why: string,
): Finding | null {
  const value = readSysctlOf(view, path);
  if (value === null || value === want) return null;
  const name = sysctlName(path);
  return finding(
    check,
    "error",
    name,
    `${name} is ${value}, expected ${want}`,
    why,
    `sysctl -w ${name}=${want}`,
    () => {
      writeSysctl(path, want, view.procDir);
    },
  );
}

/**
 * Whether the kernel has the VXLAN checksum bug of flannel issues #1279/#2152 (SNATed VXLAN
 * packets get a bad UDP checksum with TX checksum offload on: 63 s stalls of service traffic):
 * fixed in Linux 5.7 (commit ea64d8d6c675, "netfilter: nat: never update the UDP checksum when
 * it's 0"); distribution kernels older than that may carry the fix, so this is a warning.
 */
export function hasVxlanChecksumBug(release: string): boolean {
  const match = /^(\d+)\.(\d+)/.exec(release);
  if (match === null) return false;
  const [major, minor] = [Number(match[1]), Number(match[2])];
  return major < 5 || (major === 5 && minor < 7);
}

/** Forwarding, br_netfilter, rp_filter and checksum offload. */
export function checkKernelSettings(view: HostView): CheckGroup {
  const { config, inspection } = view;
  const findings: (Finding | null)[] = [];
  const crossHost = "pod traffic between hosts is dropped";
  if (config.enableIPv4)
    findings.push(sysctlFinding(view, "ip-forward-off", "net/ipv4/ip_forward", "1", crossHost));
  if (config.enableIPv6)
    findings.push(
      sysctlFinding(view, "ip-forward-off", "net/ipv6/conf/all/forwarding", "1", crossHost),
    );
  if (!config.enableNFTables) findings.push(...bridgeNetfilterFindings(view));
  for (const device of inspection?.devices ?? []) {
    if (device.address?.includes(":") === true) continue; // rp_filter is IPv4's
    findings.push(rpFilterFinding(view, device), txChecksumFinding(view, device));
  }
  return { name: "kernel", findings: findings.filter((f) => f !== null) };
}

/** iptables mode: br_netfilter loaded, and bridged traffic sent through iptables. */
function bridgeNetfilterFindings(view: HostView): (Finding | null)[] {
  const { config } = view;
  const families = [
    ...(config.enableIPv4 ? ["iptables"] : []),
    ...(config.enableIPv6 ? ["ip6tables"] : []),
  ];
  const findings: (Finding | null)[] = [];
  for (const family of families) {
    const path = `net/bridge/bridge-nf-call-${family}`;
    if (readSysctlOf(view, path) === null) {
      findings.push(
        finding(
          "br-netfilter-missing",
          "error",
          "br_netfilter",
          `the br_netfilter module is not loaded (${view.procDir}/sys/${path} does not exist)`,
          "flanneld refuses to start in iptables mode, and bridged pod traffic bypasses iptables (kube-proxy's service rules)",
          'modprobe br_netfilter && echo br_netfilter > /etc/modules-load.d/br_netfilter.conf (or set "EnableNFTables": true)',
        ),
      );
    } else {
      findings.push(
        sysctlFinding(
          view,
          "bridge-nf-call-off",
          path,
          "1",
          "traffic between pods on one bridge bypasses iptables: services and policies fail for it",
        ),
      );
    }
  }
  return findings;
}

/** Strict reverse-path filtering on a backend's device. */
function rpFilterFinding(view: HostView, device: ExpectedDevice): Finding | null {
  const all = Number(readSysctlOf(view, "net/ipv4/conf/all/rp_filter") ?? "0");
  const own = readSysctlOf(view, `net/ipv4/conf/${device.name}/rp_filter`);
  if (own === null) return null; // the device is missing: said elsewhere
  const strictness = Math.max(all, Number(own));
  if (strictness !== 1) return null;
  return finding(
    "rp-filter-strict",
    "warning",
    device.name,
    `strict reverse-path filtering (rp_filter ${strictness}) on ${device.name}`,
    "packets from pods whose replies route another way (DirectRouting, several interfaces) are dropped as martians",
    `sysctl -w net.ipv4.conf.${device.name}.rp_filter=2`,
    () => {
      setDeviceSysctl(device.name, "rp_filter", "2", 4, view.procDir);
    },
  );
}

/** TX checksum offload on a VXLAN device of a kernel with the checksum bug. */
function txChecksumFinding(view: HostView, device: ExpectedDevice): Finding | null {
  if (device.kind !== "vxlan" || !hasVxlanChecksumBug(view.kernelRelease)) return null;
  let on = false;
  try {
    on = txChecksumOffload(device.name);
  } catch {
    return null;
  }
  if (!on) return null;
  return finding(
    "vxlan-tx-checksum",
    "warning",
    device.name,
    `TX checksum offload is on, and kernel ${view.kernelRelease} (before 5.7) may have the VXLAN checksum bug`,
    "SNATed VXLAN packets get bad checksums and are dropped: service traffic stalls for about 63 s (flannel issues #1279, #2152)",
    `ethtool -K ${device.name} tx-checksum-ip-generic off`,
    () => {
      setTxChecksumOffload(device.name, false);
      return Promise.resolve();
    },
  );
}

/** The CNI bridge and the pods' host-side interfaces against FLANNEL_MTU. */
export async function checkPodMtu(view: HostView): Promise<CheckGroup> {
  const mtu = view.inspection?.podMtu;
  if (mtu === undefined) return { name: "pods", findings: [], skipped: "no lease" };
  const links = await view.netlink.listLinks();
  const bridge = links.find((l) => l.name === CNI_BRIDGE);
  // The pods' host-side interfaces (the bridge plugin names them veth...).
  const podLinks = links.filter((l) => l.kind === "veth" && l.name.startsWith("veth"));
  if (bridge === undefined && podLinks.length === 0)
    return { name: "pods", findings: [], skipped: `no ${CNI_BRIDGE} yet, and no pod` };
  if (bridge === undefined) {
    const names = podLinks.map((l) => l.name);
    return {
      name: "pods",
      findings: [
        finding(
          "cni-bridge-missing",
          "error",
          CNI_BRIDGE,
          `${CNI_BRIDGE} is missing, but ${names.length} pod interface(s) exist (${names.slice(0, 5).join(", ")}${names.length > 5 ? ", ..." : ""})`,
          "those pods are on no bridge: they reach nothing, and nothing reaches them",
          "delete and recreate those pods: the CNI plugin makes the bridge again at the first ADD",
        ),
      ],
    };
  }
  const findings: Finding[] = [];
  const why =
    "pods send packets larger than the overlay carries: pings pass, large transfers stall";
  if (bridge.mtu > mtu) {
    findings.push(
      finding(
        "cni-bridge-mtu",
        "error",
        CNI_BRIDGE,
        `MTU ${bridge.mtu}, larger than FLANNEL_MTU ${mtu}`,
        why,
        `ip link set ${CNI_BRIDGE} mtu ${mtu}, then recreate the pods (their MTU is set when they start)`,
      ),
    );
  }
  for (const link of podLinks) {
    if (link.mtu <= mtu) continue;
    findings.push(
      finding(
        "pod-mtu",
        "error",
        link.name,
        `pod interface MTU ${link.mtu}, larger than FLANNEL_MTU ${mtu}`,
        why,
        "recreate the pod: its MTU came from a subnet.env that said otherwise",
      ),
    );
  }
  return { name: "pods", findings };
}

/** flannel's masquerade and FORWARD rules, as flanneld's flags ask for them. */
export async function checkTrafficRules(view: HostView): Promise<CheckGroup> {
  const { own, options, config, traffic } = view;
  if (own === null) return { name: "rules", findings: [], skipped: "no lease" };
  const randomFully =
    options.ipMasq && !options.ipMasqFullyRandomDisable && (await traffic.supportsRandomFully());
  const rules = flannelRulesFor(options, config, own.subnet, own.ipv6Subnet, randomFully);
  const wanted = [rules.masq, rules.forward, rules.masq6, rules.forward6].some((r) => r != null);
  if (!wanted || (await traffic.check(rules))) return { name: "rules", findings: [] };
  const what = [
    ...(rules.masq != null || rules.masq6 != null ? ["masquerade"] : []),
    ...(rules.forward != null || rules.forward6 != null ? ["FORWARD accept"] : []),
  ].join(" and ");
  return {
    name: "rules",
    findings: [
      finding(
        "traffic-rules",
        "error",
        `${traffic.mode} rules`,
        `flannel's ${what} rules are missing or out of order`,
        rules.masq != null
          ? "pods' traffic to outside the network leaves unmasqueraded and its replies never come back"
          : "the FORWARD policy drops pod traffic between hosts",
        await traffic.fixCommand(rules),
        () => traffic.apply(rules),
      ),
    ],
  };
}
