/**
 * A junk flood at the Tumbler port of a real tumblerd, on loopback only, bounded in count and
 * time: the daemon keeps up, stays responsive, and a real knock sent in the middle opens its
 * door within a second. Replays in every form are refused. Needs no root.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Daemon, freeUdpPort, sendUdpFrom, sleep, spawnJunkFlood, waitFor } from '../support/lab';
import { formatDatagram, knockDigest } from '../../src/tumbler/protocol';
import { COPY_WINDOW_MS } from '../../src/tumbler/send';

const FLOOD_SECONDS = 3;
const FLOOD_RATE = 5000;

describe('Tumbler port under a junk flood (loopback)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tumbler-flood-'));
  /* a port the kernel had free: no clash with a suite running beside this one */
  let port = 0;
  let daemon: Daemon;
  const output = () => daemon.output;

  beforeAll(async () => {
    port = await freeUdpPort();
    fs.writeFileSync(
      path.join(dir, 'tumblerd.yaml'),
      `state_dir: ${dir}/state\ntumbler:\n  listen: ["127.0.0.1:${port}"]\ndoors:\n` +
        Array.from({ length: 16 }, (_, i) => `  door${i}:\n    secret: secret-number-${i}\n    open: /bin/true %IP%\n    close: /bin/true %IP%\n    close_after: 1s\n`).join(''),
    );
    daemon = await new Daemon(null, path.join(dir, 'tumblerd.yaml'), ['--log-level', 'info']).started();
  });
  afterAll(async () => {
    await daemon.stop('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const send = (payload: Buffer, from: string) => sendUdpFrom(from, port, payload);

  it('opens the door for a real knock sent in the middle of the flood within a second', async () => {
    const flood = spawnJunkFlood(port, FLOOD_RATE, FLOOD_SECONDS);
    await sleep((FLOOD_SECONDS * 1000) / 2);
    const sentAt = Date.now();
    await send(Buffer.from(formatDatagram(knockDigest(sentAt, '127.0.0.200', 'secret-number-9'))), '127.0.0.200');
    await waitFor('the door to open', () => output().includes('door opened door=door9 src=127.0.0.200'), 1000).catch((err: Error) => {
      throw new Error(`${err.message}; tumblerd said:\n${output().slice(-3000)}`);
    });
    await new Promise((r) => flood.once('exit', r));
    expect(daemon.child.exitCode).toBeNull();
  });

  it('refuses the replay in every form: again, after the door closed, upper-cased, from another address', async () => {
    const knock = Buffer.from(formatDatagram(knockDigest(Date.now(), '127.0.0.201', 'secret-number-3')));
    await send(knock, '127.0.0.201');
    await waitFor('the door to open', () => output().includes('door opened door=door3 src=127.0.0.201'), 2000);
    /* sent again at once from the same source it would be a client's copy: counted as a replay, not warned about */
    await sleep(COPY_WINDOW_MS + 100);
    await send(knock, '127.0.0.201');
    await waitFor('the replay to be refused', () => output().split('Tumbler knock replayed').length - 1 === 1, 2000);
    await waitFor('the door to close', () => output().includes('door closed door=door3 src=127.0.0.201'), 3000);
    /* replay warnings are written at most once a second */
    await sleep(1100);
    await send(Buffer.from(knock.toString().toUpperCase().replace('TUMBLER1', 'TUMBLER1') + '\r\n'), '127.0.0.201');
    await waitFor('the second replay to be refused', () => output().split('Tumbler knock replayed').length - 1 === 2, 2000);
    await send(knock, '127.0.0.202');
    await sleep(300);
    expect(output().split('door opened door=door3').length - 1).toBe(1);
  });
});
