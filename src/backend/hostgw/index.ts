/** The host-gw backend's entry in the backend table (it has no options of its own). */
import type { BackendDescriptor } from "../backend.js";
import { createHostGwBackend, inspectHostGw } from "./hostgw.js";

export const hostGwBackend: BackendDescriptor = {
  type: "host-gw",
  configure: () => ({ create: createHostGwBackend, inspect: inspectHostGw }),
  lab: { dualStack: true, encrypts: false },
};
