/** Our HPKE against RFC 9180's own test vector for this suite (A.2.1: base mode, X25519, HKDF-SHA256, ChaCha20-Poly1305). */
import { open, setupSender } from '../../src/tumbler/v2/hpke';
import { x25519PrivateKey, x25519PublicRaw } from '../../src/tumbler/v2/keys';

const h = (s: string) => Buffer.from(s, 'hex');
const V = {
  info: h('4f6465206f6e2061204772656369616e2055726e'),
  skRm: h('8057991eef8f1f1af18f4a9491d16a1ce333f695d4db8e38da75975c4478e0fb'),
  skEm: h('f4ec9b33b792c372c1d2c2063507b684ef925b8c75a42dbcbf57d63ccd381600'),
  pkRm: h('4310ee97d88cc1f088a5576c77ab0cf5c3ac797f3d95139c6c84b5429c59662a'),
  enc: h('1afa08d3dec047a643885163f1180476fa7ddb54c6a8029ea33f95796bf2ac4a'),
  aad: h('436f756e742d30'),
  pt: h('4265617574792069732074727574682c20747275746820626561757479'),
  ct: h('1c5250d8034ec2b784ba2cfd69dbdb8af406cfe3ff938e131f0def8c8b60b4db21993c62ce81883d2dd1b51a28'),
};

describe('HPKE (RFC 9180 A.2.1, first encryption)', () => {
  it('derives the recipient public key', () => {
    expect(x25519PublicRaw(V.skRm).equals(V.pkRm)).toBe(true);
  });
  it('seals to the RFC ciphertext with the RFC ephemeral key', () => {
    const s = setupSender(V.pkRm, V.skEm, V.info);
    expect(s.enc.toString('hex')).toBe(V.enc.toString('hex'));
    expect(s.seal(V.aad, V.pt).toString('hex')).toBe(V.ct.toString('hex'));
  });
  it('opens the RFC ciphertext, and nothing that was changed', () => {
    const sk = x25519PrivateKey(V.skRm);
    expect(open(sk, V.pkRm, V.enc, V.info, V.aad, V.ct)?.equals(V.pt)).toBe(true);
    const bad = Buffer.from(V.ct);
    bad[3] ^= 1;
    expect(open(sk, V.pkRm, V.enc, V.info, V.aad, bad)).toBeNull();
    expect(open(sk, V.pkRm, V.enc, V.info, h('00'), V.ct)).toBeNull();
    expect(open(sk, V.pkRm, Buffer.alloc(32), V.info, V.aad, V.ct)).toBeNull();
  });
});
