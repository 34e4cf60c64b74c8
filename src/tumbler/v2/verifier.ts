/**
 * Tumbler v2 behind the verifier seam. The chain of checks runs cheapest first and each one
 * stops the datagram: length (recognises) → mac1 → replay pre-check → rate limits → HPKE open →
 * known user → Ed25519 signature → time window → door → gateway → user allowed on the door →
 * the user's knocks in the window → address policy. Until the signature holds, a datagram is
 * junk, dropped in silence; after it, a refusal names the user and the reason for the log.
 */
import crypto from 'node:crypto';
import { Family, networkOf } from '../../model/address';
import type { NatMode } from '../../model/door';
import { DatagramSource, KnockVerifier, Verdict } from '../verifier';
import { Declared, GatewayContext, addressBytes, MAX_DATAGRAM, MIN_DATAGRAM, OpenedKnock, doorId, encOf, gatewayId, openKnock, parsePlaintext, signatureHolds } from './datagram';
import { ed25519PublicKey, x25519PrivateKey, x25519PublicRaw } from './keys';
import { DEFAULT_LIMITS, RateLimits, WorkLimiter } from './limits';

/** Knocks one user may have accepted within one window (each holds a replay entry that long). */
export const MAX_KNOCKS_PER_USER = 64;
/** Replay ids kept by the pre-check; the replay store holds the authoritative claims. */
const MAX_RECENT = 100_000;

export interface V2Door {
  name: string;
  nat: NatMode;
  /** Users allowed on the door: raw public key (base64) → user name. */
  users: ReadonlyMap<string, string>;
  /** Open for the target's network of this length (default: the address alone). */
  grantPrefix?: { 4: number; 6: number };
}

export interface V2Options {
  /** The gateway's X25519 private key, raw. */
  privateKey: Buffer;
  /** This gateway's name, when a fleet shares one key; null accepts only knocks for any gateway. */
  gateway: string | null;
  windowMs: number;
  doors: readonly V2Door[];
}

export interface V2Counts {
  badMac: number;
  rateLimited: number;
  unopened: number;
  unknownKey: number;
  badSignature: number;
  replays: number;
  refused: number;
  granted: number;
}

/**
 * What outlives a reload: the rate limits, the replay pre-check and each user's knocks in the
 * window. Every table is bounded.
 */
export class TumblerV2State {
  readonly limiter: WorkLimiter;
  private readonly recent = new Map<string, number>();
  private readonly perUser = new Map<string, number[]>();
  readonly counts: V2Counts = { badMac: 0, rateLimited: 0, unopened: 0, unknownKey: 0, badSignature: 0, replays: 0, refused: 0, granted: 0 };

  constructor(limits: RateLimits = DEFAULT_LIMITS) {
    this.limiter = new WorkLimiter(limits);
  }

  seen(id: string, now: number): boolean {
    const until = this.recent.get(id);
    return until !== undefined && until > now;
  }

  /** Records a granted knock; false (and nothing recorded) if the user has too many in the window. */
  record(id: string, userKey: string, untilMs: number, now: number): boolean {
    const live = (this.perUser.get(userKey) ?? []).filter((t) => t > now);
    if (live.length >= MAX_KNOCKS_PER_USER) return false;
    live.push(untilMs);
    this.perUser.set(userKey, live);
    if (this.recent.size >= MAX_RECENT) {
      for (const [k, t] of this.recent) if (t <= now) this.recent.delete(k);
      /* still full of live ids: the oldest goes; the replay store still refuses its replays */
      if (this.recent.size >= MAX_RECENT) this.recent.delete(this.recent.keys().next().value as string);
    }
    this.recent.set(id, untilMs);
    return true;
  }

  get sizes(): { sources: number; recent: number; users: number } {
    return { sources: this.limiter.size, recent: this.recent.size, users: this.perUser.size };
  }
}

function inPrefix(address: string, family: Family, d: Declared): boolean {
  if (family !== d.family) return false;
  const a = addressBytes(address, family);
  const b = addressBytes(d.address, family);
  const full = d.prefix >> 3;
  if (!a.subarray(0, full).equals(b.subarray(0, full))) return false;
  const rest = d.prefix & 7;
  return rest === 0 || a[full] >> (8 - rest) === b[full] >> (8 - rest);
}

const showDeclared = (d: readonly Declared[]) => d.map((x) => `${x.address}/${x.prefix}`).join(' ') || 'none';

export class TumblerV2Verifier implements KnockVerifier {
  readonly protocol = 'tumbler2';
  readonly gateway: GatewayContext;
  private readonly privateKey: crypto.KeyObject;
  private readonly doors = new Map<string, V2Door>();
  /** Every user key of every door, imported once: raw (base64) → key and user name. */
  private readonly users = new Map<string, { key: crypto.KeyObject; user: string }>();
  private readonly gatewayId: Buffer;

  constructor(
    private readonly options: V2Options,
    readonly state: TumblerV2State = new TumblerV2State(),
  ) {
    this.gateway = new GatewayContext(x25519PublicRaw(options.privateKey));
    this.privateKey = x25519PrivateKey(options.privateKey);
    this.gatewayId = gatewayId(options.gateway);
    for (const d of options.doors) {
      this.doors.set(doorId(d.name).toString('hex'), d);
      for (const [raw, user] of d.users) {
        if (!this.users.has(raw)) this.users.set(raw, { key: ed25519PublicKey(Buffer.from(raw, 'base64')), user });
      }
    }
  }

  recognises(msg: Buffer): boolean {
    return msg.length >= MIN_DATAGRAM && msg.length <= MAX_DATAGRAM;
  }

  verify(msg: Buffer, from: DatagramSource, now: number): Verdict {
    const c = this.state.counts;
    if (!this.gateway.checkMac1(msg)) {
      c.badMac++;
      return { kind: 'junk' };
    }
    const enc = encOf(this.gateway, msg);
    const id = enc.toString('hex');
    if (this.state.seen(id, now)) {
      c.replays++;
      return { kind: 'refused', reason: 'replayed: this knock was accepted before' };
    }
    if (!this.state.limiter.allow(from.address, from.family, now)) {
      c.rateLimited++;
      return { kind: 'junk' };
    }
    const pt = openKnock(this.gateway, this.privateKey, msg, enc);
    const knock = pt && parsePlaintext(pt);
    if (!pt || !knock) {
      c.unopened++;
      return { kind: 'junk' };
    }
    const userKey = knock.userKey.toString('base64');
    const user = this.users.get(userKey);
    if (!user) {
      c.unknownKey++;
      return { kind: 'junk' };
    }
    if (!signatureHolds(this.gateway, msg, enc, pt, user.key)) {
      c.badSignature++;
      return { kind: 'junk' };
    }
    const refused = (reason: string, detail: Record<string, unknown> = {}): Verdict => {
      c.refused++;
      return { kind: 'refused', reason, detail: { user: user.user, ...detail } };
    };
    return this.decide(knock, userKey, user.user, id, from, now, refused);
  }

  /** The checks on an authentic knock: each refusal says why, for the log. */
  private decide(
    knock: OpenedKnock,
    userKey: string,
    user: string,
    id: string,
    from: DatagramSource,
    now: number,
    refused: (reason: string, detail?: Record<string, unknown>) => Verdict,
  ): Verdict {
    const { windowMs } = this.options;
    const skew = knock.time - now;
    if (Math.abs(skew) > windowMs) {
      return refused(`clock off by ${(skew / 1000).toFixed(1)} s (window ±${windowMs / 1000} s)`, {
        clock: skew > 0 ? 'ahead' : 'behind',
      });
    }
    const door = this.doors.get(knock.doorId.toString('hex'));
    if (!door) return refused('no door of that name here');
    const gw = knock.gatewayId;
    if (!gw.equals(Buffer.alloc(8)) && !gw.equals(this.gatewayId)) {
      return refused('knock made for another gateway', { door: door.name });
    }
    if (!door.users.has(userKey)) return refused('user not allowed on this door', { door: door.name });
    const target = this.target(door.nat, knock.declared, from);
    if (typeof target === 'string') {
      return refused(`address mismatch: ${target}`, { door: door.name, nat: door.nat, declared: showDeclared(knock.declared) });
    }
    const untilMs = knock.time + windowMs + 1000;
    if (!this.state.record(id, userKey, untilMs, now)) {
      return refused(`more than ${MAX_KNOCKS_PER_USER} knocks in one window`, { door: door.name });
    }
    this.state.counts.granted++;
    const prefix = door.grantPrefix?.[target.family] ?? (target.family === 4 ? 32 : 128);
    const network = prefix < (target.family === 4 ? 32 : 128) ? { src: networkOf(target.address, target.family, prefix), prefix } : { src: target.address };
    return {
      kind: 'grant',
      grant: { door: door.name, ...network, family: target.family, via: 'tumbler2', user, at: now },
      replay: { key: id, untilMs },
    };
  }

  /** Whom the door opens for under its NAT mode, or why nobody. */
  private target(nat: NatMode, declared: readonly Declared[], from: DatagramSource): { address: string; family: Family } | string {
    const mine = declared.find((d) => d.family === from.family);
    const source = { address: from.address, family: from.family };
    switch (nat) {
      case 'packet':
        return source;
      case 'auto':
        if (!mine) return source;
        return inPrefix(from.address, from.family, mine) ? source : `sent from ${from.address}, declared ${showDeclared(declared)}`;
      case 'strict':
        if (!mine) return `strict door: the knock declares no IPv${from.family} address`;
        return inPrefix(from.address, from.family, mine) ? source : `sent from ${from.address}, declared ${showDeclared(declared)}`;
      case 'declared': {
        const d = mine ?? declared[0];
        if (!d) return 'declared door: the knock declares no address';
        return { address: d.address, family: d.family };
      }
    }
  }
}
