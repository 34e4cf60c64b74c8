import type { LineBytes } from './lineSplitter';

/** What every log source gives the daemon: kernel log lines, and word of trouble. */
export interface SourceHooks {
  line: (line: string) => void;
  /** When given, sources that can hand lines over as bytes do, and `line` is not called for them. */
  bytes?: LineBytes;
  /** A line too long to be a log line was dropped. */
  overlong: () => void;
  info: (message: string) => void;
  warn: (message: string) => void;
}

export interface LineSource {
  readonly name: string;
  start(): void;
  stop(): void;
}
