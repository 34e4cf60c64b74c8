/**
 * A Tumbler knock under a junk flood, over a real loopback socket: a process sends well-formed
 * junk as fast as it can, more than the listener can take, so the kernel drops
 * datagrams at the socket buffer. The real client (`tumbler open`, the built CLI) sends its
 * knock a few times spaced apart: its door opens once, and the copies that got in are counted
 * as replays without a warning.
 */
import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TUMBLER, kernelDrops, sleep, spawnJunkFlood } from '../support/lab';
import { TumblerListener } from '../../src/tumbler/listener';
import { FileReplayStore } from '../../src/tumbler/fileReplayStore';
import { TumblerV1Verifier } from '../../src/tumbler/v1Verifier';

const SECRET = 'replay-flood-Secret-0123456789';

describe('a Tumbler knock under a junk flood over a real socket', () => {
  let dir: string;
  let store: FileReplayStore;
  let listener: TumblerListener;
  const children: ChildProcess[] = [];

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tumbler-replay-flood-'));
    store = new FileReplayStore(dir);
    await store.open(Date.now());
  });

  afterEach(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    listener?.close();
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('opens the door once; the copies that got in are replays, not warnings', async () => {
    if (!fs.existsSync(TUMBLER)) throw new Error(`${TUMBLER} is missing: run npm run build first`);
    const opened: string[] = [];
    const warnings: string[] = [];
    const doors = Array.from({ length: 16 }, (_, i) => ({ name: `door${i}`, secret: i === 15 ? SECRET : `other-secret-${i}` }));
    listener = new TumblerListener([new TumblerV1Verifier(doors, 1)], store, {
      grant: (g) => opened.push(`${g.door} ${g.src}`),
      info() {},
      warn: (m) => warnings.push(m),
    });
    await listener.listen([{ host: '127.0.0.1', port: 0 }]);
    const port = listener.addresses()[0].port;
    const floods = [spawnJunkFlood(port, 0, 5)];
    children.push(...floods);
    const sent = floods.map((f) => new Promise<number>((r) => {
      let out = '';
      f.stdout!.on('data', (b: Buffer) => (out += b.toString()));
      f.once('exit', () => r(Number(out)));
    }));
    await sleep(2000);
    const dropsBefore = kernelDrops(port);
    const client = spawn(process.execPath, [TUMBLER, 'open', `tumbler://${SECRET}@127.0.0.1:${port}/`], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(client);
    let clientErr = '';
    client.stderr!.on('data', (b: Buffer) => (clientErr += b.toString()));
    expect(await new Promise((r) => client.once('exit', r))).toBe(0);
    const junkSent = (await Promise.all(sent)).reduce((a, b) => a + b, 0);
    await sleep(300);
    /* the flood was more than the listener could take while the knock was sent: the kernel dropped datagrams */
    expect(kernelDrops(port) - dropsBefore).toBeGreaterThan(0);
    expect(junkSent).toBeGreaterThan(listener.counts.datagrams - 4);
    expect(opened).toEqual(['door15 127.0.0.1']);
    expect(listener.counts.accepted).toBe(1);
    expect(listener.counts.replays).toBeLessThanOrEqual(3);
    expect(warnings).toEqual([]);
    expect(clientErr).toBe('');
  }, 30_000);
});
