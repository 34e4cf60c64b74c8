/**
 * The preflight checks on recorded firewalls (fixtures/preflight/capture.sh) and real kernel
 * lines: each way a setup can be dead is reported as what it is, with a fix.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseConfig } from '../../src/config/load';
import { HOST_CHECKS } from '../../src/preflight/checks';
import { NamedResult, runPreflight } from '../../src/preflight/preflight';
import { formatReport } from '../../src/cli/doctor';
import { CommandOutput, PreflightEnv } from '../../src/preflight/env';
import { inputPath, parseIptablesSave, parseNftJson, splitIptablesWords } from '../../src/preflight/ruleset';
import { PrefixCensus, netfilterPrefixOf } from '../../src/netfilter/prefixCensus';
import { FIXTURES, fixtureLines } from '../support/samples';

const rec = (name: string) => fs.readFileSync(path.join(FIXTURES, 'preflight', name), 'utf8');

interface FakeHost {
  ruleset: 'broken' | 'late' | 'nft';
  variant?: 'nf_tables' | 'legacy';
  legacyRules?: string;
  programs?: string[];
  unreadable?: Record<string, string>;
  kmsg?: string[];
  initialNetns?: boolean | null;
  nfLogAllNetns?: string | null;
  routableV6?: boolean;
  interfaces?: string[];
  bind?: Record<string, string>;
  nftChain?: CommandOutput;
}

const OK = (stdout: string): CommandOutput => ({ status: 0, stdout, stderr: '' });

function fakeEnv(h: FakeHost): PreflightEnv {
  const programs = new Set(h.programs ?? ['iptables', 'ip6tables', 'ipset', 'nft', 'journalctl']);
  return {
    run(argv) {
      if (!programs.has(argv[0]) && !argv[0].endsWith('-save')) return { status: null, stdout: '', stderr: '' };
      const cmd = argv.join(' ');
      if (cmd === 'iptables --version') return OK(`iptables v1.8.9 (${h.variant ?? 'nf_tables'})\n`);
      if (cmd === 'iptables-save') return OK(rec(`${h.ruleset}.iptables-save`));
      if (cmd === 'ip6tables-save') return OK(rec(`${h.ruleset}.ip6tables-save`));
      if (cmd === 'iptables-legacy-save' || cmd === 'iptables-nft-save') return OK(h.legacyRules ?? '');
      if (cmd === 'nft -j list ruleset') return OK(rec(`${h.ruleset}.nft.json`));
      if (cmd.startsWith('nft -j list chain')) return h.nftChain ?? { status: 1, stdout: '', stderr: 'Error: No such file or directory' };
      return { status: 1, stdout: '', stderr: `unexpected ${cmd}` };
    },
    which: (p) => (programs.has(p) || p.startsWith('/') ? `/usr/sbin/${p}` : null),
    readProblem: (f) => h.unreadable?.[f] ?? null,
    tail: () => h.kmsg ?? [],
    kmsgRecords: () => h.kmsg ?? fixtureLines('dev-kmsg.txt'),
    sysctl: (name) => (name.includes('nf_log_all_netns') ? (h.nfLogAllNetns ?? null) : '0'),
    hostSysctl: () => null,
    inInitialNetns: () => (h.initialNetns === undefined ? true : h.initialNetns),
    interfaces: () => h.interfaces ?? ['lo', 'eth0'],
    hasRoutableIPv6: () => h.routableV6 ?? false,
    bindProblem: async (host, port) => h.bind?.[`${host}:${port}`] ?? null,
  };
}

const CONFIG = `
state_dir: /tmp/x
sources:
  - kmsg: /dev/kmsg
    prefix: "FWCAP: "
tumbler:
  listen: ["0.0.0.0:8675", "[::]:8675"]
doors:
  ssh:
    sequence: [42, 196, 69]
    secret: s3cret
    open: iptables -I INPUT -s %IP% -p tcp --dport 22 -j ACCEPT
`;

const configWith = (extra = '', prefix = 'FIREWALL: ') => parseConfig(CONFIG.replace('FWCAP: ', prefix) + extra, 'test.yaml');

/** The one result of check `name`, or a 'skip' placeholder when it says nothing (not applicable). */
async function check(name: string, host: FakeHost, config = configWith()): Promise<NamedResult | { status: 'skip'; message?: string; fix?: string }> {
  const results = await runPreflight(config, HOST_CHECKS.filter((c) => c.name === name), fakeEnv(host));
  expect(results.length).toBeLessThanOrEqual(1);
  return results[0] ?? { status: 'skip' };
}

describe('reading the firewall', () => {
  it('splits iptables-save words with quoted prefixes', () => {
    expect(splitIptablesWords('-A INPUT -j LOG --log-prefix "FW \\"x\\": " --log-level 4')).toEqual([
      '-A', 'INPUT', '-j', 'LOG', '--log-prefix', 'FW "x": ', '--log-level', '4',
    ]);
  });

  it('follows a jump into a user chain and stops at the first unguarded drop', () => {
    const p = inputPath(parseIptablesSave(rec('late.iptables-save'), 4)!);
    expect(p.reached.map((r) => r.rule.where)).toEqual(['iptables INPUT #1', 'iptables INPUT #2', 'iptables KNOCKS #1', 'iptables INPUT #3']);
    expect(p.dropRule?.where).toBe('iptables INPUT #3');
    expect(p.dropsByDefault).toBe(true);
  });

  it('reads a native nftables inet chain as one view per family', () => {
    const views = parseNftJson(rec('nft.nft.json'));
    expect(views.map((v) => `${v.origin}/${v.family}/${v.policy}`)).toEqual(['nft inet filter input/4/drop', 'nft inet filter input/6/drop']);
    const v4 = inputPath(views[0]);
    /* "ip protocol icmp" is IPv4 only; "meta l4proto ipv6-icmp" applies to both */
    expect(v4.reached.some((r) => r.rule.protos?.includes('icmp'))).toBe(true);
    expect(inputPath(views[1]).reached.some((r) => r.rule.protos?.includes('icmp'))).toBe(false);
    expect(v4.reached.filter((r) => r.rule.action === 'log').map((r) => r.rule.ctstates)).toEqual([['invalid'], null]);
  });

  it('reads a set of protocols: meta l4proto { icmp, ipv6-icmp }', () => {
    const json = JSON.stringify({ nftables: [
      { chain: { family: 'inet', table: 'filter', name: 'input', type: 'filter', hook: 'input', prio: 0, policy: 'drop' } },
      { rule: { family: 'inet', table: 'filter', chain: 'input', expr: [{ match: { op: '==', left: { meta: { key: 'l4proto' } }, right: { set: ['icmp', 'ipv6-icmp'] } } }, { accept: null }] } },
    ] });
    expect(parseNftJson(json)[1].chains.get('input')![0].protos).toEqual(['icmp', 'ipv6-icmp']);
  });

  it('leaves out the tables iptables-nft made, which ip(6)tables-save shows better', () => {
    expect(parseNftJson(rec('broken.nft.json'), ['ip filter', 'ip6 filter'])).toEqual([]);
    expect(parseNftJson(rec('broken.nft.json')).length).toBe(2);
  });
});

describe('the preflight checks', () => {
  it('log-rule passes on an nftables ruleset that logs with the prefix, on both families', async () => {
    const r = await check('log-rule', { ruleset: 'nft' });
    expect(r.status).toBe('ok');
    expect(r.message).toContain('nft inet filter input #6 (IPv4)');
  });

  it('log-rule fails when nothing logs with the configured prefix, and names the fix', async () => {
    const r = await check('log-rule', { ruleset: 'broken' }, configWith('', 'KNOCK: '));
    expect(r.status).toBe('fail');
    expect(r.message).toContain('IPv4: no firewall rule logs with "KNOCK: "');
    expect(r.fix).toContain('iptables -A INPUT -j LOG --log-prefix "KNOCK: "');
  });

  it('log-rule fails when the LOG rule comes after the drop', async () => {
    const r = await check('log-rule', { ruleset: 'late' });
    expect(r.status).toBe('fail');
    expect(r.message).toContain('iptables INPUT #4 logs with "FIREWALL: " but no packet reaches it (iptables INPUT #3 drops first)');
  });

  it('tcpflags-log fails for a non-SYN door when the LOG rule is limited to NEW, and passes when INVALID is logged', async () => {
    const fin = '  fin:\n    sequence: [1, 2]\n    tcpflags: fin,psh,urg\n    open: iptables -I INPUT -s %IP% -j ACCEPT\n';
    const broken = await check('tcpflags-log', { ruleset: 'broken' }, configWith(fin));
    expect(broken.status).toBe('fail');
    expect(broken.message).toContain('iptables INPUT #4 logs only new');
    expect(broken.fix).toContain('--ctstate INVALID -j LOG');
    expect((await check('tcpflags-log', { ruleset: 'nft' }, configWith(fin))).status).toBe('ok');
    expect((await check('tcpflags-log', { ruleset: 'broken' })).status).toBe('skip');
  });

  it('icmpv6 fails on the old "same with ip6tables" advice and passes on the nft recipe', async () => {
    const r = await check('icmpv6', { ruleset: 'broken' });
    expect(r.status).toBe('fail');
    expect(r.message).toContain('neighbour discovery');
    expect(r.fix).toBe('ip6tables -I INPUT -p ipv6-icmp -j ACCEPT');
    expect((await check('icmpv6', { ruleset: 'nft' })).status).toBe('ok');
  });

  it('log-source names a missing file and an unreadable kmsg with their fixes', async () => {
    const file = parseConfig(CONFIG.replace('kmsg: /dev/kmsg', 'file: /var/log/kern.log'), 'f.yaml');
    const missing = await check('log-source', { ruleset: 'nft', unreadable: { '/var/log/kern.log': 'ENOENT' } }, file);
    expect(missing.status).toBe('fail');
    expect(missing.message).toContain('/var/log/kern.log does not exist');
    expect(missing.fix).toContain('kmsg: /dev/kmsg');
    const kmsg = await check('log-source', { ruleset: 'nft', unreadable: { '/dev/kmsg': 'EPERM' } });
    expect(kmsg.message).toContain('CAP_SYSLOG');
    expect((await check('log-source', { ruleset: 'nft' })).status).toBe('ok');
  });

  it('log-source fails for journald where journalctl is missing', async () => {
    const j = parseConfig(CONFIG.replace('kmsg: /dev/kmsg', 'journald: true'), 'j.yaml');
    const r = await check('log-source', { ruleset: 'nft', programs: ['iptables'] }, j);
    expect(r.status).toBe('fail');
    expect(r.message).toContain('journalctl is not installed');
  });

  it('prefix-seen finds the prefix in real kmsg records, and names the prefixes seen when it is not there', async () => {
    expect((await check('prefix-seen', { ruleset: 'nft' }, configWith('', 'FWCAP: '))).status).toBe('ok');
    const r = await check('prefix-seen', { ruleset: 'nft' }, configWith('', 'KNOCK: '));
    expect(r.status).toBe('warn');
    expect(r.message).toMatch(/other prefixes: "FWCAP:" \(\d+\); none carries "KNOCK:"/);
  });

  it('firewall-backend fails when the host rules are in iptables-legacy and iptables is nf_tables', async () => {
    const r = await check('firewall-backend', { ruleset: 'broken', legacyRules: '*filter\n:INPUT DROP [0:0]\n-A INPUT -i lo -j ACCEPT\nCOMMIT\n' });
    expect(r.status).toBe('fail');
    expect(r.message).toContain('rules in iptables-legacy');
    expect((await check('firewall-backend', { ruleset: 'broken' })).status).toBe('ok');
  });

  it('firewall-backend fails for iptables doors when a native nftables chain drops by default', async () => {
    const allow = '  web:\n    secret: other\n    allow: [tcp/443]\n    close_after: 1m\n    firewall: iptables\n';
    const cfg = parseConfig(CONFIG + allow.replace('    firewall: iptables\n', '') + 'firewall: iptables\n', 'a.yaml');
    const r = await check('firewall-backend', { ruleset: 'nft' }, cfg);
    expect(r.status).toBe('fail');
    expect(r.message).toContain('nft inet filter input drops by default');
  });

  it('nftables-chain fails when the configured chain does not exist', async () => {
    const cfg = parseConfig(CONFIG + '  web:\n    secret: other\n    allow: [tcp/443]\n    close_after: 1m\nfirewall: nftables\n', 'n.yaml');
    const r = await check('nftables-chain', { ruleset: 'nft' }, cfg);
    expect(r.status).toBe('fail');
    expect(r.message).toBe('nftables chain inet filter input does not exist: tumbler cannot add its sets and jump');
    const hooked = OK(JSON.stringify({ nftables: [{ chain: { family: 'inet', table: 'filter', name: 'input', hook: 'input' } }] }));
    expect((await check('nftables-chain', { ruleset: 'nft', nftChain: hooked }, cfg)).status).toBe('ok');
  });

  it('nf-log-all-netns fails in a namespace of its own when the sysctl is 0', async () => {
    const r = await check('nf-log-all-netns', { ruleset: 'nft', initialNetns: false, nfLogAllNetns: '0' });
    expect(r.status).toBe('fail');
    expect(r.fix).toContain('sysctl -w net.netfilter.nf_log_all_netns=1');
    expect((await check('nf-log-all-netns', { ruleset: 'nft', initialNetns: false, nfLogAllNetns: '1' })).status).toBe('ok');
    expect((await check('nf-log-all-netns', { ruleset: 'nft' })).status).toBe('ok');
  });

  it('nf-log-all-netns, with the host out of sight, takes a recent line logged on an interface of this namespace as proof', async () => {
    const hidden = { ruleset: 'nft' as const, initialNetns: false, nfLogAllNetns: null };
    /* the captured kmsg records came in on s2620 */
    const seen = await check('nf-log-all-netns', { ...hidden, interfaces: ['lo', 's2620'] }, configWith('', 'FWCAP: '));
    expect(seen).toMatchObject({ status: 'ok', message: expect.stringContaining('came in on s2620') });
    expect((await check('nf-log-all-netns', hidden, configWith('', 'FWCAP: '))).status).toBe('warn');
    expect((await check('nf-log-all-netns', { ...hidden, interfaces: ['s2620'] }, configWith('', 'OTHER: '))).status).toBe('warn');
  });

  it('door-programs fails on a program that is not installed', async () => {
    const cfg = configWith('    close: /opt/none/x\n    close_after: 1s\n  b:\n    sequence: [7, 8]\n    open: knockd-helper %IP%\n');
    const env = fakeEnv({ ruleset: 'nft' });
    env.which = (p) => (p === 'iptables' ? '/usr/sbin/iptables' : null);
    const [r] = await runPreflight(cfg, HOST_CHECKS.filter((c) => c.name === 'door-programs'), env);
    expect(r.status).toBe('fail');
    expect(r.message).toContain('ssh: /opt/none/x, b: knockd-helper');
  });

  it('listener fails where the firewall drops the Tumbler port, and warns on IPv4 only with IPv6 around', async () => {
    const r = await check('listener', { ruleset: 'late' });
    expect(r.status).toBe('ok');
    const closed = await check('listener', { ruleset: 'nft' }, parseConfig(CONFIG.replace('8675', '9999').replace('[::]:8675', '[::]:9999'), 'l.yaml'));
    expect(closed.status).toBe('fail');
    expect(closed.message).toContain('nft inet filter input drops udp/9999 (IPv4)');
    const v4only = await check('listener', { ruleset: 'nft', routableV6: true }, parseConfig(CONFIG.replace(', "[::]:8675"', ''), 'v.yaml'));
    expect(v4only.status).toBe('warn');
    expect(v4only.fix).toBe('add "[::]:8675" to tumbler.listen');
    const taken = await check('listener', { ruleset: 'nft', bind: { '0.0.0.0:8675': 'EADDRNOTAVAIL' } });
    expect(taken.status).toBe('fail');
  });

  it('a check that throws fails alone; the others still run', async () => {
    const env = fakeEnv({ ruleset: 'nft' });
    env.kmsgRecords = () => {
      throw new Error('boom');
    };
    env.readProblem = () => {
      throw new Error('disk on fire');
    };
    const results = await runPreflight(configWith(), HOST_CHECKS, env);
    expect(results.find((r) => r.check === 'log-source')).toMatchObject({ status: 'fail', message: 'the check itself failed: disk on fire' });
    expect(results.find((r) => r.check === 'icmpv6')?.status).toBe('ok');
    expect(formatReport(results)).toMatch(/^FAIL log-source: the check itself failed: disk on fire$/m);
  });
});

describe('the prefix census', () => {
  it.each([
    ['dev-kmsg.txt', 'FWCAP:'],
    ['rsyslog-rfc3339.log', 'FWCAP:'],
    ['rsyslog-traditional.log', 'FWCAP:'],
  ])('finds the LOG prefix of every netfilter line in %s', (file, prefix) => {
    const lines = fixtureLines(file);
    const census = new PrefixCensus();
    for (const l of lines) census.add(l);
    expect(census.matching([`${prefix} `])).toBeGreaterThan(0);
  });

  it('ignores lines that are not the kernel netfilter log, and stays bounded', () => {
    expect(netfilterPrefixOf('Nov 24 00:17:59 vm sshd[1]: Invalid user FW: IN=eth0 OUT= SRC=1.2.3.4')).toBeNull();
    expect(netfilterPrefixOf('12,5,100,-;FW: IN=eth0 OUT= SRC=1.2.3.4')).toBeNull();
    expect(netfilterPrefixOf('4,5,100,-;IN=eth0 OUT= MAC= SRC=1.2.3.4')).toBe('');
    const census = new PrefixCensus();
    for (let i = 0; i < 1000; i++) census.add(`4,${i},100,-;P${i}: IN=eth0 OUT= SRC=1.2.3.4 DST=5.6.7.8`);
    expect(census.counts.size).toBe(32);
    expect(census.uncounted).toBe(968);
  });
});
