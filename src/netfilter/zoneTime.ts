/**
 * Wall-clock stamps without a zone (traditional syslog, `dmesg -T`) to instants, in a given IANA
 * zone or this process's. Pure apart from the zone database Node carries.
 *
 * Around a DST fall-back the same wall-clock hour happens twice: of the two instants a stamp can
 * be, the later one is taken unless it is still in the future, so a knock logged in the repeated
 * hour is not taken for one an hour old (and dropped as stale).
 */

export interface WallClock {
  /** null: the stamp has no year; the latest year that does not put it in the future is taken. */
  year: number | null;
  /** 0-11 */
  month: number;
  day: number;
  h: number;
  m: number;
  s: number;
}

const DAY_MS = 86_400_000;
/* Writer and reader clocks may differ a little; a stamp this far ahead is still "now". */
const FUTURE_SLACK_MS = 5 * 60_000;

const formatters = new Map<string, Intl.DateTimeFormat>();
/* Offsets change only at transitions, which fall on quarter hours: cache per quarter hour. */
const offsetCache = new Map<string, number>();
const MAX_CACHED_OFFSETS = 10_000;

/** Is `zone` a time zone name this Node knows? */
export function isKnownTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** Milliseconds to add to UTC to get the wall clock of `zone` (this process's zone when undefined) at instant `t`. */
export function zoneOffsetMs(t: number, zone: string | undefined): number {
  if (zone === undefined) return -new Date(t).getTimezoneOffset() * 60_000;
  const bucket = Math.floor(t / (15 * 60_000));
  const key = `${zone}\0${bucket}`;
  const cached = offsetCache.get(key);
  if (cached !== undefined) return cached;
  let f = formatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(zone, f);
  }
  const at = bucket * 15 * 60_000;
  const p: Record<string, number> = {};
  for (const part of f.formatToParts(at)) if (part.type !== 'literal') p[part.type] = Number(part.value);
  const offset = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) - at;
  if (offsetCache.size >= MAX_CACHED_OFFSETS) offsetCache.clear();
  offsetCache.set(key, offset);
  return offset;
}

function instant(year: number, w: WallClock, now: number, zone: string | undefined): number {
  const asUtc = Date.UTC(year, w.month, w.day, w.h, w.m, w.s);
  const before = zoneOffsetMs(asUtc - DAY_MS, zone);
  const after = zoneOffsetMs(asUtc + DAY_MS, zone);
  const early = asUtc - before;
  if (before === after) return early;
  const late = asUtc - after;
  const earlyValid = zoneOffsetMs(early, zone) === before;
  const lateValid = zoneOffsetMs(late, zone) === after;
  if (earlyValid && lateValid) {
    /* the repeated hour: the later instant, unless that has not happened yet */
    const [first, second] = early < late ? [early, late] : [late, early];
    return second <= now + FUTURE_SLACK_MS ? second : first;
  }
  if (lateValid) return late;
  /* only the first, or neither: a stamp in the hour skipped at spring-forward is read with the old offset */
  return early;
}

/** The instant a zoneless wall-clock stamp stands for. */
export function wallClockTime(w: WallClock, now: number, zone?: string): number {
  if (w.year !== null) return instant(w.year, w, now, zone);
  const year = new Date(now + zoneOffsetMs(now, zone)).getUTCFullYear();
  const t = instant(year, w, now, zone);
  return t > now + DAY_MS ? instant(year - 1, w, now, zone) : t;
}
