/**
 * flannel's network config (pkg/subnet/config.go): the JSON stored at `<prefix>/config` in etcd or
 * in net-conf.json for the kube manager.
 *
 * `parseNetworkConfig` is flannel's ParseConfig (decoding only, what kube mode uses) and
 * `checkNetworkConfig` is CheckNetworkConfig (defaults and rules, etcd mode). Error texts after the
 * colon are flannel's, because operators search for them. One rule is ours: SubnetMin must not be
 * above SubnetMax (flannel accepts that config and then fails every lease with "out of subnets").
 */
import * as z from "zod";
import { ConfigError } from "../errors.js";
import { networkConfigWarnings } from "./config_warnings.js";
import { IPNet, formatIP, parseIPv4, parseIPv6 } from "../ip/ip.js";
import type { IPFamily } from "../ip/ip.js";
import { formatIssues, goJson, goJsonField } from "./go_json.js";

function cidrOf(family: IPFamily, example: string) {
  return z
    .string({ error: `expected an IPv${family} CIDR string such as "${example}"` })
    .transform((text, ctx) => {
      const net = IPNet.parse(text);
      if (net === null || net.family !== family) {
        ctx.addIssue({
          code: "custom",
          message: `"${text}" is not an IPv${family} CIDR such as "${example}"`,
        });
        return z.NEVER;
      }
      return net;
    });
}

function addressOf(family: IPFamily, example: string) {
  return z
    .string({ error: `expected an IPv${family} address string such as "${example}"` })
    .transform((text, ctx) => {
      const value = family === 4 ? parseIPv4(text) : parseIPv6(text);
      if (value === null) {
        ctx.addIssue({
          code: "custom",
          message: `"${text}" is not an IPv${family} address such as "${example}"`,
        });
        return z.NEVER;
      }
      return value;
    });
}

const prefixLength = z
  .number({ error: "expected a prefix length (a whole number)" })
  .int("expected a prefix length (a whole number)")
  .min(0, "expected a prefix length of 0 or more");

const BackendSchema = z
  .record(z.string(), z.unknown(), { error: 'expected an object such as {"Type": "vxlan"}' })
  .superRefine((backend, ctx) => {
    const type = goJsonField(backend, "Type");
    if (typeof type !== "string" || type === "") {
      ctx.addIssue({ code: "custom", message: 'expected a "Type" string such as "vxlan"' });
    }
  });

/** The decoded JSON, keys matched as Go does. Defaults are flannel's ParseConfig defaults. */
const NetworkConfigJsonSchema = goJson({
  Network: cidrOf(4, "10.244.0.0/16").optional(),
  IPv6Network: cidrOf(6, "fd00:10:244::/56").optional(),
  EnableIPv4: z.boolean({ error: "expected true or false" }).default(true),
  EnableIPv6: z.boolean({ error: "expected true or false" }).default(false),
  EnableNFTables: z.boolean({ error: "expected true or false" }).default(false),
  SubnetLen: prefixLength.optional(),
  SubnetMin: addressOf(4, "10.244.1.0").optional(),
  SubnetMax: addressOf(4, "10.244.255.0").optional(),
  IPv6SubnetLen: prefixLength.optional(),
  IPv6SubnetMin: addressOf(6, "fd00:10:244:1::").optional(),
  IPv6SubnetMax: addressOf(6, "fd00:10:244:ff::").optional(),
  // No Backend means udp, as in flannel's code (its docs say vxlan). Options are the backend's.
  Backend: BackendSchema.default({ Type: "udp" }),
});

/** The range subnets are leased from, for one address family. */
export interface SubnetRange {
  readonly network: IPNet;
  readonly subnetLen: number;
  /** Network address of the lowest subnet that may be leased. */
  readonly subnetMin: bigint;
  /** Network address of the highest subnet that may be leased. */
  readonly subnetMax: bigint;
}

/** A decoded network config. `ipv4`/`ipv6` are set by checkNetworkConfig (etcd mode). */
export interface NetworkConfig {
  readonly enableIPv4: boolean;
  readonly enableIPv6: boolean;
  readonly enableNFTables: boolean;
  readonly network: IPNet | null;
  readonly ipv6Network: IPNet | null;
  /** As given in the JSON; 0 when absent. */
  readonly subnetLen: number;
  readonly ipv6SubnetLen: number;
  readonly subnetMin: bigint | null;
  readonly subnetMax: bigint | null;
  readonly ipv6SubnetMin: bigint | null;
  readonly ipv6SubnetMax: bigint | null;
  /** `Backend.Type` lower-cased, as flannel's backend manager uses it. */
  readonly backendType: string;
  /** The Backend object as given; each backend decodes its own options. */
  readonly backend: Readonly<Record<string, unknown>>;
  /** Keys that are ignored but look like mistakes (config_warnings.ts), to be shown. */
  readonly warnings: readonly string[];
  /**
   * The ranges leases are taken from, each family's with its SubnetLen, once checkNetworkConfig
   * has checked them (etcd mode); null as parsed (Kubernetes mode: node IPAM picks the subnets,
   * and flannel checks no SubnetLen there).
   */
  readonly leaseRanges: LeaseRanges | null;
}

/** Each family's lease range; null for a family the config does not enable. */
export interface LeaseRanges {
  readonly ipv4: SubnetRange | null;
  readonly ipv6: SubnetRange | null;
}

/** A network config that passed checkNetworkConfig: the lease ranges are known. */
export interface CheckedNetworkConfig extends NetworkConfig {
  readonly leaseRanges: LeaseRanges;
}

/** Decodes network config JSON (flannel's ParseConfig): keys in any case, unknown keys ignored. */
export function parseNetworkConfig(text: string): NetworkConfig {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(
      `Cannot load network config: it is not valid JSON (${(err as Error).message})`,
      {
        cause: err,
      },
    );
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new ConfigError(
      'Cannot load network config: expected a JSON object such as {"Network": "10.244.0.0/16"}',
    );
  }
  const parsed = NetworkConfigJsonSchema.safeParse(json);
  if (!parsed.success) {
    throw new ConfigError(`Cannot load network config: ${formatIssues(parsed.error)}`, {
      cause: parsed.error,
    });
  }
  const c = parsed.data;
  const type = goJsonField(c.Backend, "Type") as string;
  return {
    enableIPv4: c.EnableIPv4,
    enableIPv6: c.EnableIPv6,
    enableNFTables: c.EnableNFTables,
    network: c.Network ?? null,
    ipv6Network: c.IPv6Network ?? null,
    subnetLen: c.SubnetLen ?? 0,
    ipv6SubnetLen: c.IPv6SubnetLen ?? 0,
    subnetMin: c.SubnetMin ?? null,
    subnetMax: c.SubnetMax ?? null,
    ipv6SubnetMin: c.IPv6SubnetMin ?? null,
    ipv6SubnetMax: c.IPv6SubnetMax ?? null,
    backendType: type.toLowerCase(),
    backend: c.Backend,
    warnings: networkConfigWarnings(json),
    leaseRanges: null,
  };
}

interface FamilyRules {
  readonly family: IPFamily;
  readonly networkKey: string;
  readonly maxSubnetLen: number;
  readonly maxNetworkPrefix: number;
  readonly defaultSubnetLen: number;
  readonly tooSmall: string;
  readonly minKey: string;
  readonly maxKey: string;
}

const IPV4_RULES: FamilyRules = {
  family: 4,
  networkKey: "Network",
  maxSubnetLen: 30,
  maxNetworkPrefix: 28,
  defaultSubnetLen: 24,
  tooSmall: "network is too small. Minimum useful network prefix is /28",
  minKey: "SubnetMin",
  maxKey: "SubnetMax",
};

const IPV6_RULES: FamilyRules = {
  family: 6,
  networkKey: "IPv6Network",
  maxSubnetLen: 126,
  maxNetworkPrefix: 124,
  defaultSubnetLen: 64,
  tooSmall: "IPv6Network is too small. Minimum useful network prefix is /124",
  minKey: "IPv6SubnetMin",
  maxKey: "IPv6SubnetMax",
};

function invalid(reason: string): ConfigError {
  return new ConfigError(`Invalid network config: ${reason}`);
}

function checkRange(
  rules: FamilyRules,
  network: IPNet | null,
  given: { subnetLen: number; min: bigint | null; max: bigint | null },
): SubnetRange {
  if (network === null || (network.ip === 0n && network.prefixLen === 0)) {
    throw invalid(`please define a correct ${rules.networkKey} parameter in the flannel config`);
  }
  let subnetLen = given.subnetLen;
  if (subnetLen > 0) {
    if (subnetLen > rules.maxSubnetLen)
      throw invalid(`SubnetLen must be less than /${rules.maxSubnetLen + 1}`);
    if (subnetLen < network.prefixLen + 2)
      throw invalid("network must be able to accommodate at least four subnets");
  } else if (network.prefixLen > rules.maxNetworkPrefix) {
    throw invalid(rules.tooSmall);
  } else if (network.prefixLen <= rules.defaultSubnetLen - 2) {
    subnetLen = rules.defaultSubnetLen;
  } else {
    subnetLen = network.prefixLen + 2;
  }
  const size = 1n << BigInt(network.bits - subnetLen);
  const inNetwork = (key: string, value: bigint) => {
    if (!network.contains(value))
      throw invalid(`${key} is not in the range of the ${rules.networkKey}`);
    return value;
  };
  // The first subnet is skipped: an interface holding the network address itself causes trouble.
  const subnetMin =
    given.min === null || given.min === 0n ? network.ip + size : inNetwork(rules.minKey, given.min);
  const subnetMax =
    given.max === null || given.max === 0n
      ? network.next().ip - size
      : inNetwork(rules.maxKey, given.max);
  for (const [key, value] of [
    [rules.minKey, subnetMin],
    [rules.maxKey, subnetMax],
  ] as const) {
    if (value % size !== 0n) {
      throw invalid(`${key} is not on a SubnetLen boundary: ${formatIP(rules.family, value)}`);
    }
  }
  if (subnetMin > subnetMax) {
    throw invalid(
      `${rules.minKey} ${formatIP(rules.family, subnetMin)} is above ${rules.maxKey} ${formatIP(rules.family, subnetMax)}: expected ${rules.minKey} <= ${rules.maxKey}`,
    );
  }
  return { network, subnetLen, subnetMin, subnetMax };
}

/** Applies flannel's CheckNetworkConfig: subnet length, SubnetMin and SubnetMax with their rules. */
export function checkNetworkConfig(config: NetworkConfig): CheckedNetworkConfig {
  const ipv4 = config.enableIPv4
    ? checkRange(IPV4_RULES, config.network, {
        subnetLen: config.subnetLen,
        min: config.subnetMin,
        max: config.subnetMax,
      })
    : null;
  const ipv6 = config.enableIPv6
    ? checkRange(IPV6_RULES, config.ipv6Network, {
        subnetLen: config.ipv6SubnetLen,
        min: config.ipv6SubnetMin,
        max: config.ipv6SubnetMax,
      })
    : null;
  return { ...config, leaseRanges: { ipv4, ipv6 } };
}

/** Decodes and checks a config in one step, as the etcd subnet manager does. */
export function loadNetworkConfig(text: string): CheckedNetworkConfig {
  return checkNetworkConfig(parseNetworkConfig(text));
}

/** The normalized config as one JSON object with flannel's field names (`flannelctl config validate`). */
export function networkConfigToJson(config: CheckedNetworkConfig): Record<string, unknown> {
  const v4 = config.leaseRanges.ipv4;
  const v6 = config.leaseRanges.ipv6;
  return {
    Network: (v4?.network ?? config.network)?.toString() ?? null,
    SubnetLen: v4?.subnetLen ?? config.subnetLen,
    SubnetMin: v4 ? formatIP(4, v4.subnetMin) : null,
    SubnetMax: v4 ? formatIP(4, v4.subnetMax) : null,
    EnableIPv4: config.enableIPv4,
    EnableIPv6: config.enableIPv6,
    IPv6Network: (v6?.network ?? config.ipv6Network)?.toString() ?? null,
    IPv6SubnetLen: v6?.subnetLen ?? config.ipv6SubnetLen,
    IPv6SubnetMin: v6 ? formatIP(6, v6.subnetMin) : null,
    IPv6SubnetMax: v6 ? formatIP(6, v6.subnetMax) : null,
    EnableNFTables: config.enableNFTables,
    BackendType: config.backendType,
    Backend: config.backend,
  };
}
