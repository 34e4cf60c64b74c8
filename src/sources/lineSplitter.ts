/** Bytes in, whole lines out. A line that never ends is cut off at a bound, not kept growing. */
import { StringDecoder } from 'node:string_decoder';

/** Far above any kernel LOG line; past this a "line" is junk and is dropped. */
export const MAX_LINE_BYTES = 64 * 1024;

export class LineSplitter {
  private decoder = new StringDecoder('utf8');
  private partial = '';
  private discarding = false;
  /** Lines dropped for being longer than the bound. */
  overlong = 0;

  constructor(private readonly onLine: (line: string) => void) {}

  push(chunk: Buffer): void {
    const text = this.decoder.write(chunk);
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
      if (line.length > MAX_LINE_BYTES) this.overlong++;
      else this.onLine(line.endsWith('\r') ? line.slice(0, -1) : line);
    }
    if (this.discarding) return;
    this.partial += text.slice(start);
    if (this.partial.length > MAX_LINE_BYTES) {
      this.partial = '';
      this.discarding = true;
      this.overlong++;
    }
  }

  /** Ends the current file: a last line without a newline still counts. */
  flush(): void {
    const rest = this.partial + this.decoder.end();
    this.decoder = new StringDecoder('utf8');
    this.partial = '';
    if (rest.length > 0 && !this.discarding) this.onLine(rest);
    this.discarding = false;
  }

  /** Forgets a half-read line (the file it came from was truncated under us). */
  reset(): void {
    this.decoder = new StringDecoder('utf8');
    this.partial = '';
    this.discarding = false;
  }
}
