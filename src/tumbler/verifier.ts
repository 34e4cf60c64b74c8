/**
 * The protocol seam: a Tumbler protocol version is a pure verifier (datagram, source, time →
 * a grant, a diagnosed refusal, or junk), and the UDP listener only does sockets, the replay
 * claim and the hand-over to the door dispatcher. A new protocol version is one more verifier.
 */
import type { Family } from '../model/address';
import type { Grant } from '../model/grant';

export interface DatagramSource {
  /** Canonical address the datagram came from. */
  address: string;
  family: Family;
  port: number;
}

/** What must be claimed in the replay store, durably, before the grant may open anything. */
export interface ReplayClaim {
  key: string;
  /** Until when the knock could still verify: the claim must outlive it. */
  untilMs: number;
}

export type Verdict =
  /** Authentic and allowed: opens once the replay claim is fresh. */
  | { kind: 'grant'; grant: Grant; replay: ReplayClaim }
  /** Authentic (made with a key or secret we know) but refused: logged with the reason, never answered. */
  | { kind: 'refused'; reason: string; detail?: Record<string, unknown> }
  /** Not a knock this verifier can authenticate: dropped silently and counted. */
  | { kind: 'junk' };

export interface KnockVerifier {
  /** `tumbler1`, `tumbler2`: for logs and metrics. */
  readonly protocol: string;
  /** The cheapest check there is (length, magic): may this datagram be of this protocol at all? */
  recognises(msg: Buffer): boolean;
  verify(msg: Buffer, from: DatagramSource, now: number): Verdict;
  /**
   * For a datagram `verify` called junk: the likeliest reason it matched nothing, in words for
   * the log (wrong secret, clock, address), or null if it is not even well formed. Slow (it
   * tries the usual mistakes); the listener calls it only for knocks it is going to log.
   */
  diagnose?(msg: Buffer, from: DatagramSource, now: number): string | null;
}
