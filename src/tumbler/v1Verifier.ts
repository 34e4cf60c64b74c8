/**
 * Tumbler protocol v1 behind the verifier seam: a datagram verifies if its digest was made for
 * the address it came from, for a minute within the skew, with a door's secret. Pure: the
 * listener brings the datagram, the source and the time.
 */
import { KnockVerifier, DatagramSource, Verdict } from './verifier';
import { DigestIndex, DigestWindow, MAGIC, SecretDoor, parseDatagram, readDigest, replayHorizon } from './protocol';
import { describeCause, diagnoseV1 } from './diagnosis';

/** A datagram worth parsing: magic, 64 hex digits, at most CR LF. */
const MIN_DATAGRAM = MAGIC.length + 64;
const MAX_DATAGRAM = MIN_DATAGRAM + 2;
const MAGIC_CODES = Array.from(MAGIC, (c) => c.charCodeAt(0));
/**
 * Sources whose digests are indexed for the current minute, so that junk from a few sources
 * costs one lookup a datagram. Bounded in digests, not sources: at the largest skew a source has
 * 21 minutes × doors of them, and a flood from many sources must not pin hundreds of megabytes.
 * 2^18 digests of 32 bytes with their map entries are about 25 MB.
 */
const DIGEST_BUDGET = 1 << 18;
const MAX_SOURCES = 4096;
const MINUTE_MS = 60_000;
const JUNK: Verdict = { kind: 'junk' };

interface Seen {
  minute: number;
  /** Built from a source's second datagram in the minute: ever-new sources would only churn it. */
  index: DigestIndex | null;
}

export class TumblerV1Verifier implements KnockVerifier {
  readonly protocol = 'tumbler1';
  private readonly seen = new Map<string, Seen>();
  private readonly maxSources: number;
  /** The datagram's digest, decoded here each time: junk allocates nothing. */
  private readonly digest = Buffer.alloc(32);

  constructor(
    private readonly doors: readonly SecretDoor[],
    private readonly skewMinutes: number,
  ) {
    const perSource = (2 * skewMinutes + 1) * Math.max(1, doors.length);
    this.maxSources = Math.max(1, Math.min(MAX_SOURCES, Math.floor(DIGEST_BUDGET / perSource)));
  }

  recognises(msg: Buffer): boolean {
    if (msg.length < MIN_DATAGRAM || msg.length > MAX_DATAGRAM) return false;
    for (let i = 0; i < MAGIC_CODES.length; i++) if (msg[i] !== MAGIC_CODES[i]) return false;
    return true;
  }

  verify(msg: Buffer, from: DatagramSource, now: number): Verdict {
    const digest = this.digest;
    if (!readDigest(msg, digest) || this.doors.length === 0) return JUNK;
    const minute = Math.floor(now / MINUTE_MS);
    const hit = this.seen.get(from.address);
    let window: DigestWindow | null = null;
    let n: number;
    if (hit && hit.minute === minute) {
      hit.index ??= (window = this.window(from.address, now)).index();
      n = hit.index.find(digest);
    } else {
      if (hit) this.seen.delete(from.address);
      if (this.seen.size >= this.maxSources) this.seen.delete(this.seen.keys().next().value as string);
      this.seen.set(from.address, { minute, index: null });
      n = (window = this.window(from.address, now)).scan(digest);
    }
    if (n < 0) return JUNK;
    const match = (window ?? this.window(from.address, now)).match(n);
    return {
      kind: 'grant',
      grant: { door: match.door, src: from.address, family: from.family, via: 'tumbler', user: null, at: now },
      /* the digest itself: a replay in another spelling (upper-case hex, a newline) is the same knock */
      replay: { key: digest.toString('hex'), untilMs: replayHorizon(match.minute, this.skewMinutes) },
    };
  }

  diagnose(msg: Buffer, from: DatagramSource, now: number): string | null {
    const digest = parseDatagram(msg);
    return digest && describeCause(diagnoseV1(digest, from.address, this.doors, now, this.skewMinutes), this.skewMinutes);
  }

  private window(ip: string, now: number): DigestWindow {
    return new DigestWindow(ip, this.doors, now, this.skewMinutes);
  }
}
