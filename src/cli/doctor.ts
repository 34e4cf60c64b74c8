/**
 * `tumblerd doctor`: every preflight check (the daemon's and --check's) with its verdict and
 * its fix, for the first hour on a new host. Exits 1 if any check fails.
 */
import type { TumblerdConfig } from '../config/types';
import { PreflightEnv, hostEnv } from '../preflight/env';
import { NamedResult, runPreflight } from '../preflight/preflight';
import { PREFLIGHT_CHECKS } from '../preflight/securityChecks';

const MARK = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL' } as const;

/** One line per result, and a line for its fix: a report to read, where --check's is one to grep. */
export function formatReport(results: readonly NamedResult[]): string {
  const lines = results.flatMap((r) => [`${MARK[r.status]} ${r.check}: ${r.message}`, ...(r.fix && r.status !== 'ok' ? [`     fix: ${r.fix}`] : [])]);
  const count = (s: NamedResult['status']) => results.filter((r) => r.status === s).length;
  lines.push(`${count('ok')} ok, ${count('warn')} warning(s), ${count('fail')} failure(s)`);
  return lines.join('\n');
}

export async function runDoctor(config: TumblerdConfig, write: (text: string) => void, env: PreflightEnv = hostEnv()): Promise<number> {
  const results = await runPreflight(config, PREFLIGHT_CHECKS, env);
  write(`${config.file}:\n${formatReport(results)}\n`);
  return results.some((r) => r.status === 'fail') ? 1 : 0;
}
