/**
 * The dashboard's page: plain HTML, CSS and a little script that reads /api/state every second.
 *
 * It stays readable from 3 hosts to 100: the hosts are a grid that uses the width it has (no
 * two boxes can overlap), as cards with their details up to COMPACT_AFTER hosts and as compact
 * tiles (name, subnet, state colour; details on hover, or on click) past that. The underlay is
 * one bar, each host's overlay state is its colour, and the links of a selected host are drawn
 * by colouring its peers (reached or not) and listed beside it, instead of a full mesh. The
 * reachability matrix is host × host (a cell sums up every pod pair between two hosts), with the
 * failing pod pairs listed under it and the pod-level matrix on demand. The lease (or Node)
 * table sorts by subnet, host or age and filters as you type. A refresh keeps the selection,
 * the sort, the filter and the scroll; the page has no horizontal scroll at 1280 px or on a
 * phone (wide tables scroll inside their own box).
 */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>flannel-ts lab</title>
<style>
  * { box-sizing: border-box; }
  body { font: 14px/1.4 system-ui, sans-serif; margin: 0; padding: 1rem 1.5rem; color: #1d2733; background: #f6f8fa; }
  h1 { font-size: 1.3rem; margin: 0 0 .25rem; }
  h2 { font-size: 1.05rem; margin: 1.5rem 0 .5rem; }
  .meta { color: #5b6b7c; margin-bottom: .75rem; overflow-wrap: anywhere; }
  .meta.fail { color: #b91c1c; font-weight: 700; }
  .underlay { background: #334155; color: #fff; border-radius: 6px; padding: .35rem .75rem; margin-bottom: .6rem; overflow-wrap: anywhere; }
  .hosts { display: grid; gap: .6rem; grid-template-columns: repeat(auto-fill, minmax(230px, 1fr)); }
  .hosts.compact { grid-template-columns: repeat(auto-fill, minmax(118px, 1fr)); gap: .4rem; }
  .host { background: #eaf3ff; border: 2px solid #3b82f6; border-radius: 8px; padding: .45rem .6rem; cursor: pointer; min-width: 0; overflow: hidden; }
  .host.down { background: #fdecec; border-color: #dc2626; border-style: dashed; }
  .host .name { font-weight: 700; }
  .host .line { font-size: 12px; overflow-wrap: anywhere; }
  .host.compact { padding: .3rem .45rem; }
  .host.compact .line { font-size: 11px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
  .host.selected { outline: 3px solid #111827; outline-offset: 1px; }
  .host.peer-ok { box-shadow: 0 0 0 3px #16a34a; }
  .host.peer-fail { box-shadow: 0 0 0 3px #dc2626; }
  .detail { background: #fff; border: 1px solid #d8dee4; border-radius: 8px; padding: .6rem .8rem; margin-top: .6rem; }
  .detail ul { margin: .3rem 0 0; padding-left: 1.2rem; columns: 14rem; }
  .scroll { max-width: 100%; overflow-x: auto; }
  table { border-collapse: collapse; background: #fff; }
  th, td { border: 1px solid #d8dee4; padding: .3rem .6rem; text-align: left; font-variant-numeric: tabular-nums; }
  th { background: #eef2f6; }
  th[data-sort] { cursor: pointer; user-select: none; }
  th[data-sort].sorted::after { content: " \\25B4"; } th[data-sort].sorted.desc::after { content: " \\25BE"; }
  td.ok { background: #dcf5e3; } td.fail { background: #fbdcdc; } td.blocked { background: #e5e7eb; } td.self { color: #9aa7b4; } td.none { background: #f1f5f9; }
  #matrix.small th, #matrix.small td { padding: 0; width: 1.1rem; height: 1.1rem; font-size: 0; }
  #matrix.small th { font-size: 9px; }
  #failures { color: #b91c1c; }
  input#filter { font: inherit; padding: .3rem .5rem; margin-bottom: .5rem; width: min(24rem, 100%); }
</style>
</head>
<body>
<h1>flannel-ts lab <span id="lab"></span></h1>
<div class="meta" id="meta">loading…</div>
<h2>Hosts</h2>
<div class="underlay" id="underlay"></div>
<div class="hosts" id="hosts"></div>
<div class="detail" id="detail" hidden></div>
<h2>Drill</h2>
<div id="drill" class="meta" data-running="none">no drill has run: flannelctl lab drill etcd-outage</div>
<h2>Pod reachability</h2>
<div id="matrix-meta" class="meta"></div>
<div class="scroll" id="matrix-box"><table id="matrix"></table></div>
<ul id="failures"></ul>
<details id="pod-detail"><summary>Pod-level matrix</summary><div class="scroll"><table id="pod-matrix"></table></div></details>
<h2 id="leases-title">Leases in etcd</h2>
<input id="filter" type="search" placeholder="filter: host, subnet, address, MAC…" aria-label="filter the leases">
<div class="scroll"><table id="leases"><thead><tr>
<th data-sort="node">node</th><th data-sort="subnet">subnet</th><th data-sort="host">public IP</th><th>IPv6 subnet</th><th>public IPv6</th><th>backend</th><th>VTEP MAC / public key</th><th data-sort="age">age</th>
</tr></thead><tbody></tbody></table></div>
<script>
const COMPACT_AFTER = 12;
const ui = { selected: null, sort: { key: "subnet", desc: false }, state: null };
function cell(tag, text, cls) {
  const c = document.createElement(tag);
  c.textContent = text;
  if (cls) c.className = cls;
  return c;
}
function div(cls, text) {
  const d = document.createElement("div");
  d.className = cls;
  if (text !== undefined) d.textContent = text;
  return d;
}
const up = (h) => h.flanneldAlive && h.online;
function ipNum(cidr) {
  const m = /^(\\d+)\\.(\\d+)\\.(\\d+)\\.(\\d+)/.exec(cidr || "");
  return m ? ((+m[1] * 256 + +m[2]) * 256 + +m[3]) * 256 + +m[4] : Infinity;
}
/** A host × host cell of the matrix: { pairs, failed, rttMs }; undefined when nothing was measured. */
function cellOf(m, from, to) {
  if (!m) return undefined;
  if (!m.index) m.index = new Map(m.hosts.map((h, i) => [h, i]));
  const i = m.index.get(from), j = m.index.get(to);
  if (i === undefined || j === undefined || !m.grid.pairs[i][j]) return undefined;
  const blocked = m.grid.blocked ? m.grid.blocked[i][j] : 0;
  return { pairs: m.grid.pairs[i][j], failed: m.grid.failed[i][j], rttMs: m.grid.rttMs[i][j], blocked };
}
/** Whether two hosts' pods reach each other both ways: true, false, or null when not measured. */
function linkState(m, a, b) {
  const x = cellOf(m, a, b), y = cellOf(m, b, a);
  if (!x && !y) return null;
  return (x ? x.failed === 0 : true) && (y ? y.failed === 0 : true);
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
function hostLines(h) {
  return [
    "subnet " + ([h.subnet, h.ipv6Subnet].filter(Boolean).join(" ") || "—"),
    "public IP " + [h.publicIP, h.publicIPv6].filter(Boolean).join(" "),
    (h.publicKey ? "public key " + h.publicKey : "VTEP MAC " + (h.vtepMac || "—")) + " · MTU " + (h.mtu === null ? "—" : h.mtu),
    "flanneld " + (h.flanneldAlive ? "running (pid " + h.flanneldPid + ")" : "not running") + " · network " + (h.online ? "up" : "down"),
  ].concat(h.pods.map((p) => "pod " + p.name + " " + [p.ip, p.ip6].filter(Boolean).join(" ")));
}
function linkKind(s) {
  return s.backend + (s.encrypted ? ", encrypted" : ", unencrypted");
}
function renderHosts(s, m) {
  const compact = s.nodes.length > COMPACT_AFTER;
  const box = document.getElementById("hosts");
  box.className = "hosts" + (compact ? " compact" : "");
  const nodes = s.nodes.map((h) => {
    const e = div("host" + (compact ? " compact" : "") + (up(h) ? "" : " down"));
    e.dataset.host = h.name;
    e.dataset.state = up(h) ? "up" : "down";
    e.tabIndex = 0;
    e.title = [h.name + (up(h) ? "" : " — down")].concat(hostLines(h)).join("\\n");
    e.append(div("name", h.name + (up(h) ? "" : " — down")));
    const lines = hostLines(h);
    for (const line of compact ? lines.slice(0, 1).map((l) => l.replace(/^subnet /, "")) : lines) e.append(div("line", line));
    if (ui.selected === h.name) e.classList.add("selected");
    else if (ui.selected) {
      const link = linkState(m, ui.selected, h.name);
      if (link !== null) e.classList.add(link ? "peer-ok" : "peer-fail");
    }
    const select = () => { ui.selected = ui.selected === h.name ? null : h.name; render(ui.state); };
    e.addEventListener("click", select);
    e.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); select(); } });
    return e;
  });
  box.replaceChildren(...nodes);
  const detail = document.getElementById("detail");
  const h = s.nodes.find((x) => x.name === ui.selected);
  if (!h) { detail.hidden = true; return; }
  detail.hidden = false;
  const list = document.createElement("ul");
  for (const peer of s.nodes) {
    if (peer.name === h.name) continue;
    const link = linkState(m, h.name, peer.name);
    list.append(cell("li", h.name + " ↔ " + peer.name + " (" + linkKind(s) + "): " + (link === null ? "not measured" : link ? "pods reach each other" : "FAILING")));
  }
  detail.replaceChildren(div("name", h.name + (up(h) ? "" : " — down")), ...hostLines(h).map((l) => div("line", l)), div("line", "Its links:"), list);
}
function renderMatrix(s, m) {
  const table = document.getElementById("matrix");
  const meta = document.getElementById("matrix-meta");
  const failures = document.getElementById("failures");
  if (!m) { meta.textContent = "measuring…"; table.replaceChildren(); failures.replaceChildren(); return; }
  const policy = m.blocked > 0 ? " · " + m.blocked + " pairs blocked by NetworkPolicy, as the policies say" : "";
  meta.textContent = (m.failed === 0 ? (m.blocked > 0 ? "every pod pair behaves as the policies say" : "every pod pair reaches the other") : m.failed + " of " + m.pairs + " pod pairs fail") + policy +
    " · " + m.pods + " pods on " + m.hosts.length + " hosts · a cell sums up every pod pair between two hosts · measured " + new Date(m.at).toLocaleTimeString();
  const small = m.hosts.length > COMPACT_AFTER;
  table.className = small ? "small" : "";
  const head = document.createElement("tr");
  head.append(cell("th", small ? "" : "from \\\\ to"));
  // Small cells: the column heads are the hosts' numbers.
  for (const h of m.hosts) head.append(cell("th", small ? h.replace(/^h/, "") : h));
  const rows = [head];
  for (const from of m.hosts) {
    const tr = document.createElement("tr");
    tr.append(cell("th", from));
    for (const to of m.hosts) {
      const c = cellOf(m, from, to);
      let td;
      if (!c) td = cell("td", "—", from === to ? "self" : "none");
      else if (c.failed > 0) td = cell("td", c.failed + "/" + c.pairs + " fail", "fail");
      else if (c.blocked > 0) td = cell("td", c.blocked + "/" + c.pairs + " blocked", "blocked");
      else td = cell("td", c.rttMs === null ? "ok" : c.rttMs.toFixed(2) + " ms", "ok");
      td.title = from + " → " + to + (c ? ": " + (c.pairs - c.failed) + " of " + c.pairs + " pod pairs reach" : "");
      tr.append(td);
    }
    rows.push(tr);
  }
  table.replaceChildren(...rows);
  failures.replaceChildren(...m.failures.map((f) => cell("li", f.from + " → " + f.to + (f.family === 6 ? " (IPv6)" : "") + " fails")));
  if (m.failed > m.failures.length) failures.append(cell("li", "… and " + (m.failed - m.failures.length) + " more"));
}
async function renderPodMatrix() {
  const table = document.getElementById("pod-matrix");
  const res = await fetch("/api/pods", { cache: "no-store" });
  const data = await res.json();
  if (!data) { table.replaceChildren(cell("td", "measuring…")); return; }
  const head = document.createElement("tr");
  head.append(cell("th", "from \\\\ to"));
  for (const p of data.pods) head.append(cell("th", p));
  const rows = [head];
  for (const from of data.pods) {
    const tr = document.createElement("tr");
    tr.append(cell("th", from));
    for (const to of data.pods) {
      if (from === to) { tr.append(cell("td", "—", "self")); continue; }
      const all = data.results.filter((x) => x.from === from && x.to === to);
      const bad = all.length === 0 || all.some((x) => !x.ok);
      tr.append(cell("td", bad ? "fail" : all.map((x) => (x.family === 6 ? "v6 " : "") + (x.rttMs === null ? "ok" : x.rttMs.toFixed(2) + " ms")).join(" · "), bad ? "fail" : "ok"));
    }
    rows.push(tr);
  }
  table.replaceChildren(...rows);
}
function ageText(a) {
  if (!a) return "—";
  if (a.revision !== undefined) return "rev " + a.revision;
  const s = Math.max(0, Math.round((Date.now() - a.createdAt) / 1000));
  return s < 120 ? s + " s" : s < 7200 ? Math.round(s / 60) + " min" : Math.round(s / 3600) + " h";
}
function ageKey(a) {
  if (!a) return Infinity;
  return a.revision !== undefined ? -a.revision : a.createdAt;
}
function renderLeases(s) {
  document.getElementById("leases-title").textContent = s.kubeApi ? "Nodes and their flannel annotations" : "Leases in etcd";
  const filter = document.getElementById("filter").value.trim().toLowerCase();
  const key = ui.sort.key;
  const value = (l) => key === "subnet" ? ipNum(l.subnet) : key === "host" ? ipNum(l.publicIP) : key === "age" ? ageKey(l.age) : (l.node || "");
  const rows = (s.leases || [])
    .filter((l) => !filter || [l.node, l.subnet, l.publicIP, l.ipv6Subnet, l.publicIPv6, l.backendType, l.vtepMac, l.publicKey].some((v) => v && String(v).toLowerCase().includes(filter)))
    .sort((a, b) => { const x = value(a), y = value(b); return (x < y ? -1 : x > y ? 1 : 0) * (ui.sort.desc ? -1 : 1); });
  document.querySelector("#leases tbody").replaceChildren(...rows.map((l) => {
    const tr = document.createElement("tr");
    tr.append(cell("td", l.node || "—"), cell("td", l.subnet || "—"), cell("td", l.publicIP || "—"), cell("td", l.ipv6Subnet || "—"), cell("td", l.publicIPv6 || "—"), cell("td", l.backendType || "—"), cell("td", l.vtepMac || l.publicKey || "—"), cell("td", ageText(l.age)));
    return tr;
  }));
  for (const th of document.querySelectorAll("#leases th[data-sort]")) {
    th.classList.toggle("sorted", th.dataset.sort === key);
    th.classList.toggle("desc", th.dataset.sort === key && ui.sort.desc);
  }
}
function render(state) {
  if (!state) return;
  const started = performance.now();
  ui.state = state;
  renderDrill(state.drill);
  const s = state.status;
  document.getElementById("lab").textContent = '"' + s.name + '"';
  const members = s.etcdMembers.map((m) => m.name + (m.alive ? "" : " (down)")).join(", ");
  const store = s.kubeApi ? "Kubernetes API double " + s.kubeApi.url + (s.kubeApi.alive ? "" : " (down)") : "etcd " + members;
  const down = s.nodes.filter((h) => !up(h)).length;
  document.getElementById("meta").textContent =
    "backend " + s.backend + " · " + s.nodes.length + " hosts" + (down ? " (" + down + " down)" : "") + " · " + store + " · updated " + new Date(state.updatedAt).toLocaleTimeString();
  document.getElementById("underlay").textContent =
    "underlay segment " + (s.nodes[0] ? s.nodes[0].publicIP.replace(/\\.\\d+$/, ".0/24") : "") + " · " + linkKind(s) + " overlay between every host · click a host for its links";
  renderHosts(s, state.matrix);
  renderMatrix(s, state.matrix);
  renderLeases(s);
  window.__renderMs = performance.now() - started;
  window.__renderedAt = performance.now();
}
for (const th of document.querySelectorAll("#leases th[data-sort]")) {
  th.addEventListener("click", () => {
    ui.sort = { key: th.dataset.sort, desc: ui.sort.key === th.dataset.sort ? !ui.sort.desc : false };
    render(ui.state);
  });
}
document.getElementById("filter").addEventListener("input", () => render(ui.state));
document.getElementById("pod-detail").addEventListener("toggle", (ev) => { if (ev.target.open) void renderPodMatrix(); });
async function tick() {
  try {
    const res = await fetch("/api/state", { cache: "no-store" });
    if (res.ok) render(await res.json());
    else document.getElementById("meta").textContent = "lab not reachable: " + res.status;
  } catch (err) {
    document.getElementById("meta").textContent = "dashboard server not reachable";
  }
  setTimeout(tick, 1000);
}
tick();
</script>
</body>
</html>
`;
