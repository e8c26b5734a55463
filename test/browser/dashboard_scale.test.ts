/**
 * The dashboard at 3, 8 and 30 hosts in Debian's Chromium at 1280 px (and 30 on a phone-sized
 * window), on a synthetic lab of that size (test/helpers/synthetic_lab.ts): no two hosts
 * overlap, every host's name and subnet can be read, the page never scrolls sideways, a killed
 * host turns red within the refresh period, and a refresh keeps the selection and the filter.
 * A screenshot of each size is kept in dist/test-output/.
 */
import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { Browser, Page } from "playwright-core";
import { REPO_ROOT } from "../../lab/cluster.js";
import { startDashboardFrom } from "../../lab/dashboard.js";
import { launchChromium } from "../helpers/browser.js";
import { syntheticLab } from "../helpers/synthetic_lab.js";

const OUTPUT = join(REPO_ROOT, "dist/test-output");
let browser: Browser;

before(async () => {
  browser = await launchChromium();
  await mkdir(OUTPUT, { recursive: true });
});
after(async () => {
  await browser.close();
});

interface Box {
  readonly host: string;
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
}

/** Every host element's box, and whether its name and subnet show in full (in the page). */
const HOST_BOXES = `[...document.querySelectorAll("[data-host]")].map((e) => {
  const r = e.getBoundingClientRect();
  const lines = [...e.querySelectorAll(".name, .line")].slice(0, 2);
  const clipped = lines.some((l) => l.scrollWidth > l.clientWidth + 1);
  return { host: e.dataset.host, x: r.x, y: r.y, width: r.width, height: r.height,
    readable: !clipped && r.width > 0 && r.height > 0, text: e.textContent };
})`;

async function hostBoxes(page: Page): Promise<(Box & { readable: boolean; text: string })[]> {
  return (await page.evaluate(HOST_BOXES)) as (Box & { readable: boolean; text: string })[];
}

function overlaps(a: Box, b: Box): boolean {
  return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
}

for (const [hosts, width, height] of [
  [3, 1280, 900],
  [8, 1280, 900],
  [30, 1280, 900],
  [30, 390, 844],
] as const) {
  test(`${hosts} hosts at ${width} px: no overlap, every name and subnet readable, no sideways scroll, leases sort, a killed host turns red, a refresh keeps the selection and filter`, async (t) => {
    const lab = syntheticLab(hosts);
    const dashboard = await startDashboardFrom(lab, 0);
    const page = await browser.newPage({ viewport: { width, height } });
    try {
      await page.goto(dashboard.url);
      await page.locator(`[data-host="h${hosts}"]`).waitFor();
      await page.locator("#matrix td.ok").first().waitFor({ timeout: 20_000 });
      const boxes = await hostBoxes(page);
      assert.equal(boxes.length, hosts);
      for (let i = 0; i < boxes.length; i++)
        for (let j = i + 1; j < boxes.length; j++) {
          const [a, b] = [boxes[i], boxes[j]];
          assert.ok(a && b && !overlaps(a, b), `${a?.host} and ${b?.host} overlap`);
        }
      for (const [i, box] of boxes.entries()) {
        assert.ok(box.readable, `${box.host}: its name or subnet is cut`);
        assert.ok(
          box.text.includes(`h${i + 1}`) && box.text.includes(`10.244.${i + 1}.0/24`),
          box.text,
        );
      }
      const sideways = (await page.evaluate(
        "document.documentElement.scrollWidth - window.innerWidth",
      )) as number;
      assert.ok(sideways <= 0, `the page scrolls sideways by ${sideways} px`);
      const shot = join(OUTPUT, `dashboard-${hosts}-hosts-${width}px.png`);
      await page.screenshot({ path: shot, fullPage: true });
      t.diagnostic(`screenshot: ${shot}`);

      // The leases sort by subnet, both ways, by a click on its head.
      const firstSubnet = () => page.locator("#leases tbody tr td").nth(1).textContent();
      assert.equal(await firstSubnet(), "10.244.1.0/24");
      await page.locator('#leases th[data-sort="subnet"]').click();
      assert.equal(await firstSubnet(), `10.244.${hosts}.0/24`);
      await page.locator('#leases th[data-sort="subnet"]').click();
      assert.equal(await firstSubnet(), "10.244.1.0/24");

      // A selection and a filter survive the refreshes.
      await page.locator('[data-host="h2"]').click();
      await page.locator("#filter").fill(`10.244.${hosts}.`);
      const rendered = (await page.evaluate("window.__renderedAt")) as number;
      await page.waitForFunction(`window.__renderedAt > ${rendered} + 1`);
      await page.locator('[data-host="h2"].selected').waitFor({ timeout: 1_000 });
      assert.match((await page.locator("#detail").textContent()) ?? "", /Its links:/);
      assert.equal(await page.locator("#leases tbody tr").count(), 1);

      // A killed host: red within the refresh period (the state is re-read every second).
      lab.kill(`h${hosts}`);
      await page.locator(`[data-host="h${hosts}"][data-state="down"]`).waitFor({ timeout: 5_000 });
      assert.equal(await page.locator('[data-host="h1"]').getAttribute("data-state"), "up");
    } finally {
      await page.close();
      await dashboard.close();
    }
  });
}

test("the dashboard labels the links encrypted on wireguard, unencrypted on vxlan, and shows each host's public key", async () => {
  for (const backend of ["wireguard", "vxlan"] as const) {
    const lab = syntheticLab(3, 1, backend);
    const dashboard = await startDashboardFrom(lab, 0);
    const page = await browser.newPage();
    try {
      await page.goto(dashboard.url);
      await page.locator('[data-host="h2"]').click();
      await page.locator('[data-host="h2"].selected').waitFor();
      const detail = (await page.locator("#detail").textContent()) ?? "";
      const key = Buffer.alloc(32, 2).toString("base64");
      if (backend === "wireguard") {
        assert.match(detail, /h2 ↔ h1 \(wireguard, encrypted\)/);
        assert.ok(detail.includes(`public key ${key}`), detail);
        assert.ok(((await page.locator("#leases").textContent()) ?? "").includes(key));
      } else {
        assert.match(detail, /h2 ↔ h1 \(vxlan, unencrypted\)/);
        assert.ok(!detail.includes("public key"), detail);
      }
    } finally {
      await page.close();
      await dashboard.close();
    }
  }
});
