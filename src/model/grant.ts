/**
 * The outcome of a knock, whatever protocol made it: the one thing knock protocols produce and
 * the door dispatcher consumes. Protocols do not know doors' commands; doors do not know
 * protocols.
 */
import type { Family } from './address';

/** How the knock was made: a classic sequence from the firewall log, or a Tumbler datagram. */
export type KnockVia = 'sequence' | 'tumbler';

/**
 * Where a knock's one use must be recorded before it opens anything. 'fleet' (the default): in
 * the store every gateway of a fleet shares, because the same knock would verify at every one of
 * them (a shared v1 secret, a classic sequence). 'local': only here, because the knock verifies
 * at this gateway alone (a v2 knock bound to one gateway); such a knock may open locally while
 * the fleet's store is unreachable.
 */
export type ReplayScope = 'local' | 'fleet';

export interface Grant {
  door: string;
  /** Canonical address the door opens for. */
  src: string;
  family: Family;
  via: KnockVia;
  /** Who knocked, where the protocol knows it (null for shared-secret and classic knocks). */
  user: string | null;
  /** When the knock was made (ms since the epoch): the last packet of a sequence, a datagram's arrival. */
  at: number;
  /** Set by the verifier; absent means 'fleet'. */
  replayScope?: ReplayScope;
  /** The door closes by then at the latest (a grant received from the fleet ends when the sender's does). */
  untilMs?: number;
}
