/**
 * The state seam on real files: the replay log costs one small append per accepted knock however
 * big the cache (measured by the kernel's own count of bytes written, /proc/self/io), survives a
 * restart and a torn last line, compacts in the background without losing claims made meanwhile,
 * and remembers a knock made just before New Year for as long as it can verify. The doors file is
 * read entry by entry and written once for many changes.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FileReplayStore } from '../../src/tumbler/fileReplayStore';
import { StateStore } from '../../src/doors/stateStore';
import { TumblerListener } from '../../src/tumbler/listener';
import { TumblerV1Verifier } from '../../src/tumbler/v1Verifier';
import { formatDatagram, knockDigest } from '../../src/tumbler/protocol';
import { SavedDoor } from '../../src/doors/dispatcher';

const hex = (i: number) => i.toString(16).padStart(64, '0');
/** Bytes this process has handed to write(2) and friends so far: the kernel's count. */
const wchar = () => Number(/wchar: (\d+)/.exec(fs.readFileSync('/proc/self/io', 'utf8'))![1]);

describe('the replay log', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tumbler-doors-replay-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('an accepted knock with 100,000 entries in the cache writes one line, not the cache', async () => {
    const now = Date.now();
    const until = now + 3_600_000;
    fs.writeFileSync(path.join(dir, 'replay.log'), Array.from({ length: 100_000 }, (_, i) => `${hex(i)} ${until}\n`).join(''));
    const store = new FileReplayStore(dir);
    expect((await store.open(now)).loaded).toBe(100_000);
    const sizeBefore = fs.statSync(store.file).size;
    const before = wchar();
    expect(await store.claim(hex(1e9), until, now)).toBe('fresh');
    const written = wchar() - before;
    expect(store.io).toMatchObject({ appends: 1, syncs: 1, compactions: 0 });
    expect(fs.statSync(store.file).size - sizeBefore).toBe(store.io.appendedBytes);
    expect(store.io.appendedBytes).toBe(64 + 1 + String(until).length + 1);
    /* the kernel agrees: well under a page for the knock, against 7.9 MB for the whole cache */
    expect(written).toBeLessThan(1024);
    expect(sizeBefore).toBeGreaterThan(7_000_000);
    expect(await store.claim(hex(5), until, now)).toBe('replay');
    await store.close();
  });

  it('remembers claims across a restart and cuts off a torn last line', async () => {
    const now = Date.now();
    const a = new FileReplayStore(dir);
    await a.open(now);
    await a.claim(hex(1), now + 60_000, now);
    await a.claim(hex(2), now - 1, now - 10); /* expired by the time it is read again */
    await a.close();
    fs.appendFileSync(a.file, `${hex(3)} 99`); /* a crash in the middle of a line */
    const b = new FileReplayStore(dir);
    expect(await b.open(now)).toEqual({ loaded: 1, skipped: 2 });
    expect(await b.claim(hex(1), now + 60_000, now)).toBe('replay');
    expect(await b.claim(hex(4), now + 60_000, now)).toBe('fresh');
    await b.close();
    expect(fs.readFileSync(a.file, 'latin1').split('\n').filter(Boolean).every((l) => /^[0-9a-f]{64} \d+$/.test(l))).toBe(true);
  });

  it('compacts in the background and loses no claim made while it runs', async () => {
    const now = Date.now();
    /* 60,000 dead lines and 1,000 live ones: compaction starts with the first claim */
    const lines = Array.from({ length: 60_000 }, (_, i) => `${hex(i)} ${now - 1}\n`);
    for (let i = 0; i < 1000; i++) lines.push(`${hex(100_000 + i)} ${now + 3_600_000}\n`);
    fs.writeFileSync(path.join(dir, 'replay.log'), lines.join(''));
    const store = new FileReplayStore(dir);
    await store.open(now);
    const claims = await Promise.all(Array.from({ length: 500 }, (_, i) => store.claim(hex(200_000 + i), now + 3_600_000, now)));
    expect(claims.every((c) => c === 'fresh')).toBe(true);
    /* close() abandons a copy under way (a stop must not wait for it): let this one finish first */
    for (let waited = 0; store.io.compactions === 0 && waited < 20_000; waited += 50) await new Promise((r) => setTimeout(r, 50));
    await store.close();
    expect(store.io.compactions).toBe(1);
    /* claims were grouped: far fewer fsyncs than knocks */
    expect(store.io.syncs).toBeLessThan(500);
    const again = new FileReplayStore(dir);
    await again.open(now);
    expect(again.size).toBe(1500);
    /* 61,000 lines before; now the live ones (a claim made during the copy may be in it twice) */
    expect(fs.statSync(again.file).size).toBeLessThanOrEqual(2 * 1500 * 79);
    for (let i = 0; i < 500; i += 50) expect(await again.claim(hex(200_000 + i), now + 3_600_000, now)).toBe('replay');
    await again.close();
  });

  it('a knock sent just before New Year cannot be replayed in the new year (test clock, across a restart)', async () => {
    let now = Date.UTC(2026, 11, 31, 23, 59, 40);
    const datagram = Buffer.from(formatDatagram(knockDigest(now, '192.0.2.7', 'a-long-random-secret')));
    const opened: number[] = [];
    const listenerOn = async () => {
      const store = new FileReplayStore(dir);
      await store.open(now);
      const l = new TumblerListener([new TumblerV1Verifier([{ name: 'ssh', secret: 'a-long-random-secret' }], 1)], store, {
        grant: () => opened.push(now), info() {}, warn() {},
      }, () => now);
      return { l, store };
    };
    const first = await listenerOn();
    await first.l.handle(datagram, '192.0.2.7');
    expect(opened).toHaveLength(1);
    await first.store.close();
    for (const t of [Date.UTC(2027, 0, 1, 0, 0, 0), Date.UTC(2027, 0, 1, 0, 0, 30), Date.UTC(2027, 0, 1, 0, 0, 59)]) {
      now = t;
      const { l, store } = await listenerOn();
      await l.handle(datagram, '192.0.2.7');
      /* the digest still verifies (23:59 is within the skew of 00:00), and is known */
      expect(l.counts).toMatchObject({ replays: 1, accepted: 0 });
      await store.close();
    }
    expect(opened).toHaveLength(1);
  });
});

describe('the doors file', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tumbler-doors-state-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));
  const door = (src: string, over: Record<string, unknown> = {}) => ({
    door: 'ssh', src, family: 4, via: 'sequence', user: null, openedAt: 1, closesAt: Date.now() + 60_000,
    close: [['/bin/true', src]], allow: [], commandTimeoutMs: 1000, closeAfterMs: 60_000, ...over,
  });

  it('a temporary file left by a crash, or a symlink planted in its place, is replaced and never written through', async () => {
    const victim = path.join(dir, 'victim');
    fs.writeFileSync(victim, 'untouched');
    const tmp = path.join(dir, `.doors.json.${process.pid}.tmp`);
    fs.symlinkSync(victim, tmp);
    const store = new StateStore(dir, () => [door('192.0.2.9', { closeStarted: false, closeFailingSince: null, lastCloseError: null }) as unknown as SavedDoor]);
    await store.save();
    expect(fs.readFileSync(victim, 'utf8')).toBe('untouched');
    expect(store.load().doors.map((d) => d.src)).toEqual(['192.0.2.9']);
    fs.writeFileSync(tmp, 'half a file from a crash');
    await store.save();
    expect(fs.existsSync(tmp)).toBe(false);
    expect(store.load().doors).toHaveLength(1);
  });

  it('one hostile entry among good ones: reported and skipped, the good doors kept', () => {
    fs.writeFileSync(path.join(dir, 'doors.json'), JSON.stringify({
      version: 2, boot: 'b1',
      doors: [door('192.0.2.1'), door('192.0.2.2', { commandTimeoutMs: -1 }), door('192.0.2.3', { close: [['/bin/true', 'a\0b']] }), door('192.0.2.4', { closesAt: 1e308 }), 'junk'],
    }));
    const loaded = new StateStore(dir).load();
    expect(loaded.bootId).toBe('b1');
    expect(loaded.doors.map((d) => d.src)).toEqual(['192.0.2.1', '192.0.2.2', '192.0.2.4']);
    expect(loaded.problems).toEqual([
      expect.stringContaining('door entry 1: commandTimeoutMs -1 is out of range'),
      expect.stringContaining('door entry 2 skipped: close holds a command'),
      expect.stringContaining('door entry 3: closesAt 1e+308 is out of range'),
      expect.stringContaining('door entry 4 skipped: not an object'),
    ]);
  });

  it('a file that is not JSON is moved aside and said so; a version-1 state.json is taken over', () => {
    fs.writeFileSync(path.join(dir, 'doors.json'), '{"version": 2, "doors": [');
    const broken = new StateStore(dir).load();
    expect(broken.doors).toEqual([]);
    expect(broken.problems[0]).toMatch(/is unreadable .* moved to .*doors\.json\.corrupt-/);
    fs.writeFileSync(path.join(dir, 'state.json'), JSON.stringify({ version: 1, doors: [door('192.0.2.9')], replay: { [hex(7)]: Date.now() + 1000 } }));
    const legacy = new StateStore(dir).load();
    expect(legacy.doors.map((d) => d.src)).toEqual(['192.0.2.9']);
    expect(Object.keys(legacy.legacyReplay)).toEqual([hex(7)]);
  });

  it('writes many changes asked for at once as few writes, each with every change before it', async () => {
    let doors: SavedDoor[] = [];
    const store = new StateStore(dir, () => doors, 'boot-x');
    const writes: Promise<void>[] = [];
    for (let i = 0; i < 50; i++) {
      doors = [...doors, door(`192.0.2.${i + 1}`) as unknown as SavedDoor];
      writes.push(store.save());
    }
    await Promise.all(writes);
    const onDisk = JSON.parse(fs.readFileSync(store.file, 'utf8'));
    expect(onDisk).toMatchObject({ version: 2, boot: 'boot-x' });
    expect(onDisk.doors).toHaveLength(50);
    expect((fs.statSync(store.file).mode & 0o777).toString(8)).toBe('600');
  });
});
