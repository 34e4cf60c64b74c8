/**
 * As a new user would: the README's first command in a clean clone of this repository runs the
 * daemon on the shipped config, and the package `npm pack` makes installs and runs.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, waitFor } from '../support/lab';

const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
const commands = /```sh\n([\s\S]*?)```/.exec(readme)![1].split('\n').filter(Boolean).map((l) => l.replace(/\s+#.*$/, ''));
const why =
  process.getuid?.() !== 0 ? 'not root: the shipped config keeps its state in /var/lib/tumblerd'
  : spawnSync('git', ['-C', ROOT, 'rev-parse', 'HEAD']).status !== 0 ? 'not a git checkout'
  : null;

(why ? describe.skip : describe)(`installing as a new user${why ? ` (skipped: ${why})` : ''}`, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tumbler-install-'));
  const stateDirExisted = fs.existsSync('/var/lib/tumblerd');
  afterAll(() => {
    fs.rmSync(dir, { recursive: true, force: true });
    if (!stateDirExisted) fs.rmSync('/var/lib/tumblerd', { recursive: true, force: true });
  });

  it("the README's run command works in a clean clone", async () => {
    expect(commands[0]).toBe('npm ci && npm run build && node dist/cli/tumblerd.js --config config/tumblerd.yaml');
    const clone = path.join(dir, 'clone');
    execFileSync('git', ['clone', '-q', ROOT, clone]);
    const child = spawn('sh', ['-c', `exec sh -c '${commands[0]}'`], { cwd: clone, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    try {
      await waitFor('the daemon to start from the clone', () => out.includes('tumblerd started'), 240_000);
      expect(out).toContain('doors=open-ssh');
    } finally {
      process.kill(-child.pid!, 'SIGTERM');
    }
    /* 'close', not 'exit': the daemon, not the shell, holds the pipes until it has stopped */
    await new Promise((r) => child.once('close', r));
    expect(out).toContain('tumblerd stopped');
  }, 300_000);

  it('npm pack makes a package that installs and runs', () => {
    const tgz = execFileSync('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: ROOT, encoding: 'utf8' }).trim().split('\n').pop()!;
    const app = path.join(dir, 'app');
    fs.mkdirSync(app);
    execFileSync('npm', ['init', '-y'], { cwd: app, stdio: 'ignore' });
    execFileSync('npm', ['install', '--no-audit', '--no-fund', path.join(dir, tgz)], { cwd: app, stdio: 'ignore' });
    const shipped = path.join(app, 'node_modules', 'tumblerd', 'config', 'tumblerd.yaml');
    const check = execFileSync('npx', ['tumblerd', '--check', '--config', shipped], { cwd: app, encoding: 'utf8' });
    expect(check).toContain('OK: 1 door(s)');
    expect(execFileSync('npx', ['tumbler', '--help'], { cwd: app, encoding: 'utf8' })).toContain('tumbler://');
  }, 300_000);
});
