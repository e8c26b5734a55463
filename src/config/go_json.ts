/**
 * Go encoding/json's key matching for zod schemas: a JSON key matches the schema key with the same
 * lower-case spelling, unknown keys are ignored, and `null` leaves a field at its default, as a
 * Go struct field would be left. Later keys win over earlier ones, as in Go.
 */
import * as z from "zod";

/** Wraps an object shape so that its keys match case-insensitively, as Go's json does. */
export function goJson<Shape extends z.ZodRawShape>(shape: Shape) {
  const byLowerCase = new Map(Object.keys(shape).map((key) => [key.toLowerCase(), key]));
  return z.preprocess((input: unknown) => {
    if (typeof input !== "object" || input === null || Array.isArray(input)) return input;
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(input)) {
      const field = byLowerCase.get(key.toLowerCase());
      if (field !== undefined && value !== null) out[field] = value;
    }
    return out;
  }, z.object(shape));
}

/** Looks a key up in a plain JSON object the way Go would: exact spelling first, then any case. */
export function goJsonField(object: Readonly<Record<string, unknown>>, name: string): unknown {
  if (Object.hasOwn(object, name)) return object[name];
  const lower = name.toLowerCase();
  let found: unknown = undefined;
  for (const [key, value] of Object.entries(object)) if (key.toLowerCase() === lower) found = value;
  return found;
}

/** Formats zod issues as one line: `Field: message; Other.Field: message`. */
export function formatIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) =>
      issue.path.length > 0 ? `${issue.path.join(".")}: ${issue.message}` : issue.message,
    )
    .join("; ");
}
