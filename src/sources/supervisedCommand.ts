/**
 * Runs a command that prints log lines forever (journalctl -f, a reader of /dev/kmsg), hands
 * its lines on, and starts it again with backoff whenever it exits.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { LineSplitter, textLines } from './lineSplitter';
import { SourceHooks } from './source';

const FIRST_BACKOFF_MS = 250;
const MAX_BACKOFF_MS = 30_000;

export class SupervisedCommand {
  private child: ChildProcess | null = null;
  private stopped = false;
  private backoffMs = FIRST_BACKOFF_MS;
  private restartTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly argv: readonly string[],
    private readonly hooks: SourceHooks,
  ) {}

  start(): void {
    this.stopped = false;
    const splitter = new LineSplitter(this.hooks.bytes ?? textLines(this.hooks.line), this.hooks.overlong);
    const startedAt = Date.now();
    const child = spawn(this.argv[0], this.argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    child.stdout!.on('data', (chunk: Buffer) => splitter.push(chunk));
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      if (stderr.length < 4096) stderr += chunk.toString();
    });
    const restart = (why: string) => {
      if (this.child !== child) return;
      this.child = null;
      if (this.stopped) return;
      /* one that ran for a while earned a quick restart; one that keeps dying, a slower one */
      if (Date.now() - startedAt > MAX_BACKOFF_MS) this.backoffMs = FIRST_BACKOFF_MS;
      this.hooks.warn(`${this.argv[0]} ${why}${stderr ? `: ${stderr.trim()}` : ''}; restarting in ${this.backoffMs}ms`);
      this.restartTimer = setTimeout(() => this.start(), this.backoffMs);
      this.backoffMs = Math.min(this.backoffMs * 2, MAX_BACKOFF_MS);
    };
    child.on('error', (err) => restart(`failed: ${err.message}`));
    child.on('exit', (code, signal) => restart(`exited (${signal ?? code})`));
  }

  stop(): void {
    this.stopped = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.child?.kill();
    this.child = null;
  }
}
