/**
 * The `fleet:` section: which Redis, who this gateway is, which group it belongs to, the key that
 * authenticates what the group publishes, and what to do while Redis does not answer.
 */
import path from 'node:path';
import { parseDuration } from '../config/duration';
import { parseFleetKey } from './key';

/** While Redis does not answer: refuse fleet-scoped knocks everywhere (`refuse`) or open them on the gateway that saw them (`local`). */
export type OfflinePolicy = 'refuse' | 'local';

export interface FleetTls {
  ca: string | null;
  cert: string | null;
  key: string | null;
}

export interface FleetConfig {
  /** redis:// or rediss:// URL, without a password. */
  redis: string;
  password: string | null;
  name: string;
  group: string;
  key: Buffer;
  /** Where the key was read from, for the start-up check of its mode. */
  keyFile: string;
  offline: OfflinePolicy;
  /** Every Redis call gives up after this long. */
  timeoutMs: number;
  /** The grant stream keeps about this many entries (XADD MAXLEN ~). */
  streamLength: number;
  /** PEM contents; null where not given (the system's CAs, no client certificate). */
  tls: FleetTls | null;
}

/** As the YAML gives it (already checked against the schema). */
export interface RawFleet {
  redis: string;
  name: string;
  group: string;
  key_file: string;
  password_file?: string;
  offline?: OfflinePolicy;
  timeout?: string | number;
  stream_length?: number;
  tls?: { ca_file?: string; cert_file?: string; key_file?: string };
}

export const DEFAULT_FLEET_TIMEOUT_MS = 1000;
export const DEFAULT_STREAM_LENGTH = 10_000;

type Problem = (key: string[], message: string) => void;

/** Converts the section; files are read relative to the config's folder. Reports each problem under its key. */
export function parseFleet(raw: RawFleet, configFile: string, readFile: (f: string) => string, problem: Problem): FleetConfig {
  const at = (...k: string[]) => ['fleet', ...k];
  const file = (p: string) => path.resolve(path.dirname(configFile), p);
  const read = (key: string[], p: string): string | null => {
    try {
      return readFile(file(p));
    } catch (err) {
      problem(key, (err as Error).message);
      return null;
    }
  };
  let url: URL | null = null;
  try {
    url = new URL(raw.redis);
    if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') problem(at('redis'), 'must be a redis:// or rediss:// URL');
    else if (url.password) problem(at('redis'), 'put the password in password_file, not in the URL (the config is not a secret)');
  } catch {
    problem(at('redis'), `"${raw.redis}" is not a URL like redis://10.0.0.5:6379/0`);
  }
  const keyText = read(at('key_file'), raw.key_file);
  let key: Buffer = Buffer.alloc(0);
  if (keyText !== null) {
    try {
      key = parseFleetKey(keyText);
    } catch (err) {
      problem(at('key_file'), (err as Error).message);
    }
  }
  const password = raw.password_file === undefined ? null : read(at('password_file'), raw.password_file)?.split('\n')[0] ?? null;
  if (raw.password_file !== undefined && password === '') problem(at('password_file'), 'the password is empty');
  let timeoutMs = DEFAULT_FLEET_TIMEOUT_MS;
  if (raw.timeout !== undefined) {
    try {
      timeoutMs = parseDuration(raw.timeout);
      if (timeoutMs < 10 || timeoutMs > 30_000) problem(at('timeout'), 'must be from 10ms to 30s');
    } catch (err) {
      problem(at('timeout'), (err as Error).message);
    }
  }
  const pem = (k: 'ca_file' | 'cert_file' | 'key_file') => {
    const p = raw.tls?.[k];
    return p === undefined ? null : read(at('tls', k), p);
  };
  const tls = raw.tls ? { ca: pem('ca_file'), cert: pem('cert_file'), key: pem('key_file') } : null;
  if (tls && !!tls.cert !== !!tls.key) problem(at('tls'), 'a client certificate needs both cert_file and key_file');
  if (tls && url?.protocol === 'redis:') problem(at('tls'), 'TLS settings need a rediss:// URL');
  return {
    redis: raw.redis,
    password,
    name: raw.name,
    group: raw.group,
    key,
    keyFile: file(raw.key_file),
    offline: raw.offline ?? 'refuse',
    timeoutMs,
    streamLength: raw.stream_length ?? DEFAULT_STREAM_LENGTH,
    tls,
  };
}
