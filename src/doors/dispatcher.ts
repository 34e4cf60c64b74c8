/**
 * The one place doors open and close, whatever way the knock came. A door opened for a source
 * gets its firewall entries (`allow:`) and runs its open commands; `close_after` later the
 * entries go and the close commands run. A door already open for that source is not opened
 * again; the knock extends it. Every change is written to the state file before it is acted on,
 * and a close that fails is retried with backoff until it succeeds: a door is only forgotten
 * once it is shut.
 */
import { AllowRule, DoorConfig } from '../model/door';
import { FirewallBackend } from '../firewall/backend';
import { Family, isCanonicalSource } from '../model/address';
import type { Grant, KnockVia } from '../model/grant';
import { expandCommand } from './commandTemplate';
import { CommandRunner, formatCommand } from '../exec/commandRunner';

export interface OpenDoor {
  door: string;
  src: string;
  family: Family;
  via: KnockVia;
  /** Who opened it, where the knock protocol knows. */
  user: string | null;
  openedAt: number;
  closesAt: number | null;
}

/** An open door as the state file keeps it: enough to close it after a restart, whatever the config says then. */
export interface SavedDoor extends OpenDoor {
  close: string[][];
  allow: AllowRule[];
  commandTimeoutMs: number;
  /** How long a knock keeps it open: a knock after a restart extends it as before. */
  closeAfterMs: number | null;
}

export interface DispatcherLog {
  info(message: string, meta?: Record<string, unknown>): void;
  warn(message: string, meta?: Record<string, unknown>): void;
  error(message: string, meta?: Record<string, unknown>): void;
}

interface Entry extends SavedDoor {
  timer: NodeJS.Timeout | null;
  closing: Promise<void> | null;
  failedCloses: number;
}

const MAX_RETRY_MS = 60_000;

const keyOf = (door: string, src: string) => `${door}\0${src}`;

/** The IPv6 variant of a door's commands where it has one (knockd's `_6`), else the common ones. */
const forFamily = <T>(family: Family, v6: T[], common: T[]): T[] => (family === 6 && v6.length ? v6 : common);

export class DoorDispatcher {
  private doors = new Map<string, DoorConfig>();
  private readonly open = new Map<string, Entry>();

  constructor(
    doors: readonly DoorConfig[],
    private readonly run: CommandRunner,
    private readonly log: DispatcherLog,
    /** Called whenever the set of open doors changes, before the change is acted on. */
    private readonly persist: () => void = () => {},
    private readonly firewall: FirewallBackend | null = null,
    private readonly now: () => number = Date.now,
  ) {
    this.reconfigure(doors);
  }

  reconfigure(doors: readonly DoorConfig[]): void {
    this.doors = new Map(doors.map((d) => [d.name, d]));
  }

  list(): OpenDoor[] {
    return [...this.open.values()].map(({ door, src, family, via, user, openedAt, closesAt }) => ({
      door, src, family, via, user, openedAt, closesAt,
    }));
  }

  snapshot(): SavedDoor[] {
    return [...this.open.values()].map(({ timer: _t, closing: _c, failedCloses: _f, ...saved }) => saved);
  }

  /**
   * Takes back the doors a previous run left open: overdue ones close now, the rest on time.
   * Firewall entries that no saved door accounts for are removed: no one would close them.
   */
  async restore(saved: readonly SavedDoor[]): Promise<void> {
    const now = this.now();
    const due: Entry[] = [];
    for (const s of saved) {
      const entry: Entry = { ...s, user: s.user ?? null, timer: null, closing: null, failedCloses: 0 };
      this.open.set(keyOf(s.door, s.src), entry);
      if (s.closesAt === null) continue;
      if (s.closesAt <= now) due.push(entry);
      else this.arm(entry, s.closesAt - now);
    }
    if (saved.length > 0) this.log.info('open doors restored from the state file', { doors: saved.length, overdue: due.length });
    if (this.firewall) {
      const known = new Set(
        [...this.open.values()].flatMap((e) => e.allow.map((r) => `${e.src}|${r.proto}|${r.port}`)),
      );
      for (const x of await this.firewall.list()) {
        if (known.has(`${x.src}|${x.proto}|${x.port}`)) continue;
        this.log.warn('removing a firewall entry no open door accounts for', { src: x.src, allow: `${x.proto}/${x.port}` });
        await this.firewall.revoke(x.src, x.family, [{ proto: x.proto, port: x.port }]);
      }
    }
    await Promise.all(due.map((e) => this.close(e, 'overdue at start-up')));
  }

  /** Opens the granted door; resolves once its firewall entries and open commands are in place. */
  async openDoor(grant: Grant): Promise<void> {
    const { door: name, src, family, via, user } = grant;
    const door = this.doors.get(name);
    if (!door) return;
    if (!isCanonicalSource(src)) {
      this.log.error('refusing to open a door for something that is not an address', { door: name, src });
      return;
    }
    const key = keyOf(name, src);
    let existing = this.open.get(key);
    if (existing?.closing) {
      await existing.closing; /* a knock during the close opens the door afresh once it is shut */
      existing = this.open.get(key);
    }
    if (existing) {
      this.extend(existing, grant);
      return;
    }
    const entry: Entry = {
      door: name,
      src,
      family,
      via,
      user,
      openedAt: this.now(),
      closesAt: null,
      close: forFamily(family, door.close6, door.close).map((t) => expandCommand(t, { ip: src, name })),
      allow: door.allow,
      commandTimeoutMs: door.commandTimeoutMs,
      closeAfterMs: door.closeAfterMs,
      timer: null,
      closing: null,
      failedCloses: 0,
    };
    this.open.set(key, entry);
    this.schedule(entry, grant.untilMs);
    /* on disk before anything opens: a crash from here on still leaves a record to close it by */
    this.persist();
    this.log.info('door opened', { door: name, src, via, ...(user ? { user } : {}), closesAt: iso(entry.closesAt) });
    if (entry.allow.length > 0 && this.firewall) {
      try {
        if (await this.firewall.repair()) this.log.warn("tumbler's firewall chain or its jump was missing: put back");
        await this.firewall.allow(src, family, entry.allow, this.secondsLeft(entry));
      } catch (err) {
        this.log.error('open failed: could not add the firewall entries', { door: name, src, error: (err as Error).message });
      }
    }
    const open = forFamily(family, door.open6, door.open).map((t) => expandCommand(t, { ip: src, name }));
    await this.runAll(open, door.commandTimeoutMs, name, src, 'open');
    if (entry.closesAt === null && !entry.closing) {
      this.open.delete(key);
      this.persist();
    }
  }

  /** Closes one open door now; false if it was not open. */
  async closeDoor(name: string, src: string, reason: string): Promise<boolean> {
    const entry = this.open.get(keyOf(name, src));
    if (!entry) return false;
    await this.close(entry, reason);
    return true;
  }

  /** Closes every open door (on shutdown); resolves when each has been tried once. */
  async closeAll(reason: string): Promise<void> {
    await Promise.all([...this.open.values()].map((e) => this.close(e, reason, false)));
  }

  /* with the close_after the door opened with, like the timer, whatever a reload changed since */
  private extend(entry: Entry, grant: Grant): void {
    /* a grant that ends sooner than the door already closes does not shorten it */
    this.schedule(entry, grant.untilMs === undefined ? undefined : Math.max(grant.untilMs, entry.closesAt ?? 0));
    this.persist();
    this.log.info('door already open: extended', {
      door: entry.door,
      src: entry.src,
      via: grant.via,
      ...(grant.user ? { user: grant.user } : {}),
      closesAt: iso(entry.closesAt),
    });
    if (entry.allow.length > 0 && this.firewall && entry.closeAfterMs !== null) {
      this.firewall.allow(entry.src, entry.family, entry.allow, this.secondsLeft(entry)).catch((err: Error) =>
        this.log.error('could not renew the firewall entries', { door: entry.door, src: entry.src, error: err.message }),
      );
    }
  }

  /** close_after from now, or sooner where the grant ends sooner (`untilMs`). */
  private schedule(entry: Entry, untilMs?: number): void {
    if (entry.closeAfterMs === null) return;
    const now = this.now();
    entry.closesAt = Math.min(now + entry.closeAfterMs, untilMs ?? Infinity);
    this.arm(entry, entry.closesAt - now);
  }

  /* the kernel's own timeout for `allow:` entries ends with the door */
  private secondsLeft(entry: Entry): number {
    return entry.closesAt === null ? 0 : Math.max(1, Math.ceil((entry.closesAt - this.now()) / 1000));
  }

  private arm(entry: Entry, inMs: number): void {
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = setTimeout(() => void this.close(entry, 'close_after elapsed'), inMs);
  }

  private close(entry: Entry, reason: string, retry = true): Promise<void> {
    entry.closing ??= this.shut(entry, reason, retry);
    return entry.closing;
  }

  private async shut(entry: Entry, reason: string, retry: boolean): Promise<void> {
    if (entry.timer) clearTimeout(entry.timer);
    let ok = true;
    if (entry.allow.length > 0 && this.firewall) {
      try {
        await this.firewall.revoke(entry.src, entry.family, entry.allow);
      } catch (err) {
        ok = false;
        this.log.error('close failed: could not remove the firewall entries', { door: entry.door, src: entry.src, error: (err as Error).message });
      }
    }
    ok = (await this.runAll(entry.close, entry.commandTimeoutMs, entry.door, entry.src, 'close')) && ok;
    if (!ok) {
      /* the door stays on record (and in the state file) until a close succeeds */
      entry.failedCloses++;
      entry.closing = null;
      const delay = Math.min(1000 * 2 ** (entry.failedCloses - 1), MAX_RETRY_MS);
      if (retry) {
        this.log.warn('door not closed: retrying', { door: entry.door, src: entry.src, inSeconds: delay / 1000 });
        entry.timer = setTimeout(() => void this.close(entry, reason), delay);
      }
      return;
    }
    this.open.delete(keyOf(entry.door, entry.src));
    this.persist();
    this.log.info('door closed', { door: entry.door, src: entry.src, reason });
  }

  /** Runs each command in turn; true if all succeeded. A failure is logged and never thrown. */
  private async runAll(commands: string[][], timeoutMs: number, door: string, src: string, what: string): Promise<boolean> {
    let ok = true;
    for (const argv of commands) {
      const r = await this.run(argv, timeoutMs);
      if (r.ok) continue;
      ok = false;
      this.log.error(`${what} command failed`, {
        door,
        src,
        command: formatCommand(argv),
        status: r.timedOut ? `killed after ${timeoutMs}ms` : r.error ?? r.signal ?? r.code,
        stderr: r.stderr,
      });
    }
    return ok;
  }
}

function iso(t: number | null): string {
  return t === null ? 'never' : new Date(t).toISOString();
}
