/** Which firewall backend a config asks for, or which one this host has. */
import { spawnSync } from 'node:child_process';
import { TumblerdConfig } from '../config/types';
import { CommandRunner } from '../exec/commandRunner';
import { FirewallBackend } from './backend';
import { IptablesBackend } from './iptables';
import { NftablesBackend } from './nftables';

function has(cmd: string): boolean {
  return spawnSync(cmd, ['--version'], { stdio: 'ignore' }).status === 0;
}

export type FirewallKind = 'iptables' | 'nftables';

/** The backend a config needs; null when no door uses `allow:`: then tumbler never touches the firewall itself. */
export function firewallKind(config: TumblerdConfig): FirewallKind | null {
  if (!config.doors.some((d) => d.allow.length > 0)) return null;
  return config.firewall ?? (has('ipset') && has('iptables') ? 'iptables' : 'nftables');
}

export function createFirewall(kind: FirewallKind, config: TumblerdConfig, run: CommandRunner): FirewallBackend {
  return kind === 'iptables' ? new IptablesBackend(run) : new NftablesBackend(run, config.nftables);
}
