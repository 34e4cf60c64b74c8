/**
 * Follows a syslog file the way `tail -F` does, through what logrotate does to it: rename and
 * create (the old inode is read to its end before the new file is opened), copytruncate (the
 * open file shrinks: start again from 0), a file that is missing for a while, and half-written lines.
 *
 * Woken by inotify on the file's folder, so a knock is read as soon as rsyslog writes it, with
 * a slow poll behind it for file systems where inotify says nothing.
 */
import fs from 'node:fs';
import path from 'node:path';
import { LineSplitter, textLines } from './lineSplitter';
import { LineSource, SourceHooks } from './source';

const READ_CHUNK = 64 * 1024;
/* Per wake-up, so a huge backlog cannot hold the event loop; the rest is read on the next turn. */
const MAX_READ_PER_CHECK = 16 * 1024 * 1024;

export class FileSource implements LineSource {
  readonly name: string;
  private fd: number | null = null;
  private ino = 0;
  private pos = 0;
  private readonly splitter: LineSplitter;
  private watcher: fs.FSWatcher | null = null;
  private timer: NodeJS.Timeout | null = null;
  private scheduled = false;
  private missing = false;
  private readonly buf = Buffer.allocUnsafe(READ_CHUNK);

  constructor(
    readonly file: string,
    private readonly hooks: SourceHooks,
    private readonly pollMs = 1000,
  ) {
    this.name = `file ${file}`;
    this.splitter = new LineSplitter(hooks.bytes ?? textLines(hooks.line), hooks.overlong);
  }

  start(): void {
    try {
      const st = fs.statSync(this.file);
      this.openAt(st.size);
    } catch (err) {
      this.noteMissing(err as NodeJS.ErrnoException);
    }
    this.watch();
    this.timer = setInterval(() => this.schedule(), this.pollMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.watcher?.close();
    this.watcher = null;
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }

  private watch(): void {
    try {
      this.watcher = fs.watch(path.dirname(this.file), { persistent: false }, () => this.schedule());
      this.watcher.on('error', () => {
        this.watcher?.close();
        this.watcher = null;
      });
    } catch {
      this.watcher = null; /* folder missing: the poll keeps trying */
    }
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (!this.watcher) this.watch();
      try {
        this.check();
      } catch (err) {
        this.hooks.warn(`${this.file}: ${(err as Error).message}`);
      }
    });
  }

  private openAt(pos: number): void {
    this.fd = fs.openSync(this.file, 'r');
    this.ino = fs.fstatSync(this.fd).ino;
    this.pos = pos;
  }

  private noteMissing(err: NodeJS.ErrnoException): void {
    if (err.code !== 'ENOENT') throw err;
    if (!this.missing) {
      this.missing = true;
      this.hooks.warn(`${this.file} does not exist (yet): waiting for it`);
    }
  }

  /** Reads what was appended to the open file; false if it stopped at the per-check bound. */
  private drain(): boolean {
    if (this.fd === null) return true;
    /* Asked of the open file, not the path: a file truncated and then renamed is caught too. A file
     * that was truncated and has grown back past where we were cannot be told apart; inotify wakes
     * us at the truncation, long before a log writer refills it. */
    if (fs.fstatSync(this.fd).size < this.pos) {
      this.splitter.reset();
      this.pos = 0;
      this.hooks.info(`${this.file} was truncated: reading it from the start`);
    }
    let total = 0;
    for (;;) {
      const n = fs.readSync(this.fd, this.buf, 0, READ_CHUNK, this.pos);
      if (n === 0) return true;
      this.pos += n;
      this.splitter.push(this.buf.subarray(0, n));
      total += n;
      if (total >= MAX_READ_PER_CHECK) return false;
    }
  }

  private check(): void {
    if (!this.drain()) {
      this.schedule();
      return;
    }
    let st: fs.Stats;
    try {
      st = fs.statSync(this.file);
    } catch (err) {
      this.noteMissing(err as NodeJS.ErrnoException); /* renamed away: keep the old inode open */
      return;
    }
    if (this.missing) {
      this.hooks.info(`${this.file} is back`);
      this.missing = false;
    }
    if (this.fd === null) {
      this.openAt(0); /* created after we started: all of it is new */
    } else if (st.ino !== this.ino) {
      this.drain(); /* what was written to the old file between the last read and the rename */
      this.splitter.flush();
      fs.closeSync(this.fd);
      this.hooks.info(`${this.file} was rotated (new file): reading it from the start`);
      this.openAt(0);
    } else {
      return;
    }
    if (!this.drain()) this.schedule();
  }
}
