/**
 * From one kernel log line (in any of the formats a log source yields) to a packet event.
 * Pure: no I/O, no clock except what the caller passes.
 *
 * Read as bytes, in place: a line is a range of a buffer the reader filled, and nothing is
 * decoded unless it is asked for (`parse`, the event with its text fields, for tests and tools;
 * `parseBytes`, the fields knock tracking needs, written into one object, for scan and the daemon:
 * no string, no object per line, an IPv4 source as an integer).
 *
 * Two layers, each one left-to-right pass with fixed-offset checks (no regular expressions, so a
 * hostile line costs linear time at most):
 *  - the envelope: the syslog, kmsg, dmesg or journald wrapping around the kernel's message, which
 *    must say that the kernel wrote it (tag `kernel:`, facility kern) and when;
 *  - the message: the LOG prefix, then exactly what the kernel's netfilter logger
 *    (net/netfilter/nf_log_syslog.c, shared by iptables LOG and nft `log`) prints: its keys in its
 *    order, each value of the shape it prints, nothing unknown in between and nothing after the
 *    end. Text that merely contains the fields (a crash report naming a process `FIREWALL: IN= `,
 *    say) is not a knock.
 */
import { Family, canonicalIPv6, intToIPv4 } from '../model/address';
import { PacketEvent, PacketFields, TCP_FLAGS, packetFields } from '../model/packet';
import { wallClockTime } from './zoneTime';

/** What a line turned out to be, when it is not a packet event. */
export type LineVerdict =
  /** Not a kernel message starting with a configured prefix: someone else's line. */
  | 'other'
  /** A kernel line with our prefix that is not what the netfilter logger prints (broken, cut, or forged). */
  | 'malformed'
  /** A well-formed netfilter line without ports a knock could use (ICMP, ARP, other protocols). */
  | 'ignored'
  /** A well-formed non-first fragment: the kernel logs no ports for it. */
  | 'fragment'
  /**
   * A kernel line with our prefix whose packet could change nothing (see KnockGate): its fields
   * past SRC and DPT were not checked. Only when a gate is given.
   */
  | 'passedOver';

/**
 * Says which packets can change no knock state: a line whose source and port it passes over is
 * read no further than those two fields, so that a busy log costs the full grammar only for the
 * lines that could count.
 */
export interface KnockGate {
  /**
   * Can a TCP or UDP packet logged at `time` from a source of `family` to `dport` change nothing?
   * An IPv4 source is given as an unsigned integer (`v4`); an IPv6 one is not read (`v4` is 0).
   */
  passOver(time: number, family: Family, v4: number, dport: number): boolean;
}

export interface ParserOptions {
  /** LOG prefixes, as configured (`"FIREWALL: "`); trailing white space is optional in the log. */
  prefixes: string[];
  /** Wall-clock time of boot in ms, to date kmsg records and dmesg lines (their stamps count from boot). */
  bootTimeMs?: number;
  /**
   * Wall-clock time of a kmsg record from its stamp (µs since boot). When given it is used instead
   * of `bootTimeMs`, so that a source reading live can follow a wall clock that steps.
   */
  kmsgTime?: (usec: number) => number;
  /** The reference "now" for syslog stamps without a year or zone. */
  now?: () => number;
  /** IANA zone of stamps without one (traditional syslog, dmesg -T); default: this process's zone. */
  timeZone?: string;
  /** Read only the envelope: 'ignored' for every line that says the kernel wrote it, whatever its message. */
  envelopeOnly?: boolean;
}

/** Kernel LOG lines are well under 1 KiB; anything far longer with our prefix is not one. */
export const MAX_NETFILTER_LINE = 4096;

const MONTHS = new Map(
  ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'].map((m, i) => [
    (m.charCodeAt(0) << 16) | (m.charCodeAt(1) << 8) | m.charCodeAt(2),
    i,
  ]),
);
const KERNEL_TAG = 'kernel: ';
const KERNEL_TAG_BYTES = Buffer.from(KERNEL_TAG);
const KERN_DOT = Buffer.from('kern.');

const SP = 32;

/*
 * The end of the line being parsed (exclusive). The buffer goes on past it with the next lines,
 * so every read is bounded by it: `ch` is -1 past the end, as charCodeAt was NaN past a string's.
 */
let E = 0;
/* and where it starts */
let S = 0;

const ch = (s: Buffer, i: number): number => (i < E ? s[i] : -1);

/** Does `key` (ASCII) stand at `i`? */
function starts(s: Buffer, key: string, i: number): boolean {
  if (i < 0 || i + key.length > E) return false;
  for (let k = 0; k < key.length; k++) if (s[i + k] !== key.charCodeAt(k)) return false;
  return true;
}

/** Do the bytes of `key` stand at `i`? */
function startsBytes(s: Buffer, key: Uint8Array, i: number): boolean {
  const n = key.length;
  if (i + n > E) return false;
  for (let k = 0; k < n; k++) if (s[i + k] !== key[k]) return false;
  return true;
}

/** Where `key` next stands from `from` on, within the line, or -1. */
function find(s: Buffer, key: string, from: number): number {
  const c0 = key.charCodeAt(0);
  for (let i = from < 0 ? 0 : from; i + key.length <= E; i++) if (s[i] === c0 && starts(s, key, i)) return i;
  return -1;
}

/** A key to look for with seek: its bytes and, per byte value, how far the window may move (Horspool). */
interface Needle {
  length: number;
  bytes: Uint8Array;
  shift: Uint8Array;
  /* the same, for seekBack */
  back: Uint8Array;
}

function needle(key: string): Needle {
  const bytes = Uint8Array.from(key, (c) => c.charCodeAt(0));
  const shift = new Uint8Array(256).fill(bytes.length);
  for (let k = 0; k < bytes.length - 1; k++) shift[bytes[k]] = bytes.length - 1 - k;
  const back = new Uint8Array(256).fill(bytes.length);
  for (let k = bytes.length - 1; k > 0; k--) back[bytes[k]] = k;
  return { length: bytes.length, bytes, shift, back };
}

const SRC_NEEDLE = needle(' SRC=');
const DPT_NEEDLE = needle(' DPT=');

/** Where `n` next stands from `from` on, within the line, or -1; looks at a fraction of the bytes it passes. */
function seek(s: Buffer, from: number, n: Needle): number {
  const m = n.length;
  const last = n.bytes[m - 1];
  for (let p = from + m - 1; p < E; p += n.shift[s[p]]) {
    if (s[p] !== last) continue;
    let k = m - 2;
    while (k >= 0 && s[p - m + 1 + k] === n.bytes[k]) k--;
    if (k < 0) return p - m + 1;
  }
  return -1;
}

/** Where `n` last stands in the line at `from` or later, or -1. */
function seekBack(s: Buffer, from: number, n: Needle): number {
  const m = n.length;
  const first = n.bytes[0];
  for (let p = E - m; p >= from; p -= n.back[s[p]]) {
    if (s[p] !== first) continue;
    let k = 1;
    while (k < m && s[p + k] === n.bytes[k]) k++;
    if (k === m) return p;
  }
  return -1;
}

/** Where the byte `c` next stands from `from` on, within the line, or -1. */
function findByte(s: Buffer, c: number, from: number): number {
  for (let i = from < 0 ? 0 : from; i < E; i++) if (s[i] === c) return i;
  return -1;
}

/** The month of `Jan`..`Dec` at `i`, or undefined. */
const monthAt = (s: Buffer, i: number) => MONTHS.get((ch(s, i) << 16) | (ch(s, i + 1) << 8) | ch(s, i + 2));

/**
 * A canonical dotted quad from `i` to `end` (no leading zeros, each part at most 255), as an
 * unsigned integer, or -1: the rule of canonicalIPv4, read from bytes.
 */
function ipv4At(s: Buffer, i: number, end: number): number {
  if (end - i < 7 || end - i > 15) return -1;
  let n = 0;
  let parts = 0;
  let value = 0;
  let digits = 0;
  for (let j = i; j <= end; j++) {
    const c = j < end ? s[j] : 46;
    if (c >= 48 && c <= 57) {
      if (digits > 0 && value === 0) return -1;
      value = value * 10 + (c - 48);
      if (value > 255) return -1;
      digits++;
    } else if (c === 46) {
      if (digits === 0) return -1;
      n = n * 256 + value;
      parts++;
      value = 0;
      digits = 0;
    } else {
      return -1;
    }
  }
  return parts === 4 ? n : -1;
}
const isDigit = (c: number) => c >= 48 && c <= 57;
const isHex = (c: number) => isDigit(c) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
/* The names the kernel accepts are wider, but these are the names hosts use; a name with shell
 * characters is refused, not carried on to logs and filters. */
const isNameChar = (c: number) =>
  isDigit(c) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 45 || c === 46 || c === 95 || c === 64;

/** End of a run of 1..`max` decimal digits at `i`, or -1. */
function decEnd(s: Buffer, i: number, max: number): number {
  let j = i;
  /* past the end charCodeAt is NaN, which is no digit */
  while (j - i <= max && isDigit(ch(s, j))) j++;
  return j === i || j - i > max ? -1 : j;
}

/** End of a run of `min`..`max` hex digits at `i`, or -1. */
function hexEnd(s: Buffer, i: number, min: number, max: number): number {
  let j = i;
  while (j < E && j - i <= max && isHex(ch(s, j))) j++;
  return j - i < min || j - i > max ? -1 : j;
}

/** Value of the decimal digits from `i` to `end`. */
function decValue(s: Buffer, i: number, end: number): number {
  let v = 0;
  for (let k = i; k < end; k++) v = v * 10 + (ch(s, k) - 48);
  return v;
}

/** End of an interface name (0..15 name characters) at `i`. */
function nameEnd(s: Buffer, i: number): number {
  let j = i;
  while (j < E && isNameChar(ch(s, j))) j++;
  return j - i > 15 ? -1 : j;
}

/** After `key` and a decimal value at `i`, followed by a separator: the index past it, or -1. */
function decField(s: Buffer, i: number, key: string, max: number): number {
  if (!starts(s, key, i)) return -1;
  const e = decEnd(s, i + key.length, max);
  return e < 0 ? -1 : sep(s, e);
}

/** After `key` and `min`..`max` hex digits. */
function hexField(s: Buffer, i: number, key: string, min: number, max: number): number {
  if (!starts(s, key, i)) return -1;
  const e = hexEnd(s, i + key.length, min, max);
  return e < 0 ? -1 : sep(s, e);
}

/**
 * Past the space the kernel prints after every field. The very last one may be gone (journald
 * strips trailing white space), so the end of the line also separates.
 */
function sep(s: Buffer, i: number): number {
  if (i === E) return i;
  return ch(s, i) === SP ? i + 1 : -1;
}

/** `aa:bb:cc:dd:ee:ff` (six bytes) at `i`, then a space. */
function macField(s: Buffer, i: number, key: string): number {
  if (!starts(s, key, i)) return -1;
  let j = i + key.length;
  for (let b = 0; b < 6; b++) {
    if (b > 0 && ch(s, j++) !== 58 /* : */) return -1;
    if (!isHex(ch(s, j)) || !isHex(ch(s, j + 1))) return -1;
    j += 2;
  }
  return sep(s, j);
}

/** `OPT (` upper-case hex bytes `) `, as the kernel dumps IPv4 and TCP options. */
function optBytes(s: Buffer, i: number): number {
  if (!starts(s, 'OPT (', i)) return -1;
  const e = hexEnd(s, i + 5, 2, 80);
  if (e < 0 || (e - i - 5) % 2 !== 0 || ch(s, e) !== 41 /* ) */) return -1;
  return sep(s, e + 1);
}

/** The link-layer part the kernel prints for packets that came in on an interface. */
function macPart(s: Buffer, i: number): number {
  if (starts(s, 'MACSRC=', i)) {
    /* log flags ether (nft) / --log-macdecode (iptables) on an Ethernet device */
    let j = macField(s, i, 'MACSRC=');
    if (j >= 0) j = macField(s, j, 'MACDST=');
    if (j >= 0 && starts(s, 'VPROTO=', j)) {
      j = hexField(s, j, 'VPROTO=', 4, 4);
      if (j >= 0) j = decField(s, j, 'VID=', 4);
    }
    return j >= 0 ? hexField(s, j, 'MACPROTO=', 4, 4) : -1;
  }
  if (!starts(s, 'MAC=', i)) return i; /* decoding asked for, but no link header */
  let j = i + 4;
  /* the device's whole hard header, `aa:bb:...`; none at all on devices without one (tun) */
  if (isHex(ch(s, j))) {
    for (let n = 0; ; n++) {
      if (n >= 128 || !isHex(ch(s, j)) || !isHex(ch(s, j + 1))) return -1;
      if (ch(s, j + 2) !== 58 /* : */) {
        j += 2;
        break;
      }
      j += 3;
    }
  }
  if (starts(s, ' TUNNEL=', j)) {
    /* sit tunnels: the outer IPv4 addresses */
    const arrow = find(s, '->', j + 8);
    if (arrow < 0 || arrow - j > 24) return -1;
    const end = findByte(s, SP, arrow);
    const last = end < 0 ? E : end;
    if (ipv4At(s, j + 8, arrow) < 0 || ipv4At(s, arrow + 2, last) < 0) return -1;
    j = last;
  }
  return sep(s, j);
}

/** The fields after the ports: `UID= GID=` (log flags skuid / --log-uid) and `MARK=`. */
function trailer(s: Buffer, i: number): number {
  let j = i;
  if (starts(s, 'UID=', j)) {
    j = decField(s, j, 'UID=', 10);
    if (j >= 0) j = decField(s, j, 'GID=', 10);
    if (j < 0) return -1;
  }
  if (starts(s, 'MARK=0x', j)) j = hexField(s, j, 'MARK=0x', 1, 8);
  return j;
}

interface Ports {
  sport: number;
  dport: number;
  flags: number;
}

/* By rank; AE (accurate ECN) has no bit in TCP_FLAGS: no filter asks for it, but the kernel prints it. */
const FLAG_WORDS = ['', 'AE ', 'CWR ', 'ECE ', 'URG ', 'ACK ', 'PSH ', 'RST ', 'SYN ', 'FIN '];

/** An optional `PHYSIN=name ` / `PHYSOUT=name `. */
function physField(s: Buffer, i: number, key: string): number {
  if (!starts(s, key, i)) return i;
  const e = nameEnd(s, i + key.length);
  return e <= i + key.length ? -1 : sep(s, e);
}

/** A line whose fields the parser wrote into its fields object and offsets. */
const PACKET = 'packet';
const PROTO_TCP = 0;
const PROTO_UDP = 1;
type Outcome = LineVerdict | typeof PACKET;

/** Interface names seen, kept as strings so that a line costs none. */
const MAX_NAMES = 64;

export class LogLineParser {
  private readonly prefixes: { configured: string; bare: Uint8Array }[];
  private readonly bootTimeMs: number;
  private readonly kmsgTime: ((usec: number) => number) | null;
  private readonly now: () => number;
  private readonly timeZone: string | undefined;
  private readonly envelopeOnly: boolean;
  /* Busy logs repeat the same second for many lines: remember the last stamp parsed (its bytes). */
  private readonly lastStamp = Buffer.alloc(64);
  private lastStampLength = -1;
  private lastStampMs = 0;
  private sameSecondMs = 0;
  /* In envelope-only mode, the last kernel message found (only `scan`'s prefix census asks). */
  private envelopeText: string | null = null;
  /* Scratch for the ports of the line being parsed (no object per line). */
  private readonly ports: Ports = { sport: 0, dport: 0, flags: 0 };
  /* What the last packet line held, beyond the fields: where its text fields are, for `parse`. */
  private fields: PacketFields = packetFields();
  private prefix = '';
  private lastDst4 = -1;
  private lastDst = '';
  private readonly names: { bytes: Buffer; name: string }[] = [];
  private gate: KnockGate | null = null;
  /** Did the last line given to parseBytes have a kernel envelope (whatever its message)? Lines of other programs do not. */
  kernelLine = false;

  constructor(options: ParserOptions) {
    this.prefixes = options.prefixes.map((p) => ({ configured: p, bare: Buffer.from(p.trimEnd(), 'latin1') }));
    this.bootTimeMs = options.bootTimeMs ?? 0;
    this.kmsgTime = options.kmsgTime ?? null;
    this.now = options.now ?? Date.now;
    this.timeZone = options.timeZone;
    this.envelopeOnly = options.envelopeOnly ?? false;
  }

  /** In envelope-only mode: the kernel's message in `line` (any format, journald's too), or null if it has none. */
  kernelMessage(line: string): string | null {
    this.envelopeText = null;
    return this.parse(line) === 'ignored' ? this.envelopeText : null;
  }

  /** One line as text (latin1: one character a byte): the packet event with all its fields. */
  parse(line: string): PacketEvent | LineVerdict {
    this.gate = null;
    const r = line.charCodeAt(0) === 123 /* { */ ? this.parseJournalJson(line) : this.parseLine(Buffer.from(line, 'latin1'), 0, line.length);
    return r === PACKET ? this.event() : r;
  }

  /**
   * One line given as bytes (`buf[start, end)`): what knock tracking reads of it, written into
   * `out`, which is returned; or what else the line is.
   */
  parseBytes(buf: Buffer, start: number, end: number, out: PacketFields, gate: KnockGate | null = null): PacketFields | LineVerdict {
    this.fields = out;
    this.gate = gate;
    this.kernelLine = false;
    if (end > start && buf[start] === 123 /* { */) {
      const r = this.parseJournalJson(buf.toString('latin1', start, end));
      return r === PACKET ? out : r;
    }
    const r = this.parseLine(buf, start, end);
    return r === PACKET ? out : r;
  }

  private parseLine(line: Buffer, start: number, end: number): Outcome {
    S = start;
    E = end;
    if (E === S) return 'other';
    if (ch(line, S) === 60 /* < */) return this.parsePri(line);
    return this.parseAt(line, S);
  }

  /** The last packet line as an event, with its text fields. */
  private event(): PacketEvent {
    const f = this.fields;
    return {
      time: f.time,
      src: f.family === 4 ? intToIPv4(f.v4) : f.v6,
      family: f.family,
      dst: f.dst,
      proto: f.proto === 1 ? 'udp' : 'tcp',
      sport: this.ports.sport,
      dport: f.dport,
      flags: f.flags,
      iface: f.iface,
      out: f.out,
      prefix: this.prefix,
    };
  }

  /** An interface name as a string, the same string each time it comes again. */
  private name(s: Buffer, at: number, end: number): string {
    const names = this.names;
    for (let k = 0; k < names.length; k++) {
      const b = names[k].bytes;
      if (b.length !== end - at) continue;
      let same = true;
      for (let j = 0; j < b.length && same; j++) same = b[j] === s[at + j];
      if (same) return names[k].name;
    }
    const entry = { bytes: Buffer.from(s.subarray(at, end)), name: s.toString('latin1', at, end) };
    /* a log full of made-up names must not grow this: the oldest goes */
    if (names.length >= MAX_NAMES) names.shift();
    names.push(entry);
    return entry.name;
  }

  private sameStamp(s: Buffer, a: number, b: number, c: number, d: number): boolean {
    if (this.lastStampLength !== b - a + d - c) return false;
    const t = this.lastStamp;
    for (let k = a; k < b; k++) if (t[k - a] !== s[k]) return false;
    for (let k = c, o = b - a; k < d; k++, o++) if (t[o] !== s[k]) return false;
    return true;
  }

  /** Remembers the stamp `s[a, b) + s[c, d)` (at most 64 bytes) as meaning `ms`. */
  private keepStamp(s: Buffer, a: number, b: number, c: number, d: number, ms: number): void {
    if (b - a + d - c > this.lastStamp.length) {
      this.lastStampLength = -1;
      return;
    }
    s.copy(this.lastStamp, 0, a, b);
    s.copy(this.lastStamp, b - a, c, d);
    this.lastStampLength = b - a + d - c;
    this.lastStampMs = ms;
  }

  /** Any format but journald's, from `at` (past a `<PRI>`). */
  private parseAt(line: Buffer, at: number): Outcome {
    const c = ch(line, at);
    if (isDigit(c)) {
      if (ch(line, at + 4) === 45 /* 2026- */) return this.parseRfc3339(line, at);
      return at === S ? this.parseKmsg(line) : 'other';
    }
    if (c === 91 /* [ */) return this.parseDmesg(line, at);
    if (c === 107 /* k */ && at === S) return this.parseDmesgLevel(line);
    return this.parseTraditional(line, at);
  }

  /** `<PRI>` written by relays and `dmesg -r`: the facility must be the kernel's (0). */
  private parsePri(line: Buffer): Outcome {
    const end = decEnd(line, S + 1, 3);
    if (end < 0 || ch(line, end) !== 62 /* > */) return 'other';
    if (decValue(line, S + 1, end) > 7) return 'other';
    const at = end + 1;
    if (ch(line, at) === 49 /* 1 */ && ch(line, at + 1) === SP) return this.parseRfc5424(line, at + 2);
    return this.parseAt(line, at);
  }

  /**
   * Where the kernel message begins after the host name in a syslog line: `host kernel: `, then
   * an optional `[ uptime]` stamp; -1 if the line is not tagged as the kernel's.
   */
  private kernelMessageStart(line: Buffer, hostAt: number): number {
    const hostEnd = findByte(line, SP, hostAt);
    if (hostEnd <= hostAt || hostEnd - hostAt > 255) return -1;
    let at = hostEnd + 1;
    /* busybox syslogd (OpenWrt) names the facility and level between host and tag */
    if (!startsBytes(line, KERNEL_TAG_BYTES, at) && startsBytes(line, KERN_DOT, at)) {
      const end = findByte(line, SP, at);
      if (end < 0 || end - at > 12) return -1;
      at = end + 1;
    }
    if (!startsBytes(line, KERNEL_TAG_BYTES, at)) return -1;
    return skipUptime(line, at + KERNEL_TAG_BYTES.length);
  }

  /** `Nov 24 00:17:59 host kernel: [  325.48] MSG` (day padded with a space or not, seconds with a fraction or not). */
  private parseTraditional(line: Buffer, at: number): Outcome {
    /* OpenWrt's logread writes `Mon Nov 24 00:17:59 2026 kern.warn kernel: MSG` */
    if (ch(line, at + 3) === SP && monthAt(line, at + 4) !== undefined) return this.parseLongDate(line, at);
    const month = monthAt(line, at);
    if (month === undefined || ch(line, at + 3) !== SP) return 'other';
    let i = at + 4;
    if (ch(line, i) === SP) i++;
    const dayEnd = decEnd(line, i, 2);
    if (dayEnd < 0 || ch(line, dayEnd) !== SP) return 'other';
    const day = decValue(line, i, dayEnd);
    const clock = readClock(line, dayEnd + 1);
    if (clock === null) return 'other';
    const msgAt = this.kernelMessageStart(line, clock.end + 1);
    if (msgAt < 0) return 'other';
    if (!this.sameStamp(line, at, clock.secondsEnd, 0, 0)) {
      const t = this.localTime(null, month, day, clock.h, clock.m, clock.s);
      if (t === null) return 'other';
      this.keepStamp(line, at, clock.secondsEnd, 0, 0, t);
    }
    return this.parseMessage(line, msgAt, this.lastStampMs + clock.fractionMs);
  }

  /** `Mon Nov 24 00:17:59 2026 kern.warn kernel: ` (busybox logread: a year, no host, the facility named). */
  private parseLongDate(line: Buffer, at: number): Outcome {
    const date = readLongDate(line, at);
    if (date === null) return 'other';
    const t = this.localTime(date.year, date.month, date.day, date.h, date.m, date.s);
    if (t === null) return 'other';
    if (!starts(line, 'kern.', date.end)) return 'other';
    const end = findByte(line, SP, date.end);
    if (end < 0 || end - date.end > 12 || !starts(line, KERNEL_TAG, end + 1)) return 'other';
    return this.parseMessage(line, skipUptime(line, end + 1 + KERNEL_TAG.length), t);
  }

  /** `2026-11-24T00:17:59.282475+00:00 host kernel: MSG` (also journalctl's `+0000`). */
  private parseRfc3339(line: Buffer, at: number): Outcome {
    const same = this.sameSecond(line, at);
    if (same >= 0) {
      const msgAt = this.kernelMessageStart(line, same + 1);
      return msgAt < 0 ? 'other' : this.parseMessage(line, msgAt, this.sameSecondMs);
    }
    const space = findByte(line, SP, at);
    if (space - at < 20 || space - at > 40) return 'other';
    const msgAt = this.kernelMessageStart(line, space + 1);
    if (msgAt < 0) return 'other';
    const time = this.rfc3339Time(line, at, space);
    return time === null ? 'other' : this.parseMessage(line, msgAt, time);
  }

  /**
   * `<4>1 2026-11-25T09:22:55.071334+00:00 host kernel - - - MSG` (RFC 5424, as rsyslog's
   * RSYSLOG_SyslogProtocol23Format writes it); `at` is past the version.
   */
  private parseRfc5424(line: Buffer, at: number): Outcome {
    const stampEnd = findByte(line, SP, at);
    if (stampEnd - at < 20 || stampEnd - at > 40) return 'other';
    const hostEnd = findByte(line, SP, stampEnd + 1);
    if (hostEnd <= stampEnd + 1 || hostEnd - stampEnd > 256) return 'other';
    if (!starts(line, 'kernel ', hostEnd + 1)) return 'other';
    let i = hostEnd + 8;
    /* PROCID and MSGID: nil or a token */
    for (let n = 0; n < 2; n++) {
      const end = findByte(line, SP, i);
      if (end <= i || end - i > 128) return 'other';
      i = end + 1;
    }
    i = skipStructuredData(line, i);
    if (i < 0) return 'other';
    if (starts(line, '\u00ef\u00bb\u00bf', i)) i += 3; /* the UTF-8 BOM, read as latin1 */
    const time = this.rfc3339Time(line, at, stampEnd);
    return time === null ? 'other' : this.parseMessage(line, skipUptime(line, i), time);
  }

  /**
   * Busy logs stamp many lines in one second: when the stamp at `at` is the last one parsed but
   * for its fraction, the index of the space after it (its time in sameSecondMs), in one pass;
   * else -1 (rfc3339Time reads it). A stamp equal to one Date.parse read holds no space.
   */
  private sameSecond(line: Buffer, at: number): number {
    const n = this.lastStampLength;
    const t = this.lastStamp;
    if (n < 20 || at + n >= E) return -1;
    for (let k = 0; k < 19; k++) if (line[at + k] !== t[k]) return -1;
    let z = at + 19;
    let fractionMs = 0;
    if (line[z] === 46 /* . */) {
      z++;
      let scale = 100;
      for (; z < E; z++) {
        const c = line[z];
        if (c < 48 || c > 57) break;
        fractionMs += (c - 48) * scale;
        scale /= 10;
      }
    }
    const space = z + n - 19;
    if (space >= E || space - at > 40 || line[space] !== SP) return -1;
    for (let k = 19; k < n; k++) if (line[z + k - 19] !== t[k]) return -1;
    this.sameSecondMs = this.lastStampMs + Math.floor(fractionMs);
    return space;
  }

  /**
   * Every line has a new fraction of a second, so Date.parse runs once per second and zone
   * (`2026-11-24T00:17:59` + `+00:00`), and the fraction is added by hand.
   */
  private rfc3339Time(line: Buffer, at: number, end: number): number | null {
    if (ch(line, at + 10) !== 84 /* T */ || end - at < 20) return null;
    let zoneAt = at + 19;
    let fractionMs = 0;
    if (ch(line, zoneAt) === 46 /* . */) {
      zoneAt++;
      let scale = 100;
      while (zoneAt < end && isDigit(ch(line, zoneAt))) {
        fractionMs += (ch(line, zoneAt) - 48) * scale;
        scale /= 10;
        zoneAt++;
      }
      fractionMs = Math.floor(fractionMs);
    }
    if (!this.sameStamp(line, at, at + 19, zoneAt, end)) {
      const t = Date.parse(line.toString('latin1', at, at + 19) + line.toString('latin1', zoneAt, end));
      if (!Number.isFinite(t)) return null;
      this.keepStamp(line, at, at + 19, zoneAt, end, t);
    }
    return this.lastStampMs + fractionMs;
  }

  /** `4,353,339018201,-;MSG`: priority, sequence, microseconds since boot, flags (and more); then the message. */
  private parseKmsg(line: Buffer): Outcome {
    const prioEnd = decEnd(line, S, 3);
    /* Facility 0 is the kernel: a record a process wrote into /dev/kmsg has another one. */
    if (prioEnd < 0 || ch(line, prioEnd) !== 44 || decValue(line, S, prioEnd) > 7) return 'other';
    const seqEnd = decEnd(line, prioEnd + 1, 20);
    if (seqEnd < 0 || ch(line, seqEnd) !== 44) return 'other';
    const usecEnd = decEnd(line, seqEnd + 1, 20);
    if (usecEnd < 0 || ch(line, usecEnd) !== 44) return 'other';
    const semi = findByte(line, 59 /* ; */, usecEnd);
    if (semi < 0 || semi - usecEnd > 64) return 'other';
    const usec = decValue(line, seqEnd + 1, usecEnd);
    return this.parseMessage(line, semi + 1, this.bootTime(usec));
  }

  private bootTime(usec: number): number {
    return this.kmsgTime ? this.kmsgTime(usec) : this.bootTimeMs + Math.floor(usec / 1000);
  }

  /**
   * `dmesg` output: `[ 3988.200761] MSG`, `<4>[ 3988.2] MSG` (`dmesg -r`), `[Tue Nov 24 00:17:59 2026] MSG`
   * (`dmesg -T`), and journalctl's `-o short-monotonic` (`[ 3988.200761] host kernel: MSG`).
   */
  private parseDmesg(line: Buffer, at: number): Outcome {
    const stamp = readUptime(line, at);
    if (stamp !== null) {
      let msgAt = skipCaller(line, stamp.end);
      const hostEnd = findByte(line, SP, msgAt);
      if (hostEnd > msgAt && starts(line, KERNEL_TAG, hostEnd + 1)) msgAt = skipUptime(line, hostEnd + 1 + KERNEL_TAG.length);
      return this.parseMessage(line, msgAt, this.bootTime(stamp.usec));
    }
    const date = readLongDate(line, at + 1);
    if (date === null || ch(line, date.end - 1) !== 93 /* ] */ || ch(line, date.end) !== SP) return 'other';
    const t = this.localTime(date.year, date.month, date.day, date.h, date.m, date.s);
    return t === null ? 'other' : this.parseMessage(line, skipCaller(line, date.end + 1), t);
  }

  /** `dmesg -x`: `kern  :warn  : [ 3988.2] MSG`; only the kern facility. */
  private parseDmesgLevel(line: Buffer): Outcome {
    if (!starts(line, 'kern ', S)) return 'other';
    let i = S + 4;
    while (ch(line, i) === SP && i < S + 8) i++;
    if (ch(line, i) !== 58 /* : */) return 'other';
    const colon = find(line, ': ', i + 1);
    if (colon < 0 || colon - i > 10) return 'other';
    return ch(line, colon + 2) === 91 ? this.parseDmesg(line, colon + 2) : 'other';
  }

  /** One record of `journalctl -o json`: only the kernel's own records (transport kernel, facility kern) count. */
  private parseJournalJson(line: string): Outcome {
    if (line.length > 64 * 1024) return 'other';
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch {
      return 'other';
    }
    if (typeof record !== 'object' || record === null) return 'other';
    const r = record as Record<string, unknown>;
    /* root can write /dev/kmsg: journald files that as transport kernel, but with facility user (1) */
    if (r._TRANSPORT !== 'kernel' || r.SYSLOG_FACILITY !== '0') return 'other';
    let message = r.MESSAGE;
    /* journald sends messages that are not valid UTF-8 as arrays of bytes. */
    if (Array.isArray(message) && message.every((b) => Number.isInteger(b) && b >= 0 && b < 256)) {
      message = Buffer.from(message as number[]).toString('latin1');
    }
    if (typeof message !== 'string') return 'other';
    const usec = Number(r.__REALTIME_TIMESTAMP);
    if (!Number.isFinite(usec)) return 'malformed';
    /* a character beyond latin1 must not turn into the byte it ends in: it is a byte no key has */
    const bytes = Buffer.from(message.replace(/[^\u0000-\u00ff]/g, '\u00ff'), 'latin1');
    S = 0;
    E = bytes.length;
    return this.parseMessage(bytes, 0, Math.floor(usec / 1000));
  }

  /** A wall-clock date without a zone, read in the configured zone; the year is guessed when absent. */
  private localTime(year: number | null, month: number, day: number, h: number, m: number, s: number): number | null {
    if (!(day >= 1 && day <= 31 && h < 24 && m < 60 && s < 61)) return null;
    return wallClockTime({ year, month, day, h, m, s }, this.now(), this.timeZone);
  }

  private parseMessage(line: Buffer, at: number, time: number): Outcome {
    this.kernelLine = true;
    if (this.envelopeOnly) {
      this.envelopeText = line.toString('latin1', at, E);
      return 'ignored';
    }
    let prefix: string | null = null;
    let i = -1;
    for (let k = 0; k < this.prefixes.length; k++) {
      const p = this.prefixes[k];
      if (!startsBytes(line, p.bare, at)) continue;
      let j = at + p.bare.length;
      while (j < E && line[j] === SP) j++;
      if (j + 3 <= E && line[j] === 73 /* I */ && line[j + 1] === 78 /* N */ && line[j + 2] === 61 /* = */) {
        prefix = p.configured;
        i = j;
        break;
      }
    }
    if (prefix === null) return 'other';
    if (E - i > MAX_NETFILTER_LINE) return 'malformed';
    if (this.gate !== null && this.passesOver(line, i, time, this.gate)) {
      this.fields.time = time;
      return 'passedOver';
    }
    return this.parseFields(line, i, time, prefix);
  }

  /**
   * Reads only SRC and DPT of the fields from `IN=` at `i` and asks the gate. Sound for every line
   * the grammar accepts: between `IN=` and the source only names, hex digits, colons and IPv4
   * addresses can stand, so the first ` SRC=` is the source; after it ` DPT=` stands once (an
   * ICMP error quotes its packet after `[`, and nothing after the ports holds it), so the last one
   * in the line, nearer its end, is the port; and the values are read the way parseFields reads
   * them (an IPv6 source is only told apart, not read). Any other shape is left to the grammar.
   */
  private passesOver(s: Buffer, i: number, time: number, gate: KnockGate): boolean {
    const src = seek(s, i + 3, SRC_NEEDLE);
    if (src < 0) return false;
    const at = src + SRC_NEEDLE.length;
    let space = at;
    let colon = false;
    for (; space < E && space - at <= 45; space++) {
      const c = s[space];
      if (c === SP) break;
      if (c === 58 /* : */) colon = true;
    }
    if (space >= E) return false;
    /* as parseFields tells the families apart: a dotted quad, else an address with a colon */
    const v4 = ipv4At(s, at, space);
    if (v4 < 0 && !colon) return false;
    const dpt = seekBack(s, space, DPT_NEEDLE);
    if (dpt < 0) return false;
    const from = dpt + DPT_NEEDLE.length;
    const end = decEnd(s, from, 5);
    if (end < 0) return false;
    const dport = decValue(s, from, end);
    return dport <= 65535 && (v4 >= 0 ? gate.passOver(time, 4, v4, dport) : gate.passOver(time, 6, 0, dport));
  }

  /** The netfilter logger's fields, from `IN=` to the end of the line, in the kernel's order. */
  private parseFields(s: Buffer, start: number, time: number, prefix: string): Outcome {
    const inEnd = nameEnd(s, start + 3);
    let i = inEnd < 0 ? -1 : sep(s, inEnd);
    if (i < 0 || !starts(s, 'OUT=', i)) return 'malformed';
    const outEnd = nameEnd(s, i + 4);
    i = outEnd < 0 ? -1 : sep(s, outEnd);
    if (i < 0) return 'malformed';
    const f = this.fields;
    f.iface = inEnd > start + 3 ? this.name(s, start + 3, inEnd) : '';
    f.out = outEnd > inEnd + 5 ? this.name(s, inEnd + 5, outEnd) : '';
    /* bridge netfilter: the ports of a bridge */
    if (ch(s, i) === 80 /* P */) {
      i = physField(s, i, 'PHYSIN=');
      if (i >= 0) i = physField(s, i, 'PHYSOUT=');
      if (i < 0) return 'malformed';
    }
    /* the link layer is printed for packets that came in on an interface, and only for them */
    if (inEnd > start + 3) i = macPart(s, i);
    if (i < 0) return 'malformed';
    if (starts(s, 'ARP HTYPE=', i)) return 'ignored';
    if (i === E) return 'ignored'; /* neither IPv4 nor IPv6 nor ARP: the link layer only */
    if (!starts(s, 'SRC=', i)) return 'malformed';
    const srcEnd = find(s, ' DST=', i + 4);
    if (srcEnd < 0 || srcEnd - i > 43) return 'malformed';
    const dstEnd = findByte(s, SP, srcEnd + 5);
    if (dstEnd < 0 || dstEnd - srcEnd > 44) return 'malformed';
    /* a source is canonical, not 0.0.0.0, not :: and not v4-mapped (canonicalSource); other
     * well-formed addresses make a genuine line that is no knock */
    const v4 = ipv4At(s, i + 4, srcEnd);
    let v6 = false;
    let source = v4 > 0;
    let valid = v4 >= 0;
    const colon = findByte(s, 58 /* : */, i + 4);
    if (v4 < 0 && colon >= 0 && colon < srcEnd) {
      v6 = true;
      const text = canonicalIPv6(s.toString('latin1', i + 4, srcEnd));
      valid = text !== null;
      source = valid && text !== '::' && !text!.startsWith('::ffff:');
      f.v6 = text ?? '';
    }
    if (v6) {
      const dst = canonicalIPv6(s.toString('latin1', srcEnd + 5, dstEnd));
      if (dst === null) return 'malformed';
      f.dst = dst;
    } else {
      const dst = ipv4At(s, srcEnd + 5, dstEnd);
      if (dst < 0) return 'malformed';
      /* nearly every packet logged on a host is to one of its few addresses */
      if (dst !== this.lastDst4) {
        this.lastDst4 = dst;
        this.lastDst = intToIPv4(dst);
      }
      f.dst = this.lastDst;
    }
    if (!valid) return 'malformed';
    i = dstEnd + 1;
    let fragment = false;
    if (!v6) {
      i = decField(s, i, 'LEN=', 5);
      if (i >= 0) i = hexField(s, i, 'TOS=0x', 2, 2);
      if (i >= 0) i = hexField(s, i, 'PREC=0x', 2, 2);
      if (i >= 0) i = decField(s, i, 'TTL=', 3);
      if (i >= 0) i = decField(s, i, 'ID=', 5);
      if (i < 0) return 'malformed';
      if (starts(s, 'CE ', i)) i += 3;
      if (starts(s, 'DF ', i)) i += 3;
      if (starts(s, 'MF ', i)) i += 3;
      if (starts(s, 'FRAG:', i)) {
        i = decField(s, i, 'FRAG:', 5);
        fragment = true;
      }
      if (i >= 0 && starts(s, 'OPT (', i)) i = optBytes(s, i);
    } else {
      i = decField(s, i, 'LEN=', 6);
      if (i >= 0) i = decField(s, i, 'TC=', 3);
      if (i >= 0) i = decField(s, i, 'HOPLIMIT=', 3);
      if (i >= 0) i = decField(s, i, 'FLOWLBL=', 7);
      while (i >= 0 && i < E && !starts(s, 'PROTO=', i)) {
        const r = ipv6Extension(s, i);
        if (r === END_WITHOUT_PORTS) return fragment ? 'fragment' : 'ignored';
        if (extensionWasFragment) fragment = true;
        i = r;
      }
    }
    if (i < 0) return 'malformed';
    if (i === E) return fragment ? 'fragment' : 'malformed';
    if (!starts(s, 'PROTO=', i)) return fragment ? 'fragment' : 'malformed';
    let proto: number;
    if (starts(s, 'TCP ', i + 6) || (starts(s, 'TCP', i + 6) && i + 9 === E)) proto = PROTO_TCP;
    else if (starts(s, 'UDP ', i + 6) || (starts(s, 'UDP', i + 6) && i + 9 === E)) proto = PROTO_UDP;
    else return 'ignored'; /* ICMP errors quote a second packet, PROTO= and all: never a knock */
    i = sep(s, i + 9);
    if (fragment) {
      i = trailer(s, i);
      return i === E ? 'fragment' : 'malformed';
    }
    if (starts(s, 'INCOMPLETE [', i)) return 'ignored';
    const ports = this.ports;
    i = proto === PROTO_TCP ? tcpHeader(s, i, ports) : udpHeader(s, i, ports);
    if (i === TRUNCATED_OPTIONS) i = E;
    else if (i >= 0) i = trailer(s, i);
    if (i !== E) return 'malformed';
    if (!source) return 'ignored'; /* 0.0.0.0 (DHCP), multicast sources and such: a genuine line, never a knock */
    f.time = time;
    f.family = v6 ? 6 : 4;
    f.v4 = v6 ? 0 : v4;
    if (!v6) f.v6 = '';
    f.proto = proto;
    f.dport = ports.dport;
    f.flags = ports.flags;
    this.prefix = prefix;
    return PACKET;
  }
}

const END_WITHOUT_PORTS = -2;
const TRUNCATED_OPTIONS = -3;
/* Set by ipv6Extension: the header it read was a non-first fragment's (no ports follow). */
let extensionWasFragment = false;

/**
 * One IPv6 extension header as the kernel logs it: `FRAG:1448 INCOMPLETE ID:0000abcd `, or with
 * IP options logged, `OPT ( FRAG:... ) `, `OPT ( ) `, `OPT ( AH SPI=0x1 ) `. Returns the index after
 * it, -1 if it is not one, or END_WITHOUT_PORTS when the kernel stops there.
 */
function ipv6Extension(s: Buffer, i: number): number {
  extensionWasFragment = false;
  let j = i;
  const opt = starts(s, 'OPT ( ', j);
  if (opt) j += 6;
  let fragment = false;
  if (starts(s, 'FRAG:', j)) {
    const e = decEnd(s, j + 5, 5);
    if (e < 0 || ch(s, e) !== SP) return -1;
    fragment = decValue(s, j + 5, e) !== 0;
    j = e + 1;
    if (starts(s, 'INCOMPLETE ', j)) j += 11;
    j = hexField(s, j, 'ID:', 8, 8);
    if (j < 0) return -1;
  } else if (opt && starts(s, 'AH ', j)) {
    j = hexField(s, j + 3, 'SPI=0x', 1, 8);
    if (j < 0) return -1;
  } else if (starts(s, 'Unknown Ext Hdr ', j) || starts(s, 'ESP ', j) || starts(s, ')', j) || starts(s, 'TRUNCATED', j)) {
    if (!starts(s, ') ', j)) return END_WITHOUT_PORTS;
  } else if (!opt) {
    return -1;
  }
  if (opt) {
    if (!starts(s, ') ', j)) return j === E || ch(s, j) === 41 ? END_WITHOUT_PORTS : -1;
    j += 2;
  }
  extensionWasFragment = fragment;
  return j;
}

/** `SPT= DPT= [SEQ= ACK=] WINDOW= RES=0x.. FLAGS URGP= [OPT (..)]` */
function tcpHeader(s: Buffer, i: number, out: Ports): number {
  let j = portsField(s, i, out);
  if (j >= 0 && starts(s, 'SEQ=', j)) {
    j = decField(s, j, 'SEQ=', 10);
    if (j >= 0) j = decField(s, j, 'ACK=', 10);
  }
  if (j >= 0) j = decField(s, j, 'WINDOW=', 5);
  if (j >= 0) j = hexField(s, j, 'RES=0x', 2, 2);
  if (j < 0) return -1;
  let flags = 0;
  /* each flag word at most once, in the kernel's order: AE CWR ECE URG ACK PSH RST SYN FIN */
  let rank = 0;
  for (;;) {
    const c = ch(s, j);
    let r = 0;
    let bit = 0;
    let len = 4;
    if (c === 85 /* U */) {
      if (ch(s, j + 3) === 80 /* URGP= */) break;
      r = 4;
      bit = TCP_FLAGS.URG;
    } else if (c === 83 /* S */) { r = 8; bit = TCP_FLAGS.SYN; }
    else if (c === 65 /* A */) {
      if (ch(s, j + 1) === 69 /* AE */) { r = 1; bit = 0; len = 3; }
      else { r = 5; bit = TCP_FLAGS.ACK; }
    } else if (c === 70 /* F */) { r = 9; bit = TCP_FLAGS.FIN; }
    else if (c === 82 /* R */) { r = 7; bit = TCP_FLAGS.RST; }
    else if (c === 80 /* P */) { r = 6; bit = TCP_FLAGS.PSH; }
    else if (c === 69 /* E */) { r = 3; bit = TCP_FLAGS.ECE; }
    else if (c === 67 /* C */) { r = 2; bit = TCP_FLAGS.CWR; }
    if (r <= rank || !starts(s, FLAG_WORDS[r], j)) return -1;
    rank = r;
    flags |= bit;
    j += len;
  }
  out.flags = flags;
  j = decField(s, j, 'URGP=', 5);
  if (j >= 0 && starts(s, 'OPT (', j)) {
    if (starts(s, 'OPT (TRUNCATED)', j)) return j + 15 === E ? TRUNCATED_OPTIONS : -1;
    j = optBytes(s, j);
  }
  return j;
}

/** `SPT= DPT= LEN=` */
function udpHeader(s: Buffer, i: number, out: Ports): number {
  out.flags = 0;
  const j = portsField(s, i, out);
  return j < 0 ? -1 : decField(s, j, 'LEN=', 5);
}

/** `SPT= DPT= `, into `out`. */
function portsField(s: Buffer, i: number, out: Ports): number {
  if (!starts(s, 'SPT=', i)) return -1;
  const spt = decEnd(s, i + 4, 5);
  if (spt < 0 || !starts(s, ' DPT=', spt)) return -1;
  const dpt = decEnd(s, spt + 5, 5);
  if (dpt < 0) return -1;
  out.sport = decValue(s, i + 4, spt);
  out.dport = decValue(s, spt + 5, dpt);
  return out.sport > 65535 || out.dport > 65535 ? -1 : sep(s, dpt);
}

/** Past a `[  325.484838] ` uptime stamp (and a `[T123] ` caller id) at `i`, if there is one. */
function skipUptime(line: Buffer, i: number): number {
  if (ch(line, i) !== 91) return i;
  let j = i + 1;
  while (ch(line, j) === SP && j - i < 14) j++;
  const secEnd = decEnd(line, j, 10);
  if (secEnd < 0 || ch(line, secEnd) !== 46 /* . */) return i;
  const fracEnd = decEnd(line, secEnd + 1, 9);
  if (fracEnd < 0 || ch(line, fracEnd) !== 93 /* ] */) return i;
  return skipCaller(line, ch(line, fracEnd + 1) === SP ? fracEnd + 2 : fracEnd + 1);
}

/** `[  325.484838] `: microseconds since boot, and the index after the space. */
function readUptime(line: Buffer, i: number): { usec: number; end: number } | null {
  let j = i + 1;
  while (ch(line, j) === SP && j - i < 14) j++;
  const secEnd = decEnd(line, j, 10);
  if (secEnd < 0 || ch(line, secEnd) !== 46 /* . */) return null;
  const fracEnd = decEnd(line, secEnd + 1, 9);
  if (fracEnd < 0 || ch(line, fracEnd) !== 93 /* ] */) return null;
  const end = ch(line, fracEnd + 1) === SP ? fracEnd + 2 : fracEnd + 1;
  let frac = 0;
  for (let k = 0; k < 6; k++) frac = frac * 10 + (secEnd + 1 + k < fracEnd ? ch(line, secEnd + 1 + k) - 48 : 0);
  return { usec: decValue(line, j, secEnd) * 1e6 + frac, end };
}

/** Past `[    T123] ` or `[  C1] ` (CONFIG_PRINTK_CALLER), if there. */
function skipCaller(line: Buffer, i: number): number {
  if (ch(line, i) !== 91) return i;
  let j = i + 1;
  while (ch(line, j) === SP && j - i < 10) j++;
  const c = ch(line, j);
  if (c !== 84 && c !== 67) return i;
  const e = decEnd(line, j + 1, 10);
  return e > 0 && ch(line, e) === 93 && ch(line, e + 1) === SP ? e + 2 : i;
}

/** `hh:mm:ss` with an optional fraction, then a space. */
function readClock(line: Buffer, i: number): { h: number; m: number; s: number; fractionMs: number; secondsEnd: number; end: number } | null {
  if (ch(line, i + 2) !== 58 || ch(line, i + 5) !== 58) return null;
  for (const k of [0, 1, 3, 4, 6, 7]) if (!isDigit(ch(line, i + k))) return null;
  let end = i + 8;
  let fractionMs = 0;
  if (ch(line, end) === 46) {
    const e = decEnd(line, end + 1, 9);
    if (e < 0) return null;
    /* the same double as Number('0.' + digits): both are the correctly rounded quotient */
    fractionMs = Math.floor((decValue(line, end + 1, e) / 10 ** (e - end - 1)) * 1000);
    end = e;
  }
  if (ch(line, end) !== SP) return null;
  return {
    h: decValue(line, i, i + 2),
    m: decValue(line, i + 3, i + 5),
    s: decValue(line, i + 6, i + 8),
    fractionMs,
    secondsEnd: i + 8,
    end,
  };
}

/** `Mon Nov 24 00:17:59 2026` (ctime, as OpenWrt's logread and `dmesg -T` print it); `end` is past the year and one more character. */
function readLongDate(line: Buffer, i: number) {
  const month = monthAt(line, i + 4);
  if (month === undefined || ch(line, i + 3) !== SP || ch(line, i + 7) !== SP) return null;
  let j = i + 8;
  if (ch(line, j) === SP) j++;
  const dayEnd = decEnd(line, j, 2);
  if (dayEnd < 0 || ch(line, dayEnd) !== SP) return null;
  const clock = readClock(line, dayEnd + 1);
  if (clock === null || clock.fractionMs !== 0) return null;
  const yearEnd = decEnd(line, clock.end + 1, 4);
  if (yearEnd !== clock.end + 5) return null;
  return {
    year: decValue(line, clock.end + 1, yearEnd),
    month,
    day: decValue(line, j, dayEnd),
    h: clock.h,
    m: clock.m,
    s: clock.s,
    end: yearEnd + 1,
  };
}

/** Past RFC 5424 STRUCTURED-DATA (`-` or `[id k="v"]...`) and the space after it, or -1. */
function skipStructuredData(line: Buffer, i: number): number {
  if (starts(line, '- ', i)) return i + 2;
  let j = i;
  while (ch(line, j) === 91) {
    let quoted = false;
    for (j++; ; j++) {
      if (j >= E || j - i > 4096) return -1;
      const c = ch(line, j);
      if (quoted && c === 92 /* \ */) j++;
      else if (c === 34) quoted = !quoted;
      else if (c === 93 && !quoted) break;
    }
    j++;
  }
  return j > i && ch(line, j) === SP ? j + 1 : -1;
}

/** Does `buf[start, end)` hold ` SRC=`, as every netfilter LOG line does (netfilterPrefixOf needs it too)? Costs no object. */
export function hasSourceField(buf: Buffer, start: number, end: number): boolean {
  E = end;
  return seek(buf, start, SRC_NEEDLE) >= 0;
}

/** The kernel's message in a line of any format, or null: for tools that look at lines without parsing them as knocks (the prefix census). */
export function kernelMessageOf(line: string): string | null {
  return envelopeProbe.kernelMessage(line);
}

/** Is this a syslog line written with the kernel's tag (by the kernel, or by someone forging it)? */
export function isSyslogKernelLine(line: string): boolean {
  return envelopeProbe.parse(line) === 'ignored';
}

/* Reads only the envelope: says 'ignored' for every line the kernel's tag or facility marks as its own. */
const envelopeProbe = new LogLineParser({ prefixes: [], envelopeOnly: true });
