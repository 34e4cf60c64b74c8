/** Log lines in, completed knocks out, with the counts a sysadmin wants to see. */
import type { HostRefusal } from '../netfilter/hostFilter';
import { LogLineParser } from '../netfilter/logLine';
import { PacketEvent } from '../model/packet';
import type { Completion } from './tracker';

/** What turns packets into completed knocks: the tracker, or ClassicKnocks around it. */
export interface KnockHandler {
  handle(e: PacketEvent): readonly Completion[];
}

/** Says why a packet is not a knock for this host, or null (a HostFilter, or hostRefusal with a fixed view). */
export type HostCheck = (e: PacketEvent) => HostRefusal | null;

export interface LineCounts {
  lines: number;
  /** Kernel lines with a configured prefix, well-formed or not. */
  netfilter: number;
  malformed: number;
  /** Well-formed netfilter lines of other protocols. */
  ignored: number;
  /** Well-formed non-first fragments: no ports. */
  fragments: number;
  /** Packets that did not come in to this host (another namespace's, forwarded, sent, loopback). */
  notForHost: number;
  /** Lines dropped unread for their length (no log line is that long). */
  overlong: number;
  /** Packets logged too long ago to act on (rsyslog replays the ring buffer on start). */
  stale: number;
  events: number;
}

const NONE: readonly Completion[] = Object.freeze([]);

export class KnockPipeline {
  readonly counts: LineCounts = {
    lines: 0, netfilter: 0, malformed: 0, overlong: 0, ignored: 0, fragments: 0, notForHost: 0, stale: 0, events: 0,
  };

  /** `onRefused` hears of each packet the host check turned away, and why. */
  constructor(
    readonly tracker: KnockHandler,
    private readonly hostCheck: HostCheck | null = null,
    private readonly onRefused?: (e: PacketEvent, why: HostRefusal) => void,
  ) {}

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
      else if (r === 'fragment') this.counts.fragments++;
      if (r !== 'other') this.counts.netfilter++;
      return NONE;
    }
    this.counts.netfilter++;
    const refused = this.hostCheck?.(r) ?? null;
    if (refused !== null) {
      this.counts.notForHost++;
      this.onRefused?.(r, refused);
      return NONE;
    }
    if (r.time < notBefore) {
      this.counts.stale++;
      return NONE;
    }
    this.counts.events++;
    return this.tracker.handle(r);
  }
}
