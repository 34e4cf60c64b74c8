/**
 * A gateway's membership in a fleet: grants made here on `fleet: true` doors are published to
 * the group's stream before they open (so that every gateway opens them), grants read from the
 * stream open the same door here until the sender's door closes, and knocks are claimed in the
 * group's shared replay store. Received grants go straight to the doors, never back to Redis.
 *
 * While Redis does not answer, a grant that needs the fleet (a knock that would verify at any
 * gateway: a shared v1 secret, a classic sequence) is refused, unless `offline: local`; a grant
 * whose verifier scoped its replay to this gateway (`replayScope: 'local'`) opens here alone.
 */
import type { DoorConfig } from '../model/door';
import type { Grant } from '../model/grant';
import { Metrics, NO_METRICS } from '../metrics/metrics';
import { ReplayStore } from '../tumbler/replayStore';
import { FleetConfig } from './config';
import { FleetLog, LinkState, RedisLink, safeUrl } from './link';
import { FleetGrant, newGrantId, signGrant } from './message';
import { FleetKeys, fleetKeys } from './names';
import { FleetReceiver, ReceiverCounts } from './receiver';
import { FleetReplayStore } from './replayStore';

export interface FleetDoors {
  openDoor(grant: Grant): Promise<void>;
}

const HEARTBEAT_MS = 2000;
/** A gateway is a member while its last heartbeat is younger than this. */
const MEMBER_FRESH_MS = 3 * HEARTBEAT_MS;
/** Heartbeats older than this are removed from the members hash. */
const MEMBER_FORGET_MS = 24 * 3_600_000;

export interface FleetStatus {
  name: string;
  group: string;
  redis: string;
  state: LinkState;
  since: number;
  error: string | null;
  offline: string;
  members: { name: string; seenMsAgo: number }[];
  /** This gateway's consumer group: entries not yet read, and read but not acknowledged (null while Redis does not answer). */
  stream: { lag: number | null; pending: number } | null;
  published: number;
  refused: number;
  openedLocallyOnly: number;
  received: ReceiverCounts;
  lastReceived: { from: string; door: string; src: string; receivedMs: number; openedMs: number } | null;
}

export class Fleet {
  private readonly link: RedisLink;
  private readonly keys: FleetKeys;
  private readonly receiver: FleetReceiver;
  private doors = new Map<string, DoorConfig>();
  private heartbeat: NodeJS.Timeout | null = null;
  private seen = new Map<string, number>();
  private readonly counts = { published: 0, refused: 0, openedLocallyOnly: 0 };

  constructor(
    private readonly cfg: FleetConfig,
    doors: readonly DoorConfig[],
    private readonly dispatcher: FleetDoors,
    private readonly log: FleetLog,
    private readonly metrics: Metrics = NO_METRICS,
    private readonly now: () => number = Date.now,
  ) {
    this.keys = fleetKeys(cfg.group);
    this.link = new RedisLink(cfg, log, metrics);
    this.receiver = new FleetReceiver(this.link, this.keys, cfg.name, cfg.group, cfg.key, (g) => this.applyReceived(g), log, now);
    this.reconfigure(doors);
  }

  /** The replay store the Tumbler listener claims in: `local` first, then the group's. */
  replayStore(local: ReplayStore): ReplayStore {
    return new FleetReplayStore(local, this.link, this.keys, this.cfg.name, () => this.cfg.offline);
  }

  reconfigure(doors: readonly DoorConfig[]): void {
    this.doors = new Map(doors.map((d) => [d.name, d]));
  }

  async start(): Promise<void> {
    await this.link.connect();
    this.receiver.start();
    void this.beat();
    this.heartbeat = setInterval(() => void this.beat(), HEARTBEAT_MS);
    this.heartbeat.unref();
    this.log.info('fleet: joined', { name: this.cfg.name, group: this.cfg.group, redis: safeUrl(this.cfg.redis), offline: this.cfg.offline });
  }

  async stop(): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    const receiving = this.receiver.stop();
    await this.link.close();
    await receiving;
  }

  /** A grant made on this gateway: published first where its door is a fleet door, then opened here. */
  async admit(grant: Grant): Promise<void> {
    const door = this.doors.get(grant.door);
    if (!door?.fleet || door.closeAfterMs === null) return this.dispatcher.openDoor(grant);
    const until = this.now() + door.closeAfterMs;
    const published: FleetGrant = {
      group: this.cfg.group,
      sender: this.cfg.name,
      id: newGrantId(),
      door: grant.door,
      src: grant.src,
      family: grant.family,
      via: grant.via,
      user: grant.user,
      at: grant.at,
      until,
    };
    try {
      const signed = signGrant(this.cfg.key, published);
      await this.link.call((r) =>
        r.xadd(this.keys.stream, 'MAXLEN', '~', this.cfg.streamLength, '*', 'grant', signed.grant, 'mac', signed.mac),
      );
      this.counts.published++;
    } catch (err) {
      const meta = { door: grant.door, src: grant.src, via: grant.via, error: (err as Error).message };
      if (grant.replayScope !== 'local' && this.cfg.offline !== 'local') {
        this.counts.refused++;
        this.log.warn('fleet: door not opened: the grant could not be published, and this knock could be replayed at another gateway', meta);
        return;
      }
      this.counts.openedLocallyOnly++;
      this.log.warn('fleet: the grant could not be published: door opened on this gateway only', meta);
    }
    return this.dispatcher.openDoor({ ...grant, untilMs: until });
  }

  async status(): Promise<FleetStatus> {
    const now = this.now();
    let stream: FleetStatus['stream'] = null;
    if (this.link.state === 'up') {
      try {
        const groups = (await this.link.call((r) => r.xinfo('GROUPS', this.keys.stream))) as unknown[][];
        const mine = groups.map(pairs).find((g) => g.name === this.keys.consumerGroup(this.cfg.name));
        if (mine) stream = { lag: typeof mine.lag === 'number' ? mine.lag : null, pending: Number(mine.pending) };
      } catch {
        /* shown as unknown */
      }
    }
    const last = this.receiver.last;
    return {
      name: this.cfg.name,
      group: this.cfg.group,
      redis: safeUrl(this.cfg.redis),
      state: this.link.state,
      since: this.link.since,
      error: this.link.error,
      offline: this.cfg.offline,
      members: [...this.seen].map(([name, at]) => ({ name, seenMsAgo: now - at })).sort((a, b) => a.name.localeCompare(b.name)),
      stream,
      ...this.counts,
      received: this.receiver.counts,
      lastReceived: last && { from: last.grant.sender, door: last.grant.door, src: last.grant.src, receivedMs: last.receivedMs, openedMs: last.openedMs },
    };
  }

  private async applyReceived(g: FleetGrant): Promise<boolean> {
    if (!this.doors.get(g.door)?.fleet) return false;
    this.log.info('fleet: grant received', { door: g.door, src: g.src, from: g.sender, via: g.via, closesAt: new Date(g.until).toISOString() });
    await this.dispatcher.openDoor({ door: g.door, src: g.src, family: g.family, via: g.via, user: g.user, at: g.at, untilMs: g.until });
    return true;
  }

  /** Says this gateway is alive, and reads who else is. */
  private async beat(): Promise<void> {
    const now = this.now();
    try {
      await this.link.call((r) => r.hset(this.keys.members, this.cfg.name, String(now)));
      const all = await this.link.call((r) => r.hgetall(this.keys.members));
      const seen = new Map<string, number>();
      const stale: string[] = [];
      for (const [name, text] of Object.entries(all)) {
        const at = Number(text);
        if (!Number.isFinite(at) || now - at > MEMBER_FORGET_MS) stale.push(name);
        else if (now - at <= MEMBER_FRESH_MS) seen.set(name, at);
      }
      if (stale.length) await this.link.call((r) => r.hdel(this.keys.members, ...stale));
      this.seen = seen;
    } catch {
      /* the link logs the outage; members are those last seen */
    }
    this.metrics.set('tumbler_fleet_members', this.seen.size);
  }
}

/** Redis's flat [key, value, key, value] replies as an object. */
function pairs(flat: unknown[]): Record<string, unknown> {
  const o: Record<string, unknown> = Object.create(null);
  for (let i = 0; i + 1 < flat.length; i += 2) o[String(flat[i])] = flat[i + 1];
  return o;
}
