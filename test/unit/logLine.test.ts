import { canonicalIPv6, canonicalSource } from '../../src/model/address';
import { PacketEvent, TCP_FLAGS } from '../../src/model/packet';
import { LogLineParser } from '../../src/netfilter/logLine';
import { fixtureLines } from '../support/samples';

const NOW = Date.parse('2026-11-24T12:00:00Z');
const parser = (prefixes = ['FWCAP: ', 'FIREWALL: ', 'KNOCK: '], bootTimeMs = 0) =>
  new LogLineParser({ prefixes, bootTimeMs, now: () => NOW });

function events(lines: string[], p = parser()): PacketEvent[] {
  return lines.map((l) => p.parse(l)).filter((r): r is PacketEvent => typeof r === 'object');
}

describe('addresses', () => {
  it('shortens fully expanded IPv6 as RFC 5952 says', () => {
    expect(canonicalIPv6('fd00:0203:0000:0000:0000:0000:0000:0002')).toBe('fd00:203::2');
    expect(canonicalIPv6('2001:0db8:0000:0000:0001:0000:0000:0001')).toBe('2001:db8::1:0:0:1');
    expect(canonicalIPv6('2001:DB8:0:1:1:1:1:1')).toBe('2001:db8:0:1:1:1:1:1');
    expect(canonicalIPv6('0000:0000:0000:0000:0000:0000:0000:0001')).toBe('::1');
    expect(canonicalIPv6('fe80::')).toBe('fe80::');
  });
  it('refuses what is not an address', () => {
    for (const bad of ['0.0.0.0', '::', '0:0::0', '1.2.3.4;id', '01.2.3.4', '1.2.3', '256.1.1.1', '::ffff:1.2.3.4', '::ffff:102:304', 'fe80::1%eth0', '1::2::3', '', 'x']) {
      expect(canonicalSource(bad)).toBeNull();
    }
  });
});

describe('netfilter LOG lines', () => {
  it('reads the traditional syslog format (no year, no zone: local time, latest past year)', () => {
    const [first, ...rest] = events(fixtureLines('rsyslog-traditional.log'));
    expect(rest).toHaveLength(11);
    expect(first).toEqual({
      time: new Date(2026, 10, 24, 5, 52, 14).getTime(),
      src: '10.231.0.2',
      family: 4,
      dst: '10.231.0.1',
      proto: 'tcp',
      sport: 40736,
      dport: 42,
      flags: TCP_FLAGS.SYN,
      iface: expect.stringMatching(/^s[0-9]+$/),
      out: '',
      prefix: 'FWCAP: ',
    });
    const december = parser().parse(fixtureLines('rsyslog-traditional.log')[0].replace('Nov 24', 'Dec 31'));
    expect((december as PacketEvent).time).toBe(new Date(2025, 11, 31, 5, 52, 14).getTime());
  });

  it('reads RFC 3339 syslog with sub-second times', () => {
    const evs = events(fixtureLines('rsyslog-rfc3339.log'));
    expect(evs.map((e) => e.dport)).toEqual([42, 196, 69, 7000, 8000, 9000, 42, 196, 69, 43, 44, 53]);
    expect(evs[0].time).toBe(Date.parse('2026-11-24T05:52:14.812463+00:00'));
    expect(evs[4]).toMatchObject({ proto: 'udp', dport: 8000, flags: 0 });
    expect(evs[6]).toMatchObject({ src: 'fd00:231::2', dst: 'fd00:231::1', family: 6 });
    expect(evs[9].flags).toBe(TCP_FLAGS.SYN | TCP_FLAGS.ACK);
    expect(evs[10].flags).toBe(TCP_FLAGS.URG | TCP_FLAGS.PSH | TCP_FLAGS.FIN);
  });

  it('reads /dev/kmsg records, dated from boot', () => {
    const boot = Date.parse('2026-11-24T04:45:46.611Z');
    const evs = events(fixtureLines('dev-kmsg.txt'), parser(undefined, boot));
    expect(evs).toHaveLength(12);
    expect(evs[0].time).toBe(boot + 3988200);
  });

  it('reads journalctl -o json records of the kernel transport only', () => {
    const lines = fixtureLines('journal.json');
    const verdicts = lines.map((l) => parser().parse(l));
    expect(verdicts.slice(0, 3).map((v) => (v as PacketEvent).dport)).toEqual([42, 196, 69]);
    expect((verdicts[0] as PacketEvent).time).toBe(1795499534811);
    expect(verdicts[3]).toBe('other'); /* same text, but written by a process through syslog */
  });

  it('reads the kernel line without its [uptime] stamp', () => {
    const line = fixtureLines('rsyslog-rfc3339.log')[0].replace(/\[ *[0-9.]+\] /, '');
    expect(parser().parse(line)).toMatchObject({ dport: 42, src: '10.231.0.2' });
  });

  it('reads every team sample, in each format, the same way', () => {
    const p = parser();
    const trad = events(fixtureLines('shared-samples/rsyslog-traditional.log'), p);
    const rfc = events(fixtureLines('shared-samples/rsyslog-rfc3339.log'), p);
    const kmsg = events(fixtureLines('shared-samples/dev-kmsg.txt'), p);
    expect(trad.length).toBe(14);
    expect(rfc.map((e) => [e.src, e.dport, e.flags])).toEqual(trad.map((e) => [e.src, e.dport, e.flags]));
    expect(kmsg.slice(-14).map((e) => [e.src, e.dport])).toEqual(trad.map((e) => [e.src, e.dport]));
    expect(trad.some((e) => e.src === 'fd00:203::2')).toBe(true);
    expect(trad.filter((e) => e.prefix === 'KNOCK: ')).toHaveLength(4);
  });

  it('matches a prefix logged without its trailing space', () => {
    const line = fixtureLines('rsyslog-rfc3339.log')[0].replace('FWCAP: IN=', 'DROP:IN=');
    expect(parser(['DROP: ']).parse(line)).toMatchObject({ dport: 42, prefix: 'DROP: ' });
    expect(parser(['DRO']).parse(line)).toBe('other');
  });

  describe('what is not a knock', () => {
    const real = fixtureLines('rsyslog-rfc3339.log')[0];
    const msg = real.slice(real.indexOf('FWCAP: '));
    it.each([
      ['another program carrying the prefix', real.replace('kernel: ', 'sshd[9]: Invalid user ')],
      ['a forged program name', real.replace('kernel: ', 'kernel[1]: ')],
      ['the prefix in the middle of a kernel message', real.replace('FWCAP: ', 'usb 1-1: FWCAP: ')],
      ['a kmsg record from user space (facility user)', `12,1,1,-;${msg}`],
      ['an unconfigured prefix', real.replace('FWCAP: ', 'OTHER: ')],
      ['a blank line', ''],
      ['plain text', 'hello world'],
      ['a kmsg-looking line with no message', '4,1,1'],
    ])('%s', (_what, line) => {
      expect(parser().parse(line)).toBe('other');
    });

    it.each([
      ['cut before the TCP flags', real.slice(0, real.indexOf(' WINDOW='))],
      ['cut inside the destination port', real.slice(0, real.indexOf('DPT=') + 5)],
      ['a source that is not an address', real.replace('SRC=10.231.0.2', 'SRC=10.231.0.2;id')],
      ['an IPv4-mapped IPv6 source', real.replace('SRC=10.231.0.2', 'SRC=::ffff:10.231.0.2')],
      ['a port out of range', real.replace('DPT=42', 'DPT=70000')],
      ['a second SRC', real.replace('DPT=42', 'DPT=42 SRC=10.0.0.9')],
      ['an unknown TCP flag', real.replace(' SYN ', ' SYN HACK ')],
      ['a shell in the interface name', real.replace(/IN=s[0-9]+/, 'IN=$(id)')],
      ['an overlong line', real + 'X'.repeat(5000)],
    ])('malformed: %s', (_what, line) => {
      expect(parser().parse(line)).toBe('malformed');
    });

    it('ignores ICMP, whose errors quote a whole second packet', () => {
      const icmp = real.replace(/PROTO=TCP.*/, 'PROTO=ICMP TYPE=3 CODE=3 [SRC=10.231.0.1 DST=10.231.0.2 LEN=36 PROTO=UDP SPT=1 DPT=2 LEN=16 ] ');
      expect(parser().parse(icmp)).toBe('ignored');
    });
  });

  it('rejects hostile 100 kB lines (a backtracking parser would hang here)', () => {
    expect(parser().parse('Nov 24 00:17:59 vm kernel: FWCAP: IN=' + ' SRC=1'.repeat(20_000))).toBe('malformed');
    expect(parser().parse('2026-11-24T00:17:59Z vm kernel: ' + 'FWCAP:'.repeat(20_000))).toBe('other');
    expect(parser().parse('{' + '"a":['.repeat(20_000))).toBe('other');
  });
});
