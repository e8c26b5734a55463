/** One hop of a traced path, as this host's kernel holds it. */
export interface TraceHop {
  readonly hop: string;
  readonly state: "ok" | "missing" | "wrong" | "info";
  /** What the kernel holds (or that it holds nothing). */
  readonly detail: string;
  /** What it must be, when it is not. */
  readonly expected?: string;
}
