/**
 * Bytes in, whole lines out. A line that never ends is cut off at a bound, not kept growing.
 * Bytes are read as latin1: kernel LOG lines are ASCII, so they come out exact, a line in any
 * other encoding cannot be a knock whatever it decodes to, and latin1 needs no decoder state
 * across chunks and costs a fraction of UTF-8 decoding on the hot path.
 */

/** Far above any kernel LOG line; past this a "line" is junk and is dropped. */
export const MAX_LINE_BYTES = 64 * 1024;

export class LineSplitter {
  private partial = '';
  private discarding = false;
  /** Lines dropped for being longer than the bound. */
  overlong = 0;

  /** `onOverlong` hears of each line dropped for its length, so that it is counted where lines are. */
  constructor(
    private readonly onLine: (line: string) => void,
    private readonly onOverlong: () => void = () => {},
  ) {}

  push(chunk: Buffer): void {
    const text = chunk.toString('latin1');
    let start = 0;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
      const piece = text.slice(start, nl);
      start = nl + 1;
      if (this.discarding) {
        this.discarding = false;
        continue;
      }
      const line = this.partial.length > 0 ? this.partial + piece : piece;
      this.partial = '';
      if (line.length > MAX_LINE_BYTES) this.dropOverlong();
      else this.onLine(line.endsWith('\r') ? line.slice(0, -1) : line);
    }
    if (this.discarding) return;
    this.partial += text.slice(start);
    if (this.partial.length > MAX_LINE_BYTES) {
      this.partial = '';
      this.discarding = true;
      this.dropOverlong();
    }
  }

  private dropOverlong(): void {
    this.overlong++;
    this.onOverlong();
  }

  /** Ends the current file: a last line without a newline still counts. */
  flush(): void {
    const rest = this.partial;
    this.partial = '';
    if (rest.length > 0 && !this.discarding) this.onLine(rest);
    this.discarding = false;
  }

  /** Forgets a half-read line (the file it came from was truncated under us). */
  reset(): void {
    this.partial = '';
    this.discarding = false;
  }
}
