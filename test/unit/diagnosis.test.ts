/**
 * Tumbler knocks that open nothing say why: the usual mistakes are recognised from the datagram
 * alone, and the log lines about them stay few whatever an attacker sends.
 */
import { ReplayCache } from '../../src/tumbler/replayCache';
import { TumblerListener } from '../../src/tumbler/listener';
import { TumblerV1Verifier } from '../../src/tumbler/v1Verifier';
import { UnmatchedKnocks, addressSpellings, describeCause, diagnoseV1 } from '../../src/tumbler/diagnosis';
import { formatDatagram, knockDigest } from '../../src/tumbler/protocol';

const now = Date.UTC(2026, 10, 25, 11, 0, 30);
const MIN = 60_000;
const doors = [
  { name: 'ssh', secret: 'open-sesame' },
  { name: 'vpn', secret: 'another one' },
];

describe('diagnosing a v1 knock that matched nothing', () => {
  it.each([
    [5, 'clock'],
    [-37, 'clock'],
    [60, 'clock'],
    [-300, 'clock'],
    [330 + 1, 'clock'],
  ])('finds a clock %i minutes off', (offset, cause) => {
    const d = diagnoseV1(knockDigest(now + offset * MIN, '198.51.100.4', 'another one'), '198.51.100.4', doors, now, 1);
    expect(d).toEqual({ cause, door: 'vpn', offsetMinutes: offset });
  });

  it('says a whole-hour offset is likely a time zone', () => {
    const text = describeCause({ cause: 'clock', door: 'ssh', offsetMinutes: -60 }, 1);
    expect(text).toContain('60 minute(s) behind');
    expect(text).toContain('time zone');
  });

  it('finds another spelling of the address', () => {
    expect(diagnoseV1(knockDigest(now, '::ffff:198.51.100.4', 'open-sesame'), '198.51.100.4', doors, now, 1)).toEqual({
      cause: 'address-spelling', door: 'ssh', hashedAs: '::ffff:198.51.100.4',
    });
    const full = 'fd00:0203:0000:0000:0000:0000:0000:0002';
    expect(diagnoseV1(knockDigest(now, full, 'open-sesame'), 'fd00:203::2', doors, now, 1)).toMatchObject({ cause: 'address-spelling', hashedAs: full });
    expect(addressSpellings('fd00:203::2')).toContain('FD00:203::2');
  });

  it('finds a secret with a trailing newline', () => {
    expect(diagnoseV1(knockDigest(now - MIN, '198.51.100.4', 'open-sesame\n'), '198.51.100.4', doors, now, 1)).toEqual({ cause: 'secret-whitespace', door: 'ssh' });
  });

  it('cannot tell a wrong secret from a NAT address, and says both', () => {
    expect(diagnoseV1(knockDigest(now, '198.51.100.4', 'wrong'), '198.51.100.4', doors, now, 1)).toEqual({ cause: 'unknown' });
    expect(diagnoseV1(knockDigest(now, '10.0.0.8', 'open-sesame'), '198.51.100.4', doors, now, 1)).toEqual({ cause: 'unknown' });
    expect(describeCause({ cause: 'unknown' }, 1)).toMatch(/wrong secret.*--from PUBLIC-IP/);
  });
});

describe('counting unmatched knocks', () => {
  it('reports a source at most once a minute, with what it sent meanwhile', () => {
    const u = new UnmatchedKnocks();
    expect(u.note('a', 0)).toEqual({ src: 'a', datagrams: 1, suppressed: 0 });
    for (let i = 1; i <= 9; i++) expect(u.note('a', i * 1000)).toBeNull();
    expect(u.note('a', 60_000)).toEqual({ src: 'a', datagrams: 10, suppressed: 0 });
  });

  it('reports at most perMinute sources a minute, and keeps at most maxSources', () => {
    const u = new UnmatchedKnocks(100, 60_000, 5);
    const reports = [];
    for (let i = 0; i < 1000; i++) reports.push(u.note(`10.0.${i >> 8}.${i & 255}`, 1000 + i));
    expect(reports.filter(Boolean)).toHaveLength(5);
    expect(u.size).toBe(100);
    expect(u.note('192.0.2.1', 61_000)).toEqual({ src: '192.0.2.1', datagrams: 1, suppressed: 995 });
  });
});

describe('the listener on unmatched knocks', () => {
  function setup() {
    const lines: { m: string; meta?: Record<string, unknown> }[] = [];
    let clock = now;
    const l = new TumblerListener([new TumblerV1Verifier(doors, 1)], new ReplayCache(), {
      grant: () => lines.push({ m: 'GRANT' }),
      info: (m, meta) => lines.push({ m, meta }),
      warn: (m, meta) => lines.push({ m, meta }),
    }, () => clock);
    return { l, lines, tick: (ms: number) => (clock += ms) };
  }
  const dgram = (t: number, ip: string, secret: string) => Buffer.from(formatDatagram(knockDigest(t, ip, secret)));

  it('logs the likely cause at info, once per source a minute, and opens nothing', async () => {
    const { l, lines, tick } = setup();
    const late = dgram(now - 10 * MIN, '198.51.100.4', 'open-sesame');
    for (let i = 0; i < 50; i++) await l.handle(late, '198.51.100.4');
    expect(lines).toHaveLength(1);
    expect(lines[0].m).toBe('tumbler1 knock matched no door');
    expect(lines[0].meta).toMatchObject({ src: '198.51.100.4', datagrams: 1 });
    expect(String(lines[0].meta!.likely)).toContain("door ssh's secret, but the client's clock is 10 minute(s) behind");
    tick(MIN);
    await l.handle(late, '198.51.100.4');
    expect(lines[1].meta).toMatchObject({ datagrams: 50 });
    expect(l.counts.unmatched).toBe(51);
  });

  it('stays quiet about datagrams that are not even well formed', async () => {
    const { l, lines } = setup();
    await l.handle(Buffer.from('TUMBLER1: ' + 'zz'.repeat(32)), '198.51.100.4');
    expect(lines).toEqual([]);
  });
});
