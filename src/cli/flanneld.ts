/** flanneld's entry point: runs main() and leaves with its exit code. */
import { main } from "./flanneld_main.js";

void main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
  // A request or timer still under way must not keep the process after main() is done.
  process.exit();
});
