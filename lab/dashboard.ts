/**
 * The lab's dashboard server (`flannelctl lab ui`): serves the page, /api/state (the hosts, the
 * leases, the drill, and the reachability matrix summed up host by host) and /api/pods (the
 * pod-level results, on demand) on 127.0.0.1. The state is re-read at most once a second; the
 * matrix is measured in the background, one round after another. Plain node:http.
 */
import { createServer } from "node:http";
import type { Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as delay } from "node:timers/promises";
import { listPods, readLab } from "./cluster.js";
import type { LabPod } from "./cluster.js";
import { DASHBOARD_HTML } from "./dashboard_page.js";
import { readDrillState } from "./drills.js";
import type { DrillState } from "./drills.js";
import { pingAll } from "./lab_check.js";
import { registersPods } from "./kubelet.js";
import { policyResults } from "./netpol.js";
import type { PingResult } from "./lab_check.js";
import { labStatus } from "./lab_status.js";
import type { LabStatus } from "./lab_status.js";

/** The reachability matrix summed up host by host: what the page draws. */
export interface HostMatrix {
  readonly hosts: readonly string[];
  /**
   * Indexed [from][to] in `hosts` order (a host with itself: between its own pods): the pod pairs
   * measured, how many failed, and the median round trip of those that worked (null: none).
   */
  readonly grid: {
    readonly pairs: readonly (readonly number[])[];
    readonly failed: readonly (readonly number[])[];
    readonly rttMs: readonly (readonly (number | null)[])[];
    /** Under NetworkPolicy: the pairs the policies block, and that were blocked. */
    readonly blocked: readonly (readonly number[])[];
  };
  /** Failing pod pairs (the first MAX_FAILURES). */
  readonly failures: readonly {
    readonly from: string;
    readonly to: string;
    readonly family: 4 | 6;
  }[];
  readonly pods: number;
  readonly pairs: number;
  readonly failed: number;
  /** Pairs blocked by NetworkPolicy, as the policies say (they count as working). */
  readonly blocked: number;
  readonly at: number;
}

/** What /api/state answers. */
export interface DashboardState {
  readonly status: LabStatus;
  readonly matrix: HostMatrix | null;
  /** The drill running or last run (`lab drill`), with its ping counts; null when none ran. */
  readonly drill: DrillState | null;
  readonly updatedAt: number;
}

/** Where the dashboard reads a lab: the lab itself, or (tests, benches) a stand-in. */
export interface DashboardSource {
  status(): Promise<LabStatus>;
  drill(): Promise<DrillState | null>;
  /** One round of pings between every pair of pods. */
  measure(): Promise<{ readonly pods: readonly LabPod[]; readonly results: readonly PingResult[] }>;
}

const MATRIX_INTERVAL_MS = 3_000;
const MAX_FAILURES = 200;

/** A running lab as the dashboard's source. */
export function labSource(labName: string): DashboardSource {
  const current = async () => {
    const lab = await readLab(labName);
    if (lab === null) throw new Error(`lab "${labName}" is not up`);
    return lab;
  };
  return {
    status: async () => labStatus(await current()),
    drill: async () => readDrillState(await current()),
    async measure() {
      const lab = await current();
      const pods = await listPods(lab);
      // Under NetworkPolicy a ping says little: TCP probes, judged against the policies.
      if (registersPods(lab)) return { pods, results: await policyResults(lab, pods) };
      return { pods, results: await pingAll(pods, 6, 1) };
    },
  };
}

/** Sums pod-pair results up by pair of hosts. */
export function hostMatrix(
  hosts: readonly string[],
  pods: readonly LabPod[],
  results: readonly PingResult[],
  at: number,
): HostMatrix {
  const index = new Map(hosts.map((h, i) => [h, i]));
  const hostIndex = new Map(pods.map((p) => [p.name, index.get(p.node)]));
  const square = <T>(fill: T): T[][] => hosts.map(() => hosts.map(() => fill));
  const pairs = square(0);
  const failedCells = square(0);
  const blockedCells = square(0);
  let blocked = 0;
  const rtts = hosts.map(() => hosts.map((): number[] => []));
  const failures: { from: string; to: string; family: 4 | 6 }[] = [];
  let failed = 0;
  let counted = 0;
  for (const r of results) {
    const from = hostIndex.get(r.from);
    const to = hostIndex.get(r.to);
    if (from === undefined || to === undefined) continue;
    counted++;
    (pairs[from] as number[])[to] = (pairs[from]?.[to] ?? 0) + 1;
    if (r.blockedByPolicy === true) {
      (blockedCells[from] as number[])[to] = (blockedCells[from]?.[to] ?? 0) + 1;
      blocked++;
    }
    if (!r.ok) {
      (failedCells[from] as number[])[to] = (failedCells[from]?.[to] ?? 0) + 1;
      failed++;
      if (failures.length < MAX_FAILURES)
        failures.push({ from: r.from, to: r.to, family: r.family === 6 ? 6 : 4 });
    } else if (r.rttMs !== null) rtts[from]?.[to]?.push(r.rttMs);
  }
  const median = (values: number[]): number | null => {
    const sorted = values.sort((a, b) => a - b);
    const mid = sorted[Math.floor(sorted.length / 2)];
    return mid === undefined ? null : Math.round(mid * 100) / 100;
  };
  return {
    hosts,
    grid: {
      pairs,
      failed: failedCells,
      rttMs: rtts.map((row) => row.map(median)),
      blocked: blockedCells,
    },
    failures,
    pods: pods.length,
    pairs: counted,
    failed,
    blocked,
    at,
  };
}

/** A running dashboard. */
export interface Dashboard {
  readonly url: string;
  readonly server: Server;
  close(): Promise<void>;
}

/** Starts the dashboard for a lab; `port` 0 picks a free one. */
export function startDashboard(labName: string, port: number): Promise<Dashboard> {
  return startDashboardFrom(labSource(labName), port);
}

/** The last ping matrix measured, with its pods and time. */
type Measured = { pods: readonly LabPod[]; results: readonly PingResult[]; at: number } | null;

/** Measures the ping matrix in the background, so that a page load never waits for pings. */
function measureInBackground(source: DashboardSource, signal: AbortSignal): () => Measured {
  let measured: Measured = null;
  void (async () => {
    while (!signal.aborted) {
      try {
        measured = { ...(await source.measure()), at: Date.now() };
      } catch {
        // the lab may be going down; try again
      }
      await delay(MATRIX_INTERVAL_MS, undefined, { signal }).catch(() => undefined);
    }
  })();
  return () => measured;
}

const sendJson = (res: ServerResponse, body: unknown) => {
  res
    .writeHead(200, { "content-type": "application/json", "cache-control": "no-store" })
    .end(JSON.stringify(body));
};

/** /api/state: the lab's status (at most ~1 s old), the matrix and the drill. */
function stateAnswer(source: DashboardSource, measured: () => Measured) {
  let cached: { at: number; status: LabStatus } | null = null;
  const statusNow = async () => {
    if (cached === null || Date.now() - cached.at > 900)
      cached = { at: Date.now(), status: await source.status() };
    return cached.status;
  };
  return (res: ServerResponse) => {
    Promise.all([statusNow(), source.drill()]).then(
      ([status, drill]) => {
        const m = measured();
        const matrix =
          m === null
            ? null
            : hostMatrix(
                status.nodes.map((n) => n.name),
                m.pods,
                m.results,
                m.at,
              );
        const state: DashboardState = { status, matrix, drill, updatedAt: Date.now() };
        sendJson(res, state);
      },
      (err: unknown) => {
        res
          .writeHead(503, { "content-type": "application/json" })
          .end(JSON.stringify({ error: (err as Error).message }));
      },
    );
  };
}

/** Starts the dashboard on any source. */
export async function startDashboardFrom(
  source: DashboardSource,
  port: number,
): Promise<Dashboard> {
  const controller = new AbortController();
  const measured = measureInBackground(source, controller.signal);
  const state = stateAnswer(source, measured);
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/" || path === "/index.html") {
      res
        .writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" })
        .end(DASHBOARD_HTML);
      return;
    }
    if (path === "/api/state") {
      state(res);
      return;
    }
    if (path === "/api/pods") {
      const m = measured();
      sendJson(
        res,
        m === null ? null : { pods: m.pods.map((p) => p.name), results: m.results, at: m.at },
      );
      return;
    }
    res
      .writeHead(404, { "content-type": "text/plain" })
      .end("not found: try /, /api/state or /api/pods\n");
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
