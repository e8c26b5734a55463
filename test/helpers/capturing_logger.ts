/** A logger whose lines (parsed from pino's JSON) a test can read as they come. */
import { Writable } from "node:stream";
import { pino } from "pino";
import type { Level } from "pino";
import type { Logger } from "../../src/log/logger.js";

/** One parsed log line: the message and whatever fields it carried. */
export interface LogLine {
  readonly msg: string;
  readonly [field: string]: unknown;
}

export function capturingLogger(level: Level = "info"): { log: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()) as LogLine);
      done();
    },
  });
  return { log: pino({ level }, stream), lines };
}

/** A field of a log line as text: strings as they are, anything else as JSON; "" when absent. */
export function fieldText(line: LogLine | undefined, name: string): string {
  const value = line?.[name];
  if (value === undefined) return "";
  return typeof value === "string" ? value : JSON.stringify(value);
}
