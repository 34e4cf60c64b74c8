/**
 * Measurements that need a process of their own, so that peak RSS is theirs alone:
 *   scan CONFIG LOG        tumblerd's scan code over a log
 *   sources N MAX          N distinct spoofed sources each starting a knock, table bounded at MAX
 *   tumbler DOORS SECONDS  junk Tumbler datagrams through the listener's check, in-process
 * Each prints one JSON object.
 */
import { loadConfigFile } from '../src/config/load';
import { scanLogs } from '../src/cli/scan';
import { KnockTracker } from '../src/knock/tracker';
import { DEFAULT_FLAGS, parseSequence } from '../src/knock/sequence';
import { PacketEvent, TCP_FLAGS } from '../src/model/packet';
import { TumblerListener } from '../src/tumbler/listener';
import { ReplayCache } from '../src/tumbler/replayCache';
import { TumblerV1Verifier } from '../src/tumbler/v1Verifier';

function out(o: object): void {
  process.stdout.write(JSON.stringify({ ...o, maxRssKiB: process.resourceUsage().maxRSS }));
}

async function main(): Promise<void> {
  const [what, a, b] = process.argv.slice(2);
  if (what === 'scan') {
    const config = loadConfigFile(a);
    const t0 = process.hrtime.bigint();
    const report = await scanLogs(config, [b]);
    out({ seconds: Number(process.hrtime.bigint() - t0) / 1e9, counts: report.counts });
  } else if (what === 'sources') {
    const n = Number(a);
    const tracker = new KnockTracker([{ name: 'ssh', sequence: parseSequence([42, 196, 69]), timeoutMs: 3_600_000, flags: DEFAULT_FLAGS }], Number(b));
    const base: PacketEvent = { time: 0, src: '', family: 4, dst: '192.0.2.1', proto: 'tcp', sport: 40000, dport: 42, flags: TCP_FLAGS.SYN, iface: 'eth0', prefix: 'FIREWALL: ' };
    const t0 = process.hrtime.bigint();
    let opened = 0;
    for (let i = 0; i < n; i++) {
      tracker.handle({ ...base, time: 1000 + i, src: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` });
      if (i === n >> 1) {
        /* a real user knocking in the middle of the flood */
        for (const dport of [42, 196, 69]) opened += tracker.handle({ ...base, time: 1000 + i, src: '192.0.2.77', dport }).length;
      }
    }
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    /* what the table itself holds, apart from the garbage the generator made */
    (global as { gc?: () => void }).gc?.();
    out({ seconds, stats: tracker.stats(), realKnockOpened: opened === 1, heapAfterGcMiB: process.memoryUsage().heapUsed / 2 ** 20 });
  } else if (what === 'tumbler') {
    const doors = Array.from({ length: Number(a) }, (_, i) => ({ name: `door${i}`, secret: `secret-number-${i}` }));
    const listener = new TumblerListener([new TumblerV1Verifier(doors, 1)], new ReplayCache(), { grant() {}, info() {}, warn() {} });
    const junk = Array.from({ length: 1024 }, (_, i) => Buffer.from('TUMBLER1: ' + (i.toString(16).padStart(4, '0')).repeat(16)));
    const end = Date.now() + Number(b) * 1000;
    const t0 = process.hrtime.bigint();
    let n = 0;
    while (Date.now() < end) {
      for (let i = 0; i < 256; i++) {
        const m = n + i;
        listener.handle(junk[m & 1023], `10.${(m >> 16) & 255}.${(m >> 8) & 255}.${m & 255}`);
      }
      n += 256;
    }
    out({ perSecond: n / (Number(process.hrtime.bigint() - t0) / 1e9), counts: listener.counts });
  } else {
    throw new Error(`unknown measurement ${what}`);
  }
}

void main();
