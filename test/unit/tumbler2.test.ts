/**
 * Tumbler v2's verifier against the properties it must have, each tried as an attacker or a
 * misconfigured client would: made-up, changed, replayed, stale, misdirected and mis-addressed
 * knocks; junk; floods. Pure: no sockets, the clock is a parameter.
 */
import crypto from 'node:crypto';
import { setupSender } from '../../src/tumbler/v2/hpke';
import { ReplayCache } from '../../src/tumbler/replayCache';
import { TumblerListener } from '../../src/tumbler/listener';
import { Declared, GatewayContext, MAX_DATAGRAM, MIN_DATAGRAM, doorId, encodeKnock, openKnock } from '../../src/tumbler/v2/datagram';
import { SCRYPT, ed25519PublicRaw, formatKeyLine, parseKeyLine, passphraseSeed, x25519PrivateKey, x25519PublicRaw } from '../../src/tumbler/v2/keys';
import { DEFAULT_LIMITS, WorkLimiter, sourceKey } from '../../src/tumbler/v2/limits';
import { MAX_KNOCKS_PER_USER, TumblerV2State, TumblerV2Verifier, V2Door } from '../../src/tumbler/v2/verifier';
import type { NatMode } from '../../src/model/door';
import type { Grant } from '../../src/model/grant';
import type { Verdict } from '../../src/tumbler/verifier';

const seed = (s: string) => crypto.createHash('sha256').update(s).digest();
const GW = seed('gateway');
const GW_PUB = x25519PublicRaw(GW);
const gateway = new GatewayContext(GW_PUB);
const ALICE = seed('alice');
const BOB = seed('bob');
const MALLORY = seed('mallory');
const b64 = (s: Buffer) => ed25519PublicRaw(s).toString('base64');
const NOW = Date.UTC(2026, 10, 25, 12, 0, 0);
const FROM = { address: '198.51.100.7', family: 4 as const, port: 40000 };

function door(name: string, users: Buffer[], nat: NatMode = 'auto'): V2Door {
  return { name, nat, users: new Map(users.map((u, i) => [b64(u), u === ALICE ? 'alice' : u === BOB ? 'bob' : `user${i}`])) };
}

const DOORS = [
  door('ssh', [ALICE, BOB]),
  door('db', [ALICE]),
  door('auto', [ALICE], 'auto'),
  door('strict', [ALICE], 'strict'),
  door('declared', [ALICE], 'declared'),
  door('packet', [ALICE], 'packet'),
];

const verifier = (state = new TumblerV2State(), windowMs = 60_000, gw: string | null = null) =>
  new TumblerV2Verifier({ privateKey: GW, gateway: gw, windowMs, doors: DOORS }, state);

const knock = (user: Buffer, doorName: string, opts: { time?: number; declared?: Declared[]; gateway?: string | null } = {}) =>
  encodeKnock(gateway, user, { time: opts.time ?? NOW, door: doorName, gateway: opts.gateway ?? null, declared: opts.declared ?? [] });

const grantOf = (v: Verdict): Grant => {
  if (v.kind !== 'grant') throw new Error(`expected a grant, got ${JSON.stringify(v)}`);
  return v.grant;
};

describe('1. nothing to crack from the wire', () => {
  it('a knock opens only with the gateway private key; with another key it is noise', () => {
    const msg = knock(ALICE, 'ssh');
    const enc = Buffer.from(msg.subarray(16, 48)); /* what an observer has: the masked field */
    expect(openKnock(gateway, x25519PrivateKey(seed('a guess')), msg, enc)).toBeNull();
    expect(grantOf(verifier().verify(msg, FROM, NOW)).user).toBe('alice');
  });

  it('carries no plaintext field an offline guess could be checked against', () => {
    const msg = knock(ALICE, 'ssh', { declared: [{ address: FROM.address, family: 4, prefix: 32 }] });
    const time = Buffer.alloc(8);
    time.writeBigUInt64BE(BigInt(NOW));
    for (const field of [ed25519PublicRaw(ALICE), doorId('ssh'), time, Buffer.from([198, 51, 100, 7]), GW_PUB]) {
      expect(msg.includes(field)).toBe(false);
    }
  });

  it('a passphrase key costs a memory-hard KDF per guess and depends on the gateway and the label', () => {
    expect(SCRYPT.N).toBeGreaterThanOrEqual(1 << 15);
    expect(128 * SCRYPT.N * SCRYPT.r).toBeGreaterThanOrEqual(32 * 1024 * 1024);
    const a = passphraseSeed('correct horse', GW_PUB, 'ssh');
    expect(a.equals(passphraseSeed('correct horse', GW_PUB, 'ssh'))).toBe(true);
    expect(a.equals(passphraseSeed('correct horse', GW_PUB, 'db'))).toBe(false);
    expect(a.equals(passphraseSeed('correct horse', x25519PublicRaw(seed('other')), 'ssh'))).toBe(false);
  });
});

describe('2. the server holds public keys only', () => {
  it('a key line holds the public key and the user; a passphrase user is a line like any other', () => {
    const derived = passphraseSeed('correct horse', GW_PUB, 'ssh');
    const line = formatKeyLine(ed25519PublicRaw(derived), 'carol');
    expect(line).toMatch(/^tumbler-ed25519 [A-Za-z0-9+/]{43}= carol$/);
    expect(line).not.toContain(derived.toString('base64'));
    const parsed = parseKeyLine(line);
    const v = new TumblerV2Verifier({ privateKey: GW, gateway: null, windowMs: 60_000, doors: [{ name: 'ssh', nat: 'auto', users: new Map([[parsed.key.toString('base64'), parsed.comment]]) }] });
    expect(grantOf(v.verify(knock(derived, 'ssh'), FROM, NOW)).user).toBe('carol');
  });

  it('refuses malformed key lines with a reason', () => {
    expect(() => parseKeyLine('ssh-ed25519 AAAA alice')).toThrow(/tumbler-ed25519/);
    expect(() => parseKeyLine(`tumbler-ed25519 ${b64(ALICE)}`)).toThrow(/names the user/);
    expect(() => parseKeyLine('tumbler-ed25519 AAAA alice')).toThrow(/32 bytes/);
  });
});

describe('3. replay-proof', () => {
  it('accepts a knock once; the same bytes again are refused before any public-key work', () => {
    const state = new TumblerV2State();
    const msg = knock(ALICE, 'ssh');
    const v = verifier(state);
    const first = v.verify(msg, FROM, NOW);
    expect(first.kind).toBe('grant');
    expect(v.verify(msg, FROM, NOW + 10).kind).toBe('refused');
    expect(v.verify(msg, { ...FROM, address: '203.0.113.9' }, NOW + 10)).toMatchObject({ kind: 'refused', reason: expect.stringMatching(/replayed/) });
    /* a reload keeps the state: still refused */
    expect(verifier(state).verify(msg, FROM, NOW + 20).kind).toBe('refused');
    expect(state.counts.unopened + state.counts.badSignature).toBe(0);
  });

  it('a flipped spare bit is the same knock (same replay id)', () => {
    const msg = knock(ALICE, 'ssh');
    const a = verifier().verify(msg, FROM, NOW);
    const changed = Buffer.from(msg);
    changed[47] ^= 0x80;
    const body = changed.subarray(0, changed.length - 16);
    gateway.mac1(body).copy(changed, changed.length - 16);
    const b = verifier().verify(changed, FROM, NOW);
    expect(a.kind === 'grant' && b.kind === 'grant' && a.replay.key === b.replay.key).toBe(true);
  });

  it('through the listener and the replay store, a restart (a fresh verifier) still refuses it', async () => {
    const store = new ReplayCache();
    const grants: Grant[] = [];
    const hooks = { grant: (g: Grant) => grants.push(g), info: () => undefined, warn: () => undefined };
    const msg = knock(ALICE, 'ssh');
    await new TumblerListener([verifier()], store, hooks, () => NOW).handle(msg, FROM.address);
    const restarted = new TumblerListener([verifier()], new ReplayCache(), hooks, () => NOW + 1000);
    (restarted as unknown as { replay: ReplayCache }).replay.load(store.toJSON(), NOW + 1000);
    await restarted.handle(msg, FROM.address);
    expect(grants).toHaveLength(1);
    expect(restarted.counts.replays).toBe(1);
  });

  it('refuses knocks outside the window, saying by how much, and keeps claims only as long as the window', () => {
    const v = verifier();
    const late = v.verify(knock(ALICE, 'ssh', { time: NOW - 61_000 }), FROM, NOW);
    expect(late).toMatchObject({ kind: 'refused', reason: 'clock off by -61.0 s (window ±60 s)', detail: { user: 'alice', clock: 'behind' } });
    expect(v.verify(knock(ALICE, 'ssh', { time: NOW + 90_000 }), FROM, NOW)).toMatchObject({ reason: expect.stringMatching(/clock off by 90.0 s/) });
    const ok = v.verify(knock(ALICE, 'ssh', { time: NOW - 59_000 }), FROM, NOW);
    expect(ok.kind === 'grant' && ok.replay.untilMs).toBe(NOW - 59_000 + 60_000 + 1000);
    const narrow = verifier(new TumblerV2State(), 5_000).verify(knock(ALICE, 'ssh', { time: NOW - 6_000 }), FROM, NOW);
    expect(narrow).toMatchObject({ kind: 'refused', reason: expect.stringMatching(/window ±5 s/) });
  });

  it('holds at most MAX_KNOCKS_PER_USER knocks of one user in the window', () => {
    const state = new TumblerV2State({ ...DEFAULT_LIMITS, perSource: { perSecond: 1e6, burst: 1e6 } });
    const v = verifier(state);
    for (let i = 0; i < MAX_KNOCKS_PER_USER; i++) expect(v.verify(knock(ALICE, 'ssh'), FROM, NOW).kind).toBe('grant');
    expect(v.verify(knock(ALICE, 'ssh'), FROM, NOW)).toMatchObject({ kind: 'refused', reason: expect.stringMatching(/more than 64/) });
    expect(v.verify(knock(BOB, 'ssh'), FROM, NOW).kind).toBe('grant');
    /* once the window is over, the user's entries expire */
    expect(v.verify(knock(ALICE, 'ssh', { time: NOW + 62_000 }), FROM, NOW + 62_000).kind).toBe('grant');
  });
});

describe('4. not spoofable; NAT modes', () => {
  const declared = (address: string, prefix: number, family: 4 | 6 = 4): Declared[] => [{ address, family, prefix }];
  const behindNat = { ...FROM, address: '203.0.113.50' };

  it('auto: no declaration opens for the source; a declaration must contain the source', () => {
    const v = verifier();
    expect(grantOf(v.verify(knock(ALICE, 'auto'), behindNat, NOW)).src).toBe('203.0.113.50');
    expect(grantOf(v.verify(knock(ALICE, 'auto', { declared: declared('203.0.113.0', 24) }), behindNat, NOW)).src).toBe('203.0.113.50');
    expect(v.verify(knock(ALICE, 'auto', { declared: declared('192.0.2.10', 32) }), behindNat, NOW)).toMatchObject({
      kind: 'refused',
      reason: 'address mismatch: sent from 203.0.113.50, declared 192.0.2.10/32',
      detail: { user: 'alice', door: 'auto', nat: 'auto' },
    });
  });

  it('auto: a declaration of the other family does not constrain this one', () => {
    const v = verifier();
    expect(grantOf(v.verify(knock(ALICE, 'auto', { declared: declared('2001:db8::1', 64, 6) }), behindNat, NOW)).src).toBe('203.0.113.50');
  });

  it('strict: a declaration is required and must contain the source', () => {
    const v = verifier();
    expect(v.verify(knock(ALICE, 'strict'), behindNat, NOW)).toMatchObject({ reason: expect.stringMatching(/declares no IPv4/) });
    expect(v.verify(knock(ALICE, 'strict', { declared: declared('192.0.2.10', 32) }), behindNat, NOW).kind).toBe('refused');
    expect(grantOf(v.verify(knock(ALICE, 'strict', { declared: declared('203.0.113.50', 32) }), behindNat, NOW)).src).toBe('203.0.113.50');
  });

  it('declared: opens for the signed declaration whatever the source', () => {
    const g = grantOf(verifier().verify(knock(ALICE, 'declared', { declared: declared('192.0.2.10', 32) }), behindNat, NOW));
    expect(g).toMatchObject({ src: '192.0.2.10', family: 4, user: 'alice', via: 'tumbler2' });
    const g6 = grantOf(verifier().verify(knock(ALICE, 'declared', { declared: declared('2001:db8::7', 128, 6) }), behindNat, NOW));
    expect(g6).toMatchObject({ src: '2001:db8::7', family: 6 });
  });

  it('packet: opens for the source, declarations ignored', () => {
    expect(grantOf(verifier().verify(knock(ALICE, 'packet', { declared: declared('192.0.2.10', 32) }), behindNat, NOW)).src).toBe('203.0.113.50');
  });

  it('IPv6 prefixes: inside and outside a /64', () => {
    const v = verifier();
    const from6 = { address: '2001:db8:5:6:a:b:c:d', family: 6 as const, port: 1 };
    expect(grantOf(v.verify(knock(ALICE, 'auto', { declared: declared('2001:db8:5:6::', 64, 6) }), from6, NOW)).src).toBe('2001:db8:5:6:a:b:c:d');
    expect(v.verify(knock(ALICE, 'auto', { declared: declared('2001:db8:5:7::', 64, 6) }), from6, NOW).kind).toBe('refused');
    expect(v.verify(knock(ALICE, 'auto', { declared: declared('2001:db8:5:6:8000::', 65, 6) }), from6, NOW).kind).toBe('refused');
    expect(v.verify(knock(ALICE, 'auto', { declared: declared('2001:db8:5:6::', 65, 6) }), from6, NOW).kind).toBe('grant');
  });

  it('a declaration cannot be changed on the way: the knock is signed', () => {
    const msg = knock(ALICE, 'declared', { declared: declared('192.0.2.10', 32) });
    for (const at of [20, 60, 100, msg.length - 20]) {
      const changed = Buffer.from(msg);
      changed[at] ^= 1;
      gateway.mac1(changed.subarray(0, changed.length - 16)).copy(changed, changed.length - 16);
      expect(verifier().verify(changed, FROM, NOW).kind).toBe('junk');
    }
  });
});

describe('5. silent and stealthy', () => {
  const knocks = Array.from({ length: 300 }, (_, i) => knock(i % 2 ? ALICE : BOB, 'ssh'));

  it('has no fixed prefix and no fixed length', () => {
    for (let i = 0; i < 16; i++) expect(new Set(knocks.map((k) => k[i])).size).toBeGreaterThan(100);
    expect(new Set(knocks.map((k) => k.subarray(0, 4).toString('hex'))).size).toBe(knocks.length);
    const lengths = new Set(knocks.map((k) => k.length));
    expect(lengths.size).toBeGreaterThan(80);
    expect(Math.min(...lengths)).toBeGreaterThanOrEqual(MIN_DATAGRAM);
    expect(Math.max(...lengths)).toBeLessThanOrEqual(MAX_DATAGRAM);
  });

  it('byte frequencies are those of random bytes (chi-square), also at each position of the header', () => {
    const all = Buffer.concat(knocks);
    const counts = new Array<number>(256).fill(0);
    for (const b of all) counts[b]++;
    const expected = all.length / 256;
    const chi2 = counts.reduce((s, c) => s + (c - expected) ** 2 / expected, 0);
    /* 255 degrees of freedom: 400 is beyond p = 1e-8; zero padding or a fixed field would be far above */
    expect(chi2).toBeLessThan(400);
    for (const at of [0, 17, 47, 48, 100]) {
      const c = new Array<number>(16).fill(0);
      for (const k of knocks) c[k[at] >> 4]++;
      const e = knocks.length / 16;
      expect(c.reduce((s, x) => s + (x - e) ** 2 / e, 0)).toBeLessThan(60);
    }
  });

  it('the verifier has no way to answer: a verdict carries no reply', () => {
    for (const v of [verifier().verify(knock(ALICE, 'ssh'), FROM, NOW), verifier().verify(crypto.randomBytes(300), FROM, NOW)]) {
      expect(Object.keys(v).sort()).toEqual(v.kind === 'grant' ? ['grant', 'kind', 'replay'] : ['kind']);
    }
  });
});

describe('6. cheap to reject', () => {
  it('junk stops at mac1, before any public-key work; datagrams of other lengths are not even looked at', () => {
    const state = new TumblerV2State();
    const v = verifier(state);
    for (let i = 0; i < 1000; i++) expect(v.verify(crypto.randomBytes(MIN_DATAGRAM + (i % 128)), FROM, NOW).kind).toBe('junk');
    expect(state.counts).toMatchObject({ badMac: 1000, rateLimited: 0, unopened: 0, unknownKey: 0 });
    expect(state.sizes.sources).toBe(0);
    expect(v.recognises(Buffer.alloc(MIN_DATAGRAM - 1))).toBe(false);
    expect(v.recognises(Buffer.alloc(MAX_DATAGRAM + 1))).toBe(false);
    expect(v.recognises(Buffer.from('TUMBLER1: ' + 'ab'.repeat(32)))).toBe(false);
  });

  it('someone who knows the gateway public key makes valid-mac1 junk: limited per source, then globally', () => {
    const forged = () => {
      const m = crypto.randomBytes(300);
      gateway.mac1(m.subarray(0, 284)).copy(m, 284);
      return m;
    };
    const state = new TumblerV2State({ perSource: { perSecond: 1, burst: 5 }, global: { perSecond: 10, burst: 20 }, maxSources: 100 });
    const v = verifier(state);
    for (let i = 0; i < 10; i++) v.verify(forged(), FROM, NOW);
    expect(state.counts).toMatchObject({ unopened: 5, rateLimited: 5 });
    for (let i = 0; i < 100; i++) v.verify(forged(), { ...FROM, address: `10.0.${i >> 8}.${i & 255}` }, NOW);
    expect(state.counts.unopened).toBe(20);
    expect(state.counts.rateLimited).toBe(90);
    /* a knock from a user still gets through once the buckets refill */
    expect(v.verify(knock(ALICE, 'ssh'), { ...FROM, address: '192.0.2.99' }, NOW + 2000).kind).toBe('grant');
  });

  it('the source table stays bounded under ever-new sources; an IPv6 /64 is one source', () => {
    const l = new WorkLimiter({ ...DEFAULT_LIMITS, maxSources: 50 });
    for (let i = 0; i < 10_000; i++) l.allow(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`, 4, NOW);
    expect(l.size).toBe(50);
    expect(sourceKey('2001:db8:1:2:3:4:5:6', 6)).toBe(sourceKey('2001:db8:1:2::9', 6));
    expect(sourceKey('2001:db8::1', 6)).toBe('2001:db8:0:0');
    expect(sourceKey('::1', 6)).toBe('0:0:0:0');
  });
});

describe('7. identity and per-user door permissions', () => {
  it('names the user in the grant; a user not on a door is refused there, by name', () => {
    const v = verifier();
    expect(grantOf(v.verify(knock(BOB, 'ssh'), FROM, NOW))).toMatchObject({ door: 'ssh', user: 'bob', via: 'tumbler2', src: FROM.address });
    expect(v.verify(knock(BOB, 'db'), FROM, NOW)).toMatchObject({ kind: 'refused', reason: 'user not allowed on this door', detail: { user: 'bob', door: 'db' } });
  });

  it('a key that is in no door (removed, or never added) is junk, even with a valid signature', () => {
    const state = new TumblerV2State();
    expect(verifier(state).verify(knock(MALLORY, 'ssh'), FROM, NOW).kind).toBe('junk');
    expect(state.counts.unknownKey).toBe(1);
    const withoutBob = new TumblerV2Verifier({ privateKey: GW, gateway: null, windowMs: 60_000, doors: [door('ssh', [ALICE])] });
    expect(withoutBob.verify(knock(BOB, 'ssh'), FROM, NOW).kind).toBe('junk');
  });

  it('a knock signed by one user but naming another user\'s key is junk', () => {
    /* mallory knows the gateway public key and alice's public key, and seals a knock of her own making */
    const random = { nonce: crypto.randomBytes(16), ephemeral: crypto.randomBytes(32), length: 300, topBit: 0 as const };
    const msg = encodeKnock(gateway, MALLORY, { time: NOW, door: 'ssh', gateway: null, declared: [] }, random);
    const enc = msg.subarray(16, 48);
    const unmasked = gateway.mask(random.nonce, enc);
    const pt = openKnock(gateway, x25519PrivateKey(GW), msg, unmasked)!;
    ed25519PublicRaw(ALICE).copy(pt, pt.length - 96);
    const body = Buffer.concat([msg.subarray(0, 48), setupSender(GW_PUB, random.ephemeral, Buffer.from('tumbler2 knock')).seal(random.nonce, pt)]);
    const forged = Buffer.concat([body, gateway.mac1(body)]);
    const state = new TumblerV2State();
    expect(verifier(state).verify(forged, FROM, NOW).kind).toBe('junk');
    expect(state.counts).toMatchObject({ unopened: 0, unknownKey: 0, badSignature: 1 });
  });
});

describe('8. authentic refusals are diagnosed', () => {
  it('names an unknown door and a knock made for another gateway', () => {
    const v = verifier(new TumblerV2State(), 60_000, 'gw-east');
    expect(v.verify(knock(ALICE, 'nope'), FROM, NOW)).toMatchObject({ kind: 'refused', reason: 'no door of that name here', detail: { user: 'alice' } });
    expect(v.verify(knock(ALICE, 'ssh', { gateway: 'gw-west' }), FROM, NOW)).toMatchObject({ reason: 'knock made for another gateway' });
    expect(v.verify(knock(ALICE, 'ssh', { gateway: 'gw-east' }), FROM, NOW).kind).toBe('grant');
    expect(v.verify(knock(ALICE, 'ssh'), FROM, NOW).kind).toBe('grant');
  });

  it('the listener logs refusals with the user and the reason, at most once a second', async () => {
    const warnings: { m: string; meta?: Record<string, unknown> }[] = [];
    let now = NOW;
    const listener = new TumblerListener([verifier()], new ReplayCache(), { grant: () => undefined, info: () => undefined, warn: (m, meta) => warnings.push({ m, meta }) }, () => now);
    const stale = knock(ALICE, 'ssh', { time: NOW - 120_000 });
    for (let i = 0; i < 5; i++) listener.handle(stale, FROM.address);
    now += 1500;
    listener.handle(knock(BOB, 'db'), FROM.address);
    expect(warnings).toEqual([
      { m: 'tumbler2 knock refused: clock off by -120.0 s (window ±60 s)', meta: { src: FROM.address, user: 'alice', clock: 'behind' } },
      { m: 'tumbler2 knock refused: user not allowed on this door', meta: { src: FROM.address, user: 'bob', door: 'db', alsoSinceLastWarning: 4 } },
    ]);
  });
});
