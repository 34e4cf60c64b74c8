/**
 * Bytes in, whole lines out, as ranges of the bytes: nothing is decoded, so a line costs no
 * string unless its reader wants one (the netfilter parser reads bytes; kernel LOG lines are
 * ASCII, and a line in any other encoding cannot be a knock). A line that never ends is cut off
 * at a bound, not kept growing.
 */

/** Far above any kernel LOG line; past this a "line" is junk and is dropped. */
export const MAX_LINE_BYTES = 64 * 1024;

/**
 * One line: `buf[start, end)`, without its newline (or CR LF). The bytes are only valid during
 * the call: the reader reuses its buffers.
 */
export type LineBytes = (buf: Buffer, start: number, end: number) => void;

/** For readers that want text: each line decoded as latin1 (byte for byte). */
export function textLines(onLine: (line: string) => void): LineBytes {
  return (buf, start, end) => onLine(buf.toString('latin1', start, end));
}

export class LineSplitter {
  /* the start of a line that the previous chunk did not finish */
  private carry: Buffer | null = null;
  private carried = 0;
  private discarding = false;
  /** Lines dropped for being longer than the bound. */
  overlong = 0;

  /** `onOverlong` hears of each line dropped for its length, so that it is counted where lines are. */
  constructor(
    private readonly onLine: LineBytes,
    private readonly onOverlong: () => void = () => {},
  ) {}

  push(chunk: Buffer): void {
    let start = 0;
    let nl = chunk.indexOf(10);
    if (nl >= 0 && (this.carried > 0 || this.discarding)) {
      if (this.discarding) this.discarding = false;
      else if (this.carried + nl > MAX_LINE_BYTES) this.dropOverlong();
      else this.emit(this.append(chunk, 0, nl), 0, this.carried);
      this.carried = 0;
      start = nl + 1;
      nl = chunk.indexOf(10, start);
    }
    for (; nl >= 0; nl = chunk.indexOf(10, start)) {
      if (nl - start > MAX_LINE_BYTES) this.dropOverlong();
      else this.emit(chunk, start, nl);
      start = nl + 1;
    }
    if (this.discarding || start === chunk.length) return;
    if (this.carried + chunk.length - start > MAX_LINE_BYTES) {
      this.carried = 0;
      this.discarding = true;
      this.dropOverlong();
      return;
    }
    this.append(chunk, start, chunk.length);
  }

  private append(chunk: Buffer, start: number, end: number): Buffer {
    this.carry ??= Buffer.allocUnsafe(MAX_LINE_BYTES);
    chunk.copy(this.carry, this.carried, start, end);
    this.carried += end - start;
    return this.carry;
  }

  private emit(buf: Buffer, start: number, end: number): void {
    this.onLine(buf, start, end > start && buf[end - 1] === 13 ? end - 1 : end);
  }

  private dropOverlong(): void {
    this.overlong++;
    this.onOverlong();
  }

  /** Ends the current file: a last line without a newline still counts. */
  flush(): void {
    if (this.carried > 0 && !this.discarding) this.emit(this.carry!, 0, this.carried);
    this.carried = 0;
    this.discarding = false;
  }

  /** Forgets a half-read line (the file it came from was truncated under us). */
  reset(): void {
    this.carried = 0;
    this.discarding = false;
  }
}
