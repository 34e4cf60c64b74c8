/**
 * The outcome of a knock, whatever protocol made it: the one thing knock protocols produce and
 * the door dispatcher consumes. Protocols do not know doors' commands; doors do not know
 * protocols.
 */
import type { Family } from './address';

/** How the knock was made: a classic sequence from the firewall log, a Tumbler v1 or a v2 datagram. */
export type KnockVia = 'sequence' | 'tumbler' | 'tumbler2';

export interface Grant {
  door: string;
  /** Canonical address the door opens for. */
  src: string;
  family: Family;
  via: KnockVia;
  /** Who knocked, where the protocol knows it (null for shared-secret and classic knocks). */
  user: string | null;
  /** Set when the door opens for the network `src`/`prefix` rather than the address `src` alone. */
  prefix?: number;
  /** When the knock was made (ms since the epoch): the last packet of a sequence, a datagram's arrival. */
  at: number;
}
