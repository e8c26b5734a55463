/**
 * An etcd endpoint as flannel's --etcd-endpoints gives it (`http://h:2379`, `https://h:2379`,
 * `h:2379`, `unix:///run/etcd.sock`), as node:http dials it.
 */

/** Where one etcd member answers. */
export interface Endpoint {
  /** As given, for messages. */
  readonly name: string;
  readonly tls: boolean;
  readonly host?: string;
  readonly port?: number;
  readonly socketPath?: string;
}

/**
 * Reads an endpoint; TLS when its scheme is https or when TLS material is given (as etcd's Go
 * client and grpc did with flannel's --etcd-certfile). Throws TypeError for one that is not an
 * endpoint (the flags are checked before this: src/cli/etcd_flags.ts).
 */
export function parseEndpoint(endpoint: string, withTls: boolean): Endpoint {
  if (endpoint.startsWith("unix:"))
    return { name: endpoint, tls: withTls, socketPath: endpoint.replace(/^unix:(\/\/)?/, "") };
  const url = new URL(endpoint.includes("://") ? endpoint : `http://${endpoint}`);
  const tls = url.protocol === "https:" || withTls;
  const port = url.port === "" ? (url.protocol === "https:" ? 443 : 80) : Number(url.port);
  // node:http wants an IPv6 address without the brackets a URL has.
  return { name: endpoint, tls, host: url.hostname.replace(/^\[(.*)\]$/, "$1"), port };
}
