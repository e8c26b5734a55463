/**
 * Loads one of our N-API addons (native/*.c), which `npm run build` compiles with node-gyp into
 * build/Release/ (an installed flannel-ts has them in its folder). The failure says how to get it.
 */
import { join } from "node:path";
import { installedDir } from "../util/installed_dir.js";
import { REPO_ROOT } from "../util/repo_root.js";

/**
 * Where the addons are: in the installed folder (/usr/lib/flannel-ts, where the .deb and the
 * image put them), else the build's folder in the repository.
 */
function addonDir(): string {
  return installedDir() ?? join(REPO_ROOT, "build/Release");
}

const loaded = new Map<string, unknown>();

/** The addon `name` (build/Release/<name>.node), loaded once. */
export function loadAddon(name: string): unknown {
  const cached = loaded.get(name);
  if (cached !== undefined) return cached;
  const path = join(addonDir(), `${name}.node`);
  try {
    // dlopen: the path is known; nothing to resolve.
    const module = { exports: {} as unknown };
    process.dlopen(module, path);
    loaded.set(name, module.exports);
    return module.exports;
  } catch (err) {
    throw new Error(
      `Cannot load the ${name} addon (${path}): ${(err as Error).message}; run npm run build, which compiles it (needs make, a C compiler and Node's headers)`,
      { cause: err },
    );
  }
}
