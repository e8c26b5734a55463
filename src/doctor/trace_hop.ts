/** One hop of a traced path, as this host's kernel holds it. */
export interface TraceHop {
  readonly hop: string;
  /** `denied`: NetworkPolicy drops the packet here, as the policies say. */
  readonly state: "ok" | "missing" | "wrong" | "info" | "denied";
  /** What the kernel holds (or that it holds nothing). */
  readonly detail: string;
  /** What it must be, when it is not. */
  readonly expected?: string;
}
