/**
 * The fleet's replay store: a knock is claimed here first (cheap, and a replay sent to this
 * gateway again never reaches Redis), then in Redis with `SET key NX PXAT until`, atomic and
 * self-expiring, so that the same knock sent to any other gateway of the group is a replay there.
 * No fallback to memory for fleet-scoped knocks: while Redis does not answer they are refused,
 * unless the config says `offline: local`.
 */
import type { ReplayScope } from '../model/grant';
import { ClaimResult, ReplayStore } from '../tumbler/replayStore';
import { OfflinePolicy } from './config';
import { RedisLink } from './link';
import { FleetKeys } from './names';

export class FleetReplayStore implements ReplayStore {
  constructor(
    private readonly local: ReplayStore,
    private readonly link: RedisLink,
    private readonly keys: FleetKeys,
    private readonly gateway: string,
    private readonly offline: () => OfflinePolicy,
  ) {}

  get size(): number {
    return this.local.size;
  }

  async claim(key: string, untilMs: number, now: number, scope: ReplayScope = 'fleet'): Promise<ClaimResult> {
    const here = await this.local.claim(key, untilMs, now, scope);
    if (here !== 'fresh' || scope === 'local') return here;
    try {
      const set = await this.link.call((r) => r.set(this.keys.replay(key), this.gateway, 'PXAT', untilMs, 'NX'));
      return set === 'OK' ? 'fresh' : 'replay';
    } catch (err) {
      if (this.offline() === 'local') return 'fresh';
      /* the knock stays used here: refused now, it must not open later either */
      throw new Error(`the fleet's replay store (Redis) did not answer: ${(err as Error).message}`);
    }
  }
}
