/**
 * From one kernel log line (in any of the formats a log source yields) to a packet event.
 * Pure: no I/O, no clock except what the caller passes. Written with indexOf and fixed-offset
 * checks rather than regular expressions so that hostile lines cost linear time at most.
 */
import { canonicalIPv4, canonicalIPv6, canonicalSource, ipv4ToInt } from '../model/address';
import { PacketEvent, PacketFields, Protocol, TCP_FLAGS, TcpFlagName } from '../model/packet';

/** What a line turned out to be, when it is not a packet event. */
export type LineVerdict =
  /** Not a kernel message starting with a configured prefix: someone else's line. */
  | 'other'
  /** A kernel netfilter line with our prefix whose fields are broken or truncated. */
  | 'malformed'
  /** A well-formed netfilter line for a protocol knocks do not use (ICMP, ...). */
  | 'ignored';

export interface ParserOptions {
  /** LOG prefixes, as configured (`"FIREWALL: "`); trailing white space is optional in the log. */
  prefixes: string[];
  /** Wall-clock time of boot in ms, to date /dev/kmsg records (their stamps count from boot). */
  bootTimeMs?: number;
  /** The reference "now" for traditional syslog stamps, which carry no year. */
  now?: () => number;
}

/** Kernel LOG lines are well under 1 KiB; anything far longer with our prefix is not one. */
export const MAX_NETFILTER_LINE = 4096;

const MONTHS: Record<string, number> = {
  Jan: 0, Feb: 1, Mar: 2, Apr: 3, May: 4, Jun: 5, Jul: 6, Aug: 7, Sep: 8, Oct: 9, Nov: 10, Dec: 11,
};
const DAY_MS = 86_400_000;
const KERNEL_TAG = 'kernel: ';

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** Parses a decimal port, 0..65535, digits only. */
function parsePort(text: string): number | null {
  if (text.length === 0 || text.length > 5) return null;
  let v = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (!isDigit(c)) return null;
    v = v * 10 + (c - 48);
  }
  return v <= 65535 ? v : null;
}

function isInterfaceName(text: string): boolean {
  if (text.length > 15) return false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const ok =
      isDigit(c) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 45 || c === 46 || c === 95 || c === 64;
    if (!ok) return false;
  }
  return true;
}

/** End of the value that starts at `start`: the next space, or the end of the line. */
function valueEnd(msg: string, start: number): number {
  const end = msg.indexOf(' ', start);
  return end < 0 ? msg.length : end;
}

/** TCP flag words between `RES=0x..` and `URGP=`, as a bitmask; null if that part is missing or odd. */
function parseFlags(msg: string, from: number): number | null {
  const res = msg.indexOf(' RES=0x', from);
  if (res < 0) return null;
  let at = valueEnd(msg, res + 7) + 1;
  const urgp = msg.indexOf(' URGP=', at - 1);
  if (urgp < 0) return null;
  let flags = 0;
  while (at < urgp) {
    const end = valueEnd(msg, at);
    const bit = (TCP_FLAGS as Record<string, number>)[msg.slice(at, end) as TcpFlagName];
    if (bit === undefined) return null;
    flags |= bit;
    at = end + 1;
  }
  return flags;
}

/** Where the kernel message begins, after `host kernel: ` and the optional `[ uptime]`; -1 if not a kernel line. */
function kernelMessageStart(line: string, hostAt: number): number {
  if (hostAt < 0) return -1;
  const hostEnd = line.indexOf(' ', hostAt);
  if (hostEnd <= hostAt || hostEnd - hostAt > 255) return -1;
  if (!line.startsWith(KERNEL_TAG, hostEnd + 1)) return -1;
  let at = hostEnd + 1 + KERNEL_TAG.length;
  if (line.charCodeAt(at) === 91 /* [ */) {
    const close = line.indexOf('] ', at);
    if (close < 0 || close - at > 20) return -1;
    at = close + 2;
  }
  return at;
}

const isRfc3339Line = (line: string) => isDigit(line.charCodeAt(0)) && line.charCodeAt(4) === 45; /* 2026- */

/** Where the host name starts in a syslog line (`Nov 24 00:17:59 host` or `2026-11-24T00:17:59Z host`), or -1. */
function syslogHostAt(line: string): number {
  if (isRfc3339Line(line)) {
    const space = line.indexOf(' ');
    return space >= 20 && space <= 40 ? space + 1 : -1;
  }
  return line.length >= 16 && line.charCodeAt(15) === 32 ? 16 : -1;
}

/** Is this a syslog line written with the kernel's tag (by the kernel, or by someone forging it)? */
export function isSyslogKernelLine(line: string): boolean {
  return kernelMessageStart(line, syslogHostAt(line)) >= 0;
}

export class LogLineParser {
  private readonly prefixes: { configured: string; bare: string }[];
  private readonly bootTimeMs: number;
  private readonly now: () => number;
  /* Busy logs repeat the same second for many lines: remember the last stamp parsed. */
  private lastStamp = '';
  private lastStampMs = 0;

  constructor(options: ParserOptions) {
    this.prefixes = options.prefixes.map((p) => ({ configured: p, bare: p.trimEnd() }));
    this.bootTimeMs = options.bootTimeMs ?? 0;
    this.now = options.now ?? Date.now;
  }

  /** One line given as bytes: what knock tracking needs of it, written into `out` (and returned). */
  parseBytes(buf: Buffer, start: number, end: number, out: PacketFields): PacketFields | LineVerdict {
    const r = this.parse(buf.toString('latin1', start, end));
    if (typeof r === 'string') return r;
    out.time = r.time;
    out.family = r.family;
    out.v4 = r.family === 4 ? ipv4ToInt(r.src) : 0;
    out.v6 = r.family === 6 ? r.src : '';
    out.proto = r.proto === 'udp' ? 1 : 0;
    out.dport = r.dport;
    out.flags = r.flags;
    return out;
  }

  parse(line: string): PacketEvent | LineVerdict {
    if (line.length === 0) return 'other';
    const c0 = line.charCodeAt(0);
    if (c0 === 123 /* { */) return this.parseJournalJson(line);
    if (isRfc3339Line(line)) return this.parseRfc3339(line);
    if (isDigit(c0)) return this.parseKmsg(line);
    return this.parseTraditional(line);
  }

  /** `Nov 24 00:17:59 host kernel: [  325.48] MSG` */
  private parseTraditional(line: string): PacketEvent | LineVerdict {
    const msgAt = kernelMessageStart(line, syslogHostAt(line));
    if (msgAt < 0) return 'other';
    const stamp = line.slice(0, 15);
    let time: number;
    if (stamp === this.lastStamp) {
      time = this.lastStampMs;
    } else {
      const t = this.traditionalTime(stamp);
      if (t === null) return 'other';
      time = t;
      this.lastStamp = stamp;
      this.lastStampMs = t;
    }
    return this.parseMessage(line, msgAt, time);
  }

  /** `2026-11-24T00:17:59.282475+00:00 host kernel: MSG` */
  private parseRfc3339(line: string): PacketEvent | LineVerdict {
    const hostAt = syslogHostAt(line);
    const msgAt = kernelMessageStart(line, hostAt);
    if (msgAt < 0) return 'other';
    const time = this.rfc3339Time(line, hostAt - 1);
    return time === null ? 'other' : this.parseMessage(line, msgAt, time);
  }

  /**
   * Every line has a new fraction of a second, so Date.parse runs once per second and zone
   * (`2026-11-24T00:17:59` + `+00:00`), and the fraction is added by hand.
   */
  private rfc3339Time(line: string, end: number): number | null {
    if (line.charCodeAt(10) !== 84 /* T */ || end < 19) return null;
    let zoneAt = 19;
    let fractionMs = 0;
    if (line.charCodeAt(19) === 46 /* . */) {
      zoneAt = 20;
      let scale = 100;
      while (zoneAt < end && isDigit(line.charCodeAt(zoneAt))) {
        fractionMs += (line.charCodeAt(zoneAt) - 48) * scale;
        scale /= 10;
        zoneAt++;
      }
      fractionMs = Math.floor(fractionMs);
    }
    const key = line.slice(0, 19) + line.slice(zoneAt, end);
    if (key !== this.lastStamp) {
      const t = Date.parse(key);
      if (!Number.isFinite(t)) return null;
      this.lastStamp = key;
      this.lastStampMs = t;
    }
    return this.lastStampMs + fractionMs;
  }

  /** `4,353,339018201,-;MSG`: priority, sequence, microseconds since boot, flags. */
  private parseKmsg(line: string): PacketEvent | LineVerdict {
    const semi = line.indexOf(';');
    if (semi < 0 || semi > 60) return 'other';
    const head = line.slice(0, semi).split(',');
    if (head.length < 4) return 'other';
    const prio = Number(head[0]);
    const usec = Number(head[2]);
    /* Facility 0 is the kernel: a record a process wrote into /dev/kmsg has another one. */
    if (!Number.isInteger(prio) || prio < 0 || prio > 7 || !Number.isFinite(usec) || usec < 0) return 'other';
    return this.parseMessage(line, semi + 1, this.bootTimeMs + Math.floor(usec / 1000));
  }

  /** One record of `journalctl -o json`; only the kernel transport counts. */
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
    if (r._TRANSPORT !== 'kernel') return 'other';
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


  private traditionalTime(stamp: string): number | null {
    const month = MONTHS[stamp.slice(0, 3)];
    const day = Number(stamp.slice(4, 6).trim());
    const h = Number(stamp.slice(7, 9));
    const m = Number(stamp.slice(10, 12));
    const s = Number(stamp.slice(13, 15));
    if (month === undefined || stamp[3] !== ' ' || stamp[9] !== ':' || stamp[12] !== ':') return null;
    if (!(day >= 1 && day <= 31 && h >= 0 && h < 24 && m >= 0 && m < 60 && s >= 0 && s < 61)) return null;
    const now = this.now();
    const year = new Date(now).getFullYear();
    /* No year in the stamp: it is the latest one that does not put the line in the future. */
    const t = new Date(year, month, day, h, m, s).getTime();
    return t > now + DAY_MS ? new Date(year - 1, month, day, h, m, s).getTime() : t;
  }

  private parseMessage(line: string, at: number, time: number): PacketEvent | LineVerdict {
    let prefix: string | null = null;
    let fieldsAt = -1;
    for (const p of this.prefixes) {
      if (!line.startsWith(p.bare, at)) continue;
      let i = at + p.bare.length;
      while (line.charCodeAt(i) === 32) i++;
      if (line.startsWith('IN=', i)) {
        prefix = p.configured;
        fieldsAt = i;
        break;
      }
    }
    if (prefix === null) return 'other';
    if (line.length - fieldsAt > MAX_NETFILTER_LINE) return 'malformed';
    /* A leading space lets every key, IN= included, be found as " KEY=". */
    const msg = ' ' + line.slice(fieldsAt);
    /* The kernel prints these keys in this order: each is looked for after the one before it. */
    const srcAt = msg.indexOf(' SRC=');
    if (srcAt < 0) return 'malformed';
    const srcEnd = valueEnd(msg, srcAt + 5);
    const dstAt = msg.indexOf(' DST=', srcEnd);
    if (dstAt < 0) return 'malformed';
    const dstEnd = valueEnd(msg, dstAt + 5);
    const protoAt = msg.indexOf(' PROTO=', dstEnd);
    if (protoAt < 0) return 'malformed';
    const protoEnd = valueEnd(msg, protoAt + 7);
    const protoText = msg.slice(protoAt + 7, protoEnd);
    let proto: Protocol;
    if (protoText === 'TCP') proto = 'tcp';
    else if (protoText === 'UDP') proto = 'udp';
    else return 'ignored'; /* ICMP errors quote a second packet, PROTO= and all: never a knock */
    const sptAt = msg.indexOf(' SPT=', protoEnd);
    if (sptAt < 0) return 'malformed';
    const sptEnd = valueEnd(msg, sptAt + 5);
    const dptAt = msg.indexOf(' DPT=', sptEnd);
    if (dptAt < 0) return 'malformed';
    const dptEnd = valueEnd(msg, dptAt + 5);
    /* A second copy of a key that decides anything makes the line ambiguous: the kernel never prints one. */
    if (msg.indexOf(' SRC=', srcEnd) >= 0 || msg.indexOf(' DPT=', dptEnd) >= 0 || msg.indexOf(' PROTO=', protoEnd) >= 0) {
      return 'malformed';
    }
    const iface = msg.slice(4, valueEnd(msg, 4));
    const sport = parsePort(msg.slice(sptAt + 5, sptEnd));
    const dport = parsePort(msg.slice(dptAt + 5, dptEnd));
    if (sport === null || dport === null || !isInterfaceName(iface)) return 'malformed';
    const source = canonicalSource(msg.slice(srcAt + 5, srcEnd));
    const dstText = msg.slice(dstAt + 5, dstEnd);
    const destination = canonicalIPv4(dstText) ?? canonicalIPv6(dstText);
    if (!source || !destination) return 'malformed';

    let flags = 0;
    if (proto === 'tcp') {
      const f = parseFlags(msg, dptEnd);
      if (f === null) return 'malformed';
      flags = f;
    } else if (msg.indexOf(' LEN=', dptEnd) < 0) {
      return 'malformed'; /* UDP lines end with the UDP length: without it the line was cut */
    }
    return {
      time,
      src: source.address,
      family: source.family,
      dst: destination,
      proto,
      sport,
      dport,
      flags,
      iface,
      prefix,
    };
  }
}
