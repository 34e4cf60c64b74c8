/**
 * Reads the group's grant stream through this gateway's own consumer group and applies what it
 * may: authentic (fleet key), of this group, from another gateway, not yet expired, not seen
 * before, for a door that is `fleet: true` here. Everything read is acknowledged once handled,
 * applied or dropped, so that a restart resumes where it stopped; at start it first re-reads what
 * it had been given but not acknowledged (a crash between the two).
 */
import type Redis from 'ioredis';
import { ReplayCache } from '../tumbler/replayCache';
import { BLOCK_MS, FleetLog, RedisLink } from './link';
import { FleetGrant, openGrant } from './message';
import { FleetKeys } from './names';

/** Entries read at once. */
const BATCH = 100;
/** Grant ids remembered (until each grant expires) to apply each once. */
const MAX_IDS = 100_000;
/** Drops an attacker can cause at will are logged at most this often. */
const WARN_EVERY_MS = 1000;

export type Drop = 'malformed' | 'bad signature' | 'other group' | 'made in the future' | 'expired' | 'own' | 'duplicate' | 'not a fleet door';

export interface ReceiverCounts {
  received: number;
  applied: number;
  dropped: Partial<Record<Drop, number>>;
}

export interface Applied {
  grant: FleetGrant;
  /** From the sender's acceptance of the knock to this gateway's reading it (ms, by the two clocks). */
  receivedMs: number;
  /** ... to the door being open here (firewall entries and open commands done). */
  openedMs: number;
}

type StreamReply = [string, [string, string[] | null][]][] | null;

export class FleetReceiver {
  readonly counts: ReceiverCounts = { received: 0, applied: 0, dropped: {} };
  last: Applied | null = null;
  private readonly seen = new ReplayCache(MAX_IDS);
  private stopped = false;
  private running: Promise<void> | null = null;
  private lastWarning = 0;

  constructor(
    private readonly link: RedisLink,
    private readonly keys: FleetKeys,
    private readonly gateway: string,
    private readonly group: string,
    private readonly key: Buffer,
    /** Opens the door if it is a fleet door here; false if it is not. */
    private readonly apply: (g: FleetGrant) => Promise<boolean>,
    private readonly log: FleetLog,
    private readonly now: () => number = Date.now,
  ) {}

  start(): void {
    this.running ??= this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
  }

  private async loop(): Promise<void> {
    const r = this.link.blocking;
    const cg = this.keys.consumerGroup(this.gateway);
    let ready = false;
    let backlog = true;
    while (!this.stopped) {
      try {
        if (!ready) {
          /* from the stream's start: what is there is trimmed already, and only grants still valid are applied */
          await r.xgroup('CREATE', this.keys.stream, cg, '0', 'MKSTREAM').catch((err: Error) => {
            if (!/BUSYGROUP/.test(err.message)) throw err;
          });
          ready = true;
          backlog = true;
        }
        const reply = (await (backlog
          ? r.xreadgroup('GROUP', cg, this.gateway, 'COUNT', BATCH, 'STREAMS', this.keys.stream, '0')
          : r.xreadgroup('GROUP', cg, this.gateway, 'COUNT', BATCH, 'BLOCK', BLOCK_MS, 'STREAMS', this.keys.stream, '>'))) as StreamReply;
        const entries = reply?.[0]?.[1] ?? [];
        if (backlog && entries.length === 0) backlog = false;
        if (entries.length > 0) await this.handle(r, cg, entries);
      } catch (err) {
        if (this.stopped) break;
        /*
         * Not a verdict on Redis (the other connection decides that: this one may come back later).
         * What was read but not acknowledged before the failure is read again; ids applied are skipped.
         */
        backlog = true;
        /* the group or the stream may have been deleted: make them again */
        if (/NOGROUP/.test((err as Error).message)) ready = false;
        await new Promise((res) => setTimeout(res, 200));
      }
    }
  }

  private async handle(r: Redis, cg: string, entries: [string, string[] | null][]): Promise<void> {
    const expiredBefore = this.counts.dropped.expired ?? 0;
    this.counts.received += entries.length;
    /* side by side, as the listener hands over its grants: one door's firewall commands do not hold up the next */
    await Promise.all(entries.map(([, flat]) => (flat ? this.one(fieldsOf(flat)) : undefined)));
    /* a pending entry trimmed from the stream comes back without fields: acknowledged all the same */
    await r.xack(this.keys.stream, cg, ...entries.map(([id]) => id));
    const expired = (this.counts.dropped.expired ?? 0) - expiredBefore;
    if (expired > 0) this.log.info('fleet: grants that expired before they could be applied were skipped', { grants: expired });
  }

  private async one(fields: { grant?: string; mac?: string }): Promise<void> {
    const now = this.now();
    const opened = openGrant(this.key, fields, this.group, now);
    if (!opened.ok) return this.drop(opened.reason as Drop, now);
    const g = opened.grant;
    /* what this gateway published comes back to it: it opened it already */
    if (g.sender === this.gateway) return this.drop('own', now, false);
    if ((await this.seen.claim(g.id, g.until, now)) !== 'fresh') return this.drop('duplicate', now);
    if (!(await this.apply(g))) return this.drop('not a fleet door', now);
    this.counts.applied++;
    this.last = { grant: g, receivedMs: now - g.at, openedMs: this.now() - g.at };
  }

  private drop(why: Drop, now: number, warn = true): void {
    this.counts.dropped[why] = (this.counts.dropped[why] ?? 0) + 1;
    if (!warn || why === 'expired' || now - this.lastWarning < WARN_EVERY_MS) return;
    this.lastWarning = now;
    this.log.warn(`fleet: grant dropped: ${why}`, { dropped: this.counts.dropped[why] });
  }
}

/** The first `grant` and `mac` fields of an entry; anything else written there is ignored. */
function fieldsOf(flat: string[]): { grant?: string; mac?: string } {
  const o: { grant?: string; mac?: string } = {};
  for (let i = 0; i + 1 < flat.length; i += 2) {
    if (flat[i] === 'grant') o.grant ??= flat[i + 1];
    else if (flat[i] === 'mac') o.mac ??= flat[i + 1];
  }
  return o;
}
