/**
 * The connections to Redis and whether Redis answers. Every call is bounded (commandTimeout),
 * nothing waits in a queue while Redis is away (no offline queue, no retries per request: a call
 * fails at once and its caller decides), and the connection is re-made in the background. Each
 * change between "answers" and "does not answer" is logged once.
 */
import Redis, { RedisOptions } from 'ioredis';
import { Metrics } from '../metrics/metrics';
import { FleetConfig } from './config';

export interface FleetLog {
  info(message: string, meta?: Record<string, unknown>): void;
  warn(message: string, meta?: Record<string, unknown>): void;
  error(message: string, meta?: Record<string, unknown>): void;
}

export type LinkState = 'connecting' | 'up' | 'down';

/** How long a blocking read waits for new grants before it asks again. */
export const BLOCK_MS = 1000;
const RECONNECT_MAX_MS = 2000;

/** The URL as logs and status may show it: never a password. */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    u.password = '';
    return u.toString();
  } catch {
    return '(invalid URL)';
  }
}

/** The URL without its user, and the user: ioredis would let the URL's empty password win over password_file's. */
function splitUser(url: string): { url: string; username: string | undefined } {
  const u = new URL(url);
  const username = u.username ? decodeURIComponent(u.username) : undefined;
  u.username = '';
  return { url: u.toString(), username };
}

function redisOptions(cfg: FleetConfig, commandTimeout: number): RedisOptions {
  return {
    lazyConnect: true,
    username: splitUser(cfg.redis).username,
    password: cfg.password ?? undefined,
    connectTimeout: cfg.timeoutMs * 2,
    commandTimeout,
    enableOfflineQueue: false,
    /* the ready check sends INFO, which a gateway's ACL need not allow; a loading Redis answers errors, which refuse */
    enableReadyCheck: false,
    maxRetriesPerRequest: 0,
    retryStrategy: (times) => Math.min(100 * times, RECONNECT_MAX_MS),
    connectionName: `tumblerd:${cfg.group}:${cfg.name}`,
    ...(cfg.tls ? { tls: { ...(cfg.tls.ca ? { ca: cfg.tls.ca } : {}), ...(cfg.tls.cert ? { cert: cfg.tls.cert, key: cfg.tls.key ?? undefined } : {}) } } : {}),
  };
}

export class RedisLink {
  /** For short commands. */
  readonly client: Redis;
  /** For the blocking stream read only: a blocked connection cannot carry other commands. */
  readonly blocking: Redis;
  private current: LinkState = 'connecting';
  private changedAt = Date.now();
  private lastError: string | null = null;
  private closing = false;

  constructor(
    private readonly cfg: FleetConfig,
    private readonly log: FleetLog,
    private readonly metrics: Metrics,
  ) {
    const { url } = splitUser(cfg.redis);
    this.client = new Redis(url, redisOptions(cfg, cfg.timeoutMs));
    this.blocking = new Redis(url, redisOptions(cfg, BLOCK_MS + cfg.timeoutMs));
    for (const c of [this.client, this.blocking]) c.on('error', (err: Error) => (this.lastError = err.message));
    this.client.on('ready', () => this.mark('up'));
    this.client.on('close', () => this.mark('down', this.lastError ?? 'connection closed'));
  }

  get state(): LinkState {
    return this.current;
  }

  get since(): number {
    return this.changedAt;
  }

  get error(): string | null {
    return this.current === 'up' ? null : this.lastError;
  }

  /** Starts connecting; waits for the first answer at most twice the timeout, then goes on connecting in the background. */
  async connect(): Promise<void> {
    const first = Promise.all([this.client.connect(), this.blocking.connect()]).then(
      () => undefined,
      (err: Error) => this.mark('down', err.message),
    );
    await Promise.race([first, new Promise((r) => setTimeout(r, this.cfg.timeoutMs * 2).unref())]);
    if (this.current === 'connecting') this.mark('down', 'no answer yet');
  }

  /** Runs one call; a failure to reach Redis (not an error reply) marks the link down. */
  async call<T>(f: (r: Redis) => Promise<T>): Promise<T> {
    try {
      const v = await f(this.client);
      this.mark('up');
      return v;
    } catch (err) {
      if (!isReply(err)) this.mark('down', (err as Error).message);
      throw err;
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    this.client.disconnect();
    this.blocking.disconnect();
  }

  private mark(state: LinkState, why?: string): void {
    if (why) this.lastError = why;
    if (state === this.current || this.closing) return;
    const was = this.current;
    this.current = state;
    this.changedAt = Date.now();
    this.metrics.set('tumbler_fleet_up', state === 'up' ? 1 : 0);
    const redis = safeUrl(this.cfg.redis);
    if (state === 'up') {
      this.log.info(`fleet: Redis answers${was === 'down' ? ' again: grants are published and received' : ''}`, { redis });
    } else if (state === 'down') {
      this.log.warn(
        this.cfg.offline === 'local'
          ? 'fleet: Redis does not answer: knocks open on this gateway only (offline: local) until it does'
          : 'fleet: Redis does not answer: fleet-wide knocks (shared secrets, sequences) are refused until it does',
        { redis, error: why },
      );
    }
  }
}

/** An error reply from Redis (the server answered) rather than a failure to reach it. */
function isReply(err: unknown): boolean {
  return (err as Error)?.name === 'ReplyError';
}
