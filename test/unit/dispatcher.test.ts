import { DoorConfig } from '../../src/model/door';
import { CommandRunner, CommandResult } from '../../src/exec/commandRunner';
import { splitCommand } from '../../src/doors/commandTemplate';
import { DoorDispatcher } from '../../src/doors/dispatcher';
import { DEFAULT_FLAGS } from '../../src/knock/sequence';
import { Family } from '../../src/model/address';
import { Grant, KnockVia } from '../../src/model/grant';

const ok: CommandResult = { ok: true, code: 0, signal: null, timedOut: false, stdout: '', stderr: '' };

function door(name: string, closeAfterMs: number | null, maxOpen?: number): DoorConfig {
  return {
    ...(maxOpen ? { maxOpen } : {}),
    name, sequence: null, sequenceTimeoutMs: 10_000, flags: DEFAULT_FLAGS, secret: 's-' + name,
    open: [splitCommand('fw open %IP% %NAME%')], close: [splitCommand('fw close %IP% %NAME%')],
    open6: [], close6: [splitCommand('fw6 close %IP%')],
    closeAfterMs, commandTimeoutMs: 1000, allow: [],
  };
}

const grant = (door: string, src: string, family: Family, via: KnockVia): Grant => ({ door, src, family, via, user: null, at: 0 });

describe('the door dispatcher', () => {
  let ran: string[];
  let failing: boolean;
  const runner: CommandRunner = async (argv) => {
    ran.push(argv.join(' '));
    return failing && argv[1] === 'close' ? { ...ok, ok: false, code: 1, stderr: 'stub failure' } : ok;
  };
  const log = { info: jest.fn(), warn: jest.fn(), error: jest.fn() };
  beforeEach(() => {
    jest.useFakeTimers({ now: 1_000_000 });
    ran = [];
    failing = false;
  });
  afterEach(() => jest.useRealTimers());

  it('opens once, extends on a repeated knock, closes after close_after', async () => {
    const persisted: number[] = [];
    const d: DoorDispatcher = new DoorDispatcher([door('ssh', 30_000)], runner, log, () => {
      persisted.push(d.list().length);
    });
    await d.openDoor(grant('ssh', '192.0.2.7', 4, 'sequence'));
    await jest.advanceTimersByTimeAsync(20_000);
    await d.openDoor(grant('ssh', '192.0.2.7', 4, 'tumbler'));
    await jest.advanceTimersByTimeAsync(20_000);
    expect(ran).toEqual(['fw open 192.0.2.7 ssh']);
    await jest.advanceTimersByTimeAsync(10_000);
    expect(ran).toEqual(['fw open 192.0.2.7 ssh', 'fw close 192.0.2.7 ssh']);
    expect(d.list()).toEqual([]);
    expect(persisted[0]).toBe(1); /* written with the door in it before the open command ran */
    expect(persisted[persisted.length - 1]).toBe(0);
  });

  it('uses close6 for IPv6 sources and refuses non-canonical addresses', async () => {
    const d = new DoorDispatcher([door('ssh', 1000)], runner, log);
    await d.openDoor(grant('ssh', 'fd00:203::2', 6, 'sequence'));
    await d.openDoor(grant('ssh', 'fd00:0203::2', 6, 'sequence'));
    await d.openDoor(grant('ssh', '1.2.3.4;reboot', 4, 'sequence'));
    await jest.advanceTimersByTimeAsync(1000);
    expect(ran).toEqual(['fw open fd00:203::2 ssh', 'fw6 close fd00:203::2']);
    expect(log.error).toHaveBeenCalledWith('refusing to open a door for something that is not an address', expect.anything());
  });

  it('closes hundreds of doors with mixed timeouts each on time, with one timer each', async () => {
    const doors = [door('a', 5_000, 100), door('b', 17_000, 100), door('c', 60_000, 100)];
    const d = new DoorDispatcher(doors, runner, log);
    for (let i = 0; i < 300; i++) await d.openDoor(grant(doors[i % 3].name, `10.0.${i >> 8}.${i & 255}`, 4, 'sequence'));
    const closedBy = (_atMs: number) => ran.filter((r) => r.startsWith('fw close')).length;
    await jest.advanceTimersByTimeAsync(4_999);
    expect(closedBy(4_999)).toBe(0);
    await jest.advanceTimersByTimeAsync(1);
    expect(closedBy(5_000)).toBe(100);
    await jest.advanceTimersByTimeAsync(12_000);
    expect(closedBy(17_000)).toBe(200);
    await jest.advanceTimersByTimeAsync(43_000);
    expect(closedBy(60_000)).toBe(300);
    expect(d.list()).toEqual([]);
  });

  it('retries a failing close with backoff and forgets the door only once it is shut', async () => {
    const d = new DoorDispatcher([door('ssh', 1000)], runner, log);
    await d.openDoor(grant('ssh', '192.0.2.7', 4, 'sequence'));
    failing = true;
    await jest.advanceTimersByTimeAsync(1000 + 1000 + 2000);
    expect(ran.filter((r) => r.startsWith('fw close'))).toHaveLength(3);
    expect(d.list()).toHaveLength(1);
    failing = false;
    await jest.advanceTimersByTimeAsync(4000);
    expect(ran.filter((r) => r.startsWith('fw close'))).toHaveLength(4);
    expect(d.list()).toEqual([]);
  });

  it('closes what a previous run left: overdue at once, the rest on time, with the saved commands', async () => {
    const d = new DoorDispatcher([], runner, log);
    const saved = {
      door: 'gone', family: 4 as const, via: 'sequence' as const, user: null, openedAt: 0, allow: [], commandTimeoutMs: 1000, closeAfterMs: 3000,
      closeStarted: false, closeFailingSince: null, lastCloseError: null,
    };
    await d.restore([
      { ...saved, src: '192.0.2.1', closesAt: 999_000, close: [['fw', 'close', '192.0.2.1', 'gone']] },
      { ...saved, src: '192.0.2.2', closesAt: 1_003_000, close: [['fw', 'close', '192.0.2.2', 'gone']] },
    ]);
    expect(ran).toEqual(['fw close 192.0.2.1 gone']);
    await jest.advanceTimersByTimeAsync(3000);
    expect(ran).toEqual(['fw close 192.0.2.1 gone', 'fw close 192.0.2.2 gone']);
  });
});

describe('running commands', () => {
  it('kills a command that hangs and reports it, without a shell in between', async () => {
    const { execRunner } = await import('../../src/exec/commandRunner');
    const hung = await execRunner(['sleep', '5'], 200);
    expect(hung).toMatchObject({ ok: false, timedOut: true, signal: 'SIGKILL' });
    const literal = await execRunner(['echo', '$(id);', '`id`'], 1000);
    expect(literal.stdout).toBe('$(id); `id`\n');
    const missing = await execRunner(['/nonexistent/iptables'], 1000);
    expect(missing.ok).toBe(false);
    expect(missing.error).toMatch(/ENOENT/);
  });
});
