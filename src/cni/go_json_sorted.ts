/**
 * JSON as Go's json.Marshal writes a map[string]interface{}: keys sorted, compact, `<`, `>` and `&`
 * escaped. flannel's CNI plugin saves its delegate config this way, and we match its bytes.
 */
import { escapeLikeGo } from "../util/go_json_text.js";

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort())
      out[key] = sortKeys((value as Record<string, unknown>)[key]);
    return out;
  }
  return value;
}

/** Serializes with sorted keys and Go's HTML escaping. */
export function goMapJson(value: unknown): string {
  return escapeLikeGo(JSON.stringify(sortKeys(value)));
}
