/**
 * What tumblerd trusts, tried as an attacker would, on real processes on this host (root needed,
 * no lab): a state folder others can write to, a symlink planted by an unprivileged user the
 * test creates (as the state folder and as log.file), a second instance on one state folder,
 * hostile entries in the saved state, --dry-run with each firewall backend stopped by SIGTERM,
 * door commands' environment, and the config checks of --check.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Daemon, TUMBLERD, sendUdpFrom, sleep, waitFor } from '../support/lab';
import { formatDatagram, knockDigest } from '../../src/tumbler/protocol';

const SECRET = 'trust-test-secret-0123456789';
const isRoot = process.getuid?.() === 0;
const hasUseradd = spawnSync('sh', ['-c', 'command -v useradd && command -v runuser']).status === 0;
const USER = `doors${process.pid % 100000}`;

(isRoot && hasUseradd ? describe : describe.skip)('what tumblerd trusts (as root)', () => {
  let dir: string;
  let port: number;
  const daemons: Daemon[] = [];
  let userMade = false;

  const config = (name: string, stateDir: string, extra = '', door = '    open: /bin/true %IP%\n'): string => {
    const file = path.join(dir, `${name}.yaml`);
    fs.writeFileSync(file, `state_dir: ${stateDir}\n${extra}tumbler:\n  listen: ["127.0.0.1:${port}"]\ndoors:\n  ssh:\n    secret: ${SECRET}\n${door}`, { mode: 0o600 });
    return file;
  };
  const run = (...args: string[]) => spawnSync(process.execPath, [TUMBLERD, ...args], { encoding: 'utf8', timeout: 15_000 });
  const start = async (file: string, args: string[] = [], env = process.env) => {
    const d = new Daemon(null, file, args, env);
    daemons.push(d);
    return d.started();
  };
  const knock = (from = '127.0.0.71') => sendUdpFrom(from, port, Buffer.from(formatDatagram(knockDigest(Date.now(), from, SECRET))));

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tumbler-doors-trust-'));
    fs.chmodSync(dir, 0o711); /* the test's user may pass through to the folders it can write, and no further */
    spawnSync('useradd', ['--no-create-home', '--shell', '/usr/sbin/nologin', USER]);
    userMade = true;
  });
  beforeEach(() => (port = 21000 + Math.floor(Math.random() * 20000)));
  afterEach(async () => {
    for (const d of daemons.splice(0)) await d.stop('SIGKILL');
  });
  afterAll(() => {
    spawnSync('chattr', ['-i', '-R', dir]);
    fs.rmSync(dir, { recursive: true, force: true });
    if (userMade) spawnSync('userdel', [USER]);
  });

  it('refuses a state folder others can write, or under a folder others can write; takes a sticky /tmp-like parent and sets 0700', async () => {
    const open = path.join(dir, 'open');
    fs.mkdirSync(open);
    fs.chmodSync(open, 0o777);
    fs.mkdirSync(path.join(open, 'state'), { mode: 0o700 });
    let r = run('-c', config('a', path.join(open, 'state')));
    expect(r.status).toBe(1);
    const check = run('--check', '-c', path.join(dir, 'a.yaml'));
    expect(check.status).toBe(1);
    expect(check.stdout).toMatch(/FAIL state-dir: state_dir .*open\/state is not safe for root/);
    expect(r.stderr).toMatch(/state_dir .*open\/state is not safe for root: .*open, a folder above it, can be written by others and is not sticky \(owner uid 0, mode 0777\)/);
    const self = path.join(dir, 'self-open');
    fs.mkdirSync(self);
    fs.chmodSync(self, 0o777);
    r = run('-c', config('b', self));
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/self-open can be written by others/);
    /* what a user could have planted there was never read: no door was closed, no command run */
    expect(r.stderr).not.toContain('restored');
    const sticky = path.join(dir, 'sticky');
    fs.mkdirSync(sticky);
    fs.chmodSync(sticky, 0o1777);
    const state = path.join(sticky, 'state');
    fs.mkdirSync(state, { mode: 0o755 });
    fs.chmodSync(state, 0o755);
    await start(config('c', state));
    expect(fs.statSync(state).mode & 0o777).toBe(0o700);
  });

  it('refuses a state folder that is a symlink an unprivileged user planted, and status will not ask a socket there', () => {
    const pub = path.join(dir, 'pub');
    fs.mkdirSync(pub);
    fs.chmodSync(pub, 0o1777);
    const victim = path.join(dir, 'victim');
    fs.mkdirSync(victim, { mode: 0o700 });
    const planted = path.join(pub, 'state');
    expect(spawnSync('runuser', ['-u', USER, '--', 'ln', '-s', victim, planted]).status).toBe(0);
    const file = config('d', planted);
    const r = run('-c', file);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/state_dir .*pub\/state is not a folder \(a symlink to one is not taken\)/);
    expect(fs.readdirSync(victim)).toEqual([]);
    const s = run('status', '-c', file);
    expect(s.status).toBe(1);
    expect(s.stderr).toMatch(/not asking .*tumblerd\.sock: .*belongs to uid/);
  });

  it('log.file: never through a symlink a user planted; created 0640', async () => {
    /* the user's own folder: the kernel's protected_symlinks covers only sticky world-writable ones */
    const pub = path.join(dir, 'logs');
    fs.mkdirSync(pub);
    spawnSync('chown', [USER, pub]);
    const victim = path.join(dir, 'victim.txt');
    fs.writeFileSync(victim, 'precious\n', { mode: 0o600 });
    const log = path.join(pub, 'tumblerd.log');
    expect(spawnSync('runuser', ['-u', USER, '--', 'ln', '-s', victim, log]).status).toBe(0);
    const r = run('-c', config('e', path.join(dir, 'state-e'), `log: { file: ${log} }\n`));
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/ELOOP/);
    expect(fs.readFileSync(victim, 'utf8')).toBe('precious\n');
    const good = path.join(dir, 'good.log');
    await start(config('f', path.join(dir, 'state-f'), `log: { file: ${good} }\n`));
    expect(fs.statSync(good).mode & 0o777).toBe(0o640);
    expect(fs.readFileSync(good, 'utf8')).toContain('tumblerd started');
  });

  it('a second instance on the same state folder says so and leaves the first alone', async () => {
    const state = path.join(dir, 'state-g');
    const file = config('g', state);
    const first = await start(file);
    port += 1;
    const second = run('-c', config('g2', state));
    expect(second.status).toBe(1);
    expect(second.stderr).toContain(`another tumblerd is running with state_dir ${state}`);
    /* the first one's control socket is still its own */
    expect(run('status', '-c', file).stdout).toContain('no door is open');
    expect(first.child.exitCode).toBeNull();
    await first.stop('SIGTERM');
    await start(config('g3', state)); /* the lock went with the first */
  });

  it('hostile state entries: each bad one reported and skipped or closed at once, the good ones kept', async () => {
    const state = path.join(dir, 'state-h');
    fs.mkdirSync(state, { mode: 0o700 });
    const mark = (n: string) => path.join(dir, `closed-${n}`);
    const entry = (src: string, over: Record<string, unknown> = {}) => ({
      door: 'ssh', src, family: 4, via: 'sequence', user: null, openedAt: Date.now(), closesAt: Date.now() + 3_600_000,
      close: [['/usr/bin/touch', mark(src)]], allow: [], commandTimeoutMs: 5000, closeAfterMs: 3_600_000, ...over,
    });
    fs.writeFileSync(path.join(state, 'doors.json'), JSON.stringify({
      version: 2, boot: fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(),
      doors: [
        entry('192.0.2.1'),
        entry('192.0.2.2', { commandTimeoutMs: -1 }),
        entry('192.0.2.3', { closeAfterMs: 1.5 }),
        entry('192.0.2.4', { close: [['/usr/bin/touch', 'x\0y']] }),
        entry('192.0.2.5', { closesAt: 1e308 }),
        entry('192.0.2.6;id'),
      ],
    }));
    const d = await start(config('h', state, '', '    open: /bin/true %IP%\n    close: /bin/true %IP%\n    close_after: 1h\n'));
    expect(d.output).toContain('door entry 3 skipped: close holds a command');
    expect(d.output).toContain('door entry 5 skipped: src is not a canonical address');
    expect(d.output).toContain('door entry 4: closesAt 1e+308 is out of range');
    await waitFor('the doors with bad times to close', () => fs.existsSync(mark('192.0.2.3')) && fs.existsSync(mark('192.0.2.5')), 5000);
    expect(fs.existsSync(mark('192.0.2.1'))).toBe(false);
    const status = JSON.parse(run('status', '--json', '-c', d.configFile).stdout);
    expect(status.map((s: { src: string }) => s.src).sort()).toEqual(['192.0.2.1', '192.0.2.2']);
  });

  for (const backend of ['iptables', 'nftables']) {
    it(`--dry-run with ${backend}: its own temporary state, no firewall touched, exits at once on SIGTERM`, async () => {
      const real = path.join(dir, `state-dry-${backend}`);
      const file = config(`dry-${backend}`, real, `firewall: ${backend}\n`, '    allow: [tcp/22]\n    close_after: 1s\n');
      const d = await start(file, ['--dry-run']);
      await knock();
      await waitFor('the pretend door', () => d.output.includes('dry run: would allow 127.0.0.71 to tcp/22'), 5000);
      await waitFor('its pretend close', () => d.output.includes('door closed'), 5000);
      const dryDir = /tumblerd-dry-run-\w+/.exec(fs.readdirSync(os.tmpdir()).join(' '));
      expect(dryDir).not.toBeNull();
      await knock('127.0.0.72');
      await waitFor('the second pretend door', () => d.output.includes('would allow 127.0.0.72'), 5000);
      const t0 = Date.now();
      expect(await d.stop('SIGTERM')).toBe(0);
      expect(Date.now() - t0).toBeLessThan(2000);
      expect(fs.existsSync(real)).toBe(false);
      expect(d.output).not.toContain('would run');
    });
  }

  it('door commands get no secrets in their environment', async () => {
    const envFile = path.join(dir, 'env.txt');
    const dump = path.join(dir, 'dump-env.sh');
    fs.writeFileSync(dump, `#!/bin/sh\nenv > ${envFile}\n`, { mode: 0o755 });
    const file = path.join(dir, 'env.yaml');
    fs.writeFileSync(file, `state_dir: ${path.join(dir, 'state-env')}\ntumbler:\n  listen: ["127.0.0.1:${port}"]\ndoors:\n  ssh:\n    secret_env: DOORS_TEST_SECRET\n    open: ${dump}\n`, { mode: 0o600 });
    await start(file, [], { ...process.env, DOORS_TEST_SECRET: SECRET, SOME_TOKEN: 'hunter2-token' });
    await knock();
    await waitFor('the command to run', () => fs.existsSync(envFile) && fs.readFileSync(envFile, 'utf8').includes('PATH='), 5000);
    const env = fs.readFileSync(envFile, 'utf8');
    expect(env).not.toContain(SECRET);
    expect(env).not.toContain('hunter2-token');
    expect(env.split('\n').filter((l) => /^[A-Z_]+=/.test(l)).map((l) => l.split('=')[0]).sort()).toEqual(expect.arrayContaining(['LC_ALL', 'PATH']));
  });

  it('--check: the sample secret is an error; a short secret and a secret file others can read are warned about', () => {
    const sample = path.join(dir, 'sample.yaml');
    fs.writeFileSync(sample, `doors:\n  ssh:\n    secret: open-pAsSwOrD\n    open: /bin/true\n`);
    let r = run('--check', '-c', sample);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/sample\.yaml:3:13: doors\.ssh\.secret: this is the sample secret from the documentation/);
    const secretFile = path.join(dir, 'ssh.secret');
    fs.writeFileSync(secretFile, 'short\n', { mode: 0o644 });
    const weak = path.join(dir, 'weak.yaml');
    fs.writeFileSync(weak, `doors:\n  ssh:\n    secret_file: ${secretFile}\n    open: /bin/true\n`, { mode: 0o600 });
    r = run('--check', '-c', weak);
    expect(r.stdout).toContain('WARN secret-length: door ssh has a secret of 5 characters');
    expect(r.stdout).toMatch(/WARN secret-file-mode: .*ssh\.secret, the secret of door ssh, has mode 644/);
    const noClose = path.join(dir, 'noclose.yaml');
    fs.writeFileSync(noClose, `doors:\n  ssh:\n    secret: ${SECRET}\n    open: /bin/true\n    close_after: 30s\n`);
    r = run('--check', '-c', noClose);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('doors.ssh.close_after: close_after with open but no close or allow: nothing would close the door');
  });
});

if (!isRoot || !hasUseradd) {
  // eslint-disable-next-line no-console
  console.warn('SKIPPED "what tumblerd trusts": needs root, useradd and runuser');
}
void sleep;
