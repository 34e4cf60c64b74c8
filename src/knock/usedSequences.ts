/**
 * Time-derived sequences already used, kept until they could no longer be accepted. Durable: a
 * claim is appended to a small file in state_dir and fsynced before the door opens, so a restart
 * inside the acceptance window still refuses the replay. The file is compacted (rewritten with
 * the live entries only) at start-up and whenever it has grown to many dead lines.
 *
 * Format: one claim a line, `UNTIL_MS KEY`.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ClaimResult } from '../tumbler/replayStore';
import { writeFileAtomic } from '../util/atomicFile';

/** The synchronous claim the classic tracker needs: the same answers as the ReplayStore seam. */
export interface UsedSequences {
  claim(key: string, untilMs: number, now: number): ClaimResult;
}

/** Live entries are a few per door (three steps); this only bounds a file that was tampered with. */
export const MAX_USED_ENTRIES = 100_000;
const COMPACT_AFTER_LINES = 1000;

export class UsedSequenceFile implements UsedSequences {
  private readonly used = new Map<string, number>();
  private lines = 0;

  /** `file` null: in memory only (scan, which must not use up the daemon's sequences). */
  constructor(readonly file: string | null, private readonly warn: (m: string) => void = () => undefined) {}

  /** Reads the file, drops expired and malformed lines, and rewrites it compacted. */
  load(now: number): this {
    if (this.file === null) return this;
    let text = '';
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    for (const line of text.split('\n')) {
      const m = /^([0-9]{1,16}) (\S{1,200})$/.exec(line);
      if (!m) {
        if (line !== '') this.warn(`${this.file}: skipping a malformed line`);
        continue;
      }
      const until = Number(m[1]);
      if (until > now && this.used.size < MAX_USED_ENTRIES) this.used.set(m[2], Math.max(until, this.used.get(m[2]) ?? 0));
    }
    this.compact();
    return this;
  }

  claim(key: string, untilMs: number, now: number): ClaimResult {
    const known = this.used.get(key);
    if (known !== undefined && known > now) return 'replay';
    if (this.used.size >= MAX_USED_ENTRIES) {
      for (const [k, until] of this.used) if (until <= now) this.used.delete(k);
      if (this.used.size >= MAX_USED_ENTRIES) return 'full';
    }
    try {
      if (this.file !== null && this.lines >= COMPACT_AFTER_LINES) {
        for (const [k, until] of this.used) if (until <= now) this.used.delete(k);
        this.used.set(key, untilMs);
        this.compact();
      } else if (this.file !== null) {
        const fd = fs.openSync(this.file, 'a', 0o600);
        try {
          fs.writeSync(fd, `${untilMs} ${key}\n`);
          fs.fsyncSync(fd);
        } finally {
          fs.closeSync(fd);
        }
        this.lines++;
      }
    } catch (err) {
      this.used.delete(key);
      this.warn(`${this.file}: cannot record a used sequence (${(err as Error).message}): refusing the knock`);
      return 'full';
    }
    this.used.set(key, untilMs);
    return 'fresh';
  }

  get size(): number {
    return this.used.size;
  }

  private compact(): void {
    if (this.file === null) return;
    fs.mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o700 });
    writeFileAtomic(this.file, [...this.used].map(([k, until]) => `${until} ${k}\n`).join(''));
    this.lines = this.used.size;
  }
}
