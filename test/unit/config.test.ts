import path from 'node:path';
import { ConfigError, loadConfigFile, parseConfig } from '../../src/config/load';
import { expandCommand, splitCommand } from '../../src/doors/commandTemplate';

const SHIPPED = path.join(__dirname, '..', '..', 'config', 'tumblerd.yaml');

function problems(text: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConfig(text, '/etc/tumblerd.yaml', { env, readFile: () => 'from-file\n' });
  } catch (e) {
    if (e instanceof ConfigError) return e.message.split('\n');
    throw e;
  }
  throw new Error('config was accepted');
}

const BASE = `sources:
  - file: /var/log/kern.log
    prefix: "FIREWALL: "
doors:
  ssh:
    sequence: [42, 196, 69]
    open: /bin/true %IP%
`;

describe('config', () => {
  it('listens for Tumbler knocks on both families by default (IPv6 where the kernel has it), and nowhere without a secret', () => {
    const withSecret = parseConfig(`doors:\n  d:\n    secret: s\n    open: /bin/true\n`, 'd.yaml');
    expect(withSecret.tumbler.listen).toEqual([{ host: '0.0.0.0', port: 8675 }, { host: '::', port: 8675, ifAvailable: true }]);
    const written = parseConfig(`tumbler:\n  listen: ["[::]:8675"]\ndoors:\n  d:\n    secret: s\n    open: /bin/true\n`, 'd.yaml');
    expect(written.tumbler.listen).toEqual([{ host: '::', port: 8675 }]);
    expect(parseConfig(BASE, 'd.yaml').tumbler.listen).toEqual([]);
    const v4 = parseConfig(`tumbler:\n  listen: ["0.0.0.0:8675"]\ndoors:\n  d:\n    secret: s\n    open: /bin/true\n`, 'd.yaml');
    expect(v4.tumbler.listen).toEqual([{ host: '0.0.0.0', port: 8675 }]);
  });

  it('accepts the shipped config', () => {
    const c = loadConfigFile(SHIPPED);
    expect(c.doors[0]).toMatchObject({ name: 'open-ssh', sequenceTimeoutMs: 10_000, closeAfterMs: 30_000, secret: null });
    expect(c.doors[0].sequence).toHaveLength(3);
    expect(c.tumbler.listen).toEqual([{ host: '0.0.0.0', port: 8675 }, { host: '::', port: 8675 }]);
    expect(c.sources).toEqual([{ kind: 'kmsg', path: '/dev/kmsg', prefixes: ['FIREWALL: '] }]);
  });

  it('fills defaults and reads durations, lists and secrets from files and the environment', () => {
    const c = parseConfig(
      `${BASE}    close: ["/bin/echo closed %NAME%", "/bin/true"]
    close_after: 5m
    sequence_timeout: 2.5
  vpn:
    sequence: "7000,8000:udp"
    secret_env: VPN_SECRET
    open: /bin/true
  web:
    secret_file: web.secret
    open: /bin/true
tumbler:
  listen: ["[::]:9000", "127.0.0.1:8675"]
`,
      '/etc/tumblerd/tumblerd.yaml',
      { env: { VPN_SECRET: 's3cret' }, readFile: (f) => (f === '/etc/tumblerd/web.secret' ? 'w3b\nignored' : '') },
    );
    expect(c.doors.map((d) => [d.name, d.secret, d.sequenceTimeoutMs, d.closeAfterMs])).toEqual([
      ['ssh', null, 2500, 300_000],
      ['vpn', 's3cret', 10_000, null],
      ['web', 'w3b', 10_000, null],
    ]);
    expect(c.doors[0].close).toEqual([['/bin/echo', 'closed', '%NAME%'], ['/bin/true']]);
    expect(c.tumbler.listen).toEqual([{ host: '::', port: 9000 }, { host: '127.0.0.1', port: 8675 }]);
    expect(c.stateDir).toBe('/var/lib/tumblerd');
  });

  it('names file, line and key for every error at once', () => {
    const errs = problems(`sources:
  - file: /var/log/kern.log
    prefix: "FIREWALL: "
doors:
  ssh:
    sequence: [42, 70000, "69/icmp"]
    sequence_timeout: soon
    open: /bin/true
    colse: /bin/false
  "bad name":
    secret: x
    open: /bin/true
`);
    expect(errs).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^\/etc\/tumblerd.yaml:6:\d+: doors\.ssh\.sequence\[1\]: /),
        expect.stringMatching(/^\/etc\/tumblerd.yaml:6:\d+: doors\.ssh\.sequence\[2\]: /),
        expect.stringMatching(/^\/etc\/tumblerd.yaml:7:\d+: doors\.ssh\.sequence_timeout: /),
        '/etc/tumblerd.yaml:9:5: doors.ssh.colse: unknown key',
        expect.stringMatching(/^\/etc\/tumblerd.yaml:10:3: doors\.bad name: a door name is/),
      ]),
    );
  });

  it('reports meaning errors with their lines', () => {
    expect(problems(`${BASE}    close: /bin/true\n`)).toEqual(['/etc/tumblerd.yaml:8:12: doors.ssh.close: close needs close_after to say when to run it']);
    expect(problems(`${BASE}    sequence_timeout: 1x\n`)[0]).toMatch(/^\/etc\/tumblerd.yaml:8:\d+: doors.ssh.sequence_timeout: /);
    expect(problems(`${BASE}  other:\n    secret: a\n    open: /bin/true\n  third:\n    secret: a\n    open: /bin/true\n`)).toEqual([
      '/etc/tumblerd.yaml:12:13: doors.third.secret: door "other" has the same secret: a knock could not tell them apart',
    ]);
    expect(problems(`${BASE}    secret_env: NOPE\n`)).toEqual(['/etc/tumblerd.yaml:8:17: doors.ssh.secret_env: environment variable NOPE is not set']);
    expect(problems(`doors:\n  ssh:\n    sequence: [1]\n    open: /bin/true\n`)[0]).toMatch(/:3:15: doors.ssh.sequence: doors have knock sequences but no log source/);
    expect(problems(`${BASE}  idle:\n    open: /bin/true\n`)[0]).toMatch(/:8:3: doors.idle: the door has no sequence, no secret and no keys/);
    expect(problems(`${BASE}    open6: iptables -I INPUT -s %IP% | logger\n`)[0]).toMatch(/:8:12: doors.ssh.open6: "\|" would mean something to a shell/);
  });

  it('reports YAML syntax errors with their line', () => {
    expect(problems('doors:\n  ssh: [\n')[0]).toMatch(/^\/etc\/tumblerd.yaml:3:1: /);
    expect(problems('doors:\n  a: 1\n  a: 2\n')[0]).toMatch(/^\/etc\/tumblerd.yaml:3:3: .*[Uu]nique/);
  });

  it('refuses unresolved aliases and alias bombs with a ConfigError', () => {
    expect(problems('doors: *nowhere\n')[0]).toMatch(/^\/etc\/tumblerd.yaml:1:1: .*alias/i);
    const bomb = 'a: &a [x, x, x, x, x, x, x, x, x, x]\n' + Array.from({ length: 8 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10).fill('*' + String.fromCharCode(97 + i)).join(', ')}]`).join('\n') + '\n';
    expect(problems(bomb)[0]).toMatch(/^\/etc\/tumblerd.yaml:1:1: .*alias/i);
  });

  it('names the file it could not read', () => {
    expect(() => loadConfigFile('/nonexistent/tumblerd.yaml')).toThrow(/^\/nonexistent\/tumblerd.yaml:0:0: ENOENT/);
  });
});

describe('door commands', () => {
  it('splits like a shell, runs without one', () => {
    expect(splitCommand(`iptables -I INPUT -s %IP% -m comment --comment "door %NAME%" -j ACCEPT`)).toEqual([
      'iptables', '-I', 'INPUT', '-s', '%IP%', '-m', 'comment', '--comment', 'door %NAME%', '-j', 'ACCEPT',
    ]);
    expect(splitCommand(`logger 'a;b' "c\\"d" e\\ f`)).toEqual(['logger', 'a;b', 'c"d', 'e f']);
    expect(() => splitCommand('echo "open')).toThrow(/unterminated/);
    expect(() => splitCommand('%IP% -x')).toThrow(/program/);
    expect(() => splitCommand('echo $(id)')).toThrow(/shell/);
  });
  it('substitutes macros inside words and only for canonical addresses', () => {
    const t = splitCommand('ipset add knock %IP%,tcp:22 comment door-%NAME%');
    expect(expandCommand(t, { ip: 'fd00:203::2', name: 'ssh' })).toEqual(['ipset', 'add', 'knock', 'fd00:203::2,tcp:22', 'comment', 'door-ssh']);
    for (const ip of ['1.2.3.4;id', '1.2.3.4 -j DROP', 'fd00:0203::2', '::ffff:1.2.3.4', '']) {
      expect(() => expandCommand(t, { ip, name: 'ssh' })).toThrow(/not an address/);
    }
  });
});
