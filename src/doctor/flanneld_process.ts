/**
 * Finding the flanneld that serves this host: a process whose program is `flanneld`, in the same
 * network namespace as flannelctl doctor (a host's, or a lab host's), with its command line and
 * the variables flanneld reads, so that doctor checks the host with flanneld's own settings.
 */
import { readFile, readdir, readlink } from "node:fs/promises";
import { basename } from "node:path";

/** A running flanneld. */
export interface FlanneldProcess {
  readonly pid: number;
  /** Its flags: the command line after the program. */
  readonly args: readonly string[];
  /** The variables flanneld reads from its environment (FLANNELD_*, NODE_NAME, POD_*...). */
  readonly env: Readonly<Record<string, string>>;
}

/** Variables besides FLANNELD_* that flanneld reads. */
const READ_VARIABLES = new Set(["NODE_NAME", "POD_NAME", "POD_NAMESPACE", "KUBECONFIG"]);

function isFlanneldProgram(arg: string | undefined): boolean {
  return arg !== undefined && basename(arg) === "flanneld";
}

/**
 * Where the program is in a command line: the program itself (a packaged binary), or the script
 * Node runs (bin/flanneld), after any of Node's own flags (its shebang passes some); -1 if neither.
 */
function programIndex(argv: readonly string[]): number {
  if (isFlanneldProgram(argv[0])) return 0;
  const script = argv.findIndex((arg, i) => i > 0 && !arg.startsWith("-"));
  return isFlanneldProgram(argv[script]) ? script : -1;
}

/** Reads a process's command line and picks out flanneld's flags; null when it is not flanneld. */
function flanneldArgs(cmdline: string): string[] | null {
  const argv = cmdline.split("\0");
  if (argv.at(-1) === "") argv.pop();
  const at = programIndex(argv);
  return at < 0 ? null : argv.slice(at + 1);
}

function readVariables(environ: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of environ.split("\0")) {
    const eq = pair.indexOf("=");
    if (eq <= 0) continue;
    const name = pair.slice(0, eq);
    if (name.startsWith("FLANNELD_") || name.startsWith("KUBERNETES_") || READ_VARIABLES.has(name))
      env[name] = pair.slice(eq + 1);
  }
  return env;
}

/** The flanneld processes in this network namespace (normally one), read from `procDir`. */
export async function findFlanneld(procDir = "/proc"): Promise<FlanneldProcess[]> {
  const ours = await readlink(`${procDir}/self/ns/net`);
  const found: FlanneldProcess[] = [];
  for (const entry of await readdir(procDir)) {
    if (!/^\d+$/.test(entry)) continue;
    const dir = `${procDir}/${entry}`;
    try {
      const args = flanneldArgs(await readFile(`${dir}/cmdline`, "utf8"));
      if (args === null || (await readlink(`${dir}/ns/net`)) !== ours) continue;
      const env = readVariables(await readFile(`${dir}/environ`, "utf8"));
      found.push({ pid: Number(entry), args, env });
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return found;
}
