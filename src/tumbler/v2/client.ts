/**
 * The client's side of Tumbler v2: where to knock (a tumbler2:// URL or a named host in
 * ~/.config/tumbler/hosts.yaml), with which key (an identity file or a passphrase), declaring
 * which addresses. No sockets here and no config loader: `yaml` is loaded only when a hosts file
 * is read.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Family, canonicalSource } from '../../model/address';
import { DEFAULT_TUMBLER_PORT } from '../protocol';
import { Declared } from './datagram';
import { KEY_LENGTH, parseGatewayKey, parseRawKey } from './keys';

export class ClientError extends Error {}

export interface V2Target {
  host: string;
  port: number;
  door: string;
  gatewayKey: Buffer;
  gateway: string | null;
  /** An identity file named by the hosts file. */
  identity: string | null;
  /** The hosts file says to derive the key from a passphrase. */
  passphrase: boolean;
  declared: Declared[];
}

export const TUMBLER2_SCHEME = 'tumbler2:';

/** `tumbler2://HOST[:PORT]/DOOR?key=GATEWAY_KEY[&gateway=NAME]` */
export function parseTumbler2Url(text: string): V2Target {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ClientError(`"${text}" is not a URL like tumbler2://host:8675/door?key=...`);
  }
  if (url.protocol !== TUMBLER2_SCHEME) throw new ClientError(`"${text}": the scheme must be tumbler2://`);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const door = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!host) throw new ClientError(`"${text}" has no host`);
  if (!door) throw new ClientError(`"${text}" names no door: tumbler2://host/DOOR?key=...`);
  const key = url.searchParams.get('key');
  if (!key) throw new ClientError(`"${text}" has no gateway key: add ?key=... (tumblerd pubkey prints it)`);
  return {
    host,
    port: url.port ? Number(url.port) : DEFAULT_TUMBLER_PORT,
    door,
    gatewayKey: gatewayKeyOr(key, text),
    gateway: url.searchParams.get('gateway'),
    identity: null,
    passphrase: false,
    declared: [],
  };
}

function gatewayKeyOr(key: string, where: string): Buffer {
  try {
    return parseGatewayKey(key);
  } catch (err) {
    throw new ClientError(`${where}: ${(err as Error).message}`);
  }
}

export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(env.XDG_CONFIG_HOME ?? path.join(os.homedir(), '.config'), 'tumbler');
}

export const hostsFile = (env: NodeJS.ProcessEnv = process.env) => path.join(configDir(env), 'hosts.yaml');
export const defaultIdentity = (env: NodeJS.ProcessEnv = process.env) => path.join(configDir(env), 'id_tumbler');

const expandHome = (p: string) => (p.startsWith('~/') ? path.join(os.homedir(), p.slice(2)) : p);

/**
 * A named host from the hosts file: its entry name, or an entry whose `host` is `name` (what
 * ssh passes as %h). Null if the file has no such entry; an error names the file and the entry.
 */
export function lookupHost(name: string, file = hostsFile()): V2Target | null {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const YAML = require('yaml') as typeof import('yaml');
  let data: unknown;
  try {
    data = YAML.parse(text, { maxAliasCount: 10 });
  } catch (err) {
    throw new ClientError(`${file}: ${(err as Error).message.split('\n')[0]}`);
  }
  if (typeof data !== 'object' || data === null) throw new ClientError(`${file}: expected entries like "myserver: {host: ..., key: ..., door: ...}"`);
  const entries = Object.entries(data as Record<string, Record<string, unknown>>);
  const found = entries.find(([n]) => n === name) ?? entries.find(([, e]) => e?.host === name);
  if (!found) return null;
  const [entry, e] = found;
  const where = `${file}: ${entry}`;
  const str = (k: string, required: boolean): string | null => {
    const v = e?.[k];
    if (v === undefined && !required) return null;
    if (typeof v !== 'string' || !v) throw new ClientError(`${where}: ${k} must be a string`);
    return v;
  };
  const port = e.port === undefined ? DEFAULT_TUMBLER_PORT : Number(e.port);
  if (!(Number.isInteger(port) && port >= 1 && port <= 65535)) throw new ClientError(`${where}: port must be 1 to 65535`);
  const declare = e.declare === undefined ? [] : Array.isArray(e.declare) ? e.declare : [e.declare];
  return {
    host: str('host', false) ?? entry,
    port,
    door: str('door', true)!,
    gatewayKey: gatewayKeyOr(str('key', true)!, where),
    gateway: str('gateway', false),
    identity: str('identity', false) && path.resolve(path.dirname(file), expandHome(str('identity', false)!)),
    passphrase: e.passphrase === true,
    declared: declare.map((d) => parseDeclared(String(d), where)),
  };
}

/** `ADDR` or `ADDR/LEN`, as --declare and the hosts file give it. */
export function parseDeclared(text: string, where = '--declare'): Declared {
  const [addr, len, extra] = text.split('/');
  const src = canonicalSource(addr);
  if (!src || extra !== undefined) throw new ClientError(`${where} ${text}: not an IPv4 or IPv6 address, with an optional /prefix`);
  const max = src.family === 4 ? 32 : 128;
  const prefix = len === undefined ? max : Number(len);
  if (!(Number.isInteger(prefix) && prefix >= 1 && prefix <= max)) throw new ClientError(`${where} ${text}: the prefix must be 1 to ${max}`);
  return { address: src.address, family: src.family as Family, prefix };
}

/** A user's private key (an Ed25519 seed in base64); refused if others may read it, as ssh does. */
export function readIdentity(file: string): Buffer {
  let st: fs.Stats;
  let text: string;
  try {
    st = fs.statSync(file);
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ClientError(`cannot read the identity ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message} (make one with tumbler keygen)`);
  }
  if ((st.mode & 0o077) !== 0) throw new ClientError(`${file} can be read by others (mode ${(st.mode & 0o777).toString(8)}): chmod 600 it`);
  try {
    return parseRawKey(text, file);
  } catch (err) {
    throw new ClientError((err as Error).message);
  }
}

/** Writes a new private key file (0600, never over an existing one). */
export function writeIdentity(file: string, seed: Buffer): void {
  if (seed.length !== KEY_LENGTH) throw new Error('a key is 32 bytes');
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const fd = fs.openSync(file, 'wx', 0o600);
  try {
    fs.writeSync(fd, seed.toString('base64') + '\n');
  } finally {
    fs.closeSync(fd);
  }
}
