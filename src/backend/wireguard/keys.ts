/**
 * WireGuard keys as flannel keeps them: base64 of 32 bytes (as `wg genkey` prints them), the
 * private key in one file (`/run/flannel/wgkey`, or WIREGUARD_KEY_FILE), made once with mode
 * 0400 and read on every later start, so that the public key in the lease never changes.
 */
import { createPrivateKey, createPublicKey, randomBytes } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import { FlannelError } from "../../errors.js";
import { writeFileAtomic } from "../../util/atomic_write.js";

/** flannel's key file. */
export const DEFAULT_KEY_FILE = "/run/flannel/wgkey";

/** The key file flanneld and doctor use: WIREGUARD_KEY_FILE, else flannel's default. */
export const keyFileOf = (env: NodeJS.ProcessEnv = process.env): string =>
  env.WIREGUARD_KEY_FILE ?? DEFAULT_KEY_FILE;

/** A key that does not decode. */
export class WireGuardKeyError extends FlannelError {}

/** A PKCS#8 X25519 private key before its 32 raw bytes (RFC 8410). */
const PKCS8_X25519_PREFIX = Buffer.from("302e020100300506032b656e04220420", "hex");

/**
 * Decodes a base64 key with the words of flannel's key parser (wgtypes.ParseKey); `what` names
 * it ("psk", "private key from file"). Line breaks are ignored, as Go's base64 decoder does.
 */
export function parseKey(text: string, what: string): Buffer {
  const clean = text.replace(/[\r\n]/g, "");
  const bad = /[^A-Za-z0-9+/=]/.exec(clean);
  if (bad !== null || !/^[A-Za-z0-9+/]*={0,2}$/.test(clean) || clean.length % 4 !== 0) {
    const at = bad?.index ?? clean.length;
    throw new WireGuardKeyError(
      `could not parse ${what}: wgtypes: failed to parse base64-encoded key: illegal base64 data at input byte ${at}: expected the base64 of 32 bytes, as \`wg genkey\` prints`,
    );
  }
  const key = Buffer.from(clean, "base64");
  if (key.length !== 32)
    throw new WireGuardKeyError(
      `could not parse ${what}: wgtypes: incorrect key size: ${key.length}: expected the base64 of 32 bytes, as \`wg genkey\` prints`,
    );
  return key;
}

/** A new private key, clamped as `wg genkey` clamps it (RFC 7748). */
export function generatePrivateKey(): Buffer {
  const key = randomBytes(32);
  key[0] = (key[0] ?? 0) & 248;
  key[31] = ((key[31] ?? 0) & 127) | 64;
  return key;
}

/** The public key of a private key (X25519, as `wg pubkey`). */
export function publicKeyOf(privateKey: Buffer): Buffer {
  const key = createPrivateKey({
    key: Buffer.concat([PKCS8_X25519_PREFIX, privateKey]),
    format: "der",
    type: "pkcs8",
  });
  const { x } = createPublicKey(key).export({ format: "jwk" });
  if (x === undefined) throw new WireGuardKeyError("Cannot derive a WireGuard public key");
  return Buffer.from(x, "base64url");
}

/** This host's key pair, and whether the file was made now. */
export interface HostKeys {
  readonly privateKey: Buffer;
  /** Base64, as the lease carries it. */
  readonly publicKey: string;
  readonly path: string;
  readonly created: boolean;
  /** The file's mode bits (0o400 when flanneld made it). */
  readonly mode: number;
}

/** The private key in the key file; null when there is none. */
async function readKeyFile(path: string): Promise<Buffer | null> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw new WireGuardKeyError(
      `Cannot read the WireGuard key file ${path}: ${(err as Error).message}: check its permissions, or set WIREGUARD_KEY_FILE to another path`,
      { cause: err },
    );
  }
  return parseKey(text, `private key from file ${path}`);
}

/** Reads the key file; null when there is none (doctor: nothing is made). */
export async function loadKeysIfAny(path: string): Promise<{ readonly publicKey: string } | null> {
  const privateKey = await readKeyFile(path);
  return privateKey === null ? null : { publicKey: publicKeyOf(privateKey).toString("base64") };
}

/** Reads the key file, or makes it (mode 0400, its folder 0755) when there is none. */
export async function loadOrCreateKeys(path: string): Promise<HostKeys> {
  const existing = await readKeyFile(path);
  if (existing !== null) {
    const { mode } = await stat(path);
    return {
      privateKey: existing,
      publicKey: publicKeyOf(existing).toString("base64"),
      path,
      created: false,
      mode: mode & 0o777,
    };
  }
  const privateKey = generatePrivateKey();
  writeKeyFile(path, privateKey.toString("base64"));
  return {
    privateKey,
    publicKey: publicKeyOf(privateKey).toString("base64"),
    path,
    created: true,
    mode: 0o400,
  };
}

/** Writes the key file whole or not at all, with mode 0400 (util/atomic_write.ts). */
function writeKeyFile(path: string, content: string): void {
  try {
    writeFileAtomic(path, content, { mode: 0o400 });
  } catch (err) {
    throw new WireGuardKeyError(
      `could not write key file ${path}: ${(err as Error).message}: give WIREGUARD_KEY_FILE a path in a writable folder`,
      { cause: err },
    );
  }
}
