/** The vxlan backend's entry in the backend table. */
import type { BackendDescriptor } from "../backend.js";
import { createVxlanBackend, inspectVxlan, parseVxlanConfig } from "./vxlan.js";

export const vxlanBackend: BackendDescriptor = {
  type: "vxlan",
  configure(backend) {
    const options = parseVxlanConfig(backend);
    return { create: (deps) => createVxlanBackend(deps, options), inspect: inspectVxlan(options) };
  },
  lab: { dualStack: true, encrypts: false },
};
