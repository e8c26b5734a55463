/** flanneld's entry point: runs main() and leaves with its exit code. */
import { main } from "./flanneld_main.js";
import { exitWith } from "../util/exit_with.js";

exitWith(main(process.argv.slice(2)));
