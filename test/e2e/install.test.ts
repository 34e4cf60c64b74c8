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

  it('npm pack in a clean clone builds dist (prepack); the package installs globally with executable bins and man pages', () => {
    /* the clone the first test built; without dist, as a fresh checkout has it */
    const clone = path.join(dir, 'clone');
    if (!fs.existsSync(path.join(clone, 'node_modules'))) {
      execFileSync('git', ['clone', '-q', ROOT, clone]);
      execFileSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: clone, stdio: 'ignore' });
    }
    fs.rmSync(path.join(clone, 'dist'), { recursive: true, force: true });
    const tgz = execFileSync('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: clone, encoding: 'utf8' }).trim().split('\n').pop()!;
    expect(tgz).toMatch(/^tumblerd-\d+\.\d+\.\d+\.tgz$/);
    const listing = execFileSync('tar', ['-tvzf', path.join(dir, tgz)], { encoding: 'utf8' });
    expect(listing).toMatch(/^-rwxr-xr-x .* package\/dist\/cli\/tumblerd\.js$/m);
    expect(listing).toMatch(/^-rwxr-xr-x .* package\/dist\/cli\/tumbler\.js$/m);
    const prefix = path.join(dir, 'prefix');
    execFileSync('npm', ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', path.join(dir, tgz)], { stdio: 'ignore' });
    const version = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version;
    /* run as a sysadmin would: the bin itself, through its shebang */
    expect(execFileSync(path.join(prefix, 'bin', 'tumblerd'), ['--version'], { encoding: 'utf8' }).trim()).toBe(version);
    expect(execFileSync(path.join(prefix, 'bin', 'tumbler'), ['--version'], { encoding: 'utf8' }).trim()).toBe(version);
    expect(execFileSync(path.join(prefix, 'bin', 'tumbler'), ['--help'], { encoding: 'utf8' })).toContain('tumbler://');
    for (const page of ['man8/tumblerd.8', 'man1/tumbler.1', 'man5/tumblerd.yaml.5']) {
      expect(fs.existsSync(path.join(prefix, 'share', 'man', page))).toBe(true);
    }
    const shipped = path.join(prefix, 'lib', 'node_modules', 'tumblerd', 'config', 'tumblerd.yaml');
    const check = spawnSync(path.join(prefix, 'bin', 'tumblerd'), ['--check', '--config', shipped], { encoding: 'utf8' });
    /* valid everywhere; whether this host's firewall logs for it is what the preflight after it says */
    expect(check.stdout).toContain('OK: 1 door(s)');
    expect([0, 1]).toContain(check.status);
  }, 300_000);
});
