import assert from "node:assert/strict";
import { readFile, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { readLab, REPO_ROOT } from "../../lab/cluster.js";
import { startDashboard } from "../../lab/dashboard.js";
import { listNetns, run, uniquePrefix } from "../../lab/netns.js";
import { runCapture } from "../../src/util/exec.js";
import { launchChromium } from "../helpers/browser.js";

const FLANNELCTL = join(REPO_ROOT, "bin/flannelctl");

async function flannelctl(args: readonly string[]): Promise<{ code: number | null; out: string }> {
  const { code, stdout, stderr } = await runCapture(FLANNELCTL, args);
  return { code, out: stdout + stderr };
}

/** Nothing of the lab is left: no namespace, no process, no file. */
async function assertGone(name: string, dir: string): Promise<void> {
  assert.deepEqual(
    (await listNetns(`${name}-`)).filter((n) =>
      new RegExp(`^${name}-(hub|h\\d+(p\\d+)?)$`).test(n),
    ),
    [],
    "no namespace",
  );
  assert.equal((await run("pgrep", ["-f", `${dir}/`]).catch(() => "")).trim(), "", "no process");
  await assert.rejects(stat(dir), "no file");
}

test("lab up, check and down for vxlan and host-gw, side by side, leave nothing behind", async () => {
  const labs = [
    { name: uniquePrefix("ftlv"), backend: "vxlan" },
    { name: uniquePrefix("ftlh"), backend: "host-gw" },
  ];
  try {
    const ups = await Promise.all(
      labs.map((l) =>
        flannelctl([
          "lab",
          "up",
          "--name",
          l.name,
          "--backend",
          l.backend,
          "--nodes",
          "3",
          "--pods",
          "2",
        ]),
      ),
    );
    for (const up of ups) assert.equal(up.code, 0, up.out);
    for (const l of labs) {
      const check = await flannelctl(["lab", "check", "--name", l.name]);
      assert.equal(check.code, 0, check.out);
      assert.match(check.out, /All 30 pod pairs reach each other/);
      const status = JSON.parse(
        (await flannelctl(["lab", "status", "--name", l.name, "--json"])).out,
      ) as {
        nodes: {
          subnet: string;
          flanneldAlive: boolean;
          vtepMac: string | null;
          pods: unknown[];
        }[];
        leases: unknown[];
      };
      assert.equal(status.nodes.length, 3);
      assert.ok(
        status.nodes.every((n) => n.flanneldAlive && n.subnet !== null && n.pods.length === 2),
      );
      assert.equal(status.leases.length, 3);
      assert.equal(
        status.nodes.every((n) => n.vtepMac !== null),
        l.backend === "vxlan",
      );
    }
  } finally {
    for (const l of labs) {
      const dir = (await readLab(l.name))?.dir;
      const down = await flannelctl(["lab", "down", "--name", l.name]);
      assert.equal(down.code, 0, down.out);
      if (dir !== undefined) await assertGone(l.name, dir);
    }
  }
});

test("lab down cleans everything after flanneld and etcd were killed by hand, and twice", async () => {
  const name = uniquePrefix("ftlk");
  const up = await flannelctl([
    "lab",
    "up",
    "--name",
    name,
    "--nodes",
    "2",
    "--pods",
    "1",
    "--etcd-members",
    "3",
  ]);
  try {
    assert.equal(up.code, 0, up.out);
    const dir = (await readLab(name))!.dir;
    await run("pkill", ["-9", "-f", `${dir}/h1/subnet.env`]);
    await run("pkill", ["-9", "-f", `${dir}/etcd/`]);
    assert.equal((await flannelctl(["lab", "down", "--name", name])).code, 0);
    await assertGone(name, dir);
    assert.equal(
      (await flannelctl(["lab", "down", "--name", name])).code,
      0,
      "a second down is fine",
    );
  } finally {
    await flannelctl(["lab", "down", "--name", name]);
  }
});

test("lab add-node, kill-node and restart-node drill", async () => {
  const name = uniquePrefix("ftld");
  try {
    assert.equal(
      (await flannelctl(["lab", "up", "--name", name, "--nodes", "2", "--pods", "1"])).code,
      0,
    );
    assert.equal((await flannelctl(["lab", "add-node", "--name", name])).code, 0);
    assert.match(
      (await flannelctl(["lab", "check", "--name", name])).out,
      /All 6 pod pairs reach each other/,
    );
    assert.equal((await flannelctl(["lab", "kill-node", "h2", "--name", name])).code, 0);
    const broken = await flannelctl(["lab", "check", "--name", name]);
    assert.equal(broken.code, 1);
    assert.match(broken.out, /4 of 6 pod pairs FAILED/);
    // A flanneld that exits at once (its config made invalid) is not "back": the log says why.
    const lab = await readLab(name);
    assert.ok(lab !== null);
    const { labEtcdctl } = await import("../../lab/cluster.js");
    const config = await labEtcdctl(lab, [
      "get",
      "/coreos.com/network/config",
      "--print-value-only",
    ]);
    await labEtcdctl(lab, [
      "put",
      "/coreos.com/network/config",
      '{"Network":"10.244.0.0/16","SubnetLen":17}',
    ]);
    const failedRestart = await flannelctl(["lab", "restart-node", "h2", "--name", name]);
    assert.equal(failedRestart.code, 1, failedRestart.out);
    assert.doesNotMatch(failedRestart.out, /is back/);
    assert.match(
      failedRestart.out,
      /flanneld on h2 exited without writing .*subnet\.env; the last lines of/,
    );
    assert.match(failedRestart.out, /accommodate at least four subnets/);
    await labEtcdctl(lab, ["put", "/coreos.com/network/config", config.trim()]);
    const restarted = await flannelctl(["lab", "restart-node", "h2", "--name", name]);
    assert.equal(restarted.code, 0, restarted.out);
    assert.match(restarted.out, /Host h2 is back/);
    let healed = await flannelctl(["lab", "check", "--name", name]);
    for (let i = 0; i < 20 && healed.code !== 0; i++)
      healed = await flannelctl(["lab", "check", "--name", name]);
    assert.equal(healed.code, 0, healed.out);
    const exec = await flannelctl([
      "lab",
      "exec",
      "h1p1",
      "--name",
      name,
      "--",
      "ip",
      "-4",
      "-o",
      "addr",
      "show",
      "eth0",
    ]);
    assert.match(exec.out, /inet 10\.244\./);
    assert.match(
      (await flannelctl(["lab", "logs", "h1", "--name", name])).out,
      /Wrote subnet file/,
    );
  } finally {
    await flannelctl(["lab", "down", "--name", name]);
  }
});

test("the dashboard shows every host and subnet in a real browser, and sees a killed host go", async () => {
  const name = uniquePrefix("ftlu");
  const browser = await launchChromium();
  let dashboard: Awaited<ReturnType<typeof startDashboard>> | null = null;
  try {
    assert.equal(
      (await flannelctl(["lab", "up", "--name", name, "--nodes", "3", "--pods", "1"])).code,
      0,
    );
    const status = JSON.parse(
      (await flannelctl(["lab", "status", "--name", name, "--json"])).out,
    ) as { nodes: { name: string; subnet: string }[] };
    dashboard = await startDashboard(name, 0);
    const page = await browser.newPage();
    await page.goto(dashboard.url);
    for (const node of status.nodes) {
      const host = page.locator(`[data-host="${node.name}"]`);
      await host.waitFor();
      assert.equal(await host.getAttribute("data-state"), "up");
      assert.match((await host.textContent()) ?? "", new RegExp(node.subnet.replace(/\./g, "\\.")));
    }
    await page.locator("#leases tbody tr").nth(2).waitFor();
    await page.locator("#matrix td.ok").first().waitFor({ timeout: 20_000 });

    // A drill shows live, then done with its count of lost pings.
    const drill = flannelctl([
      "lab",
      "drill",
      "kill-flanneld",
      "h1",
      "--times",
      "2",
      "--name",
      name,
    ]);
    await page.locator('#drill[data-running="true"]').waitFor({ timeout: 20_000 });
    const drilled = await drill;
    assert.equal(drilled.code, 0, drilled.out);
    assert.match(drilled.out, /Drill kill-flanneld done in [\d.]+ s: \d+ pings sent, 0 lost/);
    await page.locator('#drill[data-running="false"][data-lost="0"]').waitFor({ timeout: 10_000 });
    assert.match(
      (await page.locator("#drill").textContent()) ?? "",
      /kill-flanneld h1 done .* lost 0/,
    );

    assert.equal((await flannelctl(["lab", "kill-node", "h2", "--name", name])).code, 0);
    await page.locator('[data-host="h2"][data-state="down"]').waitFor({ timeout: 10_000 });
    assert.equal(await page.locator('[data-host="h1"]').getAttribute("data-state"), "up");
    await page.locator("#matrix td.fail").first().waitFor({ timeout: 20_000 });
  } finally {
    await browser.close();
    await dashboard?.close();
    await flannelctl(["lab", "down", "--name", name]);
  }
});

test("lab up --kube: check, status and the dashboard show the Nodes, delete-node drops one, down leaves nothing", async () => {
  const name = uniquePrefix("ftlq");
  let dir: string | undefined;
  let dashboard: Awaited<ReturnType<typeof startDashboard>> | null = null;
  try {
    const up = await flannelctl([
      "lab",
      "up",
      "--kube",
      "--name",
      name,
      "--nodes",
      "3",
      "--pods",
      "1",
    ]);
    assert.equal(up.code, 0, up.out);
    assert.match(up.out, /Kubernetes API double on http:\/\/10\.250\.0\.1:6443/);
    dir = (await readLab(name))?.dir;
    // The printed kubectl command works as printed: the real kubectl lists the Nodes.
    const hint = /kubectl: (ip netns exec \S+ kubectl --kubeconfig \S+ get nodes)/.exec(
      up.out,
    )?.[1];
    assert.ok(hint !== undefined, up.out);
    const [cmd, ...hintArgs] = hint.split(" ");
    const nodes = await runCapture(cmd!, [...hintArgs, "-o", "name"]);
    assert.equal(nodes.code, 0, nodes.stderr);
    assert.deepEqual(nodes.stdout.trim().split("\n"), ["node/h1", "node/h2", "node/h3"]);
    const check = await flannelctl(["lab", "check", "--name", name]);
    assert.equal(check.code, 0, check.out);
    const text = await flannelctl(["lab", "status", "--name", name]);
    assert.match(text.out, /Nodes and their flannel annotations/);
    assert.match(text.out, /h2\s+10\.244\.2\.0\/24\s+10\.250\.0\.12\s+vxlan\s+[0-9a-f:]{17}/);
    dashboard = await startDashboard(name, 0);
    const state = (await (await fetch(`${dashboard.url}api/state`)).json()) as {
      status: { kubeApi: { alive: boolean } | null; leases: { node: string }[] };
    };
    assert.equal(state.status.kubeApi?.alive, true);
    assert.deepEqual(state.status.leases.map((l) => l.node).sort(), ["h1", "h2", "h3"]);
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      await page.goto(dashboard.url);
      await page.locator("#leases tbody tr").nth(2).waitFor();
      assert.equal(
        await page.locator("#leases-title").textContent(),
        "Nodes and their flannel annotations",
      );
      assert.match((await page.locator("#meta").textContent()) ?? "", /Kubernetes API double/);
    } finally {
      await browser.close();
    }

    const deleted = await flannelctl(["lab", "delete-node", "h3", "--name", name]);
    assert.equal(deleted.code, 0, deleted.out);
    const after = JSON.parse(
      (await flannelctl(["lab", "status", "--name", name, "--json"])).out,
    ) as {
      leases: { node: string }[];
    };
    assert.deepEqual(after.leases.map((l) => l.node).sort(), ["h1", "h2"]);
  } finally {
    await dashboard?.close();
    const down = await flannelctl(["lab", "down", "--name", name]);
    assert.equal(down.code, 0, down.out);
    if (dir !== undefined) await assertGone(name, dir);
  }
});

test("lab up refuses more hosts than the address plan holds, naming the limit, and builds nothing", async () => {
  const name = uniquePrefix("ftln");
  const up = await flannelctl(["lab", "up", "--name", name, "--nodes", "300"]);
  assert.equal(up.code, 1, up.out);
  assert.match(up.out, /Cannot start a lab with 300 hosts: expected 1 to 244/);
  assert.deepEqual(await listNetns(name), []);
});

test("lab check on backend alloc checks what alloc promises (a distinct lease per host), not pings", async () => {
  const name = uniquePrefix("ftla");
  try {
    const up = await flannelctl([
      "lab",
      "up",
      "--name",
      name,
      "--nodes",
      "2",
      "--pods",
      "1",
      "--backend",
      "alloc",
    ]);
    assert.equal(up.code, 0, up.out);
    const check = await flannelctl(["lab", "check", "--name", name]);
    assert.equal(check.code, 0, check.out);
    assert.match(check.out, /Backend alloc carries no traffic/);
    assert.match(check.out, /All 2 hosts hold distinct subnets/);
  } finally {
    await flannelctl(["lab", "down", "--name", name]);
  }
});

test("a failed lab up takes the lab down and keeps its logs where its message says", async () => {
  const name = uniquePrefix("ftlf");
  const { labUp } = await import("../../lab/cluster.js");
  let kept: string | null = null;
  try {
    const failure = await labUp(
      {
        name,
        nodes: 1,
        backend: "vxlan",
        networkConfig: '{"Network":"10.244.0.0/16","SubnetLen":17,"Backend":{"Type":"vxlan"}}',
      },
      () => undefined,
    ).then(
      () => null,
      (err: unknown) => err as Error,
    );
    assert.ok(failure !== null, "lab up failed");
    const match = /kept in (\S+)$/.exec(failure.message);
    assert.ok(match, failure.message);
    kept = match[1]!;
    // The message names the kept log, which holds flanneld's reason.
    const logPath = /of (\S+flanneld\.log):/.exec(failure.message)?.[1];
    assert.ok(logPath !== undefined && logPath.startsWith(kept), failure.message);
    assert.match(await readFile(logPath, "utf8"), /accommodate at least four subnets/);
    assert.deepEqual(await listNetns(name), [], "the lab is down");
  } finally {
    await flannelctl(["lab", "down", "--name", name]);
    if (kept !== null) await rm(kept, { recursive: true, force: true });
  }
});
