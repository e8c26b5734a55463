/**
 * What flanneld's and flannelctl's flags share: flannel's flag table entries, and the names a
 * flag goes by as a FLANNELD_* variable and as an options field.
 */

/** How a flag's text is read. */
export type FlagKind = "string" | "bool" | "int" | "list";

/** One flag: flannel's name, kind, default and help. */
export interface FlagSpec {
  readonly name: string;
  readonly kind: FlagKind;
  readonly default: string | boolean | number | readonly string[];
  readonly help: string;
}

/** The variable a flag is read from when not given (coreos/pkg/flagutil's rule). */
export function envName(flag: string): string {
  return `FLANNELD_${flag.toUpperCase().replace(/-/g, "_")}`;
}

/** The options field of a flag: camel case, with IP written as flannel writes it. */
export function fieldName(flag: string): string {
  const special: Record<string, string> = {
    "healthz-ip": "healthzIP",
    "metrics-ip": "metricsIP",
    "public-ip": "publicIP",
    "public-ipv6": "publicIPv6",
  };
  return special[flag] ?? flag.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}
