#!/usr/bin/python3
"""A second, independent implementation of Tumbler v2 (docs/PROTOCOL.md), written from the
specification with the standard library and Debian's python3-cryptography. It rebuilds the test
vectors byte for byte, verifies datagrams made by the project's client, and knocks a daemon.

  tumbler2.py vectors FILE
  tumbler2.py verify GATEWAY_PRIVATE_HEX KEYLINE...     (hex datagrams on stdin, JSON lines out)
  tumbler2.py knock HOST PORT DOOR GATEWAY_KEY SEED_HEX [--declare ADDR/LEN]... [--time MS] [--gateway NAME]
"""
import base64
import hashlib
import hmac
import ipaddress
import json
import os
import socket
import struct
import sys
import time

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

RAW = dict(encoding=serialization.Encoding.Raw, format=serialization.PublicFormat.Raw)


def sha256(b):
    return hashlib.sha256(b).digest()


def labelled(label, data):
    return sha256(b"tumbler2 " + label + b"\0" + data)


# --- HPKE base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305 (RFC 9180) ---
KEM_SUITE = b"KEM" + struct.pack(">H", 0x20)
HPKE_SUITE = b"HPKE" + struct.pack(">HHH", 0x20, 1, 3)


def hkdf_extract(salt, ikm):
    return hmac.new(salt or b"\0" * 32, ikm, hashlib.sha256).digest()


def hkdf_expand(prk, info, n):
    out, t, i = b"", b"", 1
    while len(out) < n:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        out += t
        i += 1
    return out[:n]


def lextract(suite, salt, label, ikm):
    return hkdf_extract(salt, b"HPKE-v1" + suite + label + ikm)


def lexpand(suite, prk, label, info, n):
    return hkdf_expand(prk, struct.pack(">H", n) + b"HPKE-v1" + suite + label + info, n)


def schedule(dh, enc, pkr, info):
    shared = lexpand(KEM_SUITE, lextract(KEM_SUITE, b"", b"eae_prk", dh), b"shared_secret", enc + pkr, 32)
    ctx = b"\0" + lextract(HPKE_SUITE, b"", b"psk_id_hash", b"") + lextract(HPKE_SUITE, b"", b"info_hash", info)
    secret = lextract(HPKE_SUITE, shared, b"secret", b"")
    return lexpand(HPKE_SUITE, secret, b"key", ctx, 32), lexpand(HPKE_SUITE, secret, b"base_nonce", ctx, 12)


INFO = b"tumbler2 knock"
SIG_LABEL = b"tumbler2 knock\0"


def addr_field(declared, family):
    size = 4 if family == 4 else 16
    for d in declared:
        net = ipaddress.ip_network(d, strict=False)
        if net.version == family:
            return bytes([net.prefixlen]) + ipaddress.ip_address(d.split("/")[0]).packed
    return b"\0" * (1 + size)


def make_knock(gw_pub, seed, t, door, gateway, declared, nonce, eph, length, top_bit):
    user = Ed25519PrivateKey.from_private_bytes(seed)
    pt_len = length - 16 - 32 - 16 - 16
    fixed = bytes([1, 0]) + struct.pack(">Q", t) + labelled(b"door", door.encode())[:8]
    fixed += labelled(b"gateway", gateway.encode())[:8] if gateway else b"\0" * 8
    fixed += addr_field(declared, 4) + addr_field(declared, 6)
    pt = fixed + b"\0" * (pt_len - len(fixed) - 96) + user.public_key().public_bytes(**RAW)
    e = X25519PrivateKey.from_private_bytes(eph)
    enc = e.public_key().public_bytes(**RAW)
    pt += user.sign(SIG_LABEL + gw_pub + nonce + enc + pt)
    key, base_nonce = schedule(e.exchange(X25519PublicKey.from_public_bytes(gw_pub)), enc, gw_pub, INFO)
    ct = ChaCha20Poly1305(key).encrypt(base_nonce, pt, nonce)
    masked = bytearray(enc)
    masked[31] |= top_bit << 7
    mask = sha256(labelled(b"mask", gw_pub) + nonce)
    body = nonce + bytes(a ^ b for a, b in zip(masked, mask)) + ct
    return body + sha256(labelled(b"mac1", gw_pub) + body)[:16]


def open_knock(gw_priv, msg, users):
    """The knock's fields, or the name of the check that failed."""
    sk = X25519PrivateKey.from_private_bytes(gw_priv)
    pk = sk.public_key().public_bytes(**RAW)
    if not 256 <= len(msg) <= 383:
        return "length"
    if not hmac.compare_digest(sha256(labelled(b"mac1", pk) + msg[:-16])[:16], msg[-16:]):
        return "mac1"
    nonce = msg[:16]
    enc = bytearray(a ^ b for a, b in zip(msg[16:48], sha256(labelled(b"mask", pk) + nonce)))
    enc[31] &= 0x7F
    enc = bytes(enc)
    key, base_nonce = schedule(sk.exchange(X25519PublicKey.from_public_bytes(enc)), enc, pk, INFO)
    try:
        pt = ChaCha20Poly1305(key).decrypt(base_nonce, msg[48:-16], nonce)
    except InvalidTag:
        return "hpke"
    if pt[0] != 1 or pt[1] != 0 or any(pt[48:-96]):
        return "format"
    user_key = pt[-96:-64]
    name = users.get(user_key)
    if name is None:
        return "unknown user"
    try:
        Ed25519PublicKey.from_public_bytes(user_key).verify(pt[-64:], SIG_LABEL + pk + nonce + enc + pt[:-64])
    except InvalidSignature:
        return "signature"
    declared = []
    for at, size in ((26, 4), (31, 16)):
        if pt[at]:
            declared.append("%s/%d" % (ipaddress.ip_address(pt[at + 1:at + 1 + size]), pt[at]))
    return {"user": name, "time": struct.unpack(">Q", pt[2:10])[0], "door_id": pt[10:18].hex(),
            "gateway_id": pt[18:26].hex(), "declared": declared, "replay_id": enc.hex(), "length": len(msg)}


def key_line(line):
    kind, b64, comment = line.split(None, 2)
    assert kind == "tumbler-ed25519", line
    return base64.b64decode(b64), comment.strip()


def cmd_vectors(path):
    vectors = json.load(open(path))
    for v in vectors:
        x = bytes.fromhex
        made = make_knock(x(v["gateway_public"]), x(v["user_seed"]), v["time"], v["door"], v["gateway"], v["declared"],
                          x(v["nonce"]), x(v["ephemeral"]), v["length"], v["top_bit"])
        if made.hex() != v["datagram"]:
            print("MISMATCH %s\n made %s\n want %s" % (v["name"], made.hex(), v["datagram"]))
            return 1
        got = open_knock(x(v["gateway_private"]), made, dict([key_line(v["user_key_line"])]))
        if not isinstance(got, dict) or got["time"] != v["time"] or got["door_id"] != v["door_id"] or got["declared"] != v["declared"]:
            print("OPEN FAILED %s: %s" % (v["name"], got))
            return 1
        print("ok %s" % v["name"])
    return 0


def cmd_verify(gw_priv_hex, lines):
    users = dict(key_line(l) for l in lines)
    for row in sys.stdin:
        if row.strip():
            print(json.dumps(open_knock(bytes.fromhex(gw_priv_hex), bytes.fromhex(row.strip()), users)))
    return 0


def cmd_knock(args):
    host, port, door, gw_key, seed_hex = args[:5]
    declared, t, gateway, rest = [], int(time.time() * 1000), None, args[5:]
    while rest:
        opt, val, rest = rest[0], rest[1], rest[2:]
        if opt == "--declare":
            declared.append(val)
        elif opt == "--time":
            t = int(val)
        elif opt == "--gateway":
            gateway = val
        else:
            raise SystemExit("unknown option " + opt)
    gw_pub = base64.urlsafe_b64decode(gw_key + "=" * (-len(gw_key) % 4))
    r = os.urandom(49)
    msg = make_knock(gw_pub, bytes.fromhex(seed_hex), t, door, gateway, declared, r[:16], r[16:48], 256 + (r[48] & 0x7F), r[48] >> 7)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.sendto(msg, (host, int(port)))
    print(msg.hex())
    return 0


if __name__ == "__main__":
    a = sys.argv[1:]
    if a and a[0] == "vectors":
        sys.exit(cmd_vectors(a[1]))
    if a and a[0] == "verify":
        sys.exit(cmd_verify(a[1], a[2:]))
    if a and a[0] == "knock":
        sys.exit(cmd_knock(a[1:]))
    raise SystemExit(__doc__)
