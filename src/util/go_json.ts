/**
 * JSON text as Go's encoding/json writes it, so that bytes written here equal flannel's: compact,
 * with `<`, `>`, `&`, U+2028 and U+2029 escaped (json.Marshal's HTML escaping), and, for a
 * map[string]interface{}, keys sorted. (Reading Go-cased keys is config/go_json.ts's.)
 */

/** Go's json.Marshal escapes `<`, `>`, `&`, U+2028 and U+2029; this does the same to JSON text. */
function escapeLikeGo(json: string): string {
  return json.replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/** Serializes a value as Go's json.Marshal does a struct: compact, HTML-escaped. */
export function goJsonStringify(value: unknown): string {
  return escapeLikeGo(JSON.stringify(value));
}

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

/**
 * Serializes as Go's json.Marshal writes a map[string]interface{}: keys sorted, compact,
 * HTML-escaped. flannel's CNI plugin saves its delegate config this way, and we match its bytes.
 */
export function goMapJson(value: unknown): string {
  return goJsonStringify(sortKeys(value));
}
