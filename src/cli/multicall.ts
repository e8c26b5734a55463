/**
 * The packaged executable's entry point: one Node runtime for all three commands (as busybox
 * does it), which runs flanneld, flannelctl or the CNI plugin by the name it was started under
 * (/usr/bin/flanneld, /usr/bin/flannelctl and /opt/cni/bin/flannel link to it), or by its first
 * argument (`flannel-ts flannelctl doctor`).
 */
import { basename } from "node:path";
import { setFlagsFromString } from "node:v8";
import { exitWith } from "../util/exit_with.js";
import { FLANNELD_RUNTIME_V8_FLAGS } from "./v8_flags.js";

const COMMANDS = ["flanneld", "flannelctl", "flannel"] as const;
type CommandName = (typeof COMMANDS)[number];

const isCommand = (name: string | undefined): name is CommandName =>
  COMMANDS.some((c) => c === name);

/** The command and its arguments, from the name started under or the first argument. */
function chosen(): { command: CommandName; args: string[] } | null {
  const args = process.argv.slice(2);
  const name = basename(process.argv0);
  if (isCommand(name)) return { command: name, args };
  const [first, ...rest] = args;
  return isCommand(first) ? { command: first, args: rest } : null;
}

/**
 * Each command's code is loaded only when it runs: the CNI plugin, started for every pod, does
 * not pay for loading flanneld's and flannelctl's modules (see docs/data-plane.md for the
 * figures).
 */
async function run(): Promise<number> {
  const which = chosen();
  switch (which?.command) {
    case "flanneld":
      // A single executable takes no V8 flags of its own; these V8 reads as it runs (the 5,000-
      // peer peak 140 -> 115 MiB with the first). bin/flanneld's snapshot has them from the start.
      for (const flag of FLANNELD_RUNTIME_V8_FLAGS) setFlagsFromString(flag);
      return (await import("./flanneld_main.js")).main(which.args);
    case "flannelctl":
      return (await import("./flannelctl_main.js")).main(which.args);
    case "flannel":
      await (await import("./flannel_main.js")).main();
      return typeof process.exitCode === "number" ? process.exitCode : 0;
    case undefined:
      process.stderr.write(
        `flannel-ts: run as ${COMMANDS.join(", ")} (a link named so), or give one as the first argument\n`,
      );
      return 2;
  }
}

exitWith(run());
