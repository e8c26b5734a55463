/**
 * `bin/flannelctl lab ...`: flannelctl with the lab's commands added. The lab lives beside the
 * product, never in it: src/ does not import lab/, and the package and the image carry none of it.
 */
import { main } from "../src/cli/flannelctl_main.js";
import { exitWith } from "../src/util/exit_with.js";
import { addLabCommands } from "./lab_commands.js";

exitWith(main(process.argv.slice(2), addLabCommands));
