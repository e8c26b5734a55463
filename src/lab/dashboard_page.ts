/**
 * The dashboard's page: plain HTML, SVG and a little script that reads /api/state every second.
 * Hosts sit on a circle, each with its subnet, public IP and pods; lines between hosts carry the
 * backend's name; a host whose flanneld or network is down turns red. Below: the leases in etcd
 * (or, in Kubernetes mode, the Nodes and their flannel annotations)
 * and the pod reachability matrix.
 */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>flannel-ts lab</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1d2733; background: #f6f8fa; }
  h1 { font-size: 1.3rem; margin: 0 0 .25rem; }
  h2 { font-size: 1.05rem; margin: 1.5rem 0 .5rem; }
  .meta { color: #5b6b7c; margin-bottom: 1rem; }
  svg { background: #fff; border: 1px solid #d8dee4; border-radius: 8px; }
  table { border-collapse: collapse; background: #fff; }
  th, td { border: 1px solid #d8dee4; padding: .3rem .6rem; text-align: left; font-variant-numeric: tabular-nums; }
  th { background: #eef2f6; }
  td.ok { background: #dcf5e3; } td.fail { background: #fbdcdc; } td.self { color: #9aa7b4; }
  .meta.fail { color: #b91c1c; font-weight: 700; }
  .host rect { fill: #eaf3ff; stroke: #3b82f6; stroke-width: 2; }
  .host.down rect { fill: #fdecec; stroke: #dc2626; stroke-dasharray: 6 4; }
  .host text { font-size: 12px; } .host .title { font-weight: 700; font-size: 14px; }
  line.link { stroke: #94a3b8; stroke-width: 2; } line.link.down { stroke: #fca5a5; stroke-dasharray: 4 4; }
  text.backend { font-size: 11px; fill: #64748b; }
</style>
</head>
<body>
<h1>flannel-ts lab <span id="lab"></span></h1>
<div class="meta" id="meta">loading…</div>
<svg id="map" width="900" height="560" role="img" aria-label="hosts of the lab"></svg>
<h2 id="leases-title">Leases in etcd</h2>
<table id="leases"><thead><tr><th>node</th><th>subnet</th><th>public IP</th><th>IPv6 subnet</th><th>public IPv6</th><th>backend</th><th>VTEP MAC</th></tr></thead><tbody></tbody></table>
<h2>Drill</h2>
<div id="drill" class="meta" data-running="none">no drill has run: flannelctl lab drill etcd-outage</div>
<h2>Pod reachability</h2>
<div id="matrix-meta" class="meta"></div>
<table id="matrix"></table>
<script>
const NS = "http://www.w3.org/2000/svg";
function el(name, attrs, text) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
function cell(tag, text, cls) {
  const c = document.createElement(tag);
  c.textContent = text;
  if (cls) c.className = cls;
  return c;
}
function renderDrill(d) {
  const box = document.getElementById("drill");
  if (!d) return;
  box.dataset.running = String(d.running);
  box.dataset.lost = String(d.pings.lost);
  const took = ((d.updatedAt - d.startedAt) / 1000).toFixed(0);
  box.textContent = d.drill + (d.node ? " " + d.node : "") + (d.running ? " running (" + took + " s): " + d.step : " done in " + took + " s") +
    " · pings sent " + d.pings.sent + ", lost " + d.pings.lost;
  box.className = d.pings.lost > 0 ? "meta fail" : "meta";
}
function render(state) {
  renderDrill(state.drill);
  const s = state.status;
  document.getElementById("lab").textContent = '"' + s.name + '"';
  const members = s.etcdMembers.map((m) => m.name + (m.alive ? "" : " (down)")).join(", ");
  const store = s.kubeApi ? "Kubernetes API double " + s.kubeApi.url + (s.kubeApi.alive ? "" : " (down)") : "etcd " + members;
  document.getElementById("meta").textContent =
    "backend " + s.backend + " · " + s.nodes.length + " hosts · " + store + " · updated " + new Date(state.updatedAt).toLocaleTimeString();
  document.getElementById("leases-title").textContent = s.kubeApi ? "Nodes and their flannel annotations" : "Leases in etcd";
  const svg = document.getElementById("map");
  svg.replaceChildren();
  const n = s.nodes.length, cx = 450, cy = 280, r = n > 1 ? 190 : 0;
  const pos = s.nodes.map((h, i) => ({ x: cx + r * Math.cos((2 * Math.PI * i) / n - Math.PI / 2), y: cy + r * Math.sin((2 * Math.PI * i) / n - Math.PI / 2) }));
  const up = (h) => h.flanneldAlive && h.online;
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) {
    const ok = up(s.nodes[i]) && up(s.nodes[j]);
    svg.append(el("line", { class: "link" + (ok ? "" : " down"), x1: pos[i].x, y1: pos[i].y, x2: pos[j].x, y2: pos[j].y }));
    svg.append(el("text", { class: "backend", x: (pos[i].x + pos[j].x) / 2, y: (pos[i].y + pos[j].y) / 2 - 4, "text-anchor": "middle" }, s.backend));
  }
  s.nodes.forEach((h, i) => {
    // IPv6 addresses are long: dual-stack boxes are wider.
    const w = s.nodes.some((x) => x.ipv6Subnet) ? 290 : 190;
    const g = el("g", { class: "host" + (up(h) ? "" : " down"), "data-host": h.name, "data-state": up(h) ? "up" : "down", transform: "translate(" + (pos[i].x - w / 2) + "," + (pos[i].y - 50) + ")" });
    g.append(el("rect", { width: w, height: 100 + 14 * Math.max(0, h.pods.length - 1), rx: 10 }));
    g.append(el("text", { class: "title", x: 10, y: 20 }, h.name + (up(h) ? "" : " — down")));
    g.append(el("text", { class: "subnet", x: 10, y: 38 }, "subnet " + ([h.subnet, h.ipv6Subnet].filter(Boolean).join(" ") || "—")));
    g.append(el("text", { x: 10, y: 54 }, "public IP " + [h.publicIP, h.publicIPv6].filter(Boolean).join(" ")));
    h.pods.forEach((p, k) => g.append(el("text", { class: "pod", x: 10, y: 72 + 14 * k }, "pod " + p.name + " " + [p.ip, p.ip6].filter(Boolean).join(" "))));
    svg.append(g);
  });
  const tbody = document.querySelector("#leases tbody");
  tbody.replaceChildren();
  for (const l of s.leases || []) {
    const tr = document.createElement("tr");
    tr.append(cell("td", l.node || "—"), cell("td", l.subnet || "—"), cell("td", l.publicIP || "—"), cell("td", l.ipv6Subnet || "—"), cell("td", l.publicIPv6 || "—"), cell("td", l.backendType || "—"), cell("td", l.vtepMac || "—"));
    tbody.append(tr);
  }
  const m = state.matrix, table = document.getElementById("matrix");
  table.replaceChildren();
  if (!m) { document.getElementById("matrix-meta").textContent = "measuring…"; return; }
  const failed = m.results.filter((x) => !x.ok).length;
  document.getElementById("matrix-meta").textContent = (failed === 0 ? "every pair reaches the other" : failed + " of " + m.results.length + " pairs fail") + " · measured " + new Date(m.at).toLocaleTimeString();
  const head = document.createElement("tr");
  head.append(cell("th", "from \\\\ to"));
  for (const p of m.pods) head.append(cell("th", p));
  table.append(head);
  for (const from of m.pods) {
    const tr = document.createElement("tr");
    tr.append(cell("th", from));
    for (const to of m.pods) {
      if (from === to) { tr.append(cell("td", "—", "self")); continue; }
      // Dual-stack: a pair is good only if it reaches over both families.
      const all = m.results.filter((x) => x.from === from && x.to === to);
      const v4 = all.find((x) => x.family !== 6), v6 = all.find((x) => x.family === 6);
      const rtt = (x) => (x.rttMs === null ? "ok" : x.rttMs.toFixed(2) + " ms");
      if (all.length === 0 || all.some((x) => !x.ok)) {
        tr.append(cell("td", all.length === 0 ? "fail" : all.filter((x) => !x.ok).map((x) => (x.family === 6 ? "v6 fail" : "fail")).join(" · "), "fail"));
      } else {
        tr.append(cell("td", [v4 ? rtt(v4) : null, v6 ? "v6 " + rtt(v6) : null].filter(Boolean).join(" · "), "ok"));
      }
    }
    table.append(tr);
  }
}
async function tick() {
  try { render(await (await fetch("/api/state")).json()); } catch (e) { document.getElementById("meta").textContent = "cannot reach the lab: " + e; }
  setTimeout(tick, 1000);
}
tick();
</script>
</body>
</html>
`;
