/**
 * subnet.env, the file flanneld writes for the CNI plugin (flannel's WriteSubnetFile) and reads
 * back at its next start to ask for the same subnet again.
 */
import { readFileSync } from "node:fs";
import { IPNet, formatIP } from "../ip/ip.js";
import { writeFileAtomic } from "../util/atomic_write.js";

/** flannel's default location of subnet.env. */
export const DEFAULT_SUBNET_FILE = "/run/flannel/subnet.env";

/** What subnet.env says. Absent families are null. */
export interface SubnetEnv {
  readonly network: IPNet | null;
  readonly subnet: IPNet | null;
  readonly ipv6Network: IPNet | null;
  readonly ipv6Subnet: IPNet | null;
  readonly mtu: number;
  readonly ipMasq: boolean;
}

/** Renders subnet.env exactly as flannel does: subnets are written as their first host address. */
export function formatSubnetEnv(env: SubnetEnv): string {
  const lines: string[] = [];
  const firstHost = (net: IPNet) => `${formatIP(net.family, net.firstHost())}/${net.prefixLen}`;
  if (env.network !== null && env.subnet !== null) {
    lines.push(
      `FLANNEL_NETWORK=${env.network.toString()}`,
      `FLANNEL_SUBNET=${firstHost(env.subnet)}`,
    );
  }
  if (env.ipv6Network !== null && env.ipv6Subnet !== null) {
    lines.push(
      `FLANNEL_IPV6_NETWORK=${env.ipv6Network.toString()}`,
      `FLANNEL_IPV6_SUBNET=${firstHost(env.ipv6Subnet)}`,
    );
  }
  lines.push(`FLANNEL_MTU=${env.mtu}`, `FLANNEL_IPMASQ=${env.ipMasq}`);
  return lines.map((line) => `${line}\n`).join("");
}

/** Writes subnet.env atomically with mode 0644, creating its folder with 0755. */
export function writeSubnetEnv(path: string, env: SubnetEnv): void {
  writeFileAtomic(path, formatSubnetEnv(env), { mode: 0o644, dirMode: 0o755 });
}

/** Parses `KEY=VALUE` lines as godotenv does: `#` comments, optional `export`, optional quotes. */
export function parseEnvFile(text: string): Map<string, string> {
  const values = new Map<string, string>();
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const match = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*(.*)$/.exec(line);
    if (match === null) continue;
    let value = (match[2] ?? "").trim();
    const quoted = /^(["'])(.*)\1$/.exec(value);
    if (quoted !== null) value = quoted[2] ?? "";
    else value = value.replace(/\s+#.*$/, "");
    values.set(match[1] ?? "", value);
  }
  return values;
}

/** The subnets a previous run leased, read from subnet.env; null for each one it does not hold. */
export interface PreviousSubnets {
  readonly subnet: IPNet | null;
  readonly ipv6Subnet: IPNet | null;
}

/**
 * Reads the previous FLANNEL_SUBNET and FLANNEL_IPV6_SUBNET. A missing or unreadable file gives
 * nulls: the previous subnet is a hint, never a requirement. A comma list is not one subnet.
 */
export function readPreviousSubnets(path: string): PreviousSubnets {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return { subnet: null, ipv6Subnet: null };
  }
  const env = parseEnvFile(text);
  const subnetOf = (key: string, family: 4 | 6) => {
    const value = env.get(key);
    if (value === undefined || value.includes(",")) return null;
    const net = IPNet.parse(value);
    return net !== null && net.family === family ? net : null;
  };
  return { subnet: subnetOf("FLANNEL_SUBNET", 4), ipv6Subnet: subnetOf("FLANNEL_IPV6_SUBNET", 6) };
}
