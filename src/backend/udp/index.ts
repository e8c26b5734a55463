/** The udp backend's entry in the backend table. */
import type { BackendDescriptor } from "../backend.js";
import { createUdpBackend, inspectUdp, parseUdpConfig } from "./udp.js";

export const udpBackend: BackendDescriptor = {
  type: "udp",
  configure(backend) {
    const options = parseUdpConfig(backend);
    return { create: (deps) => createUdpBackend(deps, options), inspect: inspectUdp(options) };
  },
  lab: { dualStack: false, encrypts: false },
};
