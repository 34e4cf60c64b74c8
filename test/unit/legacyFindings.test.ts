/**
 * knockd.conf files written the way real ones are, each keeping its meaning through convert
 * (fixtures/legacy/findings/), and the examples of knockd's man page and Debian's shipped file
 * (fixtures/legacy/manpage/) converting and passing --check.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { convertLegacy } from '../../src/config/legacy';
import { ConfigError, loadConfigFile, parseConfig } from '../../src/config/load';
import { ClassicKnocks } from '../../src/knock/classicKnocks';
import { UsedSequenceFile } from '../../src/knock/usedSequences';
import { LogLineParser } from '../../src/netfilter/logLine';
import { FIXTURES, fixtureLines } from '../support/samples';

const LEGACY = path.join(FIXTURES, 'legacy');
const finding = (name: string) => path.join(LEGACY, 'findings', name);
const converted = (file: string) => parseConfig(convertLegacy(fs.readFileSync(file, 'utf8'), file), file);
const door = (file: string, name: string) => {
  const d = converted(file).doors.find((x) => x.name === name);
  if (!d) throw new Error(`no door ${name}`);
  return d;
};
function checkErrors(file: string): string[] {
  try {
    loadConfigFile(file);
  } catch (err) {
    if (err instanceof ConfigError) return err.message.split('\n');
    throw err;
  }
  return [];
}

/* Real kernel lines (knockd-sample.log, captured with capture.sh), re-timed and re-ported for each case. */
const TEMPLATE = fixtureLines('legacy/knockd-sample.log')[0];
function line(at: Date, dport: number, flags = 'SYN', src = '10.231.0.2'): string {
  return TEMPLATE.replace(/^\S+/, at.toISOString().replace('Z', '+00:00'))
    .replace('SRC=10.231.0.2', `SRC=${src}`)
    .replace('DPT=7000', `DPT=${dport}`)
    .replace(/RES=0x00 SYN URGP/, `RES=0x00 ${flags} URGP`);
}
function opened(file: string, lines: string[]): string[] {
  const config = converted(file);
  const parser = new LogLineParser({ prefixes: ['FWCAP: '], bootTimeMs: 0 });
  const ck = new ClassicKnocks(config.doors, 100, new UsedSequenceFile(null), {}, true, 0);
  return lines.flatMap((l) => {
    const e = parser.parse(l);
    return typeof e === 'string' ? [] : ck.handle(e).map((c) => c.door);
  });
}
const T0 = new Date('2026-11-24T07:00:00Z').getTime();
const at = (s: number) => new Date(T0 + s * 1000);

describe('knockd.conf findings keep their meaning', () => {
  it('timeout and command_6 are aliases of seq_timeout and start_command_6', () => {
    const d = door(finding('aliases.conf'), 'openSSH');
    expect(d.sequenceTimeoutMs).toBe(7000);
    expect(d.open6).toEqual([['/usr/sbin/ip6tables', '-A', 'INPUT', '-s', '%IP%', '-p', 'tcp', '--dport', '22', '-j', 'ACCEPT']]);
  });

  it('an empty start_command_6 / stop_command_6 runs nothing for IPv6, not the IPv4 command', () => {
    const ssh = door(finding('empty6.conf'), 'openSSH');
    expect(ssh.nothing6).toEqual({ open: true, close: true });
    expect(ssh.open6).toEqual([]);
    const web = door(finding('empty6.conf'), 'openWeb');
    expect(web.nothing6).toEqual({ open: false, close: true });
    expect(web.open6[0][0]).toBe('/usr/sbin/ip6tables');
  });

  it("carries knockd's defaults: a 25 s sequence timeout, any TCP flags, a 10 s cmd_timeout, each with a note", () => {
    const file = finding('defaults.conf');
    const yaml = convertLegacy(fs.readFileSync(file, 'utf8'), file);
    expect(yaml).toContain("sequence_timeout: 25s # knockd's default");
    expect(yaml).toContain('tcpflags: "" # knockd\'s default: TCP packets with any flags are knocks');
    expect(yaml).toContain("close_after: 10s # knockd's default cmd_timeout");
    /* 20 s between knocks, and an ACK among them: knockd opens; so does the converted door */
    expect(opened(file, [line(at(0), 7000), line(at(10), 8000, 'ACK'), line(at(20), 9000)])).toEqual(['openSSH']);
    expect(opened(file, [line(at(0), 7000), line(at(10), 8000), line(at(26), 9000)])).toEqual([]);
  });

  it('commands with a # comment, a glob, ~ or VAR=value run under a shell, as knockd ran them', () => {
    const config = converted(finding('shell.conf'));
    for (const d of config.doors) expect(d.open[0].slice(0, 2)).toEqual(['/bin/sh', '-c']);
    expect(config.doors[0].open[0][2]).toBe('/sbin/iptables -I INPUT -s %IP% -p tcp --dport 22 -j ACCEPT # let them in');
    expect(config.doors[0].close[0].slice(0, 2)).toEqual(['/bin/sh', '-c']);
    /* and a hand-written tumblerd config is told, instead of running iptables with "#" as an argument */
    const yaml = 'sources: [{ file: /var/log/kern.log, prefix: "FW: " }]\ndoors:\n  ssh:\n    sequence: [1, 2]\n    open: "iptables -I INPUT -s %IP% -j ACCEPT # let in"\n';
    expect(() => parseConfig(yaml, 't.yaml')).toThrow(/t.yaml:5:11: doors.ssh.open: "#" at the start of a word starts a comment to a shell/);
  });

  it('sections whose names sanitise to the same name stay distinct doors', () => {
    const file = finding('samename.conf');
    expect(converted(file).doors.map((d) => [d.name, d.open[0][1]])).toEqual([
      ['open-ssh', 'open_ssh_1'], ['open-ssh-2', 'open-ssh_2'], ['open_ssh', 'open_ssh_3'],
    ]);
    expect(convertLegacy(fs.readFileSync(file, 'utf8'), file)).toContain('samename.conf:7: [open-ssh] is door "open-ssh-2": "open-ssh" is already [open ssh]');
  });

  it('--check points at the lines of the knockd.conf, not of the YAML it became', () => {
    expect(checkErrors(finding('badvalue.conf'))).toEqual([`${finding('badvalue.conf')}:6:1: [openSSH] seq_timeout: must be longer than zero`]);
  });

  it('prints the LOG rule that doors knocking with other flags than SYN need', () => {
    const file = finding('finflags.conf');
    const yaml = convertLegacy(fs.readFileSync(file, 'utf8'), file);
    expect(yaml).toContain('# Door openSMTP knocks with other packets than SYNs, which conntrack marks INVALID');
    expect(yaml).toContain('# iptables -I INPUT -p tcp -m multiport --dports 7000,8000,9000 -m conntrack --ctstate INVALID -j LOG --log-prefix "FIREWALL: " --log-level warning');
    expect(yaml).not.toContain('Door openSSH');
  });

  it('Interface, PidFile, UseSyslog and Target get notes that say what tumblerd does instead', () => {
    const file = finding('options.conf');
    const yaml = convertLegacy(fs.readFileSync(file, 'utf8'), file);
    expect(yaml).toContain('options.conf:2: UseSyslog: tumblerd logs to stdout/stderr (the journal under systemd) and to log.file');
    expect(yaml).toContain('options.conf:3: PidFile = /run/knockd.pid: tumblerd writes no pid file');
    expect(yaml).toContain('options.conf:4: Interface = ens3: knockd saw only this interface');
    expect(yaml).toContain('iptables -A INPUT -i ens3 -m conntrack --ctstate NEW -j LOG');
    expect(yaml).toContain('interfaces: [ ens3 ] # knockd: Interface');
    expect(door(file, 'wol').interfaces).toEqual(['ens3']);
    expect(yaml).toContain('options.conf:8: [wol] Target = 192.168.1.20: knockd counted only packets to that address');
    expect(checkErrors(file)).toEqual([]);
  });

  it('says where tumblerd and knockd differ on wrong ports, without calling either stricter', () => {
    const yaml = convertLegacy(fs.readFileSync(path.join(LEGACY, 'knockd.conf'), 'utf8'), 'knockd.conf');
    expect(yaml).toContain('knockd and tumblerd both start a knock over on a wrong port with matching flags');
    expect(yaml).not.toMatch(/stricter|where knockd waited/);
  });

  it('a placeholder or a fork-specific key or macro fails, naming it', () => {
    expect(checkErrors(finding('placeholder.conf'))).toEqual([
      `${finding('placeholder.conf')}:4:1: [openSSH] sequence: "<port1>" looks like a placeholder left from an example: fill in the real value`,
    ]);
    expect(checkErrors(finding('fork.conf'))).toEqual([
      `${finding('fork.conf')}:6:1: [openSSH] totp_secret: not a knockd key (knockd itself stops with "syntax error"); a fork's key, perhaps: convert it by hand`,
      `${finding('fork.conf')}:8:1: [openSSH] command: %PORT%: knockd replaces only %IP%; this is a fork's macro or a placeholder (knockd would pass it on as it is)`,
    ]);
  });
});

describe("knockd's man page examples and Debian's knockd.conf", () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'otp-manpage-'));
    fs.cpSync(path.join(LEGACY, 'manpage'), dir, { recursive: true });
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it.each(['example1.conf', 'example2.conf', 'example3.conf', 'example4.conf', 'debian-knockd.conf'])('%s converts and passes --check', (name) => {
    expect(checkErrors(path.join(dir, name))).toEqual([]);
  });

  it('example 3 carries one_time_sequences over, and prints the LOG rule its FIN knocks need', () => {
    const file = path.join(dir, 'example3.conf');
    expect(loadConfigFile(file).doors[0].oneTimeSequences).toBe(path.join(dir, 'smtp_sequences'));
    expect(convertLegacy(fs.readFileSync(file, 'utf8'), file)).toContain('--dports 6001,6002,6003,6101,6102,6103,6201,6202,6203 -m conntrack --ctstate INVALID');
  });
});
