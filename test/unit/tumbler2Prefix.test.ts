/** Prefix grants: a Tumbler v2 door may open for the source's network; only canonical networks reach a command. */
import crypto from 'node:crypto';
import { DoorDispatcher } from '../../src/doors/dispatcher';
import { expandCommand, splitCommand } from '../../src/doors/commandTemplate';
import { StateStore } from '../../src/doors/stateStore';
import { DEFAULT_FLAGS } from '../../src/knock/sequence';
import { isCanonicalTarget, networkOf } from '../../src/model/address';
import type { DoorConfig } from '../../src/model/door';
import { GatewayContext, encodeKnock } from '../../src/tumbler/v2/datagram';
import { ed25519PublicRaw, x25519PublicRaw } from '../../src/tumbler/v2/keys';
import { TumblerV2Verifier } from '../../src/tumbler/v2/verifier';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const GW = crypto.randomBytes(32);
const USER = crypto.randomBytes(32);
const NOW = Date.UTC(2026, 10, 25);

describe('prefix grants', () => {
  it('networkOf clears host bits; isCanonicalTarget takes addresses and canonical networks only', () => {
    expect(networkOf('203.0.113.77', 4, 24)).toBe('203.0.113.0');
    expect(networkOf('203.0.113.77', 4, 27)).toBe('203.0.113.64');
    expect(networkOf('2001:db8:5:6:a:b:c:d', 6, 64)).toBe('2001:db8:5:6::');
    expect(networkOf('2001:db8:5:6:a:b:c:d', 6, 72)).toBe('2001:db8:5:6::');
    for (const t of ['203.0.113.7', '203.0.113.0/24', '2001:db8:5:6::/64', '2001:db8::1']) expect(isCanonicalTarget(t)).toBe(true);
    for (const t of ['203.0.113.7/24', '203.0.113.0/32', '203.0.113.0/024', '2001:db8:5:6::1/64', '2001:DB8::/32', '10.0.0.0/8 -j ACCEPT', '10.0.0.0/', '0.0.0.0/0']) {
      expect(isCanonicalTarget(t)).toBe(false);
    }
    expect(() => expandCommand(splitCommand('fw %IP%'), { ip: '203.0.113.7/24', name: 'x' })).toThrow(/not an address/);
    expect(expandCommand(splitCommand('fw -s %IP%'), { ip: '203.0.113.0/24', name: 'x' })).toEqual(['fw', '-s', '203.0.113.0/24']);
  });

  it('the verifier grants the source\'s network; the dispatcher opens it as NETWORK/LEN; the state file keeps it', async () => {
    const gateway = new GatewayContext(x25519PublicRaw(GW));
    const v = new TumblerV2Verifier({
      privateKey: GW,
      gateway: null,
      windowMs: 60_000,
      doors: [{ name: 'ssh', nat: 'auto', users: new Map([[ed25519PublicRaw(USER).toString('base64'), 'alice']]), grantPrefix: { 4: 24, 6: 64 } }],
    });
    const verdict = v.verify(encodeKnock(gateway, USER, { time: NOW, door: 'ssh', gateway: null, declared: [] }), { address: '2001:db8:5:6:a:b:c:d', family: 6, port: 1 }, NOW);
    expect(verdict).toMatchObject({ kind: 'grant', grant: { src: '2001:db8:5:6::', prefix: 64, family: 6, user: 'alice' } });
    const v4 = v.verify(encodeKnock(gateway, USER, { time: NOW, door: 'ssh', gateway: null, declared: [] }), { address: '203.0.113.77', family: 4, port: 1 }, NOW);
    expect(v4).toMatchObject({ kind: 'grant', grant: { src: '203.0.113.0', prefix: 24 } });

    const door: DoorConfig = {
      name: 'ssh', sequence: null, sequenceTimeoutMs: 1, flags: DEFAULT_FLAGS, secret: null,
      open: [splitCommand('fw open %IP%')], close: [splitCommand('fw close %IP%')], open6: [], close6: [],
      closeAfterMs: 60_000, commandTimeoutMs: 1000, allow: [],
    };
    const ran: string[] = [];
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tumbler-v2-prefix-'));
    try {
      let d: DoorDispatcher | null = null;
      const store = new StateStore(dir, () => d!.snapshot());
      d = new DoorDispatcher([door], async (argv) => {
        ran.push(argv.join(' '));
        return { ok: true, code: 0, signal: null, timedOut: false, stdout: '', stderr: '' };
      }, { info() {}, warn() {}, error() {} }, () => store.save());
      if (v4.kind !== 'grant') throw new Error('no grant');
      await d.openDoor(v4.grant);
      expect(ran).toEqual(['fw open 203.0.113.0/24']);
      expect(d.list()).toMatchObject([{ door: 'ssh', src: '203.0.113.0/24', user: 'alice' }]);
      expect(store.load().doors).toMatchObject([{ src: '203.0.113.0/24', close: [['fw', 'close', '203.0.113.0/24']] }]);
      await d.closeAll('test');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
