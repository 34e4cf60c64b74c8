/** What tumbler asks of a firewall when a door says `allow:` instead of running commands. */
import { AllowRule } from '../model/door';
import { CommandResult } from '../exec/commandRunner';
import { Family } from '../model/address';

export interface AllowedEntry {
  src: string;
  family: Family;
  proto: 'tcp' | 'udp';
  port: number;
}

export interface FirewallBackend {
  readonly name: string;
  /** Creates tumbler's own chain/table and sets, and the jump into them; idempotent. */
  setup(): Promise<void>;
  /** Checks that the jump and tumbler's rule are in place and puts them back if someone removed them. */
  repair(): Promise<boolean>;
  /** Lets `src` reach `rules` for `seconds`; the kernel removes the entries itself after that. */
  allow(src: string, family: Family, rules: AllowRule[], seconds: number): Promise<void>;
  /** Takes the entries away again; an entry that is gone already is not an error. */
  revoke(src: string, family: Family, rules: AllowRule[]): Promise<void>;
  /** Every entry currently in tumbler's sets. */
  list(): Promise<AllowedEntry[]>;
  /** Empties tumbler's sets and chain and takes the jump out (on exit). */
  teardown(): Promise<void>;
}

export class FirewallError extends Error {
  constructor(readonly command: string, readonly stderr: string) {
    super(`${command}: ${stderr || 'failed'}`);
  }

  /** For a command that failed: what it said, or how it ended. */
  static of(command: string, r: CommandResult): FirewallError {
    return new FirewallError(command, r.stderr || r.error || `exit ${r.code ?? r.signal}`);
  }
}
