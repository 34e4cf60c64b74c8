/**
 * From one kernel log line (in any of the formats a log source yields) to a packet event.
 * Pure: no I/O, no clock except what the caller passes. Written with indexOf and fixed-offset
 * checks rather than regular expressions so that hostile lines cost linear time at most.
 */
import { canonicalIPv4, canonicalIPv6, canonicalSource } from './address';
import { PacketEvent, Protocol, TCP_FLAGS, TcpFlagName } from './event';

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
function parsePort(text: string | null): number | null {
  if (text === null || text.length === 0 || text.length > 5) return null;
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

/**
 * The value of ` KEY=` in a LOG message, or null if absent; `undefined` if the key appears
 * twice, which the kernel never prints for these keys in TCP and UDP lines.
 */
function uniqueField(msg: string, needle: string): string | null | undefined {
  const at = msg.indexOf(needle);
  if (at < 0) return null;
  const start = at + needle.length;
  if (msg.indexOf(needle, start) >= 0) return undefined;
  const end = msg.indexOf(' ', start);
  return end < 0 ? msg.slice(start) : msg.slice(start, end);
}

function parseFlags(msg: string): number | null {
  const res = msg.indexOf(' RES=0x');
  if (res < 0) return null;
  const flagsStart = msg.indexOf(' ', res + 7);
  const urgp = msg.indexOf(' URGP=', res);
  if (flagsStart < 0 || urgp < 0 || urgp < flagsStart) return null;
  let flags = 0;
  for (const word of msg.slice(flagsStart + 1, urgp).split(' ')) {
    if (word === '') continue;
    const bit = (TCP_FLAGS as Record<string, number>)[word as TcpFlagName];
    if (bit === undefined) return null;
    flags |= bit;
  }
  return flags;
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

  parse(line: string): PacketEvent | LineVerdict {
    if (line.length === 0) return 'other';
    const c0 = line.charCodeAt(0);
    if (c0 === 123 /* { */) return this.parseJournalJson(line);
    if (isDigit(c0)) {
      if (line.charCodeAt(4) === 45 /* - */) return this.parseRfc3339(line);
      return this.parseKmsg(line);
    }
    return this.parseTraditional(line);
  }

  /** `Nov 24 00:17:59 host kernel: [  325.48] MSG` */
  private parseTraditional(line: string): PacketEvent | LineVerdict {
    if (line.length < 16 || line.charCodeAt(15) !== 32) return 'other';
    const msgAt = this.kernelMessageStart(line, 16);
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
    const space = line.indexOf(' ');
    if (space < 20 || space > 40) return 'other';
    const msgAt = this.kernelMessageStart(line, space + 1);
    if (msgAt < 0) return 'other';
    const stamp = line.slice(0, space);
    let time: number;
    if (stamp === this.lastStamp) {
      time = this.lastStampMs;
    } else {
      if (stamp.charCodeAt(10) !== 84 /* T */) return 'other';
      time = Date.parse(stamp);
      if (!Number.isFinite(time)) return 'other';
      this.lastStamp = stamp;
      this.lastStampMs = time;
    }
    return this.parseMessage(line, msgAt, time);
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

  /** Where the kernel message begins, after `host kernel: ` and the optional `[ uptime]`. */
  private kernelMessageStart(line: string, hostAt: number): number {
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

    const protoText = uniqueField(msg, ' PROTO=');
    if (protoText === undefined) {
      /* ICMP errors quote the offending packet, PROTO= and all: not a knock either way. */
      return msg.indexOf(' PROTO=ICMP') >= 0 ? 'ignored' : 'malformed';
    }
    if (protoText === null) return 'malformed';
    let proto: Protocol;
    if (protoText === 'TCP') proto = 'tcp';
    else if (protoText === 'UDP') proto = 'udp';
    else return 'ignored';

    const iface = uniqueField(msg, ' IN=');
    const src = uniqueField(msg, ' SRC=');
    const dst = uniqueField(msg, ' DST=');
    const sport = parsePort(uniqueField(msg, ' SPT=') ?? null);
    const dport = parsePort(uniqueField(msg, ' DPT=') ?? null);
    if (iface == null || src == null || dst == null || sport === null || dport === null) return 'malformed';
    if (!isInterfaceName(iface)) return 'malformed';
    const source = canonicalSource(src);
    const destination = canonicalIPv4(dst) ?? canonicalIPv6(dst);
    if (!source || !destination) return 'malformed';

    let flags = 0;
    if (proto === 'tcp') {
      const f = parseFlags(msg);
      if (f === null) return 'malformed';
      flags = f;
    } else if (msg.indexOf(' LEN=', msg.indexOf(' DPT=')) < 0) {
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
