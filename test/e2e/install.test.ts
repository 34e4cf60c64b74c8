/**
 * As a new user would: the README's first command in a clean clone of this repository installs,
 * builds and runs the demo, which passes and leaves nothing behind; and the package `npm pack`
 * makes installs and runs.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from '../support/lab';

const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
const commands = /```sh\n([\s\S]*?)```/.exec(readme)![1].split('\n').filter(Boolean).map((l) => l.replace(/\s+#.*$/, ''));
const why =
  process.getuid?.() !== 0 ? 'not root: the demo builds network namespaces'
  : spawnSync('git', ['-C', ROOT, 'rev-parse', 'HEAD']).status !== 0 ? 'not a git checkout'
  : null;

(why ? describe.skip : describe)(`installing as a new user${why ? ` (skipped: ${why})` : ''}`, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tumbler-install-'));
  const stateDirExisted = fs.existsSync('/var/lib/tumblerd');
  afterAll(() => {
    fs.rmSync(dir, { recursive: true, force: true });
    if (!stateDirExisted) fs.rmSync('/var/lib/tumblerd', { recursive: true, force: true });
  });

  it("the README's first command works in a clean clone: the demo passes", async () => {
    expect(commands[0]).toBe('npm ci && npm run build && node dist/cli/tumblerd.js demo');
    const clone = path.join(dir, 'clone');
    execFileSync('git', ['clone', '-q', ROOT, clone]);
    const child = spawn('sh', ['-c', commands[0]], { cwd: clone, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const code = await new Promise<number | null>((r) => child.once('close', r));
    expect({ code, tail: out.slice(-3000) }).toMatchObject({ code: 0 });
    expect(out).toContain('demo passed');
    expect(out).toContain('cleaned up: the demo namespaces are gone');
    expect(spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout).not.toMatch(/^tbdemo\d+[sc]\b/m);
  }, 400_000);

  it('npm pack makes a package that installs and runs', () => {
    const tgz = execFileSync('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: ROOT, encoding: 'utf8' }).trim().split('\n').pop()!;
    const app = path.join(dir, 'app');
    fs.mkdirSync(app);
    execFileSync('npm', ['init', '-y'], { cwd: app, stdio: 'ignore' });
    execFileSync('npm', ['install', '--no-audit', '--no-fund', path.join(dir, tgz)], { cwd: app, stdio: 'ignore' });
    const shipped = path.join(app, 'node_modules', 'tumbler', 'config', 'tumblerd.yaml');
    /* valid everywhere; whether this host's firewall logs for it is what the preflight after it says */
    const check = spawnSync('npx', ['tumblerd', '--check', '--config', shipped], { cwd: app, encoding: 'utf8' });
    expect(check.stdout).toContain('OK: 1 door(s)');
    expect([0, 1]).toContain(check.status);
    expect(execFileSync('npx', ['tumbler', '--help'], { cwd: app, encoding: 'utf8' })).toContain('tumbler://');
  }, 300_000);
});
