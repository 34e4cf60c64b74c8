/**
 * Time-derived knock sequences: a TOTP code (RFC 6238, the HMAC-based one-time password of
 * RFC 4226 over the time step) cut into groups of digits, each group a port of the door's range.
 * Chosen so that a phone's TOTP app shows the sequence: with `ports: 40000-40999, length: 2` the
 * code 123456 is the knock 40123, 40456. Pure: no clock, no I/O.
 */
import crypto from 'node:crypto';
import type { Knock, OtpAlgorithm, OtpSpec } from '../model/door';

export type { OtpAlgorithm, OtpSpec };

/** RFC 4226 truncates to 31 bits: a tenth digit would be 0, 1 or 2, not a digit of the code. */
export const MAX_DIGITS = 9;
/** RFC 4226 section 4: "The length of the shared secret MUST be at least 128 bits." */
export const MIN_SECRET_BYTES = 16;

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** RFC 4648 base32, as TOTP apps and `base32` write it: case, spaces and padding ignored. Throws on anything else. */
export function base32Decode(text: string): Buffer {
  const clean = text.replace(/[\s-]/g, '').replace(/=+$/, '').toUpperCase();
  if (clean === '') throw new Error('the secret is empty');
  const out: number[] = [];
  let bits = 0;
  let value = 0;
  for (const c of clean) {
    const v = BASE32.indexOf(c);
    if (v < 0) throw new Error(`"${c}" is not a base32 character (A-Z, 2-7)`);
    value = (value << 5) | v;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((value >>> bits) & 0xff);
    }
  }
  return Buffer.from(out);
}

export function base32Encode(bytes: Uint8Array): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += BASE32[(value >>> bits) & 31];
    }
    value &= (1 << bits) - 1;
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

/** RFC 4226 HOTP: the `digits`-digit code for `counter`, as the zero-padded text an app shows. */
export function hotp(key: Uint8Array, counter: number, digits: number, algorithm: OtpAlgorithm = 'sha1'): string {
  if (!Number.isSafeInteger(counter) || counter < 0) throw new Error(`counter ${counter} is not a whole number`);
  if (!(digits >= 1 && digits <= MAX_DIGITS)) throw new Error(`a code has 1 to ${MAX_DIGITS} digits`);
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(counter));
  const mac = crypto.createHmac(algorithm, key).update(msg).digest();
  const offset = mac[mac.length - 1] & 0xf;
  const bin = mac.readUInt32BE(offset) & 0x7fffffff;
  return String(bin % 10 ** digits).padStart(digits, '0');
}

/** RFC 6238 time step of a moment (T0 = the epoch). */
export function timeStep(timeMs: number, stepMs: number): number {
  return Math.floor(timeMs / stepMs);
}

/** Digits of the code: each port takes log10(range size) of them. */
export function codeDigits(spec: Pick<OtpSpec, 'rangeSize' | 'length'>): number {
  return Math.round(Math.log10(spec.rangeSize)) * spec.length;
}

/** The sequence of time step `step`: the code cut into `length` groups, each added to the first port. */
export function otpSequence(spec: OtpSpec, step: number, key: Uint8Array = base32Decode(spec.secret)): Knock[] {
  const perPort = Math.round(Math.log10(spec.rangeSize));
  const code = hotp(key, step, perPort * spec.length, spec.algorithm);
  const knocks: Knock[] = [];
  for (let i = 0; i < spec.length; i++) {
    knocks.push({ port: spec.firstPort + Number(code.slice(i * perPort, (i + 1) * perPort)), proto: 'tcp' });
  }
  return knocks;
}

/** The steps whose sequences are accepted at `timeMs`: the current one and one either side (clock skew, a knock across a boundary). */
export function acceptedSteps(timeMs: number, stepMs: number): number[] {
  const t = timeStep(timeMs, stepMs);
  return t > 0 ? [t - 1, t, t + 1] : [t, t + 1];
}

/** Until when a step's sequence could still be accepted: a used one must be remembered that long. */
export function stepAcceptedUntil(step: number, stepMs: number): number {
  return (step + 2) * stepMs;
}

/**
 * Reads the `otp:` block of a door (its secret already read); throws with a message fit for a
 * config error. `ports` is "40000-40999" (or [40000, 40999]), `length` 1 to 9, `step` in ms.
 */
export function makeOtpSpec(secretText: string, ports: unknown, length: number, stepMs: number, algorithm: OtpAlgorithm = 'sha1'): OtpSpec {
  const key = base32Decode(secretText);
  if (key.length < MIN_SECRET_BYTES) {
    throw new Error(`the secret is ${key.length} bytes; at least ${MIN_SECRET_BYTES} are needed (head -c 20 /dev/urandom | base32)`);
  }
  const m = typeof ports === 'string' ? /^\s*([0-9]{1,5})\s*-\s*([0-9]{1,5})\s*$/.exec(ports) : null;
  if (!m) throw new Error(`ports: ${JSON.stringify(ports)} is not a range like "40000-40999"`);
  const first = Number(m[1]);
  const last = Number(m[2]);
  const size = last - first + 1;
  if (first < 1 || last > 65535 || size < 10) throw new Error(`ports: ${first}-${last} must be within 1-65535 and hold at least 10 ports`);
  if (10 ** Math.round(Math.log10(size)) !== size) {
    throw new Error(`ports: ${first}-${last} holds ${size} ports; it must hold 10, 100, 1000 or 10000, so that each port is a group of the code's digits`);
  }
  if (!Number.isInteger(length) || length < 1) throw new Error(`length: ${length} is not a whole number of ports`);
  const spec: OtpSpec = { secret: base32Encode(key), firstPort: first, rangeSize: size, length, stepMs, algorithm };
  const digits = codeDigits(spec);
  if (digits > MAX_DIGITS) {
    throw new Error(`${length} ports of ${size} need a ${digits}-digit code; TOTP codes have at most ${MAX_DIGITS}: use fewer or narrower ports`);
  }
  if (stepMs < 5000 || stepMs % 1000 !== 0) throw new Error('step must be a whole number of seconds, at least 5s');
  return spec;
}

/** What `tumblerd otp-uri` prints: everything a client needs to compute the sequence. */
export function otpUri(host: string, door: string, spec: OtpSpec): string {
  const q = new URLSearchParams({
    secret: spec.secret,
    ports: `${spec.firstPort}-${spec.firstPort + spec.rangeSize - 1}`,
    length: String(spec.length),
    step: String(spec.stepMs / 1000),
    digits: String(codeDigits(spec)),
    algorithm: spec.algorithm.toUpperCase(),
  });
  const h = host.includes(':') ? `[${host}]` : host;
  return `tumbler-otp://${h}/${encodeURIComponent(door)}?${q}`;
}

/** The otpauth:// URI (Key Uri Format) a phone TOTP app enrols from, showing the code the sequence is cut from. */
export function otpauthUri(host: string, door: string, spec: OtpSpec): string {
  const label = encodeURIComponent(`tumbler:${door}@${host}`);
  const q = new URLSearchParams({
    secret: spec.secret,
    issuer: 'tumbler',
    algorithm: spec.algorithm.toUpperCase(),
    digits: String(codeDigits(spec)),
    period: String(spec.stepMs / 1000),
  });
  return `otpauth://totp/${label}?${q}`;
}

/** Reads a `tumbler-otp://` URI back; throws with a message for the user. */
export function parseOtpUri(text: string): { host: string; door: string; spec: OtpSpec } {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`"${text}" is not a URI like tumbler-otp://host/door?secret=...`);
  }
  if (url.protocol !== 'tumbler-otp:') throw new Error(`"${text}": the scheme must be tumbler-otp://`);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const door = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!host || !door) throw new Error(`"${text}" needs a host and a door: tumbler-otp://host/door?...`);
  const p = (k: string) => {
    const v = url.searchParams.get(k);
    if (v === null) throw new Error(`the URI has no ${k}=`);
    return v;
  };
  const algorithm = (url.searchParams.get('algorithm') ?? 'SHA1').toLowerCase();
  if (algorithm !== 'sha1' && algorithm !== 'sha256' && algorithm !== 'sha512') throw new Error(`algorithm=${algorithm}: not SHA1, SHA256 or SHA512`);
  const spec = makeOtpSpec(p('secret'), p('ports'), Number(p('length')), Number(p('step')) * 1000, algorithm);
  const digits = url.searchParams.get('digits');
  if (digits !== null && Number(digits) !== codeDigits(spec)) throw new Error(`digits=${digits} does not match ports and length (${codeDigits(spec)})`);
  return { host, door, spec };
}
