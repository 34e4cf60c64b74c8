/**
 * What a gateway does with its own grants when Redis answers, when it is gone and when it hangs,
 * for each kind of knock: a real redis-server on a loopback port of its own (never 6379), two
 * fleet members in this process, and the doors they open recorded. Also Redis over TLS.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FleetConfig } from '../../src/fleet/config';
import { Fleet } from '../../src/fleet/fleet';
import type { DoorConfig } from '../../src/model/door';
import type { Grant } from '../../src/model/grant';
import { ReplayCache } from '../../src/tumbler/replayCache';
import { freePort } from '../support/fleetLab';
import { sleep, waitFor } from '../support/lab';

const hasRedis = spawnSync('sh', ['-c', 'command -v redis-server && command -v openssl']).status === 0;
const describeRedis = hasRedis ? describe : describe.skip;
if (!hasRedis) console.warn('SKIPPED fleet policy tests: redis-server or openssl is not installed (bash .ci/run installs them)');

class RedisServer {
  child: ChildProcess | null = null;
  constructor(readonly dir: string, readonly args: string[]) {}
  async start(): Promise<void> {
    const child = spawn('redis-server', ['--bind', '127.0.0.1', '--dir', this.dir, '--save', '', '--appendonly', 'no', ...this.args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    this.child = child;
    await waitFor('redis-server', () => {
      if (child.exitCode !== null) throw new Error(out);
      return out.includes('Ready to accept connections');
    });
  }
  async kill(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await gone;
  }
}

const DOORS = [
  { name: 'ssh', fleet: true, closeAfterMs: 30_000 },
  { name: 'web', fleet: false, closeAfterMs: 30_000 },
] as DoorConfig[];

interface Member {
  fleet: Fleet;
  opened: Grant[];
  logs: string[];
}

describeRedis('fleet policy with a real Redis', () => {
  let dir: string;
  let redis: RedisServer;
  let port: number;
  const members: Member[] = [];
  const key = crypto.randomBytes(32);

  const member = async (name: string, extra: Partial<FleetConfig> = {}): Promise<Member> => {
    const opened: Grant[] = [];
    const logs: string[] = [];
    const log = (level: string) => (m: string) => logs.push(`${level} ${m}`);
    const cfg: FleetConfig = {
      redis: `redis://127.0.0.1:${port}/0`, password: null, name, group: 'policy', key, keyFile: '', offline: 'refuse',
      timeoutMs: 300, streamLength: 1000, tls: null, ...extra,
    };
    const fleet = new Fleet(cfg, DOORS, { openDoor: async (g) => void opened.push(g) }, { info: log('info'), warn: log('warn'), error: log('error') });
    await fleet.start();
    const m = { fleet, opened, logs };
    members.push(m);
    return m;
  };
  const grant = (over: Partial<Grant> = {}): Grant => ({ door: 'ssh', src: '192.0.2.7', family: 4, via: 'sequence', user: null, at: Date.now(), ...over });

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-policy-'));
    port = await freePort();
    redis = new RedisServer(dir, ['--port', String(port)]);
    await redis.start();
  });
  afterEach(async () => {
    for (const m of members.splice(0)) await m.fleet.stop();
  });
  afterAll(async () => {
    await redis?.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('publishes a classic knock on a fleet door: both gateways open it; a door that is not a fleet door opens here only', async () => {
    const a = await member('a');
    const b = await member('b');
    await a.fleet.admit(grant());
    await a.fleet.admit(grant({ door: 'web', src: '192.0.2.8' }));
    await waitFor('b to open', () => b.opened.length === 1, 3000);
    await sleep(300);
    expect(a.opened.map((g) => g.door)).toEqual(['ssh', 'web']);
    expect(b.opened).toEqual([expect.objectContaining({ door: 'ssh', src: '192.0.2.7', via: 'sequence', untilMs: a.opened[0].untilMs })]);
    expect((await b.fleet.status()).members.map((m) => m.name)).toEqual(['a', 'b']);
  });

  it('with Redis gone: refuses fleet-scoped knocks, opens knocks scoped to this gateway here only, and opens other doors', async () => {
    const a = await member('a');
    await redis.kill();
    await waitFor('the outage to be noticed', () => a.logs.some((l) => l.includes('Redis does not answer')), 3000);
    const store = a.fleet.replayStore(new ReplayCache());
    const until = Date.now() + 60_000;
    await expect(store.claim('k-fleet', until, Date.now())).rejects.toThrow(/did not answer/);
    /* refused now, and used: it does not open later either */
    expect(await store.claim('k-fleet', until, Date.now())).toBe('replay');
    expect(await store.claim('k-local', until, Date.now(), 'local')).toBe('fresh');
    await a.fleet.admit(grant({ src: '192.0.2.1' }));
    await a.fleet.admit(grant({ src: '192.0.2.2', via: 'tumbler', replayScope: 'local' }));
    await a.fleet.admit(grant({ src: '192.0.2.3', door: 'web' }));
    expect(a.opened.map((g) => g.src)).toEqual(['192.0.2.2', '192.0.2.3']);
    expect(a.logs.filter((l) => l.includes('door not opened'))).toHaveLength(1);
    expect((await a.fleet.status()).state).toBe('down');
    await redis.start();
    await waitFor('Redis to answer again', () => a.logs.some((l) => l.includes('Redis answers again')), 5000);
    expect(a.logs.filter((l) => l.includes('Redis does not answer'))).toHaveLength(1);
  });

  it('with offline: local, opens fleet-scoped knocks on this gateway while Redis is gone', async () => {
    const a = await member('a', { offline: 'local' });
    await redis.kill();
    try {
      expect(await a.fleet.replayStore(new ReplayCache()).claim('k2', Date.now() + 60_000, Date.now())).toBe('fresh');
      await a.fleet.admit(grant({ src: '192.0.2.4' }));
      expect(a.opened.map((g) => g.src)).toEqual(['192.0.2.4']);
      expect(a.logs.some((l) => l.includes('door opened on this gateway only'))).toBe(true);
    } finally {
      await redis.start();
    }
  });

  it('gives up on a Redis that hangs after the timeout, and refuses', async () => {
    const a = await member('a');
    process.kill(redis.child!.pid!, 'SIGSTOP');
    try {
      const started = Date.now();
      await expect(a.fleet.replayStore(new ReplayCache()).claim('k3', Date.now() + 60_000, Date.now())).rejects.toThrow(/timed out/);
      await a.fleet.admit(grant({ src: '192.0.2.5' }));
      expect(a.opened).toEqual([]);
      console.log(`a hung Redis: claim refused after ${Date.now() - started} ms (timeout 300 ms)`);
    } finally {
      process.kill(redis.child!.pid!, 'SIGCONT');
    }
  });

  it('talks TLS to a Redis with --tls-port, checking its certificate against ca_file', async () => {
    const tlsDir = path.join(dir, 'tls');
    fs.mkdirSync(tlsDir);
    const sh = (...a: string[]) => {
      const r = spawnSync(a[0], a.slice(1), { cwd: tlsDir, encoding: 'utf8' });
      if (r.status !== 0) throw new Error(r.stderr);
    };
    sh('openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=fleet-test-ca', '-keyout', 'ca.key', '-out', 'ca.crt');
    sh('openssl', 'req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', 'redis.key', '-out', 'redis.csr');
    fs.writeFileSync(path.join(tlsDir, 'ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
    sh('openssl', 'x509', '-req', '-in', 'redis.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1', '-extfile', 'ext', '-out', 'redis.crt');
    const tlsPort = await freePort();
    const tlsRedis = new RedisServer(dir, [
      '--port', '0', '--tls-port', String(tlsPort), '--tls-cert-file', path.join(tlsDir, 'redis.crt'),
      '--tls-key-file', path.join(tlsDir, 'redis.key'), '--tls-ca-cert-file', path.join(tlsDir, 'ca.crt'), '--tls-auth-clients', 'no',
    ]);
    await tlsRedis.start();
    try {
      const ca = fs.readFileSync(path.join(tlsDir, 'ca.crt'), 'utf8');
      const url = `rediss://127.0.0.1:${tlsPort}/0`;
      const a = await member('a', { redis: url, tls: { ca, cert: null, key: null } });
      const b = await member('b', { redis: url, tls: { ca, cert: null, key: null } });
      await a.fleet.admit(grant({ src: '192.0.2.9' }));
      await waitFor('b to open over TLS', () => b.opened.length === 1, 3000);
      /* a certificate from another CA is refused: nothing is published, nothing opens */
      sh('openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=another-ca', '-keyout', 'other.key', '-out', 'other.crt');
      const other = await member('c', { redis: url, tls: { ca: fs.readFileSync(path.join(tlsDir, 'other.crt'), 'utf8'), cert: null, key: null } });
      expect((await other.fleet.status()).state).not.toBe('up');
      /* plain text to the TLS port gets no answer */
      const plain = await member('d', { redis: `redis://127.0.0.1:${tlsPort}/0` });
      expect((await plain.fleet.status()).state).not.toBe('up');
    } finally {
      await tlsRedis.kill();
    }
  });
});
