/**
 * Issues #3, #11 and #27 figures, printed (never asserted): ADD+DEL latency of the flannel plugin,
 * as the single executable (dist/sea/flannel, copied alone into an empty folder, as `flannelctl
 * cni install` from a repository puts it on a host), as the installed layout's launcher (the
 * .deb's /opt/cni/bin/flannel, and what the image's install step puts on a DaemonSet's host: a
 * shell script starting the installed Node on the plugin's bundle), and as bin/flannel (Node and
 * dist/), against Debian's bridge plugin
 * called directly with the same delegate config, and against the floor: two bare Node starts
 * plus bridge alone. Every call gets the environment a container runtime gives a plugin (the CNI
 * variables and PATH, nothing else: no NODE_EXTRA_CA_CERTS). Medians of 20, interleaved, in
 * namespaces made here and removed at the end.
 *
 * Run: npm run build && node dist/bench/cni_bench.js
 */
import { copyFile, mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { addNetns, deleteNetns, run, uniquePrefix } from "../lab/netns.js";
import { REPO_ROOT } from "../lab/cluster.js";
import { layOutInstalled } from "./bench_util.js";

const RUNS = 20;

async function call(
  host: string,
  plugin: string,
  command: string,
  conf: string,
  env: Record<string, string>,
): Promise<void> {
  await run("ip", ["netns", "exec", host, plugin], {
    input: conf,
    env: {
      PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      CNI_COMMAND: command,
      CNI_PATH: "/usr/lib/cni",
      CNI_IFNAME: "eth0",
      ...env,
    },
  });
}

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const prefix = uniquePrefix("ftbc");
const host = `${prefix}-host`;
const pod = `${prefix}-pod`;
const dir = await mkdtemp(join(tmpdir(), `${prefix}-`));
try {
  await addNetns(host);
  await addNetns(pod);
  const subnetFile = join(dir, "subnet.env");
  await writeFile(
    subnetFile,
    "FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=true\n",
  );
  const flannelConf = JSON.stringify({
    cniVersion: "0.3.1",
    name: "bench",
    type: "flannel",
    subnetFile,
    dataDir: join(dir, "flannel"),
    ipam: { dataDir: join(dir, "ipam") },
  });
  const env = { CNI_NETNS: `/var/run/netns/${pod}` };
  // One ADD to learn the delegate config flannel builds, then the same for bridge directly.
  await call(host, join(REPO_ROOT, "bin/flannel"), "ADD", flannelConf, {
    ...env,
    CNI_CONTAINERID: "probe",
  });
  const bridgeConf = await readFile(join(dir, "flannel", "probe"), "utf8");
  await call(host, join(REPO_ROOT, "bin/flannel"), "DEL", flannelConf, {
    ...env,
    CNI_CONTAINERID: "probe",
  });

  // The single executable, alone in a folder of its own.
  const seaDir = join(dir, "opt-cni-bin");
  await mkdir(seaDir);
  const sea = join(seaDir, "flannel");
  await copyFile(join(REPO_ROOT, "dist/sea/flannel"), sea);
  await run("chmod", ["755", sea]);
  const launcher = join(REPO_ROOT, "bin/flannel");
  // The installed layout (scripts/build_helpers.mjs), made here.
  const layout = join(dir, "installed");
  await layOutInstalled(layout, { "opt/cni/bin/flannel": "flannel" });
  const installed = join(layout, "opt/cni/bin/flannel");

  const times: Record<"sea" | "installed" | "launcher" | "bridge" | "bare", number[]> = {
    sea: [],
    installed: [],
    launcher: [],
    bridge: [],
    bare: [],
  };
  const addDel = async (plugin: string, conf: string, id: string) => {
    const t0 = performance.now();
    await call(host, plugin, "ADD", conf, { ...env, CNI_CONTAINERID: id });
    await call(host, plugin, "DEL", conf, { ...env, CNI_CONTAINERID: id });
    return performance.now() - t0;
  };
  for (let i = 0; i < RUNS; i++) {
    // Interleaved, so that all see the same machine load.
    times.sea.push(await addDel(sea, flannelConf, `s${i}`));
    times.installed.push(await addDel(installed, flannelConf, `i${i}`));
    times.launcher.push(await addDel(launcher, flannelConf, `l${i}`));
    times.bridge.push(await addDel("/usr/lib/cni/bridge", bridgeConf, `b${i}`));
    const t0 = performance.now();
    await run("ip", ["netns", "exec", host, process.execPath, "-e", ""], {
      env: { PATH: "/usr/bin:/bin" },
    });
    times.bare.push(performance.now() - t0);
  }
  const m = {
    sea: median(times.sea),
    installed: median(times.installed),
    launcher: median(times.launcher),
    bridge: median(times.bridge),
    bare: median(times.bare),
  };
  const floor = 2 * m.bare + m.bridge;
  const out = (line: string) => process.stdout.write(`${line}\n`);
  out(`bare node -e '' (runtime's environment): median ${m.bare.toFixed(1)} ms over ${RUNS}`);
  out(`ADD+DEL via bridge directly (same delegate config): median ${m.bridge.toFixed(1)} ms`);
  out(
    `ADD+DEL via the single executable (${((await stat(sea)).size / 1048576).toFixed(1)} MiB): median ${m.sea.toFixed(1)} ms; ${(m.sea / m.bridge).toFixed(2)}x bridge; ${(m.sea / floor).toFixed(2)}x the floor (2 bare Node starts + bridge = ${floor.toFixed(1)} ms); ${((m.sea - floor) / 2).toFixed(1)} ms over a bare Node start per call`,
  );
  out(
    `ADD+DEL via the installed launcher (.deb, DaemonSet: sh + the installed Node + flannel.cjs): median ${m.installed.toFixed(1)} ms; ${(m.installed / m.bridge).toFixed(2)}x bridge; ${(m.installed / floor).toFixed(2)}x the floor; ${((m.installed - floor) / 2).toFixed(1)} ms over a bare Node start per call`,
  );
  out(
    `ADD+DEL via bin/flannel (Node + dist/): median ${m.launcher.toFixed(1)} ms; ${(m.launcher / m.bridge).toFixed(2)}x bridge; ${(m.launcher / floor).toFixed(2)}x the floor`,
  );
} finally {
  await deleteNetns(pod);
  await deleteNetns(host);
  await rm(dir, { recursive: true, force: true });
}
