/**
 * Loads one of our N-API addons (native/*.c), which `npm run build` compiles with node-gyp into
 * build/Release/. The failure says how to get it.
 */
import { createRequire } from "node:module";
import { join } from "node:path";
import { REPO_ROOT } from "./repo_root.js";

const loaded = new Map<string, unknown>();

/** The addon `name` (build/Release/<name>.node), loaded once. */
export function loadAddon(name: string): unknown {
  const cached = loaded.get(name);
  if (cached !== undefined) return cached;
  const path = join(REPO_ROOT, "build/Release", `${name}.node`);
  try {
    const addon: unknown = createRequire(import.meta.url)(path);
    loaded.set(name, addon);
    return addon;
  } catch (err) {
    throw new Error(
      `Cannot load the ${name} addon (${path}): ${(err as Error).message}; run npm run build, which compiles it (needs make, a C compiler and Node's headers)`,
      { cause: err },
    );
  }
}
