/** The commands as a sysadmin types them: tumblerd scan, --check, convert, and the client's errors. */
import { spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TUMBLER, TUMBLERD, waitFor } from '../support/lab';
import { FIXTURES } from '../support/samples';
import { formatDatagram, knockDigest } from '../../src/tumbler/protocol';

const run = (cli: string, ...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });

describe('the command line', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tumbler-cli-'));
  const config = path.join(dir, 'tumblerd.yaml');
  beforeAll(() =>
    fs.writeFileSync(
      config,
      'sources:\n  - file: /var/log/kern.log\n    prefix: "FWCAP: "\ndoors:\n' +
        '  ssh: { sequence: [42, 196, 69], open: /bin/true }\n  mixed: { sequence: "7000,8000:udp,9000", open: /bin/true }\n  scan: { sequence: [43, 44], open: /bin/true }\n',
    ),
  );
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('tumblerd scan reports exactly the doors knocked in a log captured from a real kernel', () => {
    const log = path.join(FIXTURES, 'rsyslog-rfc3339.log');
    const r = run(TUMBLERD, 'scan', '-c', config, log);
    expect(r.status).toBe(0);
    const opened = r.stdout.split('\n').filter((l) => l.includes('would open'));
    expect(opened.map((l) => l.replace(/^\S+\s+/, '').replace(/\s+\(.*$/, ''))).toEqual([
      'door ssh would open for 10.231.0.2',
      'door mixed would open for 10.231.0.2',
      'door ssh would open for fd00:231::2',
    ]);
    expect(r.stdout).toMatch(
      /lines read: +12\nnetfilter lines: +12\nskipped malformed: +0\nother protocols: +0\nfragments: +0\nnot for this host: +0\nknock events: +10\ndoors opened: +3\npassed over: +2 /,
    );
    /* 44 and 53 from a source with no attempt (its 43 was no SYN): they could change nothing */
    const json = JSON.parse(run(TUMBLERD, 'scan', '--json', '-c', config, log).stdout);
    expect(json.counts).toMatchObject({ lines: 12, events: 10, passedOver: 2, doorsOpened: 3 });
  });

  it('tumblerd scan - reads standard input, and checks the destination only when asked', () => {
    const text = fs.readFileSync(path.join(FIXTURES, 'rsyslog-rfc3339.log'), 'utf8');
    const scan = (...args: string[]) => spawnSync(process.execPath, [TUMBLERD, 'scan', '-c', config, ...args], { encoding: 'utf8', input: text });
    expect(scan('-').stdout).toMatch(/doors opened: +3/);
    /* a packet refused by the host check starts no attempt, so more of the lines after it (IPv4 or IPv6) are passed over */
    expect(scan('--address', '10.231.0.1', '-').stdout).toMatch(/not for this host: +1\nknock events: +7\ndoors opened: +2\npassed over: +4 /);
    expect(scan('--address', '192.0.2.1', '--address', 'fd00:231::1', '-').stdout).toMatch(/not for this host: +3\nknock events: +3\ndoors opened: +1\npassed over: +6 /);
    expect(scan('--interface', 'eth0', '-').stdout).toMatch(/not for this host: +4\nknock events: +0\ndoors opened: +0\npassed over: +8 /);
    /* this host has no interface s2620: the capture's namespace is gone */
    expect(scan('--this-host', '-').stdout).toMatch(/not for this host: +4\nknock events: +0\ndoors opened: +0\npassed over: +8 /);
    const bad = scan('--address', '10.0.0.1;id', '-');
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain('"10.0.0.1;id" is not an IP address');
  });

  it('tumblerd scan counts malformed lines and reads .gz', () => {
    const gz = path.join(dir, 'kern.log.gz');
    const lines = fs.readFileSync(path.join(FIXTURES, 'rsyslog-traditional.log'), 'utf8').split('\n');
    lines.splice(1, 0, lines[1].slice(0, 150), 'Nov 24 05:52:14 vm sshd[9]: Invalid user FWCAP: IN=x SRC=1.2.3.4');
    fs.writeFileSync(gz, require('node:zlib').gzipSync(lines.join('\n')));
    const r = run(TUMBLERD, 'scan', '-c', config, gz);
    expect(r.stdout).toMatch(/lines read: +14\nnetfilter lines: +13\nskipped malformed: +1\n/);
  });

  it('tumblerd scan names the LOG prefixes it saw when they are not the configured one', () => {
    const other = path.join(dir, 'other.yaml');
    fs.writeFileSync(other, 'sources:\n  - file: /x\n    prefix: "KNOCK: "\ndoors:\n  ssh: { sequence: [42, 196, 69], open: /bin/true }\n');
    const r = run(TUMBLERD, 'scan', '-c', other, path.join(FIXTURES, 'rsyslog-rfc3339.log'), path.join(FIXTURES, 'dev-kmsg.txt'));
    expect(r.stdout).toContain('no door would have opened');
    expect(r.stdout).toMatch(/other LOG prefixes: \d+ netfilter line\(s\) carry a prefix the config does not name: "FWCAP:" \(\d+\) — is sources\[\]\.prefix the one your LOG rule uses\?/);
    expect(JSON.parse(run(TUMBLERD, 'scan', '--json', '-c', other, path.join(FIXTURES, 'dev-kmsg.txt')).stdout).otherPrefixes[0].prefix).toBe('FWCAP:');
  });

  it('tumblerd scan counts a line too long to be a log line among the lines read and skipped', () => {
    const log = path.join(dir, 'overlong.log');
    fs.writeFileSync(log, 'x'.repeat(70 * 1024) + '\n');
    expect(run(TUMBLERD, 'scan', '-c', config, log).stdout).toMatch(/lines read: +1\nnetfilter lines: +0\nskipped malformed: +1\n/);
  });

  it('tumblerd --check: a one-line summary, or every error with file:line and a non-zero exit', () => {
    const good = path.join(dir, 'good.yaml');
    fs.writeFileSync(good, `state_dir: ${dir}/state\ntumbler:\n  listen: ["127.0.0.1:${20000 + ((process.pid + 41) % 20000)}"]\ndoors:\n  ssh: { secret: a-long-enough-test-secret, open: /bin/true }\n`, { mode: 0o600 });
    const ok = run(TUMBLERD, '--check', '-c', good);
    expect(ok.status).toBe(0);
    expect(ok.stdout.trim().split('\n')).toHaveLength(1);
    /* valid, but dead on this host: the preflight says why, and --check fails */
    const dead = path.join(dir, 'dead.yaml');
    fs.writeFileSync(dead, `sources: [{ file: ${dir}/no-such.log, prefix: "FWCAP: " }]\ndoors:\n  ssh: { sequence: [42, 196, 69], open: /bin/true }\n`);
    const r0 = run(TUMBLERD, '--check', '-c', dead);
    expect(r0.status).toBe(1);
    expect(r0.stdout).toContain(`FAIL log-source: ${dir}/no-such.log does not exist: tumblerd would wait for it forever`);
    /* the knock-sequence warnings of a config whose sources this host may not have */
    const [summary, ...rest] = run(TUMBLERD, '--check', '-c', config).stdout.trim().split('\n');
    expect(summary).toMatch(/OK: 3 door\(s\)/);
    for (const w of rest) expect(w).toMatch(/^(WARN|FAIL) /);
    expect(rest).toContain(
      'WARN knock-sequences: door scan: sequence 43,44 is consecutive ascending ports: a scan that walks the ports in order (nmap -r, masscan ranges) knocks it' +
        ' (fix: use three or more ports in no order a scan follows, or a Tumbler secret)',
    );
    const bad = path.join(dir, 'bad.yaml');
    fs.writeFileSync(bad, 'doors:\n  ssh:\n    sequence: [0]\n    open: /bin/true\n');
    let r = run(TUMBLERD, '--check', '-c', bad);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`${bad}:3:16: doors.ssh.sequence[0]: should be a port from 1 to 65535`);
    fs.writeFileSync(bad, 'sources: [{ kmsg: /dev/kmsg, prefix: "F: " }]\ndoors:\n  ssh:\n    sequence: [1]\n    open: echo $(id)\n    close: /bin/true\n');
    r = run(TUMBLERD, '--check', '-c', bad);
    expect(r.stderr.trim().split('\n')).toEqual([
      'tumblerd: the config has 2 error(s):',
      `${bad}:5:11: doors.ssh.open: "$" would mean something to a shell, but commands run without one: quote it, or put the pipeline in a script`,
      `${bad}:6:12: doors.ssh.close: close needs close_after to say when to run it`,
    ]);
  });

  it('tumblerd convert prints YAML that --check accepts', () => {
    const out = path.join(dir, 'converted.yaml');
    fs.writeFileSync(out, run(TUMBLERD, 'convert', path.join(FIXTURES, 'legacy', 'knockd.conf')).stdout);
    /* the config is valid; whether this host logs knocks for it is the preflight's business */
    expect(run(TUMBLERD, '--check', '-c', out).stdout).toContain('OK: 3 door(s)');
  });

  it('tumbler --open reads the secret from piped input and hashes the address it sends from', async () => {
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    const got = new Promise<{ msg: Buffer; from: string }>((r) => sock.once('message', (msg, rinfo) => r({ msg, from: rinfo.address })));
    const before = Date.now();
    let received: { msg: Buffer; from: string };
    try {
      const r = spawnSync(process.execPath, [TUMBLER, '--open', `tumbler://127.0.0.1:${sock.address().port}/`], { input: 'pa ss\n', encoding: 'utf8' });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      received = await got;
    } finally {
      sock.close();
    }
    const { msg, from } = received;
    const expected = [before, Date.now()].map((t) => formatDatagram(knockDigest(t, from, 'pa ss')));
    expect(expected).toContain(msg.toString());
  });

  const hasTmux = spawnSync('tmux', ['-V']).status === 0;
  (hasTmux ? it : it.skip)(`tumbler --open asks for the secret on a terminal without echoing it${hasTmux ? '' : ' (skipped: no tmux)'}`, async () => {
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    const got = new Promise<Buffer>((r) => sock.once('message', (msg) => r(msg)));
    const session = `tumbler-prompt-${process.pid}`;
    const pane = () => spawnSync('tmux', ['capture-pane', '-p', '-t', session], { encoding: 'utf8' }).stdout;
    try {
      spawnSync('tmux', ['new-session', '-d', '-s', session, '-x', '120', '-y', '10',
        `${process.execPath} ${TUMBLER} --open tumbler://127.0.0.1:${sock.address().port}/; sleep 30`]);
      await waitFor('the prompt', () => pane().includes('secret for 127.0.0.1:'), 5000);
      spawnSync('tmux', ['send-keys', '-t', session, 'hunter2', 'Enter']);
      const msg = await got;
      await waitFor('the client to finish', () => pane().includes('knocked on 127.0.0.1'), 5000);
      expect(pane()).not.toContain('hunter2');
      expect([Date.now() - 60_000, Date.now()].map((t) => formatDatagram(knockDigest(t, '127.0.0.1', 'hunter2')))).toContain(msg.toString());
    } finally {
      spawnSync('tmux', ['kill-session', '-t', session]);
      sock.close();
    }
  });

  it('tumbler knock exits non-zero when the host does not resolve, and both commands have --help', () => {
    const r = run(TUMBLER, 'knock', 'no-such-host.invalid', '42');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('cannot resolve no-such-host.invalid');
    expect(run(TUMBLER, 'open', 'http://x/').stderr).toContain('the scheme must be tumbler://');
    for (const [cli, words] of [
      [TUMBLERD, ['--config', '--check', '--dry-run', '--log-level', 'scan', 'status', 'revoke', 'convert']],
      [TUMBLER, ['--open', '--secret-file', '--from', 'knock', 'open']],
    ] as const) {
      const help = run(cli, '--help').stdout;
      for (const w of words) expect(help).toContain(w);
    }
  });
});
