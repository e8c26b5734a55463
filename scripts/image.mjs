// `npm run image`: flannel-ts's image, flannel-ts:<version>, built with podman from a Debian
// minbase root made with debootstrap (iptables, nftables, iproute2, ca-certificates, wireguard-go,
// wireguard-tools) and the
// installed flannel-ts (its own stripped Node in /usr/lib/flannel-ts, flanneld's snapshots, the
// bundles, and launcher scripts; scripts/build_helpers.mjs), and saved as an OCI archive:
//   dist/image/flannel-ts_<version>.oci.tar
// The root is cached by its package list, suite and mirror (FLANNEL_TS_IMAGE_CACHE, default
// /var/cache/flannel-ts/image-roots), so that a rebuild takes seconds. podman's storage is ours
// (FLANNEL_TS_IMAGE_STORE, default /var/lib/flannel-ts/containers), never the machine's /etc.
// The image lays flannel-ts out as the DaemonSet in deploy/ runs it: /opt/flannel-ts/bin/
// flanneld and flannelctl (entrypoint flanneld); `flannelctl cni install` in it copies its Node
// and the plugin's bundle to the host, with a launcher as the CNI plugin. Prints the image's name and the archive's path.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { layOutInstalled, root } from "./build_helpers.mjs";

// wireguard-go and wg: the wireguard backend, on hosts whose kernel has no WireGuard.
const PACKAGES = [
  "iptables",
  "nftables",
  "iproute2",
  "ca-certificates",
  "wireguard-go",
  "wireguard-tools",
];
const { version } = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const image = `localhost/flannel-ts:${version}`;
const out = join(root, "dist/image");
const cacheDir = process.env.FLANNEL_TS_IMAGE_CACHE ?? "/var/cache/flannel-ts/image-roots";
const store = process.env.FLANNEL_TS_IMAGE_STORE ?? "/var/lib/flannel-ts/containers";
const say = (line) => process.stderr.write(`[image] ${line}\n`);
const run = (cmd, args, options = {}) =>
  execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], ...options });

/** The suite and mirror apt uses here (FLANNEL_TS_DEBIAN_MIRROR overrides the mirror). */
function debianSource() {
  const suite = /^VERSION_CODENAME=(.+)$/m.exec(readFileSync("/etc/os-release", "utf8"))?.[1];
  let mirror = process.env.FLANNEL_TS_DEBIAN_MIRROR;
  if (mirror === undefined) {
    const texts = [];
    if (existsSync("/etc/apt/sources.list"))
      texts.push(readFileSync("/etc/apt/sources.list", "utf8"));
    for (const f of existsSync("/etc/apt/sources.list.d")
      ? readdirSync("/etc/apt/sources.list.d")
      : [])
      if (f.endsWith(".sources") || f.endsWith(".list"))
        texts.push(readFileSync(join("/etc/apt/sources.list.d", f), "utf8"));
    for (const text of texts) {
      const uri =
        /^URIs:\s*(\S+\/debian)\s*$/m.exec(text)?.[1] ??
        /^deb\s+(?:\[[^\]]*\]\s+)?(\S+\/debian)\s/m.exec(text)?.[1];
      if (uri !== undefined) {
        mirror = uri;
        break;
      }
    }
  }
  if (suite === undefined || mirror === undefined)
    throw new Error("Cannot tell the Debian suite and mirror: set FLANNEL_TS_DEBIAN_MIRROR");
  return { suite, mirror };
}

/** The minbase root as a tar, from the cache or made now with debootstrap. */
function debianRoot() {
  const { suite, mirror } = debianSource();
  const key = createHash("sha256")
    .update(JSON.stringify({ suite, mirror, variant: "minbase", PACKAGES }))
    .digest("hex")
    .slice(0, 16);
  const tar = join(cacheDir, `${suite}-${key}.tar`);
  if (existsSync(tar)) {
    say(`Debian ${suite} root from the cache (${tar})`);
    return tar;
  }
  mkdirSync(cacheDir, { recursive: true });
  const dir = join(cacheDir, `${suite}-${key}.tmp`);
  rmSync(dir, { recursive: true, force: true });
  say(`debootstrap --variant=minbase ${suite} from ${mirror}, with ${PACKAGES.join(", ")}`);
  run("debootstrap", ["--variant=minbase", `--include=${PACKAGES.join(",")}`, suite, dir, mirror]);
  // What a container never needs: apt's lists and caches, documentation, manual pages, locales.
  for (const path of [
    "var/lib/apt/lists",
    "var/cache/apt",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/locale",
    "usr/share/info",
    "var/log",
  ])
    rmSync(join(dir, path), { recursive: true, force: true });
  run("tar", ["-C", dir, "--numeric-owner", "-cf", `${tar}.tmp`, "."]);
  renameSync(`${tar}.tmp`, tar);
  rmSync(dir, { recursive: true, force: true });
  return tar;
}

/** podman with our storage configuration. */
function podman(args) {
  const conf = join(out, "storage.conf");
  // overlay: a container of the image shares its layers (vfs would copy all 188 MiB each time).
  writeFileSync(
    conf,
    `[storage]\ndriver = "overlay"\ngraphroot = "${store}/overlay-storage"\nrunroot = "/run/flannel-ts/containers-overlay"\n`,
  );
  return run("podman", ["--log-level=error", ...args], {
    env: { ...process.env, CONTAINERS_STORAGE_CONF: conf },
  });
}

const started = Date.now();
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const base = debianRoot();
const layer = join(out, "layer");
await layOutInstalled(layer, {
  "opt/flannel-ts/bin/flanneld": "flanneld",
  "opt/flannel-ts/bin/flannelctl": "flannelctl",
  "opt/flannel-ts/bin/flannel": "flannel",
  "usr/bin/flanneld": "flanneld",
  "usr/bin/flannelctl": "flannelctl",
});
const rootfs = join(out, "rootfs.tar");
run("cp", [base, rootfs]);
// Appended without the folders the root has already (a layer may not hold a path twice).
const inBase = new Set(
  run("tar", ["-tf", base], { maxBuffer: 64 * 2 ** 20 })
    .split("\n")
    .map((p) => p.replace(/^\.\//, "").replace(/\/$/, "")),
);
const added = run("find", [".", "-mindepth", "1"], { cwd: layer })
  .trim()
  .split("\n")
  .map((p) => p.replace(/^\.\//, ""))
  .filter((p) => !inBase.has(p))
  .sort();
run("tar", [
  "-C",
  layer,
  "--numeric-owner",
  "--owner=0",
  "--group=0",
  "--no-recursion",
  "-rf",
  rootfs,
  ...added,
]);
rmSync(layer, { recursive: true });
podman([
  "import",
  "--change",
  'ENTRYPOINT ["/opt/flannel-ts/bin/flanneld"]',
  "--change",
  `LABEL org.opencontainers.image.version=${version}`,
  "--change",
  "LABEL org.opencontainers.image.title=flannel-ts",
  rootfs,
  image,
]);
rmSync(rootfs);
const archive = join(out, `flannel-ts_${version}.oci.tar`);
podman(["save", "--format", "oci-archive", "-o", archive, image]);
const size = Number(podman(["image", "inspect", "--format", "{{.Size}}", image]).trim());
say(
  `${image}: ${(size / 2 ** 20).toFixed(0)} MiB, archive ${archive}, ${((Date.now() - started) / 1000).toFixed(1)} s`,
);
process.stdout.write(`${image}\n${archive}\n`);
