/** doctor's report as text for a terminal, or as JSON for scripts. */
import { findingsOf, isHealthy } from "./doctor.js";
import type { DoctorReport, FixResult } from "./doctor.js";
import type { Finding } from "./finding.js";
import type { PodPolicyState } from "../netpol/index.js";

/** The most findings of one check printed as text; JSON has them all. */
const MAX_PER_CHECK = 10;

function indent(text: string, by: string): string {
  return text
    .split("\n")
    .map((line) => by + line)
    .join("\n");
}

function formatFinding(f: Finding): string {
  return [
    `  ${f.severity === "error" ? "ERROR" : "WARN "} ${f.check}: ${f.subject}`,
    `        ${f.problem}`,
    `        why: ${f.why}`,
    `        fix${f.repair === undefined ? "" : " (--fix does it)"}:`,
    indent(f.fix, "          "),
  ].join("\n");
}

export function formatReport(report: DoctorReport, fixes: readonly FixResult[] | null): string {
  const lines: string[] = [];
  const h = report.host;
  if (h !== null)
    lines.push(
      `Host ${h.publicIP ?? "?"} (${h.interface}), lease ${h.lease ?? "none"}, backend ${h.backend}, ${h.families}, ${h.peers} other lease${h.peers === 1 ? "" : "s"}`,
    );
  for (const group of report.groups) {
    const n = group.findings.length;
    const status =
      group.skipped !== undefined
        ? `skipped (${group.skipped})`
        : n === 0
          ? "ok"
          : `${n} finding${n === 1 ? "" : "s"}`;
    lines.push(`${n === 0 ? "\u2713" : "\u2717"} ${group.name}: ${status}`);
    for (const note of group.notes ?? []) lines.push(`  ${note}`);
    const byCheck = new Map<string, Finding[]>();
    for (const f of group.findings) byCheck.set(f.check, [...(byCheck.get(f.check) ?? []), f]);
    for (const [check, all] of byCheck) {
      for (const f of all.slice(0, MAX_PER_CHECK)) lines.push(formatFinding(f));
      if (all.length > MAX_PER_CHECK)
        lines.push(`  ... and ${all.length - MAX_PER_CHECK} more ${check} (--json lists them all)`);
    }
  }
  if (report.policy !== null) lines.push(...policyLines(report.policy));
  if (fixes !== null) {
    const failed = fixes.filter((r) => r.error !== null);
    lines.push(`Fixed ${fixes.length - failed.length} of ${fixes.length} safe fixes`);
    for (const r of failed)
      lines.push(`  failed: ${r.finding.check} ${r.finding.subject}: ${r.error ?? ""}`);
  }
  const findings = findingsOf(report);
  const errors = findings.filter((f) => f.severity === "error").length;
  lines.push(
    isHealthy(report)
      ? `Healthy${findings.length > 0 ? ` (${findings.length} warning${findings.length === 1 ? "" : "s"})` : ""}`
      : `Not healthy: ${errors} error${errors === 1 ? "" : "s"}, ${findings.length - errors} warning${findings.length - errors === 1 ? "" : "s"}`,
  );
  return `${lines.join("\n")}\n`;
}

/** Each of this host's pods under policy: what isolates it and what is allowed in and out. */
function policyLines(pods: readonly PodPolicyState[]): string[] {
  const lines = [
    `NetworkPolicy of this host's ${String(pods.length)} pod${pods.length === 1 ? "" : "s"}:`,
  ];
  for (const p of pods) {
    lines.push(`  pod ${p.pod} ${p.ips.join(" ")}`);
    for (const direction of ["ingress", "egress"] as const) {
      const d = p[direction];
      if (d.isolatedBy.length === 0) {
        lines.push(`    ${direction}: not isolated (everything allowed)`);
        continue;
      }
      lines.push(
        `    ${direction}: isolated by ${d.isolatedBy.join(", ")}; ${d.allows.length === 0 ? "nothing allowed" : "allowed:"}`,
      );
      for (const rule of d.allows) lines.push(`      ${rule}`);
    }
  }
  return lines;
}

function findingJson(f: Finding) {
  return {
    check: f.check,
    severity: f.severity,
    subject: f.subject,
    problem: f.problem,
    why: f.why,
    fix: f.fix,
    fixable: f.repair !== undefined,
  };
}

export function reportJson(report: DoctorReport, fixes: readonly FixResult[] | null): unknown {
  return {
    healthy: isHealthy(report),
    host: report.host,
    checks: report.groups.map((g) => ({
      name: g.name,
      status: g.skipped !== undefined ? "skipped" : g.findings.length === 0 ? "ok" : "findings",
      ...(g.skipped !== undefined ? { skipped: g.skipped } : {}),
      ...(g.notes !== undefined ? { notes: g.notes } : {}),
    })),
    findings: findingsOf(report).map(findingJson),
    ...(report.policy === null ? {} : { policy: report.policy }),
    ...(fixes === null
      ? {}
      : {
          fixed: fixes.map((r) => ({ ...findingJson(r.finding), error: r.error })),
        }),
  };
}
