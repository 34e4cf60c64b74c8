/**
 * The checks that say whether a setup can work, run by the daemon at start and by
 * `tumblerd --check` alike, so that the two never disagree. Each check is named, says what it
 * found, and for anything short of OK, how to fix it.
 */
import { TumblerdConfig } from '../config/types';
import { PreflightEnv, hostEnv } from './env';

export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface CheckResult {
  status: CheckStatus;
  message: string;
  fix?: string;
}

export interface PreflightCheck {
  name: string;
  /** `env` is how a check looks at the host (firewall, devices, programs; the real host when absent); checks of the config alone ignore it. */
  run(config: TumblerdConfig, env?: PreflightEnv): CheckResult[] | Promise<CheckResult[]>;
}

export interface NamedResult extends CheckResult {
  check: string;
}

export async function runPreflight(config: TumblerdConfig, checks: readonly PreflightCheck[], env: PreflightEnv = hostEnv()): Promise<NamedResult[]> {
  const out: NamedResult[] = [];
  for (const c of checks) {
    try {
      for (const r of await c.run(config, env)) out.push({ check: c.name, ...r });
    } catch (err) {
      out.push({ check: c.name, status: 'fail', message: `the check itself failed: ${(err as Error).message}` });
    }
  }
  return out;
}

export function formatResult(r: NamedResult): string {
  return `${r.status.toUpperCase()} ${r.check}: ${r.message}${r.fix ? ` (fix: ${r.fix})` : ''}`;
}
