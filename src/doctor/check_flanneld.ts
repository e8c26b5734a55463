/** Doctor's first check: flanneld runs here, and (when it serves health) says it is ready. */
import type { FlanneldOptions } from "../daemon/run_flanneld.js";
import { finding } from "./finding.js";
import type { CheckGroup } from "./finding.js";
import type { FlanneldProcess } from "./flanneld_process.js";

/** Asks flanneld's /readyz; resolves with the status, or the error's message. */
async function readyz(options: FlanneldOptions): Promise<number | string> {
  const host =
    options.healthzIP === "0.0.0.0" || options.healthzIP === "" ? "127.0.0.1" : options.healthzIP;
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${options.healthzPort}/readyz`;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(3_000) });
    await res.arrayBuffer();
    return res.status;
  } catch (err) {
    return `${url}: ${(err as Error).message}`;
  }
}

export async function checkFlanneld(
  processes: readonly FlanneldProcess[],
  options: FlanneldOptions,
): Promise<CheckGroup> {
  const name = "flanneld";
  if (processes.length === 0) {
    return {
      name,
      findings: [
        finding(
          "flanneld-not-running",
          "error",
          "flanneld",
          "no flanneld runs in this network namespace",
          "nothing renews this host's lease or follows the other hosts': routes go stale, and the lease expires",
          "systemctl start flanneld (or check the kube-flannel pod on this node: kubectl -n kube-flannel get pods -o wide)",
        ),
      ],
    };
  }
  if (processes.length > 1) {
    return {
      name,
      findings: [
        finding(
          "flanneld-duplicate",
          "error",
          "flanneld",
          `${processes.length} flanneld processes run here (pids ${processes.map((p) => p.pid).join(", ")})`,
          "they fight over the same devices, routes and lease",
          "stop all but one (systemctl stop flanneld; or remove the second DaemonSet)",
        ),
      ],
    };
  }
  if (options.healthzPort <= 0)
    return {
      name,
      findings: [],
      skipped: `readiness not checked: flanneld (pid ${processes[0]?.pid}) runs without --healthz-port, so a stopped or hung flanneld looks like a healthy one`,
    };
  const status = await readyz(options);
  if (status === 200) return { name, findings: [] };
  return {
    name,
    findings: [
      finding(
        "flanneld-not-ready",
        "error",
        "flanneld",
        typeof status === "number"
          ? `flanneld runs (pid ${processes[0]?.pid}) but /readyz answers ${status}: it has not written subnet.env yet`
          : `flanneld runs (pid ${processes[0]?.pid}) but its health endpoint does not answer: ${status}`,
        "until it is ready, pods on this host cannot start",
        "read flanneld's log (journalctl -u flanneld, or kubectl -n kube-flannel logs <pod>)",
      ),
    ],
  };
}
