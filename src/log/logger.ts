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
  return pino(
    {
      name: options.name ?? "flanneld",
      level: verbosity >= 6 ? "trace" : verbosity >= 4 ? "debug" : "info",
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    pino.destination({ fd: options.fd ?? 2, sync: true }),
  );
}

/** A logger that drops everything, for tests and tools that only want errors thrown. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
