/**
 * `tumblerd scan`: replays logs through the parser and the state machine without running
 * anything, and says which doors would have opened, for whom and when. tumbler's fail2ban-regex.
 */
import fs from 'node:fs';
import { TumblerdConfig } from '../config/types';
import type { DoorConfig } from '../model/door';
import { formatKnock } from '../knock/sequence';
import { KnockPipeline, LineCounts } from '../knock/pipeline';
import { ClassicKnocks } from '../knock/classicKnocks';
import type { Completion, TrackerStats } from '../knock/tracker';
import { UsedSequenceFile } from '../knock/usedSequences';
import { hostRefusal, interfaceSet, readHostView, staticView } from '../netfilter/hostFilter';
import { LogLineParser, hasSourceField } from '../netfilter/logLine';
import { PrefixCensus } from '../netfilter/prefixCensus';
import { uptimeUsec } from '../sources/kmsgClock';
import { LineSplitter } from '../sources/lineSplitter';

export interface ScanReport {
  files: string[];
  opened: Completion[];
  counts: LineCounts & { doorsOpened: number };
  /** Netfilter lines with a prefix the config does not name, most frequent first: a wrong prefix shows here. */
  otherPrefixes: { prefix: string; lines: number }[];
  /** The knock table at the end: how many sources it held, and evicted on the way. */
  table: TrackerStats;
}

export interface ScanOptions {
  /** Count only packets to these addresses / on these interfaces (logs of this host); none: any host's. */
  addresses?: string[];
  interfaces?: string[];
  /** Also count only packets to this namespace's own interfaces and addresses. */
  thisHost?: boolean;
  /** IANA zone of stamps without one; default: this process's. */
  timeZone?: string;
  /** Where `-` reads from. */
  stdin?: NodeJS.ReadableStream;
}

const READ_CHUNK = 1 << 20;

async function feedFile(file: string, splitter: LineSplitter, stdin: NodeJS.ReadableStream): Promise<void> {
  if (file === '-') {
    for await (const chunk of stdin) splitter.push(chunk as Buffer);
  } else if (file.endsWith('.gz')) {
    const raw = fs.createReadStream(file, { highWaterMark: READ_CHUNK });
    /* loaded here: most scans read plain files, and start-up is part of every scan's cost */
    const zlib = await import('node:zlib');
    const stream = raw.pipe(zlib.createGunzip());
    raw.on('error', (e) => stream.destroy(e));
    for await (const chunk of stream) splitter.push(chunk as Buffer);
  } else {
    /* one buffer, read into again and again: the bytes are never decoded, so nothing per chunk stays behind */
    const fd = fs.openSync(file, 'r');
    try {
      const buf = Buffer.allocUnsafe(READ_CHUNK);
      for (let n; (n = fs.readSync(fd, buf, 0, READ_CHUNK, null)) > 0; ) splitter.push(buf.subarray(0, n));
    } finally {
      fs.closeSync(fd);
    }
  }
  splitter.flush();
}

export async function scanLogs(config: TumblerdConfig, files: string[], options: ScanOptions = {}): Promise<ScanReport> {
  const prefixes = [...new Set(config.sources.flatMap((s) => s.prefixes))];
  /* Only kmsg dumps and dmesg need a boot time; "now minus uptime" is right for this boot's records. */
  const bootTimeMs = Date.now() - uptimeUsec() / 1000;
  const parser = new LogLineParser({ prefixes, bootTimeMs, timeZone: options.timeZone });
  /* Logs may come from another host: the grammar and the direction always apply, the addresses when asked */
  const only = interfaceSet(config.interfaces);
  const view = options.thisHost ? readHostView() : staticView(options.interfaces ?? [], options.addresses ?? []);
  /* used sequences are remembered for this scan only: a scan must not use up the daemon's */
  const knocks = new ClassicKnocks(config.doors, config.maxSources, new UsedSequenceFile(null), {}, true);
  const pipeline = new KnockPipeline(knocks, (e) => hostRefusal(e, view, only), undefined, { passOver: true });
  const opened: Completion[] = [];
  const census = new PrefixCensus();
  const splitter = new LineSplitter(
    (buf, start, end) => {
      const before = pipeline.counts.netfilter;
      const done = pipeline.feedBytes(parser, buf, start, end);
      if (done.length > 0) opened.push(...done);
      /* only kernel lines without our prefix need the look (theirs is known), and of those only
       * the ones that can be netfilter lines at all are decoded: syslog noise stays bytes */
      else if (pipeline.counts.netfilter === before && parser.kernelLine && hasSourceField(buf, start, end)) {
        census.add(buf.toString('latin1', start, end));
      }
    },
    () => pipeline.skipOverlong(),
  );
  for (const file of files) await feedFile(file, splitter, options.stdin ?? process.stdin);
  return {
    files,
    opened,
    counts: { ...pipeline.counts, doorsOpened: opened.length },
    otherPrefixes: census.others(prefixes),
    table: knocks.stats(),
  };
}

export function formatScanReport(config: TumblerdConfig, report: ScanReport): string {
  const describe = (d: DoorConfig) =>
    d.otp ? 'derived from the time' : d.oneTimeSequences ? `one-time, from ${d.oneTimeSequences}` : (d.sequence ?? []).map(formatKnock).join(',');
  const sequences = new Map(config.doors.map((d) => [d.name, describe(d)]));
  const lines = report.opened.map(
    (c) =>
      `${new Date(c.time).toISOString()}  door ${c.door} would open for ${c.src}` +
      `  (sequence ${sequences.get(c.door)} in ${((c.time - c.startedAt) / 1000).toFixed(3)}s)`,
  );
  const k = report.counts;
  if (lines.length === 0) lines.push('no door would have opened');
  lines.push(
    '',
    `lines read:        ${k.lines}`,
    `netfilter lines:   ${k.netfilter}`,
    `skipped malformed: ${k.malformed + k.overlong}`,
    `other protocols:   ${k.ignored}`,
    `fragments:         ${k.fragments}`,
    `not for this host: ${k.notForHost}`,
    `knock events:      ${k.events}`,
    `doors opened:      ${k.doorsOpened}`,
    `passed over:       ${k.passedOver} (netfilter lines that could change nothing: an untracked source, a port that starts no door; read up to DPT)`,
  );
  if (report.otherPrefixes.length > 0) {
    const total = report.otherPrefixes.reduce((n, o) => n + o.lines, 0);
    lines.push(
      `other LOG prefixes: ${total} netfilter line(s) carry a prefix the config does not name: ` +
        report.otherPrefixes.slice(0, 5).map((o) => `"${o.prefix}" (${o.lines})`).join(', ') +
        (k.netfilter === 0 ? ' — is sources[].prefix the one your LOG rule uses?' : ''),
    );
  }
  return lines.join('\n');
}
