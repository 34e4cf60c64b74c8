/**
 * The in-memory replay store: knock ids already accepted, each kept until it can no longer
 * verify. Only knocks that authenticated get in, so the table grows only as fast as real users
 * knock; it is bounded all the same and, when full, refuses new knocks rather than forgetting
 * old ones (forgetting would reopen them to replay).
 */
import { ClaimResult, ReplayStore } from './replayStore';

export const MAX_REPLAY_ENTRIES = 1_000_000;

export class ReplayCache implements ReplayStore {
  private readonly seen = new Map<string, number>();

  constructor(
    private readonly max = MAX_REPLAY_ENTRIES,
    /** Called with each fresh claim before it is reported fresh: a throw refuses the claim. */
    private readonly record: (key: string, untilMs: number) => void = () => {},
  ) {}

  async claim(key: string, untilMs: number, now: number): Promise<ClaimResult> {
    const known = this.seen.get(key);
    if (known !== undefined && known > now) return 'replay';
    if (this.seen.size >= this.max) {
      this.prune(now);
      if (this.seen.size >= this.max) return 'full';
    }
    this.seen.set(key, untilMs);
    try {
      this.record(key, untilMs);
    } catch (err) {
      this.seen.delete(key);
      throw err;
    }
    return 'fresh';
  }

  prune(now: number): void {
    for (const [k, until] of this.seen) if (until <= now) this.seen.delete(k);
  }

  /** Takes back a claim that could not be made durable: the knock was refused, so it may come again. */
  release(key: string): void {
    this.seen.delete(key);
  }

  /** Each entry and its expiry, for a store that persists them; safe while claims go on. */
  entries(): IterableIterator<[string, number]> {
    return this.seen.entries();
  }

  /** Restores one entry, as load() does for many; false if it is expired or there is no room. */
  restore(key: string, untilMs: number, now: number): boolean {
    if (!(untilMs > now) || this.seen.size >= this.max) return false;
    const known = this.seen.get(key);
    if (known === undefined || known < untilMs) this.seen.set(key, untilMs);
    return true;
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
