/**
 * The parser reads lines as ranges of a larger buffer (the reader's chunk, with the next lines
 * after them): the byte path must give exactly what the text path gives, and must never read
 * past the end of its line. Checked on every captured line, on every prefix of each (the bytes
 * after the cut are the rest of the real line: a read past the end would see them), and on
 * mutated lines.
 */
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { LogLineParser } from '../../src/netfilter/logLine';
import { intToIPv4 } from '../../src/model/address';
import { packetFields } from '../../src/model/packet';
import { FIXTURES } from '../support/samples';

const PREFIXES = ['FWCAP: ', 'FIREWALL: ', 'KNOCK: ', '[UFW BLOCK] ', 'TUMBLER: '];

function allLines(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(log|txt|json)$/.test(e.name)) out.push(...fs.readFileSync(p, 'latin1').split('\n').filter((l) => l.length > 0));
    }
  };
  walk(FIXTURES);
  return out;
}

const now = () => Date.UTC(2026, 10, 25, 12);
const text = new LogLineParser({ prefixes: PREFIXES, bootTimeMs: 1_700_000_000_000, now });
const bytes = new LogLineParser({ prefixes: PREFIXES, bootTimeMs: 1_700_000_000_000, now });

/** What the byte path says of `buf[start, end)`, in the text path's terms. */
function viaBytes(buf: Buffer, start: number, end: number): unknown {
  const r = bytes.parseBytes(buf, start, end, packetFields());
  if (typeof r === 'string') return r;
  return {
    time: r.time,
    src: r.family === 4 ? intToIPv4(r.v4) : r.v6,
    family: r.family,
    proto: r.proto === 1 ? 'udp' : 'tcp',
    dport: r.dport,
    flags: r.flags,
    iface: r.iface,
  };
}

function viaText(line: string): unknown {
  const r = text.parse(line);
  if (typeof r === 'string') return r;
  return { time: r.time, src: r.src, family: r.family, proto: r.proto, dport: r.dport, flags: r.flags, iface: r.iface };
}

describe('the byte path of the parser', () => {
  const lines = allLines();

  it('reads every captured line as the text path does, knocks among them', () => {
    const knocks = lines.filter((l) => typeof text.parse(l) === 'object');
    expect(knocks.length).toBeGreaterThan(50);
    /* all of them in one buffer, as a reader's chunk holds them */
    const chunk = Buffer.from(lines.join('\n') + '\n', 'latin1');
    let at = 0;
    for (const line of lines) {
      expect(viaBytes(chunk, at, at + line.length)).toEqual(viaText(line));
      at += line.length + 1;
    }
  });

  it('never reads past the end of its line: every cut of a real line reads as that text alone', () => {
    for (const line of lines.filter((l) => typeof text.parse(l) === 'object').slice(0, 60)) {
      const buf = Buffer.from(line, 'latin1');
      for (let k = 0; k <= buf.length; k++) expect([k, viaBytes(buf, 0, k)]).toEqual([k, viaText(line.slice(0, k))]);
    }
  });

  it('agrees with the text path on mutated lines, inside a buffer of other bytes', () => {
    const knocks = lines.filter((l) => typeof text.parse(l) === 'object');
    fc.assert(
      fc.property(
        fc.constantFrom(...knocks),
        fc.array(fc.record({ at: fc.nat(400), del: fc.nat(4), ins: fc.string({ maxLength: 6 }) }), { maxLength: 4 }),
        fc.string({ maxLength: 20 }),
        (line, edits, around) => {
          let l = line;
          for (const e of edits) l = l.slice(0, e.at % (l.length + 1)) + e.ins + l.slice((e.at % (l.length + 1)) + e.del);
          l = Buffer.from(l, 'latin1').toString('latin1');
          const pad = Buffer.from(around, 'latin1');
          const buf = Buffer.concat([pad, Buffer.from(l, 'latin1'), pad]);
          expect(viaBytes(buf, pad.length, pad.length + Buffer.byteLength(l, 'latin1'))).toEqual(viaText(l));
        },
      ),
      { numRuns: 5000 },
    );
  });
});
