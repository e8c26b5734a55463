/**
 * The extension options of the Backend object, as flannel's pkg/backend/extension reads them:
 * `PreStartupCommand`, `PostStartupCommand`, `SubnetAddCommand`, `SubnetRemoveCommand` (shell
 * commands, each optional), and flannel-ts's own `CommandTimeout` (whole seconds, default 60):
 * a command still running then is killed, where flannel waits for ever.
 */
import * as z from "zod";
import { formatIssues, goJson } from "../../config/go_json.js";
import { ConfigError } from "../../errors.js";

/** The hooks, by the option that names each. */
export const HOOKS = [
  "PreStartupCommand",
  "PostStartupCommand",
  "SubnetAddCommand",
  "SubnetRemoveCommand",
] as const;
export type HookName = (typeof HOOKS)[number];

export const DEFAULT_COMMAND_TIMEOUT_SECONDS = 60;

const command = (name: HookName) =>
  z.string(`expected ${name} as a string: a shell command (run with sh -c)`).default("");

const ExtensionConfigSchema = goJson({
  PreStartupCommand: command("PreStartupCommand"),
  PostStartupCommand: command("PostStartupCommand"),
  SubnetAddCommand: command("SubnetAddCommand"),
  SubnetRemoveCommand: command("SubnetRemoveCommand"),
  CommandTimeout: z
    .number("expected CommandTimeout as whole seconds")
    .int("expected CommandTimeout as whole seconds")
    .min(1, "expected CommandTimeout of at least 1 second")
    .max(3_600, "expected CommandTimeout of at most 3600 seconds")
    .default(DEFAULT_COMMAND_TIMEOUT_SECONDS),
});

/** The extension options, decoded: each hook's command ("" for none) and the timeout. */
export interface ExtensionConfig {
  readonly commands: Readonly<Record<HookName, string>>;
  readonly timeoutMs: number;
}

/** Decodes the Backend object's extension options (keys in any case, as in Go). */
export function parseExtensionConfig(backend: Readonly<Record<string, unknown>>): ExtensionConfig {
  const parsed = ExtensionConfigSchema.safeParse(backend);
  if (!parsed.success)
    throw new ConfigError(`Invalid extension backend config: ${formatIssues(parsed.error)}`);
  const c = parsed.data;
  return {
    commands: {
      PreStartupCommand: c.PreStartupCommand,
      PostStartupCommand: c.PostStartupCommand,
      SubnetAddCommand: c.SubnetAddCommand,
      SubnetRemoveCommand: c.SubnetRemoveCommand,
    },
    timeoutMs: c.CommandTimeout * 1_000,
  };
}
