/**
 * A log writer for the daemon benchmarks, in a process of its own: appends netfilter lines to a
 * file at a steady rate, in 10 ms batches stamped with the current time.
 *   writer FILE RATE SECONDS flood IFACE DST   every line the first knock of a new source
 *   writer FILE RATE SECONDS mixed IFACE DST   60% LOG lines from random sources, 40% other syslog
 *                                              lines, and every 100 ms a probe source knocking 42,
 *                                              196, 69, 20 ms apart
 * Prints a JSON object: lines written, and for each probe its source and when its last knock was written.
 */
import fs from 'node:fs';
import { knockLine } from './genlog';

const [file, rateText, secondsText, mode, iface, dst] = process.argv.slice(2);
const rate = Number(rateText);
const seconds = Number(secondsText);
const BATCH_MS = 10;
const NOISE = 'vm sshd[1234]: Connection closed by 198.51.100.23 port 51234 [preauth]';
const stamp = () => new Date().toISOString().replace('Z', '000+00:00');
const STAMP_BYTES = stamp().length;

/* The mixed lines, rendered once into one buffer; each batch writes the next stretch of it after
 * stamping its lines in place: the writer must not be what limits the rate. */
const POOL = 65536;
const poolText: string[] = [];
for (let i = 0; i < POOL; i++) {
  const src = `198.18.${(i >> 8) & 255}.${i & 255}`;
  poolText.push(i % 5 < 2 ? `${stamp()} ${NOISE}` : knockLine(stamp(), src, 1024 + ((i * 7919) % 60000), iface, dst));
}
const pool = Buffer.from(poolText.join('\n') + '\n', 'latin1');
const lineStart = new Int32Array(POOL + 1);
for (let i = 0, at = 0; i <= POOL; i++) {
  lineStart[i] = at;
  if (i < POOL) at += Buffer.byteLength(poolText[i], 'latin1') + 1;
}

const fd = fs.openSync(file, 'a');
const probes: { src: string; at: number }[] = [];
const probeSource = (id: number) => `203.0.${113 + (id >> 8)}.${id & 255}`;
let nextStep = 0; /* probe steps written so far: probe id = step / 3 */
let written = 0;
const start = Date.now();

function mixedLines(n: number, t: string): void {
  while (n > 0) {
    const from = written % POOL;
    const take = Math.min(n, POOL - from);
    for (let i = from; i < from + take; i++) pool.write(t, lineStart[i], STAMP_BYTES, 'latin1');
    fs.writeSync(fd, pool, lineStart[from], lineStart[from + take] - lineStart[from]);
    written += take;
    n -= take;
  }
}

function batch(): void {
  const now = Date.now();
  const due = Math.min(Math.floor(((now - start) / 1000) * rate), rate * seconds);
  const t = stamp();
  if (mode === 'flood') {
    const parts: string[] = [];
    /* a new source every line (100.64.0.0/10: over 4 million before one comes again) */
    for (; written < due; written++) {
      parts.push(knockLine(t, `100.${64 + ((written >> 16) & 63)}.${(written >> 8) & 255}.${written & 255}`, 42, iface, dst));
    }
    if (parts.length > 0) fs.writeSync(fd, parts.join('\n') + '\n');
  } else {
    mixedLines(due - written, t);
    /* probe k knocks 42 at k × 100 ms, 196 at +20 ms, 69 at +40 ms; a late batch writes what is due, in order */
    const probeLines: string[] = [];
    let finished: string[] = [];
    for (;;) {
      const id = Math.floor(nextStep / 3);
      const step = nextStep % 3;
      if (id >= seconds * 10 || start + id * 100 + step * 20 > now) break;
      probeLines.push(knockLine(t, probeSource(id), [42, 196, 69][step], iface, dst));
      if (step === 2) finished.push(probeSource(id));
      nextStep++;
    }
    if (probeLines.length > 0) fs.writeSync(fd, probeLines.join('\n') + '\n');
    const at = Date.now();
    for (const src of finished) probes.push({ src, at });
    finished = [];
  }
  if (now - start < seconds * 1000) {
    setTimeout(batch, BATCH_MS);
    return;
  }
  fs.closeSync(fd);
  process.stdout.write(JSON.stringify({ written, seconds: (Date.now() - start) / 1000, probes }));
}

batch();
