// The build's last step (npm run build): bundles the compiled entry points with esbuild, and
// makes the CNI plugin a single executable (Node's single executable applications).
//   dist/bundle/flanneld.js, flannelctl.js, flannel.js   what bin/* run: one file per entry,
//     the npm packages in it, shared code in chunks, and what only one mode or command needs
//     (the etcd client, the Kubernetes client, metrics, the lab) in chunks loaded when first
//     needed. Only the netlink addon (build/Release) is read from outside dist/.
//   dist/sea/flannel   the CNI plugin with Node inside: runs on a host with no Node.js and no
//     node_modules; `flannelctl cni install` copies it into the CNI bin folder.
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { copyFileSync, chmodSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dist = join(root, "dist");
// etcd3 is bundled (with gRPC and protobuf: a third of flanneld's start-up was loading them
// file by file). It parses its .proto files at run time; the bundle carries them already parsed
// (protobuf's JSON form, made here with the options etcd3 parses them with), so that neither the
// parse nor a file of node_modules is needed at start.
const require = createRequire(import.meta.url);
const etcd3Protos = {
  name: "etcd3-protos",
  setup(build) {
    build.onLoad({ filter: /etcd3[\\/]lib[\\/]connection-pool\.js$/ }, async (args) => {
      const source = await readFile(args.path, "utf8");
      const protobuf = require("protobufjs");
      const root = new protobuf.Root();
      root.loadSync(join(dirname(args.path), "../proto/rpc.proto"), { keepCase: true });
      const call = "(0, proto_loader_1.loadSync)(`${__dirname}/../proto/rpc.proto`, {";
      if (!source.includes(call))
        throw new Error(
          "etcd3's connection-pool.js no longer loads rpc.proto as this build expects",
        );
      const patched = source.replace(
        call,
        `(0, proto_loader_1.fromJSON)(${JSON.stringify(root.toJSON())}, {`,
      );
      return { contents: patched, loader: "js" };
    });
  },
};

rmSync(join(dist, "bundle"), { recursive: true, force: true });
await build({
  entryPoints: ["flanneld", "flannelctl", "flannel"].map((name) => ({
    in: join(dist, "src/cli", `${name}.js`),
    out: name,
  })),
  outdir: join(dist, "bundle"),
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  plugins: [etcd3Protos],
  minify: true,
  sourcemap: "linked",
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

// The CNI plugin as one CommonJS file, then as a single executable.
const sea = join(dist, "sea");
rmSync(sea, { recursive: true, force: true });
mkdirSync(sea, { recursive: true });
const main = join(sea, "flannel.cjs");
await build({
  entryPoints: [join(dist, "src/cli/flannel.js")],
  outfile: main,
  bundle: true,
  format: "cjs",
  platform: "node",
  target: "node20",
  minify: true,
  logLevel: "warning",
});
const config = join(sea, "sea-config.json");
const blob = join(sea, "flannel.blob");
writeFileSync(
  config,
  JSON.stringify({ main, output: blob, disableExperimentalSEAWarning: true, useCodeCache: true }),
);
execFileSync(process.execPath, ["--experimental-sea-config", config], { stdio: "ignore" });
const executable = join(sea, "flannel");
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
