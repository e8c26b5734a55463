/**
 * The table of backends. Adding one is an import and a line; nothing registers itself on import.
 */
import type { NetworkConfig } from "../config/network_config.js";
import { ConfigError } from "../errors.js";
import { createAllocBackend } from "./alloc/alloc.js";
import { createHostGwBackend, inspectHostGw } from "./hostgw/hostgw.js";
import { createUdpBackend, inspectUdp, parseUdpConfig } from "./udp/udp.js";
import { createVxlanBackend, inspectVxlan, parseVxlanConfig } from "./vxlan/vxlan.js";
import type { Backend, BackendDeps, BackendFactory, PlaneInspector } from "./backend.js";

const BACKENDS = {
  vxlan: createVxlanBackend,
  "host-gw": createHostGwBackend,
  udp: createUdpBackend,
  alloc: createAllocBackend,
} as const satisfies Record<string, BackendFactory>;

/** How flannelctl doctor sees each backend's data plane (alloc programs none). */
const INSPECTORS = {
  vxlan: inspectVxlan,
  "host-gw": inspectHostGw,
  udp: inspectUdp,
  alloc: (_config, extIface) => ({
    devices: [],
    podMtu: extIface.mtu,
    serves: (lease) => lease.attrs.backendType === "alloc",
    entries: () => Promise.resolve({ wanted: new Map(), owned: new Map(), skipped: [] }),
  }),
} as const satisfies Record<keyof typeof BACKENDS, PlaneInspector>;

/** The inspector of the config's backend type (any case). */
export function inspectorFor(type: string): PlaneInspector {
  const name = type.toLowerCase();
  if (Object.hasOwn(INSPECTORS, name)) return INSPECTORS[name as keyof typeof INSPECTORS];
  throw new ConfigError(
    `Cannot inspect backend "${type}": expected one of ${BACKEND_TYPES.join(", ")}`,
  );
}

/** The backend type names flanneld accepts. */
export const BACKEND_TYPES: readonly string[] = Object.keys(BACKENDS);

/** Makes the backend named by the config's Backend.Type (any case, as flannel accepts "VXLAN"). */
export function createBackend(type: string, deps: BackendDeps): Backend {
  const name = type.toLowerCase();
  if (Object.hasOwn(BACKENDS, name)) return BACKENDS[name as keyof typeof BACKENDS](deps);
  throw new ConfigError(
    `Cannot start backend "${type}": expected one of ${BACKEND_TYPES.join(", ")}`,
  );
}

/**
 * The checks a backend makes of the network config before anything starts, so that
 * `flannelctl config validate/set` refuses what flanneld would refuse: a backend type that is
 * not built, and options the backend cannot decode.
 */
export function checkBackendConfig(config: NetworkConfig): void {
  const type = config.backendType;
  if (!Object.hasOwn(BACKENDS, type)) {
    throw new ConfigError(
      `Cannot use backend "${type}": expected one of ${BACKEND_TYPES.join(", ")}`,
    );
  }
  if (type === "vxlan") parseVxlanConfig(config.backend);
  if (type === "udp") parseUdpConfig(config.backend);
}
