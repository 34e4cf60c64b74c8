/**
 * Log sources on a real file system: the file follower through rename rotation, copytruncate,
 * a missing file and half-written lines, losing nothing and reading nothing twice; the
 * journald source through a journalctl that dies.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FileSource } from '../../src/sources/fileSource';
import { JournaldSource } from '../../src/sources/journaldSource';
import { LineSplitter, MAX_LINE_BYTES, textLines } from '../../src/sources/lineSplitter';
import { waitFor } from '../support/lab';
import { FIXTURES } from '../support/samples';

describe('the line splitter', () => {
  it('joins lines split across chunks, flushes the last one, and drops overlong ones', () => {
    const lines: string[] = [];
    let dropped = 0;
    const s = new LineSplitter(textLines((l) => lines.push(l)), () => dropped++);
    s.push(Buffer.from('one\ntw'));
    s.push(Buffer.from('o\r\nthr'));
    s.push(Buffer.alloc(MAX_LINE_BYTES + 10, 'x'));
    s.push(Buffer.from('\nfour'));
    s.flush();
    expect(lines).toEqual(['one', 'two', 'four']);
    expect(s.overlong).toBe(1);
    expect(dropped).toBe(1);
  });
});

describe('the line splitter over any chunking', () => {
  it('yields the same lines whatever the chunk boundaries', () => {
    const fc = require('fast-check') as typeof import('fast-check');
    fc.assert(
      fc.property(fc.array(fc.constantFrom('a', 'b', '\n', '\r', 'x'.repeat(200)), { maxLength: 60 }), fc.array(fc.nat(3000), { maxLength: 8 }), (parts, cuts) => {
        const text = parts.join('');
        const bytes = Buffer.from(text, 'latin1');
        const lines: string[] = [];
        const s = new LineSplitter(textLines((l) => lines.push(l)));
        let at = 0;
        for (const c of [...cuts.map((c) => c % (bytes.length + 1))].sort((a, b) => a - b)) {
          s.push(bytes.subarray(at, c));
          at = c;
        }
        s.push(bytes.subarray(at));
        s.flush();
        const pieces = text.split('\n');
        if (pieces[pieces.length - 1] === '') pieces.pop();
        const expected = pieces.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
        expect(lines).toEqual(expected);
      }),
      { numRuns: 500 },
    );
  });
});

describe('the file follower', () => {
  let dir: string;
  let file: string;
  let got: string[];
  let source: FileSource;
  let truncations = 0;
  const hooks = () => ({
    line: (l: string) => got.push(l),
    overlong: () => undefined,
    info: (m: string) => (truncations += m.includes('truncated') ? 1 : 0),
    warn: () => undefined,
  });
  const append = (text: string) => fs.appendFileSync(file, text);

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tumbler-follow-'));
    file = path.join(dir, 'kern.log');
    got = [];
    truncations = 0;
  });
  afterEach(() => {
    source?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('starts at the end, then reads what is appended, whole lines only', async () => {
    append('old 1\nold 2\n');
    source = new FileSource(file, hooks(), 100);
    source.start();
    append('new 1\nnew ');
    await waitFor('the first new line', () => got.length === 1);
    append('2\n');
    await waitFor('the completed line', () => got.length === 2);
    expect(got).toEqual(['new 1', 'new 2']);
  });

  it('loses nothing and reads nothing twice across rename rotations and copytruncate', async () => {
    fs.writeFileSync(file, '');
    source = new FileSource(file, hooks(), 50);
    source.start();
    const expected: string[] = [];
    let fd = fs.openSync(file, 'a');
    for (let round = 0; round < 6; round++) {
      for (let i = 0; i < 50; i++) {
        const line = `round ${round} line ${i}`;
        expected.push(line);
        fs.writeSync(fd, line + '\n');
      }
      if (round % 2 === 0) {
        /* logrotate "create": rename; the writer keeps its old file a moment, then reopens */
        fs.renameSync(file, `${file}.${round}`);
        fs.writeSync(fd, `late ${round}\n`);
        expected.push(`late ${round}`);
        fs.closeSync(fd);
        fd = fs.openSync(file, 'a');
      } else {
        /* logrotate "copytruncate", once the follower has read what is there; the writer goes on
         * after the follower has had a moment (the window every follower has: see fileSource.ts) */
        await waitFor('the round to be read', () => got.length === expected.length);
        fs.copyFileSync(file, `${file}.${round}`);
        fs.truncateSync(file, 0);
        await waitFor('the truncation to be noticed', () => truncations === Math.ceil(round / 2));
      }
    }
    fs.writeSync(fd, 'last\n');
    expected.push('last');
    fs.closeSync(fd);
    await waitFor('every line', () => got.length >= expected.length, 5000);
    expect(got).toEqual(expected);
  });

  it('waits for a file that does not exist yet, and reads it whole when it appears', async () => {
    source = new FileSource(path.join(dir, 'later', 'kern.log'), hooks(), 50);
    source.start();
    fs.mkdirSync(path.join(dir, 'later'));
    fs.writeFileSync(path.join(dir, 'later', 'kern.log'), 'first\nsecond\n');
    await waitFor('both lines', () => got.length === 2, 3000);
    expect(got).toEqual(['first', 'second']);
  });
});

describe('the journald source', () => {
  it('reads journalctl JSON and starts journalctl again when it dies', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tumbler-journal-'));
    const fake = path.join(dir, 'journalctl');
    /* prints the recorded records, then dies; the arguments must be the ones that follow kernel messages */
    fs.writeFileSync(fake, `#!/bin/sh\n[ "$*" = "-k -f -o json -n 0 --no-pager SYSLOG_FACILITY=0" ] || exit 3\ncat ${path.join(FIXTURES, 'journal.json')}\nexit 1\n`, { mode: 0o755 });
    const got: string[] = [];
    const warnings: string[] = [];
    const source = new JournaldSource({ line: (l) => got.push(l), overlong: () => undefined, info: () => undefined, warn: (m) => warnings.push(m) }, fake);
    try {
      source.start();
      await waitFor('two runs of journalctl', () => got.length >= 8, 5000);
      expect(warnings[0]).toMatch(/exited \(1\); restarting in 250ms/);
      expect(got[0]).toContain('"_TRANSPORT":"kernel"');
    } finally {
      source.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the kmsg source', () => {
  it('skips records it read before a restart of its reader, counts the ones the kernel overwrote, and drops old ones', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tumbler-kmsg-'));
    /* a stand-in device: cat reads it to the end and exits, as on EPIPE, and is started again */
    const device = path.join(dir, 'kmsg');
    fs.writeFileSync(device, '4,10,1000,-;old\n4,11,5000000,-;first\n SUBSYSTEM=net\n4,12,5000001,-;second\n4,15,5000002,-;after a gap\n');
    const got: string[] = [];
    const warnings: string[] = [];
    const { KmsgSource } = await import('../../src/sources/kmsgSource');
    const source = new KmsgSource(device, { line: (l) => got.push(l), overlong: () => undefined, info: () => undefined, warn: (m) => warnings.push(m) }, 2_000_000);
    try {
      source.start();
      await waitFor('a restart of the reader', () => warnings.some((w) => w.includes('restarting')), 3000);
      await new Promise((r) => setTimeout(r, 400));
      expect(got).toEqual(['4,11,5000000,-;first', '4,12,5000001,-;second', '4,15,5000002,-;after a gap']);
      expect(source.lost).toBe(2);
    } finally {
      source.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
