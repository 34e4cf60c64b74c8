/**
 * Reads /dev/kmsg, the kernel's own log: unforgeable (a record a process writes there has a
 * non-kernel facility, which the parser refuses), and with a cursor of its own for every reader.
 *
 * The device is read by a `cat` child, not in-process: a read that blocks on it would pin a
 * libuv thread that Node then waits for forever at exit. cat ends with EPIPE when the ring buffer
 * overwrites records it had not read; it is restarted, and the records' sequence numbers tell
 * what was read already (skipped) and what was lost (counted).
 */
import { LineSource, SourceHooks } from './source';
import { SupervisedCommand } from './supervisedCommand';

export { kmsgWallTime, uptimeUsec } from './kmsgClock';

export class KmsgSource implements LineSource {
  readonly name: string;
  private readonly command: SupervisedCommand;
  private lastSeq = -1;
  /** Records the ring buffer overwrote before they were read. */
  lost = 0;

  /** `startUsec`: records stamped before this (microseconds since boot) are history, not knocks. */
  constructor(
    readonly device: string,
    private readonly hooks: SourceHooks,
    private readonly startUsec: number,
  ) {
    this.name = `kmsg ${device}`;
    this.command = new SupervisedCommand(['cat', device], { ...hooks, bytes: undefined, line: (l) => this.record(l) });
  }

  start(): void {
    this.command.start();
  }

  stop(): void {
    this.command.stop();
  }

  /** "prio,seq,usec,flags;message"; dictionary lines (" KEY=value") follow some records. */
  private record(line: string): void {
    if (line.charCodeAt(0) === 32) return;
    const c1 = line.indexOf(',');
    const c2 = line.indexOf(',', c1 + 1);
    const c3 = line.indexOf(',', c2 + 1);
    if (c1 < 0 || c2 < 0 || c3 < 0) return;
    const seq = Number(line.slice(c1 + 1, c2));
    if (!Number.isInteger(seq) || seq <= this.lastSeq) return;
    if (this.lastSeq >= 0 && seq > this.lastSeq + 1) {
      this.lost += seq - this.lastSeq - 1;
      this.hooks.warn(`${this.device}: ${seq - this.lastSeq - 1} kernel records were overwritten before they were read`);
    }
    this.lastSeq = seq;
    if (Number(line.slice(c2 + 1, c3)) < this.startUsec) return;
    this.hooks.line(line);
  }
}
