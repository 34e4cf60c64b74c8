/**
 * The firewall of `--dry-run`: says what it would do and keeps the entries in memory. The real
 * backends query the firewall (iptables -C, nft list), and a runner that pretends every command
 * succeeds gave them answers no firewall gives: endless loops, JSON that does not parse.
 */
import { AllowRule } from '../model/door';
import { Family } from '../model/address';
import { AllowedEntry, FirewallBackend } from './backend';

export class DryRunFirewall implements FirewallBackend {
  readonly name: string;
  private readonly entries = new Map<string, AllowedEntry>();

  constructor(
    kind: string,
    private readonly say: (message: string) => void,
  ) {
    this.name = `${kind} (dry run)`;
  }

  async setup(): Promise<void> {
    this.say(`dry run: would set up tumbler's ${this.name} chain, sets and jump`);
  }

  async repair(): Promise<boolean> {
    return false;
  }

  async allow(src: string, family: Family, rules: AllowRule[], seconds: number): Promise<void> {
    for (const r of rules) this.entries.set(`${src}|${r.proto}|${r.port}`, { src, family, proto: r.proto, port: r.port });
    this.say(`dry run: would allow ${src} to ${rules.map((r) => `${r.proto}/${r.port}`).join(' ')} for ${Math.ceil(seconds)} s`);
  }

  async revoke(src: string, _family: Family, rules: AllowRule[]): Promise<void> {
    for (const r of rules) this.entries.delete(`${src}|${r.proto}|${r.port}`);
    this.say(`dry run: would remove ${src} from ${rules.map((r) => `${r.proto}/${r.port}`).join(' ')}`);
  }

  async list(): Promise<AllowedEntry[]> {
    return [...this.entries.values()];
  }

  async teardown(): Promise<void> {
    this.entries.clear();
    this.say(`dry run: would remove tumbler's ${this.name} chain, sets and jump`);
  }
}
