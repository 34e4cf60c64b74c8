/**
 * The state file under state_dir: every open door (with the exact commands that close it) and
 * the Tumbler replay cache. Written with atomic replace on every change, read once at start-up;
 * a file that cannot be read is moved aside, never trusted in part.
 */
import fs from 'node:fs';
import path from 'node:path';
import { isCanonicalTarget } from '../model/address';
import { writeFileAtomic } from '../util/atomicFile';
import { SavedDoor } from './dispatcher';

export interface SavedState {
  doors: SavedDoor[];
  replay: Record<string, number>;
}

const VERSION = 1;

function isSavedDoor(d: unknown): d is SavedDoor {
  const o = d as Record<string, unknown>;
  return (
    typeof o === 'object' && o !== null &&
    typeof o.door === 'string' &&
    typeof o.src === 'string' && isCanonicalTarget(o.src) &&
    (o.family === 4 || o.family === 6) &&
    (o.user === undefined || o.user === null || typeof o.user === 'string') &&
    typeof o.openedAt === 'number' &&
    (o.closesAt === null || typeof o.closesAt === 'number') &&
    typeof o.commandTimeoutMs === 'number' &&
    (o.closeAfterMs === null || typeof o.closeAfterMs === 'number') &&
    Array.isArray(o.allow) &&
    o.allow.every((r) => (r?.proto === 'tcp' || r?.proto === 'udp') && Number.isInteger(r.port) && r.port > 0 && r.port < 65536) &&
    Array.isArray(o.close) && o.close.every((c) => Array.isArray(c) && c.length > 0 && c.every((w) => typeof w === 'string'))
  );
}

export class StateStore {
  readonly file: string;

  constructor(readonly dir: string) {
    this.file = path.join(dir, 'state.json');
  }

  /** Creates the folder (root only) and reads the last state; `warn` hears of a bad file. */
  load(warn: (message: string) => void): SavedState {
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { doors: [], replay: {} };
      throw err;
    }
    try {
      const data = JSON.parse(text);
      if (data?.version !== VERSION || !Array.isArray(data.doors) || !data.doors.every(isSavedDoor)) {
        throw new Error('not a tumblerd state file of version 1');
      }
      return { doors: data.doors, replay: typeof data.replay === 'object' && data.replay ? data.replay : {} };
    } catch (err) {
      const aside = `${this.file}.corrupt-${Date.now()}`;
      fs.renameSync(this.file, aside);
      warn(`state file ${this.file} is unreadable (${(err as Error).message}): moved to ${aside}, starting empty`);
      return { doors: [], replay: {} };
    }
  }

  save(state: SavedState): void {
    writeFileAtomic(this.file, JSON.stringify({ version: VERSION, savedAt: new Date().toISOString(), ...state }));
  }
}
