/**
 * Doors that never lie, the logic: one lifecycle per (door, source) (a slow open against a short
 * close_after and against revoke), fail closed when the record cannot be written, the truth
 * about failing closes, no lockouts, timers past 24.8 days, max_open, and a saved state read
 * entry by entry. Commands are recorded by a runner stand-in; time is jest's.
 */
import { DoorConfig } from '../../src/model/door';
import { CommandRunner, CommandResult } from '../../src/exec/commandRunner';
import { splitCommand } from '../../src/doors/commandTemplate';
import { DEFAULT_MAX_OPEN, DoorDispatcher, KERNEL_TIMEOUT_MAX_S, SavedDoor } from '../../src/doors/dispatcher';
import { validateSavedDoor } from '../../src/doors/stateStore';
import { DEFAULT_FLAGS } from '../../src/knock/sequence';
import { FirewallBackend } from '../../src/firewall/backend';
import { AllowRule } from '../../src/model/door';
import { Grant } from '../../src/model/grant';

const ok: CommandResult = { ok: true, code: 0, signal: null, timedOut: false, stdout: '', stderr: '' };
const DAY = 86_400_000;

function door(closeAfterMs: number | null, extra: Partial<DoorConfig> = {}): DoorConfig {
  return {
    name: 'ssh', sequence: null, sequenceTimeoutMs: 10_000, flags: DEFAULT_FLAGS, secret: 'x',
    open: [splitCommand('fw open %IP%')], close: [splitCommand('fw close %IP%')], open6: [], close6: [],
    closeAfterMs, commandTimeoutMs: 10_000, allow: [], ...extra,
  };
}
const grant = (src = '192.0.2.7'): Grant => ({ door: 'ssh', src, family: 4, via: 'tumbler', user: null, at: 0 });

describe('one lifecycle per (door, source)', () => {
  let events: string[];
  let openMs: number;
  let closeFails: string | null;
  const runner: CommandRunner = async (argv) => {
    const what = `${argv[1]} ${argv[2]}`;
    events.push(`start ${what}`);
    if (argv[1] === 'open' && openMs > 0) await new Promise((r) => setTimeout(r, openMs));
    events.push(`end ${what}`);
    if (argv[1] === 'close' && closeFails) return { ...ok, ok: false, code: 1, stderr: closeFails };
    return ok;
  };
  const log = { info: jest.fn(), warn: jest.fn(), error: jest.fn() };
  beforeEach(() => {
    jest.useFakeTimers({ now: 1_000_000 });
    events = [];
    openMs = 0;
    closeFails = null;
    jest.clearAllMocks();
  });
  afterEach(() => jest.useRealTimers());

  it('a close_after shorter than a slow open closes only after the open finished', async () => {
    openMs = 3000;
    const d = new DoorDispatcher([door(1000)], runner, log);
    void d.openDoor(grant());
    await jest.advanceTimersByTimeAsync(1500);
    expect(events).toEqual(['start open 192.0.2.7']); /* the close is due, and waits */
    await jest.advanceTimersByTimeAsync(2000);
    expect(events).toEqual(['start open 192.0.2.7', 'end open 192.0.2.7', 'start close 192.0.2.7', 'end close 192.0.2.7']);
    expect(d.list()).toEqual([]);
  });

  it('a revoke during a slow open waits for it, then closes', async () => {
    openMs = 3000;
    const d = new DoorDispatcher([door(60_000)], runner, log);
    void d.openDoor(grant());
    await jest.advanceTimersByTimeAsync(500);
    const revoked = d.closeDoor('ssh', '192.0.2.7', 'revoked');
    await jest.advanceTimersByTimeAsync(3000);
    expect(await revoked).toEqual({ found: true, closed: true });
    expect(events.indexOf('start close 192.0.2.7')).toBeGreaterThan(events.indexOf('end open 192.0.2.7'));
    expect(d.list()).toEqual([]);
  });

  it('stop waits for an open under way, then closes it', async () => {
    openMs = 3000;
    const d = new DoorDispatcher([door(60_000)], runner, log);
    void d.openDoor(grant());
    await jest.advanceTimersByTimeAsync(100);
    let stopped = false;
    void d.closeAll('stopping').then(() => (stopped = true));
    await jest.advanceTimersByTimeAsync(2000);
    expect(stopped).toBe(false);
    await jest.advanceTimersByTimeAsync(1000);
    expect(stopped).toBe(true);
    expect(events.slice(-2)).toEqual(['start close 192.0.2.7', 'end close 192.0.2.7']);
    await d.openDoor(grant('192.0.2.8')); /* no door opens once stopping */
    expect(events.filter((e) => e.includes('192.0.2.8'))).toEqual([]);
  });

  it('fails closed: a door whose record cannot be written does not open', async () => {
    const d = new DoorDispatcher([door(60_000)], runner, log, async () => {
      throw new Error('ENOSPC: no space left on device');
    });
    await d.openDoor(grant());
    expect(events).toEqual([]);
    expect(d.list()).toEqual([]);
    expect(log.error).toHaveBeenCalledWith('knock refused: the door could not be recorded, so it is not opened', expect.objectContaining({ error: 'ENOSPC: no space left on device' }));
  });

  it('a revoke whose close fails says so and keeps the door on record; status shows since when and why; --forget drops it', async () => {
    const d = new DoorDispatcher([door(60_000)], runner, log);
    await d.openDoor(grant());
    closeFails = 'iptables: Bad rule (does a matching rule exist in that chain?).';
    const r = await d.closeDoor('ssh', '192.0.2.7', 'revoked');
    expect(r).toMatchObject({ found: true, closed: false, error: expect.stringContaining('Bad rule') });
    expect(d.list()[0]).toMatchObject({ closeFailingSince: 1_000_000, lastCloseError: expect.stringContaining('fw close 192.0.2.7: iptables: Bad rule') });
    const f = await d.closeDoor('ssh', '192.0.2.7', 'revoked', true);
    expect(f).toMatchObject({ found: true, closed: false, forgotten: true });
    expect(d.list()).toEqual([]);
    expect(log.warn).toHaveBeenCalledWith('door record forgotten', expect.objectContaining({ why: expect.stringContaining('--forget') }));
    expect(await d.closeDoor('ssh', '192.0.2.7', 'revoked')).toEqual({ found: false, closed: false });
  });

  it('no lockout: a knock on a door whose close is failing runs its open again', async () => {
    const d = new DoorDispatcher([door(1000)], runner, log);
    await d.openDoor(grant());
    closeFails = 'Bad rule';
    await jest.advanceTimersByTimeAsync(1000);
    expect(d.list()[0].closeFailingSince).not.toBeNull();
    events = [];
    closeFails = null;
    await d.openDoor(grant());
    expect(events).toEqual(['start close 192.0.2.7', 'end close 192.0.2.7', 'start open 192.0.2.7', 'end open 192.0.2.7']);
    expect(d.list()[0]).toMatchObject({ closeFailingSince: null, lastCloseError: null });
    await jest.advanceTimersByTimeAsync(1000);
    expect(d.list()).toEqual([]);
  });

  const saved = (over: Partial<SavedDoor> = {}): SavedDoor => ({
    door: 'ssh', src: '192.0.2.7', family: 4, via: 'tumbler', user: null, openedAt: 990_000, closesAt: 1_050_000,
    close: [['fw', 'close', '192.0.2.7']], allow: [], commandTimeoutMs: 1000, closeAfterMs: 60_000,
    closeStarted: false, closeFailingSince: null, lastCloseError: null, ...over,
  });

  it('no lockout: a door taken back after a crash opens afresh on the next knock (its close first, so no rule is doubled)', async () => {
    const d = new DoorDispatcher([door(60_000)], runner, log);
    await d.restore([saved()]);
    expect(events).toEqual([]);
    await d.openDoor(grant());
    expect(events).toEqual(['start close 192.0.2.7', 'end close 192.0.2.7', 'start open 192.0.2.7', 'end open 192.0.2.7']);
    events = [];
    await d.openDoor(grant()); /* now it is known to be open: a knock extends it */
    expect(events).toEqual([]);
  });

  it('a door caught in the middle of a close is closed again at start', async () => {
    const d = new DoorDispatcher([door(60_000)], runner, log);
    await d.restore([saved({ closeStarted: true })]);
    expect(events).toEqual(['start close 192.0.2.7', 'end close 192.0.2.7']);
    expect(d.list()).toEqual([]);
  });

  it('after a reboot each saved door is closed once and dropped, even if its close fails', async () => {
    closeFails = 'Bad rule';
    const d = new DoorDispatcher([door(60_000)], runner, log);
    await d.restore([saved(), saved({ src: '192.0.2.8', close: [['fw', 'close', '192.0.2.8']] })], true);
    expect(events.filter((e) => e.startsWith('start'))).toEqual(['start close 192.0.2.7', 'start close 192.0.2.8']);
    expect(d.list()).toEqual([]);
    await jest.advanceTimersByTimeAsync(120_000);
    expect(events.filter((e) => e.startsWith('start'))).toHaveLength(2); /* no retries */
  });

  it('max_open: a door is open for at most that many sources; the default is bounded too', async () => {
    const d = new DoorDispatcher([door(60_000, { maxOpen: 2 })], runner, log);
    for (const src of ['192.0.2.1', '192.0.2.2', '192.0.2.3']) await d.openDoor(grant(src));
    expect(d.list().map((x) => x.src)).toEqual(['192.0.2.1', '192.0.2.2']);
    expect(log.warn).toHaveBeenCalledWith('door not opened: it is open for max_open sources already', expect.objectContaining({ src: '192.0.2.3', maxOpen: 2 }));
    await d.openDoor(grant('192.0.2.1')); /* extending one that is open is not another */
    expect(d.list()).toHaveLength(2);
    const e = new DoorDispatcher([door(60_000)], runner, log);
    for (let i = 0; i < 1000; i++) await e.openDoor(grant(`10.0.${i >> 8}.${i & 255}`));
    expect(e.list()).toHaveLength(DEFAULT_MAX_OPEN);
  });
});

describe('doors longer than one timer', () => {
  const log = { info: jest.fn(), warn: jest.fn(), error: jest.fn() };
  beforeEach(() => jest.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => jest.useRealTimers());

  it('a 30-day close_after closes after 30 days, renewing its kernel entries on the way, never past what ipset takes', async () => {
    const allowed: number[] = [];
    let revoked = 0;
    const fw: FirewallBackend = {
      name: 'test', setup: async () => undefined, repair: async () => false, list: async () => [], teardown: async () => undefined,
      allow: async (_s: string, _f: 4 | 6, _r: AllowRule[], seconds: number) => void allowed.push(seconds),
      revoke: async () => void revoked++,
    };
    const d = new DoorDispatcher([door(30 * DAY, { allow: [{ proto: 'tcp', port: 22 }], open: [], close: [] })], async () => ok, log, undefined, fw);
    await d.openDoor(grant());
    expect(allowed).toEqual([KERNEL_TIMEOUT_MAX_S]);
    await jest.advanceTimersByTimeAsync(30 * DAY - 1000);
    expect(revoked).toBe(0);
    expect(d.list()).toHaveLength(1);
    /* renewed at day 20 for the 10 days left */
    expect(allowed).toEqual([KERNEL_TIMEOUT_MAX_S, 10 * 86_400]);
    await jest.advanceTimersByTimeAsync(1000);
    expect(revoked).toBe(1);
    expect(d.list()).toEqual([]);
  });
});

describe('a saved state, entry by entry', () => {
  const now = 1_000_000;
  const good = {
    door: 'ssh', src: '192.0.2.7', family: 4, via: 'sequence', user: null, openedAt: 990_000, closesAt: 1_030_000,
    close: [['fw', 'close', '192.0.2.7']], allow: [], commandTimeoutMs: 1000, closeAfterMs: 30_000,
  };
  const check = (over: Record<string, unknown>) => {
    const repairs: string[] = [];
    const v = validateSavedDoor({ ...good, ...over }, now, (r) => repairs.push(r));
    return { v, repairs };
  };

  it('keeps a good entry as it is', () => {
    expect(check({})).toEqual({ v: { ...good, closeStarted: false, closeFailingSince: null, lastCloseError: null }, repairs: [] });
  });

  it.each([
    [{ src: '1.2.3.4;reboot' }, 'src is not a canonical address'],
    [{ src: 'fd00:0203::2', family: 6 }, 'src is not a canonical address'],
    [{ family: 6 }, 'family does not match'],
    [{ close: [['fw', 'close\0', '192.0.2.7']] }, 'NUL'],
    [{ close: 'rm -rf /' }, 'close is not a list'],
    [{ allow: [{ proto: 'tcp', port: 70000 }] }, 'allow holds a rule'],
    [{ door: '../etc' }, 'door is not a door name'],
  ])('skips an entry it cannot close safely: %j', (over, why) => {
    expect(check(over).v).toEqual(expect.stringContaining(why));
  });

  it.each([
    [{ closesAt: 1e308 }, 'closesAt'],
    [{ closesAt: Infinity }, 'closesAt'],
    [{ closesAt: 'soon' }, 'closesAt'],
    [{ closeAfterMs: -1 }, 'closeAfterMs'],
    [{ closeAfterMs: 1.5 }, 'closeAfterMs'],
    [{ closeAfterMs: 400 * DAY }, 'closeAfterMs'],
  ])('closes at once a door with a number out of range: %j', (over, field) => {
    const { v, repairs } = check(over);
    expect(v).toMatchObject({ closesAt: now });
    expect(repairs[0]).toContain(field);
  });

  it('puts a bad command timeout right instead of dropping the door', () => {
    const { v, repairs } = check({ commandTimeoutMs: -1 });
    expect(v).toMatchObject({ commandTimeoutMs: 10_000, closesAt: 1_030_000 });
    expect(repairs).toHaveLength(1);
  });
});
