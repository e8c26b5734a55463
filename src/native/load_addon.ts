/**
 * Loads one of our N-API addons (native/*.c), which `npm run build` compiles with node-gyp into
 * build/Release/ (and the .deb installs beside its executable). The failure says how to get it.
 */
import { dirname, join } from "node:path";
import { isSea } from "node:sea";
import { REPO_ROOT } from "../util/repo_root.js";

/**
 * Where the addons are: next to the packaged executable (/usr/lib/flannel-ts, where the .deb
 * puts them), else the build's folder in the repository.
 */
function addonDir(): string {
  return isSea() ? dirname(process.execPath) : join(REPO_ROOT, "build/Release");
}

const loaded = new Map<string, unknown>();

/** The addon `name` (build/Release/<name>.node), loaded once. */
export function loadAddon(name: string): unknown {
  const cached = loaded.get(name);
  if (cached !== undefined) return cached;
  const path = join(addonDir(), `${name}.node`);
  try {
    // dlopen rather than require: a single executable's require() reaches built-in modules only.
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
