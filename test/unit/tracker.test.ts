import { PacketEvent, TCP_FLAGS } from '../../src/model/packet';
import { KnockDoor, KnockTracker } from '../../src/knock/tracker';
import { DEFAULT_FLAGS, parseFlagFilter, parseSequence } from '../../src/knock/sequence';
import { LogLineParser } from '../../src/netfilter/logLine';
import { KnockPipeline } from '../../src/knock/pipeline';
import { fixtureLines } from '../support/samples';
import fc from 'fast-check';

const door = (name: string, seq: unknown, timeoutMs = 10_000, flags = DEFAULT_FLAGS): KnockDoor => ({
  name,
  sequence: parseSequence(seq),
  timeoutMs,
  flags,
});

let clock = 1_000_000;
function ev(dport: number, opts: Partial<PacketEvent> & { after?: number } = {}): PacketEvent {
  clock += opts.after ?? 100;
  return {
    time: clock,
    src: '192.0.2.7',
    family: 4,
    dst: '192.0.2.1',
    proto: 'tcp',
    sport: 40000,
    dport,
    flags: TCP_FLAGS.SYN,
    iface: 'eth0',
    prefix: 'FIREWALL: ',
    ...opts,
  };
}

function run(tracker: KnockTracker, events: PacketEvent[]): string[] {
  return events.flatMap((e) => tracker.handle(e).map((c) => `${c.door}<-${c.src}`));
}

describe('sequences', () => {
  it('accepts numbers, port/proto and knockd strings', () => {
    expect(parseSequence([7000, '8000/udp', 9000])).toEqual([
      { port: 7000, proto: 'tcp' },
      { port: 8000, proto: 'udp' },
      { port: 9000, proto: 'tcp' },
    ]);
    expect(parseSequence('7000,8000:udp,9000')).toEqual(parseSequence([7000, '8000/udp', 9000]));
    expect(() => parseSequence([0])).toThrow(/1 to 65535/);
    expect(() => parseSequence(['80/icmp'])).toThrow(/tcp or udp/);
    expect(() => parseSequence([])).toThrow(/non-empty/);
  });
  it('reads knockd tcpflags', () => {
    expect(parseFlagFilter('syn,!ack')).toEqual(DEFAULT_FLAGS);
    expect(parseFlagFilter('fin,psh,urg')).toEqual({ require: TCP_FLAGS.FIN | TCP_FLAGS.PSH | TCP_FLAGS.URG, forbid: 0 });
    expect(() => parseFlagFilter('syn,!syn')).toThrow(/both/);
    expect(() => parseFlagFilter('bogus')).toThrow(/not a TCP flag/);
  });
});

describe('the knock state machine', () => {
  const ssh = () => new KnockTracker([door('ssh', [42, 196, 69])], 100);

  it('opens on the sequence in order', () => {
    expect(run(ssh(), [ev(42), ev(196), ev(69)])).toEqual(['ssh<-192.0.2.7']);
  });

  it('does not open on the wrong order', () => {
    expect(run(ssh(), [ev(42), ev(69), ev(196)])).toEqual([]);
  });

  it('measures the timeout from the first knock', () => {
    const t = ssh();
    expect(run(t, [ev(42), ev(196, { after: 6000 }), ev(69, { after: 4001 })])).toEqual([]);
    expect(run(t, [ev(42), ev(196, { after: 6000 }), ev(69, { after: 4000 })])).toEqual(['ssh<-192.0.2.7']);
  });

  it('tolerates a repeat of the port just knocked (SYN retransmits)', () => {
    expect(run(ssh(), [ev(42), ev(42), ev(196), ev(196), ev(196), ev(69)])).toEqual(['ssh<-192.0.2.7']);
  });

  it('tolerates a repeat of any port already knocked in the attempt, within its timeout', () => {
    expect(run(ssh(), [ev(42), ev(196), ev(42), ev(69)])).toEqual(['ssh<-192.0.2.7']);
    /* past the timeout the repeat is a new first knock, not part of the old attempt */
    expect(run(ssh(), [ev(42), ev(196, { after: 9000 }), ev(42, { after: 1001 }), ev(69)])).toEqual([]);
  });

  it('resets on any other packet, so a scan passing the ports in order opens nothing', () => {
    expect(run(ssh(), [ev(42), ev(80), ev(196), ev(69)])).toEqual([]);
    const scan = [];
    for (let p = 1; p <= 1024; p++) scan.push(ev(p, { after: 1 }));
    expect(run(ssh(), scan)).toEqual([]);
  });

  it('lets the resetting packet start a new attempt when it is the first port', () => {
    expect(run(ssh(), [ev(42), ev(196), ev(42), ev(196), ev(69)])).toEqual(['ssh<-192.0.2.7']);
  });

  it('counts a TCP knock only when its flags pass (SYN without ACK by default), ignoring others', () => {
    expect(run(ssh(), [ev(42), ev(196, { flags: TCP_FLAGS.SYN | TCP_FLAGS.ACK }), ev(69)])).toEqual([]);
    /* the SYN+ACK neither counted nor reset: 196 then 69 still complete */
    expect(run(ssh(), [ev(42), ev(196, { flags: TCP_FLAGS.ACK }), ev(196), ev(69)])).toEqual(['ssh<-192.0.2.7']);
    const xmas = new KnockTracker([door('x', [1, 2], 10_000, parseFlagFilter('fin,psh,urg'))], 10);
    const f = TCP_FLAGS.FIN | TCP_FLAGS.PSH | TCP_FLAGS.URG;
    expect(run(xmas, [ev(1, { flags: f }), ev(2)])).toEqual([]);
    expect(run(xmas, [ev(1, { flags: f }), ev(2, { flags: f })])).toEqual(['x<-192.0.2.7']);
  });

  it('tells UDP knocks from TCP ones', () => {
    const t = new KnockTracker([door('mixed', [7000, '8000/udp', 9000])], 10);
    expect(run(t, [ev(7000), ev(8000), ev(9000)])).toEqual([]);
    expect(run(t, [ev(7000), ev(8000, { proto: 'udp', flags: 0 }), ev(9000)])).toEqual(['mixed<-192.0.2.7']);
  });

  it('keeps sources apart', () => {
    const other = { src: '198.51.100.9' };
    expect(run(ssh(), [ev(42), ev(196, other), ev(69)])).toEqual([]);
    expect(run(ssh(), [ev(42), ev(42, other), ev(196), ev(196, other), ev(69, other), ev(69)])).toEqual([
      'ssh<-198.51.100.9',
      'ssh<-192.0.2.7',
    ]);
  });

  it('runs doors that share ports in parallel', () => {
    const t = new KnockTracker([door('a', [42, 196, 69]), door('b', [42, 196, 70]), door('c', [196, 69])], 10);
    expect(run(t, [ev(42), ev(196), ev(69)])).toEqual(['a<-192.0.2.7', 'c<-192.0.2.7']);
    expect(run(t, [ev(42), ev(196), ev(70)])).toEqual(['b<-192.0.2.7']);
  });

  it('bounds the table, evicting the oldest source and counting it', () => {
    const t = new KnockTracker([door('ssh', [42, 196, 69])], 3);
    for (let i = 1; i <= 5; i++) t.handle(ev(42, { src: `203.0.113.${i}` }));
    expect(t.stats()).toMatchObject({ tracked: 3, evicted: 2 });
    expect(run(t, [ev(196, { src: '203.0.113.1' }), ev(69, { src: '203.0.113.1' })])).toEqual([]);
    expect(run(t, [ev(196, { src: '203.0.113.5' }), ev(69, { src: '203.0.113.5' })])).toEqual(['ssh<-203.0.113.5']);
  });

  it('does not track sources that start nothing, and drops expired attempts', () => {
    const t = ssh();
    for (let i = 1; i <= 50; i++) t.handle(ev(80, { src: `203.0.113.${i}` }));
    expect(t.stats().tracked).toBe(0);
    t.handle(ev(42));
    expect(t.stats().tracked).toBe(1);
    t.handle(ev(80, { src: '203.0.113.1', after: 11_000 }));
    expect(t.stats().tracked).toBe(0);
  });

  it('keeps attempts across a reconfigure for doors that did not change', () => {
    const t = new KnockTracker([door('a', [1, 2, 3]), door('b', [1, 2, 4])], 10);
    run(t, [ev(1), ev(2)]);
    t.reconfigure([door('b', [1, 2, 4]), door('a', [1, 2, 9])]);
    expect(run(t, [ev(4)])).toEqual(['b<-192.0.2.7']);
  });

  it('does not act on packets logged before the staleness horizon (rsyslog replaying the ring buffer)', () => {
    const parser = new LogLineParser({ prefixes: ['FWCAP: '] });
    const lines = fixtureLines('rsyslog-rfc3339.log').slice(0, 3);
    const pipeline = new KnockPipeline(new KnockTracker([door('ssh', [42, 196, 69])], 10));
    const horizon = Date.parse('2026-11-24T05:52:16Z');
    expect(lines.flatMap((l) => [...pipeline.feed(parser, l, horizon)])).toEqual([]);
    expect(pipeline.counts).toMatchObject({ stale: 3, events: 0 });
    expect(lines.flatMap((l) => [...pipeline.feed(parser, l, horizon - 60_000)])).toHaveLength(1);
  });

  it('replays a captured log: knock client sequences open their doors, scans do not', () => {
    const parser = new LogLineParser({ prefixes: ['FWCAP: '] });
    const t = new KnockTracker([door('ssh', [42, 196, 69]), door('mixed', [7000, '8000/udp', 9000]), door('scan', [43, 44])], 10);
    const out: string[] = [];
    for (const line of fixtureLines('rsyslog-rfc3339.log')) {
      const e = parser.parse(line);
      if (typeof e === 'object') out.push(...t.handle(e).map((c) => `${c.door}<-${c.src}`));
    }
    expect(out).toEqual(['ssh<-10.231.0.2', 'mixed<-10.231.0.2', 'ssh<-fd00:231::2']);
  });
});

/**
 * The flat table (typed arrays, an open-addressing index with backward-shift deletion, an LRU
 * list) against the rules written the plain way, over random traffic from few sources into a
 * small table, so that eviction, expiry and index deletion all happen often.
 */
describe('the flat table agrees with a plain model', () => {
  interface Model {
    sources: Map<string, { last: number; attempts: ({ step: number; start: number } | undefined)[] }>;
  }
  function modelKnock(m: Model, doors: KnockDoor[], max: number, e: PacketEvent): string[] {
    const longest = Math.max(...doors.map((d) => d.timeoutMs));
    for (const [k, st] of m.sources) if (st.last + longest < e.time) m.sources.delete(k);
    let st = m.sources.get(e.src);
    const out: string[] = [];
    doors.forEach((d, i) => {
      if (e.proto === 'tcp' && ((e.flags & d.flags.require) !== d.flags.require || (e.flags & d.flags.forbid) !== 0)) return;
      const is = (k: number) => d.sequence[k].port === e.dport && d.sequence[k].proto === e.proto;
      let a = st?.attempts[i];
      if (a && e.time - a.start > d.timeoutMs) a = st!.attempts[i] = undefined;
      if (a) {
        if (is(a.step)) {
          if (++a.step === d.sequence.length) {
            out.push(`${d.name}<-${e.src}`);
            st!.attempts[i] = undefined;
          }
          return;
        }
        if (d.sequence.slice(0, a.step).some((_, k) => is(k))) return;
        st!.attempts[i] = undefined;
      }
      if (!is(0)) return;
      if (d.sequence.length === 1) return void out.push(`${d.name}<-${e.src}`);
      if (!st) {
        while (m.sources.size >= max) m.sources.delete(m.sources.keys().next().value as string);
        st = { last: 0, attempts: [] };
        m.sources.set(e.src, st);
      }
      st.attempts[i] = { step: 1, start: e.time };
    });
    if (st) {
      m.sources.delete(e.src);
      if (st.attempts.some(Boolean)) m.sources.set(e.src, { ...st, last: e.time });
    }
    return out;
  }

  it('opens the same doors for the same sources, and tracks as many', () => {
    const doors = [door('a', [1, 2, 3], 500), door('b', [2, '3/udp'], 300), door('c', [3], 100)];
    const packet = fc.record({
      after: fc.integer({ min: 0, max: 120 }),
      src: fc.oneof(fc.integer({ min: 0, max: 40 }).map((i) => `10.0.${i >> 3}.${i}`), fc.constantFrom('fd00::1', 'fd00::2')),
      dport: fc.integer({ min: 1, max: 4 }),
      udp: fc.boolean(),
      ack: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.array(packet, { maxLength: 400 }), fc.integer({ min: 1, max: 12 }), (packets, max) => {
        const t = new KnockTracker(doors, max);
        const m: Model = { sources: new Map() };
        let time = 0;
        for (const p of packets) {
          time += p.after;
          const e = ev(p.dport, {
            time,
            src: p.src,
            family: p.src.includes(':') ? 6 : 4,
            proto: p.udp ? 'udp' : 'tcp',
            flags: p.udp ? 0 : TCP_FLAGS.SYN | (p.ack ? TCP_FLAGS.ACK : 0),
            after: 0,
          });
          e.time = time;
          const got = t.handle(e).map((c) => `${c.door}<-${c.src}`);
          expect(got).toEqual(modelKnock(m, doors, max, e));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('keeps every source of a large table findable through growth and eviction', () => {
    const t = new KnockTracker([door('ssh', [42, 196, 69], 3_600_000)], 50_000);
    /* scattered, not consecutive: consecutive keys spread over a multiplicative hash without colliding */
    const scatter = (i: number) => (Math.imul(i + 1, 0x2c1b3c6d) ^ (Math.imul(i + 1, 0x297a2d39) >>> 15)) >>> 0;
    const src = (i: number) => `${1 + (scatter(i) >>> 24) % 223}.${(scatter(i) >>> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    for (let i = 0; i < 120_000; i++) t.handle(ev(42, { src: src(i), after: 0 }));
    expect(t.stats()).toMatchObject({ tracked: 50_000, evicted: 70_000 });
    expect(run(t, [ev(196, { src: src(69_999) }), ev(69, { src: src(69_999) })])).toEqual([]);
    /* every one of the 50,000 left is found again: the second and third knocks complete each */
    let opened = 0;
    for (let i = 70_000; i < 120_000; i++) opened += t.handle(ev(196, { src: src(i), after: 0 })).length;
    for (let i = 70_000; i < 120_000; i++) opened += t.handle(ev(69, { src: src(i), after: 0 })).length;
    expect(opened).toBe(50_000);
    expect(t.stats()).toMatchObject({ tracked: 0, resets: 0 });
  });
});
