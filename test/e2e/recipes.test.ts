/**
 * The README's firewall recipes, applied exactly as written (read from the README, so the two
 * cannot drift) to a server namespace: IPv6 still works (ICMPv6 neighbour discovery passes), the
 * knocks of every kind are logged and open their doors, Tumbler knocks arrive on both families,
 * and `tumblerd doctor` finds nothing wrong. A control run without the ICMPv6 line shows that
 * the ping6 check can fail, and that doctor names the cause.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { splitCommand } from '../../src/doors/commandTemplate';
import { Daemon, Lab, ROOT, TUMBLER, TUMBLERD, describeLab, waitFor } from '../support/lab';

const README = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
const SECRET = 'recipe-test-secret';

/** The code block right after `<!-- recipe:NAME -->`, with the lab's LOG prefix for the README's. */
function recipe(name: string, prefix: string): string {
  const m = new RegExp(`<!-- recipe:${name} -->\\n\`\`\`\\w*\\n([\\s\\S]*?)\`\`\``).exec(README);
  if (!m) throw new Error(`the README has no recipe "${name}"`);
  return m[1].split('FIREWALL: ').join(prefix);
}

/** A shell recipe's commands, one per line, comments dropped, split as a shell would. */
const commandsOf = (block: string) =>
  block
    .split('\n')
    .map((l) => l.replace(/\s+#.*$/, '').trim())
    .filter(Boolean)
    .map((l) => [...splitCommand(l)]);

function config(lab: Lab): string {
  const file = path.join(lab.dir, 'tumblerd.yaml');
  fs.writeFileSync(
    file,
    `state_dir: ${lab.dir}/state
sources:
  - kmsg: /dev/kmsg
    prefix: "${lab.prefix}"
tumbler:
  listen: ["0.0.0.0:8675", "[::]:8675"]
doors:
  ssh:
    sequence: [42, 196, 69]
    open: /bin/true %IP%
  fin:
    sequence: [1001, 1002]
    tcpflags: fin,psh,urg
    open: /bin/true %IP%
  secret:
    secret: ${SECRET}
    open: /bin/true %IP%
`,
    { mode: 0o600 },
  );
  return file;
}

const ping = (lab: Lab, target: string) =>
  spawnSync('ip', ['netns', 'exec', lab.cli, 'ping', '-c', '1', '-W', '2', target], { encoding: 'utf8' }).status === 0;

function doctor(lab: Lab, file: string): { status: number | null; out: string } {
  const r = spawnSync('ip', ['netns', 'exec', lab.srv, process.execPath, TUMBLERD, 'doctor', '-c', file], { encoding: 'utf8' });
  return { status: r.status, out: r.stdout + r.stderr };
}

function applyRecipe(lab: Lab, name: 'iptables+ip6tables' | 'nftables' | 'ip6tables without ICMPv6'): void {
  if (name === 'nftables') {
    const rules = path.join(lab.dir, 'recipe.nft');
    fs.writeFileSync(rules, recipe('nftables', lab.prefix));
    lab.inSrv('nft', '-f', rules);
    return;
  }
  const v6 = recipe('ip6tables', lab.prefix);
  const blocks = name === 'ip6tables without ICMPv6' ? [v6.split('\n').filter((l) => !l.includes('ipv6-icmp')).join('\n')] : [recipe('iptables', lab.prefix), v6];
  for (const argv of blocks.flatMap(commandsOf)) lab.inSrv(...argv);
}

describeLab(
  "the README's firewall recipes",
  () => {
    for (const name of ['iptables+ip6tables', 'nftables'] as const) {
      describe(name, () => {
        const lab = new Lab();
        let d: Daemon | null = null;
        let file: string;
        beforeAll(() => {
          lab.upHosts();
          applyRecipe(lab, name);
          file = config(lab);
        });
        afterAll(async () => {
          await d?.stop();
          lab.destroy();
        });

        it('keeps IPv6 and IPv4 working (neighbour discovery passes) while dropping the service', () => {
          expect(ping(lab, lab.serverIp6)).toBe(true);
          expect(ping(lab, lab.serverIp)).toBe(true);
          expect(lab.connects(lab.serverIp)).toBe(false);
          expect(lab.connects(lab.serverIp6)).toBe(false);
        });

        it('passes tumblerd doctor', () => {
          const r = doctor(lab, file);
          expect(r.out).not.toMatch(/^FAIL/m);
          expect(r.out).toMatch(/^ok {3}log-rule: .* \(IPv4\).* \(IPv6\)/m);
          expect(r.out).toMatch(/^ok {3}icmpv6: /m);
          expect(r.out).toMatch(/^ok {3}tcpflags-log: /m);
          expect(r.status).toBe(0);
        });

        it('logs SYN knocks on both families, non-SYN knocks, and lets Tumbler knocks in on both', async () => {
          d = await new Daemon(lab, file).started();
          const opened = (door: string, src: string) => d!.output.includes(`door opened door=${door} src=${src} `);
          lab.inCli(process.execPath, TUMBLER, 'knock', lab.serverIp, '42', '196', '69');
          await waitFor('the IPv4 knock to open ssh', () => opened('ssh', lab.clientIp), 5000);
          lab.inCli(process.execPath, TUMBLER, 'knock', lab.serverIp6, '42', '196', '69');
          await waitFor('the IPv6 knock to open ssh', () => opened('ssh', lab.clientIp6), 5000);
          /* FIN PSH URG as a first packet: conntrack calls it INVALID */
          /* hping3 exits 1 when nothing answers, which is the point */
          for (const port of ['1001', '1002']) spawnSync('ip', ['netns', 'exec', lab.cli, 'hping3', '-q', '-c', '1', '-F', '-P', '-U', '-p', port, lab.serverIp]);
          await waitFor('the FIN/PSH/URG knock to open fin', () => opened('fin', lab.clientIp), 5000);
          lab.inCli(process.execPath, TUMBLER, 'open', `tumbler://${SECRET}@${lab.serverIp}/`);
          lab.inCli(process.execPath, TUMBLER, 'open', `tumbler://${SECRET}@[${lab.serverIp6}]/`);
          await waitFor('Tumbler knocks on both families', () => opened('secret', lab.clientIp) && opened('secret', lab.clientIp6), 5000);
        });
      });
    }

    describe('control: the old "same with ip6tables" advice, without ICMPv6', () => {
      const lab = new Lab();
      afterAll(() => lab.destroy());

      it('cuts IPv6 off, and doctor says why', () => {
        lab.upHosts();
        applyRecipe(lab, 'ip6tables without ICMPv6');
        expect(ping(lab, lab.serverIp6)).toBe(false);
        const r = doctor(lab, config(lab));
        expect(r.status).toBe(1);
        expect(r.out).toContain('FAIL icmpv6: ip6tables drops ICMPv6, neighbour discovery with it: IPv6 stops working on this host');
      });
    });
  },
  ['ip', 'iptables', 'ip6tables', 'nft', 'hping3', 'ping'],
);
