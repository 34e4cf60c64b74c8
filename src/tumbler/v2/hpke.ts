/**
 * HPKE (RFC 9180) base mode for exactly one suite: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
 * ChaCha20-Poly1305, single-shot (sequence number 0). Node 20's crypto has every primitive but
 * not HPKE itself; the RFC's test vector for this suite is checked in the unit tests.
 */
import crypto from 'node:crypto';
import { x25519PrivateKey, x25519PublicKey, x25519PublicRaw } from './keys';

const KEM_ID = 0x0020;
const KDF_ID = 0x0001;
const AEAD_ID = 0x0003;
const NK = 32;
const NN = 12;
export const TAG_LENGTH = 16;

const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
const KEM_SUITE = Buffer.concat([Buffer.from('KEM'), u16(KEM_ID)]);
const HPKE_SUITE = Buffer.concat([Buffer.from('HPKE'), u16(KEM_ID), u16(KDF_ID), u16(AEAD_ID)]);
const V1 = Buffer.from('HPKE-v1');
const EMPTY = Buffer.alloc(0);

function extract(salt: Buffer, ikm: Buffer): Buffer {
  /* RFC 5869: an empty salt is HashLen zeros, which HMAC pads to the same key */
  return crypto.createHmac('sha256', salt).update(ikm).digest();
}

function expand(prk: Buffer, info: Buffer, length: number): Buffer {
  const out: Buffer[] = [];
  let t = EMPTY;
  for (let i = 1; Buffer.concat(out).length < length; i++) {
    t = crypto.createHmac('sha256', prk).update(t).update(info).update(Buffer.from([i])).digest();
    out.push(t);
  }
  return Buffer.concat(out).subarray(0, length);
}

const labeledExtract = (suite: Buffer, salt: Buffer, label: string, ikm: Buffer) =>
  extract(salt, Buffer.concat([V1, suite, Buffer.from(label), ikm]));

const labeledExpand = (suite: Buffer, prk: Buffer, label: string, info: Buffer, length: number) =>
  expand(prk, Buffer.concat([u16(length), V1, suite, Buffer.from(label), info]), length);

function sharedSecret(dh: Buffer, enc: Buffer, pkR: Buffer): Buffer {
  const prk = labeledExtract(KEM_SUITE, EMPTY, 'eae_prk', dh);
  return labeledExpand(KEM_SUITE, prk, 'shared_secret', Buffer.concat([enc, pkR]), 32);
}

/** The AEAD key and nonce of the base-mode key schedule (the exporter secret is not used). */
export function keySchedule(shared: Buffer, info: Buffer): { key: Buffer; nonce: Buffer } {
  const pskIdHash = labeledExtract(HPKE_SUITE, EMPTY, 'psk_id_hash', EMPTY);
  const infoHash = labeledExtract(HPKE_SUITE, EMPTY, 'info_hash', info);
  const context = Buffer.concat([Buffer.from([0]), pskIdHash, infoHash]);
  const secret = labeledExtract(HPKE_SUITE, shared, 'secret', EMPTY);
  return {
    key: labeledExpand(HPKE_SUITE, secret, 'key', context, NK),
    nonce: labeledExpand(HPKE_SUITE, secret, 'base_nonce', context, NN),
  };
}

function dh(privateKey: crypto.KeyObject, publicRaw: Buffer): Buffer {
  return crypto.diffieHellman({ privateKey, publicKey: x25519PublicKey(publicRaw) });
}

/**
 * SetupBaseS with a given ephemeral private key (random in use, fixed in test vectors): the
 * encapsulated key is known before anything is sealed, so what is sealed can sign it.
 */
export function setupSender(pkR: Buffer, skE: Buffer, info: Buffer): { enc: Buffer; seal(aad: Buffer, plaintext: Buffer): Buffer } {
  const enc = x25519PublicRaw(skE);
  const { key, nonce } = keySchedule(sharedSecret(dh(x25519PrivateKey(skE), pkR), enc, pkR), info);
  return {
    enc,
    seal(aad, plaintext) {
      const cipher = crypto.createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG_LENGTH });
      cipher.setAAD(aad, { plaintextLength: plaintext.length });
      return Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
    },
  };
}

/** SetupBaseR + Open; null when the ciphertext does not authenticate (or enc is a low-order point). */
export function open(skR: crypto.KeyObject, pkR: Buffer, enc: Buffer, info: Buffer, aad: Buffer, ciphertext: Buffer): Buffer | null {
  if (ciphertext.length < TAG_LENGTH) return null;
  let shared: Buffer;
  try {
    shared = sharedSecret(dh(skR, enc), enc, pkR);
  } catch {
    return null; /* Node refuses an all-zero shared secret, as RFC 9180 requires */
  }
  const { key, nonce } = keySchedule(shared, info);
  const decipher = crypto.createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG_LENGTH });
  decipher.setAAD(aad, { plaintextLength: ciphertext.length - TAG_LENGTH });
  decipher.setAuthTag(ciphertext.subarray(ciphertext.length - TAG_LENGTH));
  const body = decipher.update(ciphertext.subarray(0, ciphertext.length - TAG_LENGTH));
  try {
    decipher.final();
  } catch {
    return null;
  }
  return body;
}
