/** Debian's Chromium for the dashboard tests (never a browser a test tool downloads). */
import { chromium } from "playwright-core";

/** Debian's Chromium, headless, with the flags this machine's closed network needs. */
export function launchChromium(): ReturnType<typeof chromium.launch> {
  return chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}
