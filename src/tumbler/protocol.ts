/**
 * The Tumbler protocol, version 1 (Dr. Dobb's, "Practical Secure Port Knocking", 2004), as the
 * original implementation puts it on the wire: the ASCII text "TUMBLER1: " and the lower-case
 * hex SHA-256 of "TIME:IP:SECRET", where TIME is Perl's gmtime fields (years since 1900, month
 * from 0, day, hour, minute) printed one after the other without padding. Pure: no sockets.
 */
import crypto from 'node:crypto';

export const MAGIC = 'TUMBLER1: ';
/** The port clients knock on when a URL names none. */
export const DEFAULT_TUMBLER_PORT = 8675;
const DIGEST_BYTES = 32;
const HEX_LENGTH = DIGEST_BYTES * 2;
const MINUTE_MS = 60_000;

/** gmtime(minute) as the original prints it: `1043151554` for 2004-04-15 15:54 UTC. */
export function timeString(ms: number): string {
  const d = new Date(ms);
  return `${d.getUTCFullYear() - 1900}${d.getUTCMonth()}${d.getUTCDate()}${d.getUTCHours()}${d.getUTCMinutes()}`;
}

export function knockDigest(ms: number, ip: string, secret: string): Buffer {
  return crypto.createHash('sha256').update(`${timeString(ms)}:${ip}:${secret}`).digest();
}

export function formatDatagram(digest: Buffer): string {
  return MAGIC + digest.toString('hex');
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/**
 * The digest a datagram carries, or null for anything that is not exactly the magic, 64 hex
 * digits (either case) and at most a trailing newline.
 */
export function parseDatagram(msg: Buffer): Buffer | null {
  let end = msg.length;
  if (end > 0 && msg[end - 1] === 10) end--;
  if (end > 0 && msg[end - 1] === 13) end--;
  if (end !== MAGIC.length + HEX_LENGTH) return null;
  for (let i = 0; i < MAGIC.length; i++) if (msg[i] !== MAGIC.charCodeAt(i)) return null;
  const digest = Buffer.allocUnsafe(DIGEST_BYTES);
  for (let i = 0; i < DIGEST_BYTES; i++) {
    const hi = hexValue(msg[MAGIC.length + 2 * i]);
    const lo = hexValue(msg[MAGIC.length + 2 * i + 1]);
    if (hi < 0 || lo < 0) return null;
    digest[i] = hi * 16 + lo;
  }
  return digest;
}

export interface SecretDoor {
  name: string;
  secret: string;
}

export interface TumblerMatch {
  door: string;
  /** The minute the knock was made for (ms, start of minute). */
  minute: number;
}

export interface Candidate extends TumblerMatch {
  digest: Buffer;
}

/** Every digest a knock from `ip` may carry at `now`: each door, for the current minute and `skewMinutes` either side. */
export function expectedDigests(ip: string, doors: readonly SecretDoor[], now: number, skewMinutes: number): Candidate[] {
  const base = Math.floor(now / MINUTE_MS) * MINUTE_MS;
  const out: Candidate[] = [];
  for (let k = -skewMinutes; k <= skewMinutes; k++) {
    const minute = base + k * MINUTE_MS;
    const prefix = `${timeString(minute)}:${ip}:`;
    for (const door of doors) {
      out.push({ door: door.name, minute, digest: crypto.hash('sha256', prefix + door.secret, 'buffer') as unknown as Buffer });
    }
  }
  return out;
}

/**
 * The candidate a digest matches, or null. Every comparison is constant-time and every
 * candidate is compared, so the time taken says nothing about how close a guess was.
 */
export function findMatch(digest: Buffer, candidates: readonly Candidate[]): TumblerMatch | null {
  let found: TumblerMatch | null = null;
  for (const c of candidates) {
    if (crypto.timingSafeEqual(c.digest, digest) && !found) found = { door: c.door, minute: c.minute };
  }
  return found;
}

/** Which door, if any, a digest from `ip` opens at `now`. */
export function matchDigest(
  digest: Buffer,
  ip: string,
  doors: readonly SecretDoor[],
  now: number,
  skewMinutes: number,
): TumblerMatch | null {
  return findMatch(digest, expectedDigests(ip, doors, now, skewMinutes));
}

/** Unpadded decimal, as Perl prints a number: "0" is the only text with a leading zero. */
function unpadded(text: string, max: number, min = 0): number | null {
  if (text.length === 0 || (text.length > 1 && text[0] === '0')) return null;
  const n = Number(text);
  return n >= min && n <= max ? n : null;
}

/**
 * The last minute of `minute`'s UTC year whose TIME string is the same as `minute`'s. TIME is
 * printed without padding, so month, day, hour and minute can split the digits in other ways:
 * 2025-01-05 01:15 and 11:05 are both `12505115`. At most 16 splits are tried.
 */
export function lastSameTimeString(minute: number): number {
  const year = new Date(minute).getUTCFullYear();
  const rest = timeString(minute).slice(String(year - 1900).length);
  let last = minute;
  const widths = [1, 2];
  for (const a of widths) for (const b of widths) for (const c of widths) for (const d of widths) {
    if (a + b + c + d !== rest.length) continue;
    const month = unpadded(rest.slice(0, a), 11);
    const day = unpadded(rest.slice(a, a + b), 31, 1);
    const hour = unpadded(rest.slice(a + b, a + b + c), 23);
    const min = unpadded(rest.slice(a + b + c), 59);
    if (month === null || day === null || hour === null || min === null) continue;
    const t = Date.UTC(year, month, day, hour, min);
    /* Date.UTC rolls 31 February over into March: not a real date of that month */
    if (new Date(t).getUTCDate() !== day) continue;
    if (t > last) last = t;
  }
  return last;
}

/**
 * When a digest made for `minute` can no longer verify: after the last minute of the year with
 * the same TIME string, plus the skew the server accepts (a knock made at 23:59 on 31 December
 * still verifies in the first minutes of the new year). TIME strings of different years differ
 * in their year digits, so no digest verifies in a later year beyond that.
 */
export function replayHorizon(minute: number, skewMinutes: number): number {
  return lastSameTimeString(minute) + (skewMinutes + 1) * MINUTE_MS;
}
