/**
 * Passing over lines (PipelineOptions.passOver): a line whose packet cannot change the knock
 * table is read no further than its envelope, prefix, SRC and DPT. That may change what the
 * lines are counted as, never what the table does: the same stream of lines, real and mutated
 * (forged fields inserted anywhere, a host name that looks like a field), through a pipeline
 * that passes over and one that checks every line to the end, opens the same doors for the same
 * sources at the same times and starts, resets and completes the same attempts.
 */
import fc from 'fast-check';
import { KnockPipeline } from '../../src/knock/pipeline';
import { DEFAULT_FLAGS, parseSequence } from '../../src/knock/sequence';
import { Completion, KnockDoor, KnockTracker } from '../../src/knock/tracker';
import { LogLineParser } from '../../src/netfilter/logLine';
import { fixtureLines } from '../support/samples';

const PREFIXES = ['FWCAP: ', 'FIREWALL: '];
const now = () => Date.UTC(2026, 10, 25, 12);
/* kmsg stamps count from boot: this boot puts them on the day the other fixtures were captured */
const parser = () => new LogLineParser({ prefixes: PREFIXES, bootTimeMs: Date.UTC(2026, 10, 24, 4, 45), now, timeZone: 'UTC' });
const door = (name: string, seq: unknown, timeoutMs: number): KnockDoor => ({ name, sequence: parseSequence(seq), timeoutMs, flags: DEFAULT_FLAGS });

const probe = parser();
const REAL = [
  ...fixtureLines('rsyslog-rfc3339.log'),
  ...fixtureLines('rsyslog-traditional.log'),
  ...fixtureLines('dev-kmsg.txt'),
  ...fixtureLines('journal.json'),
  ...fixtureLines('formats/rsyslog-rfc5424.log'),
  ...fixtureLines('formats/dmesg.txt'),
].filter((l) => typeof probe.parse(l) === 'object');

const SOURCES = ['10.231.0.2', '10.231.0.3', '192.0.2.9', '0.0.0.0', '010.1.1.1', 'fd00::2'];
const PORTS = [42, 196, 69, 7000, 8000, 80, 65535, 65536, 0];
const FORGED = [' SRC=10.231.0.3', ' DPT=42', ' DPT=196', 'SRC=192.0.2.9 ', ' [SRC=10.231.0.2 DST=10.231.0.1 DPT=69]', ' ', 'x', ' SRC=10.231.0.2 DPT=7000'];

/** A real line with another source and port, and perhaps forged text put in somewhere. */
const line = fc
  .record({
    base: fc.constantFrom(...REAL),
    src: fc.constantFrom(...SOURCES),
    dport: fc.constantFrom(...PORTS),
    forge: fc.option(fc.record({ at: fc.nat(), text: fc.oneof(fc.constantFrom(...FORGED), fc.string({ maxLength: 6 })) }), { freq: 3 }),
    host: fc.boolean(),
  })
  .map(({ base, src, dport, forge, host }) => {
    let l = base.replace(/SRC=[0-9a-f.:]+/, `SRC=${src}`).replace(/DPT=\d+/, `DPT=${dport}`);
    /* a host name is any run of bytes but a space: one that reads like the fields comes first in the line */
    if (host) l = l.replace(' vm ', ' SRC=10.231.0.3 ');
    if (forge) {
      const i = forge.at % (l.length + 1);
      l = l.slice(0, i) + forge.text + l.slice(i);
    }
    return l;
  });

function run(lines: string[], doors: KnockDoor[], maxSources: number, passOver: boolean) {
  const tracker = new KnockTracker(doors, maxSources);
  const pipeline = new KnockPipeline(tracker, null, undefined, { passOver });
  const p = parser();
  const opened: Completion[] = [];
  for (const l of lines) opened.push(...pipeline.feed(p, l));
  return { opened, stats: tracker.stats(), counts: pipeline.counts };
}

describe('passing over lines that cannot change the table', () => {
  it('changes nothing the table does, on real and forged lines of every format', () => {
    /* timeouts longer than the captures span (their stamps are not in order), so that no sweep
     * depends on which lines were read to the end */
    const week = 7 * 86_400_000;
    const doors = [door('ssh', [42, 196, 69], week), door('web', [7000, '8000/udp', 69], week)];
    let passedOver = 0;
    fc.assert(
      fc.property(fc.array(line, { minLength: 1, maxLength: 60 }), fc.integer({ min: 1, max: 4 }), (lines, maxSources) => {
        const fast = run(lines, doors, maxSources, true);
        const full = run(lines, doors, maxSources, false);
        expect(fast.opened).toEqual(full.opened);
        expect(fast.stats).toEqual(full.stats);
        expect(fast.counts.lines).toBe(full.counts.lines);
        expect(fast.counts.netfilter).toBe(full.counts.netfilter);
        expect(full.counts.passedOver).toBe(0);
        passedOver += fast.counts.passedOver;
      }),
      { numRuns: 3000 },
    );
    /* the property is about something: many lines were passed over */
    expect(passedOver).toBeGreaterThan(3000);
  });

  it('with timeouts that expire along the way (stamps in order, forged lines among them), the same doors open and the same attempts reset', () => {
    const base = fixtureLines('rsyslog-rfc3339.log')[0];
    const doors = [door('ssh', [42, 196, 69], 3000)];
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            gap: fc.nat(2500),
            src: fc.constantFrom(...SOURCES.slice(0, 3)),
            dport: fc.constantFrom(42, 196, 69, 80, 81),
            forge: fc.option(fc.record({ at: fc.nat(), text: fc.constantFrom(...FORGED) }), { freq: 4 }),
          }),
          { maxLength: 80 },
        ),
        (events) => {
          let t = Date.parse('2026-11-24T05:52:14Z');
          const lines = events.map((e) => {
            t += e.gap;
            const stamp = new Date(t).toISOString().replace('Z', '000+00:00');
            const l = base.replace(/^\S+/, stamp).replace('SRC=10.231.0.2', `SRC=${e.src}`).replace('DPT=42', `DPT=${e.dport}`);
            if (!e.forge) return l;
            const i = e.forge.at % (l.length + 1);
            return l.slice(0, i) + e.forge.text + l.slice(i);
          });
          const fast = run(lines, doors, 100, true);
          const full = run(lines, doors, 100, false);
          expect(fast.opened).toEqual(full.opened);
          /* a line passed over and then found malformed moves the table's clock (a sweep) where the
           * full read does not: the sources swept differ, never an attempt that could still count */
          const { attemptsStarted, resets, completed } = full.stats;
          expect(fast.stats).toMatchObject({ attemptsStarted, resets, completed });
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('counts a passed-over line as a netfilter line, with its time as the newest read', () => {
    const [first, second] = fixtureLines('rsyslog-rfc3339.log');
    const pipeline = new KnockPipeline(new KnockTracker([door('ssh', [42, 196, 69], 10_000)], 10), null, undefined, { passOver: true });
    const p = parser();
    /* port 196 from a source that has not knocked 42: nothing to do */
    pipeline.feed(p, second);
    expect(pipeline.counts).toMatchObject({ lines: 1, netfilter: 1, passedOver: 1, events: 0 });
    expect(pipeline.newest).toBe(Date.parse('2026-11-24T05:52:14.912Z'));
    /* once the source is in the table, the same line is read to the end and counts */
    pipeline.feed(p, first);
    pipeline.feed(p, second);
    expect(pipeline.counts).toMatchObject({ lines: 3, netfilter: 3, passedOver: 1, events: 2 });
  });
});
