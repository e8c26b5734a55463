/**
 * Leases: a node's claim on a subnet, with the attributes other nodes need to reach it
 * (flannel's pkg/lease). The JSON form is flannel's LeaseAttrs, byte for byte:
 * `{"PublicIP":"192.168.1.5","PublicIPv6":null,"BackendType":"vxlan","BackendData":{...}}`.
 */
import * as z from "zod";
import { formatIssues, goJson, goJsonField } from "../config/go_json.js";
import { goJsonStringify } from "../util/go_json.js";
import { parseIPv4, parseIPv6 } from "../ip/ip.js";
import type { IPNet } from "../ip/ip.js";

/** Any JSON value, as BackendData holds one. */
export type JsonValue =
  string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** What a node says about itself in its lease. */
export interface LeaseAttrs {
  readonly publicIP: string;
  readonly publicIPv6: string | null;
  /** Empty when the backend writes none (flannel's udp and alloc). */
  readonly backendType: string;
  readonly backendData?: JsonValue;
  readonly backendV6Data?: JsonValue;
}

/**
 * A subnet (and, dual-stack, an IPv6 subnet) held by one node. On an IPv6-only network
 * (`EnableIPv4: false`, Kubernetes mode only, as in flannel) `subnet` is null and `ipv6Subnet`
 * is the lease.
 */
export interface Lease {
  readonly subnet: IPNet | null;
  readonly ipv6Subnet: IPNet | null;
  readonly attrs: LeaseAttrs;
  /** When the lease ends; null for a reservation, and when it was not read (watch events). */
  readonly expiration: Date | null;
  /** A reservation: stored without a TTL, never expires, and only its PublicIP may use it. */
  readonly reserved: boolean;
}

/** The subnet that names a lease: its IPv4 subnet, or the IPv6 one of an IPv6-only lease. */
export function primarySubnetOf(lease: Pick<Lease, "subnet" | "ipv6Subnet">): IPNet {
  const subnet = lease.subnet ?? lease.ipv6Subnet;
  if (subnet === null) throw new TypeError("A lease has neither an IPv4 nor an IPv6 subnet");
  return subnet;
}

/** A lease with an IPv4 subnet: every lease in etcd mode, where IPv6-only is not possible. */
export type IPv4Lease = Lease & { readonly subnet: IPNet };

/** Whether a lease has an IPv4 subnet (every lease but an IPv6-only one). */
export function hasIPv4(lease: Lease): lease is IPv4Lease {
  return lease.subnet !== null;
}

/** A change to the set of leases, as the subnet managers report it. */
export interface LeaseEvent {
  readonly type: "added" | "removed";
  readonly lease: Lease;
}

/** The identity of a lease: its subnet key (`10.244.1.0-24` or `10.244.1.0-24&fd00::-64`). */
export function leaseKeyOf(lease: Pick<Lease, "subnet" | "ipv6Subnet">): string {
  return makeSubnetKey(lease.subnet, lease.ipv6Subnet);
}

/** flannel's MakeSubnetKey; an IPv6-only lease is named by its IPv6 subnet alone. */
export function makeSubnetKey(subnet: IPNet | null, ipv6Subnet: IPNet | null): string {
  const v6 = ipv6Subnet === null ? null : `${ipv6Subnet.ipString}-${ipv6Subnet.prefixLen}`;
  if (subnet === null) return v6 ?? "";
  const v4 = `${subnet.ipString}-${subnet.prefixLen}`;
  return v6 === null ? v4 : `${v4}&${v6}`;
}

/** Encodes lease attributes exactly as flannel's json.Marshal(LeaseAttrs) does. */
export function encodeLeaseAttrs(attrs: LeaseAttrs): string {
  let out = `{"PublicIP":${goJsonStringify(attrs.publicIP)},"PublicIPv6":${goJsonStringify(attrs.publicIPv6)}`;
  if (attrs.backendType !== "") out += `,"BackendType":${goJsonStringify(attrs.backendType)}`;
  if (attrs.backendData !== undefined)
    out += `,"BackendData":${goJsonStringify(attrs.backendData)}`;
  if (attrs.backendV6Data !== undefined)
    out += `,"BackendV6Data":${goJsonStringify(attrs.backendV6Data)}`;
  return `${out}}`;
}

const JsonValueSchema: z.ZodType<JsonValue> = z.lazy(() =>
  z.union([
    z.string(),
    z.number(),
    z.boolean(),
    z.null(),
    z.array(JsonValueSchema),
    z.record(z.string(), JsonValueSchema),
  ]),
);

const LeaseAttrsSchema = goJson({
  PublicIP: z.string().refine((s) => parseIPv4(s) !== null, "expected an IPv4 address"),
  PublicIPv6: z
    .string()
    .refine((s) => parseIPv6(s) !== null, "expected an IPv6 address")
    .optional(),
  BackendType: z.string().optional(),
  BackendData: JsonValueSchema.optional(),
  BackendV6Data: JsonValueSchema.optional(),
});

/** Decodes lease JSON as flannel writes it; keys match in any case, as in Go. Throws TypeError. */
export function decodeLeaseAttrs(text: string): LeaseAttrs {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new TypeError(`Cannot decode lease: it is not valid JSON (${(err as Error).message})`, {
      cause: err,
    });
  }
  const parsed = LeaseAttrsSchema.safeParse(json);
  if (!parsed.success) throw new TypeError(`Cannot decode lease: ${formatIssues(parsed.error)}`);
  const a = parsed.data;
  // The backend data as JSON.parse made it: a schema's copy drops keys such as "__proto__".
  const raw = json as Record<string, unknown>;
  const backendData = goJsonField(raw, "BackendData") as JsonValue | undefined;
  const backendV6Data = goJsonField(raw, "BackendV6Data") as JsonValue | undefined;
  return {
    publicIP: a.PublicIP,
    publicIPv6: a.PublicIPv6 ?? null,
    backendType: a.BackendType ?? "",
    ...(backendData !== undefined ? { backendData } : {}),
    ...(backendV6Data !== undefined ? { backendV6Data } : {}),
  };
}
