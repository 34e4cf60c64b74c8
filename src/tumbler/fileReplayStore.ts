/**
 * The durable replay store: the in-memory ReplayTable, with each fresh claim appended to
 * `state_dir/replay.log` and fdatasync'ed before the claim is reported fresh. A knock therefore
 * costs one append of one line (about 80 bytes) and one fdatasync, whatever the table holds;
 * claims that arrive while a write runs go out together in the next one. When dead lines (expired
 * or superseded) outnumber live ones, the log is filtered against the table into a new file in the
 * background, a chunk at a time, with appends going on meanwhile, and swapped in with rename; the
 * event loop is never held for the whole log. A claim that cannot be written is taken back and refused (fail closed).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fsyncDir } from '../util/atomicFile';
import { MAX_REPLAY_ENTRIES } from './replayCache';
import { Fingerprint, ReplayTable, fingerprintHexBytes, fingerprintOf } from './replayTable';
import { ClaimResult, ReplayStore } from './replayStore';

const { O_WRONLY, O_CREAT, O_APPEND, O_NOFOLLOW, O_EXCL, O_TRUNC, O_RDONLY } = fs.constants;
const READ_CHUNK = 1 << 20;
/** Bytes of the old log a compaction filters at once, and its pause after each, so that knocks' own fsyncs get the disk. */
const COMPACT_CHUNK = 512 << 10;
const COMPACT_PAUSE_MS = 5;
/** Compact once this many lines beyond the live entries are in the log. */
const MIN_DEAD_LINES = 10_000;

/** What the log costs: for tests and the benchmark that show the I/O of a knock. */
export interface ReplayIoCounts {
  appends: number;
  appendedBytes: number;
  syncs: number;
  compactions: number;
  compactedBytes: number;
}

/* keys are the verifiers' (hex digests for v1): encoded so that no key can break a line */
const encodeKey = (key: string) => encodeURIComponent(key);

/**
 * One `KEY UNTIL` line of the log, bytes [start, end): its expiry, with the key's fingerprint in
 * `fp`, or -1 if it is not such a line. A v1 digest is fingerprinted from its bytes, no string made.
 */
function parseLine(buf: Buffer, start: number, end: number, fp: Fingerprint): number {
  const space = buf.indexOf(32, start);
  if (space <= start || space >= end || space - start > 512 || end - space - 1 < 1 || end - space - 1 > 16) return -1;
  let until = 0;
  for (let i = space + 1; i < end; i++) {
    const c = buf[i];
    if (c < 48 || c > 57) return -1;
    until = until * 10 + (c - 48);
  }
  if (space - start === 64 && fingerprintHexBytes(buf, start, fp)) return until;
  const text = buf.toString('latin1', start, space);
  if (/[^\x21-\x7e]/.test(text)) return -1;
  try {
    fingerprintOf(text.includes('%') ? decodeURIComponent(text) : text, fp);
  } catch {
    return -1;
  }
  return until;
}

export class FileReplayStore implements ReplayStore {
  readonly file: string;
  readonly io: ReplayIoCounts = { appends: 0, appendedBytes: 0, syncs: 0, compactions: 0, compactedBytes: 0 };
  private readonly table: ReplayTable;
  private fh: fs.promises.FileHandle | null = null;
  private logBytes = 0;
  /** Lines in the log now, live or not. */
  private lines = 0;
  private queued: string[] = [];
  private pending: Promise<void> | null = null;
  private writing: Promise<void> | null = null;
  /** While a compaction copies the log: the lines appended since it began, to copy as well. */
  private sinceCompaction: string[] | null = null;
  private compaction: Promise<void> | null = null;
  private closed = false;

  constructor(
    readonly dir: string,
    max = MAX_REPLAY_ENTRIES,
    private readonly onError: (message: string) => void = () => undefined,
  ) {
    this.file = path.join(dir, 'replay.log');
    this.table = new ReplayTable(max);
  }

  get size(): number {
    return this.table.size;
  }

  /**
   * Reads the log (expired and malformed lines are skipped; a torn last line from a crash too),
   * adds `extra` entries (from a version-1 state file), and opens the log for appending.
   */
  async open(now: number, extra: Record<string, unknown> = {}): Promise<{ loaded: number; skipped: number }> {
    let loaded = 0;
    let skipped = 0;
    const fp = new Int32Array(4);
    let fd: number | null = null;
    try {
      fd = fs.openSync(this.file, O_RDONLY | O_NOFOLLOW);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (fd !== null) {
      try {
        const buf = Buffer.allocUnsafe(READ_CHUNK);
        let kept = 0;
        let whole = 0;
        for (;;) {
          const n = fs.readSync(fd, buf, kept, READ_CHUNK - kept, null);
          const end = kept + n;
          let start = 0;
          for (let nl = buf.indexOf(10, start); nl >= 0 && nl < end; nl = buf.indexOf(10, start)) {
            this.lines++;
            const until = parseLine(buf, start, nl, fp);
            if (until >= 0 && this.table.restore(fp, until, now)) loaded++;
            else skipped++;
            whole += nl + 1 - start;
            start = nl + 1;
          }
          if (n === 0) {
            if (end > start) skipped++; /* a torn last line */
            break;
          }
          buf.copy(buf, 0, start, end);
          kept = end - start;
          if (kept === READ_CHUNK) throw new Error(`${this.file} has a line longer than ${READ_CHUNK} bytes`);
        }
        this.logBytes = whole;
      } finally {
        fs.closeSync(fd);
      }
      /* a torn last line: cut it off, or the next append would continue it */
      if (fs.statSync(this.file).size !== this.logBytes) fs.truncateSync(this.file, this.logBytes);
    }
    /* a version-1 state file's entries go into the log too: compaction keeps only what the log holds */
    const imported: string[] = [];
    for (const [key, until] of Object.entries(extra)) {
      if (/^[0-9a-f]{64}$/.test(key) && typeof until === 'number' && this.table.restore(fingerprintOf(key, fp), until, now)) {
        loaded++;
        imported.push(`${key} ${until}\n`);
      } else skipped++;
    }
    this.fh = await fs.promises.open(this.file, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW, 0o600);
    if (imported.length > 0) await this.after(() => this.append(imported));
    if (this.lines > 2 * this.table.size + MIN_DEAD_LINES) this.compactSoon(now);
    return { loaded, skipped };
  }

  async claim(key: string, untilMs: number, now: number): Promise<ClaimResult> {
    if (!this.fh || this.closed) throw new Error('the replay store is not open');
    const fp = fingerprintOf(key);
    const verdict = this.table.claim(fp, untilMs, now);
    if (verdict !== 'fresh') return verdict;
    this.queued.push(`${encodeKey(key)} ${untilMs}\n`);
    try {
      await this.flush();
    } catch (err) {
      this.table.release(fp);
      throw err;
    }
    if (this.lines > 2 * this.table.size + MIN_DEAD_LINES) this.compactSoon(now);
    return 'fresh';
  }

  /** Waits for running writes and a compaction, and closes the log. */
  async close(): Promise<void> {
    this.closed = true;
    await this.compaction?.catch(() => undefined);
    await this.pending?.catch(() => undefined);
    await this.writing?.catch(() => undefined);
    await this.fh?.close();
    this.fh = null;
  }

  /** Resolves once every line queued before the call is on disk. */
  private flush(): Promise<void> {
    this.pending ??= this.after(async () => {
      this.pending = null;
      const lines = this.queued;
      this.queued = [];
      if (lines.length > 0) await this.append(lines);
    });
    return this.pending;
  }

  /** Runs `step` once the write in progress is done: appends and the compaction's swap never overlap. */
  private after(step: () => Promise<void>): Promise<void> {
    const before = this.writing ?? Promise.resolve();
    const run = before.catch(() => undefined).then(step);
    this.writing = run;
    void run.catch(() => undefined).then(() => {
      if (this.writing === run) this.writing = null;
    });
    return run;
  }

  private async append(lines: string[]): Promise<void> {
    const fh = this.fh;
    if (!fh) throw new Error('the replay store is closed');
    const data = Buffer.from(lines.join(''), 'latin1');
    try {
      await fh.write(data, 0, data.length, null);
      await fh.datasync();
    } catch (err) {
      /* a half-written line would merge with the next one: cut back to what was whole */
      await fh.truncate(this.logBytes).catch(() => undefined);
      throw err;
    }
    this.logBytes += data.length;
    this.lines += lines.length;
    this.io.appends++;
    this.io.appendedBytes += data.length;
    this.io.syncs++;
    this.sinceCompaction?.push(...lines);
  }

  private compactSoon(now: number): void {
    if (this.compaction || this.closed) return;
    this.compaction = this.compact(now)
      .catch((err: Error) => this.onError(`replay log not compacted (it keeps growing until the next try): ${err.message}`))
      .finally(() => {
        this.compaction = null;
        this.sinceCompaction = null;
      });
  }

  /**
   * Copies the log's live lines (those whose key the table holds with that same expiry) to a new
   * file, a chunk of the old log at a time, then swaps it in between two appends. The table holds
   * fingerprints, not keys: the old log supplies the keys.
   */
  private async compact(now: number): Promise<void> {
    /* together: lines appended from here on are past readEnd, and also kept aside to be copied */
    const readEnd = this.logBytes;
    this.sinceCompaction = [];
    const tmp = `${this.file}.compact`;
    await fs.promises.rm(tmp, { force: true });
    const out = await fs.promises.open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_TRUNC, 0o600);
    let bytes = 0;
    let lines = 0;
    const write = async (data: Buffer) => {
      await out.write(data, 0, data.length, null);
      /* a chunk at a time: with ext4's ordered journal, an fsync of doors.json would otherwise wait for the whole copy */
      await out.datasync();
      bytes += data.length;
    };
    try {
      const src = await fs.promises.open(this.file, O_RDONLY | O_NOFOLLOW);
      try {
        const inBuf = Buffer.allocUnsafe(COMPACT_CHUNK);
        const outBuf = Buffer.allocUnsafe(COMPACT_CHUNK);
        const fp = new Int32Array(4);
        let pos = 0;
        let kept = 0;
        while (pos < readEnd) {
          const { bytesRead } = await src.read(inBuf, kept, Math.min(COMPACT_CHUNK - kept, readEnd - pos), pos);
          if (bytesRead === 0) throw new Error(`${this.file} is shorter than it was`);
          pos += bytesRead;
          const end = kept + bytesRead;
          let start = 0;
          let o = 0;
          for (let nl = inBuf.indexOf(10, start); nl >= 0 && nl < end; nl = inBuf.indexOf(10, start)) {
            const until = parseLine(inBuf, start, nl, fp);
            if (until > now && this.table.expiryOf(fp) === until) {
              o += inBuf.copy(outBuf, o, start, nl + 1);
              lines++;
            }
            start = nl + 1;
          }
          inBuf.copy(inBuf, 0, start, end);
          kept = end - start;
          if (kept === COMPACT_CHUNK) throw new Error(`${this.file} has a line longer than ${COMPACT_CHUNK} bytes`);
          /* a knock's own append and fdatasync go first: the copy's chunk would hold the disk */
          while (this.writing) await this.writing.catch(() => undefined);
          if (o > 0) await write(outBuf.subarray(0, o));
          if (this.closed) throw new Error('stopping');
          await new Promise((r) => setTimeout(r, COMPACT_PAUSE_MS));
        }
      } finally {
        await src.close();
      }
      await out.sync();
      await this.after(async () => {
        /* appends made while copying: none was in the part of the old log that was read */
        const since = this.sinceCompaction ?? [];
        lines += since.length;
        if (since.length > 0) await write(Buffer.from(since.join(''), 'latin1'));
        await out.sync();
        await out.close();
        await fs.promises.rename(tmp, this.file);
        fsyncDir(this.dir);
        const old = this.fh;
        this.fh = await fs.promises.open(this.file, O_WRONLY | O_APPEND | O_NOFOLLOW);
        await old?.close();
        this.logBytes = bytes;
        this.lines = lines;
        this.io.compactions++;
        this.io.compactedBytes += bytes;
      });
    } catch (err) {
      await out.close().catch(() => undefined);
      await fs.promises.rm(tmp, { force: true });
      throw err;
    }
  }
}
