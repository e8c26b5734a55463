/**
 * `flannelctl cni install`: puts the plugin in the CNI bin folder and flannel's standard conflist
 * (the `cbr0` network of kube-flannel.yml) in the CNI config folder. Only those two files are
 * written, each atomically; nothing else in either folder is touched.
 *
 * The plugin is the single executable the build makes (dist/sea/flannel: Node and the plugin in
 * one file), so a host needs neither Node.js nor this repository to run it, as with flannel's
 * static Go binary.
 */
import { access, chmod, constants, copyFile, rename, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { isSea } from "node:sea";
import { FlannelError } from "../errors.js";
import { makeFolder, temporaryPathFor, writeFileAtomic } from "../util/atomic_write.js";
import { REPO_ROOT } from "../util/repo_root.js";

/**
 * The plugin's single executable: the one the build puts in dist/sea, or, run from the .deb's
 * executable, that executable itself (it is the plugin when named `flannel`).
 */
export const PLUGIN_EXECUTABLE = isSea() ? process.execPath : join(REPO_ROOT, "dist/sea/flannel");

/** flannel's conflist, as kube-flannel.yml ships it. */
export const FLANNEL_CONFLIST = {
  name: "cbr0",
  cniVersion: "0.3.1",
  plugins: [
    { type: "flannel", delegate: { hairpinMode: true, isDefaultGateway: true } },
    { type: "portmap", capabilities: { portMappings: true } },
  ],
};

/** Where the plugin keeps things, when not flannel's defaults (several hosts on one machine). */
export interface ConflistPaths {
  /** subnet.env (flannel's default: /run/flannel/subnet.env). */
  readonly subnetFile?: string;
  /** The plugin's saved delegate configs (default: /var/lib/cni/flannel). */
  readonly dataDir?: string;
  /** host-local's leases (default: /var/lib/cni/networks). */
  readonly ipamDataDir?: string;
}

/** The conflist file's text: flannel's, with the paths given (none: byte for byte flannel's). */
export function conflistText(paths: ConflistPaths = {}): string {
  const [flannel, ...rest] = FLANNEL_CONFLIST.plugins;
  const plugin = {
    ...flannel,
    ...(paths.subnetFile === undefined ? {} : { subnetFile: paths.subnetFile }),
    ...(paths.dataDir === undefined ? {} : { dataDir: paths.dataDir }),
    ...(paths.ipamDataDir === undefined ? {} : { ipam: { dataDir: paths.ipamDataDir } }),
  };
  return `${JSON.stringify({ ...FLANNEL_CONFLIST, plugins: [plugin, ...rest] }, null, 2)}\n`;
}

/** The conflist's file name, as flannel's manifests use it. */
export const CONFLIST_FILE = "10-flannel.conflist";

/** Where install puts things. */
export interface InstallOptions extends ConflistPaths {
  readonly binDir: string;
  readonly confDir: string;
}

/** Writes the plugin launcher and the conflist; resolves with the two paths. */
export async function installCni(
  options: InstallOptions,
): Promise<{ plugin: string; conflist: string }> {
  const plugin = join(options.binDir, "flannel");
  const conflist = join(options.confDir, CONFLIST_FILE);
  await copyFileAtomic(PLUGIN_EXECUTABLE, plugin);
  writeFileAtomic(conflist, conflistText(options), {
    mode: 0o644,
  });
  return { plugin, conflist };
}

/**
 * Copies the executable next to its target under a temporary name, then renames it over the
 * target: a runtime running the old plugin meanwhile is not disturbed.
 */
async function copyFileAtomic(from: string, to: string): Promise<void> {
  try {
    await access(from, constants.R_OK);
  } catch (err) {
    throw new FlannelError(
      `Cannot install the CNI plugin: ${from} is missing; run "npm run build", which makes it`,
      { cause: err },
    );
  }
  const temp = temporaryPathFor(to);
  try {
    makeFolder(dirname(to), 0o755);
    await copyFile(from, temp);
    await chmod(temp, 0o755);
    await rename(temp, to);
  } catch (err) {
    await rm(temp, { force: true });
    throw new FlannelError(
      `Cannot install the CNI plugin into ${dirname(to)}: ${(err as Error).message}`,
      { cause: err },
    );
  }
}
