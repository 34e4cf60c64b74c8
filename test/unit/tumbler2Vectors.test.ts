/**
 * The test vectors of docs/PROTOCOL.md (test/vectors/tumbler2.json): fixed keys and randomness
 * must give exactly the recorded datagram, and the verifier must accept it. The independent
 * Python implementation (test/interop/tumbler2.py) checks the same file, and our client's
 * datagrams, here as well.
 */
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Declared, GatewayContext, encodeKnock } from '../../src/tumbler/v2/datagram';
import { ed25519PublicRaw, formatGatewayKey, formatKeyLine, parseKeyLine, x25519PublicRaw } from '../../src/tumbler/v2/keys';
import { TumblerV2Verifier } from '../../src/tumbler/v2/verifier';
import vectors from '../vectors/tumbler2.json';

const x = (s: string) => Buffer.from(s, 'hex');
const declaredOf = (list: string[]): Declared[] =>
  list.map((d) => {
    const [address, prefix] = d.split('/');
    return { address, family: address.includes(':') ? 6 : 4, prefix: Number(prefix) };
  });
const PYTHON = '/usr/bin/python3';
const SCRIPT = path.join(__dirname, '..', 'interop', 'tumbler2.py');
const pythonMissing = (() => {
  const r = spawnSync(PYTHON, ['-c', 'import cryptography.hazmat.primitives.ciphers.aead'], { encoding: 'utf8' });
  return r.status === 0 ? null : `${PYTHON} with python3-cryptography is not installed (bash .ci/run installs it)`;
})();
if (pythonMissing) console.warn(`SKIPPED the Python interoperability tests: ${pythonMissing}`);
const itPython = pythonMissing ? it.skip : it;

describe.each(vectors)('test vector: $name', (v) => {
  const gateway = new GatewayContext(x(v.gateway_public));

  it('fixed keys and randomness give exactly the recorded datagram', () => {
    expect(x25519PublicRaw(x(v.gateway_private)).toString('hex')).toBe(v.gateway_public);
    expect(formatGatewayKey(x(v.gateway_public))).toBe(v.gateway_key_text);
    const made = encodeKnock(gateway, x(v.user_seed), { time: v.time, door: v.door, gateway: v.gateway, declared: declaredOf(v.declared) }, {
      nonce: x(v.nonce),
      ephemeral: x(v.ephemeral),
      length: v.length,
      topBit: v.top_bit as 0 | 1,
    });
    expect(made.toString('hex')).toBe(v.datagram);
  });

  it('the verifier accepts it for the user of the key line, once', () => {
    const k = parseKeyLine(v.user_key_line);
    const verifier = new TumblerV2Verifier({
      privateKey: x(v.gateway_private),
      gateway: v.gateway,
      windowMs: 60_000,
      doors: [{ name: v.door, nat: 'auto', users: new Map([[k.key.toString('base64'), k.comment]]) }],
    });
    const from = { address: '203.0.113.7', family: 4 as const, port: 1 };
    const verdict = verifier.verify(x(v.datagram), from, v.time + 5000);
    expect(verdict).toMatchObject({ kind: 'grant', grant: { door: v.door, user: 'alice' }, replay: { key: v.enc } });
    expect(verifier.verify(x(v.datagram), from, v.time + 6000).kind).toBe('refused');
  });
});

it('docs/PROTOCOL.md shows exactly these vectors', () => {
  const doc = fs.readFileSync(path.join(__dirname, '..', '..', 'docs', 'PROTOCOL.md'), 'utf8').replace(/\n {18}/g, '');
  for (const v of vectors) {
    expect(doc).toContain(`datagram          ${v.datagram}\n`);
    expect(doc).toContain(`plaintext         ${v.plaintext}\n`);
  }
});

describe('the independent Python implementation', () => {
  itPython('rebuilds every test vector byte for byte', () => {
    const r = spawnSync(PYTHON, [SCRIPT, 'vectors', path.join(__dirname, '..', 'vectors', 'tumbler2.json')], { encoding: 'utf8' });
    expect(r.stdout.trim().split('\n')).toEqual(vectors.map((v) => `ok ${v.name}`));
    expect(r.status).toBe(0);
  });

  itPython("verifies our client's datagrams, and refuses them changed", () => {
    const gwPriv = crypto.randomBytes(32);
    const gateway = new GatewayContext(x25519PublicRaw(gwPriv));
    const seed = crypto.randomBytes(32);
    const k = encodeKnock(gateway, seed, { time: 1, door: 'd', gateway: null, declared: [] });
    const line = formatKeyLine(ed25519PublicRaw(seed), 'bob');
    const knocks = Array.from({ length: 20 }, (_, i) =>
      encodeKnock(gateway, seed, { time: 1795000000000 + i, door: `door${i}`, gateway: i % 2 ? 'gw' : null, declared: i % 3 ? [{ address: '192.0.2.1', family: 4, prefix: 24 }, { address: '2001:db8::', family: 6, prefix: 48 }] : [] }),
    );
    const changed = Buffer.from(knocks[0]);
    changed[100] ^= 4;
    const r = spawnSync(PYTHON, [SCRIPT, 'verify', gwPriv.toString('hex'), line], {
      input: [...knocks, changed, k.subarray(0, 200)].map((b) => b.toString('hex')).join('\n') + '\n',
      encoding: 'utf8',
    });
    expect(r.status).toBe(0);
    const out = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    knocks.forEach((_, i) => {
      expect(out[i]).toMatchObject({ user: 'bob', time: 1795000000000 + i, declared: i % 3 ? ['192.0.2.1/24', '2001:db8::/48'] : [] });
    });
    expect(out.slice(20)).toEqual(['mac1', 'length']);
  });
});
