// What the build (bundle.mjs) and the package (package.mjs) share: CommonJS bundles and Node's
// single executable applications.
import { execFileSync, spawnSync } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { createRequire, isBuiltin } from "node:module";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

export const root = join(dirname(fileURLToPath(import.meta.url)), "..");

/**
 * Copies this Node to `to` without its symbol table and debug information (`strip --strip-all`;
 * 12.6 of the 98.9 MB of the Node this was measured with): nothing reads them at run time, and
 * native addons bind to Node through the dynamic symbols, which strip keeps. Without binutils'
 * strip, the copy is whole, and the build says so.
 */
function copyNodeStripped(to) {
  const stripped = spawnSync("strip", ["--strip-all", "-o", to, process.execPath], {
    encoding: "utf8",
  });
  if (stripped.status === 0) return;
  if (stripped.error?.code !== "ENOENT")
    throw new Error(`strip --strip-all ${process.execPath} failed: ${stripped.stderr}`);
  process.stderr.write(
    `note: no strip (binutils) on PATH: ${to} keeps Node's symbol table; install binutils for a smaller executable\n`,
  );
  copyFileSync(process.execPath, to);
}

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
  copyNodeStripped(executable);
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

/**
 * Bundles an entry point (compiled, in dist/) as one minified CommonJS file, for a single
 * executable or a snapshot; `options`: more of esbuild's (plugins, define...).
 */
export async function bundleCommonJs(entry, outfile, options = {}) {
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    format: "cjs",
    platform: "node",
    target: "node20",
    ...options,
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

// Built-in modules that Node 20 lets a start-up snapshot hold (the supportedModules of its
// lib/internal/main/mksnapshot.js), and worker_threads, which pino reads while it loads
// (isMainThread, true in flanneld too).
const SNAPSHOT_BUILTINS = new Set(
  [
    "_stream_duplex _stream_passthrough _stream_readable _stream_transform _stream_wrap",
    "_stream_writable assert assert/strict buffer console constants crypto diagnostics_channel",
    "dns events fs fs/promises net os path path/posix path/win32 process punycode querystring",
    "stream stream/promises string_decoder sys timers timers/promises url util util/types v8",
    "zlib worker_threads",
  ]
    .join(" ")
    .split(" "),
);
const requireBuiltin = createRequire(import.meta.url);

/**
 * The other built-in modules (node:http, net, child_process...: their native parts cannot be in
 * a snapshot) are loaded on first use after the snapshot is read: the bundle gets a stand-in
 * that knows the module's names (esbuild's import helpers list them) and reaches the real module
 * when a name is first used.
 */
const lateBuiltins = {
  name: "late-builtins",
  setup(b) {
    b.onResolve({ filter: /^(node:)?[a-z_0-9/]+$/ }, (args) => {
      const name = args.path.replace(/^node:/, "");
      if (args.namespace === "late-builtin" || SNAPSHOT_BUILTINS.has(name)) return undefined;
      if (!isBuiltin(name)) return undefined;
      return { path: name, namespace: "late-builtin" };
    });
    b.onLoad({ filter: /.*/, namespace: "late-builtin" }, ({ path }) => {
      const names = Object.keys(requireBuiltin(`node:${path}`));
      const contents = `let loaded;
const real = () => (loaded ??= require("node:${path}"));
const names = ${JSON.stringify(names)};
module.exports = new Proxy({}, {
  get: (_, key) => (key === "__esModule" ? undefined : real()[key]),
  set: (_, key, value) => { real()[key] = value; return true; },
  has: (_, key) => key in real(),
  ownKeys: () => names,
  getOwnPropertyDescriptor: (_, key) =>
    names.includes(key) ? { configurable: true, enumerable: true, get: () => real()[key] } : undefined,
});`;
      return { contents, loader: "js" };
    });
  },
};

/** An esbuild plugin that bundles the module `replacement` wherever a path matching `filter` is imported. */
export function swapModules(filter, replacement) {
  return {
    name: "swap-modules",
    setup(b) {
      b.onResolve({ filter }, () => ({ path: replacement }));
    },
  };
}

/**
 * Bundles `entry` (a snapshot entry point: it loads what the start needs and names the main
 * function with v8.startupSnapshot) as the CommonJS script that \`node --build-snapshot\` runs.
 * import.meta.dirname is `dirnameAtRun`, the folder the code would be in (repo_root.ts walks up
 * from it). `plugins`: esbuild plugins to run before the stand-ins for late built-in modules.
 */
export async function bundleSnapshotEntry(entry, outfile, dirnameAtRun, plugins = []) {
  await bundleCommonJs(entry, outfile, {
    plugins: [...plugins, lateBuiltins],
    define: { "import.meta": JSON.stringify({ dirname: dirnameAtRun }) },
    sourcemap: "linked",
  });
}

/**
 * Makes the start-up snapshot `blob` of the script `script` with this Node and the V8 flags
 * `v8Flags` (a snapshot loads only into the same Node with the same flags). Node warns about each
 * built-in module it has not verified in snapshots; what it says is shown only if the build fails.
 * Returns the line bin/flanneld reads to start from it: this Node, its file's identity (device,
 * inode and change time, as `stat -Lc %d:%i:%Z` prints them: another Node installed there
 * changes it) and the flags.
 */
export function buildSnapshot(script, blob, v8Flags = []) {
  const built = spawnSync(
    process.execPath,
    [...v8Flags, "--snapshot-blob", blob, "--build-snapshot", script],
    { encoding: "utf8" },
  );
  if (built.status !== 0)
    throw new Error(`node --build-snapshot ${script} failed:\n${built.stdout}${built.stderr}`);
  const node = statSync(process.execPath);
  const identity = `${node.dev}:${node.ino}:${Math.floor(node.ctimeMs / 1000)}`;
  return [process.execPath, identity, ...v8Flags].join(" ") + "\n";
}
