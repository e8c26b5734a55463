/** The extension backend's entry in the backend table: the operator's commands on lease events. */
import type { BackendDescriptor } from "../backend.js";
import { parseExtensionConfig } from "./config.js";
import { createExtensionBackend, inspectExtension } from "./extension.js";

export const extensionBackend: BackendDescriptor = {
  type: "extension",
  configure(backend) {
    const options = parseExtensionConfig(backend);
    return {
      create: (deps) => createExtensionBackend(deps, options),
      inspect: inspectExtension(options),
      commands: options.commands,
    };
  },
  lab: { dualStack: false, encrypts: false },
};
