/** What flannelctl doctor reports: findings, each naming what is wrong, why, and the fix. */

/** An error breaks pod traffic (or will); a warning is a risk or a deviation worth knowing. */
export type Severity = "error" | "warning";

/** One thing found wrong on the host. */
export interface Finding {
  /** A stable name for scripts and tests: "route-missing", "device-mtu", "subnet-env-missing"... */
  readonly check: string;
  readonly severity: Severity;
  /** What it concerns: "flannel.1", "route 10.244.2.0/24", "/run/flannel/subnet.env". */
  readonly subject: string;
  /** What is wrong. */
  readonly problem: string;
  /** Why it matters: what breaks. */
  readonly why: string;
  /** The exact command (or step) that fixes it. */
  readonly fix: string;
  /** What `--fix` does for it; absent when the fix is not safe to apply unattended. */
  readonly repair?: () => void | Promise<void>;
}

/** A group of checks and what it found; `skipped` names why it could not run. */
export interface CheckGroup {
  readonly name: string;
  readonly findings: readonly Finding[];
  readonly skipped?: string;
  /** What the check saw that is no problem, one line each (the hooks' last runs). */
  readonly notes?: readonly string[];
}

/** Makes a finding; `repair` only when the fix is safe unattended. */
export function finding(
  check: string,
  severity: Severity,
  subject: string,
  problem: string,
  why: string,
  fix: string,
  repair?: () => void | Promise<void>,
): Finding {
  return { check, severity, subject, problem, why, fix, ...(repair ? { repair } : {}) };
}
