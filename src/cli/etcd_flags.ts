/**
 * The etcd flags, one definition for flanneld and flannelctl: flannel's names, defaults and
 * `FLANNELD_*` variables, one schema that checks them, and the EtcdConfig they make.
 */
import * as z from "zod";
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

/**
 * Why an endpoint is not one flannel's etcd client can dial; null when it is. The client takes
 * `http[s]://host[:port][/]`, `host:port` (no scheme: a port is needed), or a `unix:` socket;
 * anything else it retries forever as a name that never resolves.
 */
export function etcdEndpointProblem(endpoint: string): string | null {
  if (endpoint.startsWith("unix:"))
    return /^unix:(\/\/)?\S+$/.test(endpoint) ? null : "no socket path";
  const schemed = endpoint.includes("://");
  let url: URL;
  try {
    url = new URL(schemed ? endpoint : `http://${endpoint}`);
  } catch {
    return "not a URL";
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    return `scheme ${url.protocol} is not http or https`;
  if ((url.pathname !== "/" && url.pathname !== "") || url.search !== "" || url.hash !== "")
    return "it has a path";
  if (url.username !== "" || url.password !== "")
    return "credentials go in --etcd-username and --etcd-password";
  if (!schemed && (url.port === "" || endpoint.includes("/")))
    return "without http:// or https:// it needs host:port";
  return null;
}

const ENDPOINT_EXAMPLE =
  "expected a comma-delimited list such as http://10.0.0.1:2379,http://10.0.0.2:2379 (unix:///path for a socket)";

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
    .superRefine((list, ctx) => {
      for (const endpoint of list) {
        const problem = etcdEndpointProblem(endpoint);
        if (problem !== null)
          ctx.addIssue({
            code: "custom",
            message: `--etcd-endpoints: ${JSON.stringify(endpoint)} is not an etcd endpoint (${problem}): ${ENDPOINT_EXAMPLE}`,
          });
      }
    })
    // etcd's Go client takes `http://h:2379/`; the trailing slash is dropped.
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
