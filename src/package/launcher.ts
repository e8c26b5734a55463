/**
 * The installed layout (the .deb's and the image's, and the plugin that `flannelctl cni install`
 * puts on a DaemonSet's host): one folder holding a stripped Node, flanneld's start-up snapshots,
 * flanneld's and flannelctl's bundles, the plugin's and the addons, and a small shell launcher
 * per command, which starts that Node on the command's code. flanneld starts from its snapshot,
 * as bin/flanneld does from a repository (docs/data-plane.md has the figures).
 */
import { INSTALLED } from "../util/installed_dir.js";
import { FLANNELD_V8_FLAGS } from "./v8_flags.js";

export type LauncherCommand = "flanneld" | "flannelctl" | "flannel";

/** How each command starts, given `$lib` (the installed folder) in the script. */
function startLines(command: LauncherCommand): string {
  const flags = FLANNELD_V8_FLAGS.join(" ");
  switch (command) {
    case "flanneld":
      // A snapshot loads only with the V8 flags it was made with: with NODE_OPTIONS (which may
      // add some), flanneld starts from its bundle instead.
      return `blob=$lib/${INSTALLED.snapshot}
case " $* \${FLANNELD_KUBE_SUBNET_MGR:+--kube-subnet-mgr}" in
*kube-subnet-mgr*) blob=$lib/${INSTALLED.kubeSnapshot} ;;
esac
if [ -z "\${NODE_OPTIONS:-}" ]; then
  exec "$lib/${INSTALLED.node}" ${flags} --snapshot-blob="$blob" "$0" "$@"
fi
exec "$lib/${INSTALLED.node}" ${flags} "$lib/${INSTALLED.bundle}/flanneld.js" "$@"`;
    case "flannelctl":
      return `exec "$lib/${INSTALLED.node}" "$lib/${INSTALLED.bundle}/flannelctl.js" "$@"`;
    case "flannel":
      return `exec "$lib/${INSTALLED.node}" "$lib/${INSTALLED.plugin}" "$@"`;
  }
}

/**
 * The launcher script of `command`, which finds the installed folder at `libFromHere`, a path
 * relative to the script's own folder (so that an unpacked copy runs from where it is). Only a
 * launcher reached through a symbolic link pays for a readlink process.
 */
export function launcherScript(command: LauncherCommand, libFromHere: string): string {
  if (!/^[A-Za-z0-9_./-]+$/.test(libFromHere) || libFromHere.startsWith("/"))
    throw new Error(`launcherScript: ${JSON.stringify(libFromHere)} is not a plain relative path`);
  return `#!/bin/sh
# flannel-ts's ${command}: starts the Node in ${libFromHere} (from this script's folder) on ${command}'s code.
here=$0
[ -L "$here" ] && here=$(readlink -f "$here")
case $here in */*) here=\${here%/*} ;; *) here=. ;; esac
lib=$here/${libFromHere}
${startLines(command)}
`;
}
