/**
 * The classic-knock state machine: per source address and per door, how far along the door's
 * sequence the source is. Driven only by the events' own times, so replaying a log gives the
 * same answer as watching it live.
 *
 * Like knockd, a packet from the source with the door's flags that is not the next knock resets
 * the attempt; knockd only sees its sequences' ports, this sees every port the firewall logs, so
 * a port scan that passes the ports in order opens nothing. Unlike knockd, a repeat of a knock
 * already made does not reset. Repeats are what the kernel retransmits for a slow client's earlier SYNs (after 1 s,
 * 3 s, ...): they neither advance nor reset.
 */
import type { DoorConfig } from '../model/door';
import { Family } from '../model/address';
import { PacketEvent } from '../model/packet';
import type { FlagFilter, Knock } from '../model/door';
import { flagsPass, knockMatches } from './sequence';

export interface KnockDoor {
  name: string;
  sequence: Knock[];
  timeoutMs: number;
  flags: FlagFilter;
  /** Only packets that came in on these interfaces knock on this door; null: any. */
  interfaces?: ReadonlySet<string> | null;
}

export interface Completion {
  door: string;
  src: string;
  family: Family;
  /** Time of the first and of the last knock of the sequence. */
  startedAt: number;
  time: number;
}

interface Attempt {
  step: number;
  start: number;
}

interface SourceState {
  family: Family;
  last: number;
  /** Indexed like the tracker's doors. */
  attempts: (Attempt | undefined)[];
  live: number;
}

export interface TrackerStats {
  tracked: number;
  evicted: number;
  attemptsStarted: number;
  resets: number;
  completed: number;
}

const NO_COMPLETIONS: readonly Completion[] = Object.freeze([]);
const SWEEP_EVERY_MS = 1000;

export class KnockTracker {
  private doors: KnockDoor[] = [];
  private longestTimeout = 0;
  /* Map order is least recently touched first: eviction and expiry both walk from the front. */
  private readonly sources = new Map<string, SourceState>();
  private lastSweep = 0;
  /* A live iterator: a fresh keys() per eviction would walk past every deleted slot each time. */
  private evictCursor: Iterator<string> | null = null;
  private readonly counters = { evicted: 0, attemptsStarted: 0, resets: 0, completed: 0 };

  /** `onProgress` hears of every knock that moved an attempt on (for debug logs). */
  constructor(
    doors: KnockDoor[],
    private maxSources: number,
    private readonly onProgress?: (door: string, src: string, step: number, of: number) => void,
  ) {
    if (!(maxSources >= 1)) throw new Error('maxSources must be at least 1');
    this.reconfigure(doors);
  }

  /**
   * Swaps in a new set of doors. Attempts in progress survive for every door that still
   * exists with the same sequence and timeout.
   */
  reconfigure(doors: KnockDoor[]): void {
    const keyOf = (d: KnockDoor) => `${d.name}\0${JSON.stringify(d.sequence)}\0${d.timeoutMs}`;
    const oldIndex = new Map(this.doors.map((d, i) => [keyOf(d), i]));
    const mapping = doors.map((d) => oldIndex.get(keyOf(d)));
    for (const [src, st] of this.sources) {
      st.attempts = mapping.map((i) => (i === undefined ? undefined : st.attempts[i]));
      st.live = st.attempts.filter(Boolean).length;
      if (st.live === 0) this.sources.delete(src);
    }
    this.doors = doors;
    this.longestTimeout = Math.max(0, ...doors.map((d) => d.timeoutMs));
  }

  /** A lower bound takes effect as new sources arrive: each evicts the oldest until the table fits. */
  setMaxSources(max: number): void {
    if (!(max >= 1)) throw new Error('maxSources must be at least 1');
    this.maxSources = max;
  }

  /** Feeds one logged packet; returns the doors it completed for its source. */
  handle(e: PacketEvent): readonly Completion[] {
    if (e.time - this.lastSweep >= SWEEP_EVERY_MS) this.sweep(e.time);
    let st = this.sources.get(e.src);
    let completions: Completion[] | null = null;
    for (let i = 0; i < this.doors.length; i++) {
      const door = this.doors[i];
      if (!flagsPass(door.flags, e)) continue;
      if (door.interfaces && !door.interfaces.has(e.iface)) continue;
      const seq = door.sequence;
      let attempt = st?.attempts[i];
      if (attempt && e.time - attempt.start > door.timeoutMs) {
        this.clear(st!, i);
        attempt = undefined;
      }
      if (attempt) {
        if (knockMatches(seq[attempt.step], e)) {
          attempt.step++;
          this.onProgress?.(door.name, e.src, attempt.step, seq.length);
          if (attempt.step === seq.length) {
            (completions ??= []).push(this.complete(door, e, attempt.start));
            this.clear(st!, i);
          }
          continue;
        }
        if (knockedAlready(seq, attempt.step, e)) continue;
        this.clear(st!, i);
        this.counters.resets++;
      }
      if (!knockMatches(seq[0], e)) continue;
      if (seq.length === 1) {
        (completions ??= []).push(this.complete(door, e, e.time));
        continue;
      }
      st ??= this.admit(e.src, e.family);
      st.attempts[i] = { step: 1, start: e.time };
      st.live++;
      this.onProgress?.(door.name, e.src, 1, seq.length);
      this.counters.attemptsStarted++;
    }
    if (st) {
      if (st.live === 0) {
        this.sources.delete(e.src);
      } else {
        st.last = e.time;
        this.sources.delete(e.src);
        this.sources.set(e.src, st);
      }
    }
    return completions ?? NO_COMPLETIONS;
  }

  /** Drops sources whose every attempt has timed out by `now`. */
  sweep(now: number): void {
    this.lastSweep = now;
    for (const [src, st] of this.sources) {
      if (st.last + this.longestTimeout >= now) break;
      this.sources.delete(src);
    }
  }

  /** The longest sequence timeout: a packet logged longer ago than this can no longer complete a knock. */
  get horizonMs(): number {
    return this.longestTimeout;
  }

  stats(): TrackerStats {
    return { tracked: this.sources.size, ...this.counters };
  }

  private admit(src: string, family: Family): SourceState {
    while (this.sources.size >= this.maxSources) {
      let next = this.evictCursor?.next();
      if (!next || next.done) {
        this.evictCursor = this.sources.keys();
        next = this.evictCursor.next();
      }
      this.sources.delete(next.value as string);
      this.counters.evicted++;
    }
    const st: SourceState = { family, last: 0, attempts: new Array(this.doors.length), live: 0 };
    this.sources.set(src, st);
    return st;
  }

  private clear(st: SourceState, i: number): void {
    st.attempts[i] = undefined;
    st.live--;
  }

  private complete(door: KnockDoor, e: PacketEvent, startedAt: number): Completion {
    this.counters.completed++;
    return { door: door.name, src: e.src, family: e.family, startedAt, time: e.time };
  }
}

/** Does `e` repeat one of the first `step` knocks of `seq`? */
function knockedAlready(seq: Knock[], step: number, e: PacketEvent): boolean {
  for (let k = 0; k < step; k++) if (knockMatches(seq[k], e)) return true;
  return false;
}

/** The doors of a config that have a classic sequence, as the tracker wants them. */
export function knockDoorsOf(doors: readonly DoorConfig[]): KnockDoor[] {
  return doors.flatMap((d) =>
    d.sequence
      ? [{
          name: d.name,
          sequence: d.sequence,
          timeoutMs: d.sequenceTimeoutMs,
          flags: d.flags,
          interfaces: d.interfaces && d.interfaces.length > 0 ? new Set(d.interfaces) : null,
        }]
      : [],
  );
}
