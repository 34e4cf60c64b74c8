/**
 * Redis key names of a fleet group. All carry the hash tag `{tumbler:GROUP}`, so that a Redis
 * Cluster keeps a group on one slot, and an ACL `~{tumbler:GROUP}:*` confines a gateway to its group.
 */
export interface FleetKeys {
  /** The stream grants are published to. */
  stream: string;
  /** Gateway name → when it last said it was alive. */
  members: string;
  /** One key per claimed knock. */
  replay(knock: string): string;
  /** Each gateway reads the stream through a consumer group of its own, so that every gateway gets every grant. */
  consumerGroup(gateway: string): string;
}

export function fleetKeys(group: string): FleetKeys {
  const tag = `{tumbler:${group}}`;
  return {
    stream: `${tag}:grants`,
    members: `${tag}:members`,
    replay: (knock) => `${tag}:replay:${knock}`,
    consumerGroup: (gateway) => `gw:${gateway}`,
  };
}
