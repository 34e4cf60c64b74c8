/**
 * Live reload of a running tumblerd: a valid change applies without dropping open doors, an
 * invalid one is reported with file, line and key and the last good config stays in force.
 * Tumbler knocks on loopback drive it; needs no root.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Daemon, TUMBLERD, sendUdpFrom, waitFor } from '../support/lab';
import { formatDatagram, knockDigest } from '../../src/tumbler/protocol';

describe('live config reload', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tumbler-reload-'));
  const file = path.join(dir, 'tumblerd.yaml');
  const port = 20000 + ((process.pid + 7) % 20000);
  let daemon: Daemon;
  const output = () => daemon.output;
  const door = (name: string) => `  ${name}:\n    secret: ${name}-secret\n    open: /bin/true %IP%\n    close: /bin/true %IP%\n    close_after: 60s\n`;
  const head = `state_dir: ${dir}/state\ntumbler:\n  listen: ["127.0.0.1:${port}"]\ndoors:\n`;

  const knock = (doorName: string, from: string) =>
    sendUdpFrom(from, port, Buffer.from(formatDatagram(knockDigest(Date.now(), from, `${doorName}-secret`))));
  const status = () => JSON.parse(spawnSync(process.execPath, [TUMBLERD, 'status', '--json', '-c', file], { encoding: 'utf8' }).stdout);

  beforeAll(async () => {
    fs.writeFileSync(file, head + door('alpha'));
    daemon = await new Daemon(null, file, ['--log-level', 'info']).started();
  });
  afterAll(async () => {
    await daemon.stop('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('applies a valid change and keeps the doors that are open', async () => {
    await knock('alpha', '127.0.0.50');
    await waitFor('alpha to open', () => output().includes('door opened door=alpha src=127.0.0.50'));
    fs.writeFileSync(file, head + door('alpha') + door('beta'));
    await waitFor('the reload', () => output().includes('config reloaded (file changed)'));
    await knock('beta', '127.0.0.51');
    await waitFor('beta to open', () => output().includes('door opened door=beta src=127.0.0.51'));
    expect(status().map((d: { door: string; src: string }) => `${d.door}<-${d.src}`).sort()).toEqual(['alpha<-127.0.0.50', 'beta<-127.0.0.51']);
  });

  it('rejects an invalid change with file, line and key, and keeps the last good config', async () => {
    fs.writeFileSync(file, head + door('alpha') + door('beta') + '    sequence_timeout: soon\n');
    await waitFor('the rejection', () => output().includes('config not reloaded (file changed): keeping the last good one'));
    await waitFor('the error line', () => output().includes(`${file}:15:`));
    expect(output()).toMatch(new RegExp(`${file}:15:\\d+: doors\\.beta\\.sequence_timeout: `));
    await knock('beta', '127.0.0.52');
    await waitFor('beta to open still', () => output().includes('door opened door=beta src=127.0.0.52'));
    daemon.child.kill('SIGHUP');
    await waitFor('SIGHUP to reload (and reject) too', () => output().includes('config not reloaded (SIGHUP)'));
    expect(daemon.child.exitCode).toBeNull();
    expect(status()).toHaveLength(3);
  });
});
