/**
 * The lab's dashboard server (`flannelctl lab ui`): serves the page and /api/state on 127.0.0.1.
 * The state is re-read every second; the pod reachability matrix is measured in the background
 * every few seconds. Plain node:http, no framework.
 */
import { createServer } from "node:http";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as delay } from "node:timers/promises";
import { listPods, readLab } from "./cluster.js";
import { DASHBOARD_HTML } from "./dashboard_page.js";
import { readDrillState } from "./drills.js";
import type { DrillState } from "./drills.js";
import { pingAll } from "./lab_check.js";
import type { PingResult } from "./lab_check.js";
import { labStatus } from "./lab_status.js";
import type { LabStatus } from "./lab_status.js";

/** What /api/state answers. */
export interface DashboardState {
  readonly status: LabStatus;
  readonly matrix: {
    readonly pods: readonly string[];
    readonly results: readonly PingResult[];
    readonly at: number;
  } | null;
  /** The drill running or last run (`lab drill`), with its ping counts; null when none ran. */
  readonly drill: DrillState | null;
  readonly updatedAt: number;
}

const MATRIX_INTERVAL_MS = 3_000;

/** A running dashboard. */
export interface Dashboard {
  readonly url: string;
  readonly server: Server;
  close(): Promise<void>;
}

/** Starts the dashboard for a lab; `port` 0 picks a free one. */
export async function startDashboard(labName: string, port: number): Promise<Dashboard> {
  let matrix: DashboardState["matrix"] = null;
  let cached: { at: number; status: LabStatus } | null = null;
  const controller = new AbortController();
  const current = async () => {
    const lab = await readLab(labName);
    if (lab === null) throw new Error(`lab "${labName}" is not up`);
    return lab;
  };
  const statusNow = async () => {
    if (cached === null || Date.now() - cached.at > 900)
      cached = { at: Date.now(), status: await labStatus(await current()) };
    return cached.status;
  };
  // The matrix is measured in the background so that a page load never waits for pings.
  void (async () => {
    while (!controller.signal.aborted) {
      try {
        const pods = await listPods(await current());
        const results = await pingAll(pods, 6, 1);
        matrix = { pods: pods.map((p) => p.name), results, at: Date.now() };
      } catch {
        // the lab may be going down; try again
      }
      await delay(MATRIX_INTERVAL_MS, undefined, { signal: controller.signal }).catch(
        () => undefined,
      );
    }
  })();
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/" || path === "/index.html") {
      res
        .writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" })
        .end(DASHBOARD_HTML);
      return;
    }
    if (path === "/api/state") {
      Promise.all([statusNow(), current().then(readDrillState)]).then(
        ([status, drill]) => {
          const state: DashboardState = { status, matrix, drill, updatedAt: Date.now() };
          res
            .writeHead(200, { "content-type": "application/json", "cache-control": "no-store" })
            .end(JSON.stringify(state));
        },
        (err: unknown) => {
          res
            .writeHead(503, { "content-type": "application/json" })
            .end(JSON.stringify({ error: (err as Error).message }));
        },
      );
      return;
    }
    res.writeHead(404, { "content-type": "text/plain" }).end("not found: try / or /api/state\n");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      resolve();
    });
  });
  const { port: bound } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${bound}/`,
    server,
    async close() {
      controller.abort();
      server.closeAllConnections();
      await new Promise<void>((resolve) =>
        server.close(() => {
          resolve();
        }),
      );
    },
  };
}
