/**
 * A synthetic syslog file for the scan benchmark: 60% netfilter LOG lines (RFC 3339 stamps,
 * random sources and ports, a few on the knock ports) and 40% ordinary syslog noise. Seeded,
 * so every run scans the same bytes.
 */
import fs from 'node:fs';
import os from 'node:os';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s ^ (s >>> 15), 2246822507) + 0x9e3779b9) >>> 0) / 4294967296;
}

const NOISE = [
  'vm sshd[1234]: Connection closed by 198.51.100.23 port 51234 [preauth]',
  'vm CRON[2211]: (root) CMD (command -v debian-sa1 > /dev/null && debian-sa1 1 1)',
  'vm systemd[1]: Started session-42.scope - Session 42 of User admin.',
  'vm postfix/smtpd[881]: connect from unknown[203.0.113.50]',
  'vm kernel: [  325.123456] usb 1-1: new high-speed USB device number 2 using ehci-pci',
];

/** An interface of this namespace and its IPv4 address: lines the daemon's host check accepts as its own. */
export function hostInterface(): { iface: string; address: string } {
  for (const [iface, list] of Object.entries(os.networkInterfaces())) {
    const a = (list ?? []).find((x) => x.family === 'IPv4' && !x.internal);
    if (a) return { iface, address: a.address };
  }
  throw new Error('no interface with an IPv4 address');
}

/** One netfilter LOG line as rsyslog writes it (RFC 3339 stamp), for a TCP SYN. */
export function knockLine(stamp: string, src: string, dport: number, iface = 'eth0', dst = '192.0.2.1', prefix = 'FIREWALL: '): string {
  return (
    `${stamp} vm kernel: [ 1234.567890] ${prefix}IN=${iface} OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 ` +
    `SRC=${src} DST=${dst} LEN=60 TOS=0x00 PREC=0x00 TTL=51 ID=4242 DF PROTO=TCP SPT=40000 DPT=${dport} WINDOW=64240 RES=0x00 SYN URGP=0 `
  );
}

/** `scan`'s memory case: `lines` first knocks, each from a new source, and one real sequence in the middle. */
export function generateFirstKnocks(file: string, lines: number): void {
  const out = fs.openSync(file, 'w');
  const start = Date.parse('2026-11-24T00:00:00Z');
  let buf = '';
  for (let i = 0; i < lines; i++) {
    const t = new Date(start + Math.floor(i / 100)).toISOString().replace('Z', '000+00:00');
    buf += knockLine(t, `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, 42) + '\n';
    if (i === lines >> 1) for (const p of [42, 196, 69]) buf += knockLine(t, '192.0.2.77', p) + '\n';
    if (buf.length > 1 << 20) {
      fs.writeSync(out, buf);
      buf = '';
    }
  }
  fs.writeSync(out, buf);
  fs.closeSync(out);
}

export function generateLog(file: string, lines: number, prefix = 'FIREWALL: '): void {
  const r = rng(42);
  const out = fs.openSync(file, 'w');
  const start = Date.parse('2026-11-24T00:00:00Z');
  let buf = '';
  for (let i = 0; i < lines; i++) {
    const t = new Date(start + i * 3).toISOString().replace('Z', '000+00:00');
    if (r() < 0.6) {
      const src = `10.${(r() * 256) | 0}.${(r() * 256) | 0}.${(r() * 256) | 0}`;
      const dpt = r() < 0.05 ? [42, 196, 69][i % 3] : ((r() * 65535) | 0) + 1;
      const udp = r() < 0.2;
      buf +=
        `${t} vm kernel: [${(i / 1000).toFixed(6).padStart(12)}] ${prefix}IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 ` +
        `SRC=${src} DST=192.0.2.1 LEN=60 TOS=0x00 PREC=0x00 TTL=51 ID=${(r() * 65535) | 0} DF PROTO=${udp ? 'UDP' : 'TCP'} ` +
        `SPT=${((r() * 60000) | 0) + 1024} DPT=${dpt} ` +
        (udp ? 'LEN=40 \n' : 'WINDOW=64240 RES=0x00 SYN URGP=0 \n');
    } else {
      buf += `${t} ${NOISE[(r() * NOISE.length) | 0]}\n`;
    }
    if (buf.length > 1 << 20) {
      fs.writeSync(out, buf);
      buf = '';
    }
  }
  fs.writeSync(out, buf);
  fs.closeSync(out);
}
