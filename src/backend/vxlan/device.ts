/**
 * The VXLAN device `flannel.<VNI>` (flannel's pkg/backend/vxlan/device.go).
 *
 * An existing device is reused when it is compatible (VNI, local address, parent, port, learning,
 * GBP), which keeps its MAC: peers' FDB and neighbour entries stay right across restarts. A new
 * device gets a MAC derived from the public IP and VNI, so that even a device recreated after a
 * reboot or by hand comes back with the same MAC (flannel users suffer stale entries on peers
 * when it changes). The MTU is set on an existing device too (flannel ignores a changed MTU,
 * its issue #1775).
 */
import { createHash } from "node:crypto";
import { ensureSubnetAddress } from "../device_address.js";
import type { DeviceAddress } from "../device_address.js";
import type { Logger } from "../../log/logger.js";
import type { Link, Netlink, VxlanInfo } from "../../net/netlink.js";

/** What the device must look like. */
export interface VxlanDeviceSpec extends VxlanInfo {
  readonly name: string;
  readonly mtu: number;
}

/** A MAC derived from the public IP and VNI: locally administered, unicast, stable. */
export function vtepMacFor(publicIP: string, vni: number): string {
  const hash = createHash("sha256").update(`flannel-ts vtep ${publicIP} ${vni}`).digest();
  const bytes = [...hash.subarray(0, 6)];
  bytes[0] = ((bytes[0] ?? 0) & 0xfe) | 0x02;
  return bytes.map((b) => b.toString(16).padStart(2, "0")).join(":");
}

function compatible(link: Link, spec: VxlanDeviceSpec): boolean {
  const vx = link.vxlan;
  return (
    link.kind === "vxlan" &&
    vx !== null &&
    vx.vni === spec.vni &&
    vx.local === spec.local &&
    vx.parentIndex === spec.parentIndex &&
    (vx.port === spec.port ||
      (vx.port === 8472 && spec.port === 0) ||
      (vx.port === 0 && spec.port === 8472)) &&
    vx.learning === spec.learning &&
    vx.gbp === spec.gbp
  );
}

/**
 * Makes sure the device exists as specified, is up, has the MTU and holds exactly one address of
 * the flannel network: `<subnet IP>/32`. Returns the link as it is now.
 */
export async function ensureVxlanDevice(
  netlink: Netlink,
  spec: VxlanDeviceSpec & { readonly publicIP: string; readonly mac?: string },
  address: DeviceAddress,
  log: Logger,
): Promise<Link> {
  let link = await netlink.getLink(spec.name);
  if (link !== null && !compatible(link, spec)) {
    log.warn(
      { device: spec.name, kind: link.kind, vxlan: link.vxlan },
      "Existing device is not compatible; recreating it",
    );
    await netlink.deleteLink(link.index);
    link = null;
  }
  if (link === null) {
    const { publicIP, mac, ...vxlan } = spec;
    link = await netlink.addVxlanLink({ ...vxlan, mac: mac ?? vtepMacFor(publicIP, spec.vni) });
    log.info({ device: spec.name, mac: link.mac, vni: spec.vni }, "Created VXLAN device");
  }
  if (link.mtu !== spec.mtu) {
    await netlink.setLinkMtu(link.index, spec.mtu);
    log.info({ device: spec.name, mtu: spec.mtu, was: link.mtu }, "Set VXLAN device MTU");
  }
  await ensureSubnetAddress(netlink, link.index, address);
  if (!link.up) await netlink.setLinkUp(link.index);
  return link;
}
