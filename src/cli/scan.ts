/**
 * `tumblerd scan`: replays logs through the parser and the state machine without running
 * anything, and says which doors would have opened, for whom and when. tumbler's fail2ban-regex.
 */
import fs from 'node:fs';
import zlib from 'node:zlib';
import { TumblerdConfig } from '../config/types';
import type { DoorConfig } from '../model/door';
import { formatKnock } from '../knock/sequence';
import { KnockPipeline, LineCounts } from '../knock/pipeline';
import { ClassicKnocks } from '../knock/classicKnocks';
import type { Completion } from '../knock/tracker';
import { UsedSequenceFile } from '../knock/usedSequences';
import { LogLineParser } from '../netfilter/logLine';
import { LineSplitter } from '../sources/lineSplitter';

export interface ScanReport {
  files: string[];
  opened: Completion[];
  counts: LineCounts & { doorsOpened: number };
}

async function feedFile(file: string, splitter: LineSplitter): Promise<void> {
  const raw = fs.createReadStream(file, { highWaterMark: 1 << 20 });
  const gz = file.endsWith('.gz');
  const stream = gz ? raw.pipe(zlib.createGunzip()) : raw;
  if (gz) raw.on('error', (e) => stream.destroy(e));
  for await (const chunk of stream) splitter.push(chunk as Buffer);
  splitter.flush();
}

export async function scanLogs(config: TumblerdConfig, files: string[]): Promise<ScanReport> {
  const prefixes = [...new Set(config.sources.flatMap((s) => s.prefixes))];
  /* Only kmsg dumps need a boot time; "now minus uptime" is right for this boot's records. */
  const bootTimeMs = Date.now() - Number(fs.readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * 1000;
  const parser = new LogLineParser({ prefixes, bootTimeMs });
  /* used sequences are remembered for this scan only: a scan must not use up the daemon's */
  const pipeline = new KnockPipeline(new ClassicKnocks(config.doors, config.maxSources, new UsedSequenceFile(null), {}, true));
  const opened: Completion[] = [];
  const splitter = new LineSplitter(
    (line) => {
      const done = pipeline.feed(parser, line);
      if (done.length > 0) opened.push(...done);
    },
    () => pipeline.skipOverlong(),
  );
  for (const file of files) await feedFile(file, splitter);
  return { files, opened, counts: { ...pipeline.counts, doorsOpened: opened.length } };
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
    `knock events:      ${k.events}`,
    `doors opened:      ${k.doorsOpened}`,
  );
  return lines.join('\n');
}
