/**
 * A kernel booted with ipv6.disable=1 has no AF_INET6 at all: socket() fails with EAFNOSUPPORT.
 * test/support/noipv6.c makes a process see exactly that (a seccomp filter on socket()), and
 * tumblerd runs under it in a network namespace of its own (so that the default port is free):
 * with the default listeners it starts on IPv4 alone, says so, and a knock opens its door; an
 * IPv6 address written in the config stops it with a message that says why.
 */
import { ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TUMBLERD, labUnavailable, waitFor } from '../support/lab';
import { formatDatagram, knockDigest } from '../../src/tumbler/protocol';

const SECRET = 'no-ipv6-secret-0123456789abcdef';
const why = process.arch !== 'x64' ? 'the seccomp filter is written for x86-64' : labUnavailable(['gcc', 'unshare', 'nsenter', 'ip']);

(why ? describe.skip : describe)(`tumblerd on a kernel without IPv6${why ? ` (skipped: ${why})` : ''}`, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tumbler-noipv6-'));
  const shim = path.join(dir, 'noipv6');
  const children: ChildProcess[] = [];

  /* tumblerd under the filter, in a new network namespace with loopback up */
  function run(config: string): { child: ChildProcess; output: () => string } {
    fs.writeFileSync(path.join(dir, 'tumblerd.yaml'), config, { mode: 0o600 });
    const child = spawn('unshare', ['-n', 'sh', '-c', 'ip link set lo up && exec "$@"', 'sh', shim, process.execPath, TUMBLERD, '--config', path.join(dir, 'tumblerd.yaml')], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let out = '';
    child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    return { child, output: () => out };
  }

  const config = (extra = '') =>
    `state_dir: ${dir}/state${children.length}\nsources:\n  - kmsg: /dev/kmsg\n    prefix: "NOIPV6: "\ndoors:\n  ssh:\n    secret: ${SECRET}\n    open: /usr/bin/touch ${dir}/opened-%IP%\n${extra}`;

  beforeAll(() => {
    execFileSync('gcc', ['-O2', '-o', shim, path.join(__dirname, '..', 'support', 'noipv6.c')]);
  });
  afterEach(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });
  afterAll(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the filter makes IPv6 sockets fail as such a kernel does, and leaves IPv4 alone', () => {
    const probe = (family: string) =>
      spawnSync(shim, [process.execPath, '-e', `require('dgram').createSocket('${family}').on('error', (e) => { console.log(e.code); process.exit(1); }).bind(0, () => { console.log('bound'); process.exit(0); })`], { encoding: 'utf8' }).stdout.trim();
    expect(probe('udp6')).toBe('EAFNOSUPPORT');
    expect(probe('udp4')).toBe('bound');
  });

  it('with the default listeners: starts on IPv4 alone, says why, and a knock opens the door', async () => {
    const d = run(config());
    await waitFor('tumblerd to start', () => {
      if (d.child.exitCode !== null) throw new Error(`tumblerd exited:\n${d.output()}`);
      return d.output().includes('tumblerd started');
    });
    expect(d.output()).toContain('not listening on [::]:8675: this kernel has no IPv6 (EAFNOSUPPORT');
    expect(d.output()).toMatch(/tumblerd started .*tumbler=0\.0\.0\.0:8675 doors=ssh/);
    const knock = formatDatagram(knockDigest(Date.now(), '127.0.0.1', SECRET));
    execFileSync('nsenter', ['-t', String(d.child.pid), '-n', process.execPath, '-e',
      `const s = require('dgram').createSocket('udp4'); s.send(${JSON.stringify(knock)}, 8675, '127.0.0.1', () => s.close())`]);
    await waitFor('the door to open', () => fs.existsSync(path.join(dir, 'opened-127.0.0.1')), 5000);
    d.child.kill('SIGTERM');
    await new Promise((r) => d.child.once('exit', r));
    expect(d.child.exitCode).toBe(0);
  });

  it('with [::] written in the config: refuses to start, saying why', async () => {
    const d = run(config('tumbler:\n  listen: ["0.0.0.0:8675", "[::]:8675"]\n'));
    const code = await new Promise((r) => d.child.once('exit', r));
    expect(code).not.toBe(0);
    expect(d.output()).toContain('cannot listen on [::]:8675: this kernel has no IPv6 (EAFNOSUPPORT: booted with ipv6.disable=1?): remove it from tumbler.listen');
    expect(d.output()).not.toContain('tumblerd started');
  });
});
