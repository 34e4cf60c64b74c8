import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { scanLogs } from '../../src/cli/scan';
import { convertLegacy, detectLegacy } from '../../src/config/legacy';
import { loadConfigFile, parseConfig } from '../../src/config/load';
import { TumblerListener } from '../../src/tumbler/listener';
import { ReplayCache } from '../../src/tumbler/replayCache';
import { verifiersOf } from '../../src/daemon';
import { formatDatagram, knockDigest } from '../../src/tumbler/protocol';
import { FIXTURES } from '../support/samples';

const KNOCKD = path.join(FIXTURES, 'legacy', 'knockd.conf');
const TUMBLERD = path.join(FIXTURES, 'legacy', 'tumblerd.conf');

describe('legacy configs', () => {
  it('tells the formats apart', () => {
    expect(detectLegacy(fs.readFileSync(KNOCKD, 'utf8'))).toBe('knockd');
    expect(detectLegacy(fs.readFileSync(TUMBLERD, 'utf8'))).toBe('tumblerd');
    expect(detectLegacy('doors:\n  a: {}\n')).toBeNull();
  });

  it("converts knockd's own sample to YAML that validates and opens the same doors on a real log", async () => {
    const yaml = convertLegacy(fs.readFileSync(KNOCKD, 'utf8'), KNOCKD);
    expect(yaml).toContain('UseSyslog: tumblerd logs to stdout/stderr');
    const config = parseConfig(yaml, 'converted.yaml');
    expect(config.doors.map((d) => d.name)).toEqual(['openSSH', 'closeSSH', 'openHTTPS']);
    expect(config.doors[0]).toMatchObject({ sequenceTimeoutMs: 5000, open: [['/sbin/iptables', '-A', 'INPUT', '-s', '%IP%', '-p', 'tcp', '--dport', '22', '-j', 'ACCEPT']] });
    /* knockd has no log prefix; the captured log was logged with FWCAP: */
    const captured = { ...config, sources: [{ kind: 'file' as const, path: '', prefixes: ['FWCAP: '] }] };
    const report = await scanLogs(captured, [path.join(FIXTURES, 'legacy', 'knockd-sample.log')]);
    expect(report.opened.map((o) => o.door)).toEqual(['openSSH', 'closeSSH', 'openHTTPS']);
    expect(report.opened.every((o) => o.src === '10.231.0.2')).toBe(true);
  });

  it("converts the original tumblerd's sample, and its doors open on a Tumbler knock", async () => {
    const sample = convertLegacy(fs.readFileSync(TUMBLERD, 'utf8'), TUMBLERD);
    /* its secrets are the documentation's, which the config refuses: a real one stands in */
    expect(() => parseConfig(sample, 'converted.yaml')).toThrow(/doors.open-ssh.secret: this is the sample secret from the documentation/);
    const yaml = sample.replace(/pAsSwOrD/g, 'Random-Secret-42');
    const config = parseConfig(yaml, 'converted.yaml');
    expect(config.tumbler.listen).toEqual([{ host: '0.0.0.0', port: 8675 }]);
    expect(config.log.file).toBe('/var/log/tumblerd.log');
    const opened: string[] = [];
    const listener = new TumblerListener(verifiersOf(config), new ReplayCache(), {
      grant: (g) => opened.push(`${g.door}<-${g.src}`),
      info() {},
      warn() {},
    });
    await listener.handle(Buffer.from(formatDatagram(knockDigest(Date.now(), '192.0.2.5', 'close-Random-Secret-42'))), '192.0.2.5');
    expect(opened).toEqual(['close-ssh<-192.0.2.5']);
  });

  it('keeps shell syntax under /bin/sh -c, and says so', () => {
    const yaml = convertLegacy('[options]\n  Interface = eth0\n[web]\n  sequence = 1,2:udp\n  start_command = /usr/bin/logger knock from %IP% | tee -a /tmp/x\n  stop_command = /bin/true\n', 'k.conf');
    expect(yaml).toContain('Interface = eth0: knockd saw only this interface');
    expect(yaml).toContain('iptables -A INPUT -i eth0 -m conntrack');
    expect(yaml).toContain('runs under /bin/sh -c here');
    const door = parseConfig(yaml, 'k.yaml').doors[0];
    expect(door.open[0].slice(0, 2)).toEqual(['/bin/sh', '-c']);
    expect(door.sequence).toEqual([{ port: 1, proto: 'tcp' }, { port: 2, proto: 'udp' }]);
    expect(door.closeAfterMs).toBe(10_000);
  });

  it('is accepted by --config directly', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tumbler-legacy-'));
    try {
      fs.copyFileSync(KNOCKD, path.join(dir, 'knockd.conf'));
      expect(loadConfigFile(path.join(dir, 'knockd.conf')).doors).toHaveLength(3);
    } finally {
      fs.rmSync(dir, { recursive: true });
    }
  });
});
