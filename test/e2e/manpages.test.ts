/**
 * The man pages and the bash completion keep up with the CLIs: every command and long option that
 * `--help` lists is in both, the pages render without a groff warning, and `--version` prints the
 * package's version.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, TUMBLER, TUMBLERD } from '../support/lab';

const version = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version as string;
const completion = fs.readFileSync(path.join(ROOT, 'completion', 'tumblerd.bash'), 'utf8');
/* roff writes a hyphen as \- */
const page = (name: string) => fs.readFileSync(path.join(ROOT, 'man', name), 'utf8').replace(/\\-/g, '-');

function help(bin: string, args: string[]): string {
  const r = spawnSync(process.execPath, [bin, ...args, '--help'], { encoding: 'utf8' });
  expect(r.status).toBe(0);
  return r.stdout;
}

/** Every command and long option the CLI's help lists, subcommands' own included. */
function surface(bin: string): { commands: string[]; options: string[] } {
  const top = help(bin, []);
  const commands = [...(top.split('Commands:')[1] ?? '').matchAll(/^ {2}([a-z][a-z-]*)/gm)].map((m) => m[1]).filter((c) => c !== 'help');
  const options = new Set<string>();
  for (const text of [top, ...commands.map((c) => help(bin, [c]))]) {
    for (const m of text.matchAll(/(?:^|[\s,])(--[a-z][a-z-]*)/gm)) options.add(m[1]);
  }
  return { commands, options: [...options] };
}

describe.each([
  ['tumblerd', TUMBLERD, 'tumblerd.8'],
  ['tumbler', TUMBLER, 'tumbler.1'],
])('%s', (name, bin, man) => {
  const { commands, options } = surface(bin);

  it('--version prints the package version', () => {
    const r = spawnSync(process.execPath, [bin, '--version'], { encoding: 'utf8' });
    expect(r.stdout.trim()).toBe(version);
  });

  it(`${man} names every command and option --help lists`, () => {
    const text = page(man);
    expect(commands.length).toBeGreaterThan(0);
    expect(commands.filter((c) => !new RegExp(`^\\.B[IR]? (?:${name} )?${c}\\b`, 'm').test(text))).toEqual([]);
    expect(options.filter((o) => !text.includes(o))).toEqual([]);
  });

  it('the bash completion offers every command and option --help lists', () => {
    const fn = new RegExp(`^_${name}\\(\\) \\{[\\s\\S]*?^\\}`, 'm').exec(completion)![0];
    expect(commands.filter((c) => !new RegExp(`\\b${c}\\b`).test(fn))).toEqual([]);
    expect(options.filter((o) => !fn.includes(o))).toEqual([]);
  });
});

describe('bash completion', () => {
  const complete = (fn: string, words: string[]) =>
    spawnSync('bash', ['-c', `source "$0"; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); ${fn}; echo "\${COMPREPLY[*]}"`,
      path.join(ROOT, 'completion', 'tumblerd.bash'), ...words], { encoding: 'utf8' }).stdout.trim();

  it('completes commands after options and their values, and the values options take', () => {
    expect(complete('_tumblerd', ['tumblerd', '-c', '/etc/x.yaml', 'st'])).toBe('status');
    expect(complete('_tumblerd', ['tumblerd', '--log-level', 'd'])).toBe('debug');
    expect(complete('_tumbler', ['tumbler', '-f', '4', 'knock', '--d'])).toBe('--delay');
    expect(complete('_tumbler', ['tumbler', '--family', ''])).toBe('4 6');
  });
});

describe('man pages', () => {
  const groff = spawnSync('groff', ['--version']).status === 0;
  (groff ? it : it.skip)(`render without a warning${groff ? '' : ' (skipped: no groff)'}`, () => {
    for (const file of fs.readdirSync(path.join(ROOT, 'man'))) {
      const r = spawnSync('groff', ['-man', '-ww', '-z', path.join(ROOT, 'man', file)], { encoding: 'utf8' });
      expect({ file, warnings: r.stderr }).toEqual({ file, warnings: '' });
      expect(r.status).toBe(0);
    }
  });

  it('the package ships them (package.json "man")', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    expect(pkg.man.sort()).toEqual(fs.readdirSync(path.join(ROOT, 'man')).map((f) => `man/${f}`).sort());
  });
});
