/**
 * The open doors, `state_dir/doors.json`: every door open now, with the exact commands that close
 * it and the boot it was opened in. It belongs to the dispatcher alone (the replay cache keeps
 * its own file), is small (at most max_open doors per door), and is replaced atomically with
 * fsync on every change, off the event loop; writes asked for while one runs are made as one.
 *
 * It is read once at start, entry by entry: a bad entry is reported and skipped, and a number out
 * of range is reported and replaced by the value that closes the door soonest, so that one bad
 * line neither stops the daemon nor makes it forget the good doors.
 */
import fs from 'node:fs';
import path from 'node:path';
import { canonicalSource } from '../model/address';
import { writeFileAtomicAsync } from '../util/atomicFile';
import { SavedDoor } from './dispatcher';

const VERSION = 2;
const DAY_MS = 86_400_000;
/** The longest close_after and command_timeout a door may have (documented in the README). */
export const MAX_CLOSE_AFTER_MS = 365 * DAY_MS;
export const MAX_COMMAND_TIMEOUT_MS = DAY_MS;
const DEFAULT_COMMAND_TIMEOUT_MS = 10_000;
const DOOR_NAME = /^[A-Za-z0-9._-]{1,64}$/;
const MAX_COMMANDS = 16;
const MAX_WORDS = 64;
const MAX_WORD = 4096;

export interface LoadedState {
  doors: SavedDoor[];
  /** The boot the doors were saved in (null: unknown, from an older file). */
  bootId: string | null;
  /** One line per entry skipped or repaired, and per file that could not be read. */
  problems: string[];
  /** Replay entries of a version-1 state.json, which held both; handed to the replay store once. */
  legacyReplay: Record<string, unknown>;
}

/** The kernel's id of this boot: doors saved under another one lost their kernel state with the reboot. */
export function currentBootId(file = '/proc/sys/kernel/random/boot_id'): string | null {
  try {
    return fs.readFileSync(file, 'utf8').trim() || null;
  } catch {
    return null;
  }
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isWord = (w: unknown): w is string => typeof w === 'string' && w.length <= MAX_WORD && !w.includes('\0');
const inRange = (v: unknown, min: number, max: number): v is number => typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max;

/** A saved door checked field by field: the door, or why it cannot be used; `repairs` hears of numbers put right. */
export function validateSavedDoor(o: unknown, now: number, repairs: (what: string) => void): SavedDoor | string {
  if (!isRecord(o)) return 'not an object';
  if (typeof o.door !== 'string' || !DOOR_NAME.test(o.door)) return 'door is not a door name';
  const src = typeof o.src === 'string' ? canonicalSource(o.src) : null;
  if (!src || src.address !== o.src) return 'src is not a canonical address';
  if (o.family !== src.family) return `family does not match ${o.src}`;
  if (!Array.isArray(o.close) || o.close.length > MAX_COMMANDS) return 'close is not a list of commands';
  for (const c of o.close) {
    if (!Array.isArray(c) || c.length === 0 || c.length > MAX_WORDS || !c.every(isWord)) return 'close holds a command that is not a list of words (or a word with a NUL)';
  }
  if (!Array.isArray(o.allow) || o.allow.length > MAX_WORDS) return 'allow is not a list of rules';
  for (const r of o.allow) {
    if (!isRecord(r) || (r.proto !== 'tcp' && r.proto !== 'udp') || !Number.isInteger(r.port) || (r.port as number) < 1 || (r.port as number) > 65535) {
      return 'allow holds a rule that is not tcp/udp and a port from 1 to 65535';
    }
  }
  if (o.via !== 'sequence' && o.via !== 'tumbler') return 'via is neither sequence nor tumbler';
  if (!(o.user === undefined || o.user === null || (isWord(o.user) && o.user.length <= 256))) return 'user is not a name';
  /* the door can be closed: from here on, a bad number is put right instead of losing the door */
  let openedAt = o.openedAt;
  if (!inRange(openedAt, 0, now + DAY_MS)) {
    repairs(`openedAt ${String(openedAt)} is out of range: taken as now`);
    openedAt = now;
  }
  let closeAfterMs = o.closeAfterMs;
  let closesAt = o.closesAt;
  if (!(closeAfterMs === null || (Number.isInteger(closeAfterMs) && inRange(closeAfterMs, 1, MAX_CLOSE_AFTER_MS)))) {
    repairs(`closeAfterMs ${String(closeAfterMs)} is out of range (1 ms to ${MAX_CLOSE_AFTER_MS / DAY_MS} days): the door closes now`);
    closeAfterMs = null;
    closesAt = now;
  } else if (!(closesAt === null || inRange(closesAt, 0, now + MAX_CLOSE_AFTER_MS))) {
    repairs(`closesAt ${String(closesAt)} is out of range (up to ${MAX_CLOSE_AFTER_MS / DAY_MS} days from now): the door closes now`);
    closesAt = now;
  }
  let commandTimeoutMs = o.commandTimeoutMs;
  if (!(Number.isInteger(commandTimeoutMs) && inRange(commandTimeoutMs, 1, MAX_COMMAND_TIMEOUT_MS))) {
    repairs(`commandTimeoutMs ${String(commandTimeoutMs)} is out of range: ${DEFAULT_COMMAND_TIMEOUT_MS} ms`);
    commandTimeoutMs = DEFAULT_COMMAND_TIMEOUT_MS;
  }
  const failingSince = inRange(o.closeFailingSince, 0, now + DAY_MS) ? o.closeFailingSince : null;
  return {
    door: o.door,
    src: src.address,
    family: src.family,
    via: o.via,
    user: (o.user as string | null | undefined) ?? null,
    openedAt: openedAt as number,
    closesAt: closesAt as number | null,
    close: o.close as string[][],
    allow: o.allow as SavedDoor['allow'],
    commandTimeoutMs: commandTimeoutMs as number,
    closeAfterMs: closeAfterMs as number | null,
    closeStarted: o.closeStarted === true,
    closeFailingSince: failingSince,
    lastCloseError: failingSince !== null && isWord(o.lastCloseError) ? o.lastCloseError.slice(0, 2000) : null,
  };
}

export class StateStore {
  readonly file: string;
  /** The version-1 file that held doors and the replay cache together; read once, then moved aside. */
  readonly legacyFile: string;
  private current: Promise<void> | null = null;
  private next: Promise<void> | null = null;

  constructor(
    readonly dir: string,
    /** The doors to save, taken when a write starts (so one write carries every change before it). */
    private readonly snapshot: () => SavedDoor[] = () => [],
    private readonly bootId: string | null = currentBootId(),
  ) {
    this.file = path.join(dir, 'doors.json');
    this.legacyFile = path.join(dir, 'state.json');
  }

  /** Reads the saved doors (the folder must exist and be trusted already). */
  load(now = Date.now()): LoadedState {
    const out: LoadedState = { doors: [], bootId: null, problems: [], legacyReplay: {} };
    let file = this.file;
    let text = this.read(file, out);
    if (text === null && fs.existsSync(this.legacyFile)) {
      file = this.legacyFile;
      text = this.read(file, out);
    }
    if (text === null) return out;
    let data: unknown;
    try {
      data = JSON.parse(text);
      if (!isRecord(data) || (data.version !== VERSION && data.version !== 1) || !Array.isArray(data.doors)) throw new Error('not a tumblerd state file');
    } catch (err) {
      const aside = `${file}.corrupt-${now}`;
      fs.renameSync(file, aside);
      out.problems.push(`${file} is unreadable (${(err as Error).message}): moved to ${aside}; no door is taken from it`);
      return out;
    }
    out.bootId = typeof data.boot === 'string' ? data.boot : null;
    (data.doors as unknown[]).forEach((d, i) => {
      const v = validateSavedDoor(d, now, (what) => out.problems.push(`${file}: door entry ${i}: ${what}`));
      if (typeof v === 'string') out.problems.push(`${file}: door entry ${i} skipped: ${v}`);
      else out.doors.push(v);
    });
    if (file === this.legacyFile && isRecord(data.replay)) out.legacyReplay = data.replay;
    return out;
  }

  /** Done with a version-1 file once its doors and replay entries are saved in their new places. */
  retireLegacy(): void {
    if (fs.existsSync(this.legacyFile)) fs.renameSync(this.legacyFile, `${this.legacyFile}.migrated`);
  }

  /**
   * Saves the doors as they are when the write starts; resolves once they are on disk, rejects
   * if they could not be written (a door must not open then).
   */
  save(): Promise<void> {
    if (!this.next) {
      const before = this.current ?? Promise.resolve();
      this.next = before
        .catch(() => undefined)
        .then(() => {
          this.next = null;
          const write = writeFileAtomicAsync(this.file, JSON.stringify({ version: VERSION, boot: this.bootId, savedAt: new Date().toISOString(), doors: this.snapshot() }));
          this.current = write;
          return write.finally(() => {
            if (this.current === write) this.current = null;
          });
        });
    }
    return this.next;
  }

  private read(file: string, out: LoadedState): string | null {
    try {
      return fs.readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') out.problems.push(`${file} cannot be read: ${(err as Error).message}`);
      return null;
    }
  }
}
