/**
 * tumblerd as a component, wired in one place: log sources feed the parser and the knock state
 * machine, the Tumbler listener checks single-packet knocks, and both hand grants to one door
 * dispatcher. `start()`, `reload()` and `stop()` are all there is; signals, argv and
 * `process.exit` belong to the command line (cli/tumblerd.ts), so tests run this in-process.
 *
 * The path of a grant: source line → LogLineParser → KnockPipeline/ClassicKnocks/KnockTracker → Completion →
 * Grant; or datagram → TumblerListener → KnockVerifier → replay claim → Grant. Every Grant goes
 * to DoorDispatcher.openDoor, which records the door, opens it, and closes it on time.
 *
 * State: each owner persists its own data in state_dir. The dispatcher's open doors go to
 * doors.json (StateStore, small, replaced atomically); accepted replay ids are appended to
 * replay.log (FileReplayStore). A knock costs one append and one small write, never the cache.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import chokidar, { FSWatcher } from 'chokidar';
import winston from 'winston';
import { ConfigError, loadConfigFile } from './config/load';
import { applyLive, configChange } from './config/reloadPolicy';
import { SourceConfig, TumblerdConfig } from './config/types';
import { startControlServer } from './control/server';
import { DoorDispatcher } from './doors/dispatcher';
import { StateStore, currentBootId } from './doors/stateStore';
import { CommandRunner, dryRunner, execRunner, formatCommand } from './exec/commandRunner';
import { FirewallBackend } from './firewall/backend';
import { DryRunFirewall } from './firewall/dryRun';
import { Fleet } from './fleet/fleet';
import { createFirewall, firewallKind } from './firewall/select';
import { KnockPipeline, LineCounts } from './knock/pipeline';
import { ClassicKnocks } from './knock/classicKnocks';
import type { Completion } from './knock/tracker';
import { UsedSequenceFile } from './knock/usedSequences';
import { createLogger, reconfigureLogger } from './logger';
import { Metrics, NO_METRICS } from './metrics/metrics';
import { PrometheusExporter } from './metrics/prometheus';
import { formatListen } from './model/address';
import type { Grant } from './model/grant';
import { HostFilter, HostView, interfaceSet } from './netfilter/hostFilter';
import { LogLineParser } from './netfilter/logLine';
import { formatResult, runPreflight } from './preflight/preflight';
import { PREFLIGHT_CHECKS } from './preflight/securityChecks';
import { FileSource } from './sources/fileSource';
import { JournaldSource } from './sources/journaldSource';
import { KmsgSource, kmsgWallTime, uptimeUsec } from './sources/kmsgSource';
import { LineSource, SourceHooks } from './sources/source';
import { TumblerListener } from './tumbler/listener';
import { FileReplayStore } from './tumbler/fileReplayStore';
import { prepareStateDir } from './util/trustedDir';
import { lockStateDir } from './util/instanceLock';
import { TumblerV1Verifier } from './tumbler/v1Verifier';
import { KnockVerifier } from './tumbler/verifier';
import { TumblerV2State, TumblerV2Verifier } from './tumbler/v2/verifier';

export interface DaemonOptions {
  configFile: string;
  config: TumblerdConfig;
  dryRun: boolean;
  /** A level given on the command line: wins over the config's, also across reloads. */
  logLevel?: string;
  /** Watch the config file and reload when it changes (off in tests that reload by hand). */
  watchConfig?: boolean;
  /** The namespace's interfaces and addresses (tests that knock on loopback give their own). */
  readHostView?: () => HostView;
}

export interface ReloadResult {
  ok: boolean;
  /** Config errors, when not ok: the last good config stays. */
  errors: string[];
  /** Changed keys that were applied, and changed keys that wait for a restart. */
  applied: string[];
  needsRestart: string[];
}

const STATS_EVERY_MS = 60_000;

/**
 * One verifier per protocol version the config has doors for. `v2State` is what a v2 verifier
 * keeps across reloads (rate limits, the replay pre-check).
 */
export function verifiersOf(config: TumblerdConfig, v2State?: TumblerV2State): KnockVerifier[] {
  const doors = config.doors.flatMap((d) => (d.secret ? [{ name: d.name, secret: d.secret }] : []));
  const verifiers: KnockVerifier[] = [new TumblerV1Verifier(doors, config.tumbler.skewMinutes)];
  const v2Doors = config.doors.filter((d) => d.keys?.length);
  if (config.tumbler.gatewayKey && v2Doors.length > 0) {
    verifiers.push(
      new TumblerV2Verifier(
        {
          privateKey: Buffer.from(config.tumbler.gatewayKey, 'base64'),
          gateway: config.tumbler.gateway,
          windowMs: config.tumbler.windowMs,
          doors: v2Doors.map((d) => ({
            name: d.name,
            nat: d.nat ?? 'auto',
            users: new Map(d.keys!.map((k) => [k.key, k.user])),
            ...(d.grantPrefix ? { grantPrefix: d.grantPrefix } : {}),
          })),
        },
        v2State,
      ),
    );
  }
  return verifiers;
}

const keyFilesOf = (config: TumblerdConfig): string[] => [...new Set(config.doors.flatMap((d) => d.keysFiles ?? []))];

export class Daemon {
  readonly log: winston.Logger;
  private config: TumblerdConfig;
  /** config.stateDir, or with --dry-run a temporary folder of its own, removed at stop. */
  readonly stateDir: string;
  private readonly store: StateStore;
  private readonly replay: FileReplayStore;
  private lock: { release(): void } | null = null;
  private readonly runner: CommandRunner;
  private readonly firewall: FirewallBackend | null;
  private readonly dispatcher: DoorDispatcher;
  private readonly tracker: ClassicKnocks;
  private readonly usedSequences: UsedSequenceFile;
  /** One per log source, so that lines are counted per source; all feed the one tracker. */
  private pipelines: { source: string; pipeline: KnockPipeline; published: LineCounts }[] = [];
  private readonly metrics: Metrics;
  private readonly hostFilter: HostFilter;
  private readonly listener: TumblerListener;
  private readonly v2State = new TumblerV2State();
  private readonly fleet: Fleet | null;
  private sources: LineSource[] = [];
  private control: { close(): void } | null = null;
  /** The Prometheus endpoint, when `metrics.listen` asks for one (components count into `metrics`). */
  private readonly exporter: PrometheusExporter | null;
  private watcher: FSWatcher | null = null;
  private stats: NodeJS.Timeout | null = null;
  private lastMalformed = 0;
  private starting: Promise<void> | null = null;
  private stopping: Promise<void> | null = null;

  constructor(private readonly options: DaemonOptions) {
    const config = options.config;
    this.config = config;
    this.log = createLogger(config.log, options.logLevel);
    this.exporter = config.metrics ? new PrometheusExporter() : null;
    this.metrics = this.exporter ?? NO_METRICS;
    /* a dry run must not touch the real doors' records: a later real start would close its pretend doors */
    this.stateDir = options.dryRun ? fs.mkdtempSync(path.join(os.tmpdir(), 'tumblerd-dry-run-')) : config.stateDir;
    this.store = new StateStore(this.stateDir, () => this.dispatcher.snapshot());
    this.replay = new FileReplayStore(this.stateDir, undefined, (m) => this.log.warn(m));
    this.runner = options.dryRun
      ? dryRunner((argv) => this.log.info('dry run: would run', { command: formatCommand(argv) }))
      : execRunner;
    const kind = firewallKind(config);
    this.firewall = kind && (options.dryRun ? new DryRunFirewall(kind, (m) => this.log.info(m)) : createFirewall(kind, config, this.runner));
    this.dispatcher = new DoorDispatcher(config.doors, this.runner, this.log, () => this.store.save(), this.firewall, Date.now, this.metrics);
    this.usedSequences = new UsedSequenceFile(path.join(this.stateDir, 'otp-used'), (m) => this.log.warn(m));
    this.tracker = new ClassicKnocks(config.doors, config.maxSources, this.usedSequences, {
      progress: (door, src, step, of) => {
        /* winston formats a message before it looks at the level: not on this path unless wanted */
        if (this.log.isDebugEnabled()) this.log.debug('knock progress', { door, src, step: `${step}/${of}` });
      },
      refused: (door, src, reason) => this.log.warn('knock sequence refused', { door, src, reason }),
      warn: (m) => this.log.warn(m),
    });
    this.hostFilter = new HostFilter(interfaceSet(config.interfaces), options.readHostView);
    /* with a fleet, knocks are claimed in the group's store and grants on fleet doors published */
    this.fleet = config.fleet && new Fleet(config.fleet, config.doors, this.dispatcher, this.log, this.metrics);
    this.listener = new TumblerListener(verifiersOf(config, this.v2State), this.fleet?.replayStore(this.replay) ?? this.replay, {
      grant: (g) => void this.admit(g),
      info: (m, meta) => this.log.info(m, meta),
      warn: (m, meta) => this.log.warn(m, meta),
    }, Date.now, this.metrics);
  }

  /** Starts everything; a stop() asked for meanwhile waits for this to end, then undoes it. */
  start(): Promise<void> {
    this.starting ??= this.startUp();
    return this.starting;
  }

  private async startUp(): Promise<void> {
    const config = this.config;
    prepareStateDir(this.stateDir);
    this.lock = lockStateDir(this.stateDir);
    const saved = this.store.load();
    for (const p of saved.problems) this.log.warn(`state: ${p}`);
    const replay = await this.replay.open(Date.now(), saved.legacyReplay);
    if (replay.loaded > 0) this.log.info('replay cache loaded', { entries: replay.loaded, expiredOrBad: replay.skipped });
    const boot = currentBootId();
    const rebooted = saved.bootId !== null && boot !== null && saved.bootId !== boot;
    this.usedSequences.load(Date.now());
    if (this.firewall) {
      await this.firewall.setup();
      this.log.info(`firewall backend ${this.firewall.name} ready`);
    }
    await this.dispatcher.restore(saved.doors, rebooted);
    await this.store.save();
    this.store.retireLegacy();
    await this.fleet?.start();
    this.control = await startControlServer(this.stateDir, this.dispatcher, this.fleet && (() => this.fleet!.status()));
    if (this.exporter && config.metrics) {
      this.exporter.beforeScrape(() => this.publishLineMetrics());
      await this.exporter.start(config.metrics.listen);
    }
    this.hostFilter.start();
    this.startSources(config.sources);
    await this.listener.listen(config.tumbler.listen);
    for (const r of await runPreflight(config, PREFLIGHT_CHECKS)) {
      if (r.status !== 'ok') this.log.warn(formatResult(r));
    }
    if (this.options.watchConfig !== false) {
      /* key files too: removing a user's line revokes them without anyone touching the config */
      this.watcher = chokidar.watch([this.options.configFile, ...keyFilesOf(config)], {
        ignoreInitial: true,
        awaitWriteFinish: { stabilityThreshold: 200 },
      });
      this.watcher.on('change', () => void this.reload('file changed'));
      this.watcher.on('add', () => void this.reload('file replaced'));
    }
    this.stats = setInterval(() => this.reportStats(), STATS_EVERY_MS);
    this.stats.unref();
    this.log.info('tumblerd started', {
      config: this.options.configFile,
      sources: this.sources.map((s) => s.name).join(', ') || 'none',
      /* where it listens, not where it was asked to: the default [::] is left out on a kernel without IPv6 */
      tumbler: this.listener.addresses().map((a) => formatListen(a.address, a.port)).join(' ') || 'off',
      doors: config.doors.map((d) => d.name).join(', '),
      dryRun: this.options.dryRun,
    });
  }

  /** Reads the config file again and applies what can change live; a bad file changes nothing. */
  async reload(why: string): Promise<ReloadResult> {
    let next: TumblerdConfig;
    try {
      next = loadConfigFile(this.options.configFile);
    } catch (err) {
      const errors = err instanceof ConfigError ? err.message.split('\n') : [(err as Error).message];
      this.log.error(`config not reloaded (${why}): keeping the last good one`, { errors: errors.length });
      for (const p of errors) this.log.error(p);
      return { ok: false, errors, applied: [], needsRestart: [] };
    }
    const change = configChange(this.config, next);
    const before = this.config;
    /* what needs a restart keeps its running value until then */
    this.config = applyLive(before, next);
    reconfigureLogger(this.log, next.log, this.options.logLevel);
    this.tracker.setMaxSources(next.maxSources);
    this.tracker.reconfigure(next.doors);
    this.hostFilter.setOnly(interfaceSet(next.interfaces));
    this.dispatcher.reconfigure(next.doors);
    this.fleet?.reconfigure(next.doors);
    this.listener.setVerifiers(verifiersOf(next, this.v2State));
    await this.revokeRemovedUsers(next);
    this.watchKeyFiles(next);
    if (JSON.stringify(next.sources) !== JSON.stringify(before.sources)) {
      for (const s of this.sources) s.stop();
      this.startSources(next.sources);
    }
    if (JSON.stringify(next.tumbler.listen) !== JSON.stringify(before.tumbler.listen)) {
      this.listener.close();
      await this.listener.listen(next.tumbler.listen).catch((e: Error) => this.log.error('Tumbler listener', { error: e.message }));
    }
    for (const key of change.restart) {
      this.log.warn(`config reloaded (${why}) without ${key}: it needs a restart of tumblerd`);
    }
    this.log.info(`config reloaded (${why})`, {
      doors: next.doors.map((d) => d.name).join(', '),
      ...(change.live.length ? { changed: change.live.join(' ') } : {}),
    });
    return { ok: true, errors: [], applied: change.live, needsRestart: change.restart };
  }

  /** After logrotate moved the log file: write to a new one. */
  reopenLogs(): void {
    reconfigureLogger(this.log, this.config.log, this.options.logLevel);
  }

  /** Stops everything it started; closes open doors unless keep_open_on_exit. Safe to call twice. */
  stop(reason: string): Promise<void> {
    /* a stop during start-up (systemd's stop, a container's) waits for a firewall half set up to be whole, then tears it down */
    this.stopping ??= (this.starting ?? Promise.resolve()).catch(() => undefined).then(() => this.shutdown(reason));
    return this.stopping;
  }

  /** The replay store's size and what its log has cost so far (for the benchmark of a knock's I/O). */
  replayStats(): { entries: number; io: FileReplayStore['io'] } {
    return { entries: this.replay.size, io: { ...this.replay.io } };
  }

  /** Where the Tumbler listener is bound (with the ports the kernel chose for port 0). */
  tumblerAddresses(): { address: string; port: number }[] {
    return this.listener.addresses();
  }

  private async shutdown(reason: string): Promise<void> {
    this.log.info(`${reason}: stopping`);
    if (this.stats) clearInterval(this.stats);
    await this.watcher?.close();
    for (const s of this.sources) s.stop();
    this.hostFilter.stop();
    this.listener.close();
    await this.fleet?.stop();
    this.control?.close();
    await this.exporter?.stop();
    if (this.config.keepOpenOnExit) {
      await this.dispatcher.release();
      this.log.info('keep_open_on_exit: open doors stay open; the kernel and the next start close them');
    } else {
      /* every close command has ended when this resolves: systemd must not kill them (KillMode=mixed) */
      await this.dispatcher.closeAll(`tumblerd stopping (${reason})`);
      await this.firewall?.teardown();
    }
    await this.replay.close();
    await this.store.save().catch((err: Error) => this.log.error('could not write the state file', { file: this.store.file, error: err.message }));
    this.lock?.release();
    if (this.options.dryRun) fs.rmSync(this.stateDir, { recursive: true, force: true });
    this.log.info('tumblerd stopped');
  }

  private watchKeyFiles(config: TumblerdConfig): void {
    this.watcher?.add(keyFilesOf(config));
  }

  /**
   * A v2 door stays open only for users the new config still lets in: a user whose key lines
   * are gone from a door has that door closed now, not when close_after runs out.
   */
  private async revokeRemovedUsers(config: TumblerdConfig): Promise<void> {
    const allowed = new Map(config.doors.map((d) => [d.name, new Set((d.keys ?? []).map((k) => k.user))]));
    await Promise.all(
      this.dispatcher
        .list()
        .filter((o) => o.via === 'tumbler2' && o.user !== null && !allowed.get(o.door)?.has(o.user))
        .map((o) => this.dispatcher.closeDoor(o.door, o.src, `user ${o.user} no longer has a key on this door`)),
    );
  }

  private onCompletion(c: Completion): void {
    this.log.info('knock sequence completed', { door: c.door, src: c.src, seconds: (c.time - c.startedAt) / 1000 });
    this.metrics.inc('tumbler_knocks_total', { protocol: 'sequence', result: 'completed' });
    void this.admit({ door: c.door, src: c.src, family: c.family, via: 'sequence', user: null, at: c.time });
  }

  /** Every grant made on this gateway: through the fleet where there is one, else straight to the doors. */
  private admit(grant: Grant): Promise<void> {
    return this.fleet ? this.fleet.admit(grant) : this.dispatcher.openDoor(grant);
  }

  private startSources(list: SourceConfig[]): void {
    this.pipelines = [];
    this.sources = list.map((s) => {
      const pipeline = new KnockPipeline(this.tracker, (e) => this.hostFilter.refuse(e), (e, why) => {
        if (this.log.isDebugEnabled()) this.log.debug('not a knock for this host', { src: e.src, dst: e.dst, in: e.iface, why });
      }, { passOver: true });
      const parser = new LogLineParser({ prefixes: s.prefixes, kmsgTime: kmsgWallTime(), ...(s.kind === 'file' && { timeZone: s.timeZone }) });
      const hooks: SourceHooks = {
        line: (line) => {
          for (const c of pipeline.feed(parser, line, Date.now() - this.tracker.horizonMs)) this.onCompletion(c);
        },
        bytes: (buf, start, end) => {
          const done = pipeline.feedBytes(parser, buf, start, end, Date.now() - this.tracker.horizonMs);
          for (let i = 0; i < done.length; i++) this.onCompletion(done[i]);
        },
        overlong: () => pipeline.skipOverlong(),
        info: (m) => this.log.info(m),
        warn: (m) => this.log.warn(m),
      };
      const source = s.kind === 'file' ? new FileSource(s.path, hooks) : s.kind === 'kmsg' ? new KmsgSource(s.path, hooks, uptimeUsec()) : new JournaldSource(hooks);
      this.pipelines.push({ source: source.name, pipeline, published: { ...pipeline.counts } });
      return source;
    });
    for (const s of this.sources) s.start();
  }

  private reportStats(): void {
    const counts = sumCounts(this.pipelines.map((p) => p.pipeline.counts));
    const bad = counts.malformed + counts.overlong;
    if (bad !== this.lastMalformed) this.log.warn('malformed netfilter lines skipped', { new: bad - this.lastMalformed, total: bad });
    this.lastMalformed = bad;
    if (this.log.isDebugEnabled()) {
      this.log.debug('counters', {
        ...counts,
        ...this.tracker.stats(),
        ...this.listener.counts,
        tumbler2: JSON.stringify({ ...this.v2State.counts, ...this.v2State.sizes }),
      });
    }
  }

  /* Lines are counted in the pipelines (a plain increment on the hot path) and handed to the metrics at each scrape. */
  private publishLineMetrics(): void {
    const now = Date.now();
    for (const { source, pipeline, published } of this.pipelines) {
      for (const [outcome, count] of LINE_OUTCOMES) {
        const delta = count(pipeline.counts) - count(published);
        if (delta > 0) this.metrics.inc('tumbler_lines_total', { source, outcome }, delta);
      }
      Object.assign(published, pipeline.counts);
      if (pipeline.newest > 0) this.metrics.set('tumbler_source_lag_seconds', Math.max(0, now - pipeline.newest) / 1000, { source });
    }
  }
}

/** What became of each line, as the metric's label names it: the outcomes add up to the lines read. */
const LINE_OUTCOMES: [string, (c: LineCounts) => number][] = [
  ['knock', (c) => c.events],
  ['stale', (c) => c.stale],
  ['not_for_host', (c) => c.notForHost],
  ['malformed', (c) => c.malformed],
  ['other_protocol', (c) => c.ignored],
  ['fragment', (c) => c.fragments],
  /* an untracked source on a port that starts no door: read no further than SRC and DPT */
  ['passed_over', (c) => c.passedOver],
  ['overlong', (c) => c.overlong],
  /* lines without a configured prefix: other programs', other firewalls' */
  ['other', (c) => c.lines - c.overlong - c.netfilter],
];

function sumCounts(all: LineCounts[]): LineCounts {
  const sum: LineCounts = { lines: 0, netfilter: 0, malformed: 0, overlong: 0, ignored: 0, fragments: 0, notForHost: 0, stale: 0, events: 0, passedOver: 0 };
  for (const c of all) for (const k of Object.keys(sum) as (keyof LineCounts)[]) sum[k] += c[k];
  return sum;
}
