/**
 * `flannelctl cni install`: puts the plugin in the CNI bin folder and flannel's standard conflist
 * (the `cbr0` network of kube-flannel.yml) in the CNI config folder. Only those two files are
 * written, each atomically; nothing else in either folder is touched.
 */
import { join, resolve } from "node:path";
import { writeFileAtomic } from "../util/atomic_write.js";

/** flannel's conflist, as kube-flannel.yml ships it. */
export const FLANNEL_CONFLIST = {
  name: "cbr0",
  cniVersion: "0.3.1",
  plugins: [
    { type: "flannel", delegate: { hairpinMode: true, isDefaultGateway: true } },
    { type: "portmap", capabilities: { portMappings: true } },
  ],
};

/** The conflist's file name, as flannel's manifests use it. */
export const CONFLIST_FILE = "10-flannel.conflist";

/** Where install puts things. */
export interface InstallOptions {
  readonly binDir: string;
  readonly confDir: string;
}

/** Writes the plugin launcher and the conflist; resolves with the two paths. */
export async function installCni(
  options: InstallOptions,
): Promise<{ plugin: string; conflist: string }> {
  const entry = resolve(import.meta.dirname, "../cli/flannel.js");
  // A launcher with absolute paths: runtimes start plugins with a minimal PATH.
  const launcher = `#!${process.execPath}\n// flannel-ts CNI plugin, installed by flannelctl cni install\nimport(${JSON.stringify(entry)});\n`;
  const plugin = join(options.binDir, "flannel");
  const conflist = join(options.confDir, CONFLIST_FILE);
  await writeFileAtomic(plugin, launcher, { mode: 0o755 });
  await writeFileAtomic(conflist, `${JSON.stringify(FLANNEL_CONFLIST, null, 2)}\n`, {
    mode: 0o644,
  });
  return { plugin, conflist };
}
