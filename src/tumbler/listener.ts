/**
 * Receives Tumbler knocks on UDP. It never answers anything. A datagram opens a door only if
 * its digest was made for the address it came from, for a minute within the skew, with a door's
 * secret, and was never accepted before.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { ListenAddress } from '../config/types';
import { canonicalSource } from '../model/address';
import type { Grant } from '../model/grant';
import { Candidate, SecretDoor, expectedDigests, findMatch, parseDatagram, replayHorizon } from './protocol';
import { ReplayCache } from './replayCache';

export interface TumblerHooks {
  grant(grant: Grant): void;
  /** A digest was just added to the replay cache: persist it before the door opens. */
  remembered(): void;
  info(message: string, meta?: Record<string, unknown>): void;
  warn(message: string, meta?: Record<string, unknown>): void;
}

export interface ListenerCounts {
  datagrams: number;
  dropped: number;
  unmatched: number;
  replays: number;
  accepted: number;
}

/** The largest datagram worth reading: magic, 64 hex digits, CR LF. */
const MAX_DATAGRAM = 76;
/**
 * Sources whose expected digests are kept for the current minute. Junk from a few sources then
 * costs comparisons instead of (2 × skew + 1) × doors hashes a datagram; junk from ever new
 * sources costs the hashes (such a source is cached only from its second datagram in a minute),
 * and the table stays this size: 4096 × 48 digests is about 8 MB.
 */
const DIGEST_CACHE_SOURCES = 4096;
const MINUTE_MS = 60_000;

export class TumblerListener {
  private sockets: dgram.Socket[] = [];
  /* A captured knock re-sent in a loop must not fill the disk: one replay warning a second. */
  private lastReplayWarning = 0;
  private replaysUnreported = 0;
  private readonly expected = new Map<string, { minute: number; candidates: Candidate[] | null }>();
  readonly counts: ListenerCounts = { datagrams: 0, dropped: 0, unmatched: 0, replays: 0, accepted: 0 };

  constructor(
    private doors: SecretDoor[],
    private skewMinutes: number,
    readonly replay: ReplayCache,
    private readonly hooks: TumblerHooks,
    private readonly now: () => number = Date.now,
  ) {}

  reconfigure(doors: SecretDoor[], skewMinutes: number): void {
    this.doors = doors;
    this.skewMinutes = skewMinutes;
    this.expected.clear();
  }

  async listen(addresses: ListenAddress[]): Promise<void> {
    for (const a of addresses) {
      const v6 = net.isIPv6(a.host);
      /* ipv6Only: a v4-mapped source would otherwise hash differently from what the client sent */
      const socket = dgram.createSocket({ type: v6 ? 'udp6' : 'udp4', ipv6Only: v6, recvBufferSize: 1 << 20 });
      socket.on('message', (msg, rinfo) => this.handle(msg, rinfo.address));
      socket.on('error', (err) => this.hooks.warn(`Tumbler socket ${a.host}:${a.port}: ${err.message}`));
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind(a.port, a.host, () => {
          socket.off('error', reject);
          resolve();
        });
      });
      this.sockets.push(socket);
    }
  }

  /** Where it listens (with the ports the kernel chose for port 0). */
  addresses(): { address: string; port: number }[] {
    return this.sockets.map((s) => s.address());
  }

  close(): void {
    for (const s of this.sockets) s.close();
    this.sockets = [];
  }

  /**
   * The digests a knock from `ip` may carry now. Kept for the minute once a source sends a
   * second datagram in it: a flood from ever new sources would only churn the table.
   */
  private candidatesFor(ip: string, now: number): Candidate[] {
    const minute = Math.floor(now / MINUTE_MS);
    const hit = this.expected.get(ip);
    if (hit && hit.minute === minute && hit.candidates) return hit.candidates;
    const candidates = expectedDigests(ip, this.doors, now, this.skewMinutes);
    this.expected.delete(ip);
    if (this.expected.size >= DIGEST_CACHE_SOURCES) this.expected.delete(this.expected.keys().next().value as string);
    this.expected.set(ip, { minute, candidates: hit && hit.minute === minute ? candidates : null });
    return candidates;
  }

  /** One datagram from `from`; public so that it can be tested and benchmarked without sockets. */
  handle(msg: Buffer, from: string): void {
    this.counts.datagrams++;
    const digest = msg.length <= MAX_DATAGRAM ? parseDatagram(msg) : null;
    const src = digest ? canonicalSource(from) : null;
    if (!digest || !src) {
      this.counts.dropped++;
      return;
    }
    const now = this.now();
    const match = findMatch(digest, this.candidatesFor(src.address, now));
    if (!match) {
      this.counts.unmatched++;
      return;
    }
    const verdict = this.replay.claim(digest.toString('hex'), replayHorizon(match.minute), now);
    if (verdict !== 'fresh') {
      this.counts.replays++;
      if (now - this.lastReplayWarning < 1000) {
        this.replaysUnreported++;
        return;
      }
      this.hooks.warn(verdict === 'replay' ? 'Tumbler knock replayed: ignored' : 'replay cache full: Tumbler knock refused', {
        door: match.door,
        src: src.address,
        ...(this.replaysUnreported ? { alsoSinceLastWarning: this.replaysUnreported } : {}),
      });
      this.lastReplayWarning = now;
      this.replaysUnreported = 0;
      return;
    }
    this.counts.accepted++;
    this.hooks.remembered();
    this.hooks.info('Tumbler knock accepted', { door: match.door, src: src.address });
    this.hooks.grant({ door: match.door, src: src.address, family: src.family, via: 'tumbler', user: null, at: now });
  }
}
