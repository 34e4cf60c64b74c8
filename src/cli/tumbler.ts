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
}

async function openDoor(urlText: string, opts: OpenOptions): Promise<void> {
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
  const s = dgram.createSocket(to.family === 6 ? 'udp6' : 'udp4');
  await new Promise<void>((res, rej) => s.send(datagram, target.port, to.address, (e) => (e ? rej(e) : res())));
  s.close();
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

const familyOption = () => new Option('-f, --family <n>', 'use IPv4 or IPv6 when the host has both').choices(['4', '6']);

/** The options of a Tumbler knock, for `tumbler --open URL` and `tumbler open URL` alike. */
function withOpenOptions(cmd: Command): Command {
  return cmd
    .option('--secret-file <file>', 'read the secret from the first line of a file')
    .option('--from <ip>', 'the address the server sees you as, when it is not this host\'s own (NAT)')
    .option('--at <time>', 'knock for another time (ISO 8601), to test clock skew')
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

withOpenOptions(program.command('open').description('send a Tumbler knock').argument('<url>', 'tumbler://[secret@]host[:port]/'))
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

if (require.main === module) {
  program.parseAsync().catch((err: Error) => {
    process.stderr.write(`tumbler: ${err.message}\n`);
    process.exit(err instanceof UsageError ? 2 : 1);
  });
}
