/**
 * Which LOG prefixes the kernel's netfilter lines carry: for `scan` and `doctor` to say "your
 * firewall logs with `FW-DROP: `, the config expects `FIREWALL: `" instead of staying silent.
 * Pure, and bounded: a log full of invented prefixes grows it by at most MAX_PREFIXES entries.
 */
import { kernelMessageOf } from './logLine';

const MAX_PREFIXES = 32;
/** LOG prefixes are at most 29 characters (the kernel's limit); longer text is not one. */
const MAX_PREFIX_LENGTH = 29;

/**
 * The prefix of a netfilter LOG line (`FIREWALL: ` in `FIREWALL: IN=eth0 OUT= ... SRC=...`),
 * trimmed of trailing space; '' for a rule without a prefix; null for any other line.
 */
export function netfilterPrefixOf(line: string): string | null {
  const msg = kernelMessageOf(line);
  if (msg === null) return null;
  const fields = msg.indexOf('IN=');
  if (fields < 0 || fields > MAX_PREFIX_LENGTH + 1) return null;
  if (!msg.startsWith(' OUT=', msg.indexOf(' ', fields)) || msg.indexOf(' SRC=', fields) < 0) return null;
  return msg.slice(0, fields).trimEnd();
}

export class PrefixCensus {
  readonly counts = new Map<string, number>();
  /** Netfilter lines whose prefix was not counted because the table was full. */
  uncounted = 0;

  add(line: string): void {
    const prefix = netfilterPrefixOf(line);
    if (prefix === null) return;
    const n = this.counts.get(prefix);
    if (n !== undefined) this.counts.set(prefix, n + 1);
    else if (this.counts.size < MAX_PREFIXES) this.counts.set(prefix, 1);
    else this.uncounted++;
  }

  /** Prefixes other than the configured ones, most frequent first. */
  others(configured: string[]): { prefix: string; lines: number }[] {
    const ours = new Set(configured.map((p) => p.trimEnd()));
    return [...this.counts]
      .filter(([p]) => !ours.has(p))
      .sort((a, b) => b[1] - a[1])
      .map(([prefix, lines]) => ({ prefix, lines }));
  }

  /** Lines that carry one of the configured prefixes. */
  matching(configured: string[]): number {
    let n = 0;
    for (const p of new Set(configured.map((c) => c.trimEnd()))) n += this.counts.get(p) ?? 0;
    return n;
  }
}
