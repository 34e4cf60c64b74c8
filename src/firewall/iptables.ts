/**
 * iptables + ip6tables with ipset. One rule in tumbler's own chain TUMBLER (jumped to from the
 * top of INPUT) accepts new connections whose source address and destination port are in the
 * set tumbler4 / tumbler6; a door adds `source,proto:port` elements with a timeout, so the kernel
 * closes the door on time even while tumblerd is not running. Established connections keep
 * flowing through the host's own ESTABLISHED rule after the element expires.
 */
import { AllowRule } from '../model/door';
import { CommandRunner, formatCommand } from '../exec/commandRunner';
import { Family, canonicalSource } from '../model/address';
import { AllowedEntry, FirewallBackend, FirewallError } from './backend';

const CHAIN = 'TUMBLER';
const TIMEOUT_MS = 10_000;

const setName = (family: Family) => (family === 4 ? 'tumbler4' : 'tumbler6');
const tools: { tool: string; family: Family }[] = [
  { tool: 'iptables', family: 4 },
  { tool: 'ip6tables', family: 6 },
];
const acceptRule = (family: Family) =>
  ['-m', 'set', '--match-set', setName(family), 'src,dst', '-m', 'conntrack', '--ctstate', 'NEW', '-j', 'ACCEPT'];

export class IptablesBackend implements FirewallBackend {
  readonly name = 'iptables';

  constructor(private readonly run: CommandRunner) {}

  private async exec(argv: string[], input?: string): Promise<void> {
    const r = await this.run(argv, TIMEOUT_MS, input);
    if (!r.ok) throw FirewallError.of(formatCommand(argv), r);
  }

  private async succeeds(argv: string[]): Promise<boolean> {
    return (await this.run(argv, TIMEOUT_MS)).ok;
  }

  async setup(): Promise<void> {
    for (const { tool, family } of tools) {
      await this.exec(['ipset', 'create', setName(family), 'hash:ip,port', 'family', family === 4 ? 'inet' : 'inet6', 'timeout', '0', '-exist']);
      if (!(await this.succeeds([tool, '-w', '-n', '-L', CHAIN]))) await this.exec([tool, '-w', '-N', CHAIN]);
      /* whatever else is in tumbler's chain was put there by someone else: a rule no one closes */
      await this.exec([tool, '-w', '-F', CHAIN]);
      await this.exec([tool, '-w', '-A', CHAIN, ...acceptRule(family)]);
      if (!(await this.succeeds([tool, '-w', '-C', 'INPUT', '-j', CHAIN]))) await this.exec([tool, '-w', '-I', 'INPUT', '1', '-j', CHAIN]);
    }
  }

  async repair(): Promise<boolean> {
    let repaired = false;
    for (const { tool, family } of tools) {
      if (!(await this.succeeds(['ipset', 'list', '-n', setName(family)]))) repaired = true;
      else if (!(await this.succeeds([tool, '-w', '-C', CHAIN, ...acceptRule(family)]))) repaired = true;
      else if (!(await this.succeeds([tool, '-w', '-C', 'INPUT', '-j', CHAIN]))) repaired = true;
      if (repaired) break;
    }
    if (repaired) await this.setup();
    return repaired;
  }

  private batch(verb: 'add' | 'del', src: string, family: Family, rules: AllowRule[], seconds?: number): string {
    return rules
      .map((r) => `${verb} ${setName(family)} ${src},${r.proto}:${r.port}${seconds !== undefined ? ` timeout ${seconds}` : ''}\n`)
      .join('');
  }

  async allow(src: string, family: Family, rules: AllowRule[], seconds: number): Promise<void> {
    /* -exist: a knock on an open door renews the timeout instead of failing */
    await this.exec(['ipset', '-exist', 'restore'], this.batch('add', src, family, rules, Math.max(1, Math.ceil(seconds))));
  }

  async revoke(src: string, family: Family, rules: AllowRule[]): Promise<void> {
    await this.exec(['ipset', '-exist', 'restore'], this.batch('del', src, family, rules));
  }

  async list(): Promise<AllowedEntry[]> {
    const out: AllowedEntry[] = [];
    for (const family of [4, 6] as Family[]) {
      const argv = ['ipset', 'list', setName(family), '-output', 'save'];
      const r = await this.run(argv, TIMEOUT_MS);
      if (!r.ok) throw FirewallError.of(formatCommand(argv), r);
      for (const line of r.stdout.split('\n')) {
        const m = /^add \S+ (\S+),(tcp|udp):(\d+)/.exec(line);
        const src = m && canonicalSource(m[1]);
        if (m && src) out.push({ src: src.address, family: src.family, proto: m[2] as 'tcp' | 'udp', port: Number(m[3]) });
      }
    }
    return out;
  }

  async teardown(): Promise<void> {
    for (const { tool, family } of tools) {
      while (await this.succeeds([tool, '-w', '-D', 'INPUT', '-j', CHAIN]));
      await this.run([tool, '-w', '-F', CHAIN], TIMEOUT_MS);
      await this.run([tool, '-w', '-X', CHAIN], TIMEOUT_MS);
      await this.run(['ipset', 'destroy', setName(family)], TIMEOUT_MS);
    }
  }
}
