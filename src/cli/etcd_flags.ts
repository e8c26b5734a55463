/**
 * The etcd flags, one definition for flanneld and flannelctl: flannel's names, defaults and
 * `FLANNELD_*` variables, one schema that checks them, and the EtcdConfig they make.
 */
import { z } from "zod";
import { DEFAULT_ETCD_ENDPOINTS, DEFAULT_ETCD_PREFIX } from "../subnet/etcd/defaults.js";
import type { EtcdConfig } from "../subnet/etcd/registry.js";

import type { FlagSpec } from "./flag_spec.js";

/** The etcd flags, as flannel defines them. */
export const ETCD_FLAGS: readonly FlagSpec[] = [
  {
    name: "etcd-endpoints",
    kind: "string",
    default: DEFAULT_ETCD_ENDPOINTS,
    help: "a comma-delimited list of etcd endpoints",
  },
  { name: "etcd-prefix", kind: "string", default: DEFAULT_ETCD_PREFIX, help: "etcd prefix" },
  {
    name: "etcd-keyfile",
    kind: "string",
    default: "",
    help: "SSL key file used to secure etcd communication",
  },
  {
    name: "etcd-certfile",
    kind: "string",
    default: "",
    help: "SSL certification file used to secure etcd communication",
  },
  {
    name: "etcd-cafile",
    kind: "string",
    default: "",
    help: "SSL Certificate Authority file used to secure etcd communication",
  },
  { name: "etcd-username", kind: "string", default: "", help: "username for BasicAuth to etcd" },
  { name: "etcd-password", kind: "string", default: "", help: "password for BasicAuth to etcd" },
];

/** What flannel's etcd client takes: `[http[s]://]host[:port][/]`, or a `unix:` socket. */
const ETCD_ENDPOINT = /^((https?:\/\/)?[^/\s]+\/?|unix:(\/\/)?\S+)$/;

/** The schema of the etcd flags' values (camel-cased names), to spread into a larger one. */
export const ETCD_FLAG_SHAPE = {
  etcdEndpoints: z
    .string()
    .transform((s) =>
      s
        .split(",")
        .map((e) => e.trim())
        .filter((e) => e !== ""),
    )
    .refine(
      (list) => list.length > 0,
      "--etcd-endpoints: expected at least one endpoint such as http://127.0.0.1:2379",
    )
    .refine(
      (list) => list.every((e) => ETCD_ENDPOINT.test(e)),
      "--etcd-endpoints: expected a comma-delimited list such as http://10.0.0.1:2379,http://10.0.0.2:2379 (unix:///path for a socket)",
    )
    // etcd's Go client takes `http://h:2379/`; grpc wants no trailing slash.
    .transform((list) => list.map((e) => (e.startsWith("unix:") ? e : e.replace(/\/+$/, "")))),
  etcdPrefix: z
    .string()
    .startsWith(
      "/",
      "--etcd-prefix: expected a key prefix starting with / such as /coreos.com/network",
    ),
  etcdKeyfile: z.string(),
  etcdCertfile: z.string(),
  etcdCafile: z.string(),
  etcdUsername: z.string(),
  etcdPassword: z.string(),
};

/** The rule --etcd-keyfile and --etcd-certfile follow, and its message. */
export const ETCD_KEY_PAIR =
  "--etcd-keyfile and --etcd-certfile go together: give both for a client certificate, or neither";

/** Whether the key and certificate flags are both given or both absent. */
export function hasEtcdKeyPair(o: {
  readonly etcdKeyfile: string;
  readonly etcdCertfile: string;
}): boolean {
  return (o.etcdKeyfile === "") === (o.etcdCertfile === "");
}

const EtcdFlagsSchema = z.object(ETCD_FLAG_SHAPE).refine(hasEtcdKeyPair, ETCD_KEY_PAIR);

/** The etcd flags' values, checked. */
export type EtcdFlagValues = Readonly<Omit<z.infer<typeof EtcdFlagsSchema>, "etcdEndpoints">> & {
  readonly etcdEndpoints: readonly string[];
};

/** Checks raw etcd flag values; throws TypeError with every reason when they cannot be used. */
export function parseEtcdFlags(values: Readonly<Record<string, unknown>>): EtcdFlagValues {
  const parsed = EtcdFlagsSchema.safeParse(values);
  if (!parsed.success)
    throw new TypeError(`invalid flags: ${parsed.error.issues.map((i) => i.message).join("; ")}`);
  return parsed.data;
}

/** The EtcdConfig the flags describe. */
export function etcdConfigOf(flags: EtcdFlagValues): EtcdConfig {
  return {
    endpoints: [...flags.etcdEndpoints],
    prefix: flags.etcdPrefix,
    ...(flags.etcdKeyfile !== "" ? { keyFile: flags.etcdKeyfile } : {}),
    ...(flags.etcdCertfile !== "" ? { certFile: flags.etcdCertfile } : {}),
    ...(flags.etcdCafile !== "" ? { caFile: flags.etcdCafile } : {}),
    ...(flags.etcdUsername !== "" ? { username: flags.etcdUsername } : {}),
    ...(flags.etcdPassword !== "" ? { password: flags.etcdPassword } : {}),
  };
}
