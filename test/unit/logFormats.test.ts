/**
 * Every envelope and every logger option, on real lines: fixtures/formats/ was captured here by
 * fixtures/capture-formats.sh (iptables LOG with all options, nft `log flags all`, fragments,
 * rsyslog's relay and RFC 5424 formats, dmesg, journald); fixtures/public/ holds lines from public
 * pages, each file naming its source.
 */
import { PacketEvent, TCP_FLAGS } from '../../src/model/packet';
import { LineVerdict, LogLineParser, isSyslogKernelLine } from '../../src/netfilter/logLine';
import { fixtureLines } from '../support/samples';

const PREFIXES = ['FWCAP: ', 'FWALL: ', 'NFTALL: ', 'FWFRAG: ', 'FWOUT: ', '[UFW BLOCK] ', '[WAN_LOCAL-default-D]'];
const NOW = Date.parse('2026-11-25T12:00:00Z');
const BOOT = Date.parse('2026-11-25T10:36:09Z');
const parser = (prefixes = PREFIXES) => new LogLineParser({ prefixes, bootTimeMs: BOOT, now: () => NOW, timeZone: 'UTC' });
const lines = (name: string) => fixtureLines(name).filter((l) => !l.startsWith('# '));
const verdicts = (name: string, p = parser()) => lines(name).map((l) => p.parse(l));
const isEvent = (v: PacketEvent | LineVerdict): v is PacketEvent => typeof v === 'object';
const kind = (v: PacketEvent | LineVerdict) => (isEvent(v) ? `${v.prefix.trim()} ${v.proto}/${v.dport}` : v);

/** What each captured line is, in capture order: the same in every envelope. */
const EXPECTED = [
  'FWALL: tcp/42', 'FWCAP: tcp/42', 'FWALL: tcp/43', 'FWCAP: tcp/43',
  'FWALL: tcp/44', 'FWCAP: tcp/44',
  'FWCAP: tcp/50', '[UFW BLOCK] tcp/60', 'FWCAP: tcp/60', '[WAN_LOCAL-default-D] tcp/61', 'FWCAP: tcp/61',
  'NFTALL: tcp/72', 'FWCAP: tcp/72', 'NFTALL: tcp/73', 'FWCAP: tcp/73',
  'FWCAP: tcp/7000', 'FWCAP: udp/8000',
  'FWFRAG: udp/5000', 'fragment', 'fragment', 'FWCAP: udp/5000',
  'FWFRAG: udp/5000', 'FWFRAG: udp/5000', 'FWCAP: udp/5000', 'fragment', 'fragment', 'fragment', 'fragment',
  'FWOUT: udp/9',
];

describe('every envelope, on lines captured here', () => {
  it.each([
    ['dmesg', 'formats/dmesg.txt'],
    ['dmesg -r (<PRI> then the uptime stamp)', 'formats/dmesg-r.txt'],
    ['dmesg -x (facility and level named)', 'formats/dmesg-x.txt'],
    ['dmesg -T (ctime stamps)', 'formats/dmesg-T.txt'],
    ['RFC 5424 (RSYSLOG_SyslogProtocol23Format)', 'formats/rsyslog-rfc5424.log'],
    ['<PRI> and a traditional stamp (RSYSLOG_TraditionalForwardFormat)', 'formats/rsyslog-forward-traditional.log'],
    ['<PRI> and an RFC 3339 stamp (RSYSLOG_ForwardFormat)', 'formats/rsyslog-forward-rfc3339.log'],
    ['journalctl -o short', 'formats/journalctl-short.txt'],
    ['journalctl -o short-precise (fractions of a second)', 'formats/journalctl-short-precise.txt'],
    ['journalctl -o short-iso (+0000)', 'formats/journalctl-short-iso.txt'],
    ['journalctl -o short-iso-precise', 'formats/journalctl-short-iso-precise.txt'],
    ['journalctl -o short-monotonic', 'formats/journalctl-short-monotonic.txt'],
  ])('%s', (_what, file) => {
    const vs = verdicts(file);
    expect(vs.map(kind)).toEqual(EXPECTED);
    for (const v of vs.filter(isEvent)) expect(v.src === '10.232.0.2' || v.src === 'fd00:232::2' || v.iface === '').toBe(true);
  });

  it('journald: the kernel transport with facility kern only; a line root wrote to /dev/kmsg (facility user) is not a knock', () => {
    const vs = verdicts('formats/journal-kernel.json');
    expect(vs.slice(0, EXPECTED.length).map(kind)).toEqual(EXPECTED);
    const forged = lines('formats/journal-kernel.json').findIndex((l) => l.includes('"SYSLOG_FACILITY":"1"'));
    expect(forged).toBeGreaterThanOrEqual(0);
    const record = JSON.parse(lines('formats/journal-kernel.json')[forged]);
    expect(record).toMatchObject({ _TRANSPORT: 'kernel', SYSLOG_IDENTIFIER: 'kernel', MESSAGE: expect.stringMatching(/^FWCAP: IN=/) });
    expect(vs[forged]).toBe('other');
    /* the facility is all that tells it apart: the same record with facility kern would be a knock */
    expect(parser().parse(JSON.stringify({ ...record, SYSLOG_FACILITY: '0' }))).toMatchObject({ src: '198.51.100.7', dport: 7000 });
  });

  it('dates dmesg lines from boot, dmesg -T and syslog stamps in the given zone, RFC 5424 from its own stamp', () => {
    const dm = verdicts('formats/dmesg.txt')[0] as PacketEvent;
    const stamp = Number(/\[ *([0-9.]+)\]/.exec(lines('formats/dmesg.txt')[0])![1]);
    expect(dm.time).toBe(BOOT + Math.floor(Math.round(stamp * 1e6) / 1000));
    const t = verdicts('formats/dmesg-T.txt')[0] as PacketEvent;
    expect(t.time).toBe(Date.parse(`${/\[\w+ (\w+ +\d+ [\d:]+) (\d+)\]/.exec(lines('formats/dmesg-T.txt')[0])!.slice(1).reverse().join(' ')} UTC`));
    const fwd = verdicts('formats/rsyslog-forward-traditional.log')[0] as PacketEvent;
    const [, clock] = /^<4>Nov 25 ([\d:]{8}) /.exec(lines('formats/rsyslog-forward-traditional.log')[0])!;
    expect(new Date(fwd.time).toISOString()).toBe(`2026-11-25T${clock}.000Z`);
    const precise = verdicts('formats/journalctl-short-iso-precise.txt')[0] as PacketEvent;
    expect(precise.time).toBe(Math.floor(Date.parse(lines('formats/journalctl-short-iso-precise.txt')[0].split(' ')[0].replace(/(\.\d{3})\d+\+0000/, '$1Z'))));
    expect((verdicts('formats/journalctl-short-precise.txt')[0] as PacketEvent).time).toBe(precise.time);
    const rfc5424 = verdicts('formats/rsyslog-rfc5424.log')[0] as PacketEvent;
    expect(rfc5424.time).toBe(Date.parse(/ (\S+) vm kernel/.exec(lines('formats/rsyslog-rfc5424.log')[0])![1]));
  });

  it('reads every option the loggers have: MAC decoding, SEQ/ACK, TCP options, MARK, UID/GID', () => {
    const vs = verdicts('formats/dmesg.txt');
    expect(vs[0]).toMatchObject({ prefix: 'FWALL: ', src: '10.232.0.2', dst: '10.232.0.1', sport: expect.any(Number), flags: TCP_FLAGS.SYN });
    expect(lines('formats/dmesg.txt')[0]).toMatch(/MACSRC=.* SEQ=\d+ ACK=0 .* OPT \([0-9A-F]+\) $/);
    expect(vs[4]).toMatchObject({ family: 6, src: 'fd00:232::2', dst: 'fd00:232::1' });
    expect(lines('formats/dmesg.txt')[6]).toContain('MARK=0x2a');
    expect(vs[28]).toMatchObject({ iface: '', out: expect.stringMatching(/^s\d+$/), dport: 9 });
    expect(lines('formats/dmesg.txt')[28]).toContain('UID=0 GID=0');
  });

  it('a prefix that starts with [ is not taken for the uptime stamp, with or without one, glued to IN= or not', () => {
    const [ufw] = lines('public/askubuntu-understanding-ufw-log.log');
    expect(parser().parse(ufw)).toMatchObject({ prefix: '[UFW BLOCK] ', src: '77.72.85.26', dport: 3194, iface: 'eth0' });
    expect(parser().parse(ufw.replace('[71910.873115] ', ''))).toMatchObject({ prefix: '[UFW BLOCK] ', dport: 3194 });
    const wan = lines('formats/rsyslog-forward-traditional.log')[9];
    expect(wan).toContain('kernel: [WAN_LOCAL-default-D]IN=');
    expect(parser().parse(wan.slice(wan.indexOf('>') + 1))).toMatchObject({ prefix: '[WAN_LOCAL-default-D]', dport: 61 });
  });

  it('reads a day of month without its padding space, and with a zero', () => {
    const [ufw] = lines('public/askubuntu-understanding-ufw-log.log');
    const t = (parser().parse(ufw) as PacketEvent).time;
    expect(new Date(t).toISOString()).toBe('2026-02-06T16:27:08.000Z');
    expect((parser().parse(ufw.replace('Feb 6', 'Feb  6')) as PacketEvent).time).toBe(t);
    expect((parser().parse(ufw.replace('Feb 6', 'Feb 06')) as PacketEvent).time).toBe(t);
  });

  it('refuses a <PRI> of another facility, and a relay line from another program', () => {
    const line = lines('formats/rsyslog-forward-traditional.log')[1];
    expect(parser().parse(line)).toMatchObject({ dport: 42 });
    expect(parser().parse(line.replace('<4>', '<12>'))).toBe('other'); /* user.warning */
    expect(parser().parse(line.replace('<4>', '<4'))).toBe('other');
    const rfc = lines('formats/rsyslog-rfc5424.log')[1];
    expect(parser().parse(rfc.replace('<4>1', '<12>1'))).toBe('other');
    expect(parser().parse(rfc.replace(' kernel - - - ', ' sshd 811 - - '))).toBe('other');
    expect(parser().parse(rfc.replace(' kernel - - - ', ' kernel - - [meta sequenceId="3"] '))).toMatchObject({ dport: 42 });
    const dx = lines('formats/dmesg-x.txt')[1];
    expect(parser().parse(dx.replace('kern  :', 'user  :'))).toBe('other');
  });
});

describe('the grammar: exactly what the kernel prints', () => {
  const real = lines('formats/dmesg.txt')[1]; /* FWCAP, plain TCP SYN */
  const p = parser();

  it('refuses the crash report whose process and binary names carry the prefix and the fields', () => {
    /* what the kernel printed for a process named "FWCAP: IN= " running a binary named after the fields */
    const crash =
      '[ 1300.123456] FWCAP: IN= [4242]: segfault at 0 ip 000055d0c0a0b12c sp 00007ffd4a2b1c30 error 4 in ' +
      'SRC=198.51.100.7 DST=10.232.0.1 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=1 DF PROTO=TCP SPT=1 DPT=42 WINDOW=1 RES=0x00 SYN URGP=0 [55d0c0a0b000+1000]';
    expect(p.parse(crash)).toBe('malformed');
    expect(p.parse(crash.replace('[4242]: segfault', 'OUT= [4242]: segfault'))).toBe('malformed');
  });

  it.each([
    ['a key the kernel does not print', real.replace(' TTL=', ' FOO=1 TTL=')],
    ['keys out of order', real.replace('TOS=0x00 PREC=0x00', 'PREC=0x00 TOS=0x00')],
    ['text after the end', real + 'in a.out[55d0+1000]'],
    ['flags out of order', real.replace(' SYN ', ' SYN ACK ')],
    ['a flag twice', real.replace(' SYN ', ' SYN SYN ')],
    ['a decimal where hex belongs', real.replace('TOS=0x00', 'TOS=00')],
    ['two spaces', real.replace(' DPT=', '  DPT=')],
    ['MAC without IN', real.replace(/IN=s\d+/, 'IN=')],
    ['a MAC byte too short', real.replace(/MAC=([0-9a-f]{2}):/, 'MAC=$1:0:')],
    ['a port after MARK', real.replace('URGP=0 ', 'URGP=0 MARK=0x1 DPT=1')],
    ['a fragment with ports', lines('formats/dmesg.txt')[18].replace('PROTO=UDP ', 'PROTO=UDP SPT=1 DPT=42 LEN=8 ')],
  ])('malformed: %s', (_what, line) => {
    expect(p.parse(line)).toBe('malformed');
  });

  it('counts non-first fragments apart, IPv4 and IPv6', () => {
    expect(p.parse(lines('formats/dmesg.txt')[18])).toBe('fragment');
    expect(lines('formats/dmesg.txt')[18]).toContain('FRAG:185 PROTO=UDP');
    expect(p.parse(lines('formats/dmesg.txt')[24])).toBe('fragment');
    expect(lines('formats/dmesg.txt')[24]).toContain('FRAG:1448 INCOMPLETE ID:');
  });

  it('a trailing space stripped (journald) still ends the line', () => {
    expect(p.parse(real.trimEnd())).toMatchObject({ dport: 42 });
  });
});

describe('lines from other firewalls, from public pages (fixtures/public, each naming its source)', () => {
  const p = parser(['Shorewall:lan2fw:REJECT:', 'Shorewall:net2fw:DROP:', 'FW-ALLOW: ', 'FWCAP: ']);

  it('Shorewall: a prefix glued to IN=, MARK= after the flags; and its dmesg lines', () => {
    const [a, b] = lines('public/pastebin-iLMG7xzM-shorewall.log').map((l) => p.parse(l));
    expect(a).toMatchObject({ prefix: 'Shorewall:lan2fw:REJECT:', src: '10.0.0.58', dst: '74.125.229.52', dport: 80, flags: TCP_FLAGS.SYN, iface: 'eth5' });
    expect(new Date((b as PacketEvent).time).toISOString()).toBe('2026-06-30T01:27:36.000Z');
    const dm = lines('public/pastebin-Dayrktze-shorewall-dmesg.txt').map((l) => p.parse(l));
    expect(dm).toEqual([
      expect.objectContaining({ proto: 'udp', dport: 22178, iface: 'eth2' }),
      expect.objectContaining({ proto: 'udp', dport: 22177, iface: 'eth1' }),
    ]);
    expect((dm[0] as PacketEvent).time).toBe(BOOT + 1578469213);
  });

  it('busybox syslog (OpenWrt logread, DD-WRT): facility.level before the tag; a ctime stamp with a year', () => {
    for (const l of [...lines('public/pastebin-AVLREQEZ-openwrt-logread.log'), ...lines('public/pastebin-cUrwe4CJ-ddwrt.log')]) {
      expect(isSyslogKernelLine(l)).toBe(true);
      expect(isSyslogKernelLine(l.replace('kern.', 'user.'))).toBe(false);
    }
    /* that envelope around a LOG message captured here */
    const [logread] = lines('public/pastebin-AVLREQEZ-openwrt-logread.log');
    const message = lines('formats/dmesg.txt')[1].replace(/^\[ *[\d.]+\] /, '');
    const line = logread.slice(0, logread.indexOf('ath10k')) + message;
    expect(p.parse(line)).toMatchObject({ prefix: 'FWCAP: ', dport: 42, time: Date.parse('2020-11-11T01:27:22Z') });
  });

  it('WeOS: a forwarded ICMP packet with a long MAC= field is a well-formed line, and no knock', () => {
    const [weos] = lines('public/westermo-weos-manual.log');
    expect(p.parse(weos)).toBe('ignored');
    expect(p.parse(weos.replace('TTL=63', 'TTL=63 EVIL=1'))).toBe('malformed');
  });
});
