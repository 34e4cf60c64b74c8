/**
 * The classic-knock state machine: per source address and per door, how far along the door's
 * sequence the source is. Driven only by the events' own times, so replaying a log gives the
 * same answer as watching it live.
 *
 * Like knockd, a packet from the source with the door's flags that is not the next knock resets
 * the attempt; knockd only sees its sequences' ports, this sees every port the firewall logs, so
 * a port scan that passes the ports in order opens nothing. Unlike knockd, a repeat of a knock
 * already made in the attempt (within its timeout) does not reset. Repeats are what the kernel
 * retransmits for a slow client's earlier SYNs (after 1 s, 3 s, ...): they neither advance nor reset.
 *
 * The table is flat typed arrays (a slot per source, a column per door), an open-addressing
 * index for IPv4 sources kept as integers, and a least-recently-touched list threaded through
 * the slots: a flood of spoofed sources costs no object, string or map entry per source, and the
 * memory is the bound's, allocated as the table grows towards it.
 */
import { randomInt } from 'node:crypto';
import type { DoorConfig } from '../model/door';
import { Family, intToIPv4, ipv4ToInt } from '../model/address';
import { PacketEvent } from '../model/packet';
import type { FlagFilter, Knock } from '../model/door';

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

export interface TrackerStats {
  tracked: number;
  evicted: number;
  attemptsStarted: number;
  resets: number;
  completed: number;
}

/** Protocol numbers of the flat table: a knock is `port * 2 + proto`. */
export const PROTO_TCP = 0;
export const PROTO_UDP = 1;

const NO_COMPLETIONS: readonly Completion[] = Object.freeze([]);
const SWEEP_EVERY_MS = 1000;
const FIRST_CAPACITY = 1024;
const NONE = -1;

const knockCode = (k: Knock) => k.port * 2 + (k.proto === 'udp' ? PROTO_UDP : PROTO_TCP);

export class KnockTracker {
  private doors: KnockDoor[] = [];
  private seqs: Int32Array[] = [];
  private require: number[] = [];
  private forbid: number[] = [];
  private timeouts: number[] = [];
  private interfaces: (ReadonlySet<string> | null)[] = [];
  private width = 0;
  /** Knock codes that start some door: a packet from an untracked source on any other is skipped unread. */
  private starts = new Uint8Array(65536 * 2);
  private longestTimeout = 0;
  private lastSweep = 0;
  private readonly counters = { evicted: 0, attemptsStarted: 0, resets: 0, completed: 0 };

  /* slots */
  private capacity = 0;
  private used = 0;
  private size = 0;
  private freeHead = NONE;
  private last = new Float64Array(0);
  private prev = new Int32Array(0);
  private next = new Int32Array(0);
  private family = new Uint8Array(0);
  private v4 = new Int32Array(0);
  private v6: (string | undefined)[] = [];
  private live = new Uint16Array(0);
  /** Indexed `slot * width + door`: knocks made so far in the attempt (0: none), and when it began. */
  private step = new Uint16Array(0);
  private start = new Float64Array(0);
  /* least recently touched first: eviction and expiry both take from the head */
  private head = NONE;
  private tail = NONE;

  /* IPv4 index: open addressing, linear probing, slot + 1 (0 is empty). The multiplier is drawn at
   * random so that no one can choose sources that all land in one probe chain. */
  private index4 = new Int32Array(0);
  private indexBits = 0;
  private readonly hashMul = randomInt(1, 2 ** 31) * 2 + 1;
  private readonly index6 = new Map<string, number>();

  /**
   * `onProgress` hears of every knock that moved an attempt on (for debug logs), while
   * `wantProgress` says it is wanted: the source's text is made only then.
   */
  constructor(
    doors: KnockDoor[],
    private maxSources: number,
    private readonly onProgress?: (door: string, src: string, step: number, of: number) => void,
    private readonly wantProgress: () => boolean = () => true,
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
    const oldWidth = this.width;
    const oldStep = this.step;
    const oldStart = this.start;
    const width = doors.length;
    this.step = new Uint16Array(this.capacity * width);
    this.start = new Float64Array(this.capacity * width);
    this.width = width;
    for (let s = this.head; s !== NONE; ) {
      const after = this.next[s];
      let live = 0;
      for (let i = 0; i < width; i++) {
        const from = mapping[i];
        if (from === undefined || oldStep[s * oldWidth + from] === 0) continue;
        this.step[s * width + i] = oldStep[s * oldWidth + from];
        this.start[s * width + i] = oldStart[s * oldWidth + from];
        live++;
      }
      this.live[s] = live;
      if (live === 0) this.remove(s);
      s = after;
    }
    this.doors = doors;
    this.seqs = doors.map((d) => Int32Array.from(d.sequence, knockCode));
    this.require = doors.map((d) => d.flags.require);
    this.forbid = doors.map((d) => d.flags.forbid);
    this.timeouts = doors.map((d) => d.timeoutMs);
    this.interfaces = doors.map((d) => d.interfaces ?? null);
    this.starts = new Uint8Array(65536 * 2);
    for (const seq of this.seqs) this.starts[seq[0]] = 1;
    this.longestTimeout = Math.max(0, ...this.timeouts);
  }

  /** A lower bound takes effect as new sources arrive: each evicts the oldest until the table fits. */
  setMaxSources(max: number): void {
    if (!(max >= 1)) throw new Error('maxSources must be at least 1');
    this.maxSources = max;
  }

  /** Feeds one logged packet; returns the doors it completed for its source. */
  handle(e: PacketEvent): readonly Completion[] {
    const v4 = e.family === 4 ? ipv4ToInt(e.src) : 0;
    return this.knock(e.time, e.family, v4, e.family === 6 ? e.src : '', e.proto === 'udp' ? PROTO_UDP : PROTO_TCP, e.dport, e.flags, e.iface);
  }

  /**
   * Feeds one logged packet by its fields: an IPv4 source as an unsigned integer (`v6` unused),
   * an IPv6 one as canonical text. What the byte-level parser calls, with no event object.
   */
  knock(
    time: number,
    family: Family,
    v4: number,
    v6: string,
    proto: number,
    dport: number,
    flags: number,
    iface: string,
  ): readonly Completion[] {
    if (time - this.lastSweep >= SWEEP_EVERY_MS) this.sweep(time);
    const code = dport * 2 + proto;
    let s = family === 4 ? this.find4(v4 | 0) : (this.index6.get(v6) ?? NONE);
    /* an untracked source on a port that starts no door: nothing can change */
    if (s === NONE && this.starts[code] === 0) return NO_COMPLETIONS;
    let completions: Completion[] | null = null;
    const width = this.width;
    for (let i = 0; i < width; i++) {
      if (proto === PROTO_TCP && ((flags & this.require[i]) !== this.require[i] || (flags & this.forbid[i]) !== 0)) continue;
      const only = this.interfaces[i];
      if (only !== null && !only.has(iface)) continue;
      const seq = this.seqs[i];
      if (s !== NONE) {
        const a = s * width + i;
        let at = this.step[a];
        if (at > 0 && time - this.start[a] > this.timeouts[i]) {
          this.clear(s, a);
          at = 0;
        }
        if (at > 0) {
          if (seq[at] === code) {
            this.step[a] = ++at;
            if (this.onProgress && this.wantProgress()) this.onProgress(this.doors[i].name, this.sourceText(family, v4, v6), at, seq.length);
            if (at === seq.length) {
              (completions ??= []).push(this.complete(i, family, v4, v6, this.start[a], time));
              this.clear(s, a);
            }
            continue;
          }
          if (knockedBefore(seq, at, code)) continue;
          this.clear(s, a);
          this.counters.resets++;
        }
      }
      if (seq[0] !== code) continue;
      if (seq.length === 1) {
        (completions ??= []).push(this.complete(i, family, v4, v6, time, time));
        continue;
      }
      if (s === NONE) s = this.admit(family, v4 | 0, v6);
      const a = s * width + i;
      this.step[a] = 1;
      this.start[a] = time;
      this.live[s]++;
      if (this.onProgress && this.wantProgress()) this.onProgress(this.doors[i].name, this.sourceText(family, v4, v6), 1, seq.length);
      this.counters.attemptsStarted++;
    }
    if (s !== NONE) {
      if (this.live[s] === 0) {
        this.remove(s);
      } else {
        this.last[s] = time;
        this.unlink(s);
        this.append(s);
      }
    }
    return completions ?? NO_COMPLETIONS;
  }

  /**
   * Can a packet at `time` to `dport` (TCP or UDP) from the IPv4 source `v4`, or from an IPv6
   * source, change nothing but the table's clock? True for an untracked source on a port that
   * starts no door (an IPv6 one unread: true while no IPv6 source is tracked): knock() would only
   * sweep, which this does as it would.
   */
  passOver(time: number, family: Family, v4: number, dport: number): boolean {
    if (this.starts[dport * 2] !== 0 || this.starts[dport * 2 + 1] !== 0) return false;
    if (time - this.lastSweep >= SWEEP_EVERY_MS) this.sweep(time);
    return family === 4 ? this.find4(v4 | 0) === NONE : this.index6.size === 0;
  }

  /** Drops sources whose every attempt has timed out by `now`. */
  sweep(now: number): void {
    this.lastSweep = now;
    while (this.head !== NONE && this.last[this.head] + this.longestTimeout < now) this.remove(this.head);
  }

  /** The longest sequence timeout: a packet logged longer ago than this can no longer complete a knock. */
  get horizonMs(): number {
    return this.longestTimeout;
  }

  stats(): TrackerStats {
    return { tracked: this.size, ...this.counters };
  }

  private sourceText(family: Family, v4: number, v6: string): string {
    return family === 4 ? intToIPv4(v4 >>> 0) : v6;
  }

  private complete(door: number, family: Family, v4: number, v6: string, startedAt: number, time: number): Completion {
    this.counters.completed++;
    return { door: this.doors[door].name, src: this.sourceText(family, v4, v6), family, startedAt, time };
  }

  private clear(s: number, a: number): void {
    this.step[a] = 0;
    this.live[s]--;
  }

  private home(key: number): number {
    return Math.imul(key, this.hashMul) >>> (32 - this.indexBits);
  }

  private find4(key: number): number {
    const mask = this.index4.length - 1;
    if (mask < 0) return NONE;
    for (let j = this.home(key); ; j = (j + 1) & mask) {
      const e = this.index4[j];
      if (e === 0) return NONE;
      if (this.v4[e - 1] === key && this.family[e - 1] === 4) return e - 1;
    }
  }

  private insert4(s: number): void {
    const mask = this.index4.length - 1;
    let j = this.home(this.v4[s]);
    while (this.index4[j] !== 0) j = (j + 1) & mask;
    this.index4[j] = s + 1;
  }

  /** Deletes a slot from the IPv4 index, moving later entries of its probe chain back (no tombstones). */
  private delete4(s: number): void {
    const mask = this.index4.length - 1;
    let i = this.home(this.v4[s]);
    while (this.index4[i] !== s + 1) i = (i + 1) & mask;
    for (let j = (i + 1) & mask; this.index4[j] !== 0; j = (j + 1) & mask) {
      const k = this.home(this.v4[this.index4[j] - 1]);
      /* the entry at j may move to i unless its home lies cyclically in (i, j] */
      const stays = i <= j ? i < k && k <= j : i < k || k <= j;
      if (stays) continue;
      this.index4[i] = this.index4[j];
      i = j;
    }
    this.index4[i] = 0;
  }

  private admit(family: Family, v4: number, v6: string): number {
    while (this.size >= this.maxSources) {
      this.remove(this.head);
      this.counters.evicted++;
    }
    let s = this.freeHead;
    if (s !== NONE) {
      this.freeHead = this.next[s];
    } else {
      if (this.used === this.capacity) this.grow();
      s = this.used++;
    }
    this.family[s] = family;
    this.live[s] = 0;
    if (family === 4) {
      this.v4[s] = v4;
      this.insert4(s);
    } else {
      this.v6[s] = v6;
      this.index6.set(v6, s);
    }
    this.append(s);
    this.size++;
    return s;
  }

  private remove(s: number): void {
    this.unlink(s);
    if (this.family[s] === 4) {
      this.delete4(s);
    } else {
      this.index6.delete(this.v6[s]!);
      this.v6[s] = undefined;
    }
    this.step.fill(0, s * this.width, (s + 1) * this.width);
    this.family[s] = 0;
    this.next[s] = this.freeHead;
    this.freeHead = s;
    this.size--;
  }

  private append(s: number): void {
    this.prev[s] = this.tail;
    this.next[s] = NONE;
    if (this.tail !== NONE) this.next[this.tail] = s;
    else this.head = s;
    this.tail = s;
  }

  private unlink(s: number): void {
    const p = this.prev[s];
    const n = this.next[s];
    if (p !== NONE) this.next[p] = n;
    else this.head = n;
    if (n !== NONE) this.prev[n] = p;
    else this.tail = p;
  }

  /** Doubles the slots (up to the bound, which may have been raised since) and rebuilds the index. */
  private grow(): void {
    const cap = Math.max(this.capacity + 1, Math.min(Math.max(FIRST_CAPACITY, this.capacity * 2), this.maxSources));
    const widen = <T extends Float64Array | Int32Array | Uint8Array | Uint16Array>(old: T, make: (n: number) => T, n: number): T => {
      const a = make(n);
      a.set(old);
      return a;
    };
    this.last = widen(this.last, (n) => new Float64Array(n), cap);
    this.prev = widen(this.prev, (n) => new Int32Array(n), cap);
    this.next = widen(this.next, (n) => new Int32Array(n), cap);
    this.family = widen(this.family, (n) => new Uint8Array(n), cap);
    this.v4 = widen(this.v4, (n) => new Int32Array(n), cap);
    this.live = widen(this.live, (n) => new Uint16Array(n), cap);
    this.step = widen(this.step, (n) => new Uint16Array(n), cap * this.width);
    this.start = widen(this.start, (n) => new Float64Array(n), cap * this.width);
    this.capacity = cap;
    /* at most half full, so probe chains stay short */
    this.indexBits = Math.max(4, Math.ceil(Math.log2(cap * 2)));
    this.index4 = new Int32Array(1 << this.indexBits);
    for (let s = this.head; s !== NONE; s = this.next[s]) if (this.family[s] === 4) this.insert4(s);
  }
}

/** Is `code` one of the first `made` knocks of the sequence (a retransmit, not a new packet)? */
function knockedBefore(seq: Int32Array, made: number, code: number): boolean {
  for (let k = 0; k < made; k++) if (seq[k] === code) return true;
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
