/**
 * The Tumbler v2 datagram, both ways (docs/PROTOCOL.md is the byte-by-byte specification):
 *
 *   N (16) | masked enc (32) | HPKE ciphertext of the plaintext (+16 tag) | mac1 (16)
 *
 * 256 to 383 bytes, every one of them indistinguishable from random to whoever does not know
 * the gateway's public key. The server undoes it one step at a time, cheapest first, so that the
 * verifier can stop (and count) at each: mac1, unmask, HPKE open, parse, signature.
 */
import crypto from 'node:crypto';
import type { Family } from '../../model/address';
import { addressOctets, canonicalIPv4, canonicalIPv6 } from '../../model/address';
import * as hpke from './hpke';
import { ed25519PrivateKey, ed25519PublicRaw } from './keys';

export const NONCE_LENGTH = 16;
export const ENC_LENGTH = 32;
export const MAC1_LENGTH = 16;
export const MIN_DATAGRAM = 256;
export const MAX_DATAGRAM = 383;
const SIG_LENGTH = 64;
const USER_KEY_LENGTH = 32;
/** type, flags, time, door id, gateway id, the IPv4 and the IPv6 declaration */
const FIXED_FIELDS = 48;
const TRAILER = USER_KEY_LENGTH + SIG_LENGTH;
const OVERHEAD = NONCE_LENGTH + ENC_LENGTH + hpke.TAG_LENGTH + MAC1_LENGTH;
export const MIN_PADDING = MIN_DATAGRAM - OVERHEAD - FIXED_FIELDS - TRAILER;
const TYPE_KNOCK = 1;
const HPKE_INFO = Buffer.from('tumbler2 knock');
const SIG_LABEL = Buffer.from('tumbler2 knock\0');

const sha256 = (data: Buffer): Buffer =>
  /* the one-shot hash (Node >= 20.12) costs half what a Hash object does: junk pays for one */
  typeof crypto.hash === 'function' ? (crypto.hash('sha256', data, 'buffer') as unknown as Buffer) : crypto.createHash('sha256').update(data).digest();

const labelled = (label: string, data: Buffer) => sha256(Buffer.concat([Buffer.from(`tumbler2 ${label}\0`), data]));

/** The 8-byte id a knock names its door by: the name stays out of the datagram's length. */
export const doorId = (name: string): Buffer => labelled('door', Buffer.from(name, 'utf8')).subarray(0, 8);
/** A named gateway's id; all zeros in a knock means "any gateway holding this key". */
export const gatewayId = (name: string | null): Buffer => (name ? labelled('gateway', Buffer.from(name, 'utf8')).subarray(0, 8) : Buffer.alloc(8));

export interface Declared {
  address: string;
  family: Family;
  /** Prefix length: the source may be anywhere inside it. */
  prefix: number;
}

export interface KnockFields {
  /** When the knock was made, ms since the epoch. */
  time: number;
  door: string;
  gateway: string | null;
  declared: Declared[];
}

/** What the randomness of one datagram is: drawn fresh for every knock, fixed in test vectors. */
export interface KnockRandom {
  nonce: Buffer;
  /** The HPKE ephemeral X25519 private key. */
  ephemeral: Buffer;
  /** The datagram's length, MIN_DATAGRAM to MAX_DATAGRAM. */
  length: number;
  /** The top bit of the masked enc's last byte, which X25519 ignores. */
  topBit: 0 | 1;
}

export function freshRandom(): KnockRandom {
  const r = crypto.randomBytes(NONCE_LENGTH + ENC_LENGTH + 1);
  return {
    nonce: r.subarray(0, NONCE_LENGTH),
    ephemeral: r.subarray(NONCE_LENGTH, NONCE_LENGTH + ENC_LENGTH),
    length: MIN_DATAGRAM + (r[NONCE_LENGTH + ENC_LENGTH] & 0x7f),
    topBit: (r[NONCE_LENGTH + ENC_LENGTH] >> 7) as 0 | 1,
  };
}

/** What depends on the gateway's public key only: computed once per gateway, not per datagram. */
export class GatewayContext {
  readonly macKey: Buffer;
  private readonly maskKey: Buffer;
  /** macKey followed by the datagram: one hash call, no allocation, for each datagram. */
  private readonly scratch = Buffer.alloc(32 + MAX_DATAGRAM);

  constructor(readonly publicKey: Buffer) {
    this.macKey = labelled('mac1', publicKey);
    this.maskKey = labelled('mask', publicKey);
    this.macKey.copy(this.scratch, 0);
  }

  mac1(body: Buffer): Buffer {
    body.copy(this.scratch, 32);
    return sha256(this.scratch.subarray(0, 32 + body.length)).subarray(0, MAC1_LENGTH);
  }

  /** Is mac1 right? The one check every datagram pays for. */
  checkMac1(msg: Buffer): boolean {
    const end = msg.length - MAC1_LENGTH;
    return crypto.timingSafeEqual(this.mac1(msg.subarray(0, end)), msg.subarray(end));
  }

  /** XORs the enc field with the mask for this nonce; the same call masks and unmasks. */
  mask(nonce: Buffer, enc: Buffer): Buffer {
    const m = sha256(Buffer.concat([this.maskKey, nonce]));
    const out = Buffer.alloc(ENC_LENGTH);
    for (let i = 0; i < ENC_LENGTH; i++) out[i] = enc[i] ^ m[i];
    return out;
  }
}

function writeDeclared(out: Buffer, declared: Declared[]): void {
  for (const d of declared) {
    const at = d.family === 4 ? 26 : 31;
    if (out[at] !== 0) throw new Error(`two declared IPv${d.family} addresses: a knock carries one per family`);
    const max = d.family === 4 ? 32 : 128;
    if (!(Number.isInteger(d.prefix) && d.prefix >= 1 && d.prefix <= max)) throw new Error(`prefix /${d.prefix} is not 1 to ${max}`);
    out[at] = d.prefix;
    addressBytes(d.address, d.family).copy(out, at + 1);
  }
}

export function addressBytes(address: string, family: Family): Buffer {
  return Buffer.from(addressOctets(address, family));
}

function bytesAddress(b: Buffer): string {
  if (b.length === 4) return [...b].join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  return canonicalIPv6(groups.join(':'))!;
}

/** Makes a datagram; `random` is drawn fresh unless a test vector fixes it. */
export function encodeKnock(gateway: GatewayContext, userSeed: Buffer, fields: KnockFields, random: KnockRandom = freshRandom()): Buffer {
  const { nonce, ephemeral, length, topBit } = random;
  if (!(length >= MIN_DATAGRAM && length <= MAX_DATAGRAM)) throw new Error(`datagram length ${length} out of range`);
  const ptLength = length - OVERHEAD;
  const pt = Buffer.alloc(ptLength);
  pt[0] = TYPE_KNOCK;
  pt.writeBigUInt64BE(BigInt(fields.time), 2);
  doorId(fields.door).copy(pt, 10);
  gatewayId(fields.gateway).copy(pt, 18);
  writeDeclared(pt, fields.declared);
  ed25519PublicRaw(userSeed).copy(pt, ptLength - TRAILER);
  /* the encapsulated key is known before the plaintext is sealed: the signature can cover it */
  const sender = hpke.setupSender(gateway.publicKey, ephemeral, HPKE_INFO);
  const enc = sender.enc;
  const signed = Buffer.concat([SIG_LABEL, gateway.publicKey, nonce, enc, pt.subarray(0, ptLength - SIG_LENGTH)]);
  crypto.sign(null, signed, ed25519PrivateKey(userSeed)).copy(pt, ptLength - SIG_LENGTH);
  const maskedEnc = Buffer.from(enc);
  maskedEnc[31] |= topBit << 7;
  const body = Buffer.concat([nonce, gateway.mask(nonce, maskedEnc), sender.seal(nonce, pt)]);
  return Buffer.concat([body, gateway.mac1(body)]);
}

/** The encapsulated key of a datagram whose mac1 checked: also its replay id. */
export function encOf(gateway: GatewayContext, msg: Buffer): Buffer {
  const enc = gateway.mask(msg.subarray(0, NONCE_LENGTH), msg.subarray(NONCE_LENGTH, NONCE_LENGTH + ENC_LENGTH));
  enc[31] &= 0x7f;
  return enc;
}

/** The plaintext, or null if it does not open with the gateway's private key. */
export function openKnock(gateway: GatewayContext, privateKey: crypto.KeyObject, msg: Buffer, enc: Buffer): Buffer | null {
  const nonce = msg.subarray(0, NONCE_LENGTH);
  const ct = msg.subarray(NONCE_LENGTH + ENC_LENGTH, msg.length - MAC1_LENGTH);
  return hpke.open(privateKey, gateway.publicKey, enc, HPKE_INFO, nonce, ct);
}

export interface OpenedKnock {
  time: number;
  doorId: Buffer;
  gatewayId: Buffer;
  declared: Declared[];
  userKey: Buffer;
  signature: Buffer;
}

/** The plaintext's fields, or null if it is not a well-formed knock (unknown type or flags, padding not zero). */
export function parsePlaintext(pt: Buffer): OpenedKnock | null {
  if (pt.length < FIXED_FIELDS + MIN_PADDING + TRAILER || pt[0] !== TYPE_KNOCK || pt[1] !== 0) return null;
  for (let i = FIXED_FIELDS; i < pt.length - TRAILER; i++) if (pt[i] !== 0) return null;
  const declared: Declared[] = [];
  for (const [at, family, size, max] of [[26, 4, 4, 32], [31, 6, 16, 128]] as const) {
    const prefix = pt[at];
    if (prefix === 0) {
      if (pt.subarray(at + 1, at + 1 + size).some((b) => b !== 0)) return null;
      continue;
    }
    if (prefix > max) return null;
    const address = bytesAddress(pt.subarray(at + 1, at + 1 + size));
    if (!(family === 4 ? canonicalIPv4(address) : address)) return null;
    declared.push({ address, family, prefix });
  }
  const time = pt.readBigUInt64BE(2);
  if (time > BigInt(Number.MAX_SAFE_INTEGER)) return null;
  return {
    time: Number(time),
    doorId: pt.subarray(10, 18),
    gatewayId: pt.subarray(18, 26),
    declared,
    userKey: pt.subarray(pt.length - TRAILER, pt.length - SIG_LENGTH),
    signature: pt.subarray(pt.length - SIG_LENGTH),
  };
}

/** Does the user's signature hold over this datagram? `userKey` may be a cached KeyObject. */
export function signatureHolds(gateway: GatewayContext, msg: Buffer, enc: Buffer, pt: Buffer, userKey: crypto.KeyObject): boolean {
  const signed = Buffer.concat([SIG_LABEL, gateway.publicKey, msg.subarray(0, NONCE_LENGTH), enc, pt.subarray(0, pt.length - SIG_LENGTH)]);
  return crypto.verify(null, signed, userKey, pt.subarray(pt.length - SIG_LENGTH));
}
