/**
 * The flannel CNI plugin command. The container runtime starts it once per call, so it imports
 * only the plugin code: no daemon, no schema or logging libraries.
 */
import { handleCniRequest } from "../cni/plugin.js";

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) return "";
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

const stdin =
  (process.env.CNI_COMMAND ?? "") === "VERSION" && process.stdin.isTTY ? "" : await readStdin();
const response = await handleCniRequest({ env: process.env, stdin });
if (response.stdout !== "")
  process.stdout.write(response.stdout.endsWith("\n") ? response.stdout : `${response.stdout}\n`);
process.exitCode = response.code;
