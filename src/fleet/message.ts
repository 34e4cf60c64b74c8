/**
 * A grant as the fleet publishes it: a canonical text (a JSON array in a fixed order) and an
 * HMAC-SHA256 of exactly that text with the fleet key. Receivers check the MAC over the bytes they
 * got before parsing anything, so there is one encoding and no canonicalisation to get wrong.
 * Pure: no Redis, no clock of its own.
 */
import crypto from 'node:crypto';
import { isCanonicalSource, canonicalSource, Family } from '../model/address';
import type { Grant } from '../model/grant';

/** Names the format and its version inside what is signed: no other use of the key can collide with it. */
const TAG = 'tumbler-fleet-grant/1';
/** Longer texts are dropped before the MAC is computed. */
export const MAX_MESSAGE_BYTES = 1024;
/** A grant made this far in the sender's future is refused (clocks of a fleet are NTP-synchronised). */
export const MAX_CLOCK_SKEW_MS = 30_000;
/** No fleet grant lasts longer than a day, whatever the sender claims. */
export const MAX_GRANT_MS = 24 * 3_600_000;

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** A grant as it travels: what the knock granted, and who sent it, which group, which id, until when. */
export interface FleetGrant extends Pick<Grant, 'door' | 'src' | 'family' | 'via' | 'user' | 'at'> {
  group: string;
  /** The gateway that accepted the knock. */
  sender: string;
  /** 32 hex digits, random: receivers apply each id once. */
  id: string;
  /** When the door closes on every gateway (ms since the epoch). */
  until: number;
}

/** The stream entry's fields. */
export interface SignedGrant {
  grant: string;
  mac: string;
}

export const newGrantId = (): string => crypto.randomBytes(16).toString('hex');

export function isFleetName(text: string): boolean {
  return NAME.test(text);
}

function encode(g: FleetGrant): string {
  return JSON.stringify([TAG, g.group, g.sender, g.id, g.door, g.src, g.family, g.via, g.user, g.at, g.until]);
}

function mac(key: Buffer, text: string): Buffer {
  return crypto.createHmac('sha256', key).update(text, 'utf8').digest();
}

export function signGrant(key: Buffer, g: FleetGrant): SignedGrant {
  const text = encode(g);
  return { grant: text, mac: mac(key, text).toString('hex') };
}

export type Opened = { ok: true; grant: FleetGrant } | { ok: false; reason: string };

/**
 * Checks a stream entry: the MAC first (constant time), then the form of every field, the group
 * and the times. `reason` is for logs and counters; it never echoes what an attacker wrote.
 */
export function openGrant(key: Buffer, fields: Partial<SignedGrant>, group: string, now: number): Opened {
  const { grant: text, mac: tag } = fields;
  if (typeof text !== 'string' || typeof tag !== 'string' || Buffer.byteLength(text) > MAX_MESSAGE_BYTES || !/^[0-9a-f]{64}$/.test(tag)) {
    return { ok: false, reason: 'malformed' };
  }
  if (!crypto.timingSafeEqual(mac(key, text), Buffer.from(tag, 'hex'))) return { ok: false, reason: 'bad signature' };
  const g = decode(text);
  if (!g) return { ok: false, reason: 'malformed' };
  if (g.group !== group) return { ok: false, reason: 'other group' };
  if (g.at > now + MAX_CLOCK_SKEW_MS) return { ok: false, reason: 'made in the future' };
  if (g.until <= now) return { ok: false, reason: 'expired' };
  return { ok: true, grant: g };
}

/* Only reached with a valid MAC, but checked as strictly as untrusted input all the same. */
function decode(text: string): FleetGrant | null {
  let a: unknown;
  try {
    a = JSON.parse(text);
  } catch {
    return null;
  }
  if (!Array.isArray(a) || a.length !== 11 || a[0] !== TAG) return null;
  const [, group, sender, id, door, src, family, via, user, at, until] = a as unknown[];
  if (typeof group !== 'string' || !NAME.test(group) || typeof sender !== 'string' || !NAME.test(sender)) return null;
  if (typeof id !== 'string' || !/^[0-9a-f]{32}$/.test(id) || typeof door !== 'string' || !NAME.test(door)) return null;
  if (typeof src !== 'string' || !isCanonicalSource(src) || canonicalSource(src)?.family !== family) return null;
  if (via !== 'sequence' && via !== 'tumbler') return null;
  if (user !== null && (typeof user !== 'string' || user.length > 128)) return null;
  if (!Number.isSafeInteger(at) || !Number.isSafeInteger(until) || (until as number) <= (at as number)) return null;
  if ((until as number) - (at as number) > MAX_GRANT_MS) return null;
  return { group, sender, id, door, src, family: family as Family, via, user: user as string | null, at: at as number, until: until as number };
}
