/** flanneld's entry point: runs main() and leaves with its exit code. */
import { main } from "./flanneld_main.js";

void main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
  // etcd's gRPC channel may hold the loop open for a while after close(); leave promptly.
  process.exit();
});
