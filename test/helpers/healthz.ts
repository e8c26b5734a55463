/**
 * Reading a flanneld's healthz listener (`--healthz-port=8081`) from inside its host's
 * namespace, as a kubelet probe or Prometheus would: /healthz, /readyz, /metrics.
 */
import { execIn } from "../../lab/netns.js";

/** GETs a path on 127.0.0.1:8081 in `netns`; the status, then a newline, then the body. */
export async function healthzGet(
  netns: string,
  path: string,
): Promise<{ status: number; body: string }> {
  const out = await execIn(netns, process.execPath, [
    "-e",
    `fetch('http://127.0.0.1:8081${path}').then(async (r) => process.stdout.write(r.status + '\\n' + (await r.text())))`,
  ]);
  const nl = out.indexOf("\n");
  return { status: Number(out.slice(0, nl)), body: out.slice(nl + 1) };
}

/** The value of a metric without labels in Prometheus text; NaN when it is not there. */
export function metricValue(text: string, name: string): number {
  return Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1] ?? "NaN");
}
