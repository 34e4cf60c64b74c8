/**
 * Tumbler protocol v1 behind the verifier seam: a datagram verifies if its digest was made for
 * the address it came from, for a minute within the skew, with a door's secret. Pure: the
 * listener brings the datagram, the source and the time.
 */
import { KnockVerifier, DatagramSource, Verdict } from './verifier';
import { Candidate, MAGIC, SecretDoor, expectedDigests, findMatch, parseDatagram, replayHorizon } from './protocol';
import { describeCause, diagnoseV1 } from './diagnosis';

/** A datagram worth parsing: magic, 64 hex digits, at most CR LF. */
const MIN_DATAGRAM = MAGIC.length + 64;
const MAX_DATAGRAM = MIN_DATAGRAM + 2;
const MAGIC_BYTES = Buffer.from(MAGIC, 'latin1');
/**
 * Sources whose expected digests are kept for the current minute. Junk from a few sources then
 * costs comparisons instead of (2 × skew + 1) × doors hashes a datagram; junk from ever new
 * sources costs the hashes (such a source is cached only from its second datagram in a minute),
 * and the table stays this size: 4096 × 48 digests is about 8 MB.
 */
const DIGEST_CACHE_SOURCES = 4096;
const MINUTE_MS = 60_000;

export class TumblerV1Verifier implements KnockVerifier {
  readonly protocol = 'tumbler1';
  private readonly expected = new Map<string, { minute: number; candidates: Candidate[] | null }>();

  constructor(
    private readonly doors: readonly SecretDoor[],
    private readonly skewMinutes: number,
  ) {}

  recognises(msg: Buffer): boolean {
    return msg.length >= MIN_DATAGRAM && msg.length <= MAX_DATAGRAM && MAGIC_BYTES.equals(msg.subarray(0, MAGIC_BYTES.length));
  }

  verify(msg: Buffer, from: DatagramSource, now: number): Verdict {
    const digest = parseDatagram(msg);
    if (!digest) return { kind: 'junk' };
    const match = findMatch(digest, this.candidatesFor(from.address, now));
    if (!match) return { kind: 'junk' };
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

  /**
   * The digests a knock from `ip` may carry now. Kept for the minute once a source sends a
   * second datagram in it: a flood from ever new sources would only churn the table.
   */
  private candidatesFor(ip: string, now: number): Candidate[] {
    const minute = Math.floor(now / MINUTE_MS);
    const hit = this.expected.get(ip);
    if (hit && hit.minute === minute && hit.candidates) return hit.candidates;
    const candidates = expectedDigests(ip, this.doors, now, this.skewMinutes);
    this.expected.delete(ip);
    if (this.expected.size >= DIGEST_CACHE_SOURCES) this.expected.delete(this.expected.keys().next().value as string);
    this.expected.set(ip, { minute, candidates: hit && hit.minute === minute ? candidates : null });
    return candidates;
  }
}
