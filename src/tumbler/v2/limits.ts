/**
 * Bounds on the public-key work an attacker who knows the gateway's public key can cause:
 * token buckets per source (an IPv4 address, an IPv6 /64) and one for everyone. The table of
 * sources is bounded; a source pushed out starts again with a full bucket, so a flood from
 * ever new sources gets past the per-source limit and is held by the global one.
 */
import type { Family } from '../../model/address';

export interface RateLimits {
  /** Public-key operations a source may cause: `burst` at once, then `perSecond`. */
  perSource: { perSecond: number; burst: number };
  global: { perSecond: number; burst: number };
  /** Most sources with a bucket at once. */
  maxSources: number;
}

export const DEFAULT_LIMITS: RateLimits = {
  perSource: { perSecond: 2, burst: 10 },
  /* one full check costs about 0.3 ms here: 500 a second is a sixth of one core */
  global: { perSecond: 500, burst: 500 },
  maxSources: 8192,
};

interface Bucket {
  tokens: number;
  at: number;
}

function take(b: Bucket, rate: { perSecond: number; burst: number }, now: number): boolean {
  /* a clock set back refills nothing, and takes nothing away */
  b.tokens = Math.min(rate.burst, b.tokens + (Math.max(0, now - b.at) / 1000) * rate.perSecond);
  b.at = now;
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}

/** The part of an address one party controls: an IPv4 address, an IPv6 /64. */
export function sourceKey(address: string, family: Family): string {
  if (family === 4) return address;
  const [head, tail] = address.split('::');
  const groups = head ? head.split(':') : [];
  /* a /64 is the first four groups; those hidden in a "::" are zeros */
  while (groups.length < 4) groups.push(tail !== undefined ? '0' : '');
  return groups.slice(0, 4).join(':');
}

export class WorkLimiter {
  private readonly sources = new Map<string, Bucket>();
  private readonly global: Bucket;

  constructor(private readonly limits: RateLimits = DEFAULT_LIMITS) {
    this.global = { tokens: limits.global.burst, at: 0 };
  }

  /** May this source cause one more public-key operation now? */
  allow(address: string, family: Family, now: number): boolean {
    const key = sourceKey(address, family);
    let b = this.sources.get(key);
    if (!b) {
      if (this.sources.size >= this.limits.maxSources) this.sources.delete(this.sources.keys().next().value as string);
      b = { tokens: this.limits.perSource.burst, at: now };
      this.sources.set(key, b);
    }
    if (!take(b, this.limits.perSource, now)) return false;
    return take(this.global, this.limits.global, now);
  }

  get size(): number {
    return this.sources.size;
  }
}
