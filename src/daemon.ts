/**
 * tumblerd's wiring, in one place: log sources feed the parser and the knock state machine, the
 * Tumbler listener checks single-packet knocks, and both open doors through one dispatcher whose
 * every change is written to the state file.
 */
import fs from 'node:fs';
import path from 'node:path';
import chokidar from 'chokidar';
import winston from 'winston';
import { ConfigError, loadConfigFile } from './config/load';
import { SourceConfig, TumblerdConfig } from './config/types';
import { dryRunner, execRunner, formatCommand } from './exec/commandRunner';
import { DoorDispatcher } from './doors/dispatcher';
import { StateStore } from './doors/stateStore';
import { startControlServer } from './control/server';
import { createFirewall, firewallKind } from './firewall/select';
import { createLogger, fileTransport } from './logger';
import { KnockPipeline } from './knock/pipeline';
import { ClassicKnocks } from './knock/classicKnocks';
import { UsedSequenceFile } from './knock/usedSequences';
import { LogLineParser, isSyslogKernelLine } from './netfilter/logLine';
import { FileSource } from './sources/fileSource';
import { JournaldSource } from './sources/journaldSource';
import { KmsgSource, uptimeUsec } from './sources/kmsgSource';
import { LineSource, SourceHooks } from './sources/source';
import { TumblerListener } from './tumbler/listener';
import { ReplayCache } from './tumbler/replayCache';

export interface DaemonOptions {
  configFile: string;
  config: TumblerdConfig;
  dryRun: boolean;
  logLevel?: string;
}

const STATS_EVERY_MS = 60_000;

function secretDoors(config: TumblerdConfig) {
  return config.doors.flatMap((d) => (d.secret ? [{ name: d.name, secret: d.secret }] : []));
}

/**
 * A syslog file that holds other programs' lines lets any local user write a line that looks
 * like the kernel's (`logger -t kernel`). Looks at the file's last 64 KiB to see if it does.
 */
function mixesFacilities(file: string): boolean {
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const buf = Buffer.alloc(Math.min(size, 64 * 1024));
      fs.readSync(fd, buf, 0, buf.length, size - buf.length);
      return buf
        .toString('utf8')
        .split('\n')
        .slice(1)
        .some((l) => l.length > 0 && !isSyslogKernelLine(l));
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return false;
  }
}

export async function runDaemon(options: DaemonOptions): Promise<void> {
  let config = options.config;
  const log: winston.Logger = createLogger(config.log, options.logLevel);
  const store = new StateStore(config.stateDir);
  const saved = store.load((m) => log.warn(m));

  const replay = new ReplayCache();
  replay.load(saved.replay, Date.now());
  const persist = () => {
    try {
      store.save({ doors: dispatcher.snapshot(), replay: replay.toJSON() });
    } catch (err) {
      log.error('could not write the state file', { file: store.file, error: (err as Error).message });
    }
  };
  const runner = options.dryRun
    ? dryRunner((argv) => log.info('dry run: would run', { command: formatCommand(argv) }))
    : execRunner;
  const kind = firewallKind(config);
  const firewall = kind && createFirewall(kind, config, runner);
  if (firewall) {
    await firewall.setup();
    log.info(`firewall backend ${firewall.name} ready`);
  }
  const dispatcher: DoorDispatcher = new DoorDispatcher(config.doors, runner, log, persist, firewall);
  await dispatcher.restore(saved.doors);
  const control = await startControlServer(config.stateDir, dispatcher);

  const usedSequences = new UsedSequenceFile(path.join(config.stateDir, 'otp-used'), (m) => log.warn(m)).load(Date.now());
  const tracker = new ClassicKnocks(config.doors, config.maxSources, usedSequences, {
    progress: (door, src, step, of) => log.debug('knock progress', { door, src, step: `${step}/${of}` }),
    refused: (door, src, reason) => log.warn('knock sequence refused', { door, src, reason }),
    warn: (m) => log.warn(m),
  });
  const pipeline = new KnockPipeline(tracker);

  const onLine = (parser: LogLineParser) => (line: string) => {
    for (const c of pipeline.feed(parser, line, Date.now() - tracker.horizonMs)) {
      log.info('knock sequence completed', { door: c.door, src: c.src, seconds: (c.time - c.startedAt) / 1000 });
      void dispatcher.openDoor({ door: c.door, src: c.src, family: c.family, via: 'sequence', user: null, at: c.time });
    }
  };

  let sources: LineSource[] = [];
  const startSources = (list: SourceConfig[]) => {
    const bootTimeMs = Date.now() - uptimeUsec() / 1000;
    sources = list.map((s) => {
      const parser = new LogLineParser({ prefixes: s.prefixes, bootTimeMs });
      const hooks: SourceHooks = {
        line: onLine(parser),
        overlong: () => pipeline.skipOverlong(),
        info: (m) => log.info(m),
        warn: (m) => log.warn(m),
      };
      if (s.kind === 'file') {
        if (mixesFacilities(s.path)) {
          log.warn(
            `${s.path} mixes kernel lines with other programs' lines: any local user can forge a knock into it ` +
              `(logger -t kernel). Prefer a kernel-only source: kmsg: /dev/kmsg, journald: true, or a kern.* file such as /var/log/kern.log`,
          );
        }
        return new FileSource(s.path, hooks);
      }
      if (s.kind === 'kmsg') return new KmsgSource(s.path, hooks, uptimeUsec());
      return new JournaldSource(hooks);
    });
    for (const s of sources) s.start();
  };
  startSources(config.sources);

  const listener = new TumblerListener(secretDoors(config), config.tumbler.skewMinutes, replay, {
    grant: (g) => void dispatcher.openDoor(g),
    remembered: persist,
    info: (m, meta) => log.info(m, meta),
    warn: (m, meta) => log.warn(m, meta),
  });
  await listener.listen(config.tumbler.listen);

  try {
    if (config.doors.some((d) => d.secret) && (fs.statSync(options.configFile).mode & 0o004) !== 0) {
      log.warn(`${options.configFile} holds door secrets and any user can read it: chmod 600 it, or use secret_file`);
    }
  } catch {
    /* the config was read a moment ago; a stat that fails now changes nothing */
  }
  log.info('tumblerd started', {
    config: options.configFile,
    sources: sources.map((s) => s.name).join(', ') || 'none',
    tumbler: config.tumbler.listen.map((l) => `${l.host}:${l.port}`).join(' ') || 'off',
    doors: config.doors.map((d) => d.name).join(', '),
    dryRun: options.dryRun,
  });

  let lastMalformed = 0;
  const stats = setInterval(() => {
    const bad = pipeline.counts.malformed + pipeline.counts.overlong;
    if (bad !== lastMalformed) log.warn('malformed netfilter lines skipped', { new: bad - lastMalformed, total: bad });
    lastMalformed = bad;
    log.debug('counters', { ...pipeline.counts, ...tracker.stats(), ...listener.counts });
  }, STATS_EVERY_MS);
  stats.unref();

  const reload = async (why: string) => {
    let next: TumblerdConfig;
    try {
      next = loadConfigFile(options.configFile);
    } catch (err) {
      const problems = err instanceof ConfigError ? err.message.split('\n') : [(err as Error).message];
      log.error(`config not reloaded (${why}): keeping the last good one`, { errors: problems.length });
      for (const p of problems) log.error(p);
      return;
    }
    const wanted = firewallKind(next);
    if (wanted !== kind) {
      log.error(`config not reloaded (${why}): it needs the firewall backend ${wanted ?? 'none'} instead of ${kind ?? 'none'}; restart tumblerd for that`);
      return;
    }
    tracker.reconfigure(next.doors);
    dispatcher.reconfigure(next.doors);
    listener.reconfigure(secretDoors(next), next.tumbler.skewMinutes);
    if (JSON.stringify(next.sources) !== JSON.stringify(config.sources)) {
      for (const s of sources) s.stop();
      startSources(next.sources);
    }
    if (JSON.stringify(next.tumbler.listen) !== JSON.stringify(config.tumbler.listen)) {
      listener.close();
      await listener.listen(next.tumbler.listen).catch((e: Error) => log.error('Tumbler listener', { error: e.message }));
    }
    config = next;
    log.info(`config reloaded (${why})`, { doors: next.doors.map((d) => d.name).join(', ') });
  };
  const watcher = chokidar.watch(options.configFile, { ignoreInitial: true, awaitWriteFinish: { stabilityThreshold: 200 } });
  watcher.on('change', () => void reload('file changed'));
  watcher.on('add', () => void reload('file replaced'));

  process.on('SIGHUP', () => {
    for (const t of log.transports) {
      if (t instanceof winston.transports.File) {
        log.remove(t).add(fileTransport(config.log.file!));
      }
    }
    void reload('SIGHUP');
  });

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info(`${signal}: stopping`);
    await watcher.close();
    for (const s of sources) s.stop();
    listener.close();
    control.close();
    if (config.keepOpenOnExit) {
      log.info('keep_open_on_exit: open doors stay open; the kernel and the next start close them');
    } else {
      await dispatcher.closeAll(`tumblerd stopping (${signal})`);
      await firewall?.teardown();
    }
    log.info('tumblerd stopped');
    log.on('finish', () => process.exit(0));
    log.end();
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}
