/**
 * knockd.conf files keep their meaning: knockd's man page examples and Debian's shipped file are
 * run by the real knockd (sniffing the lab's server interface) while a client knocks; the
 * firewall logs the same packets; the converted config passes --check, and `tumblerd scan` of
 * that log opens exactly the doors knockd opened, for the same source. Where the two differ by
 * design (a port outside every sequence starts a tumblerd knock over), the difference is asserted.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { splitCommand } from '../../src/doors/commandTemplate';
import { Lab, TUMBLERD, describeLab, sleep, waitFor } from '../support/lab';
import { FIXTURES } from '../support/samples';

type Knock = { syn: string[] } | { flags: string[]; port: number };

interface Case {
  conf: string;
  knocks: Knock[];
  /** The doors knockd opens, in order. */
  opens: string[];
  /* knockd's openings tumblerd, by design, does not repeat */
  knockdOnly?: number;
}

const fin = (port: number): Knock => ({ flags: ['-F'], port });

const CASES: Case[] = [
  { conf: 'example1.conf', knocks: [{ syn: ['7000', '8000', '9000'] }, { syn: ['9000', '8000', '7000'] }, { syn: ['7000', '9000', '8000'] }], opens: ['openSSH', 'closeSSH'] },
  {
    conf: 'example2.conf',
    /* a plain SYN among them has the wrong flags: ignored by both */
    knocks: [{ syn: ['2222:udp'] }, { flags: ['-S'], port: 3333 }, { flags: ['-S', '-A'], port: 3333 }, { syn: ['4444:udp'] }],
    opens: ['opencloseSSH'],
  },
  {
    conf: 'example3.conf',
    knocks: [6001, 6002, 6003, 6001, 6002, 6003, 6101, 6102, 6103].map(fin),
    opens: ['opencloseSMTP', 'opencloseSMTP'],
  },
  {
    conf: 'example4.conf',
    knocks: [6001, 6002, 6003].map(fin).concat([{ flags: ['-S'], port: 6101 }], [6101, 6102, 6103].map(fin)),
    opens: ['opencloseSMTP', 'opencloseSMTP'],
  },
  {
    conf: 'debian-knockd.conf',
    /* the last: 22 is in no sequence, so knockd never sees it and opens; tumblerd starts over */
    knocks: [{ syn: ['12345', '54321', '24680', '13579'] }, { syn: ['7000', '8000', '9000'] }, { syn: ['9000', '8000', '22', '7000'] }],
    opens: ['openHTTPS', 'openSSH', 'closeSSH'],
    knockdOnly: 1,
  },
];

describeLab('knockd configs: tumblerd scan opens what the real knockd opened on the same packets', () => {
  const lab = new Lab();
  let kernLog: string;
  beforeAll(() => {
    lab.up();
    kernLog = lab.startRsyslog('rfc3339');
  });
  afterAll(() => lab.destroy());

  const send = (k: Knock) => {
    if ('syn' in k) lab.inCli('knock', '-d', '150', lab.serverIp, ...k.syn);
    else spawnSync('ip', ['netns', 'exec', lab.cli, 'hping3', '-q', '-c', '1', ...k.flags, '-p', String(k.port), lab.serverIp], { stdio: 'ignore' });
  };

  it.each(CASES)('$conf', async ({ conf, knocks, opens, knockdOnly = 0 }) => {
    const dir = path.join(lab.dir, conf.replace('.conf', ''));
    fs.mkdirSync(path.join(dir, 'knockd'), { recursive: true });
    const original = fs.readFileSync(path.join(FIXTURES, 'legacy', 'manpage', conf), 'utf8');
    /* tumblerd's copy as it is; knockd's with its own log and sequences file, and commands that change nothing here */
    fs.writeFileSync(path.join(dir, 'knockd.conf'), original);
    const knockdLog = path.join(dir, 'knockd', 'knockd.log');
    for (const d of [dir, path.join(dir, 'knockd')]) fs.copyFileSync(path.join(FIXTURES, 'legacy', 'manpage', 'smtp_sequences'), path.join(d, 'smtp_sequences'));
    fs.writeFileSync(
      path.join(dir, 'knockd', 'knockd.conf'),
      original
        .replace(/^(\s*(?:start_|stop_)?command(?:_6)?\s*=).*$/gim, '$1 /bin/true')
        .replace(/^\s*(logfile|UseSyslog).*$/gim, `\tlogfile = ${knockdLog}`)
        .replace(/(one_time_sequences\s*=\s*)(\S+)/, `$1${path.join(dir, 'knockd', 'smtp_sequences')}`),
    );
    const from = fs.statSync(kernLog).size;
    const knockd = lab.spawn(lab.srv, ['knockd', '-i', lab.serverDev, '-c', path.join(dir, 'knockd', 'knockd.conf'), '-p', path.join(dir, 'knockd', 'pid')]);
    try {
      await waitFor('knockd to listen', () => fs.existsSync(knockdLog) && fs.readFileSync(knockdLog, 'utf8').includes('listening on'), 5000);
      for (const k of knocks) {
        send(k);
        await sleep(200);
      }
      await sleep(1500);
    } finally {
      knockd.kill('SIGTERM');
    }
    const knockdOpened = [...fs.readFileSync(knockdLog, 'utf8').matchAll(/\] (\S+): (\S+): OPEN SESAME/g)].map((m) => `${m[2]}<-${m[1]}`);

    /* the packets the firewall logged meanwhile */
    const captured = path.join(dir, 'captured.log');
    fs.writeFileSync(captured, fs.readFileSync(kernLog).subarray(from));
    const yaml = execFileSync(process.execPath, [TUMBLERD, 'convert', path.join(dir, 'knockd.conf')], { encoding: 'utf8' }).replace('prefix: "FIREWALL: "', `prefix: "${lab.prefix}"`);
    const converted = path.join(dir, 'tumblerd.yaml');
    fs.writeFileSync(converted, yaml);
    /* the config validates (exit 2 would be a config error); the host checks --check also runs are about this machine's firewall, not the lab's */
    const check = spawnSync(process.execPath, [TUMBLERD, '--check', '--config', converted], { encoding: 'utf8' });
    expect(check.status).not.toBe(2);
    expect(check.stdout).toContain(': OK: ');
    const report = JSON.parse(execFileSync(process.execPath, [TUMBLERD, 'scan', '--json', '--config', converted, captured], { encoding: 'utf8' }));
    const tumblerdOpened = (report.opened as { door: string; src: string }[]).map((o) => `${o.door}<-${o.src}`);

    expect(knockdOpened).toEqual(opens.map((o) => `${o}<-${lab.clientIp}`));
    expect(tumblerdOpened).toEqual(knockdOpened.slice(0, knockdOpened.length - knockdOnly));
    /* scan leaves a one-time sequences file as it found it */
    expect(fs.readFileSync(path.join(dir, 'smtp_sequences'), 'utf8')).toBe(fs.readFileSync(path.join(FIXTURES, 'legacy', 'manpage', 'smtp_sequences'), 'utf8'));
  });
}, ['ip', 'iptables', 'rsyslogd', 'knock', 'knockd', 'hping3']);

describeLab('the LOG rules convert prints are the ones a door needs', () => {
  const lab = new Lab();
  let kernLog: string;
  let yaml: string;
  const dir = () => path.join(lab.dir, 'rules');
  beforeAll(() => {
    lab.up();
    kernLog = lab.startRsyslog('rfc3339');
    /* the lab logs every dropped packet; here only what the printed rules log */
    lab.inSrv('iptables', '-D', 'INPUT', '-j', 'LOG', '--log-prefix', lab.prefix, '--log-level', 'warning');
    fs.mkdirSync(dir());
    yaml = execFileSync(process.execPath, [TUMBLERD, 'convert', path.join(FIXTURES, 'legacy', 'findings', 'finflags.conf')], { encoding: 'utf8' })
      .split('FIREWALL: ').join(lab.prefix);
    fs.writeFileSync(path.join(dir(), 'tumblerd.yaml'), yaml);
  });
  afterAll(() => lab.destroy());

  /* the printed rules, run as printed (the prefix has a space: split as a shell would) */
  const printed = (pattern: RegExp) =>
    yaml.split('\n').map((l) => l.trim()).filter((l) => /^# iptables /.test(l) && pattern.test(l)).map((l) => splitCommand(l.slice(2)) as string[]);
  const scanAfter = async (send: () => void): Promise<string[]> => {
    const from = fs.statSync(kernLog).size;
    send();
    await sleep(1500);
    const captured = path.join(dir(), `captured-${Date.now()}.log`);
    fs.writeFileSync(captured, fs.readFileSync(kernLog).subarray(from));
    const report = JSON.parse(execFileSync(process.execPath, [TUMBLERD, 'scan', '--json', '--config', path.join(dir(), 'tumblerd.yaml'), captured], { encoding: 'utf8' }));
    return (report.opened as { door: string }[]).map((o) => o.door);
  };
  const finKnock = () => {
    for (const port of [7000, 8000, 9000]) spawnSync('ip', ['netns', 'exec', lab.cli, 'hping3', '-q', '-c', '1', '-F', '-p', String(port), lab.serverIp], { stdio: 'ignore' });
  };

  it('FIN knocks are never logged by the --ctstate NEW rule alone, and are with the INVALID rule printed for their door', async () => {
    const [newRule] = printed(/--ctstate NEW/);
    expect(newRule).toBeDefined();
    lab.inSrv(...newRule);
    expect(await scanAfter(() => lab.inCli('knock', '-d', '100', lab.serverIp, '7100', '8100'))).toEqual(['openSSH']);
    expect(await scanAfter(finKnock)).toEqual([]);

    const invalidRules = printed(/--ctstate INVALID/);
    expect(invalidRules).toHaveLength(1);
    lab.inSrv(...invalidRules[0]);
    expect(await scanAfter(finKnock)).toEqual(['openSMTP']);
  });
}, ['ip', 'iptables', 'rsyslogd', 'knock', 'hping3']);
