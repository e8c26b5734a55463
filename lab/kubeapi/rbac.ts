/**
 * Authentication and authorization for the Kubernetes API double: bearer tokens name users, and
 * each user has the rules of a ClusterRole (`{apiGroups, resources, verbs}`), checked the way
 * Kubernetes RBAC checks them: a request is allowed when one rule names its API group (`""` for
 * the core group, `networking.k8s.io` for NetworkPolicies), its resource (`nodes/status` for a subresource) and its verb, each or `*`.
 */

/** One rule of a ClusterRole. */
export interface PolicyRule {
  readonly apiGroups: readonly string[];
  readonly resources: readonly string[];
  readonly verbs: readonly string[];
}

/** Who may call: a user name and its rules. */
export interface ApiUser {
  readonly name: string;
  readonly rules: readonly PolicyRule[];
}

/** Every verb on every resource: the cluster-admin role. */
export const ADMIN_RULES: readonly PolicyRule[] = [
  { apiGroups: ["*"], resources: ["*"], verbs: ["*"] },
];

/** What one request asks to do. */
export interface RequestAttributes {
  readonly verb: string;
  /** The resource's API group: "" for the core group. Absent: the core group. */
  readonly apiGroup?: string;
  /** The namespace of a namespaced request; "" or absent at the cluster scope. */
  readonly namespace?: string;
  readonly resource: string;
  readonly subresource: string;
  readonly name: string;
}

/** Whether `rules` allow the request, as RBAC decides. */
export function allows(rules: readonly PolicyRule[], req: RequestAttributes): boolean {
  const resource = req.subresource === "" ? req.resource : `${req.resource}/${req.subresource}`;
  return rules.some(
    (rule) =>
      (rule.apiGroups.includes(req.apiGroup ?? "") || rule.apiGroups.includes("*")) &&
      (rule.resources.includes(resource) || rule.resources.includes("*")) &&
      (rule.verbs.includes(req.verb) || rule.verbs.includes("*")),
  );
}

/** The message the real API server gives for a refused request. */
export function forbiddenMessage(user: string, req: RequestAttributes): string {
  const resource = req.subresource === "" ? req.resource : `${req.resource}/${req.subresource}`;
  const what = req.name === "" ? req.resource : `${req.resource} "${req.name}"`;
  const scope =
    req.namespace === undefined || req.namespace === ""
      ? "at the cluster scope"
      : `in the namespace "${req.namespace}"`;
  return `${what} is forbidden: User "${user}" cannot ${req.verb} resource "${resource}" in API group "${req.apiGroup ?? ""}" ${scope}`;
}
