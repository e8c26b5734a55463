/**
 * The NetworkPolicy enforcer of one node: follows the Namespaces, Pods and NetworkPolicies,
 * and keeps table `inet flannel-policy` equal to what they ask for this node's pods.
 *
 * - Start: the table of an earlier run stays (pods stay protected while flanneld restarts)
 *   until all three kinds are listed; then one transaction replaces it whole, and `onReady`
 *   runs (flanneld's /readyz waits for it).
 * - Changes: each change marks the rules dirty; one loop compiles the plan and writes the
 *   difference from the last one as one transaction. Changes that arrive while a transaction
 *   runs go into the next one.
 * - Drift: every resync period the table is listed and compared (counters aside) with the
 *   listing taken after the last write; any difference rewrites the whole table.
 * - Stop: nothing is removed.
 */
import type { Logger } from "../log/logger.js";
import type { CallOptions } from "../util/call_options.js";
import { type Clock, systemClock } from "../util/clock.js";
import { runTogether } from "../util/run_together.js";
import { backoff } from "../util/sleep.js";
import { ClusterView, podKey } from "./cluster_view.js";
import { compilePlan } from "./compile.js";
import type { CompileScope } from "./compile.js";
import type { PolicySources, PolicyRead } from "./kube_source.js";
import {
  diffScript,
  dropCounters,
  fullScript,
  generationOf,
  nextGeneration,
  withoutCounters,
} from "./nft_policy.js";
import type { DropCount } from "./nft_policy.js";
import { isolatedSetName } from "./plan.js";
import type { PolicyPlan } from "./plan.js";
import type { ReflectorStep } from "../subnet/kube/index.js";

/** Writing and reading the table. */
export interface PolicyTable {
  /** Runs one `nft -f` script as one transaction. */
  apply(script: string): Promise<void>;
  /** The table as `nft list table` prints it; null when it does not exist. */
  list(): Promise<string | null>;
}

/** What the enforcer has done, for metrics, logs and tests. */
export interface PolicyStats {
  ready: boolean;
  policies: number;
  /** This node's pods that some policy isolates. */
  podsEnforced: number;
  transactions: number;
  repairs: number;
  failures: number;
  rules: number;
  setElements: number;
  drops: ReadonlyMap<string, DropCount>;
}

/** Wakes the loop when something changed, or after a time. */
class Wakeup {
  #resolve: (() => void) | null = null;
  #woken = false;

  wake(): void {
    this.#woken = true;
    this.#resolve?.();
  }

  async wait(ms: number, clock: Clock, signal: AbortSignal): Promise<void> {
    if (!this.#woken) {
      const stop = new AbortController();
      const woken = new Promise<void>((resolve) => {
        this.#resolve = resolve;
      });
      await Promise.race([woken, clock.sleep(ms, AbortSignal.any([signal, stop.signal]))]);
      stop.abort();
      this.#resolve = null;
    }
    this.#woken = false;
  }
}

const RETRY_INITIAL_MS = 100;
const RETRY_MAX_MS = 5_000;

/** The enforcer; `run` until the signal aborts. */
export class PolicyEnforcer {
  readonly view = new ClusterView();
  readonly stats: PolicyStats = {
    ready: false,
    policies: 0,
    podsEnforced: 0,
    transactions: 0,
    repairs: 0,
    failures: 0,
    rules: 0,
    setElements: 0,
    drops: new Map(),
  };
  readonly #synced = { namespaces: false, pods: false, policies: false };
  readonly #warned = new Map<string, string>();
  readonly #wakeup = new Wakeup();
  readonly #clock: Clock;
  #dirty = false;
  /** Drops counted before the rules that counted them were rewritten (which zeroes counters). */
  readonly #dropBase = new Map<string, DropCount>();
  /** What was written last; `listing` is the kernel's listing of it, once taken (null before). */
  #applied: { plan: PolicyPlan; generation: number; listing: string | null } | null = null;

  constructor(
    readonly scope: CompileScope,
    readonly deps: { sources: PolicySources; table: PolicyTable; log: Logger; clock?: Clock },
  ) {
    this.#clock = deps.clock ?? systemClock;
  }

  /** Each watched kind's list and watch figures. */
  get watchStats(): PolicySources["stats"] {
    return this.deps.sources.stats;
  }

  /** The plan last written, or null before the first write. */
  get plan(): PolicyPlan | null {
    return this.#applied?.plan ?? null;
  }

  /** Follows the three kinds and programs the table until the signal aborts. */
  async run(
    opts: CallOptions & { readonly resyncSeconds: number; readonly onReady?: () => void },
  ): Promise<void> {
    const { sources } = this.deps;
    await runTogether(
      [
        (o) =>
          this.#follow(sources.namespaces(o), "namespaces", (v) => v.name, this.view.namespaces),
        (o) => this.#follow(sources.pods(o), "pods", podKey, this.view.pods),
        (o) => this.#followPolicies(sources.policies(o)),
        (o) => this.#program(o, opts),
      ],
      opts,
    );
  }

  /** Whether something changed since the last call. */
  #takeDirty(): boolean {
    const dirty = this.#dirty;
    this.#dirty = false;
    return dirty;
  }

  #changed(): void {
    this.#dirty = true;
    this.#wakeup.wake();
  }

  async #follow<T>(
    steps: AsyncIterable<ReflectorStep<T>>,
    kind: "namespaces" | "pods",
    keyOf: (item: T) => string,
    into: Map<string, T>,
  ): Promise<void> {
    for await (const step of steps) {
      if (step.kind === "snapshot") {
        into.clear();
        for (const item of step.items) into.set(keyOf(item), item);
        this.#synced[kind] = true;
      } else if (step.type === "DELETED") into.delete(keyOf(step.item));
      else into.set(keyOf(step.item), step.item);
      this.#changed();
    }
  }

  async #followPolicies(steps: AsyncIterable<ReflectorStep<PolicyRead>>): Promise<void> {
    const policies = this.view.policies;
    for await (const step of steps) {
      if (step.kind === "snapshot") {
        policies.clear();
        for (const read of step.items) this.#takePolicy(read);
        this.#synced.policies = true;
      } else if (step.type === "DELETED") {
        policies.delete(step.item.key);
        this.#warned.delete(step.item.key);
      } else this.#takePolicy(step.item);
      this.#changed();
    }
  }

  /** Stores a policy; one warning per policy and problem list. */
  #takePolicy(read: PolicyRead): void {
    if (read.policy === null) this.view.policies.delete(read.key);
    else this.view.policies.set(read.key, read.policy);
    const problems = read.problems.join("; ");
    if (problems === "") {
      this.#warned.delete(read.key);
      return;
    }
    if (this.#warned.get(read.key) === problems) return;
    this.#warned.set(read.key, problems);
    const effect =
      read.policy === null
        ? "it is skipped: which pods it selects cannot be known"
        : "its rules are skipped: the pods it selects stay isolated and it allows nothing";
    this.deps.log.warn(
      { policy: read.key, problems: read.problems },
      `Cannot use NetworkPolicy "${read.key}": ${problems}: ${effect}`,
    );
  }

  /** The programming loop: the first full write once listed, then changes and drift checks. */
  async #program(
    opts: CallOptions,
    run: { readonly resyncSeconds: number; readonly onReady?: () => void },
  ): Promise<void> {
    const { signal } = opts;
    const clock = this.#clock;
    const resyncMs = run.resyncSeconds * 1000;
    while (!Object.values(this.#synced).every(Boolean)) {
      await this.#wakeup.wait(60_000, clock, signal);
      if (signal.aborted) return;
    }
    this.#takeDirty();
    if (!(await this.#writeRetrying("full", signal))) return;
    this.stats.ready = true;
    run.onReady?.();
    let nextCheck = clock.now() + resyncMs;
    while (!signal.aborted) {
      if (this.#takeDirty()) {
        if (!(await this.#writeRetrying("changes", signal))) return;
        continue;
      }
      if (clock.now() >= nextCheck) {
        await this.#checkDrift(signal);
        nextCheck = clock.now() + resyncMs;
        continue;
      }
      await this.#wakeup.wait(nextCheck - clock.now(), clock, signal);
    }
  }

  /** Writes until it works or the signal aborts; each failure is logged with the next wait. */
  async #writeRetrying(how: "full" | "changes", signal: AbortSignal): Promise<boolean> {
    const delays = backoff(RETRY_INITIAL_MS, RETRY_MAX_MS);
    for (let attempt = 1; !signal.aborted; attempt++) {
      try {
        await this.#write(how === "full" || attempt > 1);
        return true;
      } catch (err) {
        this.stats.failures++;
        const waitMs = delays.next().value;
        this.deps.log.error(
          { err: (err as Error).message, attempt, retryInMs: waitMs },
          "Cannot write the NetworkPolicy rules; the rules in place stay until the next try",
        );
        if (!(await this.#clock.sleep(waitMs, signal))) return false;
      }
    }
    return false;
  }

  /** Compiles the plan and writes it: the difference from the last one, or the whole table. */
  async #write(whole: boolean): Promise<void> {
    const { table, log } = this.deps;
    const started = this.#clock.now();
    const plan = compilePlan(this.view, this.scope);
    const before = this.#applied;
    // The first write goes on from the generation of an earlier run's table, so that it differs.
    const previous = before?.generation ?? generationOf(await table.list());
    const generation = nextGeneration(previous ?? Math.floor(Math.random() * 255));
    const diff = !whole && before !== null ? diffScript(before.plan, plan, generation) : null;
    if (diff?.empty === true) return; // nothing this node enforces changed
    // A whole write starts the named counters again: keep what they counted.
    if (before !== null && diff === null) this.#keepDrops((await table.list()) ?? "", before.plan);
    if (diff !== null) await table.apply(diff.script);
    else await table.apply(fullScript(plan, generation));
    this.#count(plan);
    this.stats.transactions++;
    log.info(
      {
        policies: this.stats.policies,
        podsEnforced: this.stats.podsEnforced,
        rules: this.stats.rules,
        setElements: this.stats.setElements,
        whole: diff === null,
        ...(diff?.summary ?? {}),
        tookMs: this.#clock.now() - started,
      },
      "NetworkPolicy rules written",
    );
    this.#applied = { plan, generation, listing: null };
    // What the kernel lists of it is what the drift check compares with. A big table takes a
    // while to list, so it is taken beside the loop and kept only if no write came meanwhile.
    void this.#takeListing(generation);
  }

  #count(plan: PolicyPlan): void {
    const isolated = new Set<string>();
    for (const direction of ["ingress", "egress"] as const)
      for (const family of plan.families)
        for (const e of plan.sets.get(isolatedSetName(direction, family))?.elements ?? [])
          isolated.add(e);
    this.stats.policies = this.view.policies.size;
    this.stats.podsEnforced = [...this.view.pods.values()].filter(
      (p) => p.nodeName === this.scope.nodeName && p.ips.some((a) => isolated.has(a.ip)),
    ).length;
    this.stats.rules = plan.ingress.length + plan.egress.length;
    this.stats.setElements = [...plan.sets.values()].reduce((n, s) => n + s.elements.length, 0);
  }

  /** The base plus the counters of `listing`. */
  #dropsWith(listing: string, plan: PolicyPlan): Map<string, DropCount> {
    const out = new Map<string, DropCount>();
    for (const source of [this.#dropBase, dropCounters(listing, plan)])
      for (const [key, count] of source) {
        const sum = out.get(key) ?? { ingress: 0, egress: 0 };
        out.set(key, { ingress: sum.ingress + count.ingress, egress: sum.egress + count.egress });
      }
    return out;
  }

  /** Folds the counters of a table about to be written whole into the base. */
  #keepDrops(listing: string, plan: PolicyPlan): void {
    const all = this.#dropsWith(listing, plan);
    this.#dropBase.clear();
    for (const [key, count] of all) this.#dropBase.set(key, count);
    this.stats.drops = all;
  }

  /** Lists the table; rewrites it whole when it is not what was written. */
  /** Lists the table written under `generation` and keeps the listing if it is still current. */
  async #takeListing(generation: number): Promise<void> {
    const listing = await this.deps.table.list().catch(() => null);
    const applied = this.#applied;
    if (applied?.generation !== generation || listing === null) return;
    if (generationOf(listing) === generation) applied.listing = listing;
  }

  async #checkDrift(signal: AbortSignal): Promise<void> {
    const applied = this.#applied;
    if (applied === null) return;
    let listing: string | null;
    try {
      listing = await this.deps.table.list();
    } catch (err) {
      this.deps.log.error({ err: (err as Error).message }, "Cannot list the NetworkPolicy rules");
      return;
    }
    if (listing !== null) this.stats.drops = this.#dropsWith(listing, applied.plan);
    const current = listing !== null && generationOf(listing) === applied.generation;
    // Not listed since the last write yet: the generation's rule is all there is to compare.
    if (current && applied.listing === null) applied.listing = listing;
    if (current && withoutCounters(listing ?? "") === withoutCounters(applied.listing ?? ""))
      return;
    this.deps.log.warn(
      { table: "inet flannel-policy", missing: listing === null },
      "The NetworkPolicy rules were changed outside flanneld; writing them again",
    );
    if (await this.#writeRetrying("full", signal)) this.stats.repairs++;
  }
}
