/**
 * `flannelctl cni install`: puts the plugin in the CNI bin folder and flannel's standard conflist
 * (the `cbr0` network of kube-flannel.yml) in the CNI config folder. Only the plugin (with, from
 * an installed flannel-ts, the `flannel-ts` folder it runs from) and the conflist are written,
 * each file atomically; nothing else in either folder is touched.
 *
 * A host needs neither Node.js nor this repository to run the plugin, as with flannel's static Go
 * binary. From a repository, the plugin is the single executable the build makes
 * (dist/sea/flannel: Node and the plugin in one file). From an installed flannel-ts (the image's,
 * as the DaemonSet's install step runs it), it is the installed folder's Node and plugin bundle,
 * copied into a `flannel-ts` folder beside the plugin, and the plugin a launcher script that
 * starts them: the bytes of one Node either way.
 */
import { access, chmod, constants, copyFile, rename, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { FlannelError } from "../errors.js";
import { launcherScript } from "../package/launcher.js";
import { makeFolder, temporaryPathFor, writeFileAtomic } from "../util/atomic_write.js";
import { INSTALLED, installedDir } from "../util/installed_dir.js";
import { REPO_ROOT } from "../util/repo_root.js";

/** The folder, beside the plugin, that an installed flannel-ts's plugin runs from. */
const PLUGIN_RUNTIME_FOLDER = "flannel-ts";

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

/** Writes the plugin (and what it runs on) and the conflist; resolves with the two paths. */
export async function installCni(
  options: InstallOptions,
): Promise<{ plugin: string; conflist: string }> {
  const plugin = join(options.binDir, "flannel");
  const conflist = join(options.confDir, CONFLIST_FILE);
  const installed = installedDir();
  if (installed === null) {
    const fix = 'run "npm run build", which makes it';
    await copyFileAtomic(join(REPO_ROOT, "dist/sea/flannel"), plugin, 0o755, fix);
  } else {
    // What the launcher starts first, then the launcher: a call meanwhile runs the old plugin.
    const fix = "reinstall flannel-ts (its package, or pull its image again)";
    const runtime = join(options.binDir, PLUGIN_RUNTIME_FOLDER);
    for (const [name, mode] of [
      [INSTALLED.node, 0o755],
      [INSTALLED.plugin, 0o644],
    ] as const)
      await copyFileAtomic(join(installed, name), join(runtime, name), mode, fix);
    writeFileAtomic(plugin, launcherScript("flannel", PLUGIN_RUNTIME_FOLDER), { mode: 0o755 });
  }
  writeFileAtomic(conflist, conflistText(options), {
    mode: 0o644,
  });
  return { plugin, conflist };
}

/**
 * Copies a file next to its target under a temporary name, then renames it over the target: a
 * runtime running the old plugin meanwhile is not disturbed. `fix`: what to do when `from` is
 * missing.
 */
async function copyFileAtomic(from: string, to: string, mode: number, fix: string): Promise<void> {
  try {
    await access(from, constants.R_OK);
  } catch (err) {
    throw new FlannelError(`Cannot install the CNI plugin: ${from} is missing; ${fix}`, {
      cause: err,
    });
  }
  const temp = temporaryPathFor(to);
  try {
    makeFolder(dirname(to), 0o755);
    await copyFile(from, temp);
    await chmod(temp, mode);
    await rename(temp, to);
  } catch (err) {
    await rm(temp, { force: true });
    throw new FlannelError(
      `Cannot install the CNI plugin into ${dirname(to)}: ${(err as Error).message}`,
      { cause: err },
    );
  }
}
