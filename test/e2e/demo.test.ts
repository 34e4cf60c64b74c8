/**
 * `tumblerd demo` as a new user runs it: it passes, shows both knocks opening and closing the
 * door, and leaves nothing behind (namespaces, sysctl, files, the host's firewall), also when it
 * is interrupted with Ctrl-C in the middle.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { TUMBLERD, describeLab, waitFor } from '../support/lab';

const demoNamespaces = () => spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l.startsWith('tbdemo'));
const demoDirs = () => fs.readdirSync(os.tmpdir()).filter((f) => f.startsWith('tbdemo-'));
const hostRuleset = () => spawnSync('nft', ['list', 'ruleset'], { encoding: 'utf8' }).stdout;
const nfLogAllNetns = () => fs.readFileSync('/proc/sys/net/netfilter/nf_log_all_netns', 'utf8').trim();

function runDemo(): { child: ReturnType<typeof spawn>; output: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [TUMBLERD, 'demo'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  return { child, output: () => out, exited: new Promise((r) => child.once('close', (code) => r(code))) };
}

describeLab(
  'tumblerd demo',
  () => {
    let before: { ns: string[]; dirs: string[]; nfLog: string };
    beforeAll(() => {
      before = { ns: demoNamespaces(), dirs: demoDirs(), nfLog: nfLogAllNetns() };
    });
    afterEach(() => {
      /* a demo this test started and that failed to clean up must not outlive the test */
      for (const ns of demoNamespaces()) if (!before.ns.includes(ns)) spawnSync('ip', ['netns', 'del', ns]);
    });

    it('knocks both ways, shows the door opening and closing, and leaves nothing behind', async () => {
      const demo = runDemo();
      const code = await demo.exited;
      const out = demo.output();
      expect({ code, out }).toMatchObject({ code: 0 });
      expect(out).toMatch(/✓ \S+ port 2222 is dark before any knock/);
      expect(out).toMatch(/knock sequence completed door=demo/);
      expect(out.match(/✓ connected to \S+ port 2222: "hello from the service behind the firewall"/g)).toHaveLength(3);
      expect(out.match(/is dark again: the door closed/g)).toHaveLength(3);
      expect(out).toMatch(/Tumbler knock accepted door=demo src=fd00:/);
      expect(out).toContain('demo passed');
      expect(demoNamespaces()).toEqual(before.ns);
      expect(demoDirs()).toEqual(before.dirs);
      expect(nfLogAllNetns()).toBe(before.nfLog);
      /* other tests may change the host's ruleset meanwhile; the demo's table must never be in it */
      expect(hostRuleset()).not.toContain('tbdemo');
    }, 120_000);

    it('removes everything when interrupted with Ctrl-C', async () => {
      const demo = runDemo();
      await waitFor('the demo to reach its first knock', () => demo.output().includes('1. A classic knock'), 60_000);
      expect(demoNamespaces().length).toBe(before.ns.length + 2);
      demo.child.kill('SIGINT');
      expect(await demo.exited).toBe(130);
      expect(demo.output()).toContain('SIGINT: removing the demo');
      expect(demoNamespaces()).toEqual(before.ns);
      expect(demoDirs()).toEqual(before.dirs);
      expect(nfLogAllNetns()).toBe(before.nfLog);
    }, 120_000);

    it('says what it needs instead of failing halfway, without root', () => {
      const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, TUMBLERD, 'demo'], { encoding: 'utf8' });
      expect(r.status).toBe(2);
      expect(r.stdout).toContain('run it as root');
    });
  },
  ['ip', 'nft', 'setpriv'],
);
