/**
 * Kubernetes label selectors (metav1.LabelSelector), as NetworkPolicy uses them: `matchLabels`
 * and `matchExpressions` (In, NotIn, Exists, DoesNotExist), all ANDed. An empty selector
 * selects everything; the API's null selector (an absent namespaceSelector or podSelector in a
 * peer) is the caller's to handle.
 */

/** One `matchExpressions` term. */
export interface SelectorRequirement {
  readonly key: string;
  readonly operator: "In" | "NotIn" | "Exists" | "DoesNotExist";
  readonly values: readonly string[];
}

/** A parsed label selector. */
export interface LabelSelector {
  readonly matchLabels: Readonly<Record<string, string>>;
  readonly matchExpressions: readonly SelectorRequirement[];
}

/** Labels of an object. */
export type Labels = Readonly<Record<string, string>>;

/** The selector that selects everything (`{}`). */
export const EVERYTHING: LabelSelector = { matchLabels: {}, matchExpressions: [] };

/** Whether `labels` satisfy the selector, as apimachinery's labels.Selector.Matches decides. */
export function selects(selector: LabelSelector, labels: Labels): boolean {
  for (const [key, value] of Object.entries(selector.matchLabels))
    if (labels[key] !== value) return false;
  return selector.matchExpressions.every((req) => satisfies(req, labels));
}

function satisfies(req: SelectorRequirement, labels: Labels): boolean {
  const has = Object.hasOwn(labels, req.key);
  switch (req.operator) {
    case "In":
      return has && req.values.includes(labels[req.key] ?? "");
    case "NotIn":
      return !has || !req.values.includes(labels[req.key] ?? "");
    case "Exists":
      return has;
    case "DoesNotExist":
      return !has;
  }
}

/** The selector as kubectl prints it (`app=a,tier in (x,y)`); `{}` prints as `<all>`. */
export function describeSelector(selector: LabelSelector): string {
  const terms = [
    ...Object.entries(selector.matchLabels).map(([k, v]) => `${k}=${v}`),
    ...selector.matchExpressions.map((r) => {
      if (r.operator === "Exists") return r.key;
      if (r.operator === "DoesNotExist") return `!${r.key}`;
      return `${r.key} ${r.operator === "In" ? "in" : "notin"} (${r.values.join(",")})`;
    }),
  ];
  return terms.length === 0 ? "<all>" : terms.join(",");
}
