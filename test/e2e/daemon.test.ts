/**
 * The daemon's own behaviour on this host, no lab needed: the warning about log files any user
 * can write to, --dry-run, a log file reopened on SIGHUP (logrotate's postrotate), and a clean
 * exit on SIGTERM.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Daemon, sendUdpFrom, waitFor } from '../support/lab';
import { formatDatagram, knockDigest } from '../../src/tumbler/protocol';

describe('tumblerd on this host', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tumbler-daemon-'));
  const port = 20000 + ((process.pid + 13) % 20000);
  const messages = path.join(dir, 'messages');
  const logFile = path.join(dir, 'tumblerd.log');
  let d: Daemon;

  beforeAll(async () => {
    fs.writeFileSync(
      messages,
      'Nov 24 05:52:14 vm kernel: [ 3988.2] usb 1-1: new device\nNov 24 05:52:15 vm sshd[811]: Accepted publickey for admin\n',
    );
    fs.writeFileSync(
      path.join(dir, 'tumblerd.yaml'),
      `state_dir: ${dir}/state\nlog: { level: info, file: ${logFile} }\nsources:\n  - file: ${messages}\n    prefix: "FIREWALL: "\n` +
        `tumbler:\n  listen: ["127.0.0.1:${port}"]\ndoors:\n  ssh:\n    secret: s3cret\n    sequence: [1, 2]\n` +
        `    open: iptables -I INPUT -s %IP% -p tcp --dport 22 -j ACCEPT\n    close: iptables -D INPUT -s %IP% -p tcp --dport 22 -j ACCEPT\n    close_after: 1s\n`,
    );
    d = await new Daemon(null, path.join(dir, 'tumblerd.yaml'), ['--dry-run', '--log-level', 'info']).started();
  });
  afterAll(async () => {
    await d.stop('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('warns that a file mixing facilities lets any local user forge a knock', () => {
    expect(d.output).toContain(`${messages} mixes kernel lines with other programs' lines: any local user can forge a knock`);
    expect(d.output).toContain('kmsg: /dev/kmsg');
  });

  it('--dry-run says what it would run, and runs nothing', async () => {
    await sendUdpFrom('127.0.0.70', port, Buffer.from(formatDatagram(knockDigest(Date.now(), '127.0.0.70', 's3cret'))));
    await waitFor('the would-run line', () => d.output.includes('dry run: would run command="iptables -I INPUT -s 127.0.0.70 -p tcp --dport 22 -j ACCEPT"'));
    await waitFor('the close', () => d.output.includes('dry run: would run command="iptables -D INPUT -s 127.0.0.70'));
  });

  it('reopens its log file on SIGHUP, and exits cleanly on SIGTERM', async () => {
    await waitFor('the log file', () => fs.existsSync(logFile) && fs.readFileSync(logFile, 'utf8').includes('tumblerd started'));
    fs.renameSync(logFile, `${logFile}.1`);
    d.child.kill('SIGHUP');
    await waitFor('a new log file', () => fs.existsSync(logFile) && fs.readFileSync(logFile, 'utf8').includes('config reloaded (SIGHUP)'));
    expect(fs.readFileSync(`${logFile}.1`, 'utf8')).not.toContain('SIGHUP');
    expect(await d.stop('SIGTERM')).toBe(0);
    expect(d.output).toContain('tumblerd stopped');
  });
});
