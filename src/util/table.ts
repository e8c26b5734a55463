/** Fixed-width text tables for people: columns padded to their widest cell, two spaces apart. */

/** Formats rows (the first is the header) as aligned lines ending in a newline. */
export function formatTable(rows: readonly (readonly string[])[]): string {
  const columns = Math.max(0, ...rows.map((row) => row.length));
  const widths = Array.from({ length: columns }, (_, i) =>
    Math.max(...rows.map((row) => row[i]?.length ?? 0)),
  );
  return rows
    .map(
      (row) =>
        row
          .map((cell, i) => cell.padEnd(widths[i] ?? 0))
          .join("  ")
          .trimEnd() + "\n",
    )
    .join("");
}
