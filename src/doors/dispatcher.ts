/**
 * The one place doors open and close, whatever way the knock came: a door opened for a source
 * runs its open commands, and its close commands `close_after` later. A door already open for
 * that source is not opened again; the knock extends it.
 */
import { DoorConfig } from '../config/types';
import { Family, isCanonicalSource } from '../netfilter/address';
import { expandCommand, formatCommand } from './commandTemplate';
import { CommandRunner } from './commandRunner';

export type KnockKind = 'sequence' | 'tumbler';

export interface OpenDoor {
  door: string;
  src: string;
  family: Family;
  via: KnockKind;
  openedAt: number;
  closesAt: number | null;
}

export interface DispatcherLog {
  info(message: string, meta?: Record<string, unknown>): void;
  warn(message: string, meta?: Record<string, unknown>): void;
  error(message: string, meta?: Record<string, unknown>): void;
}

/** An open door as the state file keeps it: enough to close it after a restart, whatever the config says then. */
export interface SavedDoor extends OpenDoor {
  close: string[][];
  commandTimeoutMs: number;
}

interface Entry extends SavedDoor {
  timer: NodeJS.Timeout | null;
  closeAfterMs: number | null;
  closing: Promise<void> | null;
}

export class DoorDispatcher {
  private doors = new Map<string, DoorConfig>();
  private readonly open = new Map<string, Entry>();

  constructor(
    doors: readonly DoorConfig[],
    private readonly run: CommandRunner,
    private readonly log: DispatcherLog,
    /** Called whenever the set of open doors changes, before the change is acted on. */
    private readonly persist: () => void = () => {},
    private readonly now: () => number = Date.now,
  ) {
    this.reconfigure(doors);
  }

  reconfigure(doors: readonly DoorConfig[]): void {
    this.doors = new Map(doors.map((d) => [d.name, d]));
  }

  list(): OpenDoor[] {
    return [...this.open.values()].map(({ door, src, family, via, openedAt, closesAt }) => ({
      door, src, family, via, openedAt, closesAt,
    }));
  }

  snapshot(): SavedDoor[] {
    return [...this.open.values()].map(({ timer: _t, closeAfterMs: _c, closing: _p, ...saved }) => saved);
  }

  /** Takes back the doors a previous run left open: overdue ones close now, the rest on time. */
  async restore(saved: readonly SavedDoor[]): Promise<void> {
    const now = this.now();
    const due: Entry[] = [];
    for (const s of saved) {
      const entry: Entry = { ...s, timer: null, closeAfterMs: null, closing: null };
      this.open.set(`${s.door}\0${s.src}`, entry);
      if (s.closesAt === null) continue;
      if (s.closesAt <= now) due.push(entry);
      else entry.timer = setTimeout(() => void this.close(entry, 'close_after elapsed'), s.closesAt - now);
    }
    this.log.info('open doors restored from the state file', { doors: saved.length, overdue: due.length });
    await Promise.all(due.map((e) => this.close(e, 'overdue at start-up')));
  }

  /** Opens `door` for `src`; resolves once its open commands have run. */
  async openDoor(name: string, src: string, family: Family, via: KnockKind): Promise<void> {
    const door = this.doors.get(name);
    if (!door) return;
    if (!isCanonicalSource(src)) {
      this.log.error('refusing to open a door for something that is not an address', { door: name, src });
      return;
    }
    const key = `${name}\0${src}`;
    const now = this.now();
    let existing = this.open.get(key);
    if (existing?.closing) {
      await existing.closing; /* a knock during the close opens the door afresh once it is shut */
      existing = this.open.get(key);
    }
    if (existing) {
      this.schedule(existing, now);
      this.log.info('door already open: extended', { door: name, src, via, closesAt: iso(existing.closesAt) });
      return;
    }
    const closeTemplates = family === 6 && door.close6.length ? door.close6 : door.close;
    const entry: Entry = {
      door: name,
      src,
      family,
      via,
      openedAt: now,
      closesAt: null,
      close: closeTemplates.map((t) => expandCommand(t, { ip: src, name })),
      commandTimeoutMs: door.commandTimeoutMs,
      timer: null,
      closeAfterMs: door.closeAfterMs,
      closing: null,
    };
    this.open.set(key, entry);
    this.schedule(entry, now);
    /* on disk before anything opens: a crash from here on still leaves a record to close it by */
    this.persist();
    this.log.info('door opened', { door: name, src, via, closesAt: iso(entry.closesAt) });
    const openTemplates = family === 6 && door.open6.length ? door.open6 : door.open;
    await this.runAll(openTemplates.map((t) => expandCommand(t, { ip: src, name })), door.commandTimeoutMs, name, src, 'open');
    if (entry.closesAt === null) {
      this.open.delete(key);
      this.persist();
    }
  }

  /** Closes one open door now. */
  async closeDoor(name: string, src: string, reason: string): Promise<boolean> {
    const entry = this.open.get(`${name}\0${src}`);
    if (!entry) return false;
    await this.close(entry, reason);
    return true;
  }

  /** Closes every open door that has something to close it with (on shutdown). */
  async closeAll(reason: string): Promise<void> {
    await Promise.all([...this.open.values()].map((e) => this.close(e, reason)));
  }

  private schedule(entry: Entry, now: number): void {
    const after = entry.closeAfterMs;
    if (after === null) return;
    if (entry.timer) clearTimeout(entry.timer);
    entry.closesAt = now + after;
    entry.timer = setTimeout(() => void this.close(entry, 'close_after elapsed'), after);
    this.persist();
  }

  private close(entry: Entry, reason: string): Promise<void> {
    entry.closing ??= this.shut(entry, reason);
    return entry.closing;
  }

  private async shut(entry: Entry, reason: string): Promise<void> {
    const key = `${entry.door}\0${entry.src}`;
    if (entry.timer) clearTimeout(entry.timer);
    await this.runAll(entry.close, entry.commandTimeoutMs, entry.door, entry.src, 'close');
    /* forgotten only once closed: a crash during the close commands runs them again on restart */
    this.open.delete(key);
    this.persist();
    this.log.info('door closed', { door: entry.door, src: entry.src, reason });
  }

  private async runAll(commands: string[][], timeoutMs: number, door: string, src: string, what: string): Promise<void> {
    for (const argv of commands) {
      const r = await this.run(argv, timeoutMs);
      if (r.ok) continue;
      this.log.error(`${what} command failed`, {
        door,
        src,
        command: formatCommand(argv),
        status: r.timedOut ? `killed after ${timeoutMs}ms` : r.error ?? r.signal ?? r.code,
        stderr: r.stderr,
      });
    }
  }
}

function iso(t: number | null): string {
  return t === null ? 'never' : new Date(t).toISOString();
}
