/**
 * The dashboard at 3, 30 and 100 hosts (synthetic labs: the page and the server are real, the
 * figures made up; test/helpers/synthetic_lab.ts), in Debian's Chromium at 1280 px: the size of
 * /api/state, the time from navigation to the first full render (hosts, matrix and leases),
 * and the time one render takes, medians of several page loads in turn.
 *   node dist/bench/dashboard_bench.js   (FLANNEL_TS_BENCH_ROUNDS)
 */
import { setTimeout as delay } from "node:timers/promises";
import { startDashboardFrom } from "../lab/dashboard.js";
import { launchChromium } from "../test/helpers/browser.js";
import { syntheticLab } from "../test/helpers/synthetic_lab.js";
import { median, print } from "./bench_util.js";

const ROUNDS = Number(process.env.FLANNEL_TS_BENCH_ROUNDS ?? 5);
const browser = await launchChromium();
try {
  for (const hosts of [3, 30, 100]) {
    const dashboard = await startDashboardFrom(syntheticLab(hosts), 0);
    try {
      // Wait for the server's first measured round, so that every load has the matrix.
      let payload = "";
      for (;;) {
        payload = await (await fetch(`${dashboard.url}api/state`)).text();
        if ((JSON.parse(payload) as { matrix: unknown }).matrix !== null) break;
        await delay(100);
      }
      const firstRender: number[] = [];
      const renderMs: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
        await page.goto(dashboard.url);
        await page.waitForFunction("window.__renderedAt !== undefined");
        firstRender.push((await page.evaluate("window.__renderedAt")) as number);
        renderMs.push((await page.evaluate("window.__renderMs")) as number);
        await page.close();
      }
      print(
        `dashboard, ${hosts} hosts (${hosts * 2} pods): /api/state ${(payload.length / 1024).toFixed(1)} KiB; navigation -> first full render ${median(firstRender).toFixed(0)} ms; one render ${median(renderMs).toFixed(1)} ms (medians of ${ROUNDS})`,
      );
    } finally {
      await dashboard.close();
    }
  }
} finally {
  await browser.close();
}
