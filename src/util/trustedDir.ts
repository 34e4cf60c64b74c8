/**
 * A folder root may keep its state in: root's, writable by no one else, and so are all the
 * folders above it, except that a root-owned sticky folder such as /tmp may be writable by all
 * (others cannot rename or remove what root made in it). Anyone who could write into the state
 * folder could plant a close command root runs at the next start, a symlink root writes
 * through, or a socket that answers `status` and `revoke` in tumblerd's place.
 */
import fs from 'node:fs';
import path from 'node:path';

export class UntrustedPathError extends Error {}

const STICKY = 0o1000;

function describe(st: fs.Stats): string {
  return `owner uid ${st.uid}, mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')}`;
}

/** Why `dir` (an existing folder) or a folder above it is not safe for root, or null. */
export function untrustedReason(dir: string, uid = 0): string | null {
  const chains = new Set([path.resolve(dir), fs.realpathSync(dir)]);
  for (const start of chains) {
    for (let p = start, own = true; ; p = path.dirname(p), own = false) {
      const st = fs.lstatSync(p);
      if (st.uid !== uid) return `${p} belongs to uid ${st.uid}, not to uid ${uid} (${describe(st)})`;
      if (st.isSymbolicLink()) {
        /* a link root owns in a folder no one else writes to: its target is checked as the real path */
      } else if (own && (st.mode & 0o022) !== 0) {
        return `${p} can be written by others (${describe(st)})`;
      } else if (!own && (st.mode & 0o022) !== 0 && (st.mode & STICKY) === 0) {
        return `${p}, a folder above it, can be written by others and is not sticky (${describe(st)})`;
      }
      if (p === path.dirname(p)) break;
    }
  }
  return null;
}

/**
 * Creates the state folder 0700 if it is missing, sets it to 0700 if it is not, and refuses
 * (throws UntrustedPathError) a folder that someone other than `uid` could have tampered with.
 * Checked only when running as root: an unprivileged tumblerd can only hurt itself.
 */
export function prepareStateDir(dir: string, uid = process.getuid?.() ?? -1): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (uid !== 0) return;
  const st = fs.lstatSync(dir);
  if (!st.isDirectory()) throw new UntrustedPathError(`state_dir ${dir} is not a folder (a symlink to one is not taken)`);
  const why = untrustedReason(dir, uid);
  if (why) throw new UntrustedPathError(`state_dir ${dir} is not safe for root: ${why}. Make it root's and 0700 (chown root: ; chmod 700), and every folder above it root's and not writable by others`);
  if ((st.mode & 0o777) !== 0o700) fs.chmodSync(dir, 0o700);
}
