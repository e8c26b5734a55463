/** Kernel settings flanneld depends on, read from /proc/sys. */
import { readFile } from "node:fs/promises";
import type { Logger } from "../log/logger.js";

/** Reads net.ipv4.ip_forward; true when forwarding is on. */
export async function ipForwardingEnabled(): Promise<boolean> {
  try {
    return (await readFile("/proc/sys/net/ipv4/ip_forward", "utf8")).trim() === "1";
  } catch {
    return false;
  }
}

/**
 * Says clearly when the kernel does not forward IPv4: pods on other hosts are then unreachable.
 * flanneld does not change the setting itself; that is the host's policy.
 */
export async function checkIPForwarding(log: Logger): Promise<boolean> {
  const on = await ipForwardingEnabled();
  if (!on) {
    log.error(
      { sysctl: "net.ipv4.ip_forward", value: 0, fix: "sysctl -w net.ipv4.ip_forward=1" },
      "IPv4 forwarding is off: pod traffic between hosts will be dropped until net.ipv4.ip_forward=1",
    );
  }
  return on;
}
