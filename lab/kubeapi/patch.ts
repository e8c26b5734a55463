/**
 * The three PATCH formats the Kubernetes API server takes, on plain JSON values:
 * - JSON merge patch (RFC 7386, `application/merge-patch+json`): objects merge, null deletes,
 *   everything else (lists included) replaces.
 * - Strategic merge patch (`application/strategic-merge-patch+json`): a merge patch in which the
 *   lists Kubernetes declares with a patch merge key (a Node's `status.conditions` by `type`,
 *   `status.addresses` by `type`, ...) merge element by element, and an element
 *   `{"<key>": ..., "$patch": "delete"}` removes one. `$setElementOrder/...` and
 *   `$retainKeys` directives are accepted and ignored (they only order or prune).
 * - JSON patch (RFC 6902, `application/json-patch+json`): add, remove, replace, move, copy, test.
 *
 * Errors are PatchError; the server answers them 422 (JSON patch) or 400 (bad patch body).
 */
import { FlannelError } from "../../src/errors.js";

/** A JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A patch that cannot be applied; `status` is the HTTP code the API server answers with. */
export class PatchError extends FlannelError {
  constructor(
    message: string,
    readonly status: 400 | 422 = 422,
  ) {
    super(message);
  }
}

const isObject = (v: Json | undefined): v is { [key: string]: Json } =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** RFC 7386: applies a JSON merge patch. */
export function mergePatch(target: Json, patch: Json): Json {
  if (!isObject(patch)) return structuredClone(patch);
  const out: { [key: string]: Json } = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) Reflect.deleteProperty(out, key);
    else out[key] = mergePatch(out[key] ?? null, value);
  }
  return out;
}

/**
 * The patch merge keys of the lists this double stores (Node and Pod), by path with list
 * indices left out. A list not named here is replaced whole, as for a list without
 * `patchStrategy: merge` in the Kubernetes types.
 */
const MERGE_KEYS: Readonly<Record<string, string>> = {
  "status.conditions": "type",
  "status.addresses": "type",
  "status.images": "names",
  "status.volumesAttached": "name",
  "metadata.ownerReferences": "uid",
  "metadata.managedFields": "manager",
  "spec.containers": "name",
  "spec.initContainers": "name",
  "spec.volumes": "name",
  "status.containerStatuses": "name",
};

/** Applies a strategic merge patch to a Node or Pod. */
export function strategicMergePatch(target: Json, patch: Json): Json {
  return strategicMerge(target, patch, "");
}

function strategicMerge(target: Json, patch: Json, path: string): Json {
  if (!isObject(patch)) return structuredClone(patch);
  if (patch.$patch === "replace") {
    const { $patch: _replace, ...rest } = patch;
    return stripDirectives(rest);
  }
  if (patch.$patch === "delete") return null;
  const out: { [key: string]: Json } = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (key.startsWith("$")) continue; // $setElementOrder/..., $retainKeys, $deleteFromPrimitiveList/...
    const childPath = path === "" ? key : `${path}.${key}`;
    if (value === null) {
      Reflect.deleteProperty(out, key);
      continue;
    }
    const mergeKey = MERGE_KEYS[childPath];
    if (mergeKey !== undefined && Array.isArray(value)) {
      const current = out[key];
      out[key] = mergeList(Array.isArray(current) ? current : [], value, mergeKey, childPath);
    } else {
      const merged = strategicMerge(out[key] ?? null, value, childPath);
      if (merged === null) Reflect.deleteProperty(out, key);
      else out[key] = merged;
    }
  }
  return out;
}

function mergeList(current: Json[], patch: Json[], mergeKey: string, path: string): Json[] {
  const out = [...current];
  for (const element of patch) {
    if (!isObject(element) || !(mergeKey in element)) {
      throw new PatchError(
        `Cannot apply strategic merge patch: each element of "${path}" needs its merge key "${mergeKey}"`,
        400,
      );
    }
    const key = JSON.stringify(element[mergeKey]);
    const at = out.findIndex((e) => isObject(e) && JSON.stringify(e[mergeKey]) === key);
    if (element.$patch === "delete") {
      if (at >= 0) out.splice(at, 1);
      continue;
    }
    if (at >= 0) out[at] = strategicMerge(out[at] ?? null, element, path);
    else out.push(stripDirectives(element));
  }
  return out;
}

function stripDirectives(value: Json): Json {
  if (Array.isArray(value)) return value.map(stripDirectives);
  if (!isObject(value)) return value;
  const out: { [key: string]: Json } = {};
  for (const [k, v] of Object.entries(value)) if (!k.startsWith("$")) out[k] = stripDirectives(v);
  return out;
}

/** One RFC 6902 operation, as decoded from the patch body. */
interface JsonPatchOp {
  readonly op: string;
  readonly path: string;
  readonly from?: string;
  readonly value?: Json;
}

function parsePointer(pointer: string): string[] {
  if (pointer === "") return [];
  if (!pointer.startsWith("/")) throw new PatchError(`Invalid JSON pointer "${pointer}"`, 400);
  return pointer
    .slice(1)
    .split("/")
    .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
}

/** The value at `tokens` below `doc`; PatchError naming `pointer` when a step is missing. */
function walk(doc: Json, tokens: readonly string[], pointer: string): Json {
  let node: Json = doc;
  for (const token of tokens) {
    const next: Json | undefined = Array.isArray(node)
      ? node[Number(token)]
      : isObject(node)
        ? node[token]
        : undefined;
    if (next === undefined) throw new PatchError(`Path "${pointer}" does not exist`);
    node = next;
  }
  return node;
}

function parentOf(doc: Json, tokens: readonly string[], pointer: string): Json {
  return walk(doc, tokens.slice(0, -1), pointer);
}

function getAt(doc: Json, pointer: string): Json {
  return walk(doc, parsePointer(pointer), pointer);
}

function removeAt(doc: Json, pointer: string): Json {
  const tokens = parsePointer(pointer);
  const last = tokens.at(-1);
  if (last === undefined) throw new PatchError("Cannot remove the whole document");
  const parent = parentOf(doc, tokens, pointer);
  if (Array.isArray(parent)) {
    const i = Number(last);
    if (!Number.isInteger(i) || i < 0 || i >= parent.length)
      throw new PatchError(`Path "${pointer}" does not exist`);
    return parent.splice(i, 1)[0] ?? null;
  }
  if (!isObject(parent) || !(last in parent))
    throw new PatchError(`Path "${pointer}" does not exist`);
  const old = parent[last] ?? null;
  Reflect.deleteProperty(parent, last);
  return old;
}

function addAt(doc: Json, pointer: string, value: Json, replace: boolean): Json {
  const tokens = parsePointer(pointer);
  const last = tokens.at(-1);
  if (last === undefined) return structuredClone(value);
  const parent = parentOf(doc, tokens, pointer);
  if (Array.isArray(parent)) {
    const i = last === "-" ? parent.length : Number(last);
    if (!Number.isInteger(i) || i < 0 || i > parent.length || (replace && i >= parent.length))
      throw new PatchError(`Path "${pointer}" is out of range`);
    parent.splice(i, replace ? 1 : 0, structuredClone(value));
  } else if (isObject(parent)) {
    if (replace && !(last in parent)) throw new PatchError(`Path "${pointer}" does not exist`);
    parent[last] = structuredClone(value);
  } else {
    throw new PatchError(`Path "${pointer}" does not exist`);
  }
  return doc;
}

/** RFC 6902: applies a JSON patch (a list of operations), all or nothing. */
export function jsonPatch(target: Json, patch: Json): Json {
  if (!Array.isArray(patch)) throw new PatchError("A JSON patch must be a list of operations", 400);
  let doc = structuredClone(target);
  for (const raw of patch) {
    if (!isObject(raw) || typeof raw.op !== "string" || typeof raw.path !== "string")
      throw new PatchError('Each JSON patch operation needs "op" and "path"', 400);
    const op = raw as unknown as JsonPatchOp;
    switch (op.op) {
      case "add":
      case "replace":
        if (op.value === undefined) throw new PatchError(`"${op.op}" needs a "value"`, 400);
        doc = addAt(doc, op.path, op.value, op.op === "replace");
        break;
      case "remove":
        removeAt(doc, op.path);
        break;
      case "move":
      case "copy": {
        if (typeof op.from !== "string") throw new PatchError(`"${op.op}" needs "from"`, 400);
        const value = op.op === "move" ? removeAt(doc, op.from) : getAt(doc, op.from);
        doc = addAt(doc, op.path, value, false);
        break;
      }
      case "test":
        if (JSON.stringify(getAt(doc, op.path)) !== JSON.stringify(op.value ?? null))
          throw new PatchError(`Test failed at "${op.path}"`);
        break;
      default:
        throw new PatchError(`Unknown JSON patch operation "${op.op}"`, 400);
    }
  }
  return doc;
}

/** The patch content types the API server accepts, and what each applies. */
export const PATCH_TYPES: Readonly<Record<string, (target: Json, patch: Json) => Json>> = {
  "application/strategic-merge-patch+json": strategicMergePatch,
  "application/merge-patch+json": mergePatch,
  "application/json-patch+json": jsonPatch,
};
