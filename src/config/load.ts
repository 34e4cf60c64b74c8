/**
 * Reads and validates tumblerd's YAML config. Structure is checked against the JSON Schema that
 * ships in config/ (the same file editors use), meaning is checked here; every error names the
 * file, the line and the key, and all of them are reported at once.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { AJV_OPTIONS } from './schemaOptions';
import { Document, LineCounter, isMap, isNode, isPair, isScalar, parseDocument } from 'yaml';
import { splitCommand } from '../doors/commandTemplate';
import { DEFAULT_FLAGS, parseFlagFilter, parseSequence } from '../knock/sequence';
import { DEFAULT_TUMBLER_PORT } from '../tumbler/protocol';
import { parseDuration } from './duration';
import { isKnownTimeZone } from '../netfilter/zoneTime';
import { ConvertedLegacy, LegacyError, convertLegacyMapped, detectLegacy } from './legacy';
import type { AllowRule, CommandTemplate, DoorConfig, NatMode, OtpAlgorithm, OtpSpec, UserKeyConfig } from '../model/door';
import type { ListenAddress } from '../model/address';
import { makeOtpSpec } from '../knock/otp';
import { parseOneTimeFile } from '../knock/oneTime';
import { DEFAULT_WINDOW_MS, GATEWAY_KEY_FILE, parseKeyLines, parseRawKey } from '../tumbler/v2/keys';
import { MetricsListen, SourceConfig, TumblerdConfig } from './types';
import { MAX_CLOSE_AFTER_MS, MAX_COMMAND_TIMEOUT_MS } from '../doors/stateStore';
import { RawFleet, parseFleet } from '../fleet/config';

export interface ConfigProblem {
  file: string;
  line: number;
  column: number;
  key: string;
  message: string;
}

export class ConfigError extends Error {
  constructor(readonly problems: ConfigProblem[]) {
    super(problems.map(formatProblem).join('\n'));
    this.name = 'ConfigError';
  }
}

export function formatProblem(p: ConfigProblem): string {
  return `${p.file}:${p.line}:${p.column}: ${p.key ? `${p.key}: ` : ''}${p.message}`;
}

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  /** Reads secret_file; relative paths are taken from the config file's folder. */
  readFile?: (file: string) => string;
}

export const DEFAULT_STATE_DIR = '/var/lib/tumblerd';
const DEFAULT_SEQUENCE_TIMEOUT_MS = 10_000;
const DEFAULT_COMMAND_TIMEOUT_MS = 10_000;

type PathPart = string | number;

/** The YAML as the schema lets it be; converted into TumblerdConfig below. */
interface RawConfig {
  log?: { level?: TumblerdConfig['log']['level']; file?: string; format?: 'text' | 'json' };
  state_dir?: string;
  max_sources?: number;
  firewall?: 'iptables' | 'nftables';
  nftables?: { table?: string; chain?: string };
  keep_open_on_exit?: boolean;
  interfaces?: string[];
  sources?: Record<string, unknown>[];
  tumbler?: { listen?: string[]; skew_minutes?: number; window?: unknown; gateway?: string; key_file?: string };
  metrics?: { listen: string };
  fleet?: RawFleet;
  doors: Record<string, Record<string, unknown>>;
}

/** The schema ships beside the sample config; this file sits two folders down in src/ and dist/. */
const SCHEMA_FILE = path.join(__dirname, '..', '..', 'config', 'tumblerd.schema.json');
const BUILT_VALIDATOR = path.join(__dirname, 'schemaValidator.js');

/**
 * `npm run build` compiles the schema into a validator beside this file: start-up then loads
 * plain code instead of Ajv's compiler and a compilation (tens of ms). Run from sources (tests),
 * the schema is compiled here.
 */
function schemaValidator(): ValidateFunction {
  if (fs.existsSync(BUILT_VALIDATOR)) return require(BUILT_VALIDATOR) as ValidateFunction;
  const Ajv = (require('ajv') as typeof import('ajv')).default;
  return new Ajv(AJV_OPTIONS).compile(JSON.parse(fs.readFileSync(SCHEMA_FILE, 'utf8')));
}
const validateSchema = schemaValidator();

function keyName(p: PathPart[]): string {
  return p.reduce<string>((s, part) => (typeof part === 'number' ? `${s}[${part}]` : s ? `${s}.${part}` : part), '');
}

/** Locates config keys in the YAML text so that errors can point at them. */
class Locator {
  private readonly counter = new LineCounter();
  readonly doc: Document;

  constructor(text: string, readonly file: string) {
    this.doc = parseDocument(text, { lineCounter: this.counter, prettyErrors: false, uniqueKeys: true });
  }

  at(offset: number): { line: number; column: number } {
    const pos = this.counter.linePos(offset);
    return { line: pos.line, column: pos.col };
  }

  /** Position of the value at `p`, or of its key when `onKey`, or of the nearest existing parent. */
  find(p: PathPart[], onKey = false): { line: number; column: number } {
    for (let n = p.length; n >= 0; n--) {
      const parentPath = p.slice(0, Math.max(0, n - 1));
      if (onKey && n === p.length && n > 0) {
        const parent = parentPath.length ? this.doc.getIn(parentPath, true) : this.doc.contents;
        if (isMap(parent)) {
          const pair = parent.items.find((it) => isPair(it) && isScalar(it.key) && it.key.value === p[n - 1]);
          if (pair && isNode(pair.key) && pair.key.range) return this.at(pair.key.range[0]);
        }
      }
      const node = n === 0 ? this.doc.contents : this.doc.getIn(p.slice(0, n), true);
      if (isNode(node) && node.range) return this.at(node.range[0]);
    }
    return { line: 1, column: 1 };
  }
}

function schemaMessage(e: ErrorObject): { path: PathPart[]; onKey: boolean; message: string } {
  const p: PathPart[] = e.instancePath
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^[0-9]+$/.test(s) ? Number(s) : s));
  switch (e.keyword) {
    case 'additionalProperties':
      return { path: [...p, e.params.additionalProperty], onKey: true, message: 'unknown key' };
    case 'required':
      return { path: p, onKey: false, message: `missing required key "${e.params.missingProperty}"` };
    case 'propertyNames':
      return {
        path: [...p, e.params.propertyName],
        onKey: true,
        message: 'a door name is letters, digits, "-", "_" and ".", at most 64 characters',
      };
    case 'enum':
      return { path: p, onKey: false, message: `must be one of ${e.params.allowedValues.join(', ')}` };
    default:
      return { path: p, onKey: false, message: e.message ?? 'invalid' };
  }
}

function parseListen(text: string): ListenAddress {
  const m = /^\[([0-9a-fA-F:.]+)\]:([0-9]{1,5})$/.exec(text) ?? /^([0-9.]*|\*):([0-9]{1,5})$/.exec(text);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !(port >= 1 && port <= 65535)) {
    throw new Error(`"${text}" is not an address and port like "0.0.0.0:8675" or "[::]:8675"`);
  }
  const host = m[1] === '' || m[1] === '*' ? '0.0.0.0' : m[1];
  return { host, port };
}

function parseAllow(text: string): AllowRule {
  const [proto, portText] = text.split('/');
  const port = Number(portText);
  if (!(port >= 1 && port <= 65535)) throw new Error(`"${text}": port must be from 1 to 65535`);
  return { proto: proto as 'tcp' | 'udp', port };
}

function asList<T>(value: T | T[] | undefined): T[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

/**
 * The secrets printed in the documentation and the sample configs ("open-pAsSwOrD", from the
 * Dr. Dobb's article): anyone can read them, so a door with one is as good as open.
 */
export function isSampleSecret(secret: string): boolean {
  return /pAsSwOrD/.test(secret);
}

interface RawOtp {
  secret?: string;
  secret_file?: string;
  ports: string;
  length: number;
  step?: unknown;
  algorithm?: OtpAlgorithm;
}

function readOtp(o: RawOtp, file: string, readFile: (f: string) => string): OtpSpec {
  if ((o.secret === undefined) === (o.secret_file === undefined)) throw new Error('give one of secret and secret_file');
  const secret = o.secret ?? readFile(path.resolve(path.dirname(file), o.secret_file!)).split('\n')[0];
  return makeOtpSpec(secret, o.ports, o.length, o.step === undefined ? 30_000 : parseDuration(o.step), o.algorithm);
}

/** What is wrong with a one-time sequences file, as config errors. */
function checkOneTimeFile(f: string, readFile: (f: string) => string): string[] {
  let contents;
  try {
    contents = parseOneTimeFile(Buffer.from(readFile(f)));
  } catch (err) {
    return [(err as Error).message];
  }
  const out = contents.bad.map((b) => `${f}:${b.line}: ${b.message}`);
  if (contents.unused.length === 0) out.push(`${f} has no unused sequence left (knockd would not start either)`);
  return out;
}

/** Validates config text; `file` is only used in messages and to resolve secret_file. */
export function parseConfig(text: string, file: string, options: LoadOptions = {}): TumblerdConfig {
  const env = options.env ?? process.env;
  const readFile = options.readFile ?? ((f: string) => fs.readFileSync(f, 'utf8'));
  const loc = new Locator(text, file);
  const problems: ConfigProblem[] = [];
  const problem = (p: PathPart[], message: string, onKey = false) =>
    problems.push({ file, ...loc.find(p, onKey), key: keyName(p), message });

  if (loc.doc.errors.length > 0) {
    for (const e of loc.doc.errors) {
      problems.push({ file, ...loc.at(e.pos[0]), key: '', message: e.message.split('\n')[0] });
    }
    throw new ConfigError(problems);
  }
  let data: RawConfig;
  try {
    /* few aliases: a config has no use for them, and each one can multiply the document (YAML bombs) */
    data = (loc.doc.toJS({ maxAliasCount: 50 }) ?? {}) as RawConfig;
  } catch (err) {
    problems.push({ file, line: 1, column: 1, key: '', message: (err as Error).message });
    throw new ConfigError(problems);
  }
  if (!validateSchema(data)) {
    const seen = new Set<string>();
    for (const e of validateSchema.errors ?? []) {
      /* anyOf failures repeat each branch's complaint; the anyOf line alone says enough */
      if (e.schemaPath.includes('/anyOf/')) continue;
      const m = schemaMessage(e);
      const id = `${keyName(m.path)}|${m.message}`;
      if (seen.has(id)) continue;
      seen.add(id);
      const described = (e.parentSchema as { description?: string } | undefined)?.description;
      const message = e.keyword !== 'anyOf' ? m.message : described ? `should be ${described[0].toLowerCase()}${described.slice(1)}` : 'has the wrong type or form';
      problem(m.path, message, m.onKey);
    }
    throw new ConfigError(problems);
  }

  /* Each step below converts one key and reports what it cannot convert, then goes on. */
  const attempt = <T>(p: PathPart[], fallback: T, f: () => T): T => {
    try {
      return f();
    } catch (err) {
      problem(p, (err as Error).message);
      return fallback;
    }
  };
  const commands = (p: PathPart[], value: string | string[] | undefined): CommandTemplate[] =>
    asList(value).map((line, i) => attempt([...p, ...(Array.isArray(value) ? [i] : [])], [], () => splitCommand(line)));

  const sources: SourceConfig[] = (data.sources ?? []).map((s, i): SourceConfig => {
    const prefixes = asList(s.prefix as string | string[]);
    const kinds = ['file', 'kmsg', 'journald'].filter((k) => s[k] !== undefined && s[k] !== false);
    if (kinds.length !== 1) problem(['sources', i], 'a source is exactly one of file:, kmsg: or journald: true');
    if (s.timezone !== undefined && !isKnownTimeZone(s.timezone as string)) {
      problem(['sources', i, 'timezone'], `"${s.timezone}" is not an IANA time zone name (such as "Europe/Berlin" or "UTC")`);
    } else if (s.timezone !== undefined && s.file === undefined) {
      problem(['sources', i, 'timezone'], 'only file sources have stamps without a zone');
    }
    if (s.file !== undefined) {
      return { kind: 'file', path: s.file as string, prefixes, ...(s.timezone !== undefined && { timeZone: s.timezone as string }) };
    }
    if (s.kmsg !== undefined) return { kind: 'kmsg', path: s.kmsg as string, prefixes };
    return { kind: 'journald', prefixes };
  });

  const secretOwner = new Map<string, string>();
  /* one key, one user: the same key under two names would make the log lie about who knocked */
  const keyOwner = new Map<string, string>();
  const doorKeys = (at: (key: string) => PathPart[], d: Record<string, unknown>): { keys: UserKeyConfig[]; files: string[] } => {
    const keys: UserKeyConfig[] = [];
    /* `where` names a file or a block: a one-line list item needs no line number */
    const add = (p: PathPart[], text: string, where: string | null) => {
      const parsed = parseKeyLines(text);
      for (const e of parsed.errors) problem(p, where === null ? e.message : `${where}line ${e.line}: ${e.message}`);
      for (const k of parsed.keys) {
        const key = k.key.toString('base64');
        const owner = keyOwner.get(key);
        if (owner !== undefined && owner !== k.comment) problem(p, `${where ?? ''}the key of "${k.comment}" is also listed as "${owner}"`);
        keyOwner.set(key, k.comment);
        if (!keys.some((x) => x.key === key)) keys.push({ user: k.comment, key });
      }
    };
    const inline = d.keys as string | string[] | undefined;
    if (typeof inline === 'string') add(at('keys'), inline, '');
    else (inline ?? []).forEach((line, i) => add([...at('keys'), i], line, null));
    const files = asList(d.keys_file as string | string[] | undefined).map((f) => path.resolve(path.dirname(file), f));
    files.forEach((f, i) => {
      const p = Array.isArray(d.keys_file) ? [...at('keys_file'), i] : at('keys_file');
      const text = attempt(p, null, () => readFile(f));
      if (text !== null) add(p, text, `${f}: `);
    });
    return { keys, files };
  };
  const doors: DoorConfig[] = Object.entries(data.doors).map(
    ([name, d]) => {
      const at = (key: string): PathPart[] => ['doors', name, key];
      const sequence =
        d.sequence === undefined ? null : attempt(at('sequence'), null, () => parseSequence(d.sequence));
      const secretKeys = ['secret', 'secret_file', 'secret_env'].filter((k) => d[k] !== undefined);
      let secret: string | null = null;
      let secretFile: string | null = null;
      if (secretKeys.length > 1) problem(at(secretKeys[1]), 'give only one of secret, secret_file and secret_env');
      else if (d.secret !== undefined) secret = d.secret as string;
      else if (d.secret_file !== undefined) {
        const f = path.resolve(path.dirname(file), d.secret_file as string);
        secretFile = f;
        secret = attempt(at('secret_file'), null, () => readFile(f).split('\n')[0]);
      } else if (d.secret_env !== undefined) {
        secret = env[d.secret_env as string] ?? null;
        if (!secret) problem(at('secret_env'), `environment variable ${d.secret_env} is not set`);
      }
      if (secretKeys.length === 1 && secret === '') problem(at(secretKeys[0]), 'the secret is empty');
      if (secret && isSampleSecret(secret)) {
        problem(at(secretKeys[0]), 'this is the sample secret from the documentation, which everyone can read: choose a long random one (head -c 24 /dev/urandom | base64)');
      }
      if (secret) {
        const other = secretOwner.get(secret);
        if (other) problem(at(secretKeys[0]), `door "${other}" has the same secret: a knock could not tell them apart`);
        else secretOwner.set(secret, name);
      }
      const v2 = doorKeys(at, d);
      const door: DoorConfig = {
        name,
        sequence,
        sequenceTimeoutMs:
          d.sequence_timeout === undefined
            ? DEFAULT_SEQUENCE_TIMEOUT_MS
            : attempt(at('sequence_timeout'), 0, () => parseDuration(d.sequence_timeout)),
        flags: d.tcpflags === undefined ? DEFAULT_FLAGS : attempt(at('tcpflags'), DEFAULT_FLAGS, () => parseFlagFilter(d.tcpflags as string)),
        secret: secret || null,
        open: commands(at('open'), d.open as string | string[] | undefined),
        close: commands(at('close'), d.close as string | string[] | undefined),
        open6: commands(at('open6'), d.open6 as string | string[] | undefined),
        close6: commands(at('close6'), d.close6 as string | string[] | undefined),
        closeAfterMs:
          d.close_after === undefined ? null : attempt(at('close_after'), null, () => parseDuration(d.close_after)),
        commandTimeoutMs:
          d.command_timeout === undefined
            ? DEFAULT_COMMAND_TIMEOUT_MS
            : attempt(at('command_timeout'), 0, () => parseDuration(d.command_timeout)),
        allow: ((d.allow as string[] | undefined) ?? []).map((a, i) =>
          attempt([...at('allow'), i], { proto: 'tcp' as const, port: 0 }, () => parseAllow(a)),
        ),
        keys: v2.keys,
        keysFiles: v2.files,
        nat: (d.nat as NatMode | undefined) ?? 'auto',
        grantPrefix: { 4: (d.grant_prefix4 as number | undefined) ?? 32, 6: (d.grant_prefix6 as number | undefined) ?? 128 },
        ...(d.max_open !== undefined ? { maxOpen: d.max_open as number } : {}),
        secretFile,
        fleet: d.fleet === true,
        ...(d.interfaces !== undefined && { interfaces: d.interfaces as string[] }),
      };
      const sequenceKeys = ['sequence', 'otp', 'one_time_sequences'].filter((k) => d[k] !== undefined);
      if (sequenceKeys.length > 1) problem(at(sequenceKeys[1]), `give only one of ${sequenceKeys.join(' and ')}`);
      else if (d.otp !== undefined) door.otp = attempt(at('otp'), null, () => readOtp(d.otp as RawOtp, file, readFile));
      else if (d.one_time_sequences !== undefined) {
        door.oneTimeSequences = path.resolve(path.dirname(file), d.one_time_sequences as string);
        for (const m of checkOneTimeFile(door.oneTimeSequences, readFile)) problem(at('one_time_sequences'), m);
      }
      if (Array.isArray(d.open6) && d.open6.length === 0) (door.nothing6 ??= { open: false, close: false }).open = true;
      /* nothing opened for IPv6 has nothing to close either, unless close6 says otherwise */
      if ((Array.isArray(d.close6) && d.close6.length === 0) || (door.nothing6?.open && d.close6 === undefined)) {
        (door.nothing6 ??= { open: false, close: false }).close = true;
      }
      if (!door.sequence && !door.secret && secretKeys.length === 0 && sequenceKeys.length === 0 && d.keys === undefined && d.keys_file === undefined) {
        problem(['doors', name], 'the door has no sequence, no secret and no keys: nothing can open it', true);
      }
      for (const k of ['grant_prefix4', 'grant_prefix6']) {
        if (d[k] === undefined) continue;
        if (d.keys === undefined && d.keys_file === undefined) problem(at(k), `${k} is for Tumbler v2 knocks: the door has no keys`);
        /* the allow: backends keep single addresses (ipset hash:ip,port; nftables address sets) */
        else if (d.allow !== undefined && d[k] !== (k === 'grant_prefix4' ? 32 : 128)) problem(at(k), 'prefix grants need open/close commands: allow: opens single addresses');
        /* a fleet grant carries one address to the other gateways */
        else if (d.fleet === true && d[k] !== (k === 'grant_prefix4' ? 32 : 128)) problem(at(k), 'prefix grants cannot be shared with the fleet: one or the other');
      }
      if (d.nat !== undefined && d.keys === undefined && d.keys_file === undefined) {
        problem(at('nat'), 'nat is for Tumbler v2 knocks: the door has no keys');
      }
      if (door.open.length === 0 && door.allow.length === 0 && d.open === undefined) {
        problem(['doors', name], 'the door does nothing: give it open: commands or allow: ports', true);
      }
      if ((d.close !== undefined || d.close6 !== undefined) && d.close_after === undefined) {
        problem(at(d.close !== undefined ? 'close' : 'close6'), 'close needs close_after to say when to run it');
      }
      if (d.close_after !== undefined && d.close === undefined && d.close6 === undefined && d.allow === undefined && (d.open !== undefined || d.open6 !== undefined)) {
        problem(at('close_after'), 'close_after with open but no close or allow: nothing would close the door (give it close:, or drop close_after)');
      }
      if (door.closeAfterMs !== null && door.closeAfterMs > MAX_CLOSE_AFTER_MS) {
        problem(at('close_after'), `must be at most ${MAX_CLOSE_AFTER_MS / 86_400_000} days`);
      }
      if (door.commandTimeoutMs > MAX_COMMAND_TIMEOUT_MS) {
        problem(at('command_timeout'), `must be at most ${MAX_COMMAND_TIMEOUT_MS / 86_400_000} day`);
      }
      if (d.allow !== undefined && d.close_after === undefined) {
        problem(at('allow'), 'allow needs close_after: a door tumbler opens must close again');
      }
      if (door.fleet && !data.fleet) problem(at('fleet'), 'a fleet door needs the fleet: section (Redis, name, group, key_file)');
      if (door.fleet && d.close_after === undefined) problem(at('fleet'), 'a fleet door needs close_after: what it opens on every gateway must close again');
      if (door.sequenceTimeoutMs <= 0 && d.sequence !== undefined) {
        problem(at('sequence_timeout'), 'must be longer than zero');
      }
      if (door.commandTimeoutMs <= 0 && d.command_timeout !== undefined) {
        problem(at('command_timeout'), 'must be longer than zero');
      }
      return door;
    },
  );

  const anyKeys = Object.values(data.doors).some((d) => d.keys !== undefined || d.keys_file !== undefined);
  const anySecret = doors.some((d) => d.secret) || anyKeys;
  const stateDir = data.state_dir ?? DEFAULT_STATE_DIR;
  const keyFileSetting = data.tumbler?.key_file ? path.resolve(path.dirname(file), data.tumbler.key_file) : null;
  const keyFile = keyFileSetting ?? path.join(stateDir, GATEWAY_KEY_FILE);
  /* read only for doors that need it: a config without v2 doors works without a gateway key */
  const gatewayKey = anyKeys
    ? attempt(['tumbler', 'key_file'], null, () => {
        let text: string;
        try {
          text = readFile(keyFile);
        } catch (err) {
          throw new Error(`cannot read the gateway key ${keyFile} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): run tumblerd keygen`);
        }
        return parseRawKey(text, keyFile).toString('base64');
      })
    : null;
  const windowMs =
    data.tumbler?.window === undefined ? DEFAULT_WINDOW_MS : attempt(['tumbler', 'window'], DEFAULT_WINDOW_MS, () => parseDuration(data.tumbler!.window));
  /* both families: a dual-stack client knocks with the address it has, often IPv6 */
  const listenSpec: string[] = data.tumbler?.listen ?? (anySecret ? [`0.0.0.0:${DEFAULT_TUMBLER_PORT}`, `[::]:${DEFAULT_TUMBLER_PORT}`] : []);
  const listen = listenSpec.map((l, i) =>
    attempt(['tumbler', 'listen', i], { host: '', port: 0 }, () => parseListen(l)),
  );
  /* an address the operator wrote must work; the default IPv6 one only where the kernel has IPv6 */
  if (data.tumbler?.listen === undefined) for (const l of listen) if (l.host === '::') l.ifAvailable = true;
  if (anySecret && listen.length === 0) {
    problem(['tumbler', 'listen'], 'doors have secrets or keys but tumbler listens nowhere');
  }
  const metricsListen = data.metrics
    ? attempt<MetricsListen | null>(['metrics', 'listen'], null, () =>
        data.metrics!.listen.startsWith('/') ? { path: data.metrics!.listen } : parseListen(data.metrics!.listen),
      )
    : null;
  const withSequence = doors.filter((d) => d.sequence || d.otp || d.oneTimeSequences);
  if (withSequence.length > 0 && sources.length === 0) {
    const d = withSequence[0];
    problem(['doors', d.name, d.otp ? 'otp' : d.oneTimeSequences ? 'one_time_sequences' : 'sequence'], 'doors have knock sequences but no log source is configured (sources:)');
  }

  const fleet = data.fleet ? parseFleet(data.fleet, file, readFile, (p, message) => problem(p, message)) : null;

  if (problems.length > 0) throw new ConfigError(problems);
  return {
    file,
    log: { level: data.log?.level ?? 'info', file: data.log?.file ?? null, format: data.log?.format ?? 'text' },
    stateDir,
    maxSources: data.max_sources ?? 100_000,
    firewall: data.firewall ?? null,
    nftables: { table: data.nftables?.table ?? 'inet filter', chain: data.nftables?.chain ?? 'input' },
    keepOpenOnExit: data.keep_open_on_exit ?? false,
    ...(data.interfaces !== undefined && { interfaces: data.interfaces }),
    sources,
    tumbler: {
      listen,
      skewMinutes: data.tumbler?.skew_minutes ?? 1,
      windowMs,
      gateway: data.tumbler?.gateway ?? null,
      keyFile: keyFileSetting,
      gatewayKey,
    },
    metrics: metricsListen ? { listen: metricsListen } : null,
    fleet,
    doors,
  };
}

/**
 * Reads and validates a config file; throws ConfigError (which names the file) on any problem.
 * A legacy tumblerd.conf or knockd.conf is converted first, and its errors are those of the
 * converted YAML (`tumblerd convert` shows it).
 */
export function loadConfigFile(file: string, options: LoadOptions = {}): TumblerdConfig {
  let text: string;
  let legacy: ConvertedLegacy | null = null;
  try {
    text = fs.readFileSync(file, 'utf8');
    if (detectLegacy(text)) {
      legacy = convertLegacyMapped(text, file);
      text = legacy.yaml;
    }
  } catch (err) {
    if (err instanceof LegacyError) throw new ConfigError(err.problems.map((p) => ({ file, column: 1, ...p })));
    throw new ConfigError([{ file, line: 0, column: 0, key: '', message: (err as Error).message }]);
  }
  try {
    return parseConfig(text, file, options);
  } catch (err) {
    if (!legacy || !(err instanceof ConfigError)) throw err;
    /* point at the legacy file's lines, not at the YAML it was converted to */
    const conv = legacy;
    throw new ConfigError(err.problems.map((p) => ({ ...p, column: 1, ...(conv.origin(p.key) ?? { line: 1, key: p.key }) })));
  }
}
