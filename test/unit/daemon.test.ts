/**
 * The daemon as a component, in this process: start, a classic and a Tumbler knock, a reload
 * (live keys applied, restart-only keys named), stop. Needs no root: a log file as the source,
 * loopback for the listener, doors that touch files.
 */
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfigFile } from '../../src/config/load';
import { Daemon } from '../../src/daemon';
import { formatDatagram, knockDigest } from '../../src/tumbler/protocol';

const PREFIX = 'INPROC: ';

function waitFor(what: string, test: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const poll = () => {
      if (test()) resolve();
      else if (Date.now() > end) reject(new Error(`timed out waiting for ${what}`));
      else setTimeout(poll, 20);
    };
    poll();
  });
}

/** A kernel LOG line as rsyslog writes it (shape of fixtures/rsyslog-rfc3339.log), logged now. */
function logLine(src: string, dport: number): string {
  return (
    `${new Date().toISOString().replace('Z', '+00:00')} vm kernel: ${PREFIX}IN=lo OUT= ` +
    `MAC=00:00:00:00:00:00:00:00:00:00:00:00:08:00 SRC=${src} DST=127.0.0.1 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ` +
    `ID=45309 DF PROTO=TCP SPT=40736 DPT=${dport} WINDOW=65495 RES=0x00 SYN URGP=0 \n`
  );
}

describe('the Daemon component', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tumbler-inproc-'));
  const configFile = path.join(dir, 'tumblerd.yaml');
  const kernLog = path.join(dir, 'kern.log');
  const logFile = path.join(dir, 'tumblerd.log');
  const port = 20000 + ((process.pid + 11) % 20000);
  const metricsPort = 20000 + ((process.pid + 13) % 20000);
  const config = (level: string, stateDir: string) =>
    `state_dir: ${stateDir}\nlog:\n  level: ${level}\n  file: ${logFile}\n` +
    `sources:\n  - file: ${kernLog}\n    prefix: "${PREFIX}"\n` +
    `tumbler:\n  listen: ["127.0.0.1:${port}"]\n` +
    `metrics:\n  listen: "127.0.0.1:${metricsPort}"\n` +
    `doors:\n` +
    `  seq:\n    sequence: [42, 196, 69]\n    open: /usr/bin/touch ${dir}/opened-%NAME%-%IP%\n` +
    `  tum:\n    secret: a-long-enough-test-secret\n    open: /usr/bin/touch ${dir}/opened-%NAME%-%IP%\n`;
  const opened = (name: string) => fs.existsSync(path.join(dir, `opened-${name}`));
  const logText = () => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '');
  let daemon: Daemon;

  beforeAll(async () => {
    fs.writeFileSync(configFile, config('info', `${dir}/state`), { mode: 0o600 });
    fs.writeFileSync(kernLog, '');
    /* the knocks below are lines written into the log, "received" on loopback: a host whose lo is an ordinary interface */
    const readHostView = () => ({ interfaces: new Set(['lo']), addresses: new Set(['127.0.0.1']), loopback: new Set<string>() });
    daemon = new Daemon({ configFile, config: loadConfigFile(configFile), dryRun: false, watchConfig: false, readHostView });
    await daemon.start();
  });
  afterAll(async () => {
    await daemon.stop('test over');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('opens a door for a classic knock read from its source', async () => {
    for (const port of [42, 196, 69]) fs.appendFileSync(kernLog, logLine('127.0.0.9', port));
    await waitFor('the sequence door to open', () => opened('seq-127.0.0.9'));
  });

  it('opens a door for a Tumbler knock on its listener', async () => {
    expect(daemon.tumblerAddresses()).toEqual([expect.objectContaining({ port })]);
    const socket = dgram.createSocket('udp4');
    const datagram = Buffer.from(formatDatagram(knockDigest(Date.now(), '127.0.0.1', 'a-long-enough-test-secret')));
    await new Promise<void>((resolve) => socket.send(datagram, port, '127.0.0.1', () => resolve()));
    socket.close();
    await waitFor('the secret door to open', () => opened('tum-127.0.0.1'));
  });

  it('counts what it did into its metrics, and serves them', async () => {
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(text).toContain('tumbler_knocks_total{protocol="sequence",result="completed"} 1');
    expect(text).toContain('tumbler_knocks_total{protocol="tumbler1",result="accepted"} 1');
    expect(text).toContain('tumbler_door_opens_total{door="seq"} 1');
    expect(text).toContain('tumbler_door_opens_total{door="tum"} 1');
    expect(text).toContain(`tumbler_lines_total{source="file ${kernLog}",outcome="knock"} 3`);
    expect(text).toMatch(new RegExp(`tumbler_source_lag_seconds\\{source="file ${kernLog}"\\} \\d`));
  });

  it('applies log.level on reload, and names the keys that need a restart', async () => {
    fs.appendFileSync(kernLog, logLine('127.0.0.10', 42) + logLine('127.0.0.10', 196) + logLine('127.0.0.10', 69));
    await waitFor('a knock at info level', () => logText().includes('knock sequence completed door=seq src=127.0.0.10'));
    expect(logText()).not.toContain('knock progress');

    fs.writeFileSync(configFile, config('debug', `${dir}/elsewhere`));
    const result = await daemon.reload('test');
    expect(result).toEqual({ ok: true, errors: [], applied: ['log.level'], needsRestart: ['state_dir'] });

    fs.appendFileSync(kernLog, logLine('127.0.0.11', 42));
    await waitFor('a debug line', () => logText().includes('knock progress'));
    expect(logText()).toMatch(/debug: knock progress door=seq src=127\.0\.0\.11/);
    expect(logText()).toContain('config reloaded (test) without state_dir: it needs a restart of tumblerd');
    /* the running state folder is still the first one */
    expect(fs.existsSync(`${dir}/elsewhere`)).toBe(false);
  });

  it('keeps the last good config when the file does not validate', async () => {
    fs.writeFileSync(configFile, 'doors: 7\n');
    const result = await daemon.reload('test');
    expect(result.ok).toBe(false);
    expect(result.errors[0]).toContain(`${configFile}:1:`);
    fs.appendFileSync(kernLog, logLine('127.0.0.12', 42) + logLine('127.0.0.12', 196) + logLine('127.0.0.12', 69));
    await waitFor('the sequence door to open still', () => opened('seq-127.0.0.12'));
  });
});

describe('a stop during start-up', () => {
  it('waits for the start to finish, then undoes all of it', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tumbler-inproc-stop-'));
    const configFile = path.join(dir, 'tumblerd.yaml');
    const port = 20000 + ((process.pid + 17) % 20000);
    fs.writeFileSync(
      configFile,
      `state_dir: ${dir}/state\ntumbler:\n  listen: ["127.0.0.1:${port}"]\ndoors:\n  tum:\n    secret: a-long-enough-test-secret\n    open: /bin/true %IP%\n`,
      { mode: 0o600 },
    );
    const daemon = new Daemon({ configFile, config: loadConfigFile(configFile), dryRun: false, watchConfig: false });
    try {
      const starting = daemon.start();
      await daemon.stop('stopped while starting');
      await starting;
      /* the listener it had bound by then is closed again: the port binds */
      const socket = dgram.createSocket('udp4');
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind(port, '127.0.0.1', () => resolve());
      });
      socket.close();
      expect(daemon.tumblerAddresses()).toEqual([]);
    } finally {
      await daemon.stop('test over');
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
