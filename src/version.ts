/** The flannel-ts version, printed by `--version`. */
export const VERSION = "v0.1.0-flannel-ts";
