/**
 * The fleet's pure parts: the signed grant (every field covered by the MAC, every malformed or
 * forged entry refused), the key file, and the fleet: section of the config.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { ConfigError, parseConfig } from '../../src/config/load';
import { fleetKeyPrivate, parseFleetKey, writeNewFleetKey } from '../../src/fleet/key';
import type { TumblerdConfig } from '../../src/config/types';
import { FleetGrant, MAX_CLOCK_SKEW_MS, MAX_GRANT_MS, openGrant, signGrant } from '../../src/fleet/message';
import { fleetKeys } from '../../src/fleet/names';
import { DoorDispatcher } from '../../src/doors/dispatcher';
import type { FirewallBackend } from '../../src/firewall/backend';
import { DEFAULT_FLAGS } from '../../src/knock/sequence';
import type { Grant } from '../../src/model/grant';

const KEY = crypto.randomBytes(32);
const NOW = Date.parse('2026-11-25T10:00:00Z');
const GRANT: FleetGrant = {
  group: 'prod', sender: 'gw1', id: 'a'.repeat(32), door: 'ssh', src: '192.0.2.7', family: 4,
  via: 'tumbler', user: null, at: NOW, until: NOW + 30_000,
};

describe('fleet grants', () => {
  it('opens what it signed', () => {
    expect(openGrant(KEY, signGrant(KEY, GRANT), 'prod', NOW + 100)).toEqual({ ok: true, grant: GRANT });
    const v6 = { ...GRANT, src: '2001:db8::7', family: 6 as const, via: 'sequence' as const, user: 'alice' };
    expect(openGrant(KEY, signGrant(KEY, v6), 'prod', NOW)).toEqual({ ok: true, grant: v6 });
  });

  it('refuses a grant signed with another key, or with the MAC of another grant', () => {
    expect(openGrant(crypto.randomBytes(32), signGrant(KEY, GRANT), 'prod', NOW)).toEqual({ ok: false, reason: 'bad signature' });
    const other = signGrant(KEY, { ...GRANT, src: '192.0.2.8' });
    expect(openGrant(KEY, { grant: signGrant(KEY, GRANT).grant, mac: other.mac }, 'prod', NOW).ok).toBe(false);
  });

  it('covers every field with the MAC: changing any one byte of the text is refused', () => {
    const { grant, mac } = signGrant(KEY, GRANT);
    for (let i = 0; i < grant.length; i++) {
      for (const c of ['0', 'x', '"', ' ']) {
        if (grant[i] === c) continue;
        const changed = grant.slice(0, i) + c + grant.slice(i + 1);
        expect(openGrant(KEY, { grant: changed, mac }, 'prod', NOW).ok).toBe(false);
      }
    }
  });

  it('refuses a forged MAC of any form', () => {
    const { grant } = signGrant(KEY, GRANT);
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), (mac) => {
        expect(openGrant(KEY, { grant, mac }, 'prod', NOW).ok).toBe(false);
      }),
    );
  });

  it('refuses expired grants, grants from the future and grants of another group', () => {
    const signed = signGrant(KEY, GRANT);
    expect(openGrant(KEY, signed, 'prod', GRANT.until)).toEqual({ ok: false, reason: 'expired' });
    expect(openGrant(KEY, signed, 'prod', NOW - MAX_CLOCK_SKEW_MS - 1)).toEqual({ ok: false, reason: 'made in the future' });
    expect(openGrant(KEY, signed, 'staging', NOW)).toEqual({ ok: false, reason: 'other group' });
  });

  it('refuses well-signed grants whose fields are not what a gateway publishes', () => {
    const bad: Partial<Record<keyof FleetGrant, unknown>>[] = [
      { src: '192.0.2.007' }, { src: '192.0.2.7; rm -rf /' }, { src: '2001:DB8::7', family: 6 }, { family: 6 },
      { door: '../etc' }, { door: '' }, { sender: 'a b' }, { id: 'zz' }, { via: 'fleet' }, { user: 5 },
      { until: NOW }, { until: NOW + MAX_GRANT_MS + 1 }, { at: 1.5 }, { group: 'prod\n' },
    ];
    for (const change of bad) {
      const g = { ...GRANT, ...change } as FleetGrant;
      const signed = signGrant(KEY, g);
      expect([change, openGrant(KEY, signed, 'prod', NOW).ok]).toEqual([change, false]);
    }
    const text = JSON.stringify(['tumbler-fleet-grant/1', 'prod']);
    const mac = crypto.createHmac('sha256', KEY).update(text).digest('hex');
    expect(openGrant(KEY, { grant: text, mac }, 'prod', NOW)).toEqual({ ok: false, reason: 'malformed' });
  });

  it('refuses missing fields and oversized entries before computing any MAC', () => {
    expect(openGrant(KEY, {}, 'prod', NOW)).toEqual({ ok: false, reason: 'malformed' });
    expect(openGrant(KEY, { grant: 'x'.repeat(2000), mac: '0'.repeat(64) }, 'prod', NOW)).toEqual({ ok: false, reason: 'malformed' });
  });

  it('names every key of a group with the same hash tag', () => {
    const k = fleetKeys('prod');
    for (const name of [k.stream, k.members, k.replay('ab')]) expect(name.startsWith('{tumbler:prod}:')).toBe(true);
  });
});

describe('fleet key', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-unit-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('writes 32 random bytes as hex, mode 0600, and never overwrites a file', () => {
    const file = path.join(dir, 'fleet.key');
    const old = process.umask(0);
    try {
      writeNewFleetKey(file);
    } finally {
      process.umask(old);
    }
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    const key = parseFleetKey(fs.readFileSync(file, 'utf8'));
    expect(key).toHaveLength(32);
    expect(() => writeNewFleetKey(file)).toThrow(/EEXIST/);
    writeNewFleetKey(path.join(dir, 'other.key'));
    expect(parseFleetKey(fs.readFileSync(path.join(dir, 'other.key'), 'utf8')).equals(key)).toBe(false);
  });

  it('warns at start-up when other users can read the key', () => {
    const file = path.join(dir, 'fleet.key');
    writeNewFleetKey(file);
    const config = { fleet: { keyFile: file, group: 'prod' } } as unknown as TumblerdConfig;
    expect(fleetKeyPrivate.run(config)).toEqual([expect.objectContaining({ status: 'ok' })]);
    fs.chmodSync(file, 0o644);
    expect(fleetKeyPrivate.run(config)).toEqual([expect.objectContaining({ status: 'warn', fix: `chmod 600 ${file}` })]);
  });

  it('refuses keys that are not 64 hex digits', () => {
    for (const text of ['', 'ab'.repeat(31), 'ab'.repeat(33), 'zz'.repeat(32), 'password']) expect(() => parseFleetKey(text)).toThrow(/64 hex digits/);
  });
});

describe('fleet config', () => {
  const files: Record<string, string> = { '/etc/fleet.key': `${'ab'.repeat(32)}\n`, '/etc/redis.pass': 'pw\n', '/etc/short.key': 'abc\n' };
  const parse = (text: string) =>
    parseConfig(text, '/etc/tumblerd.yaml', {
      env: {},
      readFile: (f) => {
        if (!(f in files)) throw new Error(`ENOENT: no such file, open '${f}'`);
        return files[f];
      },
    });
  const problems = (text: string): string[] => {
    try {
      parse(text);
    } catch (e) {
      if (e instanceof ConfigError) return e.message.split('\n');
      throw e;
    }
    throw new Error('accepted');
  };
  const DOOR = `doors:
  ssh:
    secret: s3cret
    allow: [tcp/22]
    close_after: 30s
    fleet: true
`;

  it('reads the section, with the password from its file and the defaults', () => {
    const c = parse(`fleet:
  redis: redis://gw1@10.0.0.5:6379/0
  name: gw1
  group: prod
  key_file: fleet.key
  password_file: /etc/redis.pass
${DOOR}`);
    expect(c.fleet).toMatchObject({ redis: 'redis://gw1@10.0.0.5:6379/0', name: 'gw1', group: 'prod', password: 'pw', offline: 'refuse', timeoutMs: 1000, tls: null });
    expect(c.fleet?.key.toString('hex')).toBe('ab'.repeat(32));
    expect(c.doors[0].fleet).toBe(true);
  });

  it('names file, line and key of each problem', () => {
    const p = problems(`fleet:
  redis: redis://:secret@10.0.0.5
  name: gw1
  group: prod
  key_file: short.key
  timeout: 2m
  tls:
    ca_file: missing.pem
doors:
  ssh:
    secret: s3cret
    allow: [tcp/22]
    fleet: true
`);
    expect(p).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^\/etc\/tumblerd\.yaml:2:\d+: fleet\.redis: put the password in password_file/),
        expect.stringMatching(/^\/etc\/tumblerd\.yaml:5:\d+: fleet\.key_file: .*64 hex digits/),
        expect.stringMatching(/^\/etc\/tumblerd\.yaml:6:\d+: fleet\.timeout: must be from 10ms to 30s/),
        expect.stringMatching(/^\/etc\/tumblerd\.yaml:8:\d+: fleet\.tls\.ca_file: ENOENT/),
        expect.stringMatching(/fleet\.tls: TLS settings need a rediss:\/\/ URL/),
        expect.stringMatching(/^\/etc\/tumblerd\.yaml:13:\d+: doors\.ssh\.fleet: a fleet door needs close_after/),
      ]),
    );
  });

  it('refuses a fleet door without the fleet section, and names that are not names', () => {
    expect(problems(DOOR)).toEqual([expect.stringMatching(/doors\.ssh\.fleet: a fleet door needs the fleet: section/)]);
    expect(problems(`fleet:\n  redis: redis://h\n  name: "gw 1"\n  group: prod\n  key_file: /etc/fleet.key\n${DOOR}`)).toEqual([
      expect.stringMatching(/fleet\.name: /),
    ]);
  });
});

describe('a grant with an end (untilMs) at the door dispatcher', () => {
  const ok = { ok: true, code: 0, signal: null, timedOut: false, stdout: '', stderr: '' };
  const log = { info: jest.fn(), warn: jest.fn(), error: jest.fn() };
  let ran: string[];
  let allowed: number[];
  const firewall: FirewallBackend = {
    name: 'recording',
    setup: async () => undefined,
    repair: async () => false,
    allow: async (_src, _family, _rules, seconds) => void allowed.push(seconds),
    revoke: async (src) => void ran.push(`revoke ${src}`),
    list: async () => [],
    teardown: async () => undefined,
  };
  const door = {
    name: 'ssh', sequence: null, sequenceTimeoutMs: 10_000, flags: DEFAULT_FLAGS, secret: 's', open: [], close: [], open6: [], close6: [],
    closeAfterMs: 30_000, commandTimeoutMs: 1000, allow: [{ proto: 'tcp' as const, port: 22 }], fleet: true,
  };
  const g = (untilMs?: number): Grant => ({ door: 'ssh', src: '192.0.2.7', family: 4, via: 'tumbler', user: null, at: 0, ...(untilMs ? { untilMs } : {}) });
  beforeEach(() => {
    jest.useFakeTimers({ now: 1_000_000 });
    ran = [];
    allowed = [];
  });
  afterEach(() => jest.useRealTimers());

  it('closes at the sender\'s end when that is sooner than close_after, in the timer and in the kernel timeout', async () => {
    const d = new DoorDispatcher([door], async () => ok, log, () => undefined, firewall);
    await d.openDoor(g(1_000_000 + 12_000));
    expect(d.list()[0].closesAt).toBe(1_012_000);
    expect(allowed).toEqual([12]);
    await jest.advanceTimersByTimeAsync(11_999);
    expect(ran).toEqual([]);
    await jest.advanceTimersByTimeAsync(1);
    expect(ran).toEqual(['revoke 192.0.2.7']);
  });

  it('never keeps a door longer than its own close_after, and a sooner end does not shorten an open door', async () => {
    const d = new DoorDispatcher([door], async () => ok, log, () => undefined, firewall);
    await d.openDoor(g(1_000_000 + 3_600_000));
    expect(d.list()[0].closesAt).toBe(1_030_000);
    await jest.advanceTimersByTimeAsync(10_000);
    await d.openDoor(g(1_000_000 + 15_000));
    expect(d.list()[0].closesAt).toBe(1_030_000);
    await d.openDoor(g());
    expect(d.list()[0].closesAt).toBe(1_040_000);
    expect(allowed).toEqual([30, 20, 30]);
  });
});
