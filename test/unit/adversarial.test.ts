/**
 * What an attacker can send: random and mutated inputs to every parser (fast-check), forged
 * and injected log lines, a flood of spoofed sources. Nothing may throw out of a module, yield
 * an invalid address or port, reach a command unvalidated, or open a door.
 */
import fc from 'fast-check';
import { ConfigError, parseConfig } from '../../src/config/load';
import { expandCommand, splitCommand } from '../../src/doors/commandTemplate';
import { KnockPipeline } from '../../src/knock/pipeline';
import { DEFAULT_FLAGS, parseSequence } from '../../src/knock/sequence';
import { KnockTracker } from '../../src/knock/tracker';
import { isCanonicalSource } from '../../src/model/address';
import { PacketEvent, TCP_FLAGS } from '../../src/model/packet';
import { LogLineParser } from '../../src/netfilter/logLine';
import { parseDatagram } from '../../src/tumbler/protocol';
import { fixtureLines } from '../support/samples';

const REAL = [
  ...fixtureLines('rsyslog-rfc3339.log'),
  ...fixtureLines('rsyslog-traditional.log'),
  ...fixtureLines('dev-kmsg.txt'),
  ...fixtureLines('journal.json'),
];
const parser = () => new LogLineParser({ prefixes: ['FWCAP: ', 'FIREWALL: '] });

function checkVerdict(v: ReturnType<LogLineParser['parse']>): void {
  if (typeof v === 'string') {
    expect(['other', 'malformed', 'ignored', 'fragment']).toContain(v);
    return;
  }
  expect(isCanonicalSource(v.src)).toBe(true);
  expect(Number.isInteger(v.dport) && v.dport >= 0 && v.dport <= 65535).toBe(true);
  expect(Number.isInteger(v.sport) && v.sport >= 0 && v.sport <= 65535).toBe(true);
  expect(['tcp', 'udp']).toContain(v.proto);
  expect(Number.isFinite(v.time)).toBe(true);
  expect(v.iface).toMatch(/^[A-Za-z0-9_.@-]{0,15}$/);
}

/** A real line with a piece cut out, repeated, or replaced by attacker text. */
const mutatedLine = fc
  .tuple(fc.constantFrom(...REAL), fc.nat(), fc.nat(), fc.oneof(fc.string(), fc.constantFrom(';id', '$(reboot)', ' SRC=1.2.3.4', ' DPT=42', '::ffff:1.2.3.4', '\u0000', '%IP%', ' SYN ACK ', '\n')))
  .map(([line, a, b, insert]) => {
    const i = a % (line.length + 1);
    const j = Math.min(line.length, i + (b % 40));
    return line.slice(0, i) + insert + line.slice(j);
  });

describe('fuzzing the parsers', () => {
  it('the log-line parser never throws and only yields valid events, on random and mutated lines', () => {
    const p = parser();
    fc.assert(fc.property(fc.oneof(fc.string({ maxLength: 2000 }), mutatedLine), (line) => checkVerdict(p.parse(line))), { numRuns: 20_000 });
  });

  it('the log-line parser handles 100 kB lines', () => {
    const p = parser();
    fc.assert(
      fc.property(fc.constantFrom(...REAL), fc.string({ minLength: 1, maxLength: 8 }), (line, junk) => {
        checkVerdict(p.parse(line + junk.repeat(100_000 / junk.length)));
        checkVerdict(p.parse(line.slice(0, 60) + junk.repeat(100_000 / junk.length)));
      }),
      { numRuns: 50 },
    );
  });

  it('the Tumbler datagram parser never throws and yields 32 bytes or nothing', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 200 }), fc.string().map((s) => new TextEncoder().encode('TUMBLER1: ' + s))), (bytes) => {
        const d = parseDatagram(Buffer.from(bytes));
        expect(d === null || d.length === 32).toBe(true);
      }),
      { numRuns: 20_000 },
    );
  });

  it('the config loader either accepts or reports a ConfigError naming the file and a line', () => {
    const valid = 'sources:\n  - file: /var/log/kern.log\n    prefix: "FIREWALL: "\ndoors:\n  ssh:\n    sequence: [42, 196, 69]\n    open: /bin/true %IP%\n    secret: x\n';
    const mutated = fc.tuple(fc.nat(), fc.nat(), fc.string()).map(([a, b, s]) => {
      const i = a % valid.length;
      return valid.slice(0, i) + s + valid.slice(Math.min(valid.length, i + (b % 10)));
    });
    fc.assert(
      fc.property(fc.oneof(fc.string(), mutated), (text) => {
        try {
          parseConfig(text, '/etc/tumblerd.yaml', { env: {}, readFile: () => 'secret' });
        } catch (e) {
          expect(e).toBeInstanceOf(ConfigError);
          for (const p of (e as ConfigError).problems) {
            expect(p.file).toBe('/etc/tumblerd.yaml');
            expect(p.line).toBeGreaterThanOrEqual(1);
          }
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('nothing but a canonical address is ever substituted into a command', () => {
    const t = splitCommand('iptables -I INPUT -s %IP% -j ACCEPT');
    fc.assert(
      fc.property(fc.string(), (ip) => {
        let argv: string[] | null = null;
        try {
          argv = expandCommand(t, { ip, name: 'ssh' });
        } catch {
          return;
        }
        expect(isCanonicalSource(argv[4])).toBe(true);
        expect(argv).toHaveLength(7);
      }),
      { numRuns: 20_000 },
    );
  });
});

describe('log injection', () => {
  const real = fixtureLines('rsyslog-rfc3339.log')[0];
  const withPort = (line: string, port: number) => line.replace('DPT=42', `DPT=${port}`);
  const forged = (port: number) => [
    withPort(real, port).replace('kernel: ', 'sshd[9]: Invalid user '),
    withPort(real, port).replace(/kernel: \[[ 0-9.]+\] /, 'kernel: [  1.0] usb 1-1: '),
    withPort(real, port).replace('SRC=10.231.0.2', 'SRC=10.231.0.2;id'),
    withPort(real, port).replace('SRC=10.231.0.2', 'SRC=::ffff:10.231.0.2'),
    withPort(real, port).replace('SRC=10.231.0.2', "SRC=$(touch${IFS}/tmp/pwned)"),
    `12,1,1,-;${withPort(real, port).slice(real.indexOf('FWCAP: '))}`,
    withPort(real, port).replace('IN=', 'IN=' + 'A'.repeat(5000)),
  ];

  it('opens no door, whatever the forged lines say', () => {
    const pipeline = new KnockPipeline(new KnockTracker([{ name: 'ssh', sequence: parseSequence([42, 196, 69]), timeoutMs: 60_000, flags: DEFAULT_FLAGS }], 100));
    const p = parser();
    const opened = [42, 196, 69].flatMap((port) => forged(port).flatMap((l) => [...pipeline.feed(p, l)]));
    expect(opened).toEqual([]);
    expect(pipeline.counts.events).toBe(0);
    expect(pipeline.counts.malformed).toBe(3 * 4);
  });
});

describe('a flood of spoofed sources', () => {
  it('stays within the table bound, and a real knock in the middle still opens its door', () => {
    const tracker = new KnockTracker([{ name: 'ssh', sequence: parseSequence([42, 196, 69]), timeoutMs: 3_600_000, flags: DEFAULT_FLAGS }], 10_000);
    const e: PacketEvent = { time: 0, src: '', family: 4, dst: '192.0.2.1', proto: 'tcp', sport: 1, dport: 42, flags: TCP_FLAGS.SYN, iface: 'eth0', prefix: 'F: ' };
    let opened = 0;
    let largest = 0;
    for (let i = 0; i < 300_000; i++) {
      tracker.handle({ ...e, time: i, src: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` });
      if (i === 150_000) {
        tracker.handle({ ...e, time: i, src: '192.0.2.77', dport: 42 });
        for (let j = 0; j < 5000; j++) tracker.handle({ ...e, time: i, src: `172.16.${j >> 8}.${j & 255}` });
        tracker.handle({ ...e, time: i, src: '192.0.2.77', dport: 196 });
        opened += tracker.handle({ ...e, time: i, src: '192.0.2.77', dport: 69 }).length;
      }
      largest = Math.max(largest, tracker.stats().tracked);
    }
    expect(largest).toBe(10_000);
    /* every spoofed source beyond the bound was evicted; the real one left the table by completing */
    expect(tracker.stats().evicted).toBe(300_000 + 5000 - 10_000);
    expect(opened).toBe(1);
  });
});
