/** Log lines in, completed knocks out, with the counts a sysadmin wants to see. */
import { LogLineParser } from '../netfilter/logLine';
import type { PacketEvent } from '../model/packet';
import type { Completion } from './tracker';

/** What turns packets into completed knocks: the tracker, or ClassicKnocks around it. */
export interface KnockHandler {
  handle(e: PacketEvent): readonly Completion[];
}

export interface LineCounts {
  lines: number;
  /** Kernel lines with a configured prefix, well-formed or not. */
  netfilter: number;
  malformed: number;
  /** Well-formed netfilter lines of other protocols. */
  ignored: number;
  /** Lines dropped unread for their length (no log line is that long). */
  overlong: number;
  /** Packets logged too long ago to act on (rsyslog replays the ring buffer on start). */
  stale: number;
  events: number;
}

const NONE: readonly Completion[] = Object.freeze([]);

export class KnockPipeline {
  readonly counts: LineCounts = { lines: 0, netfilter: 0, malformed: 0, overlong: 0, ignored: 0, stale: 0, events: 0 };

  constructor(readonly tracker: KnockHandler) {}

  /** Counts a line the reader dropped for its length. */
  skipOverlong(): void {
    this.counts.lines++;
    this.counts.overlong++;
  }

  /** Feeds one line; events logged before `notBefore` (ms) are counted as stale and dropped. */
  feed(parser: LogLineParser, line: string, notBefore = -Infinity): readonly Completion[] {
    this.counts.lines++;
    const r = parser.parse(line);
    if (typeof r === 'string') {
      if (r === 'malformed') this.counts.malformed++;
      else if (r === 'ignored') this.counts.ignored++;
      if (r !== 'other') this.counts.netfilter++;
      return NONE;
    }
    this.counts.netfilter++;
    if (r.time < notBefore) {
      this.counts.stale++;
      return NONE;
    }
    this.counts.events++;
    return this.tracker.handle(r);
  }
}
