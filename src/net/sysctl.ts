/**
 * Kernel settings flanneld depends on, read from /proc/sys. The calls are synchronous: a
 * /proc file answers at once, and flanneld's start then never needs libuv's thread pool.
 */
import { accessSync, readFileSync, writeFileSync } from "node:fs";
import { ConfigError } from "../errors.js";
import type { Logger } from "../log/logger.js";

/** A kernel setting by its path under /proc/sys (`net/ipv4/ip_forward`); null when absent. */
export function readSysctl(path: string, procDir = "/proc"): string | null {
  try {
    return readFileSync(`${procDir}/sys/${path}`, "utf8").trim();
  } catch {
    return null;
  }
}

/** Writes a kernel setting by its path under /proc/sys. */
export function writeSysctl(path: string, value: string, procDir = "/proc"): void {
  writeFileSync(`${procDir}/sys/${path}`, value);
}

/** Reads net.ipv4.ip_forward; true when forwarding is on. */
export function ipForwardingEnabled(): boolean {
  return readSysctl("net/ipv4/ip_forward") === "1";
}

/**
 * Says clearly when the kernel does not forward IPv4: pods on other hosts are then unreachable.
 * flanneld does not change the setting itself; that is the host's policy.
 */
export function checkIPForwarding(log: Logger): boolean {
  const on = ipForwardingEnabled();
  if (!on) {
    log.error(
      { sysctl: "net.ipv4.ip_forward", value: 0, fix: "sysctl -w net.ipv4.ip_forward=1" },
      "IPv4 forwarding is off: pod traffic between hosts will be dropped until net.ipv4.ip_forward=1",
    );
  }
  return on;
}

/**
 * flannel's br_netfilter check: without nftables, the iptables rules only see bridged pod
 * traffic when `net.bridge.bridge-nf-call-iptables` (and `-ip6tables` for IPv6) exists, that is
 * when the br_netfilter module is loaded. Throws ConfigError naming the file and the fix.
 * `procDir` is /proc; tests point it elsewhere.
 */
export function checkBrNetfilter(
  families: { readonly enableIPv4: boolean; readonly enableIPv6: boolean },
  procDir = "/proc",
): void {
  const wanted = [
    ...(families.enableIPv4 ? ["bridge-nf-call-iptables"] : []),
    ...(families.enableIPv6 ? ["bridge-nf-call-ip6tables"] : []),
  ];
  for (const name of wanted) {
    const path = `${procDir}/sys/net/bridge/${name}`;
    try {
      accessSync(path);
    } catch {
      throw new ConfigError(
        `Failed to check br_netfilter: stat ${path}: no such file or directory: load the module with "modprobe br_netfilter" (and list it in /etc/modules-load.d/), or set "EnableNFTables": true`,
      );
    }
  }
}

/**
 * Sets an IPv4 (or IPv6) setting of one device (`/proc/sys/net/ipv4/conf/<device>/<name>`), when
 * it differs; true when it was changed. Throws when the file cannot be written.
 */
export function setDeviceSysctl(
  device: string,
  name: string,
  value: string,
  family: 4 | 6 = 4,
  procDir = "/proc",
): boolean {
  const file = `${procDir}/sys/net/ipv${family}/conf/${device}/${name}`;
  if (readFileSync(file, "utf8").trim() === value) return false;
  writeFileSync(file, value);
  return true;
}

/**
 * NetworkPolicy between pods of one node: their packets cross only the cni0 bridge, and the
 * forward hook sees them only with `net.bridge.bridge-nf-call-iptables` (and `-ip6tables`) on,
 * as kubeadm requires. Turns them on when off (saying so); throws ConfigError naming the fix
 * when br_netfilter is not loaded.
 */
export function enableBridgeNetfilter(
  families: readonly (4 | 6)[],
  log: Logger,
  procDir = "/proc",
): void {
  for (const family of families) {
    const name = family === 4 ? "bridge-nf-call-iptables" : "bridge-nf-call-ip6tables";
    const value = readSysctl(`net/bridge/${name}`, procDir);
    if (value === null)
      throw new ConfigError(
        `Cannot enforce NetworkPolicy between pods of this node: ${procDir}/sys/net/bridge/${name} does not exist: load the module with "modprobe br_netfilter" (and list it in /etc/modules-load.d/)`,
      );
    if (value === "1") continue;
    try {
      writeSysctl(`net/bridge/${name}`, "1", procDir);
    } catch (err) {
      throw new ConfigError(
        `Cannot enforce NetworkPolicy between pods of this node: net.bridge.${name} is 0 and cannot be set here (${(err as NodeJS.ErrnoException).code ?? String(err)}): set it on the host with "sysctl -w net.bridge.${name}=1" (and in /etc/sysctl.d/), as kubeadm requires`,
        { cause: err },
      );
    }
    log.info(
      { sysctl: `net.bridge.${name}`, value: 1 },
      "Turned on bridge netfilter for NetworkPolicy",
    );
  }
}
