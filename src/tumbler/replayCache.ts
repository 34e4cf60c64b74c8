/**
 * Tumbler digests already accepted, each kept until it can no longer verify (the end of its
 * year, see protocol.replayHorizon). Only knocks that matched a secret get in, so the table
 * grows only as fast as real users knock; it is bounded all the same and, when full, refuses
 * new knocks rather than forgetting old ones (forgetting would reopen them to replay).
 */
export const MAX_REPLAY_ENTRIES = 1_000_000;

export class ReplayCache {
  private readonly seen = new Map<string, number>();

  constructor(private readonly max = MAX_REPLAY_ENTRIES) {}

  /** Records `key` as used until `until`; false if it already was (a replay) or the cache is full. */
  claim(key: string, until: number, now: number): 'fresh' | 'replay' | 'full' {
    const known = this.seen.get(key);
    if (known !== undefined && known > now) return 'replay';
    if (this.seen.size >= this.max) {
      this.prune(now);
      if (this.seen.size >= this.max) return 'full';
    }
    this.seen.set(key, until);
    return 'fresh';
  }

  prune(now: number): void {
    for (const [k, until] of this.seen) if (until <= now) this.seen.delete(k);
  }

  get size(): number {
    return this.seen.size;
  }

  toJSON(): Record<string, number> {
    return Object.fromEntries(this.seen);
  }

  /** Restores saved entries, skipping any that are malformed or expired. */
  load(entries: unknown, now: number): void {
    if (typeof entries !== 'object' || entries === null) return;
    for (const [k, v] of Object.entries(entries)) {
      if (/^[0-9a-f]{64}$/.test(k) && typeof v === 'number' && v > now && this.seen.size < this.max) this.seen.set(k, v);
    }
  }
}
