/** Go's json.Marshal escapes `<`, `>`, `&`, U+2028 and U+2029; this does the same to JSON text. */
export function escapeLikeGo(json: string): string {
  return json.replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}
