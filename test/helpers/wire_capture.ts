/**
 * What crosses the underlay: tcpdump on a lab host's eth0 while pods talk, and a TCP stream of a
 * marker string between two pods, to look for it in the capture.
 */
import { readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { waitFor } from "../../lab/poll.js";
import { execIn, spawnIn } from "../../lab/netns.js";

/** A capture running on `iface` in `netns`; stop() gives the raw pcap bytes and a summary. */
export async function startCapture(netns: string, iface = "eth0") {
  const file = join(tmpdir(), `fts-cap-${randomBytes(4).toString("hex")}.pcap`);
  const child = spawnIn(
    netns,
    "tcpdump",
    ["-n", "-i", iface, "--immediate-mode", "-U", "-s", "0", "-w", file],
    {
      stdio: ["ignore", "ignore", "pipe"],
    },
  );
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  await waitFor("tcpdump to listen", () => Promise.resolve(stderr.includes("listening on")));
  return {
    async stop(): Promise<{ bytes: Buffer; summary: string }> {
      const gone = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGINT");
      await gone;
      try {
        const bytes = await readFile(file);
        const summary = await execIn(netns, "tcpdump", ["-n", "-q", "-r", file]);
        return { bytes, summary };
      } finally {
        await rm(file, { force: true });
      }
    },
  };
}

/** Sends `marker` 200 times over TCP from one pod to another. */
export async function sendMarker(
  from: { readonly netns: string },
  to: { readonly netns: string; readonly ip: string },
  marker: string,
  port = 5611,
): Promise<void> {
  const server = spawnIn(
    to.netns,
    process.execPath,
    [
      "-e",
      `require("net").createServer((s) => s.resume()).listen(${port}, ${JSON.stringify(to.ip)}, () => console.log("up"))`,
    ],
    { stdio: ["ignore", "pipe", "ignore"] },
  );
  try {
    let out = "";
    server.stdout?.on("data", (d: Buffer) => (out += d.toString()));
    await waitFor("the marker's server", () => Promise.resolve(out.includes("up")));
    const client = `const s = require("net").connect(${port}, ${JSON.stringify(to.ip)}, () => { for (let i = 0; i < 200; i++) s.write(${JSON.stringify(marker)}); s.end(); }); s.on("close", () => process.exit(0)); s.on("error", (e) => { console.error(e.message); process.exit(1); });`;
    await execIn(from.netns, process.execPath, ["-e", client]);
  } finally {
    server.kill();
  }
}
