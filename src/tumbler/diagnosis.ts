/**
 * Why a Tumbler knock opened nothing, said where the sysadmin can see it: a v1 datagram that
 * matches no door is tried against the mistakes that can be recognised from the datagram alone
 * (a clock off by minutes or by a time zone, another spelling of the address, a secret with a
 * stray newline), and `UnmatchedKnocks` decides, per source and overall, when such a knock is
 * worth a log line. Pure: no sockets, no clock but the one passed in.
 *
 * What cannot be recognised: a knock hashed with an address we never see (a client behind NAT
 * that hashed its private address). Finding it would mean hashing every private address
 * (17.9 million IPv4 addresses per door and minute), so the message can only name it as likely.
 */
import crypto from 'node:crypto';
import { SecretDoor, timeString } from './protocol';

const MINUTE_MS = 60_000;
/** Clock errors tried minute by minute, either side (beyond the accepted skew). */
const NEAR_MINUTES = 90;
/** Whole time-zone offsets tried (a client hashing local time instead of UTC), in quarter hours. */
const ZONE_QUARTERS = 14 * 4;
/** Doors tried: diagnosis is bounded work, whatever the config. */
const MAX_DOORS = 64;

export type LikelyCause =
  | { cause: 'clock'; door: string; offsetMinutes: number }
  | { cause: 'address-spelling'; door: string; hashedAs: string }
  | { cause: 'secret-whitespace'; door: string }
  | { cause: 'unknown' };

const sha256 = (text: string) => crypto.hash('sha256', text, 'buffer') as unknown as Buffer;

/** Other spellings of `ip` a client might have hashed: IPv4-mapped IPv6, the full and upper-case IPv6 forms. */
export function addressSpellings(ip: string): string[] {
  if (!ip.includes(':')) return [`::ffff:${ip}`, `::FFFF:${ip}`];
  const [head, tail = ''] = ip.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = ip.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
  const full = groups.map((g) => g.padStart(4, '0')).join(':');
  return [...new Set([full, full.toUpperCase(), ip.toUpperCase(), groups.join(':')])].filter((s) => s !== ip);
}

/** Offsets (minutes) to try for a clock error, nearest first, outside ±skew. */
function clockOffsets(skew: number): number[] {
  const out: number[] = [];
  for (let k = skew + 1; k <= NEAR_MINUTES; k++) out.push(k, -k);
  for (let q = 1; q <= ZONE_QUARTERS; q++) {
    const base = q * 15;
    if (base <= NEAR_MINUTES) continue;
    for (const d of [0, 1, -1, 2, -2]) out.push(base + d, -(base + d));
  }
  return out;
}

/**
 * The likeliest reason a v1 digest from `ip` at `now` matched no door: each door's secret is
 * tried with the clock off, with another spelling of the address, and with trailing white
 * space. Constant-time comparisons are not needed here: the knock has already failed.
 */
export function diagnoseV1(digest: Buffer, ip: string, doors: readonly SecretDoor[], now: number, skewMinutes: number): LikelyCause {
  const tried = doors.slice(0, MAX_DOORS);
  const base = Math.floor(now / MINUTE_MS) * MINUTE_MS;
  const within = (f: (minute: number) => boolean) => {
    for (let k = -skewMinutes; k <= skewMinutes; k++) if (f(base + k * MINUTE_MS)) return true;
    return false;
  };
  for (const door of tried) {
    for (const spelling of addressSpellings(ip)) {
      if (within((m) => sha256(`${timeString(m)}:${spelling}:${door.secret}`).equals(digest))) {
        return { cause: 'address-spelling', door: door.name, hashedAs: spelling };
      }
    }
    for (const stray of [`${door.secret}\n`, `${door.secret}\r\n`, `${door.secret}\r`, `${door.secret} `, door.secret.trim()]) {
      if (stray !== door.secret && within((m) => sha256(`${timeString(m)}:${ip}:${stray}`).equals(digest))) {
        return { cause: 'secret-whitespace', door: door.name };
      }
    }
  }
  for (const offset of clockOffsets(skewMinutes)) {
    const minute = timeString(base + offset * MINUTE_MS);
    for (const door of tried) {
      if (sha256(`${minute}:${ip}:${door.secret}`).equals(digest)) return { cause: 'clock', door: door.name, offsetMinutes: offset };
    }
  }
  return { cause: 'unknown' };
}

/** The log line's words for a cause. */
export function describeCause(c: LikelyCause, skewMinutes: number): string {
  switch (c.cause) {
    case 'clock': {
      const ahead = c.offsetMinutes > 0 ? 'ahead of' : 'behind';
      const m = Math.abs(c.offsetMinutes);
      const zone = m % 15 <= 2 && m >= 60 ? ' (a time zone? the knock must be made in UTC)' : '';
      return `made with door ${c.door}'s secret, but the client's clock is ${m} minute(s) ${ahead} this host's${zone}; ±${skewMinutes} accepted: set its clock (NTP)`;
    }
    case 'address-spelling':
      return `made with door ${c.door}'s secret for "${c.hashedAs}", another spelling of the address it came from: the client must hash the canonical form`;
    case 'secret-whitespace':
      return `made with door ${c.door}'s secret plus or minus white space (a newline from a secret file?)`;
    case 'unknown':
      return 'no door\'s secret makes it for this address at any nearby time: a wrong secret, or made for another address (a client behind NAT must knock with --from PUBLIC-IP)';
  }
}

export interface UnmatchedReport {
  src: string;
  /** Unmatched datagrams from this source since its last report (this one included). */
  datagrams: number;
  /** Reports suppressed overall since the last one that was written. */
  suppressed: number;
}

/**
 * Counts unmatched knocks per source and says when one is worth a log line: a source at most
 * once per `perSourceMs`, and all sources together at most `perMinute` times a minute, so that
 * junk from many addresses costs neither disk nor diagnosis time. The table holds at most
 * `maxSources` sources; the longest untouched is forgotten first.
 */
export class UnmatchedKnocks {
  private readonly sources = new Map<string, { count: number; lastReport: number }>();
  private windowStart = 0;
  private inWindow = 0;
  private suppressed = 0;

  constructor(
    private readonly maxSources = 4096,
    private readonly perSourceMs = 60_000,
    private readonly perMinute = 20,
  ) {}

  get size(): number {
    return this.sources.size;
  }

  /** One unmatched knock from `src`; a report when it should be logged now, else null. */
  note(src: string, now: number): UnmatchedReport | null {
    let s = this.sources.get(src);
    if (!s) {
      if (this.sources.size >= this.maxSources) this.sources.delete(this.sources.keys().next().value as string);
      s = { count: 0, lastReport: -Infinity };
      this.sources.set(src, s);
    }
    s.count++;
    if (now - s.lastReport < this.perSourceMs) return null;
    if (now - this.windowStart >= MINUTE_MS) {
      this.windowStart = now;
      this.inWindow = 0;
    }
    if (this.inWindow >= this.perMinute) {
      this.suppressed++;
      return null;
    }
    this.inWindow++;
    /* moved to the newest end only when reported, not per datagram (a delete and an insert each time): the oldest report is forgotten first */
    this.sources.delete(src);
    this.sources.set(src, s);
    const report = { src, datagrams: s.count, suppressed: this.suppressed };
    s.count = 0;
    s.lastReport = now;
    this.suppressed = 0;
    return report;
  }
}
