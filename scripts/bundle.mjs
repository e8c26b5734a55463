// The build's last step (npm run build): bundles the compiled entry points with esbuild, and
// makes the CNI plugin a single executable (Node's single executable applications).
//   dist/bundle/flanneld.js, flannelctl.js, flannel.js, flannelctl_lab.js   what bin/* run: one
//     file per entry (flannelctl_lab.js is flannelctl with the repository's lab/ added),
//     the npm packages in it, shared code in chunks, and what only one mode or command needs
//     (the Kubernetes client, metrics) in chunks loaded when first
//     needed. Only the netlink addon (build/Release) is read from outside dist/.
//   dist/snapshot/flanneld.blob, flanneld-kube.blob   flanneld's start-up snapshots for etcd
//     and Kubernetes mode, which bin/flanneld starts from: the daemon's modules already loaded
//     (the .cjs beside each is the script it was made of).
//   dist/sea/flannel   the CNI plugin with Node inside: runs on a host with no Node.js and no
//     node_modules; `flannelctl cni install` copies it into the CNI bin folder.
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  buildSnapshot,
  bundleCommonJs,
  bundleEsm,
  bundleSnapshotEntry,
  makeSingleExecutable,
  root,
  swapModules,
} from "./build_helpers.mjs";

const dist = join(root, "dist");
const { FLANNELD_V8_FLAGS } = await import(join(dist, "src/package/v8_flags.js"));

rmSync(join(dist, "bundle"), { recursive: true, force: true });
await bundleEsm(
  [
    ...["flanneld", "flannelctl", "flannel"].map((name) => ({
      in: join(dist, "src/cli", `${name}.js`),
      out: name,
    })),
    // bin/flannelctl lab ...: the repository's lab beside flannelctl, never inside it.
    { in: join(dist, "lab/flannelctl_lab.js"), out: "flannelctl_lab" },
  ],
  join(dist, "bundle"),
  // flanneld turns source maps on at debug level (-v=4), for readable stack traces.
  { sourcemap: "linked" },
);

// flanneld's start-up snapshots (bin/flanneld starts from one): its modules, loaded.
// flanneld.blob is etcd mode's: the Kubernetes-only modules are swapped for
// src/cli/kube_absent.ts, so an etcd host neither loads nor keeps the Kubernetes client (most of
// the bundle). flanneld-kube.blob has everything; bin/flanneld picks it for --kube-subnet-mgr.
// The V8 flags flanneld runs with are the snapshots' (bin/flanneld reads them from flanneld.node):
// src/package/v8_flags.ts says why each.
const snapshot = join(dist, "snapshot");
rmSync(snapshot, { recursive: true, force: true });
mkdirSync(snapshot, { recursive: true });
const snapshotEntry = join(dist, "src/cli/flanneld_snapshot.js");
const withoutKube = swapModules(
  /\/(subnet\/kube\/kube_manager|subnet\/kube\/kube_client|netpol\/network_policy)\.js$/,
  join(dist, "src/cli/kube_absent.js"),
);
let made = "";
for (const [name, plugins] of [
  ["flanneld", [withoutKube]],
  ["flanneld-kube", []],
]) {
  const script = join(snapshot, `${name}.cjs`);
  await bundleSnapshotEntry(snapshotEntry, script, snapshot, plugins);
  made = buildSnapshot(script, join(snapshot, `${name}.blob`), [...FLANNELD_V8_FLAGS]);
}
writeFileSync(join(snapshot, "flanneld.node"), made);

// The CNI plugin as one CommonJS file, then as a single executable.
const sea = join(dist, "sea");
rmSync(sea, { recursive: true, force: true });
mkdirSync(sea, { recursive: true });
const main = join(sea, "flannel.cjs");
await bundleCommonJs(join(dist, "src/cli/flannel.js"), main);
makeSingleExecutable(main, join(sea, "flannel"));
