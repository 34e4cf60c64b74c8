/**
 * The one place doors open and close, whatever way the knock came. A door opened for a source
 * gets its firewall entries (`allow:`) and runs its open commands; `close_after` later the
 * entries go and the close commands run.
 *
 * What it reports open is what the firewall has:
 * - a door opens only once its record is on disk (a knock whose record cannot be written is
 *   refused), so a crash never leaves a door open that nothing will close;
 * - open, extend, close and revoke of one (door, source) run one at a time, in the order they
 *   were asked for: a close never overtakes the open it closes;
 * - a close that fails keeps the door on record, is retried with backoff, and is shown by
 *   status; a knock on such a door, or on one taken back from a previous run, opens it afresh
 *   (its close first, failure ignored, so that a half-present rule is not doubled), so a rule
 *   that vanished under tumbler never locks its user out;
 * - at most max_open sources per door at once, so one secret cannot open thousands of doors.
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
  /** While its close keeps failing: since when, and what the last try said. */
  closeFailingSince: number | null;
  lastCloseError: string | null;
}

/** An open door as the state file keeps it: enough to close it after a restart, whatever the config says then. */
export interface SavedDoor extends OpenDoor {
  close: string[][];
  allow: AllowRule[];
  commandTimeoutMs: number;
  /** How long a knock keeps it open: a knock after a restart extends it as before. */
  closeAfterMs: number | null;
  /** A close began and has not succeeded: what the door opened may be half gone. */
  closeStarted: boolean;
}

export interface DispatcherLog {
  info(message: string, meta?: Record<string, unknown>): void;
  warn(message: string, meta?: Record<string, unknown>): void;
  error(message: string, meta?: Record<string, unknown>): void;
}

/** What a close (revoke) did. */
export interface CloseOutcome {
  found: boolean;
  closed: boolean;
  /** With --forget: the record was dropped although its close failed. */
  forgotten?: boolean;
  error?: string;
}

interface Entry extends SavedDoor {
  timer: NodeJS.Timeout | null;
  failedCloses: number;
  /** Its rule may be gone (or half gone): a knock opens it afresh instead of only extending it. */
  stale: boolean;
}

/** Sources a door is open for at once, unless the door says otherwise (`max_open`). */
export const DEFAULT_MAX_OPEN = 64;
const MAX_RETRY_MS = 60_000;
/**
 * setTimeout takes at most 2^31-1 ms (24.8 days); ipset's timeouts at most 2,147,483 s. Longer
 * doors wake every TIMER_CHUNK_MS, re-arm, and renew their kernel entries, which are never given
 * more than KERNEL_TIMEOUT_MAX_S.
 */
export const TIMER_CHUNK_MS = 20 * 86_400_000;
export const KERNEL_TIMEOUT_MAX_S = 21 * 86_400;
/** "door limit reached" can be triggered at will by a secret holder: written at most this often. */
const WARN_EVERY_MS = 1000;

const keyOf = (door: string, src: string) => `${door}\0${src}`;

/** The IPv6 variant of a door's commands where it has one (knockd's `_6`), else the common ones. */
/** `nothing6`: the door's IPv6 commands were given as [] (knockd's empty start_command_6 =), which runs nothing rather than the IPv4 ones. */
const forFamily = <T>(family: Family, v6: T[], common: T[], nothing6 = false): T[] => (family === 6 && (v6.length || nothing6) ? v6 : common);

export class DoorDispatcher {
  private doors = new Map<string, DoorConfig>();
  private readonly open = new Map<string, Entry>();
  /** The last operation queued for each (door, source): the next one starts when it ends. */
  private readonly lanes = new Map<string, Promise<unknown>>();
  private stopping = false;
  private lastLimitWarning = 0;

  constructor(
    doors: readonly DoorConfig[],
    private readonly run: CommandRunner,
    private readonly log: DispatcherLog,
    /** Writes the open doors (snapshot()) durably; rejects if it could not. */
    private readonly save: () => Promise<void> | void = () => undefined,
    private readonly firewall: FirewallBackend | null = null,
    private readonly now: () => number = Date.now,
  ) {
    this.reconfigure(doors);
  }

  reconfigure(doors: readonly DoorConfig[]): void {
    this.doors = new Map(doors.map((d) => [d.name, d]));
  }

  list(): OpenDoor[] {
    return [...this.open.values()].map(({ door, src, family, via, user, openedAt, closesAt, closeFailingSince, lastCloseError }) => ({
      door, src, family, via, user, openedAt, closesAt, closeFailingSince, lastCloseError,
    }));
  }

  snapshot(): SavedDoor[] {
    return [...this.open.values()].map(({ timer: _t, failedCloses: _f, stale: _s, ...saved }) => saved);
  }

  /**
   * Takes back the doors a previous run left open. Overdue ones (and those caught in the middle of
   * a close) close now, the rest on time; each may have lost its rule, so a knock opens it afresh.
   * After a reboot (`rebooted`), whatever the doors put in the kernel is gone: each door's close
   * runs once, to undo anything its open did outside the kernel, and the record is dropped
   * whether it succeeds or not (a rule that is gone cannot be deleted, and would be retried
   * forever). Firewall entries that no door accounts for are removed: no one would close them.
   */
  async restore(saved: readonly SavedDoor[], rebooted = false): Promise<void> {
    const now = this.now();
    const due: Entry[] = [];
    for (const s of saved) {
      const entry: Entry = { ...s, timer: null, failedCloses: 0, stale: true };
      if (entry.closesAt === null && entry.close.length === 0 && entry.allow.length === 0) continue;
      this.open.set(keyOf(s.door, s.src), entry);
      if (rebooted || s.closeStarted || s.closesAt === null || s.closesAt <= now) due.push(entry);
      else this.arm(entry);
    }
    if (saved.length > 0) {
      this.log.info('open doors restored from the state file', { doors: saved.length, overdue: due.length, ...(rebooted ? { rebootedSince: true } : {}) });
    }
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
    await Promise.all(
      due.map((e) =>
        this.inLane(keyOf(e.door, e.src), async () => {
          if (!rebooted) return this.shut(e, 'overdue at start-up', { retry: true });
          const r = await this.shut(e, 'the machine rebooted since it opened', { retry: false });
          if (!r.closed) await this.drop(e, `the machine rebooted since it opened; its close failed (${r.error}): record dropped, the reboot took the kernel's part of it`);
          return r;
        }),
      ),
    );
  }

  /** Opens the granted door; resolves once its firewall entries and open commands are in place (or it was refused). */
  openDoor(grant: Grant): Promise<void> {
    if (!isCanonicalSource(grant.src)) {
      this.log.error('refusing to open a door for something that is not an address', { door: grant.door, src: grant.src });
      return Promise.resolve();
    }
    return this.inLane(keyOf(grant.door, grant.src), () => this.doOpen(grant));
  }

  /**
   * Closes one open door now (after whatever is queued for it). With `forget`, a door whose close
   * fails is dropped from the record all the same, and logged as such.
   */
  closeDoor(name: string, src: string, reason: string, forget = false): Promise<CloseOutcome> {
    const key = keyOf(name, src);
    return this.inLane(key, async () => {
      const entry = this.open.get(key);
      if (!entry) return { found: false, closed: false };
      const r = await this.shut(entry, reason, { retry: !forget });
      if (r.closed || !forget) return r;
      await this.drop(entry, `tumblerd revoke --forget: its close failed (${r.error}); what it opened may still be open`);
      return { ...r, forgotten: true };
    });
  }

  /**
   * On shutdown: refuses new knocks, lets what is under way finish, then closes every open door
   * once; resolves when every close command has ended.
   */
  async closeAll(reason: string): Promise<void> {
    this.stopping = true;
    await Promise.all([...this.lanes.values()].map((p) => p.catch(() => undefined)));
    await Promise.all(
      [...this.open.entries()].map(([key, e]) => this.inLane(key, () => this.shut(e, reason, { retry: false }))),
    );
  }

  /** Stops the timers without closing anything (keep_open_on_exit). */
  async release(): Promise<void> {
    this.stopping = true;
    await Promise.all([...this.lanes.values()].map((p) => p.catch(() => undefined)));
    for (const e of this.open.values()) if (e.timer) clearTimeout(e.timer);
  }

  /* a store that throws at once is a store that failed: the same as one that rejects */
  private persist(): Promise<void> {
    return Promise.resolve().then(() => this.save());
  }

  private inLane<T>(key: string, step: () => Promise<T>): Promise<T> {
    const before = this.lanes.get(key) ?? Promise.resolve();
    const run = before.then(step, step);
    const tail = run.catch(() => undefined);
    this.lanes.set(key, tail);
    void tail.then(() => {
      if (this.lanes.get(key) === tail) this.lanes.delete(key);
    });
    return run;
  }

  private async doOpen(grant: Grant): Promise<void> {
    const { door: name, src, family, via, user } = grant;
    const door = this.doors.get(name);
    if (!door || this.stopping) return;
    const key = keyOf(name, src);
    const existing = this.open.get(key);
    if (existing && !existing.stale) return this.extend(existing, grant);
    if (!existing && door.closeAfterMs !== null) {
      const max = door.maxOpen ?? DEFAULT_MAX_OPEN;
      let count = 0;
      for (const e of this.open.values()) if (e.door === name) count++;
      if (count >= max) {
        const now = this.now();
        if (now - this.lastLimitWarning >= WARN_EVERY_MS) {
          this.lastLimitWarning = now;
          this.log.warn('door not opened: it is open for max_open sources already', { door: name, src, via, maxOpen: max });
        }
        return;
      }
    }
    const openCommands = forFamily(family, door.open6, door.open, door.nothing6?.open).map((t) => expandCommand(t, { ip: src, name }));
    if (door.closeAfterMs === null) {
      /* nothing ever closes it, so there is nothing to record (the config refuses close or allow without close_after) */
      this.log.info('door opened', { door: name, src, via, ...(user ? { user } : {}), closesAt: 'never' });
      await this.runAll(openCommands, door.commandTimeoutMs, name, src, 'open');
      return;
    }
    const entry: Entry = {
      door: name,
      src,
      family,
      via,
      user,
      openedAt: this.now(),
      /* close_after from now, or sooner where the grant ends sooner (a fleet peer's door) */
      closesAt: Math.min(this.now() + door.closeAfterMs, grant.untilMs ?? Infinity),
      close: forFamily(family, door.close6, door.close, door.nothing6?.close).map((t) => expandCommand(t, { ip: src, name })),
      allow: door.allow,
      commandTimeoutMs: door.commandTimeoutMs,
      closeAfterMs: door.closeAfterMs,
      closeStarted: false,
      closeFailingSince: null,
      lastCloseError: null,
      timer: null,
      failedCloses: 0,
      stale: false,
    };
    if (existing?.timer) clearTimeout(existing.timer);
    this.open.set(key, entry);
    try {
      /* on disk before anything opens: a crash from here on still leaves a record to close it by */
      await this.persist();
    } catch (err) {
      if (existing) {
        this.open.set(key, existing);
        this.arm(existing);
      } else this.open.delete(key);
      this.log.error('knock refused: the door could not be recorded, so it is not opened', { door: name, src, via, error: (err as Error).message });
      return;
    }
    this.arm(entry);
    if (existing) {
      /* what is left of the old opening goes first, so that the open below does not double it */
      this.log.warn('door on record but its rule may be gone: opening it afresh', { door: name, src, via });
      await this.runAll(existing.close, existing.commandTimeoutMs, name, src, 'close (before opening afresh)', true);
    }
    this.log.info('door opened', { door: name, src, via, ...(user ? { user } : {}), closesAt: iso(entry.closesAt) });
    if (entry.allow.length > 0 && this.firewall) {
      try {
        if (await this.firewall.repair()) this.log.warn("tumbler's firewall chain or its jump was missing: put back");
        await this.firewall.allow(src, family, entry.allow, this.kernelSeconds(entry));
      } catch (err) {
        this.log.error('open failed: could not add the firewall entries', { door: name, src, error: (err as Error).message });
      }
    }
    await this.runAll(openCommands, door.commandTimeoutMs, name, src, 'open');
  }

  /* with the close_after the door opened with, like the timer, whatever a reload changed since */
  private async extend(entry: Entry, grant: Grant): Promise<void> {
    if (entry.closeAfterMs === null) return;
    const before = entry.closesAt;
    /* a grant that ends sooner than the door already closes does not shorten it */
    const until = grant.untilMs === undefined ? Infinity : Math.max(grant.untilMs, entry.closesAt ?? 0);
    entry.closesAt = Math.min(this.now() + entry.closeAfterMs, until);
    try {
      await this.persist();
    } catch (err) {
      entry.closesAt = before;
      this.log.error('knock refused: the longer opening could not be recorded, so the door closes as it would have', {
        door: entry.door, src: entry.src, error: (err as Error).message,
      });
      return;
    }
    this.arm(entry);
    this.log.info('door already open: extended', {
      door: entry.door,
      src: entry.src,
      via: grant.via,
      ...(grant.user ? { user: grant.user } : {}),
      closesAt: iso(entry.closesAt),
    });
    if (entry.allow.length > 0 && this.firewall) {
      await this.firewall.allow(entry.src, entry.family, entry.allow, this.kernelSeconds(entry)).catch((err: Error) =>
        this.log.error('could not renew the firewall entries', { door: entry.door, src: entry.src, error: err.message }),
      );
    }
  }

  /** Sets the close timer for closesAt; a door longer than one timer wakes on the way and renews its kernel entries. */
  private arm(entry: Entry): void {
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = null;
    if (entry.closesAt === null || this.stopping) return;
    const key = keyOf(entry.door, entry.src);
    const left = entry.closesAt - this.now();
    if (left > TIMER_CHUNK_MS) {
      entry.timer = setTimeout(() => {
        entry.timer = null;
        void this.inLane(key, async () => {
          if (this.open.get(key) !== entry) return;
          this.arm(entry);
          if (entry.allow.length > 0 && this.firewall && entry.closesAt !== null) {
            await this.firewall.allow(entry.src, entry.family, entry.allow, this.kernelSeconds(entry)).catch((err: Error) =>
              this.log.error('could not renew the firewall entries', { door: entry.door, src: entry.src, error: err.message }),
            );
          }
        });
      }, TIMER_CHUNK_MS);
      return;
    }
    entry.timer = setTimeout(() => {
      entry.timer = null;
      void this.inLane(key, async () => {
        if (this.open.get(key) === entry) await this.shut(entry, 'close_after elapsed', { retry: true });
      });
    }, Math.max(0, left));
  }

  /** The kernel's own timeout for `allow:` entries: until the door closes, up to what ipset takes. */
  private kernelSeconds(entry: Entry): number {
    const left = entry.closesAt === null ? 0 : Math.max(1, Math.ceil((entry.closesAt - this.now()) / 1000));
    return Math.min(left, KERNEL_TIMEOUT_MAX_S);
  }

  /** Runs the close; only ever inside the door's lane. */
  private async shut(entry: Entry, reason: string, opts: { retry: boolean }): Promise<CloseOutcome> {
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = null;
    if (!entry.closeStarted) {
      entry.closeStarted = true;
      /* a crash during the close then tells the next start that the rule may be half gone */
      await this.persist().catch((err: Error) => this.log.warn('could not record that a close began', { door: entry.door, src: entry.src, error: err.message }));
    }
    const errors: string[] = [];
    if (entry.allow.length > 0 && this.firewall) {
      try {
        await this.firewall.revoke(entry.src, entry.family, entry.allow);
      } catch (err) {
        errors.push((err as Error).message);
        this.log.error('close failed: could not remove the firewall entries', { door: entry.door, src: entry.src, error: (err as Error).message });
      }
    }
    await this.runAll(entry.close, entry.commandTimeoutMs, entry.door, entry.src, 'close', false, errors);
    const key = keyOf(entry.door, entry.src);
    if (errors.length === 0) {
      this.open.delete(key);
      await this.persist().catch((err: Error) =>
        this.log.warn('door closed, but the record still says open: the next start closes it again', { door: entry.door, src: entry.src, error: err.message }),
      );
      this.log.info('door closed', { door: entry.door, src: entry.src, reason });
      return { found: true, closed: true };
    }
    /* the door stays on record (and in the state file) until a close succeeds */
    entry.stale = true;
    entry.failedCloses++;
    entry.closeFailingSince ??= this.now();
    entry.lastCloseError = errors.join('; ').slice(0, 2000);
    await this.persist().catch(() => undefined);
    if (opts.retry && !this.stopping) {
      const delay = Math.min(1000 * 2 ** (entry.failedCloses - 1), MAX_RETRY_MS);
      this.log.warn('door not closed: retrying', { door: entry.door, src: entry.src, inSeconds: delay / 1000 });
      entry.timer = setTimeout(() => {
        entry.timer = null;
        void this.inLane(key, async () => {
          if (this.open.get(key) === entry) await this.shut(entry, reason, opts);
        });
      }, delay);
    }
    return { found: true, closed: false, error: entry.lastCloseError };
  }

  private async drop(entry: Entry, why: string): Promise<void> {
    if (entry.timer) clearTimeout(entry.timer);
    this.open.delete(keyOf(entry.door, entry.src));
    await this.persist().catch((err: Error) => this.log.error('could not write the state file', { error: err.message }));
    this.log.warn('door record forgotten', { door: entry.door, src: entry.src, why });
  }

  /** Runs each command in turn; true if all succeeded. A failure is logged (or only noted, `quiet`) and never thrown. */
  private async runAll(commands: string[][], timeoutMs: number, door: string, src: string, what: string, quiet = false, errors: string[] = []): Promise<boolean> {
    let ok = true;
    for (const argv of commands) {
      const r = await this.run(argv, timeoutMs);
      if (r.ok) continue;
      ok = false;
      const status = r.timedOut ? `killed after ${timeoutMs}ms` : r.error ?? r.signal ?? r.code;
      errors.push(`${formatCommand(argv)}: ${r.stderr || `exit ${status}`}`);
      (quiet ? this.log.info : this.log.error).call(this.log, `${what} command failed`, {
        door,
        src,
        command: formatCommand(argv),
        status,
        stderr: r.stderr,
      });
    }
    return ok;
  }
}

function iso(t: number | null): string {
  return t === null ? 'never' : new Date(t).toISOString();
}
