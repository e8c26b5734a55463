/** flannelctl's entry point: runs main() and leaves with its exit code. */
import { main } from "./flannelctl_main.js";
import { exitWith } from "../util/exit_with.js";

exitWith(main(process.argv.slice(2)));
