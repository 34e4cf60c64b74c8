/**
 * nftables. An accept in a table of tumbler's own would not get past a drop in the host's
 * table (every base chain on a hook has its say), so tumbler works inside the host's inet table
 * (`nftables: { table, chain }`, by default Debian's `inet filter` / `input`): its own sets
 * tumbler4 / tumbler6 with per-element timeouts, its own chain `tumbler` that accepts new
 * connections found in them, and a jump to it at the top of the host's input chain.
 */
import { AllowRule } from '../model/door';
import { CommandRunner } from '../exec/commandRunner';
import { Family, canonicalSource } from '../model/address';
import { AllowedEntry, FirewallBackend, FirewallError } from './backend';

const TIMEOUT_MS = 10_000;
const CHAIN = 'tumbler';
const setName = (family: Family) => (family === 4 ? 'tumbler4' : 'tumbler6');

export interface NftablesPlace {
  /** "inet filter": family and name of the host's table. */
  table: string;
  /** The host's input base chain in that table. */
  chain: string;
}

export class NftablesBackend implements FirewallBackend {
  readonly name = 'nftables';
  private readonly table: string;
  private readonly hostChain: string;

  constructor(
    private readonly run: CommandRunner,
    place: NftablesPlace = { table: 'inet filter', chain: 'input' },
  ) {
    this.table = place.table;
    this.hostChain = place.chain;
  }

  private async nft(script: string): Promise<void> {
    const r = await this.run(['nft', '-f', '-'], TIMEOUT_MS, script);
    if (!r.ok) throw FirewallError.of(`nft -f - <<< ${script.trim().split('\n')[0]}`, r);
  }

  private async output(args: string[]): Promise<string | null> {
    const r = await this.run(['nft', ...args], TIMEOUT_MS);
    return r.ok ? r.stdout : null;
  }

  async setup(): Promise<void> {
    const t = this.table;
    await this.nft(
      `add set ${t} tumbler4 { type ipv4_addr . inet_proto . inet_service; flags timeout; }\n` +
        `add set ${t} tumbler6 { type ipv6_addr . inet_proto . inet_service; flags timeout; }\n` +
        `add chain ${t} ${CHAIN}\n` +
        /* whatever else is in tumbler's chain was put there by someone else: a rule no one closes */
        `flush chain ${t} ${CHAIN}\n` +
        `add rule ${t} ${CHAIN} ct state new ip saddr . meta l4proto . th dport @tumbler4 accept\n` +
        `add rule ${t} ${CHAIN} ct state new ip6 saddr . meta l4proto . th dport @tumbler6 accept\n`,
    );
    const host = await this.output(['list', 'chain', ...this.table.split(' '), this.hostChain]);
    if (host === null) throw new FirewallError(`nft list chain ${t} ${this.hostChain}`, 'the host chain does not exist');
    if (!host.includes(`jump ${CHAIN}`)) await this.nft(`insert rule ${t} ${this.hostChain} jump ${CHAIN}\n`);
  }

  async repair(): Promise<boolean> {
    const ours = await this.output(['list', 'chain', ...this.table.split(' '), CHAIN]);
    const host = await this.output(['list', 'chain', ...this.table.split(' '), this.hostChain]);
    if (ours?.includes('@tumbler4') && ours.includes('@tumbler6') && host?.includes(`jump ${CHAIN}`)) return false;
    await this.setup();
    return true;
  }

  private elements(src: string, rules: AllowRule[], seconds?: number): string {
    return rules.map((r) => `${src} . ${r.proto} . ${r.port}${seconds !== undefined ? ` timeout ${seconds}s` : ''}`).join(', ');
  }

  async allow(src: string, family: Family, rules: AllowRule[], seconds: number): Promise<void> {
    /* an element that exists keeps its old timeout on add: take it out first to renew it */
    await this.revoke(src, family, rules);
    await this.nft(`add element ${this.table} ${setName(family)} { ${this.elements(src, rules, Math.max(1, Math.ceil(seconds)))} }\n`);
  }

  async revoke(src: string, family: Family, rules: AllowRule[]): Promise<void> {
    /* one element at a time: deleting one that is gone fails, and fails the whole batch */
    for (const r of rules) {
      await this.run(['nft', '-f', '-'], TIMEOUT_MS, `delete element ${this.table} ${setName(family)} { ${this.elements(src, [r])} }\n`);
    }
    const left = (await this.list()).filter((e) => e.src === src && rules.some((r) => r.proto === e.proto && r.port === e.port));
    if (left.length > 0) throw new FirewallError(`nft delete element ${this.table} ${setName(family)}`, 'the entry is still there');
  }

  async list(): Promise<AllowedEntry[]> {
    const out: AllowedEntry[] = [];
    for (const family of [4, 6] as Family[]) {
      const r = await this.run(['nft', '-j', 'list', 'set', ...this.table.split(' '), setName(family)], TIMEOUT_MS);
      if (!r.ok) throw FirewallError.of(`nft -j list set ${this.table} ${setName(family)}`, r);
      for (const item of JSON.parse(r.stdout).nftables ?? []) {
        for (const el of item.set?.elem ?? []) {
          const concat = (el.elem?.val ?? el)?.concat;
          if (!Array.isArray(concat) || concat.length !== 3) continue;
          const src = canonicalSource(String(concat[0]));
          const proto = concat[1];
          const port = Number(concat[2]);
          if (src && (proto === 'tcp' || proto === 'udp') && port > 0) out.push({ src: src.address, family: src.family, proto, port });
        }
      }
    }
    return out;
  }

  async teardown(): Promise<void> {
    const host = (await this.output(['-a', 'list', 'chain', ...this.table.split(' '), this.hostChain])) ?? '';
    for (const m of host.matchAll(new RegExp(`jump ${CHAIN} # handle (\\d+)`, 'g'))) {
      await this.run(['nft', 'delete', 'rule', ...this.table.split(' '), this.hostChain, 'handle', m[1]], TIMEOUT_MS);
    }
    await this.run(['nft', '-f', '-'], TIMEOUT_MS, `flush chain ${this.table} ${CHAIN}\ndelete chain ${this.table} ${CHAIN}\n`);
    for (const family of [4, 6] as Family[]) {
      await this.run(['nft', 'delete', 'set', ...this.table.split(' '), setName(family)], TIMEOUT_MS);
    }
  }
}
