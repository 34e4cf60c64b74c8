/** Log lines in, completed knocks out, with the counts a sysadmin wants to see. */
import type { HostFacts, HostRefusal } from '../netfilter/hostFilter';
import { intToIPv4 } from '../model/address';
import { KnockGate, LogLineParser } from '../netfilter/logLine';
import { PacketEvent, PacketFields, packetFields } from '../model/packet';
import type { Completion } from './tracker';
import type { Family } from '../model/address';

/** What turns packets into completed knocks: the tracker, or ClassicKnocks around it. */
export interface KnockHandler {
  handle(e: PacketEvent): readonly Completion[];
  /** The same, from the byte path's fields (see KnockTracker.knock). */
  knock(time: number, family: Family, v4: number, v6: string, proto: number, dport: number, flags: number, iface: string): readonly Completion[];
  /** See KnockGate. */
  passOver?(time: number, family: Family, v4: number, dport: number): boolean;
}

export interface PipelineOptions {
  /**
   * Lines whose packet cannot change anything (an untracked source, a port that starts no door)
   * are counted as passed over after reading their envelope, prefix, SRC and DPT, instead of
   * being checked to the end and counted by what they are. Every line that could change the
   * table still gets the whole grammar and the host check.
   */
  passOver?: boolean;
}

/** Says why a packet is not a knock for this host, or null (a HostFilter, or hostRefusal with a fixed view). */
export type HostCheck = (e: HostFacts) => HostRefusal | null;

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
  /** Lines with our prefix whose packet could not change anything, read no further (PipelineOptions.passOver): also in `netfilter`. */
  passedOver: number;
}

const NONE: readonly Completion[] = Object.freeze([]);

export class KnockPipeline {
  readonly counts: LineCounts = {
    lines: 0, netfilter: 0, malformed: 0, overlong: 0, ignored: 0, fragments: 0, notForHost: 0, stale: 0, events: 0, passedOver: 0,
  };

  /** When the newest packet line read was logged (ms): how far behind the log its reader is. */
  newest = 0;
  private readonly fields = packetFields();
  private readonly facts = new Facts(this.fields);
  private readonly gate: KnockGate | null;

  /** `onRefused` hears of each packet the host check turned away, and why (valid during the call). */
  constructor(
    readonly tracker: KnockHandler,
    private readonly hostCheck: HostCheck | null = null,
    private readonly onRefused?: (e: HostFacts, why: HostRefusal) => void,
    options: PipelineOptions = {},
  ) {
    this.gate = options.passOver && tracker.passOver ? (tracker as KnockGate) : null;
  }

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
    const r = parser.parseBytes(buf, start, end, this.fields, this.gate);
    if (typeof r === 'string') {
      if (r === 'passedOver') {
        this.counts.passedOver++;
        this.newest = this.fields.time;
      } else if (r === 'malformed') this.counts.malformed++;
      else if (r === 'ignored') this.counts.ignored++;
      else if (r === 'fragment') this.counts.fragments++;
      if (r !== 'other') this.counts.netfilter++;
      return NONE;
    }
    this.counts.netfilter++;
    this.newest = r.time;
    if (this.hostCheck) {
      const refused = this.hostCheck(this.facts);
      if (refused !== null) {
        this.counts.notForHost++;
        this.onRefused?.(this.facts, refused);
        return NONE;
      }
    }
    if (r.time < notBefore) {
      this.counts.stale++;
      return NONE;
    }
    this.counts.events++;
    return this.tracker.knock(r.time, r.family, r.v4, r.v6, r.proto, r.dport, r.flags, r.iface);
  }
}

/** The current line's fields as the host check reads them; the source's text is made only if it asks. */
class Facts implements HostFacts {
  private lastV4 = -1;
  private lastSrc = '';

  constructor(private readonly f: PacketFields) {}

  get iface(): string {
    return this.f.iface;
  }

  get out(): string {
    return this.f.out;
  }

  get dst(): string {
    return this.f.dst;
  }

  get src(): string {
    if (this.f.family === 6) return this.f.v6;
    if (this.f.v4 !== this.lastV4) {
      this.lastV4 = this.f.v4;
      this.lastSrc = intToIPv4(this.f.v4);
    }
    return this.lastSrc;
  }
}
