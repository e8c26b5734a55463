/**
 * The error classes flannel-ts throws. A class exists only for a condition a caller branches on;
 * a bad argument is a TypeError or RangeError. Only src/cli/ turns an error into a message and an
 * exit code.
 */

/** Base class of every flannel-ts error; `name` is the subclass name. */
export class FlannelError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A network config, flag or environment variable that cannot be used as given. */
export class ConfigError extends FlannelError {}

/** The network config is not stored yet (etcd) or its file does not exist (kube). */
export class ConfigNotFoundError extends ConfigError {}

/** Every subnet between SubnetMin and SubnetMax is taken. */
export class NetworkFullError extends FlannelError {}

/** Another node holds the subnet this node tried to create. The caller retries with another. */
export class LeaseConflictError extends FlannelError {
  constructor(
    readonly subnet: string,
    options?: ErrorOptions,
  ) {
    super(`Cannot acquire lease for ${subnet}: subnet is held by another node`, options);
  }
}

/** This node's lease was deleted by someone else; flanneld must stop. */
export class LeaseRevokedError extends FlannelError {}

/** The subnet manager's store cannot be reached or refused a request. */
export class StoreError extends FlannelError {}

/** No interface or address fits the --iface, --iface-regex or --iface-can-reach choice. */
export class InterfaceError extends FlannelError {}

/** A lease key holds a value that is not a lease (bad JSON, a bad field). */
export class UnreadableLeaseError extends StoreError {
  constructor(
    readonly key: string,
    readonly reason: string,
  ) {
    super(`Cannot read lease "${key}": ${reason}`);
  }
}
