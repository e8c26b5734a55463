/**
 * A bulk TCP transfer between two namespaces whose bytes are checked end to end: the sender
 * streams a deterministic pseudo-random sequence and both sides print its length and SHA-256.
 * A forwarder that cuts, merges or checksums TCP segments wrongly shows up here, where ping and
 * iperf3 (which never looks at the bytes) would not.
 */
import { execIn, spawnIn } from "../../lab/netns.js";

const SERVER = `
const net = require("node:net"), crypto = require("node:crypto");
const [ip, port] = process.argv.slice(1);
const server = net.createServer((s) => {
  const h = crypto.createHash("sha256"); let n = 0;
  s.on("data", (d) => { h.update(d); n += d.length; });
  s.on("end", () => { console.log(n + " " + h.digest("hex")); s.end(); server.close(); });
});
server.listen(Number(port), ip, () => console.log("listening"));
`;

const CLIENT = `
const net = require("node:net"), crypto = require("node:crypto");
const [ip, port, total] = process.argv.slice(1);
const h = crypto.createHash("sha256"); let sent = 0; let block = Buffer.alloc(32);
const s = net.connect(Number(port), ip, () => {
  const pump = () => {
    while (sent < Number(total)) {
      const chunk = Buffer.alloc(Math.min(65536, Number(total) - sent));
      for (let i = 0; i < chunk.length; i += 32) {
        block = crypto.createHash("sha256").update(block).digest();
        block.copy(chunk, i);
      }
      h.update(chunk); sent += chunk.length;
      if (!s.write(chunk)) return s.once("drain", pump);
    }
    s.end(); console.log(sent + " " + h.digest("hex"));
  };
  pump();
});
s.on("error", (e) => { console.error(e.message); process.exit(1); });
`;

/** Sends `bytes` from `from` to `to.ip`:`port`; returns what each side counted and hashed. */
export async function checkedTransfer(
  from: { readonly netns: string },
  to: { readonly netns: string; readonly ip: string },
  bytes: number,
  port = 5599,
): Promise<{ sent: string; received: string }> {
  const server = spawnIn(to.netns, process.execPath, ["-e", SERVER, to.ip, String(port)], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  try {
    let output = "";
    const listening = new Promise<void>((resolve, reject) => {
      server.stdout?.on("data", (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes("listening")) resolve();
      });
      server.once("exit", () => {
        reject(new Error(`the receiver in ${to.netns} exited: ${output}`));
      });
    });
    await listening;
    const done = new Promise<string>((resolve) => {
      server.once("exit", () => {
        resolve(output.replace("listening\n", "").trim());
      });
    });
    const sent = (
      await execIn(from.netns, process.execPath, ["-e", CLIENT, to.ip, String(port), String(bytes)])
    ).trim();
    return { sent, received: await done };
  } finally {
    server.kill();
  }
}
