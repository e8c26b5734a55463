/**
 * The flanneld command: flags and FLANNELD_* variables, the process's one AbortController
 * (aborted on SIGINT and SIGTERM), and exit codes. No logic lives here; flanneld.ts and
 * flanneld_snapshot.ts run it.
 */
import { LeaseRevokedError } from "../errors.js";
import { createLogger } from "../log/logger.js";
import type { Logger } from "../log/logger.js";
import type { ServiceNotifier } from "../daemon/sd_notify.js";
import { VERSION } from "../version.js";
import { parseFlanneldFlags } from "./flanneld_flags.js";

/** How long flanneld may take to stop after SIGTERM or SIGINT before it exits regardless. */
export const SHUTDOWN_DEADLINE_MS = 1_000;

/**
 * Whatever is still running after a signal (a request the kernel or a library never answers)
 * must not keep the process: exits with 1 after SHUTDOWN_DEADLINE_MS, saying so. The timer does
 * not hold the process open by itself.
 */
export function armShutdownDeadline(
  log: Logger,
  signal: NodeJS.Signals,
  exit: (code: number) => void = (code) => process.exit(code),
): void {
  const timer = setTimeout(() => {
    log.error(
      { signal, deadlineMs: SHUTDOWN_DEADLINE_MS },
      "Shutdown did not finish in time; exiting now",
    );
    exit(1);
  }, SHUTDOWN_DEADLINE_MS);
  timer.unref();
}

/** Runs flanneld and resolves with the exit code. */
export async function main(args: readonly string[]): Promise<number> {
  const parsed = parseFlanneldFlags(args, process.env);
  if (parsed.kind === "exit") {
    process.stdout.write(parsed.stdout);
    process.stderr.write(parsed.stderr);
    return parsed.code;
  }
  const options = parsed.options;
  if (options.version) {
    process.stderr.write(`${VERSION}\n`); // flannel prints its version to stderr
    return 0;
  }
  const log = createLogger({ verbosity: options.v });
  const controller = new AbortController();
  const stop = (signal: NodeJS.Signals) => {
    log.info({ signal }, "Received signal; shutting down");
    controller.abort(new Error(`Received ${signal}`));
    armShutdownDeadline(log, signal);
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  let notifier: ServiceNotifier | null = null;
  try {
    // Loaded after the flags, so that --help and --version stay quick.
    const [{ runFlanneld }, { flanneldDeps }, { SdNotifier }] = await Promise.all([
      import("../daemon/run_flanneld.js"),
      import("./flanneld_deps.js"),
      import("../daemon/sd_notify.js"),
    ]);
    // systemd's Type=notify (flannel's flanneld.service): nothing when NOTIFY_SOCKET is unset.
    const sd = SdNotifier.fromEnv(process.env, log);
    notifier = sd;
    await runFlanneld(options, { ...flanneldDeps(options, log), notifier: sd }, log, {
      signal: controller.signal,
    });
    return 0;
  } catch (err) {
    if (err instanceof LeaseRevokedError) {
      // flannel exits 0 here; a supervisor restarts it either way, and it then takes a lease again.
      log.error(
        { err: err.message },
        "Lease has been revoked by someone else; exiting 0 as flannel does",
      );
      return 0;
    }
    log.error(
      {
        err: err instanceof Error ? err.message : String(err),
        kind: err instanceof Error ? err.name : typeof err,
      },
      "flanneld failed",
    );
    return 1;
  } finally {
    notifier?.close();
  }
}
