/**
 * Measurements that need a process of their own, so that peak RSS is theirs alone:
 *   scan CONFIG LOG        tumblerd's scan code over a log
 *   sources N MAX          N distinct spoofed sources each starting a knock, table bounded at MAX
 *   tumbler DOORS SECONDS  junk Tumbler datagrams through the listener's check, in-process
 *   tumbler2-junk DOORS USERS SECONDS   random datagrams of v2 lengths, each from a new source
 *   tumbler2-valid DOORS USERS COUNT    valid v2 knocks, made beforehand, through the listener
 *   tumbler2-flood N                    N datagrams with a valid mac1 from N new sources (memory)
 *   scrypt ROUNDS                       the passphrase KDF
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
