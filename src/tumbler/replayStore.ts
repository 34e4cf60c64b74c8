/**
 * The replay seam: a knock may open a door only after its replay id is claimed. The claim is
 * asynchronous so that a store may be durable on disk or shared by a fleet (Redis), and it
 * resolves only once the claim holds: a store that cannot record a claim refuses it.
 */
import type { ReplayScope } from '../model/grant';

export type ClaimResult = 'fresh' | 'replay' | 'full';

export interface ReplayStore {
  /**
   * Records `key` as used until `untilMs`; 'replay' if it already was, 'full' if there is no room.
   * `scope` says how far the claim must reach (a store that is not shared ignores it).
   */
  claim(key: string, untilMs: number, now: number, scope?: ReplayScope): Promise<ClaimResult>;
  /** Entries held now, for status and metrics. */
  readonly size: number;
}
