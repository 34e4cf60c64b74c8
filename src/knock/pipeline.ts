/** Log lines in, completed knocks out, with the counts a sysadmin wants to see. */
import { LogLineParser } from '../netfilter/logLine';
import { packetFields } from '../model/packet';
import { Completion, KnockTracker } from './tracker';

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

  private readonly fields = packetFields();

  constructor(readonly tracker: KnockTracker) {}

  /** Counts a line the reader dropped for its length. */
  skipOverlong(): void {
    this.counts.lines++;
    this.counts.overlong++;
  }

  /** Feeds one line; events logged before `notBefore` (ms) are counted as stale and dropped. */
  feed(parser: LogLineParser, line: string, notBefore = -Infinity): readonly Completion[] {
    const bytes = Buffer.from(line, 'latin1');
    return this.feedBytes(parser, bytes, 0, bytes.length, notBefore);
  }

  /** Feeds one line given as bytes (`buf[start, end)`), with no string or event object made for it. */
  feedBytes(parser: LogLineParser, buf: Buffer, start: number, end: number, notBefore = -Infinity): readonly Completion[] {
    this.counts.lines++;
    const r = parser.parseBytes(buf, start, end, this.fields);
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
    return this.tracker.knock(r.time, r.family, r.v4, r.v6, r.proto, r.dport, r.flags);
  }
}
