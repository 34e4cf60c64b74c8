/** The validated configuration the daemon runs on. Names follow the YAML keys, in camelCase. */
import type { ListenAddress } from '../model/address';
import type { DoorConfig } from '../model/door';
import type { FleetConfig } from '../fleet/config';

export type LogLevel = 'error' | 'warn' | 'info' | 'verbose' | 'debug';

export type SourceConfig =
  | { kind: 'file'; path: string; prefixes: string[]; timeZone?: string }
  | { kind: 'kmsg'; path: string; prefixes: string[] }
  | { kind: 'journald'; prefixes: string[] };

/** Where the Prometheus endpoint listens: TCP, or a Unix socket. */
export type MetricsListen = ListenAddress | { path: string };

export interface TumblerdConfig {
  /** The file it was read from, for messages. */
  file: string;
  log: { level: LogLevel; file: string | null; format: 'text' | 'json' };
  stateDir: string;
  maxSources: number;
  firewall: 'iptables' | 'nftables' | null;
  nftables: { table: string; chain: string };
  keepOpenOnExit: boolean;
  /** Classic knocks count only on these interfaces; absent: any of the namespace's. */
  interfaces?: string[];
  sources: SourceConfig[];
  tumbler: { listen: ListenAddress[]; skewMinutes: number };
  /** null: no metrics endpoint. */
  metrics: { listen: MetricsListen } | null;
  /** Shared replay and grants with other gateways through Redis; null when alone. */
  fleet: FleetConfig | null;
  doors: DoorConfig[];
}
