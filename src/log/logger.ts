/**
 * Structured logs: one JSON line per event from pino, constant messages with the data in fields.
 * Each module receives a Logger in its dependencies (`log.child({ component: "etcd" })`).
 */
import { pino } from "pino";
import type { Logger as PinoLogger } from "pino";

/** The logger every module takes in its dependencies. */
export type Logger = PinoLogger;

/** Options of createLogger. */
export interface LoggerOptions {
  /** klog-style verbosity from `-v`: 0 logs info and above, 4 and more logs debug too. */
  readonly verbosity?: number;
  /** Where the lines go; flanneld writes to stderr, as flannel (klog) does. */
  readonly fd?: number;
  readonly name?: string;
}

/** Creates the process's root logger. Writes synchronously so that nothing is lost at exit. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const verbosity = options.verbosity ?? 0;
  const debug = verbosity >= 4;
  // Stack traces only at debug level, read through the bundles' source maps.
  if (debug) process.setSourceMapsEnabled(true);
  return pino(
    {
      name: options.name ?? "flanneld",
      level: verbosity >= 6 ? "trace" : debug ? "debug" : "info",
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      serializers: { err: debug ? pino.stdSerializers.err : errorWithoutStack },
    },
    pino.destination({ fd: options.fd ?? 2, sync: true }),
  );
}

/**
 * An error as a log field below debug level: its class and message (and its cause's), one line,
 * no stack.
 */
function errorWithoutStack(err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : "";
  return { type: err.name, message: `${err.message}${cause}` };
}

/** A logger that drops everything, for tests and tools that only want errors thrown. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}

/**
 * A logger for a command a person reads (flannelctl): warnings and errors only, each one plain
 * line on stderr, `<name>: warning: <message> (key=value, ...)`, never JSON beside the output.
 */
export function plainStderrLogger(name: string): Logger {
  const write = (line: string) => {
    const { level, msg, ...fields } = JSON.parse(line) as Record<string, unknown>;
    const label = Number(level) >= 50 ? "error" : "warning";
    const detail = Object.entries(fields)
      .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
      .join(", ");
    process.stderr.write(
      `${name}: ${label}: ${String(msg)}${detail === "" ? "" : ` (${detail})`}\n`,
    );
  };
  return pino({ level: "warn", base: null, timestamp: false }, { write });
}
