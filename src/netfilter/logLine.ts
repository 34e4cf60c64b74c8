/**
 * From one kernel log line (in any of the formats a log source yields) to a packet event.
 * Pure: no I/O, no clock except what the caller passes.
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
import { canonicalIPv4, canonicalIPv6, canonicalSource } from '../model/address';
import { PacketEvent, Protocol, TCP_FLAGS } from '../model/packet';
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
  | 'fragment';

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

const MONTHS: Record<string, number> = {
  Jan: 0, Feb: 1, Mar: 2, Apr: 3, May: 4, Jun: 5, Jul: 6, Aug: 7, Sep: 8, Oct: 9, Nov: 10, Dec: 11,
};
const KERNEL_TAG = 'kernel: ';

const SP = 32;
const isDigit = (c: number) => c >= 48 && c <= 57;
const isHex = (c: number) => isDigit(c) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
/* The names the kernel accepts are wider, but these are the names hosts use; a name with shell
 * characters is refused, not carried on to logs and filters. */
const isNameChar = (c: number) =>
  isDigit(c) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 45 || c === 46 || c === 95 || c === 64;

/** End of a run of 1..`max` decimal digits at `i`, or -1. */
function decEnd(s: string, i: number, max: number): number {
  let j = i;
  /* past the end charCodeAt is NaN, which is no digit */
  while (j - i <= max && isDigit(s.charCodeAt(j))) j++;
  return j === i || j - i > max ? -1 : j;
}

/** End of a run of `min`..`max` hex digits at `i`, or -1. */
function hexEnd(s: string, i: number, min: number, max: number): number {
  let j = i;
  while (j < s.length && j - i <= max && isHex(s.charCodeAt(j))) j++;
  return j - i < min || j - i > max ? -1 : j;
}

/** Value of the decimal digits from `i` to `end`. */
function decValue(s: string, i: number, end: number): number {
  let v = 0;
  for (let k = i; k < end; k++) v = v * 10 + (s.charCodeAt(k) - 48);
  return v;
}

/** End of an interface name (0..15 name characters) at `i`. */
function nameEnd(s: string, i: number): number {
  let j = i;
  while (j < s.length && isNameChar(s.charCodeAt(j))) j++;
  return j - i > 15 ? -1 : j;
}

/** After `key` and a decimal value at `i`, followed by a separator: the index past it, or -1. */
function decField(s: string, i: number, key: string, max: number): number {
  if (!s.startsWith(key, i)) return -1;
  const e = decEnd(s, i + key.length, max);
  return e < 0 ? -1 : sep(s, e);
}

/** After `key` and `min`..`max` hex digits. */
function hexField(s: string, i: number, key: string, min: number, max: number): number {
  if (!s.startsWith(key, i)) return -1;
  const e = hexEnd(s, i + key.length, min, max);
  return e < 0 ? -1 : sep(s, e);
}

/**
 * Past the space the kernel prints after every field. The very last one may be gone (journald
 * strips trailing white space), so the end of the line also separates.
 */
function sep(s: string, i: number): number {
  if (i === s.length) return i;
  return s.charCodeAt(i) === SP ? i + 1 : -1;
}

/** `aa:bb:cc:dd:ee:ff` (six bytes) at `i`, then a space. */
function macField(s: string, i: number, key: string): number {
  if (!s.startsWith(key, i)) return -1;
  let j = i + key.length;
  for (let b = 0; b < 6; b++) {
    if (b > 0 && s.charCodeAt(j++) !== 58 /* : */) return -1;
    if (!isHex(s.charCodeAt(j)) || !isHex(s.charCodeAt(j + 1))) return -1;
    j += 2;
  }
  return sep(s, j);
}

/** `OPT (` upper-case hex bytes `) `, as the kernel dumps IPv4 and TCP options. */
function optBytes(s: string, i: number): number {
  if (!s.startsWith('OPT (', i)) return -1;
  const e = hexEnd(s, i + 5, 2, 80);
  if (e < 0 || (e - i - 5) % 2 !== 0 || s.charCodeAt(e) !== 41 /* ) */) return -1;
  return sep(s, e + 1);
}

/** The link-layer part the kernel prints for packets that came in on an interface. */
function macPart(s: string, i: number): number {
  if (s.startsWith('MACSRC=', i)) {
    /* log flags ether (nft) / --log-macdecode (iptables) on an Ethernet device */
    let j = macField(s, i, 'MACSRC=');
    if (j >= 0) j = macField(s, j, 'MACDST=');
    if (j >= 0 && s.startsWith('VPROTO=', j)) {
      j = hexField(s, j, 'VPROTO=', 4, 4);
      if (j >= 0) j = decField(s, j, 'VID=', 4);
    }
    return j >= 0 ? hexField(s, j, 'MACPROTO=', 4, 4) : -1;
  }
  if (!s.startsWith('MAC=', i)) return i; /* decoding asked for, but no link header */
  let j = i + 4;
  /* the device's whole hard header, `aa:bb:...`; none at all on devices without one (tun) */
  if (isHex(s.charCodeAt(j))) {
    for (let n = 0; ; n++) {
      if (n >= 128 || !isHex(s.charCodeAt(j)) || !isHex(s.charCodeAt(j + 1))) return -1;
      if (s.charCodeAt(j + 2) !== 58 /* : */) {
        j += 2;
        break;
      }
      j += 3;
    }
  }
  if (s.startsWith(' TUNNEL=', j)) {
    /* sit tunnels: the outer IPv4 addresses */
    const arrow = s.indexOf('->', j + 8);
    if (arrow < 0 || arrow - j > 24) return -1;
    const end = s.indexOf(' ', arrow);
    const last = end < 0 ? s.length : end;
    if (!canonicalIPv4(s.slice(j + 8, arrow)) || !canonicalIPv4(s.slice(arrow + 2, last))) return -1;
    j = last;
  }
  return sep(s, j);
}

/** The fields after the ports: `UID= GID=` (log flags skuid / --log-uid) and `MARK=`. */
function trailer(s: string, i: number): number {
  let j = i;
  if (s.startsWith('UID=', j)) {
    j = decField(s, j, 'UID=', 10);
    if (j >= 0) j = decField(s, j, 'GID=', 10);
    if (j < 0) return -1;
  }
  if (s.startsWith('MARK=0x', j)) j = hexField(s, j, 'MARK=0x', 1, 8);
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
function physField(s: string, i: number, key: string): number {
  if (!s.startsWith(key, i)) return i;
  const e = nameEnd(s, i + key.length);
  return e <= i + key.length ? -1 : sep(s, e);
}

export class LogLineParser {
  private readonly prefixes: { configured: string; bare: string }[];
  private readonly bootTimeMs: number;
  private readonly kmsgTime: ((usec: number) => number) | null;
  private readonly now: () => number;
  private readonly timeZone: string | undefined;
  private readonly envelopeOnly: boolean;
  /* Busy logs repeat the same second for many lines: remember the last stamp parsed. */
  private lastStamp = '';
  private lastStampMs = 0;
  /* In envelope-only mode, where the last kernel message was found (no object per line). */
  private envelopeText = '';
  private envelopeAt = -1;
  /* Scratch for the ports of the line being parsed (no object per line). */
  private readonly ports: Ports = { sport: 0, dport: 0, flags: 0 };

  constructor(options: ParserOptions) {
    this.prefixes = options.prefixes.map((p) => ({ configured: p, bare: p.trimEnd() }));
    this.bootTimeMs = options.bootTimeMs ?? 0;
    this.kmsgTime = options.kmsgTime ?? null;
    this.now = options.now ?? Date.now;
    this.timeZone = options.timeZone;
    this.envelopeOnly = options.envelopeOnly ?? false;
  }

  /** In envelope-only mode: the kernel's message in `line` (any format, journald's too), or null if it has none. */
  kernelMessage(line: string): string | null {
    this.envelopeAt = -1;
    return this.parse(line) === 'ignored' && this.envelopeAt >= 0 ? this.envelopeText.slice(this.envelopeAt) : null;
  }

  parse(line: string): PacketEvent | LineVerdict {
    if (line.length === 0) return 'other';
    const c0 = line.charCodeAt(0);
    if (c0 === 123 /* { */) return this.parseJournalJson(line);
    if (c0 === 60 /* < */) return this.parsePri(line);
    return this.parseAt(line, 0);
  }

  /** Any format but journald's, from `at` (past a `<PRI>`). */
  private parseAt(line: string, at: number): PacketEvent | LineVerdict {
    const c = line.charCodeAt(at);
    if (isDigit(c)) {
      if (line.charCodeAt(at + 4) === 45 /* 2026- */) return this.parseRfc3339(line, at);
      return at === 0 ? this.parseKmsg(line) : 'other';
    }
    if (c === 91 /* [ */) return this.parseDmesg(line, at);
    if (c === 107 /* k */ && at === 0) return this.parseDmesgLevel(line);
    return this.parseTraditional(line, at);
  }

  /** `<PRI>` written by relays and `dmesg -r`: the facility must be the kernel's (0). */
  private parsePri(line: string): PacketEvent | LineVerdict {
    const end = decEnd(line, 1, 3);
    if (end < 0 || line.charCodeAt(end) !== 62 /* > */) return 'other';
    if (decValue(line, 1, end) > 7) return 'other';
    const at = end + 1;
    if (line.charCodeAt(at) === 49 /* 1 */ && line.charCodeAt(at + 1) === SP) return this.parseRfc5424(line, at + 2);
    return this.parseAt(line, at);
  }

  /**
   * Where the kernel message begins after the host name in a syslog line: `host kernel: `, then
   * an optional `[ uptime]` stamp; -1 if the line is not tagged as the kernel's.
   */
  private kernelMessageStart(line: string, hostAt: number): number {
    const hostEnd = line.indexOf(' ', hostAt);
    if (hostEnd <= hostAt || hostEnd - hostAt > 255) return -1;
    let at = hostEnd + 1;
    /* busybox syslogd (OpenWrt) names the facility and level between host and tag */
    if (line.startsWith('kern.', at)) {
      const end = line.indexOf(' ', at);
      if (end < 0 || end - at > 12) return -1;
      at = end + 1;
    }
    if (!line.startsWith(KERNEL_TAG, at)) return -1;
    return skipUptime(line, at + KERNEL_TAG.length);
  }

  /** `Nov 24 00:17:59 host kernel: [  325.48] MSG` (day padded with a space or not, seconds with a fraction or not). */
  private parseTraditional(line: string, at: number): PacketEvent | LineVerdict {
    /* OpenWrt's logread writes `Mon Nov 24 00:17:59 2026 kern.warn kernel: MSG` */
    if (line.charCodeAt(at + 3) === SP && MONTHS[line.slice(at + 4, at + 7)] !== undefined) return this.parseLongDate(line, at);
    const month = MONTHS[line.slice(at, at + 3)];
    if (month === undefined || line.charCodeAt(at + 3) !== SP) return 'other';
    let i = at + 4;
    if (line.charCodeAt(i) === SP) i++;
    const dayEnd = decEnd(line, i, 2);
    if (dayEnd < 0 || line.charCodeAt(dayEnd) !== SP) return 'other';
    const day = decValue(line, i, dayEnd);
    const clock = readClock(line, dayEnd + 1);
    if (clock === null) return 'other';
    const msgAt = this.kernelMessageStart(line, clock.end + 1);
    if (msgAt < 0) return 'other';
    const key = line.slice(at, clock.secondsEnd);
    if (key !== this.lastStamp) {
      const t = this.localTime(null, month, day, clock.h, clock.m, clock.s);
      if (t === null) return 'other';
      this.lastStamp = key;
      this.lastStampMs = t;
    }
    return this.parseMessage(line, msgAt, this.lastStampMs + clock.fractionMs);
  }

  /** `Mon Nov 24 00:17:59 2026 kern.warn kernel: ` (busybox logread: a year, no host, the facility named). */
  private parseLongDate(line: string, at: number): PacketEvent | LineVerdict {
    const date = readLongDate(line, at);
    if (date === null) return 'other';
    const t = this.localTime(date.year, date.month, date.day, date.h, date.m, date.s);
    if (t === null) return 'other';
    if (!line.startsWith('kern.', date.end)) return 'other';
    const end = line.indexOf(' ', date.end);
    if (end < 0 || end - date.end > 12 || !line.startsWith(KERNEL_TAG, end + 1)) return 'other';
    return this.parseMessage(line, skipUptime(line, end + 1 + KERNEL_TAG.length), t);
  }

  /** `2026-11-24T00:17:59.282475+00:00 host kernel: MSG` (also journalctl's `+0000`). */
  private parseRfc3339(line: string, at: number): PacketEvent | LineVerdict {
    const space = line.indexOf(' ', at);
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
  private parseRfc5424(line: string, at: number): PacketEvent | LineVerdict {
    const stampEnd = line.indexOf(' ', at);
    if (stampEnd - at < 20 || stampEnd - at > 40) return 'other';
    const hostEnd = line.indexOf(' ', stampEnd + 1);
    if (hostEnd <= stampEnd + 1 || hostEnd - stampEnd > 256) return 'other';
    if (!line.startsWith('kernel ', hostEnd + 1)) return 'other';
    let i = hostEnd + 8;
    /* PROCID and MSGID: nil or a token */
    for (let n = 0; n < 2; n++) {
      const end = line.indexOf(' ', i);
      if (end <= i || end - i > 128) return 'other';
      i = end + 1;
    }
    i = skipStructuredData(line, i);
    if (i < 0) return 'other';
    if (line.startsWith('\u00ef\u00bb\u00bf', i)) i += 3; /* the UTF-8 BOM, read as latin1 */
    const time = this.rfc3339Time(line, at, stampEnd);
    return time === null ? 'other' : this.parseMessage(line, skipUptime(line, i), time);
  }

  /**
   * Every line has a new fraction of a second, so Date.parse runs once per second and zone
   * (`2026-11-24T00:17:59` + `+00:00`), and the fraction is added by hand.
   */
  private rfc3339Time(line: string, at: number, end: number): number | null {
    if (line.charCodeAt(at + 10) !== 84 /* T */ || end - at < 20) return null;
    let zoneAt = at + 19;
    let fractionMs = 0;
    if (line.charCodeAt(zoneAt) === 46 /* . */) {
      zoneAt++;
      let scale = 100;
      while (zoneAt < end && isDigit(line.charCodeAt(zoneAt))) {
        fractionMs += (line.charCodeAt(zoneAt) - 48) * scale;
        scale /= 10;
        zoneAt++;
      }
      fractionMs = Math.floor(fractionMs);
    }
    const key = line.slice(at, at + 19) + line.slice(zoneAt, end);
    if (key !== this.lastStamp) {
      const t = Date.parse(key);
      if (!Number.isFinite(t)) return null;
      this.lastStamp = key;
      this.lastStampMs = t;
    }
    return this.lastStampMs + fractionMs;
  }

  /** `4,353,339018201,-;MSG`: priority, sequence, microseconds since boot, flags (and more); then the message. */
  private parseKmsg(line: string): PacketEvent | LineVerdict {
    const prioEnd = decEnd(line, 0, 3);
    /* Facility 0 is the kernel: a record a process wrote into /dev/kmsg has another one. */
    if (prioEnd < 0 || line.charCodeAt(prioEnd) !== 44 || decValue(line, 0, prioEnd) > 7) return 'other';
    const seqEnd = decEnd(line, prioEnd + 1, 20);
    if (seqEnd < 0 || line.charCodeAt(seqEnd) !== 44) return 'other';
    const usecEnd = decEnd(line, seqEnd + 1, 20);
    if (usecEnd < 0 || line.charCodeAt(usecEnd) !== 44) return 'other';
    const semi = line.indexOf(';', usecEnd);
    if (semi < 0 || semi - usecEnd > 64) return 'other';
    const usec = Number(line.slice(seqEnd + 1, usecEnd));
    return this.parseMessage(line, semi + 1, this.bootTime(usec));
  }

  private bootTime(usec: number): number {
    return this.kmsgTime ? this.kmsgTime(usec) : this.bootTimeMs + Math.floor(usec / 1000);
  }

  /**
   * `dmesg` output: `[ 3988.200761] MSG`, `<4>[ 3988.2] MSG` (`dmesg -r`), `[Tue Nov 24 00:17:59 2026] MSG`
   * (`dmesg -T`), and journalctl's `-o short-monotonic` (`[ 3988.200761] host kernel: MSG`).
   */
  private parseDmesg(line: string, at: number): PacketEvent | LineVerdict {
    const stamp = readUptime(line, at);
    if (stamp !== null) {
      let msgAt = skipCaller(line, stamp.end);
      const hostEnd = line.indexOf(' ', msgAt);
      if (hostEnd > msgAt && line.startsWith(KERNEL_TAG, hostEnd + 1)) msgAt = skipUptime(line, hostEnd + 1 + KERNEL_TAG.length);
      return this.parseMessage(line, msgAt, this.bootTime(stamp.usec));
    }
    const date = readLongDate(line, at + 1);
    if (date === null || line.charCodeAt(date.end - 1) !== 93 /* ] */ || line.charCodeAt(date.end) !== SP) return 'other';
    const t = this.localTime(date.year, date.month, date.day, date.h, date.m, date.s);
    return t === null ? 'other' : this.parseMessage(line, skipCaller(line, date.end + 1), t);
  }

  /** `dmesg -x`: `kern  :warn  : [ 3988.2] MSG`; only the kern facility. */
  private parseDmesgLevel(line: string): PacketEvent | LineVerdict {
    if (!line.startsWith('kern ', 0)) return 'other';
    let i = 4;
    while (line.charCodeAt(i) === SP && i < 8) i++;
    if (line.charCodeAt(i) !== 58 /* : */) return 'other';
    const colon = line.indexOf(': ', i + 1);
    if (colon < 0 || colon - i > 10) return 'other';
    return line.charCodeAt(colon + 2) === 91 ? this.parseDmesg(line, colon + 2) : 'other';
  }

  /** One record of `journalctl -o json`: only the kernel's own records (transport kernel, facility kern) count. */
  private parseJournalJson(line: string): PacketEvent | LineVerdict {
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
    return this.parseMessage(message, 0, Math.floor(usec / 1000));
  }

  /** A wall-clock date without a zone, read in the configured zone; the year is guessed when absent. */
  private localTime(year: number | null, month: number, day: number, h: number, m: number, s: number): number | null {
    if (!(day >= 1 && day <= 31 && h < 24 && m < 60 && s < 61)) return null;
    return wallClockTime({ year, month, day, h, m, s }, this.now(), this.timeZone);
  }

  private parseMessage(line: string, at: number, time: number): PacketEvent | LineVerdict {
    if (this.envelopeOnly) {
      this.envelopeText = line;
      this.envelopeAt = at;
      return 'ignored';
    }
    let prefix: string | null = null;
    let i = -1;
    for (const p of this.prefixes) {
      if (!line.startsWith(p.bare, at)) continue;
      let j = at + p.bare.length;
      while (line.charCodeAt(j) === SP) j++;
      if (line.startsWith('IN=', j)) {
        prefix = p.configured;
        i = j;
        break;
      }
    }
    if (prefix === null) return 'other';
    if (line.length - i > MAX_NETFILTER_LINE) return 'malformed';
    return this.parseFields(line, i, time, prefix);
  }

  /** The netfilter logger's fields, from `IN=` to the end of the line, in the kernel's order. */
  private parseFields(s: string, start: number, time: number, prefix: string): PacketEvent | LineVerdict {
    const inEnd = nameEnd(s, start + 3);
    let i = inEnd < 0 ? -1 : sep(s, inEnd);
    if (i < 0 || !s.startsWith('OUT=', i)) return 'malformed';
    const outEnd = nameEnd(s, i + 4);
    i = outEnd < 0 ? -1 : sep(s, outEnd);
    if (i < 0) return 'malformed';
    const iface = s.slice(start + 3, inEnd);
    const out = s.slice(inEnd + 5, outEnd);
    /* bridge netfilter: the ports of a bridge */
    if (s.charCodeAt(i) === 80 /* P */) {
      i = physField(s, i, 'PHYSIN=');
      if (i >= 0) i = physField(s, i, 'PHYSOUT=');
      if (i < 0) return 'malformed';
    }
    /* the link layer is printed for packets that came in on an interface, and only for them */
    if (iface.length > 0) i = macPart(s, i);
    if (i < 0) return 'malformed';
    if (s.startsWith('ARP HTYPE=', i)) return 'ignored';
    if (i === s.length) return 'ignored'; /* neither IPv4 nor IPv6 nor ARP: the link layer only */
    if (!s.startsWith('SRC=', i)) return 'malformed';
    const srcEnd = s.indexOf(' DST=', i + 4);
    if (srcEnd < 0 || srcEnd - i > 43) return 'malformed';
    const dstEnd = s.indexOf(' ', srcEnd + 5);
    if (dstEnd < 0 || dstEnd - srcEnd > 44) return 'malformed';
    const srcText = s.slice(i + 4, srcEnd);
    const dstText = s.slice(srcEnd + 5, dstEnd);
    const source = canonicalSource(srcText);
    const v6 = source ? source.family === 6 : srcText.includes(':');
    const dst = v6 ? canonicalIPv6(dstText) : canonicalIPv4(dstText);
    if (!dst || (!source && !(v6 ? canonicalIPv6(srcText) : canonicalIPv4(srcText)))) return 'malformed';
    i = dstEnd + 1;
    let fragment = false;
    if (!v6) {
      i = decField(s, i, 'LEN=', 5);
      if (i >= 0) i = hexField(s, i, 'TOS=0x', 2, 2);
      if (i >= 0) i = hexField(s, i, 'PREC=0x', 2, 2);
      if (i >= 0) i = decField(s, i, 'TTL=', 3);
      if (i >= 0) i = decField(s, i, 'ID=', 5);
      if (i < 0) return 'malformed';
      if (s.startsWith('CE ', i)) i += 3;
      if (s.startsWith('DF ', i)) i += 3;
      if (s.startsWith('MF ', i)) i += 3;
      if (s.startsWith('FRAG:', i)) {
        i = decField(s, i, 'FRAG:', 5);
        fragment = true;
      }
      if (i >= 0 && s.startsWith('OPT (', i)) i = optBytes(s, i);
    } else {
      i = decField(s, i, 'LEN=', 6);
      if (i >= 0) i = decField(s, i, 'TC=', 3);
      if (i >= 0) i = decField(s, i, 'HOPLIMIT=', 3);
      if (i >= 0) i = decField(s, i, 'FLOWLBL=', 7);
      while (i >= 0 && i < s.length && !s.startsWith('PROTO=', i)) {
        const r = ipv6Extension(s, i);
        if (r === END_WITHOUT_PORTS) return fragment ? 'fragment' : 'ignored';
        if (extensionWasFragment) fragment = true;
        i = r;
      }
    }
    if (i < 0) return 'malformed';
    if (i === s.length) return fragment ? 'fragment' : 'malformed';
    if (!s.startsWith('PROTO=', i)) return fragment ? 'fragment' : 'malformed';
    let proto: Protocol;
    if (s.startsWith('TCP ', i + 6) || (s.startsWith('TCP', i + 6) && i + 9 === s.length)) proto = 'tcp';
    else if (s.startsWith('UDP ', i + 6) || (s.startsWith('UDP', i + 6) && i + 9 === s.length)) proto = 'udp';
    else return 'ignored'; /* ICMP errors quote a second packet, PROTO= and all: never a knock */
    i = sep(s, i + 9);
    if (fragment) {
      i = trailer(s, i);
      return i === s.length ? 'fragment' : 'malformed';
    }
    if (s.startsWith('INCOMPLETE [', i)) return 'ignored';
    const ports = this.ports;
    i = proto === 'tcp' ? tcpHeader(s, i, ports) : udpHeader(s, i, ports);
    if (i === TRUNCATED_OPTIONS) i = s.length;
    else if (i >= 0) i = trailer(s, i);
    if (i !== s.length) return 'malformed';
    if (!source) return 'ignored'; /* 0.0.0.0 (DHCP), multicast sources and such: a genuine line, never a knock */
    return {
      time,
      src: source.address,
      family: source.family,
      dst,
      proto,
      sport: ports.sport,
      dport: ports.dport,
      flags: ports.flags,
      iface,
      out,
      prefix,
    };
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
function ipv6Extension(s: string, i: number): number {
  extensionWasFragment = false;
  let j = i;
  const opt = s.startsWith('OPT ( ', j);
  if (opt) j += 6;
  let fragment = false;
  if (s.startsWith('FRAG:', j)) {
    const e = decEnd(s, j + 5, 5);
    if (e < 0 || s.charCodeAt(e) !== SP) return -1;
    fragment = decValue(s, j + 5, e) !== 0;
    j = e + 1;
    if (s.startsWith('INCOMPLETE ', j)) j += 11;
    j = hexField(s, j, 'ID:', 8, 8);
    if (j < 0) return -1;
  } else if (opt && s.startsWith('AH ', j)) {
    j = hexField(s, j + 3, 'SPI=0x', 1, 8);
    if (j < 0) return -1;
  } else if (s.startsWith('Unknown Ext Hdr ', j) || s.startsWith('ESP ', j) || s.startsWith(')', j) || s.startsWith('TRUNCATED', j)) {
    if (!s.startsWith(') ', j)) return END_WITHOUT_PORTS;
  } else if (!opt) {
    return -1;
  }
  if (opt) {
    if (!s.startsWith(') ', j)) return j === s.length || s.charCodeAt(j) === 41 ? END_WITHOUT_PORTS : -1;
    j += 2;
  }
  extensionWasFragment = fragment;
  return j;
}

/** `SPT= DPT= [SEQ= ACK=] WINDOW= RES=0x.. FLAGS URGP= [OPT (..)]` */
function tcpHeader(s: string, i: number, out: Ports): number {
  let j = portsField(s, i, out);
  if (j >= 0 && s.startsWith('SEQ=', j)) {
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
    const c = s.charCodeAt(j);
    let r = 0;
    let bit = 0;
    let len = 4;
    if (c === 85 /* U */) {
      if (s.charCodeAt(j + 3) === 80 /* URGP= */) break;
      r = 4;
      bit = TCP_FLAGS.URG;
    } else if (c === 83 /* S */) { r = 8; bit = TCP_FLAGS.SYN; }
    else if (c === 65 /* A */) {
      if (s.charCodeAt(j + 1) === 69 /* AE */) { r = 1; bit = 0; len = 3; }
      else { r = 5; bit = TCP_FLAGS.ACK; }
    } else if (c === 70 /* F */) { r = 9; bit = TCP_FLAGS.FIN; }
    else if (c === 82 /* R */) { r = 7; bit = TCP_FLAGS.RST; }
    else if (c === 80 /* P */) { r = 6; bit = TCP_FLAGS.PSH; }
    else if (c === 69 /* E */) { r = 3; bit = TCP_FLAGS.ECE; }
    else if (c === 67 /* C */) { r = 2; bit = TCP_FLAGS.CWR; }
    if (r <= rank || !s.startsWith(FLAG_WORDS[r], j)) return -1;
    rank = r;
    flags |= bit;
    j += len;
  }
  out.flags = flags;
  j = decField(s, j, 'URGP=', 5);
  if (j >= 0 && s.startsWith('OPT (', j)) {
    if (s.startsWith('OPT (TRUNCATED)', j)) return j + 15 === s.length ? TRUNCATED_OPTIONS : -1;
    j = optBytes(s, j);
  }
  return j;
}

/** `SPT= DPT= LEN=` */
function udpHeader(s: string, i: number, out: Ports): number {
  out.flags = 0;
  const j = portsField(s, i, out);
  return j < 0 ? -1 : decField(s, j, 'LEN=', 5);
}

/** `SPT= DPT= `, into `out`. */
function portsField(s: string, i: number, out: Ports): number {
  if (!s.startsWith('SPT=', i)) return -1;
  const spt = decEnd(s, i + 4, 5);
  if (spt < 0 || !s.startsWith(' DPT=', spt)) return -1;
  const dpt = decEnd(s, spt + 5, 5);
  if (dpt < 0) return -1;
  out.sport = decValue(s, i + 4, spt);
  out.dport = decValue(s, spt + 5, dpt);
  return out.sport > 65535 || out.dport > 65535 ? -1 : sep(s, dpt);
}

/** Past a `[  325.484838] ` uptime stamp (and a `[T123] ` caller id) at `i`, if there is one. */
function skipUptime(line: string, i: number): number {
  if (line.charCodeAt(i) !== 91) return i;
  let j = i + 1;
  while (line.charCodeAt(j) === SP && j - i < 14) j++;
  const secEnd = decEnd(line, j, 10);
  if (secEnd < 0 || line.charCodeAt(secEnd) !== 46 /* . */) return i;
  const fracEnd = decEnd(line, secEnd + 1, 9);
  if (fracEnd < 0 || line.charCodeAt(fracEnd) !== 93 /* ] */) return i;
  return skipCaller(line, line.charCodeAt(fracEnd + 1) === SP ? fracEnd + 2 : fracEnd + 1);
}

/** `[  325.484838] `: microseconds since boot, and the index after the space. */
function readUptime(line: string, i: number): { usec: number; end: number } | null {
  let j = i + 1;
  while (line.charCodeAt(j) === SP && j - i < 14) j++;
  const secEnd = decEnd(line, j, 10);
  if (secEnd < 0 || line.charCodeAt(secEnd) !== 46 /* . */) return null;
  const fracEnd = decEnd(line, secEnd + 1, 9);
  if (fracEnd < 0 || line.charCodeAt(fracEnd) !== 93 /* ] */) return null;
  const end = line.charCodeAt(fracEnd + 1) === SP ? fracEnd + 2 : fracEnd + 1;
  let frac = 0;
  for (let k = 0; k < 6; k++) frac = frac * 10 + (secEnd + 1 + k < fracEnd ? line.charCodeAt(secEnd + 1 + k) - 48 : 0);
  return { usec: decValue(line, j, secEnd) * 1e6 + frac, end };
}

/** Past `[    T123] ` or `[  C1] ` (CONFIG_PRINTK_CALLER), if there. */
function skipCaller(line: string, i: number): number {
  if (line.charCodeAt(i) !== 91) return i;
  let j = i + 1;
  while (line.charCodeAt(j) === SP && j - i < 10) j++;
  const c = line.charCodeAt(j);
  if (c !== 84 && c !== 67) return i;
  const e = decEnd(line, j + 1, 10);
  return e > 0 && line.charCodeAt(e) === 93 && line.charCodeAt(e + 1) === SP ? e + 2 : i;
}

/** `hh:mm:ss` with an optional fraction, then a space. */
function readClock(line: string, i: number): { h: number; m: number; s: number; fractionMs: number; secondsEnd: number; end: number } | null {
  if (line.charCodeAt(i + 2) !== 58 || line.charCodeAt(i + 5) !== 58) return null;
  for (const k of [0, 1, 3, 4, 6, 7]) if (!isDigit(line.charCodeAt(i + k))) return null;
  let end = i + 8;
  let fractionMs = 0;
  if (line.charCodeAt(end) === 46) {
    const e = decEnd(line, end + 1, 9);
    if (e < 0) return null;
    fractionMs = Math.floor(Number(`0.${line.slice(end + 1, e)}`) * 1000);
    end = e;
  }
  if (line.charCodeAt(end) !== SP) return null;
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
function readLongDate(line: string, i: number) {
  const month = MONTHS[line.slice(i + 4, i + 7)];
  if (month === undefined || line.charCodeAt(i + 3) !== SP || line.charCodeAt(i + 7) !== SP) return null;
  let j = i + 8;
  if (line.charCodeAt(j) === SP) j++;
  const dayEnd = decEnd(line, j, 2);
  if (dayEnd < 0 || line.charCodeAt(dayEnd) !== SP) return null;
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
function skipStructuredData(line: string, i: number): number {
  if (line.startsWith('- ', i)) return i + 2;
  let j = i;
  while (line.charCodeAt(j) === 91) {
    let quoted = false;
    for (j++; ; j++) {
      if (j >= line.length || j - i > 4096) return -1;
      const c = line.charCodeAt(j);
      if (quoted && c === 92 /* \ */) j++;
      else if (c === 34) quoted = !quoted;
      else if (c === 93 && !quoted) break;
    }
    j++;
  }
  return j > i && line.charCodeAt(j) === SP ? j + 1 : -1;
}

/** Is this a syslog line written with the kernel's tag (by the kernel, or by someone forging it)? */
/** The kernel's message in a line of any format, or null: for tools that look at lines without parsing them as knocks (the prefix census). */
export function kernelMessageOf(line: string): string | null {
  return envelopeProbe.kernelMessage(line);
}

export function isSyslogKernelLine(line: string): boolean {
  return envelopeProbe.parse(line) === 'ignored';
}

/* Reads only the envelope: says 'ignored' for every line the kernel's tag or facility marks as its own. */
const envelopeProbe = new LogLineParser({ prefixes: [], envelopeOnly: true });
