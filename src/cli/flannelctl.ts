/** flannelctl's entry point: runs main() and leaves with its exit code. */
import { main } from "./flannelctl_main.js";

void main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
  process.exit();
});
