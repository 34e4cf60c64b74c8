/**
 * Receives Tumbler knocks on UDP and never answers anything. It only does sockets: each datagram
 * goes to the first verifier that recognises it, a grant is claimed in the replay store, and only
 * a fresh claim reaches the door dispatcher.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { ListenAddress, canonicalSource, formatListen } from '../model/address';
import type { Grant } from '../model/grant';
import { UnmatchedKnocks } from './diagnosis';
import { Metrics, NO_METRICS } from '../metrics/metrics';
import { ReplayStore } from './replayStore';
import { DatagramSource, KnockVerifier } from './verifier';
import { COPY_WINDOW_MS, MAX_COPIES } from './send';

export interface TumblerHooks {
  grant(grant: Grant): void;
  info(message: string, meta?: Record<string, unknown>): void;
  warn(message: string, meta?: Record<string, unknown>): void;
}

export interface ListenerCounts {
  datagrams: number;
  dropped: number;
  unmatched: number;
  refused: number;
  replays: number;
  accepted: number;
}

const NO_IPV6 = 'this kernel has no IPv6 (EAFNOSUPPORT: booted with ipv6.disable=1?)';

/* labels of the per-datagram counters, made once: junk is counted millions of times a second */
const DROPPED = { verdict: 'dropped' };
const UNMATCHED = { verdict: 'unmatched' };

/**
 * A client sends each knock a few times (src/tumbler/send.ts); a copy that arrives within the
 * time a client sends them in, after its knock was seen, from the same source, is counted as a
 * replay but not warned about, up to as many copies as a client may send: more than that, or
 * later, is someone else replaying it. Knocks are remembered for that: only authentic knocks
 * get in, a few a second at most.
 */
const MAX_RECENT = 4096;

/**
 * Asked of the kernel for each socket: a burst of ~8,000 small datagrams (about 70 ms of what
 * one core checks over a socket) waits there instead of being dropped. A flood longer than that
 * fills any buffer; clients send each knock more than once for that (src/tumbler/send.ts).
 */
export const RECV_BUFFER = 4 << 20;

/** Warnings an attacker can trigger at will (replays, refusals) are written at most this often. */
const WARN_EVERY_MS = 1000;

export class TumblerListener {
  private sockets: dgram.Socket[] = [];
  private lastWarning = 0;
  private unreported = 0;
  private readonly unmatched = new UnmatchedKnocks();
  /** Replay id → source and time of authentic knocks seen lately, oldest first. */
  private readonly recent = new Map<string, { src: string; at: number; copies: number }>();
  readonly counts: ListenerCounts = { datagrams: 0, dropped: 0, unmatched: 0, refused: 0, replays: 0, accepted: 0 };

  constructor(
    private verifiers: readonly KnockVerifier[],
    readonly replay: ReplayStore,
    private readonly hooks: TumblerHooks,
    private readonly now: () => number = Date.now,
    private readonly metrics: Metrics = NO_METRICS,
  ) {}

  /** A reload builds new verifiers; the replay store stays, so nothing accepted before becomes fresh. */
  setVerifiers(verifiers: readonly KnockVerifier[]): void {
    this.verifiers = verifiers;
  }

  async listen(addresses: ListenAddress[]): Promise<void> {
    for (const a of addresses) {
      const v6 = net.isIPv6(a.host);
      /* ipv6Only: a v4-mapped source would otherwise hash differently from what the client sent */
      const socket = dgram.createSocket({ type: v6 ? 'udp6' : 'udp4', ipv6Only: v6, recvBufferSize: RECV_BUFFER });
      socket.on('message', (msg, rinfo) => void this.handle(msg, rinfo.address, rinfo.port));
      try {
        await new Promise<void>((resolve, reject) => {
          socket.once('error', reject);
          socket.bind(a.port, a.host, () => {
            socket.off('error', reject);
            resolve();
          });
        });
      } catch (err) {
        socket.close();
        if ((err as NodeJS.ErrnoException).code !== 'EAFNOSUPPORT') throw err;
        if (!a.ifAvailable) throw new Error(`cannot listen on ${formatListen(a.host, a.port)}: ${NO_IPV6}: remove it from tumbler.listen`);
        this.hooks.warn(`not listening on ${formatListen(a.host, a.port)}: ${NO_IPV6}; Tumbler knocks come over IPv4 only`);
        continue;
      }
      socket.on('error', (err) => this.hooks.warn(`Tumbler socket ${a.host}:${a.port}: ${err.message}`));
      this.sockets.push(socket);
      /* Linux grants twice the request (its own bookkeeping), capped by net.core.rmem_max */
      const granted = socket.getRecvBufferSize();
      this.hooks.info(`Tumbler socket ${a.host}:${a.port}: receive buffer ${Math.round(granted / 1024)} KiB`, {
        ...(granted < 2 * RECV_BUFFER ? { note: `net.core.rmem_max limits it; ${Math.round((2 * RECV_BUFFER) / 1024)} KiB absorb longer bursts` } : {}),
      });
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
   * One datagram from `from`; public so that it can be tested and benchmarked without sockets.
   * Junk returns at once; a grant returns the promise of its replay claim and hand-over.
   */
  handle(msg: Buffer, from: string, port = 0): Promise<void> | undefined {
    this.counts.datagrams++;
    let verifier: KnockVerifier | undefined;
    for (const v of this.verifiers) {
      if (v.recognises(msg)) {
        verifier = v;
        break;
      }
    }
    const src = verifier ? canonicalSource(from) : null;
    if (!verifier || !src) {
      this.counts.dropped++;
      this.metrics.inc('tumbler_datagrams_total', DROPPED);
      return undefined;
    }
    const now = this.now();
    const source: DatagramSource = { address: src.address, family: src.family, port };
    const verdict = verifier.verify(msg, source, now);
    if (verdict.kind === 'junk') {
      this.counts.unmatched++;
      this.metrics.inc('tumbler_datagrams_total', UNMATCHED);
      this.reportUnmatched(verifier, msg, source, now);
      return undefined;
    }
    if (verdict.kind === 'refused') {
      this.counts.refused++;
      this.tally(verifier.protocol, 'refused');
      this.rateLimitedWarn(now, `${verifier.protocol} knock refused: ${verdict.reason}`, { src: src.address, ...verdict.detail });
      return undefined;
    }
    return this.claim(verdict.grant, verdict.replay.key, verdict.replay.untilMs, now, verifier.protocol);
  }

  private async claim(grant: Grant, key: string, untilMs: number, now: number, protocol: string): Promise<void> {
    const seen = this.recent.get(key);
    /* noted before the claim resolves: a copy may arrive while the first one's write is still running */
    if (!seen) {
      if (this.recent.size >= MAX_RECENT) this.recent.delete(this.recent.keys().next().value as string);
      this.recent.set(key, { src: grant.src, at: now, copies: 0 });
    }
    let verdict;
    try {
      verdict = await this.replay.claim(key, untilMs, now, grant.replayScope);
    } catch (err) {
      /* no claim, no door: a knock whose use cannot be recorded could be replayed */
      this.counts.refused++;
      this.tally(protocol, 'refused');
      this.hooks.warn('replay store failed: Tumbler knock refused', { door: grant.door, src: grant.src, error: (err as Error).message });
      return;
    }
    this.metrics.set('tumbler_replay_entries', this.replay.size);
    if (verdict !== 'fresh') {
      this.counts.replays++;
      this.tally(protocol, verdict);
      if (verdict === 'replay' && seen && seen.src === grant.src && now - seen.at <= COPY_WINDOW_MS && ++seen.copies < MAX_COPIES) return;
      this.rateLimitedWarn(now, verdict === 'replay' ? 'Tumbler knock replayed: ignored' : 'replay cache full: Tumbler knock refused', {
        door: grant.door,
        src: grant.src,
      });
      return;
    }
    this.counts.accepted++;
    this.tally(protocol, 'accepted');
    this.hooks.info('Tumbler knock accepted', { door: grant.door, src: grant.src, protocol, ...(grant.user ? { user: grant.user } : {}) });
    this.hooks.grant(grant);
  }

  /** An authentic knock's outcome: per datagram, and per knock protocol. */
  private tally(protocol: string, result: string): void {
    this.metrics.inc('tumbler_datagrams_total', { verdict: result });
    this.metrics.inc('tumbler_knocks_total', { protocol, result });
  }

  /* A knock that opens nothing is invisible to the client: say why here, a source at a time. */
  private reportUnmatched(verifier: KnockVerifier, msg: Buffer, from: DatagramSource, now: number): void {
    const report = this.unmatched.note(from.address, now);
    const likely = report && verifier.diagnose?.(msg, from, now);
    if (!report || !likely) return;
    this.hooks.info(`${verifier.protocol} knock matched no door`, {
      src: from.address,
      datagrams: report.datagrams,
      likely,
      ...(report.suppressed ? { otherSourcesNotLogged: report.suppressed } : {}),
    });
  }

  /* A captured knock re-sent in a loop must not fill the disk. */
  private rateLimitedWarn(now: number, message: string, meta: Record<string, unknown>): void {
    if (now - this.lastWarning < WARN_EVERY_MS) {
      this.unreported++;
      return;
    }
    this.hooks.warn(message, { ...meta, ...(this.unreported ? { alsoSinceLastWarning: this.unreported } : {}) });
    this.lastWarning = now;
    this.unreported = 0;
  }
}
