#!/usr/bin/env -S node --max-semi-space-size=4
/** tumblerd: the daemon, and the commands a sysadmin runs around it. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { otpUri, otpauthUri } from '../knock/otp';
import { Command, Option } from 'commander';
import { convertLegacy } from '../config/legacy';
import YAML from 'yaml';
import { ConfigError, DEFAULT_STATE_DIR, loadConfigFile } from '../config/load';
import { TumblerdConfig } from '../config/types';
import type { DaemonOptions } from '../daemon';
import { formatScanReport, scanLogs } from './scan';
import { isKnownTimeZone } from '../netfilter/zoneTime';
import { OpenDoor } from '../doors/dispatcher';
import type { FleetStatus } from '../fleet/fleet';
/* Modules only some commands need are loaded by those commands: start-up is part of every `scan`. */
import { DEFAULT_TUMBLER_PORT } from '../tumbler/protocol';
import { GATEWAY_KEY_FILE, formatGatewayKey, parseRawKey, randomKey, x25519PublicRaw } from '../tumbler/v2/keys';
import { packageVersion } from './version';

export const DEFAULT_CONFIG = '/etc/tumblerd/tumblerd.yaml';

/** For options given more than once. */
const collect = (value: string, list: string[]) => [...list, value];

function loadOrExit(file: string): TumblerdConfig {
  try {
    return loadConfigFile(file);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`tumblerd: the config has ${err.problems.length} error(s):\n${err.message}\n`);
    process.exit(2);
  }
}

/** Where the gateway key is: the config's tumbler.key_file, else state_dir/gateway.key, read leniently like stateDirOf. */
function gatewayKeyFileOf(file: string): string {
  let keyFile: unknown;
  try {
    keyFile = (YAML.parse(fs.readFileSync(file, 'utf8')) as { tumbler?: { key_file?: unknown } } | null)?.tumbler?.key_file;
  } catch {
    /* no config, or not YAML: the default place */
  }
  return typeof keyFile === 'string' ? path.resolve(path.dirname(file), keyFile) : path.join(stateDirOf(file, true), GATEWAY_KEY_FILE);
}

/** What a client needs: the public key, and a URL per v2 door (or one to fill in). */
function printGatewayKey(configFile: string, keyFile: string): void {
  const pub = formatGatewayKey(x25519PublicRaw(parseRawKey(fs.readFileSync(keyFile, 'utf8'), keyFile)));
  let doors = ['DOOR'];
  let port = DEFAULT_TUMBLER_PORT;
  try {
    const c = loadConfigFile(configFile);
    const v2 = c.doors.filter((d) => d.keys?.length).map((d) => d.name);
    if (v2.length) doors = v2;
    if (c.tumbler.listen.length) port = c.tumbler.listen[0].port;
  } catch {
    /* keygen comes before the config is complete: a URL to fill in */
  }
  process.stdout.write(`gateway public key: ${pub}\n`);
  for (const d of doors) process.stdout.write(`client URL: tumbler2://${os.hostname()}${port === DEFAULT_TUMBLER_PORT ? '' : `:${port}`}/${d}?key=${pub}\n`);
}

/**
 * Where the running daemon keeps its socket. A config that no longer validates (being edited,
 * say) still names it: status and revoke must work exactly when something is wrong.
 */
function stateDirOf(file: string, quiet = false): string {
  try {
    return loadConfigFile(file).stateDir;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    if (!quiet) process.stderr.write(`tumblerd: warning: ${file} does not validate; using its state_dir anyway\n`);
    try {
      const raw = YAML.parse(fs.readFileSync(file, 'utf8'));
      if (typeof raw?.state_dir === 'string') return raw.state_dir;
    } catch {
      /* not even YAML: the default place */
    }
    return DEFAULT_STATE_DIR;
  }
}

function summary(c: TumblerdConfig): string {
  const seq = c.doors.filter((d) => d.sequence || d.otp || d.oneTimeSequences).length;
  const sec = c.doors.filter((d) => d.secret).length;
  const keys = c.doors.filter((d) => d.keys?.length).length;
  const users = new Set(c.doors.flatMap((d) => (d.keys ?? []).map((k) => k.user))).size;
  return (
    `${c.file}: OK: ${c.doors.length} door(s) (${seq} with a knock sequence, ${sec} with a Tumbler secret, ` +
    `${keys} with Tumbler v2 keys of ${users} user(s)), ` +
    `${c.sources.length} log source(s), Tumbler on ${c.tumbler.listen.map((l) => `${l.host}:${l.port}`).join(' ') || 'nothing'}`
  );
}

/** The daemon under this process's signals: SIGHUP reopens the log and reloads, SIGTERM/SIGINT stop. */
async function runDaemon(options: DaemonOptions): Promise<void> {
  const { Daemon } = await import('../daemon');
  const daemon = new Daemon(options);
  /* from the first moment: a SIGTERM during start-up must not kill tumblerd with its firewall half set up */
  let started = false;
  const stop = async (signal: string) => {
    await daemon.stop(signal);
    daemon.log.on('finish', () => process.exit(0));
    daemon.log.end();
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGHUP', () => {
    if (!started) return;
    daemon.reopenLogs();
    void daemon.reload('SIGHUP');
  });
  await daemon.start();
  started = true;
}

function formatFleet(f: FleetStatus): string {
  const ago = (ms: number) => `${(ms / 1000).toFixed(1)}s ago`;
  const lines = [
    `fleet ${f.group} as ${f.name}: Redis ${f.redis} ${f.state} since ${new Date(f.since).toISOString()}${f.error ? ` (${f.error})` : ''}; offline: ${f.offline}`,
    `  members: ${f.members.map((m) => `${m.name} (${ago(m.seenMsAgo)})`).join(', ') || 'none seen'}`,
    `  stream: ${f.stream ? `${f.stream.lag ?? '?'} unread, ${f.stream.pending} unacknowledged` : 'unknown'}; ` +
      `published ${f.published}, refused ${f.refused}, opened here only ${f.openedLocallyOnly}; ` +
      `received ${f.received.received}, applied ${f.received.applied}` +
      Object.entries(f.received.dropped).map(([why, n]) => `, ${why} ${n}`).join(''),
  ];
  if (f.lastReceived) {
    const l = f.lastReceived;
    lines.push(`  last received: ${l.door} for ${l.src} from ${l.from}: read ${l.receivedMs} ms and open ${l.openedMs} ms after the knock`);
  }
  return lines.join('\n') + '\n';
}

const program = new Command('tumblerd')
  .version(packageVersion(), '-V, --version')
  .description('Secure port-knocking daemon: opens doors for classic knocks read from the firewall log and for Tumbler knocks')
  .enablePositionalOptions()
  .option('-c, --config <file>', 'config file (YAML)', DEFAULT_CONFIG)
  .option('--check', 'validate the config, print a one-line summary or every error, and exit')
  .option('--dry-run', 'log the commands doors would run instead of running them')
  .addOption(new Option('--log-level <level>', 'log level, overriding the config').choices(['error', 'warn', 'info', 'verbose', 'debug']))
  .action(async (opts: { config: string; check?: boolean; dryRun?: boolean; logLevel?: string }) => {
    const config = loadOrExit(opts.config);
    if (opts.check) {
      process.stdout.write(summary(config) + '\n');
      const { formatResult, runPreflight } = await import('../preflight/preflight');
      const { PREFLIGHT_CHECKS } = await import('../preflight/securityChecks');
      const results = await runPreflight(config, PREFLIGHT_CHECKS);
      for (const r of results) if (r.status !== 'ok') process.stdout.write(formatResult(r) + '\n');
      if (results.some((r) => r.status === 'fail')) process.exit(1);
      return;
    }
    await runDaemon({ configFile: opts.config, config, dryRun: !!opts.dryRun, logLevel: opts.logLevel });
  });

program
  .command('scan')
  .description('replay logs (plain or .gz) through the knock rules without running anything, and report which doors would have opened')
  .argument('<logfile...>', 'log files to read from the start; - for standard input')
  .option('-c, --config <file>', 'config file (YAML)', DEFAULT_CONFIG)
  .option('--json', 'print the report as JSON')
  .option('--address <ip>', "count only packets sent to this address (the logging host's); repeatable", collect, [])
  .option('--interface <name>', 'count only packets that came in on this interface; repeatable', collect, [])
  .option('--this-host', "count only packets to this host's own interfaces and addresses, as the daemon does")
  .option('--timezone <zone>', 'IANA zone of stamps that carry none (traditional syslog); default: this machine\'s')
  .action(async (files: string[], opts: { config: string; json?: boolean; address?: string[]; interface?: string[]; thisHost?: boolean; timezone?: string }) => {
    const config = loadOrExit(opts.config);
    if (opts.timezone !== undefined && !isKnownTimeZone(opts.timezone)) throw new Error(`--timezone ${opts.timezone}: not an IANA time zone name`);
    const report = await scanLogs(config, files, {
      addresses: opts.address,
      interfaces: opts.interface,
      thisHost: opts.thisHost,
      timeZone: opts.timezone,
    });
    process.stdout.write((opts.json ? JSON.stringify(report, null, 2) : formatScanReport(config, report)) + '\n');
  });

program
  .command('doctor')
  .description('check that the setup can work (firewall log rule, log source, prefix, backend, ICMPv6, door programs, listener) and say how to fix what cannot; exits 1 on a failure')
  .option('-c, --config <file>', 'config file (YAML)', DEFAULT_CONFIG)
  .action(async (opts: { config: string }) => {
    const { runDoctor } = await import('./doctor');
    process.exitCode = await runDoctor(loadOrExit(opts.config), (t) => process.stdout.write(t));
  });

program
  .command('demo')
  .description('as root: two throwaway network namespaces with a logging firewall, tumblerd between them, classic and Tumbler knocks opening a port and closing it again; your own firewall is not touched')
  .action(async () => {
    const { runDemo } = await import('./demo');
    process.exitCode = await runDemo((line) => process.stdout.write(line + '\n'));
  });

program
  .command('convert')
  .description('print the tumblerd YAML equivalent of a legacy tumblerd.conf or knockd.conf')
  .argument('<file>', 'the legacy config')
  .action((file: string) => {
    process.stdout.write(convertLegacy(fs.readFileSync(file, 'utf8'), file));
  });

program
  .command('otp-uri')
  .description('print the tumbler-otp:// URI of a door with an otp: sequence: everything a client needs to knock (it holds the secret)')
  .argument('<door>', 'door name')
  .option('-c, --config <file>', 'config file (YAML)', DEFAULT_CONFIG)
  .option('--host <host>', 'the name or address clients knock on', os.hostname())
  .option('--otpauth', 'also print the otpauth:// URI a phone TOTP app enrols from (its code, cut into groups of digits, is the sequence)')
  .action((door: string, opts: { config: string; host: string; otpauth?: boolean }) => {
    const config = loadOrExit(opts.config);
    const d = config.doors.find((x) => x.name === door);
    if (!d?.otp) {
      process.stderr.write(`tumblerd: ${d ? `door ${door} has no otp: sequence` : `no door named ${door}`} in ${config.file}\n`);
      process.exit(2);
    }
    process.stdout.write(otpUri(opts.host, door, d.otp) + '\n');
    if (opts.otpauth) process.stdout.write(otpauthUri(opts.host, door, d.otp) + '\n');
  });

program
  .command('status')
  .description('list the doors the running daemon has open')
  .option('-c, --config <file>', 'config file (YAML), for its state_dir', DEFAULT_CONFIG)
  .option('--json', 'print JSON')
  .action(async (opts: { config: string; json?: boolean }) => {
    const { controlRequest } = await import('../control/server');
    const reply = await controlRequest(stateDirOf(opts.config), { cmd: 'status' });
    const doors = (reply.doors ?? []) as OpenDoor[];
    const fleet = reply.fleet as FleetStatus | undefined;
    if (opts.json) {
      process.stdout.write(JSON.stringify(fleet ? { doors, fleet } : doors, null, 2) + '\n');
      return;
    }
    if (fleet) process.stdout.write(formatFleet(fleet));
    if (doors.length === 0) process.stdout.write('no door is open\n');
    for (const d of doors) {
      process.stdout.write(
        `${d.door}  ${d.src}  via ${d.via}${d.user ? `  user ${d.user}` : ''}  opened ${new Date(d.openedAt).toISOString()}  ` +
          `closes ${d.closesAt === null ? 'never' : new Date(d.closesAt).toISOString()}` +
          (d.closeFailingSince ? `  CLOSE FAILING since ${new Date(d.closeFailingSince).toISOString()}: ${d.lastCloseError}` : '') +
          '\n',
      );
    }
  });

program
  .command('keygen')
  .description('make a key: without --fleet, the Tumbler v2 gateway key (state_dir/gateway.key, 0600) unless it exists, and print its public key and client URLs')
  .option('-c, --config <file>', 'config file (YAML), for state_dir and tumbler.key_file', DEFAULT_CONFIG)
  .option('--fleet <file>', 'write a new fleet key (fleet.key_file) instead: copy the same file to every gateway of the group')
  .action(async (opts: { config: string; fleet?: string }) => {
    if (opts.fleet) {
      const { writeNewFleetKey } = await import('../fleet/key');
      writeNewFleetKey(opts.fleet);
      process.stdout.write(`wrote a new fleet key to ${opts.fleet} (mode 0600)\n`);
      return;
    }
    const keyFile = gatewayKeyFileOf(opts.config);
    fs.mkdirSync(path.dirname(keyFile), { recursive: true, mode: 0o700 });
    try {
      const fd = fs.openSync(keyFile, 'wx', 0o600);
      fs.writeSync(fd, randomKey().toString('base64') + '\n');
      fs.closeSync(fd);
      process.stderr.write(`tumblerd: wrote ${keyFile}\n`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      process.stderr.write(`tumblerd: ${keyFile} exists: kept\n`);
    }
    printGatewayKey(opts.config, keyFile);
  });

program
  .command('pubkey')
  .description('print the gateway\'s Tumbler v2 public key and client URLs')
  .option('-c, --config <file>', 'config file (YAML), for state_dir and tumbler.key_file', DEFAULT_CONFIG)
  .action((opts: { config: string }) => {
    const keyFile = gatewayKeyFileOf(opts.config);
    if (!fs.existsSync(keyFile)) {
      process.stderr.write(`tumblerd: no gateway key at ${keyFile}: run tumblerd keygen\n`);
      process.exit(1);
    }
    printGatewayKey(opts.config, keyFile);
  });

program
  .command('revoke')
  .description('close a door the running daemon has open for a source, now')
  .argument('<door>', 'door name')
  .argument('<source>', 'the address it is open for')
  .option('-c, --config <file>', 'config file (YAML), for its state_dir', DEFAULT_CONFIG)
  .option('--forget', 'if the close fails, drop the door from the record all the same (what it opened may stay open)')
  .action(async (door: string, source: string, opts: { config: string; forget?: boolean }) => {
    const { controlRequest } = await import('../control/server');
    const reply = await controlRequest(stateDirOf(opts.config), { cmd: 'revoke', door, src: source, forget: !!opts.forget });
    if (!reply.ok) {
      process.stderr.write(`tumblerd: ${reply.error}\n`);
      process.exit(1);
    }
    if (reply.forgotten) {
      process.stdout.write(`forgot ${door} for ${source}; its close failed (${reply.error}): check the firewall by hand\n`);
      process.exit(3);
    }
    process.stdout.write(`closed ${door} for ${source}\n`);
  });

program.parseAsync().catch((err: Error) => {
  process.stderr.write(`tumblerd: ${err.message}\n`);
  process.exit(1);
});
