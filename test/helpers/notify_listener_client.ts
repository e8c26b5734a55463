/**
 * Starts test/helpers/notify_listener.ts (systemd's notify socket stand-in) in a namespace and
 * collects its datagrams; resolves once it listens.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { REPO_ROOT } from "../../lab/cluster.js";

export interface NotifyListener {
  /** The datagrams so far, and whether the watched file existed when each arrived. */
  readonly messages: { message: string; fileExisted: boolean }[];
  /** Resolves with the first datagram that includes `text`. */
  next(text: string): Promise<string>;
  stop(): void;
}

export async function startNotifyListener(
  netns: string,
  socket: string,
  watchFile = "",
): Promise<NotifyListener> {
  const child = spawn(
    "ip",
    [
      "netns",
      "exec",
      netns,
      process.execPath,
      join(REPO_ROOT, "dist/test/helpers/notify_listener.js"),
      socket,
      watchFile,
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const messages: { message: string; fileExisted: boolean }[] = [];
  const waiting: { text: string; resolve: (message: string) => void }[] = [];
  let listening!: () => void;
  const ready = new Promise<void>((resolve) => (listening = resolve));
  createInterface({ input: child.stdout }).on("line", (line) => {
    if (line === "listening") {
      listening();
      return;
    }
    const entry = JSON.parse(line) as { message: string; fileExisted: boolean };
    messages.push(entry);
    for (const w of waiting.filter((x) => entry.message.includes(x.text))) {
      waiting.splice(waiting.indexOf(w), 1);
      w.resolve(entry.message);
    }
  });
  await ready;
  return {
    messages,
    next: (text) => {
      const seen = messages.find((m) => m.message.includes(text));
      if (seen !== undefined) return Promise.resolve(seen.message);
      return new Promise((resolve) => waiting.push({ text, resolve }));
    },
    stop: () => {
      child.kill();
    },
  };
}
