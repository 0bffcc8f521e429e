#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# This file is part of swift-efs. See LICENSE for details.
"""Generates legacy-ciphers.json: known answers for the legacy primitives of Sources/EFSCore/Legacy, computed with
Python's `cryptography` (OpenSSL), independently of the Swift code.

- DES / Triple DES: ECB and CBC through `cryptography.hazmat.decrepit.ciphers.algorithms.TripleDES` (a 24-byte key
  K‖K‖K is single DES).
- DESX: built here from DES-ECB as E(x) = K2 ^ DES_K(x ^ K1) in CBC, with the Windows EFS key expansion of
  windows-efs-metadata.md §4.5 (MD5(key ‖ "Dan Simon  \\0"), MD5(key ‖ "Scott Field\\0")).
- AES-CBC (no padding), PBKDF2-HMAC-SHA1/SHA256, HMAC, MD5/SHA-1/SHA-256.

Deterministic: a fixed seed, so re-running gives the same file. Run: python3 make-legacy-cipher-vectors.py
"""
import hashlib, hmac, json, os, random, warnings

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

warnings.simplefilter("ignore")
rng = random.Random(0x5EFD)


def rand(n):
    return bytes(rng.getrandbits(8) for _ in range(n))


def tdes(key, mode, data, encrypt=True):
    c = Cipher(TripleDES(key), mode)
    x = c.encryptor() if encrypt else c.decryptor()
    return x.update(data) + x.finalize()


def des_ecb_block(key8, block, encrypt=True):
    return tdes(key8 * 3, modes.ECB(), block, encrypt)


def xor(a, b):
    return bytes(x ^ y for x, y in zip(a, b))


def desx_expand(key16):
    md = hashlib.md5(key16 + b"Dan Simon  \0").digest()
    des_key = xor(md[0:4], md[4:8]) + xor(md[8:12], md[12:16])
    md2 = hashlib.md5(key16 + b"Scott Field\0").digest()
    return des_key, md2[8:16], md2[0:8]  # key, input whitening, output whitening


def desx_cbc_encrypt(des_key, k_in, k_out, iv, data):
    out, chain = b"", iv
    for i in range(0, len(data), 8):
        x = xor(data[i:i + 8], chain)
        chain = xor(des_ecb_block(des_key, xor(x, k_in)), k_out)
        out += chain
    return out


vectors = {"des_ecb": [], "tdes_cbc": [], "desx_raw_cbc": [], "desx_efs_cbc": [], "aes_cbc": [], "pbkdf2": [],
           "hmac": [], "digest": []}

# Classic FIPS / textbook DES answers, recomputed here so the file is self-checking.
for key, pt in [("0123456789ABCDEF", "4E6F772069732074"), ("133457799BBCDFF1", "0123456789ABCDEF"),
                ("0E329232EA6D0D73", "8787878787878787")]:
    k, p = bytes.fromhex(key), bytes.fromhex(pt)
    vectors["des_ecb"].append({"key": k.hex(), "plaintext": p.hex(), "ciphertext": des_ecb_block(k, p).hex()})
for _ in range(8):
    k, p = rand(8), rand(8 * rng.randint(1, 4))
    vectors["des_ecb"].append({"key": k.hex(), "plaintext": p.hex(), "ciphertext": tdes(k * 3, modes.ECB(), p).hex()})

for keylen in (24, 16):
    for n in (0, 8, 16, 64, 512):
        k, iv, p = rand(keylen), rand(8), rand(n)
        ct = tdes(k if keylen == 24 else k + k[:8], modes.CBC(iv), p)
        vectors["tdes_cbc"].append({"key": k.hex(), "iv": iv.hex(), "plaintext": p.hex(), "ciphertext": ct.hex()})

for n in (8, 64, 512):
    dk, kin, kout, iv, p = rand(8), rand(8), rand(8), rand(8), rand(n)
    vectors["desx_raw_cbc"].append({"key": dk.hex(), "input_whitening": kin.hex(), "output_whitening": kout.hex(),
                                    "iv": iv.hex(), "plaintext": p.hex(),
                                    "ciphertext": desx_cbc_encrypt(dk, kin, kout, iv, p).hex()})
for n in (8, 64, 512):
    k, iv, p = rand(16), rand(8), rand(n)
    dk, kin, kout = desx_expand(k)
    vectors["desx_efs_cbc"].append({"key": k.hex(), "iv": iv.hex(), "plaintext": p.hex(),
                                    "ciphertext": desx_cbc_encrypt(dk, kin, kout, iv, p).hex()})

for keylen in (16, 24, 32):
    for n in (16, 512):
        k, iv, p = rand(keylen), rand(16), rand(n)
        e = Cipher(algorithms.AES(k), modes.CBC(iv)).encryptor()
        vectors["aes_cbc"].append({"key": k.hex(), "iv": iv.hex(), "plaintext": p.hex(),
                                   "ciphertext": (e.update(p) + e.finalize()).hex()})

for sha in ("sha1", "sha256"):
    for it, n in ((1, 20), (2048, 32), (10000, 24)):
        pw, salt = rand(rng.randint(0, 24)), rand(8)
        vectors["pbkdf2"].append({"hash": sha, "password": pw.hex(), "salt": salt.hex(), "iterations": it,
                                  "length": n, "output": hashlib.pbkdf2_hmac(sha, pw, salt, it, n).hex()})
    for kl, n in ((0, 0), (20, 50), (100, 200)):
        k, m = rand(kl), rand(n)
        vectors["hmac"].append({"hash": sha, "key": k.hex(), "message": m.hex(),
                                "mac": hmac.new(k, m, sha).hexdigest()})

for n in (0, 3, 64, 1000):
    m = rand(n)
    vectors["digest"].append({"message": m.hex(), "md5": hashlib.md5(m).hexdigest(),
                              "sha1": hashlib.sha1(m).hexdigest(), "sha256": hashlib.sha256(m).hexdigest()})

here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "legacy-ciphers.json"), "w") as f:
    json.dump(vectors, f, indent=1, sort_keys=True)
    f.write("\n")
