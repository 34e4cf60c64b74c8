/**
 * Measurements that need a process of their own, so that peak RSS is theirs alone:
 *   scan CONFIG LOG        tumblerd's scan code over a log
 *   tumbler DOORS SECONDS SOURCES SKEW
 *                          junk Tumbler datagrams through the listener's check, in-process, from
 *                          SOURCES addresses in turn (0: a new one each time)
 * Each prints one JSON object.
 */
import { loadConfigFile } from '../src/config/load';
import { scanLogs } from '../src/cli/scan';
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
  } else {
    throw new Error(`unknown measurement ${what}`);
  }
}

void main();
