import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { LegacyError, convertLegacy } from '../../src/config/legacy';
import { ClassicKnocks } from '../../src/knock/classicKnocks';
import { parseOneTimeFile } from '../../src/knock/oneTime';
import {
  base32Decode, base32Encode, hotp, makeOtpSpec, otpSequence, otpUri, otpauthUri, parseOtpUri, timeStep,
} from '../../src/knock/otp';
import { UsedSequenceFile } from '../../src/knock/usedSequences';
import { parseConfig } from '../../src/config/load';
import type { DoorConfig, Knock } from '../../src/model/door';
import { PacketEvent, TCP_FLAGS } from '../../src/model/packet';

/* RFC 6238 appendix B: the seeds are ASCII digits, the codes 8 digits. */
const RFC_SEEDS = {
  sha1: '12345678901234567890',
  sha256: '12345678901234567890123456789012',
  sha512: '1234567890123456789012345678901234567890123456789012345678901234',
} as const;
const RFC_VECTORS: [number, string, string, string][] = [
  [59, '94287082', '46119246', '90693936'],
  [1111111109, '07081804', '68084774', '25091201'],
  [1111111111, '14050471', '67062674', '99943326'],
  [1234567890, '89005924', '91819424', '93441116'],
  [2000000000, '69279037', '90698825', '38618901'],
  [20000000000, '65353130', '77737706', '47863826'],
];

const SECRET = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP'; /* 20 bytes */

describe('TOTP (RFC 6238)', () => {
  it.each(RFC_VECTORS)('time %d gives the RFC codes for SHA1, SHA256 and SHA512', (t, sha1, sha256, sha512) => {
    const step = timeStep(t * 1000, 30_000);
    expect(hotp(Buffer.from(RFC_SEEDS.sha1), step, 8, 'sha1')).toBe(sha1);
    expect(hotp(Buffer.from(RFC_SEEDS.sha256), step, 8, 'sha256')).toBe(sha256);
    expect(hotp(Buffer.from(RFC_SEEDS.sha512), step, 8, 'sha512')).toBe(sha512);
  });

  it('reads and writes base32 as RFC 4648 and TOTP apps do', () => {
    expect(base32Encode(Buffer.from('foobar'))).toBe('MZXW6YTBOI');
    expect(base32Decode('mzxw 6ytb oi======').toString()).toBe('foobar');
    expect(() => base32Decode('MZXW1')).toThrow(/not a base32 character/);
  });

  it('refuses specs that a code cannot cover, and short secrets', () => {
    expect(() => makeOtpSpec(SECRET, '40000-40499', 2, 30_000)).toThrow(/10, 100, 1000 or 10000/);
    expect(() => makeOtpSpec(SECRET, '40000-40999', 4, 30_000)).toThrow(/12-digit code/);
    expect(() => makeOtpSpec('JBSWY3DPEHPK3PXP', '40000-40999', 3, 30_000)).toThrow(/at least 16/);
    expect(() => makeOtpSpec(SECRET, '65000-75000', 3, 30_000)).toThrow(/within 1-65535/);
  });

  it('cuts the code into ports; the URI carries everything and reads back', () => {
    const spec = makeOtpSpec(SECRET, '40000-40999', 3, 30_000);
    const code = hotp(base32Decode(SECRET), 1000, 9);
    expect(otpSequence(spec, 1000).map((k) => k.port)).toEqual([0, 3, 6].map((i) => 40000 + Number(code.slice(i, i + 3))));
    const uri = otpUri('gw.example', 'ssh', spec);
    expect(uri).toBe(`tumbler-otp://gw.example/ssh?secret=${SECRET}&ports=40000-40999&length=3&step=30&digits=9&algorithm=SHA1`);
    expect(parseOtpUri(uri)).toEqual({ host: 'gw.example', door: 'ssh', spec });
    expect(otpauthUri('gw.example', 'ssh', spec)).toBe(`otpauth://totp/tumbler%3Assh%40gw.example?secret=${SECRET}&issuer=tumbler&algorithm=SHA1&digits=9&period=30`);
  });
});

describe('the sequence computed by hand, by independent implementations', () => {
  const python = spawnSync('python3', ['-c', 'import hmac']).status === 0;
  const oathtool = spawnSync('oathtool', ['--version']).status === 0;

  (python ? it : it.skip)("matches Python's hmac for 9-digit codes cut in three", () => {
    const spec = makeOtpSpec(SECRET, '40000-40999', 3, 30_000);
    /* written from RFC 6238 and the README's recipe, not from our code */
    const script = `
import base64, hmac, hashlib, struct, sys
key = base64.b32decode(sys.argv[1])
for t in map(int, sys.argv[2:]):
    mac = hmac.new(key, struct.pack('>Q', t // 30), hashlib.sha1).digest()
    o = mac[-1] & 15
    code = '%09d' % ((struct.unpack('>I', mac[o:o+4])[0] & 0x7fffffff) % 10**9)
    print(' '.join(str(40000 + int(code[i:i+3])) for i in (0, 3, 6)))`;
    const times = [59, 1111111109, 1234567890, 1800000000, Math.floor(Date.now() / 1000)];
    const out = execFileSync('python3', ['-c', script, SECRET, ...times.map(String)], { encoding: 'utf8' }).trim().split('\n');
    expect(out).toEqual(times.map((t) => otpSequence(spec, timeStep(t * 1000, 30_000)).map((k) => k.port).join(' ')));
  });

  (oathtool ? it : it.skip)("matches oathtool's 6-digit code, as a phone app shows it, cut in two", () => {
    const spec = makeOtpSpec(SECRET, '40000-40999', 2, 30_000);
    for (const t of [59, 1234567890, Math.floor(Date.now() / 1000)]) {
      const code = execFileSync('oathtool', ['--totp', '-b', '--digits=6', '-N', `@${t}`, SECRET], { encoding: 'utf8' }).trim();
      expect(otpSequence(spec, timeStep(t * 1000, 30_000)).map((k) => k.port)).toEqual([40000 + Number(code.slice(0, 3)), 40000 + Number(code.slice(3))]);
    }
  });
});

const base: Omit<DoorConfig, 'name'> = {
  sequence: null, sequenceTimeoutMs: 10_000, flags: { require: TCP_FLAGS.SYN, forbid: TCP_FLAGS.ACK }, secret: null,
  open: [['/bin/true']], close: [], open6: [], close6: [], closeAfterMs: null, commandTimeoutMs: 10_000, allow: [],
};

function knocks(seq: Knock[], start: number, src = '192.0.2.7'): PacketEvent[] {
  return seq.map((k, i) => ({
    time: start + i * 100, src, family: 4, dst: '192.0.2.1', proto: k.proto, sport: 40000 + i, dport: k.port,
    flags: TCP_FLAGS.SYN, iface: 'eth0', prefix: 'FW: ',
  }));
}

function feed(ck: ClassicKnocks, events: PacketEvent[]): string[] {
  return events.flatMap((e) => ck.handle(e).map((c) => `${c.door}<-${c.src}`));
}

describe('doors with a time-derived sequence', () => {
  const spec = makeOtpSpec(SECRET, '40000-40999', 3, 30_000);
  const door: DoorConfig = { ...base, name: 'ssh', otp: spec };
  const T = 1_800_000_000_000; /* a step boundary: 1.8e12 / 30e3 is whole */
  const step = timeStep(T, 30_000);
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'otp-used-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));
  const used = () => new UsedSequenceFile(path.join(dir, 'otp-used')).load(T);

  it('opens on the current step and one either side, not two away, nor on a fixed sequence', () => {
    const refused: string[] = [];
    const ck = new ClassicKnocks([door], 100, used(), { refused: (_door, _src, reason) => refused.push(reason) }, false, T);
    expect(feed(ck, knocks(otpSequence(spec, step), T + 5000))).toEqual(['ssh<-192.0.2.7']);
    expect(feed(ck, knocks(otpSequence(spec, step - 1), T + 6000))).toEqual(['ssh<-192.0.2.7']);
    expect(feed(ck, knocks(otpSequence(spec, step + 1), T + 7000))).toEqual(['ssh<-192.0.2.7']);
    expect(feed(ck, knocks(otpSequence(spec, step - 2), T + 8000))).toEqual([]);
    expect(feed(ck, knocks(otpSequence(spec, step + 2), T + 9000))).toEqual([]);
    expect(refused).toEqual([]);
  });

  it('opens a derived sequence once: a replay, from anyone, is refused, also after a restart', () => {
    const refused: string[] = [];
    const hooks = { refused: (d: string, s: string, r: string) => refused.push(`${d}<-${s}: ${r}`) };
    const seq = otpSequence(spec, step);
    const ck = new ClassicKnocks([door], 100, used(), hooks, false, T);
    expect(feed(ck, knocks(seq, T + 1000))).toEqual(['ssh<-192.0.2.7']);
    expect(feed(ck, knocks(seq, T + 3000))).toEqual([]);
    expect(feed(ck, knocks(seq, T + 5000, '198.51.100.9'))).toEqual([]);
    expect(refused).toEqual([
      `ssh<-192.0.2.7: the sequence of time step ${step} was already used`,
      `ssh<-198.51.100.9: the sequence of time step ${step} was already used`,
    ]);
    const restarted = new ClassicKnocks([door], 100, used(), hooks, false, T + 10_000);
    expect(feed(restarted, knocks(seq, T + 20_000, '198.51.100.9'))).toEqual([]);
    expect(feed(restarted, knocks(otpSequence(spec, step + 1), T + 21_000, '198.51.100.9'))).toEqual(['ssh<-198.51.100.9']);
    expect(fs.readFileSync(path.join(dir, 'otp-used'), 'utf8')).toBe(
      `${(step + 2) * 30_000} ssh@${step}\n${(step + 3) * 30_000} ssh@${step + 1}\n`,
    );
  });

  it('forgets used steps once they can no longer be accepted', () => {
    const u = used();
    u.claim(`ssh@${step}`, (step + 2) * 30_000, T);
    expect(new UsedSequenceFile(path.join(dir, 'otp-used')).load((step + 2) * 30_000).size).toBe(0);
    expect(fs.readFileSync(path.join(dir, 'otp-used'), 'utf8')).toBe('');
  });

  it('finishes a knock begun before a step boundary', () => {
    const ck = new ClassicKnocks([door], 100, new UsedSequenceFile(null), {}, false, T);
    const seq = otpSequence(spec, step - 1);
    expect(feed(ck, knocks(seq, T - 150))).toEqual(['ssh<-192.0.2.7']);
  });

  it('is read from a config, with the secret from a file', () => {
    fs.writeFileSync(path.join(dir, 'otp.key'), `${SECRET.toLowerCase()}\n`);
    const yaml = `sources: [{ file: /var/log/kern.log, prefix: "FW: " }]\ndoors:\n  ssh:\n    otp: { secret_file: otp.key, ports: 40000-40999, length: 3, step: 30s }\n    open: /bin/true\n`;
    expect(parseConfig(yaml, path.join(dir, 'c.yaml')).doors[0].otp).toEqual(spec);
    expect(() => parseConfig(yaml.replace('40999', '40499'), path.join(dir, 'c.yaml'))).toThrow(/:4:10: doors.ssh.otp: ports: 40000-40499 holds 500 ports/);
    expect(() => parseConfig(yaml.replace('    open:', '    sequence: [1, 2]\n    open:'), path.join(dir, 'c.yaml'))).toThrow(/doors.ssh.otp: give only one of sequence and otp/);
  });
});

describe("knockd's one-time sequences", () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'otp-onetime-'));
    file = path.join(dir, 'smtp_sequences');
    /* as knockd's man page advises, a space first; the second line has none */
    fs.writeFileSync(file, '# one a line\n 2001,2002,2003\n3001,3002:udp,3003\n\n 4001,4002,4003\n');
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));
  const door = (): DoorConfig => ({ ...base, name: 'smtp', oneTimeSequences: file, flags: { require: 0, forbid: 0 } });
  const seq = (text: string) => parseOneTimeFile(Buffer.from(text)).unused[0].sequence;

  it('accepts only the first unused line, marks it as knockd does, and goes on to the next', () => {
    const warnings: string[] = [];
    const ck = new ClassicKnocks([door()], 100, new UsedSequenceFile(null), { warn: (m) => warnings.push(m) }, false, 0);
    expect(feed(ck, knocks(seq('3001,3002:udp,3003'), 1000))).toEqual([]);
    expect(feed(ck, knocks(seq('2001,2002,2003'), 2000))).toEqual(['smtp<-192.0.2.7']);
    expect(fs.readFileSync(file, 'utf8')).toBe('# one a line\n#2001,2002,2003\n3001,3002:udp,3003\n\n 4001,4002,4003\n');
    expect(feed(ck, knocks(seq('2001,2002,2003'), 3000))).toEqual([]);
    expect(feed(ck, knocks(seq('3001,3002:udp,3003'), 4000))).toEqual(['smtp<-192.0.2.7']);
    /* the '#' replaced the first digit: knockd's documented behaviour for a line without a leading space */
    expect(fs.readFileSync(file, 'utf8')).toBe('# one a line\n#2001,2002,2003\n#001,3002:udp,3003\n\n 4001,4002,4003\n');
    const restarted = new ClassicKnocks([door()], 100, new UsedSequenceFile(null), { warn: (m) => warnings.push(m) }, false, 0);
    expect(feed(restarted, knocks(seq('3001,3002:udp,3003'), 5000))).toEqual([]);
    expect(feed(restarted, knocks(seq('4001,4002,4003'), 6000))).toEqual(['smtp<-192.0.2.7']);
    expect(feed(restarted, knocks(seq('4001,4002,4003'), 7000))).toEqual([]);
    expect(warnings).toEqual([`door smtp: every sequence in ${file} is used: the door is disabled until lines are added`]);
  });

  it('leaves the file alone in a simulation (scan)', () => {
    const before = fs.readFileSync(file, 'utf8');
    const ck = new ClassicKnocks([door()], 100, new UsedSequenceFile(null), {}, true, 0);
    expect(feed(ck, [...knocks(seq('2001,2002,2003'), 1000), ...knocks(seq('3001,3002:udp,3003'), 2000)])).toEqual(['smtp<-192.0.2.7', 'smtp<-192.0.2.7']);
    expect(fs.readFileSync(file, 'utf8')).toBe(before);
  });

  it('is checked when the config is read', () => {
    const yaml = `sources: [{ file: /var/log/kern.log, prefix: "FW: " }]\ndoors:\n  smtp:\n    one_time_sequences: smtp_sequences\n    open: /bin/true\n`;
    expect(parseConfig(yaml, path.join(dir, 'c.yaml')).doors[0].oneTimeSequences).toBe(file);
    fs.appendFileSync(file, ' 5001,x\n');
    expect(() => parseConfig(yaml, path.join(dir, 'c.yaml'))).toThrow(`doors.smtp.one_time_sequences: ${file}:6: "x": port must be a whole number`);
    fs.writeFileSync(file, '#1,2,3\n');
    expect(() => parseConfig(yaml, path.join(dir, 'c.yaml'))).toThrow(/has no unused sequence left/);
  });
});

describe('the new parsers take any input without crashing (fast-check)', () => {
  it('base32 reads back what it writes, and refuses anything else with an Error', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), (b) => base32Decode(base32Encode(b)).equals(Buffer.from(b))));
    fc.assert(fc.property(fc.string(), (s) => {
      try {
        base32Decode(s);
      } catch (err) {
        expect(err).toBeInstanceOf(Error);
      }
    }));
  });

  it('a one-time sequences file of any bytes parses into sequences and bad lines', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 400 }), (b) => {
      const r = parseOneTimeFile(Buffer.from(b));
      for (const u of r.unused) expect(u.sequence.every((k) => k.port >= 1 && k.port <= 65535)).toBe(true);
    }), { numRuns: 2000 });
  });

  it('a tumbler-otp URI of any text is read or refused with an Error', () => {
    const uri = fc.tuple(fc.string(), fc.string(), fc.string()).map(([a, b, c]) => `tumbler-otp://${a}/${b}?secret=${SECRET}&ports=${c}&length=2&step=30`);
    fc.assert(fc.property(fc.oneof(fc.string(), uri), (s) => {
      try {
        parseOtpUri(s);
      } catch (err) {
        expect(err).toBeInstanceOf(Error);
      }
    }), { numRuns: 2000 });
  });

  it('a knockd.conf of any lines converts or fails with its lines named', () => {
    const line = fc.oneof(
      fc.constantFrom('[options]', '[door]', '[open ssh]', 'sequence = 1,2,3', 'start_command_6 =', 'tcpflags = fin,!ack', 'UseSyslog', 'timeout = 5', 'command = a # b'),
      fc.tuple(fc.constantFrom('sequence', 'seq_timeout', 'tcpflags', 'command', 'one_time_sequences', 'target', 'bogus'), fc.string()).map(([k, v]) => `${k} = ${v}`),
    );
    fc.assert(fc.property(fc.array(line, { maxLength: 12 }), (lines) => {
      try {
        expect(typeof convertLegacy(`[options]\n${lines.join('\n')}\n`, 'k.conf')).toBe('string');
      } catch (err) {
        expect(err).toBeInstanceOf(LegacyError);
      }
    }), { numRuns: 2000 });
  });
});
