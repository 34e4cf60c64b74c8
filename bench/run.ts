/**
 * `npm run bench`: every benchmark in one run on one machine, each beside its baseline and its
 * target, written to bench/RESULTS.md with the machine and the date. Nothing in RESULTS.md is
 * typed by hand but the profile notes, which come from bench/PROFILE.md.
 */
import { spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runFleetBench } from './fleet';
import { generateLog } from './genlog';
import { Daemon, Lab, labUnavailable, sleep, spawnJunkFlood } from '../test/support/lab';
import { TumblerListener } from '../src/tumbler/listener';
import { ReplayCache } from '../src/tumbler/replayCache';
import { TumblerV1Verifier } from '../src/tumbler/v1Verifier';
import { formatDatagram, knockDigest } from '../src/tumbler/protocol';

/* compiled to bench/out/js/bench/run.js */
const REPO = path.join(__dirname, '..', '..', '..', '..');
const BENCH = path.join(REPO, 'bench');
const OUT = path.join(BENCH, 'out');
const CHILD = path.join(__dirname, 'child.js');
const SCAN_LINES = 1_000_000;
const LATENCY_ROUNDS = 60;

const report: string[] = [];
/** One line per figure, for the README's benchmark section. */
const headline: string[] = [];
const say = (line = '') => {
  report.push(line);
  process.stdout.write(line + '\n');
};

function child(...args: string[]): Record<string, any> {
  const r = spawnSync(process.execPath, ['--expose-gc', CHILD, ...args], { encoding: 'utf8', maxBuffer: 1 << 20 });
  if (r.status !== 0) throw new Error(`bench child ${args.join(' ')} failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};
const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};
const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const verdict = (ok: boolean) => (ok ? 'met' : '**not met**');

function timeCommand(argv: string[]): number {
  const t0 = process.hrtime.bigint();
  /* stdout is read, not ignored: GNU grep stops at the first match when it writes to /dev/null */
  const r = spawnSync(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 1 << 26 });
  if (r.status !== 0 && r.status !== 1) throw new Error(`${argv.join(' ')} failed`);
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

function benchScan(): void {
  fs.mkdirSync(OUT, { recursive: true });
  const log = path.join(OUT, 'scan.log');
  const config = path.join(OUT, 'scan.yaml');
  generateLog(log, SCAN_LINES);
  fs.writeFileSync(config, 'sources:\n  - file: /dev/null\n    prefix: "FIREWALL: "\ndoors:\n  ssh: { sequence: [42, 196, 69], open: /bin/true }\n');
  timeCommand(['grep', '-c', 'FIREWALL: ', log]); /* warms the page cache for both contenders */
  const runs = [1, 2, 3].map(() => child('scan', config, log));
  const seconds = median(runs.map((r) => r.seconds));
  const grep = median([1, 2, 3].map(() => timeCommand(['grep', '-c', 'FIREWALL: ', log])));
  const cli = median([1, 2, 3].map(() => timeCommand([process.execPath, path.join(REPO, 'dist', 'cli', 'tumblerd.js'), 'scan', '-c', config, log])));
  const rate = SCAN_LINES / seconds;
  const c = runs[0].counts;
  say('## tumblerd scan over a generated log');
  say();
  say(`${fmt(SCAN_LINES)} lines (${fmt(fs.statSync(log).size / 2 ** 20, 1)} MiB), ${fmt(c.netfilter)} netfilter lines from random sources, the rest syslog noise; median of 3 runs.`);
  say();
  say('| measure | tumblerd | baseline | ratio | target | verdict |');
  say('|---|---|---|---|---|---|');
  say(`| lines per second (scan code) | ${fmt(rate)} | | | ≥ 1,000,000 | ${verdict(rate >= 1e6)} |`);
  say(`| wall time, scan code | ${fmt(seconds, 3)} s | grep -c: ${fmt(grep, 3)} s | ${fmt(seconds / grep, 1)} × grep | ≤ 4 × grep | ${verdict(seconds <= 4 * grep)} |`);
  say(`| wall time, whole \`tumblerd scan\` command | ${fmt(cli, 3)} s | grep -c: ${fmt(grep, 3)} s | ${fmt(cli / grep, 1)} × grep | | |`);
  say(`| peak RSS | ${fmt(median(runs.map((r) => r.maxRssKiB)) / 1024, 1)} MiB | | | | |`);
  headline.push(`| \`tumblerd scan\`, 1,000,000 lines | ${fmt(rate)} lines/s; ${fmt(seconds / grep, 1)} × the time of \`grep -c\` | ≥ 1,000,000 lines/s: ${verdict(rate >= 1e6)}; ≤ 4 × grep: ${verdict(seconds <= 4 * grep)} |`);
  say();
  fs.rmSync(log);
}

function benchSources(): void {
  say('## Memory under a flood of spoofed sources');
  say();
  say('1,000,000 distinct sources each sending the first knock of a sequence (so each one is tracked), with a real three-knock sequence from another source in the middle.');
  say();
  say('| max_sources | tracked at the end | evicted | heap after GC | peak RSS (with the generator\'s garbage) | real knock opened | time |');
  say('|---|---|---|---|---|---|---|');
  for (const max of [1_000_000, 100_000]) {
    const r = child('sources', '1000000', String(max));
    say(`| ${fmt(max)} | ${fmt(r.stats.tracked)} | ${fmt(r.stats.evicted)} | ${fmt(r.heapAfterGcMiB, 1)} MiB | ${fmt(r.maxRssKiB / 1024, 1)} MiB | ${r.realKnockOpened ? 'yes' : '**no**'} | ${fmt(r.seconds, 2)} s |`);
    headline.push(`| 1,000,000 spoofed sources, max_sources ${fmt(max)} | heap ${fmt(r.heapAfterGcMiB, 1)} MiB after GC, peak RSS ${fmt(r.maxRssKiB / 1024, 1)} MiB; real knock in the flood opened: ${r.realKnockOpened ? 'yes' : 'no'} | bounded by max_sources: ${verdict(r.stats.tracked <= max && r.realKnockOpened)} |`);
  }
  say();
  say('The table is bounded by `max_sources` (default 100,000): what it holds follows the bound, not the flood.');
  say();
}

async function benchTumbler(): Promise<void> {
  say('## Tumbler listener under junk');
  say();
  say('Well-formed junk (`TUMBLER1: ` + 64 hex digits that match nothing), every datagram from a new source, so that each costs the full check: 3 minutes × every door hashes (the worst case: the listener keeps the expected digests of recent sources for the minute).');
  say();
  say('| doors | datagrams per second, check only (one core) | target |  verdict |');
  say('|---|---|---|---|');
  for (const doors of [1, 16]) {
    const r = child('tumbler', String(doors), '3');
    say(`| ${doors} | ${fmt(r.perSecond)} | ${doors === 16 ? '≥ 20,000' : ''} | ${doors === 16 ? verdict(r.perSecond >= 20_000) : ''} |`);
    headline.push(`| Tumbler junk, ${doors} door(s), every datagram from a new source | ${fmt(r.perSecond)} datagrams/s on one core | ${doors === 16 ? `≥ 20,000/s: ${verdict(r.perSecond >= 20_000)}` : ''} |`);
  }
  say();

  say('Over a real loopback socket, 16 doors, 4 s of junk from 64 source addresses (127.0.0.x), and one real knock from 127.0.0.200 sent 2 s in:');
  say();
  say('| junk sent per second | junk sent | handled | handled per second | real knock opened its door after | target: within 1 s |');
  say('|---|---|---|---|---|---|');
  for (const rate of [10_000, 0]) {
    const r = await loopbackFlood(rate, 4);
    headline.push(`| Tumbler flood on loopback, ${rate ? `${fmt(rate)}/s` : 'unbounded'}, 64 sources | ${fmt(r.handled / 4)} handled/s; real knock opened after ${r.latencyMs === null ? 'never' : `${r.latencyMs} ms`} | within 1 s: ${verdict(r.latencyMs !== null && r.latencyMs <= 1000)} |`);
    say(`| ${rate ? fmt(rate) : 'as fast as one process can'} | ${fmt(r.sent)} | ${fmt(r.handled)} | ${fmt(r.handled / 4)} | ${r.latencyMs === null ? 'never (dropped)' : `${r.latencyMs} ms`} | ${verdict(r.latencyMs !== null && r.latencyMs <= 1000)} |`);
  }
  say();
  say('Past what the check can handle, the kernel drops datagrams at the socket buffer, junk and real knocks alike; the queue in front of the daemon stays short, so a knock that gets in is handled at once.');
  say();
}

/** Floods a real listener on loopback at `rate` datagrams a second (0: unbounded) with a real knock in the middle. */
async function loopbackFlood(rate: number, seconds: number): Promise<{ sent: number; handled: number; latencyMs: number | null }> {
  const doors = Array.from({ length: 16 }, (_, i) => ({ name: `door${i}`, secret: `secret-number-${i}` }));
  let openedAt = 0;
  const listener = new TumblerListener([new TumblerV1Verifier(doors, 1)], new ReplayCache(), {
    grant: () => (openedAt = Date.now()), info() {}, warn() {},
  });
  await listener.listen([{ host: '127.0.0.1', port: 0 }]);
  const port = listener.addresses()[0].port;
  const flood = spawnJunkFlood(port, rate, seconds);
  let sentText = '';
  flood.stdout!.on('data', (b: Buffer) => (sentText += b.toString()));
  await sleep((seconds * 1000) / 2);
  const sentAt = Date.now();
  const real = dgram.createSocket('udp4');
  await new Promise<void>((r) => real.bind(0, '127.0.0.200', () => r()));
  real.send(Buffer.from(formatDatagram(knockDigest(sentAt, '127.0.0.200', 'secret-number-15'))), port, '127.0.0.1', () => real.close());
  await new Promise((r) => flood.once('exit', r));
  await sleep(300);
  listener.close();
  return { sent: Number(sentText), handled: listener.counts.datagrams, latencyMs: openedAt ? openedAt - sentAt : null };
}

async function benchLatency(): Promise<void> {
  say('## Knock-to-command latency, beside knockd');
  say();
  const why = labUnavailable(['ip', 'iptables', 'rsyslogd', 'knockd']);
  if (why) {
    say(`Not measured in this run: ${why}.`);
    say();
    return;
  }
  const lab = new Lab();
  try {
    lab.up();
    const log = lab.startRsyslog('rfc3339');
    const stamp = path.join(lab.dir, 'stamp.sh');
    fs.writeFileSync(stamp, '#!/bin/sh\ndate +%s%N >> "$1"\n', { mode: 0o755 });
    const ours = path.join(lab.dir, 'tumblerd.stamps');
    const theirs = path.join(lab.dir, 'knockd.stamps');
    const config = path.join(lab.dir, 'tumblerd.yaml');
    fs.writeFileSync(config, `state_dir: ${lab.dir}/state\nsources:\n  - file: ${log}\n    prefix: "${lab.prefix}"\ndoors:\n  bench:\n    sequence: [42, 196, 69]\n    sequence_timeout: 5s\n    open: ${stamp} ${ours}\n`);
    fs.writeFileSync(path.join(lab.dir, 'knockd.conf'), `[options]\n  LogFile = ${lab.dir}/knockd.log\n  Interface = ${lab.serverDev}\n[bench]\n  sequence = 42,196,69\n  seq_timeout = 5\n  tcpflags = syn\n  start_command = ${stamp} ${theirs}\n`);
    await new Daemon(lab, config, ['--log-level', 'info']).started();
    lab.spawn(lab.srv, ['knockd', '-c', path.join(lab.dir, 'knockd.conf'), '-i', lab.serverDev]);
    await sleep(1500);
    const knockTimes: number[] = [];
    const script = `
      const net = require('net'); const { performance } = require('perf_hooks');
      const wait = (ms) => new Promise((r) => setTimeout(r, ms));
      (async () => { for (let round = 0; round < ${LATENCY_ROUNDS}; round++) {
        for (const port of [42, 196, 69]) {
          const t = (performance.timeOrigin + performance.now()) * 1000;
          const s = net.connect({ host: '${lab.serverIp}', port }); s.on('error', () => {});
          setTimeout(() => s.destroy(), 100);
          if (port === 69) console.log(Math.round(t));
          await wait(20);
        }
        await wait(400);
      } })();`;
    const out = lab.inCli(process.execPath, '-e', script);
    for (const l of out.trim().split('\n')) knockTimes.push(Number(l));
    await sleep(1500);
    const lat = (file: string) => {
      const stamps = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim().split('\n').map((s) => Number(s) / 1000) : [];
      /* each command run belongs to the last knock sent before it */
      return stamps.map((s) => {
        const k = knockTimes.filter((t) => t <= s).pop();
        return k === undefined ? NaN : (s - k) / 1000;
      }).filter((x) => Number.isFinite(x));
    };
    const a = lat(ours);
    const b = lat(theirs);
    say(`${LATENCY_ROUNDS} knock sequences (the test lab: two network namespaces, SYNs from the client) watched at once by tumblerd (firewall LOG → rsyslog imkmsg → file → tumblerd → execFile) and by knockd (pcap on the server's interface → system()). ` +
      `Latency is from the client sending the last knock to the door's command writing its timestamp.`);
    say();
    say('| | commands run | median | p99 |');
    say('|---|---|---|---|');
    say(`| tumblerd | ${a.length} / ${LATENCY_ROUNDS} | ${fmt(median(a), 2)} ms | ${fmt(percentile(a, 99), 2)} ms |`);
    say(`| knockd ${/knockd (\S+)/.exec(spawnSync('knockd', ['-V'], { encoding: 'utf8' }).stdout)?.[1] ?? ''} | ${b.length} / ${LATENCY_ROUNDS} | ${fmt(median(b), 2)} ms | ${fmt(percentile(b, 99), 2)} ms |`);
    say();
    say(`Median ratio tumblerd / knockd: ${fmt(median(a) / median(b), 2)} (target ≤ 1: ${verdict(median(a) <= median(b))}).`);
    headline.push(`| Knock-to-command latency (file source through rsyslog) | median ${fmt(median(a), 2)} ms, p99 ${fmt(percentile(a, 99), 2)} ms; knockd: ${fmt(median(b), 2)} ms, ${fmt(percentile(b, 99), 2)} ms | median ≤ knockd's: ${verdict(median(a) <= median(b))} |`);
    say();
  } finally {
    lab.destroy();
  }
}

async function benchReplay(): Promise<void> {
  say('## Knock-to-open with a big replay cache');
  say();
  say('tumblerd in-process (bench/child.ts `replay`): a Tumbler knock over loopback every 100 ms from a new source, and a classic three-knock sequence from another ' +
    'source appended to the followed log file right after each. Each door runs `touch` as its open command; latency is from sending the knock to the file\'s mtime ' +
    '(the kernel\'s coarse clock: about 4 ms steps). The big run starts with 990,000 live replay entries (the cap is 1,000,000) and 1,100,000 expired lines in ' +
    'replay.log, so that a compaction of the whole log runs in the background while the knocks arrive.');
  say();
  say('| replay entries | Tumbler knock → open: median / p99 / max | classic sequence → open: median / max | classic knocks never opened (5 s after the last) | log bytes per knock | fsyncs per knock (replay log) | compaction during the run | longest event-loop stall | load average at the end |');
  say('|---|---|---|---|---|---|---|---|---|');
  for (const [live, dead] of [[1_000, 0], [990_000, 1_100_000]]) {
    const r = child('replay', String(live), String(dead), '40');
    const t = (r.tumblerMs as (number | null)[]).filter((x): x is number => x !== null);
    const c = (r.classicMs as (number | null)[]).filter((x): x is number => x !== null);
    const lost = (r.classicMs as unknown[]).length - c.length;
    const load = fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
    say(`| ${fmt(r.entriesAtStart)} | ${fmt(median(t), 1)} / ${fmt(percentile(t, 99), 1)} / ${fmt(Math.max(...t), 1)} ms (${t.length}/40 opened) | ${fmt(median(c), 1)} / ${fmt(Math.max(...c), 1)} ms | ${lost} | ${fmt(r.appendedBytes / Math.max(1, r.appends), 0)} | ${fmt(r.syncs / 40, 2)} | ${r.compactions ? `yes (${fmt(r.compactedBytes / 2 ** 20, 1)} MiB)` : 'no'} | ${fmt(r.maxLoopDelayMs, 1)} ms | ${load} |`);
    if (live > 100_000) {
      headline.push(`| Knock-to-open, ${fmt(r.entriesAtStart)} replay entries, compaction running | Tumbler median ${fmt(median(t), 1)} ms (p99 ${fmt(percentile(t, 99), 1)} ms), ${fmt(r.appendedBytes / Math.max(1, r.appends), 0)} bytes + 1 fdatasync per knock; classic knocks lost: ${lost}; load average ${load} | < 50 ms: ${verdict(median(t) < 50)}; none lost: ${verdict(lost === 0)} |`);
    }
  }
  say();
  say('The longest stall with the big cache is V8\'s full mark-compact of the cache\'s Map (a million entries; `--trace-gc` shows its pauses), not a write: ' +
    'the log bytes and fsyncs per knock are the same at both sizes. On a loaded machine (see the load average) every figure also includes waiting for a core.');
  say();
  say('Every figure includes the two durable writes a knock makes before its door opens (the replay claim appended and fdatasync\'ed; doors.json replaced with fsync) and the exec of the open command. The two rows differ only in the size of the cache: what a knock writes does not depend on it.');
  say();
}

async function benchFleet(): Promise<void> {
  say('## A fleet of 50 gateways on one Redis');
  say();
  if (spawnSync('sh', ['-c', 'command -v redis-server']).status !== 0) {
    say('Skipped: redis-server is not installed (bash .ci/run installs it).');
    say();
    return;
  }
  const r = await runFleetBench(50, 200);
  say(`${r.gateways} fleet members in one process (each with its own connections, consumer group and heartbeat), one redis-server (appendfsync everysec) on loopback, ${r.knocks} knocks at 50 a second, each accepted by a different member: claimed (SET NX PXAT), published (XADD), read and applied by the ${r.gateways - 1} others.`);
  say();
  say('| measure | median | p99 | max |');
  say('|---|---|---|---|');
  const ms = (x: { median: number; p99: number; max: number }) => `${fmt(x.median, 1)} ms | ${fmt(x.p99, 1)} ms | ${fmt(x.max, 1)} ms`;
  say(`| accepted on one gateway → applied on another | ${ms(r.eachMs)} |`);
  say(`| accepted on one gateway → applied on all ${r.gateways - 1} others | ${ms(r.allMs)} |`);
  say();
  const ops = Object.entries(r.opsPerKnock).map(([c, n]) => `${c.toUpperCase()} ${fmt(n, 2)}`).join(', ');
  say(`Redis commands per knock: ${fmt(r.totalOpsPerKnock, 1)} (${ops}); heartbeats (HSET + HGETALL every 2 s per gateway) and blocking reads that time out (one per second per gateway) come on top, per second rather than per knock.`);
  say(`Redis CPU per knock beyond the idle fleet: ${fmt(r.redisCpuUsPerKnock)} µs, so one Redis core takes about ${fmt(r.knocksPerSecondPerCore)} knocks a second with ${r.gateways} gateways (the cost grows with the number of gateways: every one reads and acknowledges every grant).`);
  say();
  headline.push(`| Fleet of ${r.gateways} gateways, one Redis: grant propagation | median ${fmt(r.allMs.median, 1)} ms, p99 ${fmt(r.allMs.p99, 1)} ms to all ${r.gateways - 1} others; ${fmt(r.totalOpsPerKnock, 1)} Redis commands and ${fmt(r.redisCpuUsPerKnock)} µs of Redis CPU a knock | within 1 s: ${verdict(r.allMs.p99 <= 1000)} |`);
}

async function main(): Promise<void> {
  /* `npm run bench -- replay`: only the benchmarks named, printed, nothing written */
  const only = process.argv.slice(2);
  if (only.length > 0) {
    const all: Record<string, () => void | Promise<void>> = { scan: benchScan, sources: benchSources, tumbler: benchTumbler, latency: benchLatency, replay: benchReplay, fleet: benchFleet };
    for (const name of only) await all[name]();
    return;
  }
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  say('# Benchmark results');
  say();
  say(`Written by \`npm run bench\` on ${new Date().toISOString()}: ${cpu}, ${os.cpus().length} cores, ` +
    `${fmt(os.totalmem() / 2 ** 30, 1)} GiB, Linux ${os.release()}, Node ${process.version}.`);
  say();
  benchScan();
  benchSources();
  await benchTumbler();
  await benchLatency();
  await benchFleet();
  await benchReplay();
  const notes = path.join(BENCH, 'PROFILE.md');
  if (fs.existsSync(notes)) report.push(fs.readFileSync(notes, 'utf8'));
  fs.writeFileSync(path.join(BENCH, 'RESULTS.md'), report.join('\n') + '\n');
  const readme = path.join(REPO, 'README.md');
  const text = fs.readFileSync(readme, 'utf8');
  const section =
    `<!-- bench:start (written by npm run bench) -->\n${report[2]}\n\n| benchmark | result | target |\n|---|---|---|\n` +
    `${headline.join('\n')}\n<!-- bench:end -->`;
  fs.writeFileSync(readme, text.replace(/<!-- bench:start[\s\S]*?<!-- bench:end -->/, section));
}

void main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`bench: ${err.stack}\n`);
    process.exit(1);
  },
);
