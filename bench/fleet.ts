/**
 * A larger fleet against one real Redis: `GATEWAYS` members in one process (each with its own two
 * connections, consumer group and heartbeat, as separate tumblerd would have), knocks accepted
 * at random members, and for each the time until every other member has read and applied it.
 * Redis's own counters (INFO commandstats, INFO cpu) give the operations and the CPU per knock.
 */
import { ChildProcess, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import Redis from 'ioredis';
import { Fleet } from '../src/fleet/fleet';
import type { DoorConfig } from '../src/model/door';
import { ReplayCache } from '../src/tumbler/replayCache';
import { freePort } from '../test/support/fleetLab';
import { sleep } from '../test/support/lab';

export interface FleetBench {
  gateways: number;
  knocks: number;
  /** Sender accepted → one receiver applied, over every (knock, receiver). */
  eachMs: { median: number; p99: number; max: number };
  /** Sender accepted → the last receiver applied, per knock. */
  allMs: { median: number; p99: number; max: number };
  /** Redis commands per knock (heartbeats and blocking-read timeouts excluded), by command. */
  opsPerKnock: Record<string, number>;
  totalOpsPerKnock: number;
  /** Redis CPU per knock (beyond what the idle fleet costs), and what one Redis core would take at that cost. */
  redisCpuUsPerKnock: number;
  knocksPerSecondPerCore: number;
}

const quiet = { info() {}, warn() {}, error() {} };

function stats(xs: number[]): { median: number; p99: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  const at = (p: number) => s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)];
  return { median: at(0.5), p99: at(0.99), max: s[s.length - 1] };
}

function parseInfo(text: string): Map<string, string> {
  return new Map(text.split('\r\n').filter((l) => l.includes(':')).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1)]));
}

async function commandCalls(admin: Redis): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const [k, v] of parseInfo(await admin.info('commandstats'))) {
    const m = /^calls=(\d+)/.exec(v);
    if (m) out[k.replace('cmdstat_', '')] = Number(m[1]);
  }
  return out;
}

async function redisCpu(admin: Redis): Promise<number> {
  const i = parseInfo(await admin.info('cpu'));
  return Number(i.get('used_cpu_sys')) + Number(i.get('used_cpu_user'));
}

export async function runFleetBench(gateways = 50, knocks = 200, gapMs = 20): Promise<FleetBench> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-bench-'));
  const port = await freePort();
  const server: ChildProcess = spawn('redis-server', ['--bind', '127.0.0.1', '--port', String(port), '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'everysec'], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((resolve, reject) => {
      let out = '';
      server.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('Ready to accept connections')) resolve();
      });
      server.once('exit', () => reject(new Error(`redis-server exited: ${out}`)));
    });
    const admin = new Redis(port, '127.0.0.1');
    const key = crypto.randomBytes(32);
    const doors = [{ name: 'ssh', fleet: true, closeAfterMs: 60_000 }] as DoorConfig[];
    const sentAt = new Map<string, number>();
    const senderOf = new Map<string, number>();
    const applied = new Map<string, number[]>();
    const members = Array.from({ length: gateways }, (_, i) =>
      new Fleet(
        { redis: `redis://127.0.0.1:${port}/0`, password: null, name: `gw${i}`, group: 'bench', key, keyFile: '', offline: 'refuse', timeoutMs: 1000, streamLength: 10_000, tls: null },
        doors,
        {
          openDoor: async (g) => {
            const t0 = sentAt.get(g.src);
            if (t0 !== undefined && senderOf.get(g.src) !== i) (applied.get(g.src) ?? applied.set(g.src, []).get(g.src)!).push(performance.now() - t0);
          },
        },
        quiet,
      ),
    );
    for (const m of members) await m.start();
    const stores = members.map((m) => m.replayStore(new ReplayCache()));
    await sleep(2500);
    /* the same interval without knocks: heartbeats and blocking reads that time out */
    const idle0 = await commandCalls(admin);
    const idleCpu0 = await redisCpu(admin);
    const duration = knocks * gapMs + 1000;
    await sleep(duration);
    const idle1 = await commandCalls(admin);
    const idleCpu1 = await redisCpu(admin);
    const before = await commandCalls(admin);
    const cpu0 = await redisCpu(admin);
    for (let k = 0; k < knocks; k++) {
      const sender = k % gateways;
      const src = `10.${(k >> 16) & 255}.${(k >> 8) & 255}.${k & 255}`;
      sentAt.set(src, performance.now());
      senderOf.set(src, sender);
      const now = Date.now();
      /* what the Tumbler listener does with a knock: claim it, then hand the grant over */
      if ((await stores[sender].claim(crypto.randomBytes(32).toString('hex'), now + 60_000, now)) !== 'fresh') throw new Error('claim refused');
      void members[sender].admit({ door: 'ssh', src, family: 4, via: 'tumbler', user: null, at: now });
      await sleep(gapMs);
    }
    await sleep(1000);
    const after = await commandCalls(admin);
    const cpu1 = await redisCpu(admin);
    for (const m of members) await m.stop();
    admin.disconnect();
    const each: number[] = [];
    const all: number[] = [];
    for (const src of sentAt.keys()) {
      const xs = applied.get(src) ?? [];
      if (xs.length !== gateways - 1) throw new Error(`${src}: applied by ${xs.length} of ${gateways - 1} gateways`);
      each.push(...xs);
      all.push(Math.max(...xs));
    }
    const opsPerKnock: Record<string, number> = {};
    let total = 0;
    for (const cmd of new Set([...Object.keys(after), ...Object.keys(before)])) {
      /* the admin's own, and the heartbeats, which cost per second, not per knock */
      if (['info', 'hset', 'hgetall', 'hdel'].includes(cmd)) continue;
      const calls = (after[cmd] ?? 0) - (before[cmd] ?? 0) - ((idle1[cmd] ?? 0) - (idle0[cmd] ?? 0));
      if (calls / knocks < 0.05) continue;
      opsPerKnock[cmd] = calls / knocks;
      total += calls / knocks;
    }
    const cpuUs = ((cpu1 - cpu0 - (idleCpu1 - idleCpu0)) * 1e6) / knocks;
    return {
      gateways,
      knocks,
      eachMs: stats(each),
      allMs: stats(all),
      opsPerKnock,
      totalOpsPerKnock: total,
      redisCpuUsPerKnock: cpuUs,
      knocksPerSecondPerCore: 1e6 / cpuUs,
    };
  } finally {
    server.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  void runFleetBench(Number(process.argv[2] ?? 50), Number(process.argv[3] ?? 200)).then((r) => {
    process.stdout.write(JSON.stringify(r, null, 2) + '\n');
    process.exit(0);
  });
}
