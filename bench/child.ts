/**
 * Measurements that need a process of their own, so that peak RSS is theirs alone:
 *   scan CONFIG LOG        tumblerd's scan code over a log
 *   tumbler DOORS SECONDS SOURCES SKEW
 *                          junk Tumbler datagrams through the listener's check, in-process, from
 *                          SOURCES addresses in turn (0: a new one each time)
 *   tumbler2-junk DOORS USERS SECONDS   random datagrams of v2 lengths, each from a new source
 *   tumbler2-valid DOORS USERS COUNT    valid v2 knocks, made beforehand, through the listener
 *   tumbler2-flood N                    N datagrams with a valid mac1 from N new sources (memory)
 *   scrypt ROUNDS                       the passphrase KDF
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
import { PerformanceObserver, monitorEventLoopDelay } from 'node:perf_hooks';
import { Daemon } from '../src/daemon';
import { formatDatagram, knockDigest } from '../src/tumbler/protocol';
import { sendUdpFrom, sleep } from '../test/support/lab';
import { hostInterface, knockLine } from './genlog';

const hex64 = (i: number) => i.toString(16).padStart(64, '0');

/** A kernel line as rsyslog files it (RFC 3339), for a SYN from `src` to `dport` on this host (its host check must accept it). */
function synLine(src: string, dport: number): string {
  const { iface, address } = hostInterface();
  return knockLine(new Date().toISOString().replace('Z', '+00:00'), src, dport, iface, address, 'BENCH: ') + '\n';
}

async function replayBench(live: number, dead: number, knocks: number): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tumbler-doors-bench-'));
  try {
    const state = path.join(dir, 'state');
    fs.mkdirSync(state, { mode: 0o700 });
    const now = Date.now();
    const until = now + 3_600_000;
    const fd = fs.openSync(path.join(state, 'replay.log'), 'w');
    /* written from one reused buffer: the setup must not leave a heap of strings in the peak RSS that the daemon is measured by */
    const chunk = Buffer.alloc(1 << 20);
    let used = 0;
    for (let j = 0; j < live + dead; j++) {
      if (used > chunk.length - 100) used -= fs.writeSync(fd, chunk, 0, used);
      used += chunk.write(`${hex64(j)} ${j < dead ? now - 1000 : until}\n`, used, 'latin1');
    }
    fs.writeSync(fd, chunk, 0, used);
    /* on disk, as a log left by an earlier run is: else the first knock's fdatasync writes the whole file */
    fs.fsyncSync(fd);
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
    /* the collector's pauses and the process's CPU time while the knocks come: figures a loaded machine does not inflate as much as latencies */
    const gc: number[] = [];
    const gcObserver = new PerformanceObserver((list) => gc.push(...list.getEntries().map((e) => e.duration)));
    gcObserver.observe({ entryTypes: ['gc'] });
    const cpu0 = process.cpuUsage();
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
    const cpu = process.cpuUsage(cpu0);
    gcObserver.disconnect();
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
      gcMaxMs: Math.max(0, ...gc),
      gcTotalMs: gc.reduce((a, b) => a + b, 0),
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
import crypto from 'node:crypto';
import { GatewayContext, encodeKnock } from '../src/tumbler/v2/datagram';
import { ed25519PublicRaw, passphraseSeed, x25519PublicRaw } from '../src/tumbler/v2/keys';
import { TumblerV2State, TumblerV2Verifier } from '../src/tumbler/v2/verifier';

const GW = crypto.createHash('sha256').update('bench gateway').digest();

/** A v2 verifier with `doors` doors and `users` users, each user on every door; and the users' seeds. */
function v2Setup(doors: number, users: number, state = new TumblerV2State()) {
  const seeds = Array.from({ length: users }, (_, i) => crypto.createHash('sha256').update(`user${i}`).digest());
  const keys = new Map(seeds.map((s, i) => [ed25519PublicRaw(s).toString('base64'), `user${i}`]));
  const verifier = new TumblerV2Verifier(
    { privateKey: GW, gateway: null, windowMs: 60_000, doors: Array.from({ length: doors }, (_, i) => ({ name: `door${i}`, nat: 'auto' as const, users: keys })) },
    state,
  );
  return { verifier, seeds, gateway: new GatewayContext(x25519PublicRaw(GW)) };
}

const v1Doors = (n: number) => Array.from({ length: n }, (_, i) => ({ name: `v1door${i}`, secret: `secret-number-${i}` }));
const newSource = (m: number) => `10.${(m >> 16) & 255}.${(m >> 8) & 255}.${m & 255}`;

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
  } else if (what === 'tumbler2-junk') {
    /* both protocols on the port, as deployed: v1 looks at each datagram first */
    const { verifier } = v2Setup(Number(a), Number(b));
    const listener = new TumblerListener([new TumblerV1Verifier(v1Doors(4), 1), verifier], new ReplayCache(), { grant() {}, info() {}, warn() {} });
    const junk = Array.from({ length: 1024 }, (_, i) => crypto.randomBytes(256 + (i & 127)));
    const end = Date.now() + Number(process.argv[5]) * 1000;
    const t0 = process.hrtime.bigint();
    let n = 0;
    while (Date.now() < end) {
      for (let i = 0; i < 256; i++) listener.handle(junk[(n + i) & 1023], newSource(n + i));
      n += 256;
    }
    out({ perSecond: n / (Number(process.hrtime.bigint() - t0) / 1e9), counts: listener.counts, v2: verifier.state.counts });
  } else if (what === 'tumbler2-valid') {
    /* the per-source and global limits lifted: this is what one core can check, not what the limits let through */
    const state = new TumblerV2State({ perSource: { perSecond: 1e9, burst: 1e9 }, global: { perSecond: 1e9, burst: 1e9 }, maxSources: 8192 });
    const { verifier, seeds, gateway } = v2Setup(Number(a), Number(b), state);
    const count = Number(process.argv[5]);
    const now = Date.now();
    const knocks = Array.from({ length: count }, (_, i) => encodeKnock(gateway, seeds[i % seeds.length], { time: now, door: `door${i % Number(a)}`, gateway: null, declared: [] }));
    let granted = 0;
    const listener = new TumblerListener([verifier], new ReplayCache(), { grant: () => granted++, info() {}, warn() {} }, () => now);
    const t0 = process.hrtime.bigint();
    const pending = knocks.map((k, i) => listener.handle(k, newSource(i)));
    await Promise.all(pending);
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    out({ perSecond: count / seconds, granted, counts: state.counts });
  } else if (what === 'tumbler2-flood') {
    const { verifier, gateway } = v2Setup(16, 100);
    const listener = new TumblerListener([verifier], new ReplayCache(), { grant() {}, info() {}, warn() {} });
    const n = Number(a);
    const base = crypto.randomBytes(300);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      /* the attacker knows the gateway public key: every datagram passes mac1 and reaches the limits */
      const m = Buffer.from(base);
      m.writeUInt32BE(i, 0);
      gateway.mac1(m.subarray(0, 284)).copy(m, 284);
      listener.handle(m, newSource(i));
    }
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    (global as { gc?: () => void }).gc?.();
    out({ seconds, sizes: verifier.state.sizes, counts: verifier.state.counts, heapAfterGcMiB: process.memoryUsage().heapUsed / 2 ** 20 });
  } else if (what === 'scrypt') {
    const ms: number[] = [];
    for (let i = 0; i < Number(a); i++) {
      const t0 = process.hrtime.bigint();
      passphraseSeed(`guess number ${i}`, x25519PublicRaw(GW), 'ssh');
      ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    out({ ms });
  } else {
    throw new Error(`unknown measurement ${what}`);
  }
}

void main();
