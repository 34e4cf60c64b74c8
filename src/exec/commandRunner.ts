/** Runs door commands: argv straight to execFile (never a shell), with a time limit. */
import { execFile } from 'node:child_process';

export interface CommandResult {
  ok: boolean;
  code: number | null;
  signal: string | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
  error?: string;
}

/** `input`, if given, is written to the command's standard input (batches for ipset restore, nft -f -). */
export type CommandRunner = (argv: readonly string[], timeoutMs: number, input?: string) => Promise<CommandResult>;

/**
 * What a command gets as its environment: tumblerd's PATH and nothing else. tumblerd's own
 * environment may hold secrets (secret_env) that no door command needs to see.
 */
export function commandEnv(): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' };
}

export const execRunner: CommandRunner = (argv, timeoutMs, input) =>
  new Promise((resolve) => {
    const child = execFile(
      argv[0],
      argv.slice(1),
      { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024, windowsHide: true, env: commandEnv() },
      (err, stdout, stderr) => {
        const e = err as (NodeJS.ErrnoException & { killed?: boolean; signal?: string; code?: number | string }) | null;
        resolve({
          ok: !e,
          code: typeof e?.code === 'number' ? e.code : e ? null : 0,
          signal: e?.signal ?? null,
          timedOut: !!e?.killed,
          stdout: String(stdout),
          stderr: String(stderr).trim().slice(0, 2000),
          error: e && typeof e.code === 'string' ? e.message : undefined,
        });
      },
    );
    child.stdin?.on('error', () => undefined); /* a command that exits without reading its input */
    child.stdin?.end(input ?? '');
  });

/** --dry-run: says what it would run and reports success. */
export function dryRunner(say: (argv: readonly string[]) => void): CommandRunner {
  return async (argv, _timeoutMs, input) => {
    say(input ? [...argv, `<<< ${input.trim().split('\n').join(' ; ')}`] : argv);
    return { ok: true, code: 0, signal: null, timedOut: false, stdout: '', stderr: '' };
  };
}

/** The command as a sysadmin would read it in a log line. */
export function formatCommand(argv: readonly string[]): string {
  return argv.map((w) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, "'\\''")}'`)).join(' ');
}
