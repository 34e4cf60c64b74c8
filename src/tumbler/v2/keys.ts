/**
 * The keys of Tumbler v2 as raw 32-byte strings, and the text forms people handle: a gateway's
 * X25519 key (base64url, in URLs and hosts files), users' Ed25519 keys (authorized_keys-style
 * lines `tumbler-ed25519 <base64> <comment>`), and a user key derived from a passphrase.
 */
import crypto from 'node:crypto';

export const KEY_LENGTH = 32;
/** The gateway's private key, in state_dir unless tumbler.key_file says otherwise. */
export const GATEWAY_KEY_FILE = 'gateway.key';
/** How far a knock's time may be from the gateway's clock, either way, unless tumbler.window says. */
export const DEFAULT_WINDOW_MS = 60_000;
export const KEY_LINE_TYPE = 'tumbler-ed25519';

/* PKCS#8 headers for a raw private key (RFC 8410): Node imports raw private keys no other way */
const X25519_PKCS8 = Buffer.from('302e020100300506032b656e04220420', 'hex');
const ED25519_PKCS8 = Buffer.from('302e020100300506032b657004220420', 'hex');

const fromJwkX = (k: crypto.KeyObject) => Buffer.from(k.export({ format: 'jwk' }).x as string, 'base64url');

export function x25519PrivateKey(raw: Buffer): crypto.KeyObject {
  return crypto.createPrivateKey({ key: Buffer.concat([X25519_PKCS8, raw]), format: 'der', type: 'pkcs8' });
}

/* JWK, not SPKI: an SPKI import costs ten times as much, and the server imports one per knock */
export function x25519PublicKey(raw: Buffer): crypto.KeyObject {
  return crypto.createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: raw.toString('base64url') }, format: 'jwk' });
}

export function x25519PublicRaw(privateRaw: Buffer): Buffer {
  return fromJwkX(crypto.createPublicKey(x25519PrivateKey(privateRaw)));
}

export function ed25519PrivateKey(seed: Buffer): crypto.KeyObject {
  return crypto.createPrivateKey({ key: Buffer.concat([ED25519_PKCS8, seed]), format: 'der', type: 'pkcs8' });
}

export function ed25519PublicKey(raw: Buffer): crypto.KeyObject {
  return crypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
}

export function ed25519PublicRaw(seed: Buffer): Buffer {
  return fromJwkX(crypto.createPublicKey(ed25519PrivateKey(seed)));
}

/** A fresh random key: an X25519 private key or an Ed25519 seed alike. */
export function randomKey(): Buffer {
  return crypto.randomBytes(KEY_LENGTH);
}

/** A gateway public key as text (base64url without padding: it goes into URLs). */
export function formatGatewayKey(pub: Buffer): string {
  return pub.toString('base64url');
}

export function parseGatewayKey(text: string): Buffer {
  const raw = /^[A-Za-z0-9_-]{43}=?$/.test(text.trim()) ? Buffer.from(text.trim(), 'base64url') : null;
  if (!raw || raw.length !== KEY_LENGTH) throw new Error('a gateway key is 43 characters of base64url (what tumblerd pubkey prints)');
  return raw;
}

export interface UserKey {
  key: Buffer;
  comment: string;
}

export function formatKeyLine(pub: Buffer, comment: string): string {
  return `${KEY_LINE_TYPE} ${pub.toString('base64')}${comment ? ` ${comment}` : ''}`;
}

/** One `tumbler-ed25519 <base64> <comment>` line; the comment names the user and is required. */
export function parseKeyLine(line: string): UserKey {
  const m = /^\s*(\S+)\s+(\S+)(?:\s+(.*?))?\s*$/.exec(line);
  if (!m || m[1] !== KEY_LINE_TYPE) throw new Error(`a key line is "${KEY_LINE_TYPE} <base64> <user>"`);
  const key = /^[A-Za-z0-9+/]{43}=$/.test(m[2]) ? Buffer.from(m[2], 'base64') : null;
  if (!key || key.length !== KEY_LENGTH) throw new Error('the key is not 32 bytes of base64');
  const comment = m[3] ?? '';
  if (!/^[A-Za-z0-9._@+-]{1,64}$/.test(comment)) {
    throw new Error('the comment names the user: 1 to 64 letters, digits and . _ @ + -');
  }
  return { key, comment };
}

/** Key lines in a file's text: blank lines and # comments skipped; errors carry the line number. */
export function parseKeyLines(text: string): { keys: UserKey[]; errors: { line: number; message: string }[] } {
  const keys: UserKey[] = [];
  const errors: { line: number; message: string }[] = [];
  text.split('\n').forEach((line, i) => {
    if (/^\s*(#.*)?$/.test(line)) return;
    try {
      keys.push(parseKeyLine(line));
    } catch (err) {
      errors.push({ line: i + 1, message: (err as Error).message });
    }
  });
  return { keys, errors };
}

/** scrypt cost: about 0.1 s and 32 MiB a guess here, so that a stolen gateway key buys one guess per KDF run. */
export const SCRYPT = { N: 1 << 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };

/**
 * The Ed25519 seed a passphrase stands for, salted with the gateway's public key and a label
 * (the door's name by default), so that one passphrase gives unrelated keys on different
 * gateways and doors, and no table can be computed before a gateway key is known.
 */
export function passphraseSeed(passphrase: string, gatewayPub: Buffer, label: string): Buffer {
  const salt = Buffer.concat([Buffer.from('tumbler2 passphrase\0'), gatewayPub, Buffer.from(label, 'utf8')]);
  return crypto.scryptSync(passphrase.normalize('NFC'), salt, KEY_LENGTH, SCRYPT);
}

/** Reads a key stored as base64 of its 32 raw bytes (the first line of the file). */
export function parseRawKey(text: string, what: string): Buffer {
  const raw = Buffer.from(text.split('\n')[0].trim(), 'base64');
  if (raw.length !== KEY_LENGTH) throw new Error(`${what} does not hold a 32-byte key in base64`);
  return raw;
}
