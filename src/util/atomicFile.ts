/**
 * Files tumblerd writes as root. Each is created without following a symlink (O_NOFOLLOW) and a
 * temporary file only if it did not exist (O_EXCL), so that whoever could plant a link in the
 * folder still could not make root write through it; the folders themselves are checked by
 * trustedDir.ts before anything is written.
 */
import fs from 'node:fs';
import path from 'node:path';

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_APPEND, O_TRUNC } = fs.constants;

/** For a file that is only ever appended to (a log): created if missing, never through a symlink. */
export const APPEND_FLAGS = O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW;

const tempOf = (file: string) => path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);

/** Writes a file so that a crash leaves either the old or the new content, never half of one. */
export function writeFileAtomic(file: string, data: string, mode = 0o600): void {
  const tmp = tempOf(file);
  fs.rmSync(tmp, { force: true }); /* left by a crash of this pid's predecessor; rm does not follow links */
  const fd = fs.openSync(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_TRUNC, mode);
  try {
    fs.writeSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  fsyncDir(path.dirname(file));
}

/** The same without blocking the event loop: the write and both fsyncs run on libuv's threads. */
export async function writeFileAtomicAsync(file: string, data: string | Buffer, mode = 0o600): Promise<void> {
  const tmp = tempOf(file);
  const create = () => fs.promises.open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_TRUNC, mode);
  /* a door waits for this write: the stale temp file of a crashed predecessor is removed only when there is one */
  const fh = await create().catch(async (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
    await fs.promises.rm(tmp, { force: true });
    return create();
  });
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (err) {
    await fh.close();
    await fs.promises.rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  await fs.promises.rename(tmp, file);
  const dir = await fs.promises.open(path.dirname(file), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

/** A rename or a new file is only durable once its folder is synced. */
export function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
