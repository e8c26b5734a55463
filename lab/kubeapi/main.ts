/**
 * The API double as a process, for the lab and the namespace tests:
 *   node dist/lab/kubeapi/main.js --listen 10.250.0.1:6443 [--state FILE]
 *     [--users FILE] [--admin-token TOKEN] [--anonymous admin|none]
 * `--state` keeps the objects across a restart (written after every change), so that a double
 * stopped and started again is an API server that was down, not a new cluster. `--users` is a
 * JSON object mapping bearer tokens to `{ "name": ..., "rules": [ClusterRole rules] }`.
 */
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { ADMIN_RULES } from "./rbac.js";
import type { ApiUser } from "./rbac.js";
import { startKubeApiDouble } from "./server.js";
import type { ObjectStore, StoreSnapshot } from "./store.js";

const { values } = parseArgs({
  options: {
    listen: { type: "string", default: "127.0.0.1:6443" },
    socket: { type: "string" },
    state: { type: "string" },
    users: { type: "string" },
    "admin-token": { type: "string" },
    anonymous: { type: "string", default: "admin" },
  },
});
const listen = values.listen;
const at = listen.lastIndexOf(":");
const host = listen.slice(0, at);
const port = Number(listen.slice(at + 1));

const users: Record<string, ApiUser> = values.users
  ? (JSON.parse(readFileSync(values.users, "utf8")) as Record<string, ApiUser>)
  : {};
if (values["admin-token"] !== undefined)
  users[values["admin-token"]] = { name: "kubernetes-admin", rules: ADMIN_RULES };

let snapshot: StoreSnapshot | undefined;
const statePath = values.state;
if (statePath !== undefined) {
  try {
    snapshot = JSON.parse(readFileSync(statePath, "utf8")) as StoreSnapshot;
  } catch {
    snapshot = undefined; // first start
  }
}

let pending: NodeJS.Timeout | null = null;

/** Writes the objects to `--state`, atomically. */
function save(store: ObjectStore): void {
  if (statePath === undefined) return;
  writeFileSync(`${statePath}.tmp`, JSON.stringify(store.snapshot()));
  renameSync(`${statePath}.tmp`, statePath);
}

const double = await startKubeApiDouble({
  host,
  port,
  ...(values.socket !== undefined ? { socketPath: values.socket } : {}),
  users,
  anonymous: values.anonymous === "none" ? null : { name: "system:admin", rules: ADMIN_RULES },
  ...(snapshot !== undefined ? { snapshot } : {}),
  onChange: (store) => {
    if (statePath === undefined || pending !== null) return;
    pending = setTimeout(() => {
      pending = null;
      save(store);
    }, 20);
  },
});
process.stdout.write(`kube API double listening on ${double.url}\n`);
const stop = () => {
  save(double.store);
  void double.close().then(() => process.exit(0));
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
