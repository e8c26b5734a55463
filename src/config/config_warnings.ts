/**
 * Keys of a network config that flannel ignores but that look like mistakes: like Go's
 * encoding/json, flannel-ts ignores unknown keys, but a near-miss ("DirectRoute", "Netwrok") or
 * a key in the wrong object ("VNI" at the top level, "SubnetLen" in "Backend") is almost always a
 * typo that silently changes nothing. Each gets one warning naming the key and the fix.
 */

const TOP_LEVEL_KEYS = [
  "Network",
  "IPv6Network",
  "EnableIPv4",
  "EnableIPv6",
  "EnableNFTables",
  "SubnetLen",
  "SubnetMin",
  "SubnetMax",
  "IPv6SubnetLen",
  "IPv6SubnetMin",
  "IPv6SubnetMax",
  "Backend",
] as const;

/** The options of every backend flannel has, by flannel's names. */
const BACKEND_KEYS = [
  "Type",
  "VNI",
  "Port",
  "MTU",
  "GBP",
  "Learning",
  "DirectRouting",
  "MacPrefix",
] as const;

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0] ?? 0;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j] ?? 0;
      row[j] = Math.min(
        above + 1,
        (row[j - 1] ?? 0) + 1,
        diagonal + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
      diagonal = above;
    }
  }
  return row[b.length] ?? 0;
}

/** The known key `key` most likely meant, when it is close enough to be a typo. */
function nearMiss(key: string, known: readonly string[]): string | null {
  const lower = key.toLowerCase();
  let best: { name: string; distance: number } | null = null;
  for (const name of known) {
    const candidate = name.toLowerCase();
    const distance =
      candidate.startsWith(lower) || lower.startsWith(candidate)
        ? Math.abs(candidate.length - lower.length) <= 3
          ? 1
          : 99
        : editDistance(lower, candidate);
    const allowed = Math.max(2, Math.ceil(lower.length / 4)); // longer keys, longer typos
    if (distance <= allowed && (best === null || distance < best.distance))
      best = { name, distance };
  }
  return best?.name ?? null;
}

const has = (known: readonly string[], key: string) =>
  known.some((k) => k.toLowerCase() === key.toLowerCase());

/** Warnings for the keys of a decoded network config that look like mistakes. */
export function networkConfigWarnings(json: unknown): string[] {
  if (typeof json !== "object" || json === null || Array.isArray(json)) return [];
  const warnings: string[] = [];
  for (const key of Object.keys(json)) {
    if (has(TOP_LEVEL_KEYS, key)) continue;
    if (has(BACKEND_KEYS, key)) {
      warnings.push(`Network config key "${key}" is ignored at the top level: put it in "Backend"`);
      continue;
    }
    const meant = nearMiss(key, TOP_LEVEL_KEYS);
    const meantInBackend = meant === null ? nearMiss(key, BACKEND_KEYS) : null;
    if (meant !== null)
      warnings.push(
        `Network config key "${key}" is not one flannel knows: did you mean "${meant}"?`,
      );
    else if (meantInBackend !== null)
      warnings.push(
        `Network config key "${key}" is ignored at the top level: did you mean "Backend.${meantInBackend}"?`,
      );
  }
  const backend: unknown = (Object.entries(json) as [string, unknown][]).find(
    ([k]) => k.toLowerCase() === "backend",
  )?.[1];
  if (typeof backend === "object" && backend !== null && !Array.isArray(backend)) {
    for (const key of Object.keys(backend)) {
      if (has(BACKEND_KEYS, key)) continue;
      if (has(TOP_LEVEL_KEYS, key)) {
        warnings.push(
          `Network config key "Backend.${key}" is ignored: it belongs at the top level`,
        );
        continue;
      }
      const meant = nearMiss(key, BACKEND_KEYS);
      if (meant !== null)
        warnings.push(
          `Network config key "Backend.${key}" is not one flannel knows: did you mean "${meant}"?`,
        );
    }
  }
  return warnings;
}
