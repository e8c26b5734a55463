/**
 * The extension backend's commands: for each remote lease, whether its SubnetAddCommand
 * succeeded (and how its last run ended), and leases gone whose remove command has not run.
 */
import type { HookInspection, HookRunInspection } from "../backend/backend.js";
import type { Lease } from "../lease/lease.js";
import { leaseKeyOf } from "../lease/lease.js";
import { servedRemotes } from "./check_data_plane.js";
import { finding } from "./finding.js";
import type { CheckGroup, Finding } from "./finding.js";
import type { HostView } from "./host_view.js";

const lastRun = (run: HookRunInspection | undefined): string =>
  run === undefined
    ? "it has not run"
    : `its last run, ${new Date(run.at).toISOString()}, ended ${run.end}${run.output === "" ? "" : `: ${run.output.slice(-200)}`}`;

function addFindings(hooks: HookInspection, remotes: ReadonlyMap<string, Lease>): Finding[] {
  if (!hooks.addCommand) return [];
  const found: Finding[] = [];
  for (const lease of remotes.values()) {
    const key = leaseKeyOf(lease);
    const kept = hooks.leases.get(key);
    if (kept?.added === true) continue;
    const run = kept?.last.find((r) => r.hook === "SubnetAddCommand");
    found.push(
      finding(
        run === undefined ? "hook-add-not-run" : "hook-add-failed",
        run === undefined ? "warning" : "error",
        key,
        `the SubnetAddCommand never succeeded for the lease of ${lease.attrs.publicIP}: ${lastRun(run)}`,
        "whatever the command programs for that host (its route, its tunnel) is missing",
        run === undefined
          ? "wait for flanneld to see the lease; if it stays, check flanneld's log for the lease"
          : "fix the command (or what it needs) in the network config, then restart flanneld: every lease gets its add command again",
      ),
    );
  }
  return found;
}

function removeFindings(hooks: HookInspection, remotes: ReadonlyMap<string, Lease>): Finding[] {
  const live = new Set([...remotes.values()].map(leaseKeyOf));
  return [...hooks.leases.keys()]
    .filter((key) => !live.has(key))
    .map((key) =>
      finding(
        "hook-remove-pending",
        "warning",
        key,
        `the lease is gone but its SubnetRemoveCommand has not run${hooks.removeCommand ? "" : " (none is configured)"}`,
        "what the add command programmed for it is still in place",
        "wait for flanneld to see the lease go, or restart flanneld: it runs the remove command of every lease gone",
      ),
    );
}

export async function checkHooks(view: HostView): Promise<CheckGroup> {
  const { inspection, own } = view;
  if (inspection?.hooks === undefined)
    return { name: "hooks", findings: [], skipped: "the backend runs no commands" };
  if (own === null) return { name: "hooks", findings: [], skipped: "no lease" };
  const hooks = await inspection.hooks();
  const remotes = servedRemotes(view, own);
  const notes = [...hooks.leases].flatMap(([key, kept]) =>
    kept.last.map(
      (run) =>
        `${key}: ${run.hook} ${run.ok ? "ok" : "failed"} (${run.end}, ${run.ms} ms, ${new Date(run.at).toISOString()})`,
    ),
  );
  return {
    name: "hooks",
    findings: [...addFindings(hooks, remotes), ...removeFindings(hooks, remotes)],
    notes,
  };
}
