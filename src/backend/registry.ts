/**
 * The table of backends: one descriptor per backend folder, and nothing else. Adding a backend
 * is a folder with an index.ts and one line here; nothing registers itself on import.
 */
import { ConfigError } from "../errors.js";
import { allocBackend } from "./alloc/index.js";
import type { BackendDescriptor } from "./backend.js";
import { extensionBackend } from "./extension/index.js";
import { hostGwBackend } from "./hostgw/index.js";
import { udpBackend } from "./udp/index.js";
import { vxlanBackend } from "./vxlan/index.js";
import { wireGuardBackend } from "./wireguard/index.js";

/** Every backend flanneld builds. */
export const BACKENDS: readonly BackendDescriptor[] = [
  vxlanBackend,
  hostGwBackend,
  udpBackend,
  allocBackend,
  wireGuardBackend,
  extensionBackend,
];

/** The backend type names flanneld accepts. */
export const BACKEND_TYPES: readonly string[] = BACKENDS.map((b) => b.type);

/** The backend the config's Backend.Type names (any case, as flannel accepts "VXLAN"). */
export function backendFor(type: string): BackendDescriptor {
  const found = BACKENDS.find((b) => b.type === type.toLowerCase());
  if (found !== undefined) return found;
  throw new ConfigError(
    `Cannot use backend "${type}": expected one of ${BACKEND_TYPES.join(", ")}`,
  );
}
