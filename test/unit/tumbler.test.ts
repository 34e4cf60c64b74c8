import { execFileSync } from 'node:child_process';
import { ReplayCache } from '../../src/tumbler/replayCache';
import { MAX_COPIES } from '../../src/tumbler/send';
import { TumblerListener } from '../../src/tumbler/listener';
import { TumblerV1Verifier } from '../../src/tumbler/v1Verifier';
import { formatDatagram, knockDigest, matchDigest, parseDatagram, replayHorizon, timeString } from '../../src/tumbler/protocol';
import { parseTumblerUrl } from '../../src/cli/tumbler';

/** An implementation that shares nothing with ours: coreutils. */
function sha256sum(text: string): string {
  return execFileSync('sha256sum', { input: text }).toString().split(' ')[0];
}

describe('Tumbler protocol v1', () => {
  it("reproduces the original distribution's example packet", () => {
    const t = Date.UTC(2004, 3, 15, 15, 54, 17);
    expect(timeString(t)).toBe('1043151554');
    expect(formatDatagram(knockDigest(t, '127.0.0.1', 'password'))).toBe(
      'TUMBLER1: 844c17eee03d848cc0a60e90f608d5ea11f417d9bf0d2c1af2b52c665245bf22',
    );
  });

  it.each([
    [Date.UTC(2026, 0, 5, 1, 5), '1260515', '192.0.2.10', 'open-pAsSwOrD'],
    [Date.UTC(2026, 10, 24, 23, 59), '126102423' + '59', '198.51.100.7', 's3cr3t with spaces'],
    [Date.UTC(2031, 8, 9, 0, 0), '131890' + '0', 'fd00:203::2', 'v6'],
  ])('matches sha256sum of TIME:IP:SECRET at %s', (t, time, ip, secret) => {
    expect(timeString(t)).toBe(time);
    expect(knockDigest(t, ip, secret).toString('hex')).toBe(sha256sum(`${time}:${ip}:${secret}`));
  });

  it('shares a TIME string between minutes of one year, so a digest is remembered until its last recurrence plus the skew', () => {
    expect(timeString(Date.UTC(2025, 0, 5, 1, 15))).toBe(timeString(Date.UTC(2025, 0, 5, 11, 5)));
    expect(replayHorizon(Date.UTC(2025, 0, 5, 1, 15), 1)).toBe(Date.UTC(2025, 0, 5, 11, 7));
    /* 11:05 itself recurs nowhere later: kept for its own minute and the skew only */
    expect(replayHorizon(Date.UTC(2025, 0, 5, 11, 5), 2)).toBe(Date.UTC(2025, 0, 5, 11, 8));
  });

  it('finds every minute of the year with the same TIME string, against a brute-force search', () => {
    const year = 2027;
    const byString = new Map<string, number>();
    for (let t = Date.UTC(year, 0, 1); t < Date.UTC(year + 1, 0, 1); t += 60_000) byString.set(timeString(t), t);
    let checked = 0;
    for (let t = Date.UTC(year, 0, 1); t < Date.UTC(year + 1, 0, 1); t += 7 * 60_000 + 13_000) {
      const minute = Math.floor(t / 60_000) * 60_000;
      expect(replayHorizon(minute, 0)).toBe(byString.get(timeString(minute))! + 60_000);
      checked++;
    }
    expect(checked).toBeGreaterThan(70_000);
  });

  it('parses exactly the magic, 64 hex digits in either case, and one trailing newline', () => {
    const d = knockDigest(0, '127.0.0.1', 'x');
    const text = formatDatagram(d);
    expect(parseDatagram(Buffer.from(text))).toEqual(d);
    expect(parseDatagram(Buffer.from(text.toUpperCase().replace('TUMBLER1', 'TUMBLER1')))).toEqual(d);
    expect(parseDatagram(Buffer.from(text + '\n'))).toEqual(d);
    expect(parseDatagram(Buffer.from(text + '\r\n'))).toEqual(d);
    for (const bad of [text + '\n\n', text + ' ', text.slice(0, -1), 'tumbler1' + text.slice(8), text.replace('TUMBLER1: ', 'TUMBLER1:'), text.slice(0, -1) + 'g', '', 'TUMBLER2: ' + text.slice(10)]) {
      expect(parseDatagram(Buffer.from(bad))).toBeNull();
    }
  });

  it('accepts the current minute and the skew either side, nothing further', () => {
    const now = Date.UTC(2026, 10, 24, 12, 30, 59);
    const doors = [{ name: 'a', secret: 'one' }, { name: 'b', secret: 'two' }];
    const at = (min: number, secret = 'two', ip = '192.0.2.1') => knockDigest(now + min * 60_000, ip, secret);
    expect(matchDigest(at(0), '192.0.2.1', doors, now, 1)).toEqual({ door: 'b', minute: Date.UTC(2026, 10, 24, 12, 30) });
    expect(matchDigest(at(-1), '192.0.2.1', doors, now, 1)?.door).toBe('b');
    expect(matchDigest(at(1, 'one'), '192.0.2.1', doors, now, 1)?.door).toBe('a');
    expect(matchDigest(at(2), '192.0.2.1', doors, now, 1)).toBeNull();
    expect(matchDigest(at(-2), '192.0.2.1', doors, now, 1)).toBeNull();
    expect(matchDigest(at(0), '192.0.2.2', doors, now, 1)).toBeNull();
    expect(matchDigest(at(0, 'three'), '192.0.2.1', doors, now, 1)).toBeNull();
  });
});

describe('the Tumbler listener', () => {
  const now = Date.UTC(2026, 10, 24, 12, 0, 30);
  function listener(replay?: ReplayCache, clock = () => now) {
    const opened: string[] = [];
    const logs: string[] = [];
    const store = replay ?? new ReplayCache(undefined, () => logs.push('saved'));
    const l = new TumblerListener([new TumblerV1Verifier([{ name: 'ssh', secret: 'pw' }], 1)], store, {
      grant: (g) => opened.push(`${g.door}<-${g.src}`),
      info: (m) => logs.push(m),
      warn: (m) => logs.push(m),
    }, clock);
    return { l, opened, logs };
  }
  const datagram = (ip: string, t = now, secret = 'pw') => Buffer.from(formatDatagram(knockDigest(t, ip, secret)));

  it('opens for the hashed address only, once, whatever the encoding of the replay', async () => {
    const { l, opened, logs } = listener();
    const d = datagram('192.0.2.7');
    await l.handle(d, '192.0.2.8'); /* sent from another address */
    expect(opened).toEqual([]);
    await l.handle(d, '192.0.2.7');
    expect(opened).toEqual(['ssh<-192.0.2.7']);
    /* the one from another address matched nothing, and says so */
    expect(logs.slice(0, 3)).toEqual(['tumbler1 knock matched no door', 'saved', 'Tumbler knock accepted']);
    await l.handle(d, '192.0.2.7');
    await l.handle(Buffer.from(d.toString().toUpperCase().replace('TUMBLER1', 'TUMBLER1') + '\n'), '192.0.2.7');
    expect(opened).toEqual(['ssh<-192.0.2.7']);
    expect(l.counts).toMatchObject({ accepted: 1, replays: 2, unmatched: 1 });
  });

  it('warns of replays at most once a second, however many come', async () => {
    const { l, logs } = listener();
    const d = datagram('192.0.2.7');
    for (let i = 0; i < 1000; i++) await l.handle(d, '192.0.2.7');
    expect(l.counts.replays).toBe(999);
    expect(logs.filter((m) => m.includes('replayed'))).toHaveLength(1);
  });

  it('counts the copies a client sends of its knock as replays without a warning; more copies, or later, are warned about', async () => {
    let t = now;
    const { l, opened, logs } = listener(undefined, () => t);
    const d = datagram('192.0.2.7');
    for (let i = 0; i < MAX_COPIES; i++, t += 200) await l.handle(d, '192.0.2.7');
    expect(opened).toEqual(['ssh<-192.0.2.7']);
    expect(l.counts).toMatchObject({ accepted: 1, replays: MAX_COPIES - 1 });
    expect(logs.filter((m) => m.includes('replayed'))).toEqual([]);
    /* one more than a client may send: someone else is replaying it */
    await l.handle(d, '192.0.2.7');
    expect(logs.filter((m) => m.includes('replayed'))).toHaveLength(1);
    /* and one from another listener, or long after the knock */
    const other = listener(l.replay as ReplayCache);
    await other.l.handle(d, '192.0.2.7');
    expect(other.logs.filter((m) => m.includes('replayed'))).toHaveLength(1);
    const { l: l2, logs: logs2 } = listener(undefined, () => t);
    await l2.handle(d, '192.0.2.7');
    t += 10_001;
    await l2.handle(d, '192.0.2.7');
    expect(logs2.filter((m) => m.includes('replayed'))).toHaveLength(1);
  });

  it('hashes IPv6 sources in their canonical form and refuses v4-mapped ones', async () => {
    const { l, opened } = listener();
    await l.handle(datagram('fd00:203::2'), 'fd00:203:0:0:0:0:0:2');
    await l.handle(datagram('::ffff:192.0.2.9'), '::ffff:192.0.2.9');
    expect(opened).toEqual(['ssh<-fd00:203::2']);
  });

  it('drops junk without a word', () => {
    const { l, opened, logs } = listener();
    for (const junk of ['', 'x'.repeat(2000), 'TUMBLER1: ' + 'z'.repeat(64), 'GET / HTTP/1.0\r\n\r\n']) l.handle(Buffer.from(junk), '192.0.2.7');
    expect(opened).toEqual([]);
    expect(logs).toEqual([]);
    /* the one with the magic is parsed, and fails there */
    expect(l.counts).toMatchObject({ dropped: 3, unmatched: 1 });
  });

  it('remembers accepted knocks across a restart through the saved cache', async () => {
    const first = listener();
    await first.l.handle(datagram('192.0.2.7'), '192.0.2.7');
    const saved = JSON.parse(JSON.stringify((first.l.replay as ReplayCache).toJSON()));
    const restored = new ReplayCache();
    restored.load(saved, now);
    const second = listener(restored);
    await second.l.handle(datagram('192.0.2.7'), '192.0.2.7');
    expect(second.opened).toEqual([]);
    expect(second.l.counts.replays).toBe(1);
  });

  it('refuses new knocks rather than forget old ones when the cache is full', async () => {
    const { l, opened } = listener(new ReplayCache(1));
    await l.handle(datagram('192.0.2.7'), '192.0.2.7');
    await l.handle(datagram('192.0.2.8'), '192.0.2.8');
    expect(opened).toEqual(['ssh<-192.0.2.7']);
  });
});

describe('tumbler URLs', () => {
  it('reads host, port and secret', () => {
    expect(parseTumblerUrl('tumbler://host.example/')).toEqual({ host: 'host.example', port: 8675, secret: null });
    expect(parseTumblerUrl('tumbler://p%40ss@[fd00::1]:9000/')).toEqual({ host: 'fd00::1', port: 9000, secret: 'p@ss' });
    expect(() => parseTumblerUrl('http://host/')).toThrow(/tumbler:\/\//);
    expect(() => parseTumblerUrl('nonsense')).toThrow(/not a URL/);
  });
});

describe('the v1 verifier, first datagram of a source in a minute and later ones (indexed)', () => {
  const now = Date.UTC(2026, 10, 24, 12, 0, 30);
  const doors = Array.from({ length: 16 }, (_, i) => ({ name: `d${i}`, secret: `s${i}` }));
  const from = (address: string) => ({ address, family: 4 as const, port: 40000 });
  const knock = (ip: string, secret: string, t = now) => Buffer.from(formatDatagram(knockDigest(t, ip, secret)));

  it('grants sources of every length one after another, and secrets beyond ASCII (hash inputs are reused as bytes)', () => {
    const mixed = [{ name: 'plain', secret: 'plain-secret' }, { name: 'utf8', secret: 'pässwörd-ß-秘密' }];
    const v = new TumblerV1Verifier(mixed, 1);
    const sources = ['1.2.3.4', '10.20.30.40', '192.168.100.200', '1.2.3.5', 'fd00:203::2', 'fd00:203:0:1:2:3:4:5'];
    for (const ip of sources) {
      for (const door of mixed) {
        const fam = ip.includes(':') ? (6 as const) : (4 as const);
        const verdict = v.verify(knock(ip, door.secret, now - 60_000), { address: ip, family: fam, port: 1 }, now);
        expect(verdict.kind === 'grant' && verdict.grant.door).toBe(door.name);
        /* the bytes written for this source must not let its digest verify for the next one of the same length */
        expect(v.verify(knock(ip, door.secret), { address: ip.replace(/.$/, (c) => (c === '9' ? '8' : '9')), family: fam, port: 1 }, now).kind).toBe('junk');
      }
    }
  });

  it('grants the same knocks and refuses the same junk on either path', () => {
    const v = new TumblerV1Verifier(doors, 10);
    for (let round = 0; round < 3; round++) {
      /* another source's knock, a knock outside the skew, junk: refused every time */
      expect(v.verify(knock('192.0.2.2', 's3'), from('192.0.2.1'), now).kind).toBe('junk');
      expect(v.verify(knock('192.0.2.1', 's3', now + 11 * 60_000), from('192.0.2.1'), now).kind).toBe('junk');
      expect(v.verify(Buffer.from('TUMBLER1: ' + 'ab'.repeat(32)), from('192.0.2.1'), now).kind).toBe('junk');
      const ok = v.verify(knock('192.0.2.1', 's15', now - 10 * 60_000), from('192.0.2.1'), now);
      expect(ok).toMatchObject({ kind: 'grant', grant: { door: 'd15', src: '192.0.2.1' } });
    }
  });

  it('keeps granting under a flood of ever-new sources at the largest skew', () => {
    const v = new TumblerV1Verifier(doors, 10);
    const junk = Buffer.from('TUMBLER1: ' + 'cd'.repeat(32));
    for (let i = 0; i < 3000; i++) {
      const ip = `10.0.${i >> 8}.${i & 255}`;
      v.verify(junk, from(ip), now);
      v.verify(junk, from(ip), now);
    }
    expect(v.verify(knock('10.0.0.1', 's0'), from('10.0.0.1'), now).kind).toBe('grant');
    expect(v.verify(knock('10.0.11.183', 's7'), from('10.0.11.183'), now).kind).toBe('grant');
  });
});
