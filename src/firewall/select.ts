/** Which firewall backend a config asks for, or which one this host has. */
import { spawnSync } from 'node:child_process';
import { TumblerdConfig } from '../config/types';
import { CommandRunner } from '../doors/commandRunner';
import { FirewallBackend } from './backend';
import { IptablesBackend } from './iptables';
import { NftablesBackend } from './nftables';

function has(cmd: string): boolean {
  return spawnSync(cmd, ['--version'], { stdio: 'ignore' }).status === 0;
}

/** null when no door uses `allow:`: then tumbler never touches the firewall itself. */
export function selectFirewall(config: TumblerdConfig, run: CommandRunner): FirewallBackend | null {
  if (!config.doors.some((d) => d.allow.length > 0)) return null;
  const kind = config.firewall ?? (has('ipset') && has('iptables') ? 'iptables' : 'nftables');
  return kind === 'iptables' ? new IptablesBackend(run) : new NftablesBackend(run, config.nftables);
}
