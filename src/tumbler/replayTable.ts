/**
 * The replay table of the durable store: up to a million claimed knock ids, each kept as a
 * 16-byte fingerprint and an expiry in flat typed arrays (open addressing, linear probing).
 * A Map of a million strings is a million heap objects that every full garbage collection
 * walks and moves (pauses of tens of milliseconds, ~150 MB); these arrays live outside the heap
 * in two buffers, ~48 MB at the cap, and the collector never looks inside.
 *
 * A fingerprint is the 32 bytes an id of 64 lower-case hex digits spells (a v1 digest, a v2
 * ephemeral key) folded to 16 by XOR, else the first 16 bytes of the SHA-256 of the id. For a
 * v1 digest (a SHA-256 output) two share one only by a 128-bit collision (2^64 hashes to search);
 * a v2 sender who chooses its own ephemeral key could collide only with an id it already knows.
 * Either way a collision makes the second knock count as a replay: refused, never let in twice. The table cannot give ids back:
 * the log keeps them, and compaction asks the table which of its lines are still live.
 */
import crypto from 'node:crypto';
import { MAX_REPLAY_ENTRIES } from './replayCache';
import type { ClaimResult } from './replayStore';

/** A fingerprint: four 32-bit words. */
export type Fingerprint = Int32Array;

const HEX_KEY = /^[0-9a-f]{64}$/;

function hexNibble(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

/**
 * The fingerprint of the id spelt by bytes [start, start + 64) of `buf` (latin1, as the log
 * holds it) into `out`, the 32 bytes they spell folded to 16 (each word XOR the word 16 bytes
 * on); false if they are not lower-case hex (the caller then decodes the id and uses fingerprintOf).
 */
export function fingerprintHexBytes(buf: Uint8Array, start: number, out: Fingerprint): boolean {
  for (let w = 0; w < 4; w++) {
    let word = 0;
    for (let b = 0; b < 8; b++) {
      const hi = hexNibble(buf[start + 8 * w + 2 * (b & 3) + 32 * (b >> 2)]);
      const lo = hexNibble(buf[start + 8 * w + 2 * (b & 3) + 32 * (b >> 2) + 1]);
      if (hi < 0 || lo < 0) return false;
      word ^= ((hi << 4) | lo) << (8 * (b & 3));
    }
    out[w] = word;
  }
  return true;
}

/** The fingerprint of an id, into `out` (a new one if none is given). */
export function fingerprintOf(key: string, out: Fingerprint = new Int32Array(4)): Fingerprint {
  if (key.length === 64 && HEX_KEY.test(key) && fingerprintHexBytes(Buffer.from(key, 'latin1'), 0, out)) return out;
  /* 'binary' is latin1: a string is about five times cheaper to make here than a Buffer */
  const d = crypto.hash('sha256', key, 'binary');
  for (let w = 0; w < 4; w++) {
    out[w] = d.charCodeAt(4 * w) | (d.charCodeAt(4 * w + 1) << 8) | (d.charCodeAt(4 * w + 2) << 16) | (d.charCodeAt(4 * w + 3) << 24);
  }
  return out;
}

export class ReplayTable {
  /**
   * A power of two, at least twice `max`, so that a probe is short. Allocated whole at the start:
   * doubling a full table costs a 200 ms stall, while pages no entry has touched are never
   * backed by memory (a thousand entries make ~10 MB resident).
   */
  private readonly slots: number;
  private readonly words: Int32Array;
  /** Expiry of each slot in ms; 0: empty. */
  private readonly expiry: Float64Array;
  private count = 0;
  /** No entry expires before this: a full table with nothing expired is not swept again and again. */
  private earliest = Infinity;
  /* The slot of an id depends on a per-process secret, so that ids cannot be chosen to pile up in one probe chain. */
  private readonly seed = crypto.randomBytes(8);
  private readonly seed0 = this.seed.readInt32LE(0);
  private readonly seed1 = this.seed.readInt32LE(4);

  constructor(readonly max = MAX_REPLAY_ENTRIES) {
    this.slots = 2 ** Math.ceil(Math.log2(Math.max(2, 2 * max)));
    this.words = new Int32Array(4 * this.slots);
    this.expiry = new Float64Array(this.slots);
  }

  get size(): number {
    return this.count;
  }

  /** Memory the table holds (its two arrays), for the benchmark. */
  get bytes(): number {
    return this.words.byteLength + this.expiry.byteLength;
  }

  /** Claims `fp` until `untilMs`: 'replay' while an earlier claim lives, 'full' when there is no room even after a sweep. */
  claim(fp: Fingerprint, untilMs: number, now: number): ClaimResult {
    const slot = this.find(fp);
    if (slot >= 0) {
      if (this.expiry[slot] > now) return 'replay';
      this.setExpiry(slot, untilMs);
      return 'fresh';
    }
    return this.insert(fp, untilMs, now) ? 'fresh' : 'full';
  }

  /** Takes back a claim (one that could not be made durable). */
  release(fp: Fingerprint): void {
    const slot = this.find(fp);
    if (slot >= 0) this.remove(slot);
  }

  /** Restores an entry from the log; false if it is expired or there is no room. The later expiry of two wins. */
  restore(fp: Fingerprint, untilMs: number, now: number): boolean {
    if (!(untilMs > now)) return false;
    const slot = this.find(fp);
    if (slot >= 0) {
      if (this.expiry[slot] < untilMs) this.setExpiry(slot, untilMs);
      return true;
    }
    return this.insert(fp, untilMs, now);
  }

  /** The expiry held for `fp`, or 0 if none. */
  expiryOf(fp: Fingerprint): number {
    const slot = this.find(fp);
    return slot < 0 ? 0 : this.expiry[slot];
  }

  /** Removes every expired entry. */
  prune(now: number): void {
    if (now < this.earliest) return;
    let earliest = Infinity;
    for (let i = 0; i < this.slots; i++) {
      /* a removal shifts a later entry into slot i: look at it again */
      while (this.expiry[i] !== 0 && this.expiry[i] <= now) this.remove(i);
      if (this.expiry[i] !== 0 && this.expiry[i] < earliest) earliest = this.expiry[i];
    }
    this.earliest = earliest;
  }

  private insert(fp: Fingerprint, untilMs: number, now: number): boolean {
    if (this.count >= this.max) {
      this.prune(now);
      if (this.count >= this.max) return false;
    }
    let i = this.home(fp[0], fp[1], fp[2], fp[3]);
    while (this.expiry[i] !== 0) i = (i + 1) & (this.slots - 1);
    this.words.set(fp, 4 * i);
    this.setExpiry(i, untilMs);
    this.count++;
    return true;
  }

  private setExpiry(slot: number, untilMs: number): void {
    /* an id claimed with a past expiry still takes its slot (0 means empty) */
    const until = untilMs > 0 ? untilMs : Number.MIN_VALUE;
    this.expiry[slot] = until;
    if (until < this.earliest) this.earliest = until;
  }

  /** The first slot to look at for the fingerprint of words `w0`..`w3`: all four count (test ids differ only at the end). */
  private home(w0: number, w1: number, w2: number, w3: number): number {
    let h = (w0 ^ this.seed0) + Math.imul(w1 ^ this.seed1, 0x9e3779b1);
    h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) + w2;
    h = Math.imul(h ^ (h >>> 12), 0x297a2d39) + w3;
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    return h & (this.slots - 1);
  }

  private find(fp: Fingerprint): number {
    const w = this.words;
    const mask = this.slots - 1;
    for (let i = this.home(fp[0], fp[1], fp[2], fp[3]); this.expiry[i] !== 0; i = (i + 1) & mask) {
      const o = 4 * i;
      if (w[o] === fp[0] && w[o + 1] === fp[1] && w[o + 2] === fp[2] && w[o + 3] === fp[3]) return i;
    }
    return -1;
  }

  /** Empties `slot` and moves later entries of its probe chain back (no tombstones). */
  private remove(slot: number): void {
    const mask = this.slots - 1;
    const w = this.words;
    let hole = slot;
    for (let i = (slot + 1) & mask; this.expiry[i] !== 0; i = (i + 1) & mask) {
      const home = this.home(w[4 * i], w[4 * i + 1], w[4 * i + 2], w[4 * i + 3]);
      /* the entry at i may fill the hole only if its home is not in (hole, i] (cyclically) */
      if (hole <= i ? home > hole && home <= i : home > hole || home <= i) continue;
      w.copyWithin(4 * hole, 4 * i, 4 * i + 4);
      this.expiry[hole] = this.expiry[i];
      hole = i;
    }
    this.expiry[hole] = 0;
    this.count--;
  }
}
