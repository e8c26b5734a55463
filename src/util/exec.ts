/** Running a program and collecting its output, for the few tools flanneld drives (iptables, nft). */
import { spawn } from "node:child_process";

/** Runs a command; resolves with stdout, rejects with stderr in the message. */
export async function run(
  cmd: string,
  args: readonly string[],
  options: { readonly input?: string; readonly env?: NodeJS.ProcessEnv } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const input = options.input;
    const child = spawn(cmd, args, {
      stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
      env: options.env ?? process.env,
    });
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", (err) => {
      reject(new Error(`Cannot run ${cmd}: ${err.message}`, { cause: err }));
    });
    child.on("close", (code) => {
      if (code === 0) resolve(stdout);
      else
        reject(
          new Error(
            `${cmd} ${args.join(" ")} failed (exit ${code ?? "signal"}): ${stderr.trim() || stdout.trim()}`,
          ),
        );
    });
    if (input !== undefined && child.stdin !== null) {
      child.stdin.on("error", () => undefined); // the exit code and stderr tell what went wrong
      child.stdin.end(input);
    }
  });
}
