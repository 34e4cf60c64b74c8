/** Durations as config files write them: a number of seconds, or `500ms`, `30s`, `5m`, `1h`. */
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Milliseconds, or throws with a message fit for a config error. */
export function parseDuration(value: unknown): number {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return Math.round(value * 1000);
  if (typeof value === 'string') {
    const m = /^\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h)?\s*$/.exec(value);
    if (m) return Math.round(Number(m[1]) * UNIT_MS[m[2] ?? 's']);
  }
  throw new Error(`${JSON.stringify(value)} is not a duration (write 30s, 5m, 1h, or a number of seconds)`);
}
