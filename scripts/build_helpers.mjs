// What the build (bundle.mjs) and the package (package.mjs) share: CommonJS bundles and Node's
// single executable applications.
import { execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

export const root = join(dirname(fileURLToPath(import.meta.url)), "..");

/**
 * Makes `executable`: this Node with the CommonJS bundle `main` inside (a single executable
 * application), which needs neither Node.js nor node_modules on the host.
 */
export function makeSingleExecutable(main, executable) {
  const config = `${executable}.sea-config.json`;
  const blob = `${executable}.blob`;
  writeFileSync(
    config,
    JSON.stringify({ main, output: blob, disableExperimentalSEAWarning: true, useCodeCache: true }),
  );
  execFileSync(process.execPath, ["--experimental-sea-config", config], { stdio: "ignore" });
  copyFileSync(process.execPath, executable);
  chmodSync(executable, 0o755);
  execFileSync(
    process.execPath,
    [
      join(root, "node_modules/postject/dist/cli.js"),
      executable,
      "NODE_SEA_BLOB",
      blob,
      "--sentinel-fuse",
      "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2",
    ],
    { stdio: "ignore" },
  );
  rmSync(blob);
  rmSync(config);
}

/** Bundles an entry point (compiled, in dist/) as one minified CommonJS file, for a single executable. */
export async function bundleCommonJs(entry, outfile, plugins = []) {
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    format: "cjs",
    platform: "node",
    target: "node20",
    plugins,
    minify: true,
    // Class names survive minifying, so that logs name the error ("StoreError", not "l").
    keepNames: true,
    logLevel: "error",
  });
}

/**
 * Lays out flannel-ts's self-contained executable under `root`: usr/lib/flannel-ts/flannel-ts
 * (one single executable that runs as flanneld, flannelctl or the CNI plugin by its name), its
 * two addons beside it, and the links `links` names (path under root -> the name it runs as).
 */
export async function layOutExecutable(rootDir, links) {
  const dist = join(root, "dist");
  const lib = join(rootDir, "usr/lib/flannel-ts");
  mkdirSync(lib, { recursive: true, mode: 0o755 });
  const main = join(rootDir, "flannel-ts.cjs");
  await bundleCommonJs(join(dist, "src/cli/multicall.js"), main);
  makeSingleExecutable(main, join(lib, "flannel-ts"));
  rmSync(main);
  for (const addon of ["kernel_sockets", "udp_forwarder"]) {
    copyFileSync(join(root, "build/Release", `${addon}.node`), join(lib, `${addon}.node`));
    chmodSync(join(lib, `${addon}.node`), 0o644);
  }
  for (const link of links) {
    const at = join(rootDir, link);
    mkdirSync(dirname(at), { recursive: true, mode: 0o755 });
    const depth = link.split("/").length - 1;
    symlinkSync(`${"../".repeat(depth)}usr/lib/flannel-ts/flannel-ts`, at);
  }
}
