/**
 * Measurements that need a process of their own, so that peak RSS is theirs alone:
 *   scan CONFIG LOG        tumblerd's scan code over a log
 *   tumbler DOORS SECONDS SOURCES SKEW
 *                          junk Tumbler datagrams through the listener's check, in-process, from
 *                          SOURCES addresses in turn (0: a new one each time)
 *   replay LIVE DEAD KNOCKS  the daemon in-process with LIVE replay entries (and DEAD expired lines,
 *                          so that a compaction runs meanwhile): Tumbler knock-to-open latency,
 *                          the log's bytes per knock, the event loop's longest stall, and classic
 *                          knocks from a followed file between them
 * Each prints one JSON object.
 */
import { loadConfigFile } from '../src/config/load';
import { scanLogs } from '../src/cli/scan';
import { TumblerListener } from '../src/tumbler/listener';
import { ReplayCache } from '../src/tumbler/replayCache';
import { TumblerV1Verifier } from '../src/tumbler/v1Verifier';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Daemon } from '../src/daemon';
import { formatDatagram, knockDigest } from '../src/tumbler/protocol';
import { sendUdpFrom, sleep } from '../test/support/lab';

const hex64 = (i: number) => i.toString(16).padStart(64, '0');

/** A kernel line as rsyslog files it (RFC 3339), for a SYN from `src` to `dport`. */
function synLine(src: string, dport: number): string {
  return `${new Date().toISOString().replace('Z', '+00:00')} vm kernel: BENCH: IN=eth0 OUT= MAC=c2:f7:76:61:25:d4:6e:08:49:33:5e:15:08:00 ` +
    `SRC=${src} DST=192.0.2.1 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=1 DF PROTO=TCP SPT=40000 DPT=${dport} WINDOW=64240 RES=0x00 SYN URGP=0 \n`;
}

async function replayBench(live: number, dead: number, knocks: number): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tumbler-doors-bench-'));
  try {
    const state = path.join(dir, 'state');
    fs.mkdirSync(state, { mode: 0o700 });
    const now = Date.now();
    const until = now + 3_600_000;
    const fd = fs.openSync(path.join(state, 'replay.log'), 'w');
    for (let i = 0; i < live + dead; i += 50_000) {
      let chunk = '';
      for (let j = i; j < Math.min(i + 50_000, live + dead); j++) chunk += `${hex64(j)} ${j < dead ? now - 1000 : until}\n`;
      fs.writeSync(fd, chunk);
    }
    fs.closeSync(fd);
    /* the open command: one exec, and the kernel stamps the moment it ran (the file's mtime) */
    const stamps = path.join(dir, 'stamps');
    fs.mkdirSync(stamps);
    const stamp = `/usr/bin/touch ${stamps}/%IP%`;
    const kern = path.join(dir, 'kern.log');
    fs.writeFileSync(kern, '');
    const config = path.join(dir, 'tumblerd.yaml');
    fs.writeFileSync(config, `state_dir: ${state}\nlog: { level: warn }\nsources:\n  - file: ${kern}\n    prefix: "BENCH: "\n` +
      `tumbler:\n  listen: ["127.0.0.1:${20000 + (process.pid % 20000)}"]\ndoors:\n  tumbler:\n    secret: bench-secret-0123456789abcdef\n    open: ${stamp}\n    close: /bin/true\n    close_after: 1h\n    max_open: 1000\n` +
      `  classic:\n    sequence: [42, 196, 69]\n    open: ${stamp}\n    close: /bin/true\n    close_after: 1h\n    max_open: 1000\n`);
    const t0 = Date.now();
    const daemon = new Daemon({ configFile: config, config: loadConfigFile(config), dryRun: false, watchConfig: false });
    await daemon.start();
    const startSeconds = (Date.now() - t0) / 1000;
    fs.chmodSync(config, 0o600);
    const entriesAtStart = daemon.replayStats().entries;
    const port = daemon.tumblerAddresses()[0].port;
    const loop = monitorEventLoopDelay({ resolution: 1 });
    loop.enable();
    const sent = new Map<string, number>();
    const ioBefore = daemon.replayStats().io;
    for (let k = 0; k < knocks; k++) {
      const ip = `127.0.${1 + (k >> 8)}.${(k & 255) + 1}`;
      const t = Date.now() * 1e6;
      sent.set(ip, t);
      await sendUdpFrom(ip, port, Buffer.from(formatDatagram(knockDigest(Date.now(), ip, 'bench-secret-0123456789abcdef'))));
      /* a classic knock from another source in between, through the followed file */
      const classic = `10.9.${k >> 8}.${k & 255}`;
      sent.set(classic, Date.now() * 1e6);
      for (const p of [42, 196, 69]) fs.appendFileSync(kern, synLine(classic, p));
      await sleep(Number(process.env.BENCH_GAP_MS ?? 40));
    }
    /* long enough for a backlog to drain: a knock still unopened then was dropped */
    await sleep(5000);
    loop.disable();
    const opened = new Map<string, number>();
    for (const ip of fs.readdirSync(stamps)) opened.set(ip, Number(fs.statSync(path.join(stamps, ip), { bigint: true }).mtimeNs));
    const lat = (prefix: string) =>
      [...sent].filter(([ip]) => ip.startsWith(prefix)).map(([ip, t]) => (opened.has(ip) ? (opened.get(ip)! - t) / 1e6 : NaN));
    const stats = daemon.replayStats();
    await daemon.stop('benchmark done');
    out({
      startSeconds,
      entriesAtStart,
      tumblerMs: lat('127.'),
      classicMs: lat('10.9.'),
      appends: stats.io.appends - ioBefore.appends,
      appendedBytes: stats.io.appendedBytes - ioBefore.appendedBytes,
      syncs: stats.io.syncs - ioBefore.syncs,
      compactions: stats.io.compactions,
      compactedBytes: stats.io.compactedBytes,
      maxLoopDelayMs: loop.max / 1e6,
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function out(o: object): void {
  process.stdout.write(JSON.stringify({ ...o, maxRssKiB: process.resourceUsage().maxRSS }));
}

async function main(): Promise<void> {
  const [what, a, b] = process.argv.slice(2);
  if (what === 'scan') {
    const config = loadConfigFile(a);
    const t0 = process.hrtime.bigint();
    const report = await scanLogs(config, [b]);
    out({ seconds: Number(process.hrtime.bigint() - t0) / 1e9, counts: report.counts, stats: report.table });
  } else if (what === 'tumbler') {
    /* tumbler DOORS SECONDS SOURCES SKEW: SOURCES 0 is a new source for every datagram */
    const [, , , sourcesText, skewText] = process.argv.slice(2);
    const sources = Number(sourcesText);
    const doors = Array.from({ length: Number(a) }, (_, i) => ({ name: `door${i}`, secret: `secret-number-${i}` }));
    const listener = new TumblerListener([new TumblerV1Verifier(doors, Number(skewText))], new ReplayCache(), { grant() {}, info() {}, warn() {} });
    const junk = Array.from({ length: 1024 }, (_, i) => Buffer.from('TUMBLER1: ' + (i.toString(16).padStart(4, '0')).repeat(16)));
    const addresses = Array.from({ length: sources || 1 << 16 }, (_, m) => `10.${(m >> 16) & 255}.${(m >> 8) & 255}.${m & 255}`);
    const end = Date.now() + Number(b) * 1000;
    const t0 = process.hrtime.bigint();
    const cpu0 = process.cpuUsage();
    let n = 0;
    while (Date.now() < end) {
      for (let i = 0; i < 256; i++) {
        const m = n + i;
        const from = sources ? addresses[m % sources] : `10.${(m >> 16) & 255}.${(m >> 8) & 255}.${m & 255}`;
        listener.handle(junk[m & 1023], from);
      }
      n += 256;
    }
    const cpu = process.cpuUsage(cpu0);
    out({ perSecond: n / (Number(process.hrtime.bigint() - t0) / 1e9), perCpuSecond: n / ((cpu.user + cpu.system) / 1e6), counts: listener.counts });
  } else if (what === 'replay') {
    await replayBench(Number(a), Number(b), Number(process.argv[5]));
  } else {
    throw new Error(`unknown measurement ${what}`);
  }
}

void main();
