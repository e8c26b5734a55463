/** The wireguard backend's entry in the backend table. */
import type { BackendDescriptor } from "../backend.js";
import { parseWireGuardConfig } from "./config.js";
import { createWireGuardBackend, inspectWireGuard } from "./wireguard.js";

export const wireGuardBackend: BackendDescriptor = {
  type: "wireguard",
  configure(backend) {
    const options = parseWireGuardConfig(backend);
    return {
      create: (deps) => createWireGuardBackend(deps, options),
      inspect: inspectWireGuard(options),
    };
  },
  lab: { dualStack: true, encrypts: true },
};
