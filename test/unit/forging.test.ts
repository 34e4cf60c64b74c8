/**
 * The pure parts of "knocks nobody on the host can forge": the host check, retransmits, time that
 * follows the clock and the zone, and the warnings --check gives. The attacks themselves run for
 * real in test/e2e/forging.test.ts.
 */
import { ConfigError, parseConfig } from '../../src/config/load';
import { KnockPipeline } from '../../src/knock/pipeline';
import { DEFAULT_FLAGS, parseSequence } from '../../src/knock/sequence';
import { KnockDoor, KnockTracker } from '../../src/knock/tracker';
import { PacketEvent, TCP_FLAGS } from '../../src/model/packet';
import { HostFilter, HostView, hostRefusal, staticView } from '../../src/netfilter/hostFilter';
import { LogLineParser } from '../../src/netfilter/logLine';
import { wallClockTime } from '../../src/netfilter/zoneTime';
import { accidentalSequence } from '../../src/preflight/forgeryChecks';
import { kmsgWallTime } from '../../src/sources/kmsgSource';
import { fixtureLines } from '../support/samples';

const VIEW: HostView = {
  interfaces: new Set(['lo', 'eth0', 'wg0']),
  addresses: new Set(['127.0.0.1', '::1', '192.0.2.1', '2001:db8::1']),
  loopback: new Set(['lo']),
};

function ev(over: Partial<PacketEvent> = {}): PacketEvent {
  return {
    time: 1_000_000, src: '198.51.100.7', family: 4, dst: '192.0.2.1', proto: 'tcp', sport: 40000, dport: 42,
    flags: TCP_FLAGS.SYN, iface: 'eth0', out: '', prefix: 'FIREWALL: ', ...over,
  };
}

describe('the packet must be for this host', () => {
  it.each([
    ['a knock from elsewhere to our address, on our interface', {}, null],
    ['sent by this host (IN= empty)', { iface: '', out: 'eth0' }, 'outgoing'],
    ['routed through (OUT= set)', { out: 'eth1' }, 'forwarded'],
    ["another namespace's interface", { iface: 'veth9' }, 'foreign interface'],
    ['loopback with a foreign source (a user namespace forging IN=lo)', { iface: 'lo', dst: '127.0.0.1' }, 'loopback'],
    ['an address that is not ours', { dst: '203.0.113.9' }, 'foreign address'],
    ['from one of our own addresses', { src: '192.0.2.1' }, 'own source'],
  ])('%s', (_what, over, why) => {
    expect(hostRefusal(ev(over), VIEW)).toBe(why);
  });

  it('interfaces: narrows it further; without a view only the direction counts (scan of a foreign log)', () => {
    expect(hostRefusal(ev({ iface: 'wg0' }), VIEW, new Set(['eth0']))).toBe('interface not listed');
    expect(hostRefusal(ev({ iface: 'eth0' }), VIEW, new Set(['eth0']))).toBeNull();
    expect(hostRefusal(ev({ iface: 'veth9', dst: '203.0.113.9' }), null)).toBeNull();
    expect(hostRefusal(ev({ out: 'eth1' }), null)).toBe('forwarded');
    const given = staticView([], ['192.0.2.1']);
    expect(hostRefusal(ev({ iface: 'anything' }), given)).toBeNull();
    expect(hostRefusal(ev({ dst: '192.0.2.2' }), given)).toBe('foreign address');
    expect(() => staticView([], ['192.0.2.1;id'])).toThrow(/not an IP address/);
  });

  it('reads the interfaces again when a packet names one it does not know, at most once a second', () => {
    let reads = 0;
    let now = 0;
    let view = VIEW;
    const f = new HostFilter(null, () => (reads++, view), () => now);
    view = { ...VIEW, interfaces: new Set([...VIEW.interfaces!, 'eth9']), addresses: new Set([...VIEW.addresses!, '192.0.2.99']) };
    expect(f.refuse(ev({ iface: 'eth9' }))).toBe('foreign interface'); /* read at 0: too soon */
    now = 1500;
    expect(f.refuse(ev({ iface: 'eth9', dst: '192.0.2.99' }))).toBeNull();
    expect(reads).toBe(2);
  });

  it('this namespace is read for real: lo and its addresses are there', () => {
    const v = new HostFilter(null);
    expect(v.refuse(ev({ iface: 'lo', src: '127.0.0.1', dst: '127.0.0.1' }))).toBe('loopback');
  });

  it('the pipeline counts refused packets apart and never hands them to the tracker', () => {
    const tracker = new KnockTracker([{ name: 'ssh', sequence: parseSequence([42]), timeoutMs: 10_000, flags: DEFAULT_FLAGS }], 100);
    const line = fixtureLines('rsyslog-rfc3339.log')[0];
    const p = new LogLineParser({ prefixes: ['FWCAP: '] });
    const refused: string[] = [];
    const pipeline = new KnockPipeline(tracker, (e) => hostRefusal(e, VIEW), (_e, why) => refused.push(why));
    expect(pipeline.feed(p, line)).toHaveLength(0);
    expect(pipeline.counts).toMatchObject({ netfilter: 1, notForHost: 1, events: 0 });
    expect(refused).toEqual(['foreign interface']);
    const open = new KnockPipeline(tracker, (e) => hostRefusal(e, { ...VIEW, interfaces: null, addresses: new Set(['10.231.0.1']) }));
    expect(open.feed(p, line).map((c) => c.door)).toEqual(['ssh']);
  });
});

describe('retransmits', () => {
  const door = (seq: unknown, interfaces?: string[]): KnockDoor => ({
    name: 'ssh', sequence: parseSequence(seq), timeoutMs: 30_000, flags: DEFAULT_FLAGS, interfaces: interfaces && new Set(interfaces),
  });
  let t = 0;
  const knock = (dport: number, over: Partial<PacketEvent> = {}) => ev({ dport, time: (t += 1000), ...over });

  it('a repeat of any port already knocked neither advances nor resets; anything else still resets', () => {
    const tracker = new KnockTracker([door([1001, 2002, 3003, 4004, 5005])], 100);
    /* nc -w3 per port: the kernel resends each SYN after 1 s and 3 s while the next port is knocked */
    const seq = [1001, 1001, 2002, 1001, 2002, 3003, 2002, 1001, 4004, 3003, 5005];
    const done = seq.flatMap((p) => tracker.handle(knock(p)));
    expect(done.map((c) => c.door)).toEqual(['ssh']);
    const strict = new KnockTracker([door([1001, 2002, 3003])], 100);
    expect([1001, 2002, 4444, 3003].flatMap((p) => strict.handle(knock(p)))).toHaveLength(0);
    expect(strict.stats().resets).toBe(1);
  });

  it("a door's interfaces: knocks on another interface neither count nor reset", () => {
    const tracker = new KnockTracker([door([1001, 2002], ['eth0'])], 100);
    expect(tracker.handle(knock(1001))).toHaveLength(0);
    expect(tracker.handle(knock(4444, { iface: 'wg0' }))).toHaveLength(0);
    expect(tracker.handle(knock(2002, { iface: 'wg0' }))).toHaveLength(0);
    expect(tracker.handle(knock(2002)).map((c) => c.door)).toEqual(['ssh']);
  });
});

describe('time', () => {
  it('kmsg: a wall clock that steps is followed from the next record on', () => {
    let wall = Date.parse('2026-11-25T10:00:00Z');
    let mono = 500_000_000; /* µs since boot */
    const parser = new LogLineParser({ prefixes: ['FWCAP: '], kmsgTime: kmsgWallTime(() => wall, () => mono) });
    const record = (usec: number) => fixtureLines('dev-kmsg.txt')[0].replace(/^4,(\d+),\d+,/, `4,$1,${usec},`);
    expect((parser.parse(record(mono - 2000)) as PacketEvent).time).toBe(wall - 2);
    /* NTP steps the clock an hour forward; a record stamped after the step is dated after it */
    wall += 3_600_000 + 1000;
    mono += 1_000_000;
    expect((parser.parse(record(mono - 2000)) as PacketEvent).time).toBe(wall - 2);
    /* and its knock is fresh for the daemon, whose "now" is the same wall clock */
    const pipeline = new KnockPipeline(new KnockTracker([], 10));
    pipeline.feed(parser, record(mono - 2000), wall - 10_000);
    expect(pipeline.counts).toMatchObject({ events: 1, stale: 0 });
  });

  it("traditional stamps are read in the given zone, the process's by default", () => {
    const line = fixtureLines('rsyslog-traditional.log')[0]; /* Nov 24 05:52:14 */
    const now = () => Date.parse('2026-11-25T00:00:00Z');
    const at = (timeZone?: string) => (new LogLineParser({ prefixes: ['FWCAP: '], now, timeZone }).parse(line) as PacketEvent).time;
    expect(new Date(at('UTC')).toISOString()).toBe('2026-11-24T05:52:14.000Z');
    expect(new Date(at('Europe/Berlin')).toISOString()).toBe('2026-11-24T04:52:14.000Z');
    expect(new Date(at('America/New_York')).toISOString()).toBe('2026-11-24T10:52:14.000Z');
    expect(at()).toBe(new Date(2026, 10, 24, 5, 52, 14).getTime());
  });

  it('the repeated hour of a DST fall-back: the later instant unless it is still to come', () => {
    /* Europe/Berlin, 2026-10-25: 02:00-03:00 happens at 00:xx UTC (CEST) and again at 01:xx UTC (CET) */
    const stamp = { year: null, month: 9, day: 25, h: 2, m: 30, s: 0 };
    const secondPass = Date.parse('2026-10-25T01:30:05Z');
    expect(new Date(wallClockTime(stamp, secondPass, 'Europe/Berlin')).toISOString()).toBe('2026-10-25T01:30:00.000Z');
    const firstPass = Date.parse('2026-10-25T00:30:05Z');
    expect(new Date(wallClockTime(stamp, firstPass, 'Europe/Berlin')).toISOString()).toBe('2026-10-25T00:30:00.000Z');
    /* an ordinary hour is unambiguous, a year back when the date is ahead of now */
    expect(new Date(wallClockTime({ ...stamp, month: 11, day: 31, h: 23 }, firstPass, 'UTC')).toISOString()).toBe('2025-12-31T23:30:00.000Z');
  });

  it('a knock logged in the repeated hour is not stale', () => {
    const now = Date.parse('2026-10-25T01:30:05Z');
    const line = fixtureLines('rsyslog-traditional.log')[0].replace('Nov 24 05:52:14', 'Oct 25 02:30:03');
    const p = new LogLineParser({ prefixes: ['FWCAP: '], now: () => now, timeZone: 'Europe/Berlin' });
    const pipeline = new KnockPipeline(new KnockTracker([], 10));
    pipeline.feed(p, line, now - 10_000);
    expect(pipeline.counts).toMatchObject({ events: 1, stale: 0 });
  });
});

describe('--check: sequences a scan hits by accident', () => {
  it.each([
    [[22], /single port/],
    [[1000, 1001, 1002], /consecutive ascending/],
    [['7000/udp', '7001/udp'], /consecutive ascending/],
    [[7000, 8000, 9000], null],
    [[1002, 1001, 1000], null],
    [[1000, '1001/udp'], null],
  ])('%j', (seq, why) => {
    const r = accidentalSequence(parseSequence(seq));
    if (why) expect(r).toMatch(why);
    else expect(r).toBeNull();
  });
});

describe('config: interfaces and timezone', () => {
  const base = 'sources:\n  - file: /var/log/kern.log\n    prefix: "F: "\n    timezone: Europe/Berlin\ninterfaces: [eth0, wg0]\n' +
    'doors:\n  ssh:\n    sequence: [7000, 8000, 9000]\n    interfaces: [eth0]\n    open: /bin/true\n';
  const problems = (text: string) => {
    try {
      parseConfig(text, '/etc/tumblerd.yaml', { env: {} });
      return [];
    } catch (e) {
      if (e instanceof ConfigError) return e.message.split('\n');
      throw e;
    }
  };

  it('reads them, and the tracker gets the door\'s interfaces', () => {
    const c = parseConfig(base, '/etc/tumblerd.yaml', { env: {} });
    expect(c.interfaces).toEqual(['eth0', 'wg0']);
    expect(c.sources[0]).toMatchObject({ kind: 'file', timeZone: 'Europe/Berlin' });
    expect(c.doors[0].interfaces).toEqual(['eth0']);
  });

  it('names file, line and key for a zone that does not exist, a zone on kmsg, and a bad interface name', () => {
    expect(problems(base.replace('Europe/Berlin', 'Mars/Olympus'))).toEqual([
      '/etc/tumblerd.yaml:4:15: sources[0].timezone: "Mars/Olympus" is not an IANA time zone name (such as "Europe/Berlin" or "UTC")',
    ]);
    expect(problems(base.replace('file: /var/log/kern.log', 'kmsg: /dev/kmsg'))).toEqual([
      '/etc/tumblerd.yaml:4:15: sources[0].timezone: only file sources have stamps without a zone',
    ]);
    expect(problems(base.replace('[eth0, wg0]', '["eth0; reboot"]'))[0]).toMatch(/^\/etc\/tumblerd\.yaml:5:\d+: interfaces\[0\]: /);
  });
});
