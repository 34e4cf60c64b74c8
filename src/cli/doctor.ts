/**
 * `tumblerd doctor`: every preflight check with its verdict and its fix, for the first hour on
 * a new host; exits 1 if any check fails. `tumblerd --check` prints the same checks briefly.
 */
import type { TumblerdConfig } from '../config/types';
import { anyFailed, formatResults, runChecks } from '../preflight/checks';
import { PreflightEnv, hostEnv } from '../preflight/env';

export async function runDoctor(config: TumblerdConfig, write: (text: string) => void, env: PreflightEnv = hostEnv()): Promise<number> {
  const results = await runChecks(config, env);
  write(`${config.file}: ${results.length} checks\n${formatResults(results)}\n`);
  const counts = (s: string) => results.filter((r) => r.status === s).length;
  write(`${counts('ok')} ok, ${counts('warn')} warning(s), ${counts('fail')} failure(s)\n`);
  return anyFailed(results) ? 1 : 0;
}

/** What `--check` adds to its summary: the checks that are not OK, and 1 if one failed. */
export async function briefChecks(config: TumblerdConfig, write: (text: string) => void, env: PreflightEnv = hostEnv()): Promise<number> {
  const results = await runChecks(config, env);
  const text = formatResults(results, true);
  if (text) write(text + '\n');
  return anyFailed(results) ? 1 : 0;
}
