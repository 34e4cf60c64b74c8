/**
 * The durable replay store: the in-memory ReplayCache, with each fresh claim appended to
 * `state_dir/replay.log` and fdatasync'ed before the claim is reported fresh. A knock therefore
 * costs one append of one line (about 80 bytes) and one fdatasync, whatever the cache holds;
 * claims that arrive while a write runs go out together in the next one. When dead lines (expired
 * or superseded) outnumber live ones, the log is rewritten in the background, in chunks, with
 * appends going on meanwhile, and swapped in with rename; the event loop is never held for the
 * whole cache. A claim that cannot be written is taken back and refused (fail closed).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fsyncDir } from '../util/atomicFile';
import { MAX_REPLAY_ENTRIES, ReplayCache } from './replayCache';
import { ClaimResult, ReplayStore } from './replayStore';

const { O_WRONLY, O_CREAT, O_APPEND, O_NOFOLLOW, O_EXCL, O_TRUNC, O_RDONLY } = fs.constants;
const READ_CHUNK = 1 << 20;
/** Lines a compaction copies at once (about 400 KB), and its pause after each, so that knocks' own fsyncs get the disk. */
const COMPACT_CHUNK = 5_000;
const COMPACT_PAUSE_MS = 10;
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

/** One `KEY UNTIL` line of the log, bytes [start, end), or null if it is not one. */
function parseLine(buf: Buffer, start: number, end: number): { key: string; until: number } | null {
  const space = buf.indexOf(32, start);
  if (space <= start || space >= end || space - start > 512 || end - space - 1 < 1 || end - space - 1 > 16) return null;
  let until = 0;
  for (let i = space + 1; i < end; i++) {
    const c = buf[i];
    if (c < 48 || c > 57) return null;
    until = until * 10 + (c - 48);
  }
  const text = buf.toString('latin1', start, space);
  if (/[^\x21-\x7e]/.test(text)) return null;
  try {
    return { key: text.includes('%') ? decodeURIComponent(text) : text, until };
  } catch {
    return null;
  }
}

export class FileReplayStore implements ReplayStore {
  readonly file: string;
  readonly io: ReplayIoCounts = { appends: 0, appendedBytes: 0, syncs: 0, compactions: 0, compactedBytes: 0 };
  private readonly cache: ReplayCache;
  private fh: fs.promises.FileHandle | null = null;
  private logBytes = 0;
  /** Lines in the log now, live or not. */
  private lines = 0;
  private queued: string[] = [];
  private pending: Promise<void> | null = null;
  private writing: Promise<void> | null = null;
  /** While a compaction copies the cache: the lines appended since it began, to copy as well. */
  private sinceCompaction: string[] | null = null;
  private compaction: Promise<void> | null = null;
  private closed = false;

  constructor(
    readonly dir: string,
    max = MAX_REPLAY_ENTRIES,
    private readonly onError: (message: string) => void = () => undefined,
  ) {
    this.file = path.join(dir, 'replay.log');
    this.cache = new ReplayCache(max, (key, until) => this.queued.push(`${encodeKey(key)} ${until}\n`));
  }

  get size(): number {
    return this.cache.size;
  }

  /**
   * Reads the log (expired and malformed lines are skipped; a torn last line from a crash too),
   * adds `extra` entries (from a version-1 state file), and opens the log for appending.
   */
  async open(now: number, extra: Record<string, unknown> = {}): Promise<{ loaded: number; skipped: number }> {
    let loaded = 0;
    let skipped = 0;
    const take = (key: string, until: number) => {
      if (this.cache.restore(key, until, now)) loaded++;
      else skipped++;
    };
    let fd: number | null = null;
    try {
      fd = fs.openSync(this.file, O_RDONLY | O_NOFOLLOW);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (fd !== null) {
      try {
        /* parsed from the bytes: a key sliced out of a big string would keep the whole chunk alive */
        const buf = Buffer.allocUnsafe(READ_CHUNK);
        let kept = 0;
        let whole = 0;
        for (;;) {
          const n = fs.readSync(fd, buf, kept, READ_CHUNK - kept, null);
          const end = kept + n;
          let start = 0;
          for (let nl = buf.indexOf(10, start); nl >= 0 && nl < end; nl = buf.indexOf(10, start)) {
            this.lines++;
            const entry = parseLine(buf, start, nl);
            if (entry) take(entry.key, entry.until);
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
    for (const [key, until] of Object.entries(extra)) {
      if (/^[0-9a-f]{64}$/.test(key) && typeof until === 'number') take(key, until);
    }
    this.fh = await fs.promises.open(this.file, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW, 0o600);
    if (Object.keys(extra).length > 0 || this.lines > 2 * this.cache.size + MIN_DEAD_LINES) this.compactSoon(now);
    return { loaded, skipped };
  }

  async claim(key: string, untilMs: number, now: number): Promise<ClaimResult> {
    if (!this.fh || this.closed) throw new Error('the replay store is not open');
    const verdict = await this.cache.claim(key, untilMs, now);
    if (verdict !== 'fresh') return verdict;
    try {
      await this.flush();
    } catch (err) {
      this.cache.release(key);
      throw err;
    }
    if (this.lines > 2 * this.cache.size + MIN_DEAD_LINES) this.compactSoon(now);
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

  /** Writes the live entries to a new file chunk by chunk, then swaps it in between two appends. */
  private async compact(now: number): Promise<void> {
    const tmp = `${this.file}.compact`;
    await fs.promises.rm(tmp, { force: true });
    const out = await fs.promises.open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_TRUNC, 0o600);
    let bytes = 0;
    let lines = 0;
    try {
      this.sinceCompaction = [];
      let chunk: string[] = [];
      const writeChunk = async () => {
        const data = Buffer.from(chunk.join(''), 'latin1');
        chunk = [];
        await out.write(data, 0, data.length, null);
        /* a chunk at a time: with ext4's ordered journal, an fsync of doors.json would otherwise wait for the whole copy */
        await out.datasync();
        bytes += data.length;
        await new Promise((r) => setTimeout(r, COMPACT_PAUSE_MS));
      };
      for (const [key, until] of this.cache.entries()) {
        if (until <= now) continue;
        chunk.push(`${encodeKey(key)} ${until}\n`);
        lines++;
        if (chunk.length >= COMPACT_CHUNK) await writeChunk();
        if (this.closed) throw new Error('stopping');
      }
      await writeChunk();
      await out.sync();
      await this.after(async () => {
        /* appends made while copying: already in the cache, maybe copied too; once more does no harm */
        chunk = this.sinceCompaction ?? [];
        lines += chunk.length;
        await writeChunk();
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
