/**
 * Which config keys a reload applies and which need a restart, declared in one table. The
 * table's type names every key of TumblerdConfig, so a new key cannot be added without
 * deciding which kind it is.
 */
import { TumblerdConfig } from './types';

export type ReloadKind = 'live' | 'restart';

export const RELOAD_POLICY: Record<Exclude<keyof TumblerdConfig, 'file'>, ReloadKind> = {
  log: 'live',
  maxSources: 'live',
  keepOpenOnExit: 'live',
  sources: 'live',
  tumbler: 'live',
  doors: 'live',
  interfaces: 'live',
  /* open doors, the replay cache and the control socket live there */
  stateDir: 'restart',
  /* doors open now were opened through the old backend and must be closed through it */
  firewall: 'restart',
  nftables: 'restart',
  /* the exporter's socket is bound once, at start, like the control socket */
  metrics: 'restart',
  /* the Redis connections, the consumer group and the replay store are made once */
  fleet: 'restart',
};

const yamlName = (camel: string) => camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** The YAML paths whose values differ (`log.level`, `nftables.table`, `doors`). */
function changedPaths(a: unknown, b: unknown, path: string): string[] {
  const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  /* doors and sources are lists of whole things: one name for a change anywhere in them */
  if (isRecord(a) && isRecord(b) && path.split('.').length < 2) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    return [...keys].flatMap((k) => changedPaths(a[k], b[k], `${path}.${yamlName(k)}`));
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [path];
}

/** `after`, except that every restart-only key keeps its value from `before`: what a running daemon runs on after a reload. */
export function applyLive(before: TumblerdConfig, after: TumblerdConfig): TumblerdConfig {
  const running: TumblerdConfig = { ...after };
  for (const key of Object.keys(RELOAD_POLICY) as (keyof typeof RELOAD_POLICY)[]) {
    if (RELOAD_POLICY[key] === 'restart') Object.assign(running, { [key]: before[key] });
  }
  return running;
}

export interface ConfigChange {
  live: string[];
  restart: string[];
}

export function configChange(before: TumblerdConfig, after: TumblerdConfig): ConfigChange {
  const change: ConfigChange = { live: [], restart: [] };
  for (const key of Object.keys(RELOAD_POLICY) as (keyof typeof RELOAD_POLICY)[]) {
    change[RELOAD_POLICY[key]].push(...changedPaths(before[key], after[key], yamlName(key)));
  }
  return change;
}
