/**
 * flannel's health endpoints: `GET /healthz` is 200 while flanneld runs; `GET /readyz` is 503 until
 * subnet.env is written, then 200. Same texts as flannel, so probes and scripts keep working.
 */
import { createServer } from "node:http";
import type { Server } from "node:http";
import type { Logger } from "../log/logger.js";

/** Whether flanneld has written subnet.env. */
export interface Readiness {
  ready: boolean;
}

/** Prometheus metrics in the text format, when flanneld serves them. */
export interface MetricsSource {
  readonly contentType: string;
  metrics(): Promise<string>;
}

/** Whether a connection to `local` (the address the client reached) may read /metrics. */
export function metricsAllowed(metricsIP: string, local: string | undefined): boolean {
  if (metricsIP === "0.0.0.0" || metricsIP === "::") return true;
  const reached = (local ?? "").replace(/^::ffff:/, "");
  return reached === metricsIP;
}

/**
 * Starts the healthz server; resolves once it listens. /metrics (when given) answers only
 * connections made to `metricsIP` (loopback by default), so that a listener on 0.0.0.0 for
 * the kubelet's probes does not publish the host's figures to its whole network.
 */
export async function startHealthzServer(
  address: { host: string; port: number; metricsIP?: string },
  readiness: Readiness,
  log: Logger,
  metrics?: MetricsSource,
): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res
        .writeHead(405, { "content-type": "text/plain", allow: "GET, HEAD" })
        .end("method not allowed: use GET\n");
    } else if (path === "/healthz") {
      res.writeHead(200, { "content-type": "text/plain" }).end("flanneld is running");
    } else if (path === "/readyz") {
      if (readiness.ready)
        res.writeHead(200, { "content-type": "text/plain" }).end("flanneld is ready");
      else res.writeHead(503, { "content-type": "text/plain" }).end("flanneld is not ready yet");
    } else if (
      path === "/metrics" &&
      metrics !== undefined &&
      !metricsAllowed(address.metricsIP ?? "127.0.0.1", req.socket.localAddress)
    ) {
      res
        .writeHead(403, { "content-type": "text/plain" })
        .end(
          `metrics are served on ${address.metricsIP ?? "127.0.0.1"} only: ask there, or start flanneld with --metrics-ip=0.0.0.0\n`,
        );
    } else if (path === "/metrics" && metrics !== undefined) {
      metrics.metrics().then(
        (body) => res.writeHead(200, { "content-type": metrics.contentType }).end(body),
        (err: unknown) =>
          res
            .writeHead(500, { "content-type": "text/plain" })
            .end(`cannot collect metrics: ${(err as Error).message}\n`),
      );
    } else {
      res
        .writeHead(404, { "content-type": "text/plain" })
        .end("not found: try /healthz, /readyz or /metrics\n");
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(address.port, address.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  log.info({ host: address.host, port: address.port }, "Healthz server listening");
  return server;
}
