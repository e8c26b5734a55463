/**
 * The repository's root folder (where package.json, bin/ and build/ are), found by walking up
 * from this module, so that it is right from dist/src/... and from the bundles in dist/bundle/.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";

function findRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const manifest = join(dir, "package.json");
    if (existsSync(manifest)) {
      try {
        if (
          (JSON.parse(readFileSync(manifest, "utf8")) as { name?: unknown }).name === "flannel-ts"
        )
          return dir;
      } catch {
        // not ours; go on up
      }
    }
    if (dirname(dir) === dir) return from; // none found: where the code is
  }
}

// In the packaged executable (bundled as CommonJS) import.meta has no dirname: there is no
// repository, only the executable's folder.
const meta: { readonly dirname?: string } = import.meta;
export const REPO_ROOT = findRoot(meta.dirname ?? dirname(process.execPath));
