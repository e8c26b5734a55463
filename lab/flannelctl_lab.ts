/**
 * `bin/flannelctl lab ...`: flannelctl with the lab's commands added. The lab lives beside the
 * product, never in it: src/ does not import lab/, and the package and the image carry none of it.
 */
import { main } from "../src/cli/flannelctl_main.js";
import { addLabCommands } from "./lab_commands.js";

void main(process.argv.slice(2), addLabCommands).then((code) => {
  process.exitCode = code;
  // etcd's gRPC channel may hold the loop open for a while after close(); leave promptly.
  process.exit();
});
