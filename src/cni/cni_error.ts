/**
 * CNI errors: the spec's error object (`cniVersion`, `code`, `msg`, `details`) printed on stdout
 * with a non-zero exit. Codes are the spec's well-known ones.
 */
import { FlannelError } from "../errors.js";

/** The spec's well-known error codes. */
export const CniCode = {
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  UnknownContainer: 3,
  InvalidEnvironment: 4,
  IOFailure: 5,
  DecodingFailure: 6,
  InvalidNetworkConfig: 7,
  TryAgainLater: 11,
  /** STATUS: the plugin cannot serve ADD now (CNI 1.1). */
  PluginNotAvailable: 50,
  /** flannel-ts's own: the delegate plugin failed without a CNI error of its own. */
  DelegateFailed: 100,
  /** flannel-ts's own: CHECK found the container's network not as ADD left it. */
  CheckFailed: 101,
} as const;

/** An error the plugin reports to the runtime as a CNI error object. */
export class CniError extends FlannelError {
  constructor(
    readonly code: number,
    message: string,
    readonly details = "",
  ) {
    super(message);
  }

  /** The spec's JSON form. */
  toJSON(cniVersion: string): Record<string, unknown> {
    return {
      cniVersion,
      code: this.code,
      msg: this.message,
      ...(this.details ? { details: this.details } : {}),
    };
  }
}

/** A delegate's own CNI error, passed on to the runtime unchanged. */
export class DelegateError extends FlannelError {
  constructor(
    readonly output: string,
    message: string,
  ) {
    super(message);
  }
}
