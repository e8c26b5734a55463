// `npm run package`: flannel-ts as a Debian package, built with Debian's own dpkg-deb, for a plain
// host run by systemd as flannel is. Needs `npm run build` first (npm run package does it).
//   dist/package/flannel-ts_<version>_<arch>.deb, holding:
//     /usr/lib/flannel-ts/node              a stripped copy of the Node that built it, which runs
//                                           all three commands (one runtime per host)
//     /usr/lib/flannel-ts/flanneld*.blob    flanneld's start-up snapshots (etcd, Kubernetes mode)
//     /usr/lib/flannel-ts/*.cjs             the bundles: all three commands; the CNI plugin alone
//     /usr/lib/flannel-ts/*.node            the two addons (netlink and ethtool, udp forwarder)
//     /usr/bin/flanneld, /usr/bin/flannelctl, /opt/cni/bin/flannel   launcher scripts
//                                           (src/package/launcher.ts) that start them
//     /usr/lib/systemd/system/flanneld.service   Type=notify, Restart=always
//     /etc/default/flanneld                  every FLANNELD_* variable, commented
//     /etc/cni/net.d/10-flannel.conflist     flannel's conflist
// Nothing in it needs Node.js or node_modules on the host. Prints the .deb's path.
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { layOutInstalled, root } from "./build_helpers.mjs";

const dist = join(root, "dist");
const { version, description } = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const arch = execFileSync("dpkg", ["--print-architecture"], { encoding: "utf8" }).trim();
const { systemdUnit, defaultsFile, conflistText } = await import(
  join(dist, "src/package/host_files.js")
);

const out = join(dist, "package");
const stage = join(out, "stage");
rmSync(out, { recursive: true, force: true });
const dir = (path) => {
  const full = join(stage, path);
  mkdirSync(full, { recursive: true, mode: 0o755 });
  return full;
};
const file = (path, text, mode = 0o644) => {
  writeFileSync(join(stage, path), text);
  chmodSync(join(stage, path), mode);
};

// Node, flanneld's snapshots, the bundles and addons, and a launcher per command.
await layOutInstalled(stage, {
  "usr/bin/flanneld": "flanneld",
  "usr/bin/flannelctl": "flannelctl",
  "opt/cni/bin/flannel": "flannel",
});

dir("usr/lib/systemd/system");
file("usr/lib/systemd/system/flanneld.service", systemdUnit());
dir("etc/default");
file("etc/default/flanneld", defaultsFile());
dir("etc/cni/net.d");
file("etc/cni/net.d/10-flannel.conflist", conflistText());

// Debian's control files. The maintainer scripts only tell systemd (when it runs, and not
// when dpkg installs into another root); the service is not started: it needs etcd's address.
dir("DEBIAN");
const installedKiB = Number(
  execFileSync("du", ["-sk", "--exclude=DEBIAN", stage], { encoding: "utf8" }).split("\t")[0],
);
file(
  "DEBIAN/control",
  `Package: flannel-ts
Version: ${version}
Architecture: ${arch}
Maintainer: flannel-ts developers <flannel-ts@localhost>
Installed-Size: ${installedKiB}
Depends: iptables
Recommends: nftables, containernetworking-plugins, wireguard-tools, wireguard-go
Section: net
Priority: optional
Homepage: https://github.com/flannel-io/flannel
Description: flannel network fabric for Kubernetes hosts, in TypeScript
 ${description}.
 flanneld leases this host a pod subnet from etcd or the Kubernetes API and carries pod traffic
 between hosts (vxlan, host-gw, udp); flannelctl checks a host (doctor, trace); the flannel CNI
 plugin wires pods. Self-contained: its own Node.js, no other needed.
`,
);
file("DEBIAN/conffiles", "/etc/default/flanneld\n/etc/cni/net.d/10-flannel.conflist\n");
const systemd = (command) => `#!/bin/sh
set -e
if [ -z "\${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
  ${command}
fi
exit 0
`;
file("DEBIAN/postinst", systemd("systemctl daemon-reload || true"), 0o755);
file(
  "DEBIAN/prerm",
  systemd('if [ "$1" = remove ]; then systemctl disable --now flanneld.service || true; fi'),
  0o755,
);
file("DEBIAN/postrm", systemd("systemctl daemon-reload || true"), 0o755);

const deb = join(out, `flannel-ts_${version}_${arch}.deb`);
execFileSync("dpkg-deb", ["--root-owner-group", "-Zxz", "--build", stage, deb], {
  stdio: "ignore",
});
rmSync(stage, { recursive: true });
process.stdout.write(`${deb}\n`);
