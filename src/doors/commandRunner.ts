/** Runs door commands: argv straight to execFile (never a shell), with a time limit. */
import { execFile } from 'node:child_process';

export interface CommandResult {
  ok: boolean;
  code: number | null;
  signal: string | null;
  timedOut: boolean;
  stderr: string;
  error?: string;
}

export type CommandRunner = (argv: readonly string[], timeoutMs: number) => Promise<CommandResult>;

export const execRunner: CommandRunner = (argv, timeoutMs) =>
  new Promise((resolve) => {
    execFile(
      argv[0],
      argv.slice(1),
      { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 256 * 1024, windowsHide: true },
      (err, _stdout, stderr) => {
        const e = err as (NodeJS.ErrnoException & { killed?: boolean; signal?: string; code?: number | string }) | null;
        resolve({
          ok: !e,
          code: typeof e?.code === 'number' ? e.code : e ? null : 0,
          signal: e?.signal ?? null,
          timedOut: !!e?.killed,
          stderr: String(stderr).trim().slice(0, 2000),
          error: e && typeof e.code === 'string' ? e.message : undefined,
        });
      },
    );
  });

/** --dry-run: says what it would run and reports success. */
export function dryRunner(say: (argv: readonly string[]) => void): CommandRunner {
  return async (argv) => {
    say(argv);
    return { ok: true, code: 0, signal: null, timedOut: false, stderr: '' };
  };
}
