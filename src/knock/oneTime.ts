/**
 * knockd's one_time_sequences file: one sequence a line, each usable once. The door's sequence is
 * the first line not yet used; using it writes '#' over the line's first byte, as knockd does, so
 * the file itself is the record of what was used, across restarts, and knockd and tumblerd read
 * each other's files. (knockd's man page: leave a space at the start of each line, or the '#'
 * replaces the first digit.)
 */
import fs from 'node:fs';
import type { Knock } from '../model/door';
import { parseSequence } from './sequence';

export interface OneTimeLine {
  /** Byte offset of the line in the file: where the '#' goes. */
  offset: number;
  /** 1-based, for messages. */
  line: number;
  text: string;
  sequence: Knock[];
}

export interface OneTimeFileContents {
  /** Lines not used yet, in file order. */
  unused: OneTimeLine[];
  /** Lines that are not a sequence: knockd skips them; tumblerd says so. */
  bad: { line: number; message: string }[];
}

/** Pure: the sequences of a one-time file's bytes. Blank lines and lines starting with '#' (after blanks) are skipped, as knockd does. */
export function parseOneTimeFile(bytes: Buffer): OneTimeFileContents {
  const out: OneTimeFileContents = { unused: [], bad: [] };
  let offset = 0;
  let line = 0;
  while (offset < bytes.length) {
    let end = bytes.indexOf(0x0a, offset);
    if (end < 0) end = bytes.length;
    line++;
    const text = bytes.toString('utf8', offset, end).trim();
    if (text !== '' && !text.startsWith('#')) {
      try {
        out.unused.push({ offset, line, text, sequence: parseSequence(text) });
      } catch (err) {
        out.bad.push({ line, message: (err as Error).message });
      }
    }
    offset = end + 1;
  }
  return out;
}

/** The file on disk. Read afresh on every call: it is small, and an edit between knocks is seen. */
export class OneTimeSequenceFile {
  /* Lines a simulation used: `tumblerd scan` must not use up the daemon's sequences. */
  private readonly simulated: Set<number> | null;

  constructor(readonly file: string, simulate = false) {
    this.simulated = simulate ? new Set() : null;
  }

  read(): OneTimeFileContents {
    const contents = parseOneTimeFile(fs.readFileSync(this.file));
    if (this.simulated) contents.unused = contents.unused.filter((u) => !this.simulated!.has(u.offset));
    return contents;
  }

  /** The sequence the door accepts now, or null when every line is used. */
  current(): OneTimeLine | null {
    return this.read().unused[0] ?? null;
  }

  /**
   * Marks a line used, durably, before anything opens. Throws if the line is no longer where it
   * was (the file was edited): the knock is then refused rather than a wrong line marked.
   */
  use(entry: OneTimeLine): void {
    if (this.simulated) {
      this.simulated.add(entry.offset);
      return;
    }
    const fd = fs.openSync(this.file, 'r+');
    try {
      const now = parseOneTimeFile(fs.readFileSync(fd));
      if (!now.unused.some((u) => u.offset === entry.offset && u.text === entry.text)) {
        throw new Error(`${this.file}:${entry.line} changed since it was read`);
      }
      fs.writeSync(fd, '#', entry.offset);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }
}
