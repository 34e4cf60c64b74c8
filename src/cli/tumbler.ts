#!/usr/bin/env node
/** tumbler: the client. Sends a Tumbler knock, or a classic knock sequence. */
import { Command, Option } from 'commander';
import dgram from 'node:dgram';
import dns from 'node:dns/promises';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Knock } from '../model/door';
import { formatKnock, parseKnock } from '../knock/sequence';
import { otpSequence, parseOtpUri, timeStep } from '../knock/otp';
import { canonicalSource } from '../model/address';
import { DEFAULT_TUMBLER_PORT, formatDatagram, knockDigest, timeString } from '../tumbler/protocol';
import { readSecret } from './secretPrompt';
import { COPY_SPACING_MS, KNOCK_COPIES, MAX_COPIES, sendKnock } from '../tumbler/send';
import { GatewayContext, encodeKnock } from '../tumbler/v2/datagram';
import { ed25519PublicRaw, formatKeyLine, parseGatewayKey, passphraseSeed, randomKey } from '../tumbler/v2/keys';
import {
  ClientError,
  TUMBLER2_SCHEME,
  V2Target,
  defaultIdentity,
  hostsFile,
  lookupHost,
  parseDeclared,
  parseTumbler2Url,
  readIdentity,
  writeIdentity,
} from '../tumbler/v2/client';
import { packageVersion } from './version';

class UsageError extends Error {}

interface Target {
  host: string;
  port: number;
  secret: string | null;
}

export function parseTumblerUrl(text: string): Target {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`"${text}" is not a URL like tumbler://host:8675/`);
  }
  if (url.protocol !== 'tumbler:') throw new UsageError(`"${text}": the scheme must be tumbler://`);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (!host) throw new UsageError(`"${text}" has no host`);
  const port = url.port ? Number(url.port) : DEFAULT_TUMBLER_PORT;
  return { host, port, secret: url.username ? decodeURIComponent(url.username) : null };
}

/** `family` as the --family option gives it. */
async function resolve(host: string, family?: '4' | '6'): Promise<{ address: string; family: 4 | 6 }> {
  if (net.isIP(host)) return { address: host, family: net.isIP(host) as 4 | 6 };
  try {
    const r = await dns.lookup(host, family ? { family: Number(family) } : {});
    return { address: r.address, family: r.family as 4 | 6 };
  } catch (err) {
    throw new UsageError(`cannot resolve ${host}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** The address this host would send from to reach `to`: what the server will see, barring NAT. */
async function localAddressFor(to: { address: string; family: 4 | 6 }, port: number): Promise<string> {
  const s = dgram.createSocket(to.family === 6 ? 'udp6' : 'udp4');
  try {
    await new Promise<void>((res, rej) => {
      s.once('error', rej);
      s.connect(port, to.address, () => res());
    });
    return s.address().address;
  } finally {
    s.close();
  }
}

/** Remembers the minute of the last knock per target, to warn before a knock the server will call a replay. */
function sameMinuteAgain(key: string, minute: string): boolean {
  const file = path.join(process.env.XDG_STATE_HOME ?? path.join(os.homedir(), '.local', 'state'), 'tumbler', 'last-knocks.json');
  let seen: Record<string, string> = {};
  try {
    seen = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    /* first knock, or an unreadable file: nothing to warn about */
  }
  const again = seen[key] === minute;
  seen[key] = minute;
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    fs.writeFileSync(file, JSON.stringify(seen), { mode: 0o600 });
  } catch {
    /* a read-only home only loses the warning */
  }
  return again;
}

interface OpenOptions {
  secretFile?: string;
  from?: string;
  at?: string;
  family?: '4' | '6';
  identity?: string;
  passphrase?: boolean;
  label?: string;
  declare?: string[];
  copies?: string;
}

function copiesOf(opts: OpenOptions): number {
  const n = Number(opts.copies ?? KNOCK_COPIES);
  if (!Number.isInteger(n) || n < 1 || n > MAX_COPIES) throw new UsageError(`--copies ${opts.copies}: a whole number from 1 to ${MAX_COPIES}`);
  return n;
}

/** A tumbler2:// URL, a named host of the hosts file, or else a v1 tumbler:// URL. */
async function openDoor(urlText: string, opts: OpenOptions): Promise<void> {
  const v2 = v2TargetOf(urlText);
  if (v2) {
    for (const k of await knockV2(v2, opts)) process.stdout.write(`knocked on ${k.address}:${v2.port} for door ${v2.door} (tumbler2)\n`);
    return;
  }
  await openV1(urlText, opts);
}

function v2TargetOf(text: string): V2Target | null {
  if (text.startsWith(`${TUMBLER2_SCHEME}//`)) return parseTumbler2Url(text);
  if (text.includes('://')) return null;
  const entry = lookupHost(text);
  if (!entry) throw new UsageError(`"${text}" is neither a tumbler2:// URL nor a host in ${hostsFile()}`);
  return entry;
}

/** The user's key: derived from a passphrase, or read from the identity file. */
async function userSeed(target: V2Target, opts: OpenOptions): Promise<Buffer> {
  if (opts.passphrase || (target.passphrase && !opts.identity)) {
    const pass = process.env.TUMBLER_PASSPHRASE ?? (await readSecret(`passphrase for ${target.door} on ${target.host}: `));
    if (!pass) throw new UsageError('no passphrase given');
    return passphraseSeed(pass, target.gatewayKey, opts.label ?? target.door);
  }
  return readIdentity(opts.identity ?? target.identity ?? defaultIdentity());
}

/**
 * Sends one knock per address family the host has (a dual-stack client may then connect over
 * either), each a fresh datagram. Writes nothing to stdout: `proxy` relays a connection there.
 */
async function knockV2(target: V2Target, opts: OpenOptions): Promise<{ address: string; family: 4 | 6 }[]> {
  const seed = await userSeed(target, opts);
  const declared = [...target.declared, ...(opts.declare ?? []).map((d) => parseDeclared(d))];
  const when = opts.at ? Date.parse(opts.at) : Date.now();
  if (!Number.isFinite(when)) throw new UsageError(`--at ${opts.at}: not a time`);
  const gateway = new GatewayContext(target.gatewayKey);
  const addresses = await resolveAll(target.host, opts.family);
  for (const to of addresses) {
    const datagram = encodeKnock(gateway, seed, { time: when, door: target.door, gateway: target.gateway, declared });
    await sendKnock(datagram, target.port, to, copiesOf(opts));
  }
  return addresses;
}

/** One address per family the host resolves to (only `family`'s if given). */
async function resolveAll(host: string, family?: '4' | '6'): Promise<{ address: string; family: 4 | 6 }[]> {
  if (net.isIP(host)) return [{ address: host, family: net.isIP(host) as 4 | 6 }];
  let all: { address: string; family: number }[];
  try {
    all = await dns.lookup(host, { all: true, ...(family ? { family: Number(family) } : {}) });
  } catch (err) {
    throw new UsageError(`cannot resolve ${host}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const out: { address: string; family: 4 | 6 }[] = [];
  for (const a of all) if (!out.some((o) => o.family === a.family)) out.push({ address: a.address, family: a.family as 4 | 6 });
  return out;
}

async function openV1(urlText: string, opts: OpenOptions): Promise<void> {
  const target = parseTumblerUrl(urlText);
  const to = await resolve(target.host, opts.family);
  let secret = target.secret;
  if (!secret && opts.secretFile) secret = fs.readFileSync(opts.secretFile, 'utf8').split('\n')[0];
  if (!secret && process.env.TUMBLER_SECRET) secret = process.env.TUMBLER_SECRET;
  if (!secret) secret = await readSecret(`secret for ${target.host}: `);
  if (!secret) throw new UsageError('no secret given');

  const fromText = opts.from ?? (await localAddressFor(to, target.port));
  const from = canonicalSource(fromText);
  if (!from) throw new UsageError(`--from ${fromText}: not an IPv4 or IPv6 address`);
  const when = opts.at ? Date.parse(opts.at) : Date.now();
  if (!Number.isFinite(when)) throw new UsageError(`--at ${opts.at}: not a time`);

  const datagram = Buffer.from(formatDatagram(knockDigest(when, from.address, secret)));
  await sendKnock(datagram, target.port, to, copiesOf(opts));
  process.stdout.write(`knocked on ${to.address}:${target.port} as ${from.address}\n`);
  if (sameMinuteAgain(`${to.address}:${target.port}:${from.address}`, timeString(when))) {
    process.stderr.write(
      'tumbler: note: you already knocked on this door in this minute; Tumbler v1 allows one knock per minute, ' +
        'so the server takes this one for a replay and ignores it. Knock again after the minute turns.\n',
    );
  }
}

interface KnockOptions {
  delay: string;
  family?: '4' | '6';
  at?: string;
}

/** HOST PORT..., or a tumbler-otp:// URI alone: then the ports are the sequence of the time step now (or --at). */
async function classicKnock(hostOrUri: string, ports: string[], opts: KnockOptions): Promise<void> {
  let knocks: Knock[];
  let host = hostOrUri;
  try {
    if (/^tumbler-otp:/i.test(hostOrUri)) {
      if (ports.length > 0) throw new Error('give either a tumbler-otp:// URI or a host and ports, not both');
      const when = opts.at ? Date.parse(opts.at) : Date.now();
      if (!Number.isFinite(when)) throw new Error(`--at ${opts.at}: not a time`);
      const uri = parseOtpUri(hostOrUri);
      host = uri.host;
      knocks = otpSequence(uri.spec, timeStep(when, uri.spec.stepMs));
      ports = knocks.map(formatKnock);
    } else {
      if (opts.at) throw new Error('--at only goes with a tumbler-otp:// URI');
      if (ports.length === 0) throw new Error('give the ports to knock, or a tumbler-otp:// URI');
      knocks = ports.map(parseKnock);
    }
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const delay = Number(opts.delay);
  if (!(delay >= 0)) throw new UsageError(`--delay ${opts.delay}: not a number of milliseconds`);
  const to = await resolve(host, opts.family);
  for (const [i, k] of knocks.entries()) {
    if (k.proto === 'udp') {
      const s = dgram.createSocket(to.family === 6 ? 'udp6' : 'udp4');
      await new Promise<void>((res, rej) => s.send(Buffer.alloc(0), k.port, to.address, (e) => (e ? rej(e) : res())));
      s.close();
    } else {
      /* a connect() sends the SYN the firewall logs; it is dropped, so the socket is just abandoned */
      const s = net.connect({ host: to.address, port: k.port });
      s.on('error', () => undefined);
      setTimeout(() => s.destroy(), Math.max(delay, 50)).unref();
    }
    if (i < knocks.length - 1 && delay > 0) await new Promise((r) => setTimeout(r, delay));
  }
  process.stdout.write(`knocked on ${to.address}: ${ports.join(' ')}\n`);
}

const collect = (v: string, prev: string[]) => [...prev, v];

const familyOption = () => new Option('-f, --family <n>', 'use IPv4 or IPv6 when the host has both').choices(['4', '6']);

/** The options of a Tumbler knock, for `tumbler --open URL` and `tumbler open URL` alike. */
function withOpenOptions(cmd: Command): Command {
  return cmd
    .option('--secret-file <file>', 'read the secret from the first line of a file')
    .option('--from <ip>', 'the address the server sees you as, when it is not this host\'s own (NAT)')
    .option('--at <time>', 'knock for another time (ISO 8601), to test clock skew')
    .option('--copies <n>', `send the knock n times, ${COPY_SPACING_MS} ms apart, so that a server under a flood still gets one (the server counts the others as replays)`, String(KNOCK_COPIES))
    .option('-i, --identity <file>', 'tumbler2: the private key (default ~/.config/tumbler/id_tumbler)')
    .option('--passphrase', 'tumbler2: derive the key from a passphrase ($TUMBLER_PASSPHRASE or a prompt)')
    .option('--label <label>', 'tumbler2: the label the passphrase key was made with (default: the door)')
    .option('--declare <addr[/len]>', 'tumbler2: an address the door may open for (repeat per family)', collect, [])
    .addOption(familyOption());
}

const program = withOpenOptions(
  new Command('tumbler')
    .version(packageVersion(), '-V, --version')
    .description('Knock on a tumblerd door: a Tumbler single-packet knock, or a classic port sequence')
    .enablePositionalOptions()
    .option('-o, --open <url>', 'send a Tumbler knock to tumbler://[secret@]host[:port]/ (same as "tumbler open URL")'),
)
  .addHelpText('after', '\nThe secret comes from the URL, --secret-file, $TUMBLER_SECRET, or a prompt that does not echo.')
  .action(async (opts: OpenOptions & { open?: string }) => {
    if (!opts.open) {
      program.help({ error: true });
      return;
    }
    await openDoor(opts.open, opts);
  });

withOpenOptions(
  program
    .command('open')
    .description('send a Tumbler knock')
    .argument('<target>', 'tumbler2://host[:port]/door?key=GATEWAY_KEY, a host named in ~/.config/tumbler/hosts.yaml, or v1\'s tumbler://[secret@]host[:port]/'),
)
  .action((url: string, opts: OpenOptions) => openDoor(url, opts));

program
  .command('knock')
  .description('send a classic knock sequence: a TCP SYN per port, or a UDP datagram for PORT/udp; or the sequence of a tumbler-otp:// URI now')
  .argument('<host>', 'host name or address, or a tumbler-otp:// URI (tumblerd otp-uri prints it): then the ports are derived from the time')
  .argument('[port...]', 'ports to knock, in order: 42 196 69/udp')
  .option('-d, --delay <ms>', 'milliseconds between knocks', '100')
  .option('--at <time>', 'with a tumbler-otp:// URI: the sequence of another time (ISO 8601), to test clock skew')
  .addOption(familyOption())
  .action((host: string, ports: string[], opts: KnockOptions) => classicKnock(host, ports, opts));

program
  .command('keygen')
  .description('make a tumbler2 key pair: FILE (private, 0600) and FILE.pub (the line for the server\'s keys:)')
  .option('-f, --file <file>', 'where to write the private key', defaultIdentity())
  .option('-C, --comment <user>', 'the user the key stands for (the server logs it)', defaultComment())
  .option('--passphrase', 'print the line of a key derived from a passphrase instead (nothing is written)')
  .option('--key <gateway-key>', 'with --passphrase: the gateway\'s public key (tumblerd pubkey)')
  .option('--label <label>', 'with --passphrase: the door the key is for (or another label the user will also give)')
  .action(async (opts: { file: string; comment: string; passphrase?: boolean; key?: string; label?: string }) => {
    if (opts.passphrase) {
      if (!opts.key || !opts.label) throw new UsageError('--passphrase needs --key GATEWAY_KEY and --label DOOR');
      let gw: Buffer;
      try {
        gw = parseGatewayKey(opts.key);
      } catch (err) {
        throw new UsageError(`--key: ${(err as Error).message}`);
      }
      const pass = process.env.TUMBLER_PASSPHRASE ?? (await readSecret('passphrase: '));
      if (pass.length < 12) throw new UsageError('a passphrase needs at least 12 characters');
      process.stdout.write(formatKeyLine(ed25519PublicRaw(passphraseSeed(pass, gw, opts.label)), opts.comment) + '\n');
      return;
    }
    const seed = randomKey();
    const line = formatKeyLine(ed25519PublicRaw(seed), opts.comment) + '\n';
    try {
      writeIdentity(opts.file, seed);
    } catch (err) {
      throw new UsageError(`cannot write ${opts.file}: ${(err as NodeJS.ErrnoException).code === 'EEXIST' ? 'it exists (not overwritten)' : (err as Error).message}`);
    }
    fs.writeFileSync(`${opts.file}.pub`, line, { mode: 0o644 });
    process.stderr.write(`wrote ${opts.file} and ${opts.file}.pub; give the server this line:\n`);
    process.stdout.write(line);
  });

/** Exit codes of `tumbler proxy`, for scripts and ssh: 2 usage or config, 3 knock not sent, 4 port never opened, 1 connection failed later. */
const PROXY_EXIT = { usage: 2, knock: 3, closed: 4, broken: 1 };

program
  .command('proxy')
  .description('for ssh\'s ProxyCommand: knock on HOST (a hosts.yaml entry), wait until PORT accepts, then relay stdin and stdout')
  .argument('<host>', 'a host named in ~/.config/tumbler/hosts.yaml (its name, or its host:)')
  .argument('<port>', 'the TCP port to connect to once the door is open')
  .option('-i, --identity <file>', 'the private key, instead of the hosts file\'s')
  .option('--passphrase', 'derive the key from a passphrase ($TUMBLER_PASSPHRASE or a prompt)')
  .option('-w, --wait <seconds>', 'how long the port may take to accept', '10')
  .action(async (host: string, portText: string, opts: { identity?: string; passphrase?: boolean; wait: string }) => {
    const fail = (code: number, message: string): never => {
      process.stderr.write(`tumbler proxy: ${message}\n`);
      process.exit(code);
    };
    const port = Number(portText);
    const wait = Number(opts.wait) * 1000;
    if (!(Number.isInteger(port) && port >= 1 && port <= 65535)) fail(PROXY_EXIT.usage, `${portText}: not a port`);
    if (!(wait > 0)) fail(PROXY_EXIT.usage, `--wait ${opts.wait}: not a number of seconds`);
    let target: V2Target | null = null;
    try {
      target = lookupHost(host);
    } catch (err) {
      fail(PROXY_EXIT.usage, (err as Error).message);
    }
    if (!target) return fail(PROXY_EXIT.usage, `no entry for ${host} in ${hostsFile()}`);
    try {
      await knockV2(target, opts);
    } catch (err) {
      fail(err instanceof UsageError || err instanceof ClientError ? PROXY_EXIT.usage : PROXY_EXIT.knock, (err as Error).message);
    }
    const socket = await connectWithin(target.host, port, wait);
    if (!socket) return fail(PROXY_EXIT.closed, `${target.host}:${port} did not accept a connection within ${opts.wait} s of the knock`);
    socket.on('error', (e) => fail(PROXY_EXIT.broken, `${target!.host}:${port}: ${e.message}`));
    socket.on('end', () => process.exit(0));
    process.stdin.pipe(socket);
    socket.pipe(process.stdout);
  });

function defaultComment(): string {
  const c = `${os.userInfo().username}@${os.hostname()}`.replace(/[^A-Za-z0-9._@+-]/g, '_');
  return c.slice(0, 64);
}

/**
 * Connects as soon as the port accepts: the firewall drops SYNs until the door opens, so each
 * try is cut short and retried rather than left to the kernel's SYN backoff.
 */
async function connectWithin(host: string, port: number, ms: number): Promise<net.Socket | null> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const s = await new Promise<net.Socket | null>((resolve) => {
      const sock = net.connect({ host, port });
      const t = setTimeout(() => {
        sock.destroy();
        resolve(null);
      }, Math.min(700, Math.max(50, end - Date.now())));
      sock.once('connect', () => {
        clearTimeout(t);
        resolve(sock);
      });
      sock.once('error', () => {
        clearTimeout(t);
        sock.destroy();
        resolve(null);
      });
    });
    if (s) return s;
    await new Promise((r) => setTimeout(r, 100));
  }
  return null;
}

if (require.main === module) {
  program.parseAsync().catch((err: Error) => {
    process.stderr.write(`tumbler: ${err.message}\n`);
    process.exit(err instanceof UsageError || err instanceof ClientError ? 2 : 1);
  });
}
