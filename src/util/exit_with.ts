/** The end of an entry point: its main's exit code, and the process gone. */

/**
 * Leaves with the code `main` resolves with. The process exits at once: a request or timer still
 * under way (etcd's gRPC channel after close(), say) must not keep it after main is done.
 */
export function exitWith(main: Promise<number>): void {
  void main.then((code) => {
    process.exitCode = code;
    process.exit();
  });
}
