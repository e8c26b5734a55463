/** What `flannelctl lab status` shows: each host's lease, subnet.env and flanneld process. */
import { readFile } from "node:fs/promises";
import { parseEnvFile } from "../config/subnet_env.js";
import { formatTable } from "../util/table.js";
import type { Lab } from "./cluster.js";

/** One host's state. */
export interface NodeStatus {
  readonly name: string;
  readonly netns: string;
  readonly publicIP: string;
  readonly subnet: string | null;
  readonly mtu: number | null;
  readonly flanneldPid: number | null;
  readonly flanneldAlive: boolean;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Reads each host's state from its files and processes. */
export async function labStatus(lab: Lab): Promise<NodeStatus[]> {
  return Promise.all(
    lab.nodes.map(async (node) => {
      const env = parseEnvFile(await readFile(node.subnetFile, "utf8").catch(() => ""));
      const pid = Number((await readFile(node.pidFile, "utf8").catch(() => "")).trim()) || null;
      return {
        name: node.name,
        netns: node.netns,
        publicIP: node.address,
        subnet: env.get("FLANNEL_SUBNET") ?? null,
        mtu: env.has("FLANNEL_MTU") ? Number(env.get("FLANNEL_MTU")) : null,
        flanneldPid: pid,
        flanneldAlive: pid !== null && alive(pid),
      };
    }),
  );
}

/** A table of host states. */
export function formatLabStatus(nodes: readonly NodeStatus[]): string {
  const rows = [["HOST", "NAMESPACE", "PUBLIC IP", "SUBNET", "MTU", "FLANNELD"]];
  for (const n of nodes) {
    rows.push([
      n.name,
      n.netns,
      n.publicIP,
      n.subnet ?? "-",
      n.mtu === null ? "-" : String(n.mtu),
      n.flanneldAlive ? `running (pid ${n.flanneldPid ?? "?"})` : "not running",
    ]);
  }
  return formatTable(rows);
}
