/**
 * One tumblerd per state folder. The lock is flock(2) on `state_dir/tumblerd.lock`, taken by
 * util-linux's flock(1) on a descriptor this process opened and keeps: a flock belongs to the
 * open file description, so it stays held after flock(1) exits and the kernel drops it when
 * this process dies, however it dies (no stale lock files to guess about). Node has no flock of
 * its own, and descriptors Node opens are close-on-exec, so door commands do not inherit it.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export class AlreadyRunningError extends Error {}

const CONFLICT = 75;

/** Takes the lock or throws AlreadyRunningError; `release()` closes the descriptor (and so the lock). */
export function lockStateDir(dir: string): { release(): void } {
  const file = path.join(dir, 'tumblerd.lock');
  const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW, 0o600);
  const r = spawnSync('flock', ['--nonblock', '--exclusive', '--conflict-exit-code', String(CONFLICT), '3'], {
    stdio: ['ignore', 'ignore', 'pipe', fd],
    encoding: 'utf8',
  });
  if (r.status !== 0) {
    fs.closeSync(fd);
    if (r.status === CONFLICT) {
      throw new AlreadyRunningError(`another tumblerd is running with state_dir ${dir} (it holds ${file}): stop it first, or give this one another state_dir`);
    }
    throw new Error(`could not lock ${file}: ${r.error?.message ?? r.stderr.trim() ?? `flock exited ${r.status}`}`);
  }
  let held = true;
  return {
    release() {
      if (held) fs.closeSync(fd);
      held = false;
    },
  };
}
