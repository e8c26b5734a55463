/** The alloc backend's entry in the backend table: it leases a subnet and programs nothing. */
import type { BackendDescriptor } from "../backend.js";
import { createAllocBackend, inspectAlloc } from "./alloc.js";

export const allocBackend: BackendDescriptor = {
  type: "alloc",
  configure: () => ({ create: createAllocBackend, inspect: inspectAlloc }),
  lab: { dualStack: true, encrypts: false },
};
