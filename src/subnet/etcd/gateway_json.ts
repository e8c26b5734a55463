/**
 * Reading etcd's gateway answers: protobuf's JSON form, in which int64 fields are strings, bytes
 * are base64, and fields at their default value (0, false, empty) are left out.
 */
import { StoreError } from "../../errors.js";

/** A JSON object as parsed, its fields still to be read. */
export type JsonObject = Readonly<Record<string, unknown>>;

/** A key and its value, as a range or a watch returns them. */
export interface EtcdKeyValue {
  readonly key: Buffer;
  readonly value: Buffer;
  /** The etcd lease the key is attached to; "0" for none. */
  readonly lease: string;
  readonly modRevision: bigint;
}

/** The header every answer carries. */
export interface EtcdHeader {
  readonly clusterId: string;
  readonly revision: bigint;
}

/** Parses a JSON object; throws StoreError naming `what` when the text is not one. */
export function readObject(text: string, what: string): JsonObject {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new StoreError(`Cannot read ${what}: not JSON: ${JSON.stringify(text.slice(0, 80))}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new StoreError(`Cannot read ${what}: expected a JSON object`);
  return value as JsonObject;
}

/** A field that is a nested object; {} when left out. */
export function objectField(from: JsonObject, name: string): JsonObject {
  const value = from[name];
  return typeof value === "object" && value !== null ? (value as JsonObject) : {};
}

/** A field that is a list of objects; [] when left out. */
export function listField(from: JsonObject, name: string): readonly JsonObject[] {
  const value = from[name];
  return Array.isArray(value) ? (value as JsonObject[]) : [];
}

/** An int64 (a string in JSON) or a bool field as text; `fallback` when left out. */
export function textField(from: JsonObject, name: string, fallback = "0"): string {
  const value = from[name];
  if (typeof value === "string") return value;
  return typeof value === "number" || typeof value === "boolean" ? String(value) : fallback;
}

/** A bytes field (base64 in JSON); empty when left out. */
export function bytesField(from: JsonObject, name: string): Buffer {
  const value = from[name];
  return typeof value === "string" ? Buffer.from(value, "base64") : Buffer.alloc(0);
}

/** A key-value of a range or watch answer. */
export function readKeyValue(kv: JsonObject): EtcdKeyValue {
  return {
    key: bytesField(kv, "key"),
    value: bytesField(kv, "value"),
    lease: textField(kv, "lease"),
    modRevision: BigInt(textField(kv, "mod_revision")),
  };
}

/** The header of an answer. */
export function readHeader(answer: JsonObject): EtcdHeader {
  const header = objectField(answer, "header");
  return {
    clusterId: textField(header, "cluster_id"),
    revision: BigInt(textField(header, "revision")),
  };
}

/** base64, as the gateway takes keys and values. */
export const base64 = (data: Buffer | string): string =>
  (typeof data === "string" ? Buffer.from(data) : data).toString("base64");
