/**
 * The flat replay table: the same answers as a Map of ids under random claims, releases and
 * expiries (probe chains, removals that shift entries back, growth), bounded, and a full table
 * refuses rather than forgets. The durable store around it: ids of every kind survive a restart
 * and a compaction, and a version-1 state file's entries reach the log.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ReplayTable, fingerprintOf } from '../../src/tumbler/replayTable';
import { FileReplayStore } from '../../src/tumbler/fileReplayStore';

const hex = (i: number) => i.toString(16).padStart(64, '0');

describe('the replay table', () => {
  it('answers as a Map would under random claims, releases and expiries', () => {
    const table = new ReplayTable(5000);
    const model = new Map<string, number>();
    let now = 1_000_000;
    let seed = 7;
    const rand = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n);
    for (let step = 0; step < 30_000; step++) {
      const key = rand(3) === 0 ? `door${rand(50)}@${rand(400)}` : hex(rand(20_000));
      const op = rand(10);
      if (op < 7) {
        const until = now + 1 + rand(5000);
        const known = model.get(key);
        const expected = known !== undefined && known > now ? 'replay' : 'fresh';
        const full = expected === 'fresh' && known === undefined && model.size >= 5000;
        if (full) for (const [k, u] of model) if (u <= now) model.delete(k);
        const verdict = table.claim(fingerprintOf(key), until, now);
        if (full && model.size >= 5000) expect(verdict).toBe('full');
        else {
          expect(verdict).toBe(expected);
          if (verdict === 'fresh') model.set(key, until);
        }
      } else if (op < 8) {
        table.release(fingerprintOf(key));
        model.delete(key);
      } else if (op < 9) {
        now += rand(100);
      } else {
        table.prune(now);
        for (const [k, u] of model) if (u <= now) model.delete(k);
        expect(table.size).toBe(model.size);
      }
      if (step % 997 === 0) for (const [k, u] of model) expect(table.expiryOf(fingerprintOf(k))).toBe(u);
    }
  });

  it('is bounded: when full it refuses new ids and keeps every live one; expired ones make room', () => {
    const table = new ReplayTable(1000);
    const now = 5_000_000;
    for (let i = 0; i < 1000; i++) expect(table.claim(fingerprintOf(hex(i)), i < 10 ? now + 100 : now + 1e6, now)).toBe('fresh');
    expect(table.claim(fingerprintOf(hex(5000)), now + 1e6, now)).toBe('full');
    for (let i = 0; i < 1000; i++) expect(table.claim(fingerprintOf(hex(i)), now + 1e6, now)).toBe('replay');
    expect(table.size).toBe(1000);
    /* ten expire: ten new ones fit, the eleventh does not */
    for (let i = 0; i < 10; i++) expect(table.claim(fingerprintOf(hex(6000 + i)), now + 1e6, now + 200)).toBe('fresh');
    expect(table.claim(fingerprintOf(hex(7000)), now + 1e6, now + 200)).toBe('full');
    expect(table.size).toBe(1000);
    /* two arrays of 2,048 slots: not a byte per id more */
    expect(table.bytes).toBe(2048 * 24);
  });

  it('holds a million ids outside the JavaScript heap', () => {
    const buffersBefore = process.memoryUsage().arrayBuffers;
    const table = new ReplayTable();
    const fp = new Int32Array(4);
    let fresh = 0;
    for (let i = 0; i < 1_000_000; i++) {
      for (let w = 0; w < 4; w++) fp[w] = (Math.random() * 2 ** 32) | 0;
      if (table.claim(fp, 2e12, 1e12) === 'fresh') fresh++;
    }
    expect(fresh).toBe(1_000_000);
    expect(table.size).toBe(1_000_000);
    expect(table.bytes).toBe((1 << 21) * 24);
    /* in ArrayBuffers, which the collector does not walk */
    expect(process.memoryUsage().arrayBuffers - buffersBefore).toBeGreaterThan(0.9 * table.bytes);
    expect(table.claim(fp, 2e12, 1e12)).toBe('replay');
    crypto.randomFillSync(fp);
    expect(table.claim(fp, 2e12, 1e12)).toBe('full');
  });
});

describe('the durable store on the table', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tumbler-replay-table-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('keeps ids of every kind across a compaction and a restart, and imports a version-1 state file into the log', async () => {
    const now = Date.now();
    const until = now + 3_600_000;
    /* 30,000 dead lines: the store compacts as it opens */
    fs.writeFileSync(path.join(dir, 'replay.log'), Array.from({ length: 30_000 }, (_, i) => `${hex(i)} ${now - 1}\n`).join(''));
    const store = new FileReplayStore(dir);
    const ids = [hex(1), 'ssh@59012345', 'grant id with spaces % and\nnewline', 'ÄÖÜ'];
    expect(await store.open(now, { [hex(99)]: until, [hex(98)]: now - 5, 'not hex': until })).toEqual({ loaded: 1, skipped: 30_002 });
    for (const id of ids) expect(await store.claim(id, until, now)).toBe('fresh');
    for (let waited = 0; store.io.compactions === 0 && waited < 20_000; waited += 50) await new Promise((r) => setTimeout(r, 50));
    expect(store.io.compactions).toBe(1);
    await store.close();
    /* only live lines are left: the imported one and the claims */
    expect(fs.readFileSync(store.file, 'latin1').split('\n').filter(Boolean)).toHaveLength(1 + ids.length);
    const again = new FileReplayStore(dir);
    expect(await again.open(now)).toEqual({ loaded: 1 + ids.length, skipped: 0 });
    for (const id of [...ids, hex(99)]) expect(await again.claim(id, until, now)).toBe('replay');
    expect(await again.claim(hex(98), until, now)).toBe('fresh');
    await again.close();
  });
});
