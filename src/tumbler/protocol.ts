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

/* Every datagram needs the TIME strings of the minutes around now: kept for the last few minutes seen. */
const minuteStrings = new Map<number, string>();

function minuteString(minute: number): string {
  let t = minuteStrings.get(minute);
  if (t === undefined) {
    t = timeString(minute);
    if (minuteStrings.size >= 64) minuteStrings.delete(minuteStrings.keys().next().value as number);
    minuteStrings.set(minute, t);
  }
  return t;
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
 * Decodes the digest a datagram carries into `out` (32 bytes); false for anything that is not
 * exactly the magic, 64 hex digits (either case) and at most a trailing newline. Into a buffer
 * the caller reuses: junk costs no allocation.
 */
export function readDigest(msg: Buffer, out: Uint8Array): boolean {
  let end = msg.length;
  if (end > 0 && msg[end - 1] === 10) end--;
  if (end > 0 && msg[end - 1] === 13) end--;
  if (end !== MAGIC.length + HEX_LENGTH) return false;
  for (let i = 0; i < MAGIC.length; i++) if (msg[i] !== MAGIC.charCodeAt(i)) return false;
  for (let i = 0; i < DIGEST_BYTES; i++) {
    const hi = hexValue(msg[MAGIC.length + 2 * i]);
    const lo = hexValue(msg[MAGIC.length + 2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = hi * 16 + lo;
  }
  return true;
}

/** The digest a datagram carries, as bytes, or null (see readDigest). */
export function parseDatagram(msg: Buffer): Buffer | null {
  const d = Buffer.alloc(DIGEST_BYTES);
  return readDigest(msg, d) ? d : null;
}

/** The first 30 bits of a digest: a small integer, which a Map looks up without making a string. */
export function digestTag(d: Uint8Array): number {
  return d[0] | (d[1] << 8) | (d[2] << 16) | ((d[3] & 0x3f) << 24);
}

/** All 32 bytes of `a` (a latin1 string) against `b`, in constant time. */
function sameDigest(a: string, b: Uint8Array): boolean {
  let diff = 0;
  for (let j = 0; j < DIGEST_BYTES; j++) diff |= a.charCodeAt(j) ^ b[j];
  return diff === 0;
}

/**
 * The candidates of one source and minute by the first 30 bits of each, for a source that sends
 * more than one datagram in a minute: one integer lookup, then one constant-time comparison of
 * all 32 bytes, instead of a hash and a comparison per candidate. Its time tells a sender only
 * whether its guess shares 30 bits with some candidate, which takes about 2^30 datagrams to
 * find and says nothing of the other 226 bits. Two candidates with the same 30 bits (about one
 * window in 10^6 at 48 candidates) are both kept, and both compared.
 */
export class DigestIndex {
  private readonly byTag = new Map<number, number>();
  private readonly extra: number[] = [];

  constructor(private readonly digests: readonly string[]) {
    digests.forEach((d, n) => {
      const tag = d.charCodeAt(0) | (d.charCodeAt(1) << 8) | (d.charCodeAt(2) << 16) | ((d.charCodeAt(3) & 0x3f) << 24);
      if (this.byTag.has(tag)) this.extra.push(n);
      else this.byTag.set(tag, n);
    });
  }

  /** The number of the candidate `digest` equals, or -1. */
  find(digest: Uint8Array): number {
    const n = this.byTag.get(digestTag(digest));
    let found = n !== undefined && sameDigest(this.digests[n], digest) ? n : -1;
    for (const m of this.extra) if (sameDigest(this.digests[m], digest) && found < 0) found = m;
    return found;
  }
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

/** The hash inputs `TIME:IP:SECRET` of a window as bytes, with where the IP goes in each. */
interface HashInputs {
  bytes: Buffer[];
  ipAt: number[];
}

/*
 * Per set of doors, the inputs of recent windows, one per minute, skew and length of IP: a
 * datagram from a new source writes only its IP into them. Bytes hash about a third cheaper
 * than a string that must be joined and encoded first (205 against 300 ns here).
 */
const hashInputs = new WeakMap<readonly SecretDoor[], Map<string, HashInputs>>();

function inputsFor(doors: readonly SecretDoor[], base: number, skew: number, ipLength: number): HashInputs {
  let recent = hashInputs.get(doors);
  if (!recent) hashInputs.set(doors, (recent = new Map()));
  const key = `${base}/${skew}/${ipLength}`;
  let inputs = recent.get(key);
  if (!inputs) {
    inputs = { bytes: [], ipAt: [] };
    const ip = 'x'.repeat(ipLength);
    for (let k = -skew; k <= skew; k++) {
      const time = minuteString(base + k * MINUTE_MS);
      for (const door of doors) {
        inputs.bytes.push(Buffer.from(`${time}:${ip}:${door.secret}`, 'utf8'));
        inputs.ipAt.push(time.length + 1);
      }
    }
    if (recent.size >= 64) recent.delete(recent.keys().next().value as string);
    recent.set(key, inputs);
  }
  return inputs;
}

/**
 * The digests a knock from one address may carry in one minute: each door, for the current
 * minute and `skew` minutes either side, numbered `minuteOffset * doors + door` with the
 * offset counted from `-skew`.
 */
export class DigestWindow {
  readonly base: number;
  readonly size: number;
  private readonly inputs: HashInputs;

  constructor(
    private readonly ip: string,
    private readonly doors: readonly SecretDoor[],
    now: number,
    private readonly skew: number,
  ) {
    this.base = Math.floor(now / MINUTE_MS) * MINUTE_MS;
    this.size = (2 * skew + 1) * doors.length;
    this.inputs = inputsFor(doors, this.base, skew, ip.length);
  }

  /** Candidate `n`'s hash input with this window's address written in (the buffers are shared: use it at once). */
  private input(n: number): Buffer {
    const input = this.inputs.bytes[n];
    const at = this.inputs.ipAt[n];
    for (let j = 0; j < this.ip.length; j++) input[at + j] = this.ip.charCodeAt(j);
    return input;
  }

  digest(n: number): string {
    /* 'binary' is latin1 (the name Node's types accept here) */
    return crypto.hash('sha256', this.input(n), 'binary');
  }

  match(n: number): TumblerMatch {
    const d = this.doors.length;
    return { door: this.doors[n % d].name, minute: this.base + (Math.floor(n / d) - this.skew) * MINUTE_MS };
  }

  /**
   * The number of the candidate `digest` equals, or -1. Every candidate is hashed and compared,
   * none stopping early: the first 8 bytes of each in constant time, and all 32, in constant time
   * too, of a candidate whose first 8 matched. The time taken then tells only whether a guess
   * matched some candidate in 64 bits, which takes 2^64 guesses to find and says nothing of the
   * other 192.
   */
  scan(digest: Uint8Array): number {
    if (digest.length !== DIGEST_BYTES) return -1;
    const d0 = digest[0] | (digest[1] << 8) | (digest[2] << 16) | (digest[3] << 24);
    const d1 = digest[4] | (digest[5] << 8) | (digest[6] << 16) | (digest[7] << 24);
    let found = -1;
    for (let n = 0; n < this.size; n++) {
      const c = this.digest(n);
      const c0 = c.charCodeAt(0) | (c.charCodeAt(1) << 8) | (c.charCodeAt(2) << 16) | (c.charCodeAt(3) << 24);
      const c1 = c.charCodeAt(4) | (c.charCodeAt(5) << 8) | (c.charCodeAt(6) << 16) | (c.charCodeAt(7) << 24);
      if (((c0 ^ d0) | (c1 ^ d1)) !== 0) continue;
      if (sameDigest(c, digest) && found < 0) found = n;
    }
    return found;
  }

  /** Every candidate, indexed: for a source that sends again within the minute. */
  index(): DigestIndex {
    return new DigestIndex(Array.from({ length: this.size }, (_, n) => this.digest(n)));
  }
}

/** Which door, if any, a digest from `ip` opens at `now`. */
export function matchDigest(
  digest: Buffer,
  ip: string,
  doors: readonly SecretDoor[],
  now: number,
  skewMinutes: number,
): TumblerMatch | null {
  const w = new DigestWindow(ip, doors, now, skewMinutes);
  const n = w.scan(digest);
  return n < 0 ? null : w.match(n);
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
