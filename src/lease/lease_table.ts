/** How flannelctl shows leases: a table for people, JSON for scripts. */
import type { Lease } from "./lease.js";
import { leaseKeyOf } from "./lease.js";
import { formatTable } from "../util/table.js";

/** One lease as flannelctl prints it in JSON. */
export interface LeaseJson {
  readonly subnet: string | null;
  readonly ipv6Subnet: string | null;
  readonly publicIP: string;
  readonly publicIPv6: string | null;
  readonly backendType: string;
  readonly backendData: unknown;
  readonly reserved: boolean;
  /** ISO time; null for a reservation. */
  readonly expiration: string | null;
  readonly key: string;
}

/** The JSON form of a lease. */
export function leaseToJson(lease: Lease): LeaseJson {
  return {
    subnet: lease.subnet?.toString() ?? null,
    ipv6Subnet: lease.ipv6Subnet?.toString() ?? null,
    publicIP: lease.attrs.publicIP,
    publicIPv6: lease.attrs.publicIPv6,
    backendType: lease.attrs.backendType,
    backendData: lease.attrs.backendData ?? null,
    reserved: lease.reserved,
    expiration: lease.expiration?.toISOString() ?? null,
    key: leaseKeyOf(lease),
  };
}

function expiresText(lease: Lease, now: Date): string {
  if (lease.reserved) return "never (reserved)";
  if (lease.expiration === null) return "unknown";
  const seconds = Math.max(0, Math.round((lease.expiration.getTime() - now.getTime()) / 1000));
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return `${lease.expiration.toISOString()} (in ${h}h${String(m).padStart(2, "0")}m)`;
}

/** A fixed-width table of leases, with a header line. */
export function formatLeaseTable(leases: readonly Lease[], now: Date): string {
  const rows = [
    ["SUBNET", "PUBLIC IP", "BACKEND", "EXPIRES"],
    ...leases.map((lease) => [
      [lease.subnet, lease.ipv6Subnet]
        .filter((n) => n !== null)
        .map((n) => n.toString())
        .join(","),
      lease.attrs.publicIPv6
        ? `${lease.attrs.publicIP},${lease.attrs.publicIPv6}`
        : lease.attrs.publicIP,
      lease.attrs.backendType || "-",
      expiresText(lease, now),
    ]),
  ];
  return formatTable(rows) + (leases.length === 0 ? "(no leases)\n" : "");
}
