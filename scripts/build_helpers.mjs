// What the build (bundle.mjs), the package (package.mjs) and the image (image.mjs) share:
// CommonJS bundles, start-up snapshots, Node's single executable applications, and the installed
// layout.
import { execFileSync, spawnSync } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { dirname, join, relative } from "node:path";
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
 * Bundles entry points (compiled, in dist/; esbuild's `{ in, out }`) as ES modules in `outdir`:
 * one file per entry, the npm packages in it, shared code in chunks, and what a dynamic import
 * names in chunks loaded when first needed. `options`: more of esbuild's (sourcemap...).
 */
export async function bundleEsm(entryPoints, outdir, options = {}) {
  await build({
    entryPoints,
    outdir,
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node20",
    ...options,
    minify: true,
    // Class names survive minifying, so that logs name the error ("StoreError", not "l").
    keepNames: true,
    logLevel: "warning",
    // Bundled CommonJS packages call require(); an ES module has none of its own.
    banner: {
      js: [
        "import { createRequire as __flannelRequire } from 'node:module';",
        "import { dirname as __flannelDirname } from 'node:path';",
        "import { fileURLToPath as __flannelPath } from 'node:url';",
        "const require = __flannelRequire(import.meta.url);",
        "const __filename = __flannelPath(import.meta.url);",
        "const __dirname = __flannelDirname(__filename);",
      ].join(" "),
    },
  });
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
 * Lays out an installed flannel-ts under `rootDir` (src/package/launcher.ts describes it):
 * usr/lib/flannel-ts/ with a stripped copy of this Node, flanneld's two start-up snapshots (the
 * build's: made by this same Node), flanneld's and flannelctl's ES module bundles (bundle/, made
 * here without the lab), the CNI plugin's CommonJS bundle and the two addons; and a launcher
 * script at each path `launchers` names (path under rootDir -> the command it starts). Needs
 * `npm run build` first.
 */
export async function layOutInstalled(rootDir, launchers) {
  const dist = join(root, "dist");
  const { launcherScript } = await import(join(dist, "src/package/launcher.js"));
  const { INSTALLED } = await import(join(dist, "src/util/installed_dir.js"));
  const libPath = "usr/lib/flannel-ts";
  const lib = join(rootDir, libPath);
  mkdirSync(lib, { recursive: true, mode: 0o755 });
  copyNodeStripped(join(lib, INSTALLED.node));
  chmodSync(join(lib, INSTALLED.node), 0o755);
  const snapshots = join(dist, "snapshot");
  const made = readFileSync(join(snapshots, "flanneld.node"), "utf8").split(" ");
  if (made[0] !== process.execPath || made[1] !== nodeIdentity())
    throw new Error(
      `dist/snapshot was made by another Node (${made[0]}) than this one (${process.execPath}): run npm run build again`,
    );
  for (const [from, name] of [
    [join(snapshots, "flanneld.blob"), INSTALLED.snapshot],
    [join(snapshots, "flanneld-kube.blob"), INSTALLED.kubeSnapshot],
    [join(root, "build/Release/kernel_sockets.node"), "kernel_sockets.node"],
    [join(root, "build/Release/udp_forwarder.node"), "udp_forwarder.node"],
  ])
    copyFileSync(from, join(lib, name));
  await bundleCommonJs(join(dist, "src/cli/flannel.js"), join(lib, INSTALLED.plugin));
  const bundle = join(lib, INSTALLED.bundle);
  await bundleEsm(
    ["flanneld", "flannelctl"].map((name) => ({
      in: join(dist, "src/cli", `${name}.js`),
      out: name,
    })),
    bundle,
  );
  // Its .js files are ES modules: no package.json above them says so on a host.
  writeFileSync(join(bundle, "package.json"), '{ "type": "module" }\n');
  for (const name of readdirSync(lib))
    if (name !== INSTALLED.node && name !== INSTALLED.bundle) chmodSync(join(lib, name), 0o644);
  for (const name of readdirSync(bundle)) chmodSync(join(bundle, name), 0o644);
  for (const [path, command] of Object.entries(launchers)) {
    const at = join(rootDir, path);
    mkdirSync(dirname(at), { recursive: true, mode: 0o755 });
    writeFileSync(at, launcherScript(command, relative(dirname(path), libPath)));
    chmodSync(at, 0o755);
  }
}

/** This Node's file identity as buildSnapshot records it (device, inode, change time). */
function nodeIdentity() {
  const node = statSync(process.execPath);
  return `${node.dev}:${node.ino}:${Math.floor(node.ctimeMs / 1000)}`;
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
  return [process.execPath, nodeIdentity(), ...v8Flags].join(" ") + "\n";
}
