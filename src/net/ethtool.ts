/**
 * The one ethtool setting flannel-ts reads and writes: a device's TX checksum offload
 * (`ethtool -k <dev>` "tx-checksumming", `ethtool -K <dev> tx off`), by SIOCETHTOOL through our
 * kernel_sockets addon.
 */
import { kernelSockets } from "../native/index.js";
import type { KernelSocketsAddon } from "../native/index.js";

const ETHTOOL_GTXCSUM = 0x16;
const ETHTOOL_STXCSUM = 0x17;

function addon(): KernelSocketsAddon {
  return kernelSockets();
}

/** Whether the device computes TX checksums in "hardware" (the kernel's offload). */
export function txChecksumOffload(device: string): boolean {
  return addon().ethtool(device, ETHTOOL_GTXCSUM, 0) !== 0;
}

/** Turns the device's TX checksum offload on or off. */
export function setTxChecksumOffload(device: string, on: boolean): void {
  addon().ethtool(device, ETHTOOL_STXCSUM, on ? 1 : 0);
}
