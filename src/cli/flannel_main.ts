/**
 * The flannel CNI plugin command. The container runtime starts it once per call, so it loads
 * only the plugin code: no daemon, no schema or logging libraries. The build also makes it a
 * single executable (dist/sea/flannel) that needs no Node.js on the host; no top-level await
 * here, so that it can be bundled as CommonJS for that.
 */
import { handleCniRequest } from "../cni/plugin.js";

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) return "";
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** Runs one CNI request from the environment and stdin; sets the exit code. */
export async function main(): Promise<void> {
  const stdin =
    (process.env.CNI_COMMAND ?? "") === "VERSION" && process.stdin.isTTY ? "" : await readStdin();
  const response = await handleCniRequest({ env: process.env, stdin });
  if (response.stdout !== "")
    process.stdout.write(response.stdout.endsWith("\n") ? response.stdout : `${response.stdout}\n`);
  process.exitCode = response.code;
}
