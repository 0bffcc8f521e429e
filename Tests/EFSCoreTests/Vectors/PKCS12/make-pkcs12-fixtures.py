#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# This file is part of swift-efs. See LICENSE for details.
"""Regenerates the PKCS#12 fixtures of PKCS12Tests.swift (see README.md in this folder).

    python3 Tests/EFSCoreTests/Vectors/PKCS12/make-pkcs12-fixtures.py

Needs openssl 3 (with the legacy provider) and Python's `cryptography` package. Makes new random keys on every run,
then the .pfx files from them with three independent writers, and `expected.json` with what each file must give
(thumbprints from `openssl x509 -fingerprint`, public-key hashes from `openssl pkey -pubout`). `kdf-vectors.json`
holds PKCS#12 KDF answers computed by `openssl kdf PKCS12KDF`.

The "custom" writer below is written against RFC 7292 / RFC 8018 / RFC 9579, independently of the Swift reader; its
KDF is checked against openssl's before any file is written, and every file it makes is read back with openssl or
`cryptography` (which read the others too).
"""

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import tempfile

from cryptography import x509
from cryptography.hazmat.decrepit.ciphers.algorithms import RC2, TripleDES
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.serialization import pkcs12

HERE = os.path.dirname(os.path.abspath(__file__))
WORK = tempfile.mkdtemp()
PASSWORD = "correct horse"
UNICODE_PASSWORD = "Pässwörd ☃"


def run(*args, input=None):
    return subprocess.run(args, check=True, capture_output=True, input=input).stdout


def out(name):
    return os.path.join(HERE, name)


# MARK: - Keys and certificates

def make_cert(name, newkey, cn, extra=()):
    key, cert = out(f"{name}.key.pem"), out(f"{name}.cert.pem")
    run("openssl", "req", "-x509", "-newkey", newkey, "-nodes", "-keyout", key, "-out", cert, "-days", "36500",
        "-subj", f"/CN={cn}", *extra)
    return key, cert


EFS_EXT = ("-addext", "extendedKeyUsage=1.3.6.1.4.1.311.10.3.4", "-addext", "keyUsage=critical,keyEncipherment")
ALICE = make_cert("alice-rsa2048", "rsa:2048", "alice", EFS_EXT)
# The P-256 key needs its curve named, so it is made in two steps.
run("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", out("bob-p256.key.pem"))
run("openssl", "req", "-x509", "-key", out("bob-p256.key.pem"), "-out", out("bob-p256.cert.pem"), "-days", "36500",
    "-subj", "/CN=bob", *EFS_EXT)
BOB = (out("bob-p256.key.pem"), out("bob-p256.cert.pem"))
# An old CA certificate with an RSA-1024 key: a PFX may carry it, but it is not usable for EFS.
OLDCA = make_cert("old-ca-rsa1024", "rsa:1024", "Old CA")


# A PBES2 DES-EDE3-CBC key file for PrivateKeyFile (which shares the PBES2 code).
run("openssl", "pkcs8", "-topk8", "-in", ALICE[0], "-v2", "des3", "-iter", "2048", "-passout", "pass:correct horse",
    "-out", out("alice-rsa2048.pbes2-des3.key.pem"))


def thumbprint(cert_pem):
    line = run("openssl", "x509", "-in", cert_pem, "-noout", "-fingerprint", "-sha1").decode()
    return line.split("=", 1)[1].strip().replace(":", "").upper()


def spki_sha256(key_pem):
    return hashlib.sha256(run("openssl", "pkey", "-in", key_pem, "-pubout", "-outform", "DER")).hexdigest()


def der_of(pem_path):
    return x509.load_pem_x509_certificate(open(pem_path, "rb").read()).public_bytes(serialization.Encoding.DER)


def pkcs8_of(key_pem):
    k = serialization.load_pem_private_key(open(key_pem, "rb").read(), None)
    return k.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


# MARK: - DER / BER

def length(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def tlv(tag, content, ber=False):
    """DER, or with ber=True a constructed node with indefinite length (BER)."""
    if ber:
        assert tag & 0x20
        return bytes([tag]) + b"\x80" + content + b"\x00\x00"
    return bytes([tag]) + length(len(content)) + content


def seq(*items, ber=False):
    return tlv(0x30, b"".join(items), ber)


def set_of(*items):
    return tlv(0x31, b"".join(sorted(items)))


def octets(b):
    return tlv(0x04, b)


def octets_ber(b, chunk=100):
    """A constructed BER OCTET STRING of primitive chunks, indefinite length."""
    return tlv(0x24, b"".join(octets(b[i:i + chunk]) for i in range(0, len(b), chunk)), ber=True)


def integer(n):
    b = n.to_bytes((n.bit_length() + 8) // 8, "big")
    return tlv(0x02, b)


def oid(dotted):
    parts = [int(p) for p in dotted.split(".")]
    body = bytes([40 * parts[0] + parts[1]])
    for p in parts[2:]:
        enc = [p & 0x7F]
        p >>= 7
        while p:
            enc.insert(0, 0x80 | (p & 0x7F))
            p >>= 7
        body += bytes(enc)
    return tlv(0x06, body)


def null():
    return b"\x05\x00"


def explicit0(content, ber=False):
    return tlv(0xA0, content, ber)


def bmp_string(s):
    return tlv(0x1E, s.encode("utf-16-be"))


DATA, ENCRYPTED_DATA = "1.2.840.113549.1.7.1", "1.2.840.113549.1.7.6"
KEY_BAG, SHROUDED_KEY_BAG, CERT_BAG = "1.2.840.113549.1.12.10.1.1", "1.2.840.113549.1.12.10.1.2", "1.2.840.113549.1.12.10.1.3"
SECRET_BAG, SAFE_CONTENTS_BAG = "1.2.840.113549.1.12.10.1.5", "1.2.840.113549.1.12.10.1.6"
X509_CERT, FRIENDLY_NAME, LOCAL_KEY_ID = "1.2.840.113549.1.9.22.1", "1.2.840.113549.1.9.20", "1.2.840.113549.1.9.21"
MS_CSP_NAME = "1.3.6.1.4.1.311.17.1"
PBE_SHA1_3DES, PBE_SHA1_RC2_128 = "1.2.840.113549.1.12.1.3", "1.2.840.113549.1.12.1.5"
PBES2, PBKDF2, PBMAC1 = "1.2.840.113549.1.5.13", "1.2.840.113549.1.5.12", "1.2.840.113549.1.5.14"
HMAC_SHA256, AES256_CBC = "1.2.840.113549.2.9", "2.16.840.1.101.3.4.1.42"
SHA1, SHA256 = "1.3.14.3.2.26", "2.16.840.1.101.3.4.2.1"


# MARK: - RFC 7292 appendix B: the PKCS#12 KDF (independent of the Swift one)

def bmp_password(pw):
    """None is the "null" password (no bytes); a string becomes UTF-16BE plus a two-byte NUL."""
    return b"" if pw is None else pw.encode("utf-16-be") + b"\x00\x00"


def pkcs12_kdf(password, salt, iterations, ident, n, h=hashlib.sha1):
    u, v = h().digest_size, h().block_size
    d = bytes([ident]) * v

    def stretch(x):  # x repeated to the next multiple of v bytes; empty stays empty
        if not x:
            return b""
        n = v * ((len(x) + v - 1) // v)
        return (x * (n // len(x) + 1))[:n]

    i = bytearray(stretch(salt) + stretch(password))
    result = b""
    while len(result) < n:
        a = h(d + bytes(i)).digest()
        for _ in range(iterations - 1):
            a = h(a).digest()
        result += a
        b = int.from_bytes((a * (v // u + 1))[:v], "big")
        for j in range(0, len(i), v):
            block = (int.from_bytes(i[j:j + v], "big") + b + 1) % (1 << (8 * v))
            i[j:j + v] = block.to_bytes(v, "big")
    return result[:n]


def openssl_kdf(digest, pw_bmp, salt, iterations, ident, n):
    args = ["openssl", "kdf", "-keylen", str(n), "-kdfopt", f"digest:{digest}", "-kdfopt", f"hexpass:{pw_bmp.hex()}",
            "-kdfopt", f"hexsalt:{salt.hex()}", "-kdfopt", f"iter:{iterations}", "-kdfopt", f"id:{ident}", "PKCS12KDF"]
    return bytes.fromhex(run(*args).decode().strip().replace(":", ""))


KDF_CASES = [
    # (digest, password or None, salt hex, iterations, id, length)
    ("SHA1", "smeg", "0a58cf64530d823f", 1, 1, 24),
    ("SHA1", "smeg", "0a58cf64530d823f", 1, 2, 8),
    ("SHA1", "queeg", "05dec959acff72f7", 1000, 1, 24),
    ("SHA1", "queeg", "05dec959acff72f7", 1000, 2, 8),
    ("SHA1", "", "3d83c0e4546ac140", 1, 3, 20),
    ("SHA1", None, "3d83c0e4546ac140", 3, 3, 20),
    ("SHA1", PASSWORD, "1122334455667788", 2048, 1, 50),
    ("SHA256", PASSWORD, "0102030405060708090a0b0c0d0e0f10", 2048, 3, 32),
    ("SHA256", UNICODE_PASSWORD, "a1a2a3a4a5a6a7a8", 5, 1, 100),
    ("SHA512", PASSWORD, "ffeeddccbbaa9988", 7, 3, 64),
    ("SHA512", "a" * 200, "00" * 130, 2, 2, 130),
    ("SHA1", "x", "00", 1, 1, 5),
]


def kdf_vectors():
    vectors = []
    for digest, pw, salt_hex, iterations, ident, n in KDF_CASES:
        pw_bmp, salt = bmp_password(pw), bytes.fromhex(salt_hex)
        h = {"SHA1": hashlib.sha1, "SHA256": hashlib.sha256, "SHA512": hashlib.sha512}[digest]
        mine = pkcs12_kdf(pw_bmp, salt, iterations, ident, n, h)
        if pw_bmp:
            theirs = openssl_kdf(digest, pw_bmp, salt, iterations, ident, n)
            assert mine == theirs, (digest, pw, ident)
            source = "openssl kdf PKCS12KDF"
        else:
            source = "make-pkcs12-fixtures.py (openssl kdf cannot take an empty password)"
        vectors.append({"hash": digest, "password": pw, "passwordBMP": pw_bmp.hex(), "salt": salt_hex,
                        "iterations": iterations, "id": ident, "length": n, "output": mine.hex(), "source": source})
    return vectors


# MARK: - The custom writer

def pad(data, bits):
    p = padding.PKCS7(bits).padder()
    return p.update(data) + p.finalize()


def pbe_sha1(oid_str, plain, pw_bmp, salt, iterations):
    """RFC 7292 appendix C: pbeWithSHAAnd3-KeyTripleDES-CBC or pbeWithSHAAnd128BitRC2-CBC."""
    if oid_str == PBE_SHA1_3DES:
        key, algo = pkcs12_kdf(pw_bmp, salt, iterations, 1, 24), TripleDES
    else:
        key, algo = pkcs12_kdf(pw_bmp, salt, iterations, 1, 16), RC2
    iv = pkcs12_kdf(pw_bmp, salt, iterations, 2, 8)
    enc = Cipher(algo(key), modes.CBC(iv)).encryptor()
    ct = enc.update(pad(plain, 64)) + enc.finalize()
    return seq(oid(oid_str), seq(octets(salt), integer(iterations))), ct


def pbes2_aes256(plain, pw_utf8, salt, iterations, iv):
    key = hashlib.pbkdf2_hmac("sha256", pw_utf8, salt, iterations, 32)
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    ct = enc.update(pad(plain, 128)) + enc.finalize()
    alg = seq(oid(PBES2), seq(seq(oid(PBKDF2), seq(octets(salt), integer(iterations), seq(oid(HMAC_SHA256), null()))),
                              seq(oid(AES256_CBC), octets(iv))))
    return alg, ct


def attributes(friendly=None, local_key_id=None, csp=None):
    attrs = []
    if friendly is not None:
        attrs.append(seq(oid(FRIENDLY_NAME), set_of(bmp_string(friendly))))
    if local_key_id is not None:
        attrs.append(seq(oid(LOCAL_KEY_ID), set_of(octets(local_key_id))))
    if csp is not None:
        attrs.append(seq(oid(MS_CSP_NAME), set_of(bmp_string(csp))))
    return set_of(*attrs) if attrs else b""


def safe_bag(bag_oid, value, attrs=b"", ber=False):
    return seq(oid(bag_oid), explicit0(value, ber), attrs, ber=ber)


def cert_bag(cert_der, attrs=b"", ber=False):
    return safe_bag(CERT_BAG, seq(oid(X509_CERT), explicit0(octets(cert_der), ber), ber=ber), attrs, ber)


def shrouded_key_bag(alg, ct, attrs=b""):
    return safe_bag(SHROUDED_KEY_BAG, seq(alg, octets(ct)), attrs)


def data_content_info(safe_contents, ber=False):
    return seq(oid(DATA), explicit0(octets_ber(safe_contents) if ber else octets(safe_contents), ber), ber=ber)


def encrypted_content_info(alg, ct):
    # EncryptedData { version 0, EncryptedContentInfo { data, alg, [0] IMPLICIT OCTET STRING } }
    return seq(oid(ENCRYPTED_DATA), explicit0(seq(integer(0), seq(oid(DATA), alg, tlv(0x80, ct)))))


def pfx(auth_safe_infos, mac, ber=False):
    auth_safe = seq(*auth_safe_infos)
    return seq(integer(3), data_content_info(auth_safe, ber) if ber else seq(oid(DATA), explicit0(octets(auth_safe))),
               mac(auth_safe), ber=ber)


def pkcs12_mac(pw_bmp, salt, iterations, digest="sha1"):
    h = {"sha1": hashlib.sha1, "sha256": hashlib.sha256}[digest]
    alg = {"sha1": SHA1, "sha256": SHA256}[digest]

    def make(auth_safe):
        key = pkcs12_kdf(pw_bmp, salt, iterations, 3, h().digest_size, h)
        mac = hmac.new(key, auth_safe, h).digest()
        return seq(seq(seq(oid(alg), null()), octets(mac)), octets(salt), integer(iterations))
    return make


def pbmac1(pw_utf8, salt, iterations, key_length=32):
    def make(auth_safe):
        key = hashlib.pbkdf2_hmac("sha256", pw_utf8, salt, iterations, key_length)
        mac = hmac.new(key, auth_safe, hashlib.sha256).digest()
        kdf_params = seq(octets(salt), integer(iterations), integer(key_length), seq(oid(HMAC_SHA256), null()))
        alg = seq(oid(PBMAC1), seq(seq(oid(PBKDF2), kdf_params), seq(oid(HMAC_SHA256), null())))
        # RFC 9579 §3: macSalt and iterations are ignored; the RFC's examples use "NOT USED" and 1.
        return seq(seq(alg, octets(mac)), octets(b"NOT USED"), integer(1))
    return make


def no_mac(auth_safe):
    return b""


def windows_style_null_password():
    """The layout of a Windows export: shrouded key (3DES) in a data ContentInfo, certificate in an encryptedData,
    localKeyId 01000000, the key container name as friendlyName, the CSP name; MAC SHA-1 with 2000 iterations.
    Everything keyed with the null password (no bytes, not even the BMPString NUL)."""
    pw = bmp_password(None)
    kid = bytes.fromhex("01000000")
    key_alg, key_ct = pbe_sha1(PBE_SHA1_3DES, pkcs8_of(ALICE[0]), pw, os.urandom(20), 2000)
    key_attrs = attributes("{3F2504E0-4F89-11D3-9A0C-0305E82C3301}", kid, "Microsoft Enhanced Cryptographic Provider v1.0")
    keys = data_content_info(seq(shrouded_key_bag(key_alg, key_ct, key_attrs)))
    cert_alg, cert_ct = pbe_sha1(PBE_SHA1_3DES, seq(cert_bag(der_of(ALICE[1]), attributes(None, kid))), pw,
                                 os.urandom(8), 2000)
    return pfx([encrypted_content_info(cert_alg, cert_ct), keys], pkcs12_mac(pw, os.urandom(20), 2000))


def two_keys_ber():
    """Two keys and three certificates in BER with indefinite lengths: alice (RSA, paired by localKeyId, in a plain
    keyBag inside a nested safeContentsBag) and bob (P-256, shrouded with RC2-128, no localKeyId: paired by public
    key), the old CA certificate, and a secretBag to skip. MAC SHA-256."""
    pw = bmp_password(PASSWORD)
    kid = b"alice-key"
    alice_key = safe_bag(KEY_BAG, pkcs8_of(ALICE[0]), attributes("alice", kid))
    nested = safe_bag(SAFE_CONTENTS_BAG, seq(alice_key, ber=True), ber=True)
    bob_alg, bob_ct = pbe_sha1(PBE_SHA1_RC2_128, pkcs8_of(BOB[0]), pw, os.urandom(8), 1000)
    bob_key = shrouded_key_bag(bob_alg, bob_ct, attributes("bob"))
    secret = safe_bag(SECRET_BAG, seq(oid("1.2.3.4"), explicit0(octets(b"not a key"))))
    first = data_content_info(seq(nested, bob_key, secret, ber=True), ber=True)
    certs = seq(cert_bag(der_of(BOB[1]), ber=True), cert_bag(der_of(OLDCA[1])),
                cert_bag(der_of(ALICE[1]), attributes(None, kid)), ber=True)
    cert_alg, cert_ct = pbes2_aes256(certs, PASSWORD.encode(), os.urandom(16), 1000, os.urandom(16))
    return pfx([first, encrypted_content_info(cert_alg, cert_ct)], pkcs12_mac(pw, os.urandom(8), 1000, "sha256"), ber=True)


def pbmac1_file(key_length=32):
    """PBMAC1 (RFC 9579) with HMAC-SHA256 and PBKDF2-HMAC-SHA256; contents PBES2 AES-256."""
    pw = PASSWORD.encode()
    key_alg, key_ct = pbes2_aes256(pkcs8_of(ALICE[0]), pw, os.urandom(16), 2048, os.urandom(16))
    kid = b"\x01"
    keys = data_content_info(seq(shrouded_key_bag(key_alg, key_ct, attributes("alice", kid)),
                                 cert_bag(der_of(ALICE[1]), attributes(None, kid))))
    return pfx([keys], pbmac1(pw, os.urandom(16), 2048, key_length))


# MARK: - The files

def openssl_export(name, password, *args, key=ALICE, chain=None, legacy=False):
    cmd = ["openssl", "pkcs12", "-export", "-inkey", key[0], "-in", key[1], "-name", "alice" if key is ALICE else "bob",
           "-passout", f"pass:{password}", "-out", out(name)]
    if chain:
        cmd += ["-certfile", chain]
    if legacy:
        cmd += ["-provider", "legacy", "-provider", "default"]
    run(*cmd, *args)


def check_with_openssl(name, password):
    """openssl must read it back (its -info output names the algorithms)."""
    args = ["openssl", "pkcs12", "-in", out(name), "-passin", f"pass:{password}", "-info", "-noout",
            "-provider", "legacy", "-provider", "default"]
    return run(*args).decode() + subprocess.run(args, capture_output=True).stderr.decode()


def main():
    files = []

    def add(name, made_by, password, checks, keys, certs, integrity, legacy, schemes=None):
        files.append({"file": name, "madeBy": made_by, "password": password, "checks": checks, "keys": keys,
                      "certificates": certs, "integrity": integrity, "legacyEncryption": legacy,
                      "schemes": schemes})

    alice = {"spkiSHA256": spki_sha256(ALICE[0]), "certificate": thumbprint(ALICE[1])}
    bob = {"spkiSHA256": spki_sha256(BOB[0]), "certificate": thumbprint(BOB[1])}
    a_t, b_t, ca_t = thumbprint(ALICE[1]), thumbprint(BOB[1]), thumbprint(OLDCA[1])

    openssl_export("openssl-default.pfx", PASSWORD)
    add("openssl-default.pfx", "openssl pkcs12 -export (OpenSSL 3 defaults)", PASSWORD,
        "PBES2 PBKDF2-SHA256 AES-256-CBC for key and certificate, MAC HMAC-SHA256",
        [dict(alice, friendlyName="alice")], [a_t], "HMAC-SHA256", False,
        ["PBES2 (PBKDF2-hmacWithSHA256, aes256-CBC)"])

    openssl_export("openssl-legacy.pfx", PASSWORD, "-legacy", chain=OLDCA[1], legacy=True)
    add("openssl-legacy.pfx", "openssl pkcs12 -export -legacy -certfile old-ca", PASSWORD,
        "pbeWithSHAAnd3-KeyTripleDES-CBC key, pbeWithSHAAnd40BitRC2-CBC certificates, MAC HMAC-SHA1; an RSA-1024 "
        "CA certificate that is not usable for EFS",
        [dict(alice, friendlyName="alice")], [a_t, ca_t], "HMAC-SHA1", True,
        ["pbewithSHAAnd40BitRC2-CBC", "pbeWithSHAAnd3-KeyTripleDES-CBC"])

    openssl_export("openssl-2des-rc2-128.pfx", PASSWORD, "-keypbe", "PBE-SHA1-2DES", "-certpbe", "PBE-SHA1-RC2-128",
                   "-macalg", "sha1", "-iter", "1000", legacy=True)
    add("openssl-2des-rc2-128.pfx", "openssl pkcs12 -export -keypbe PBE-SHA1-2DES -certpbe PBE-SHA1-RC2-128", PASSWORD,
        "pbeWithSHAAnd2-KeyTripleDES-CBC key, pbeWithSHAAnd128BitRC2-CBC certificate",
        [dict(alice, friendlyName="alice")], [a_t], "HMAC-SHA1", True,
        ["pbeWithSHAAnd128BitRC2-CBC", "pbeWithSHAAnd2-KeyTripleDES-CBC"])

    openssl_export("openssl-pbes2-3des-sha512mac.pfx", PASSWORD, "-keypbe", "des-ede3-cbc", "-certpbe", "aes-128-cbc",
                   "-macalg", "sha512")
    add("openssl-pbes2-3des-sha512mac.pfx", "openssl pkcs12 -export -keypbe des-ede3-cbc -certpbe aes-128-cbc "
        "-macalg sha512", PASSWORD, "PBES2 with DES-EDE3-CBC and with AES-128-CBC, MAC HMAC-SHA512",
        [dict(alice, friendlyName="alice")], [a_t], "HMAC-SHA512", True,
        ["PBES2 (PBKDF2-hmacWithSHA256, aes128-CBC)", "PBES2 (PBKDF2-hmacWithSHA256, des-EDE3-CBC)"])

    openssl_export("openssl-unicode-password.pfx", UNICODE_PASSWORD, "-legacy", legacy=True)
    add("openssl-unicode-password.pfx", "openssl pkcs12 -export -legacy, UTF-8 password", UNICODE_PASSWORD,
        "a non-ASCII password becomes a UTF-16 BMPString for the MAC and the legacy PBEs",
        [dict(alice, friendlyName="alice")], [a_t], "HMAC-SHA1", True, None)

    openssl_export("openssl-empty-password.pfx", "", "-legacy", legacy=True)
    add("openssl-empty-password.pfx", "openssl pkcs12 -export -legacy -passout pass:", "",
        "the empty password: a BMPString of two NUL bytes", [dict(alice, friendlyName="alice")], [a_t], "HMAC-SHA1",
        True, None)

    openssl_export("openssl-nomac-plain.pfx", PASSWORD, "-nomac", "-keypbe", "NONE", "-certpbe", "NONE", key=BOB)
    add("openssl-nomac-plain.pfx", "openssl pkcs12 -export -nomac -keypbe NONE -certpbe NONE (P-256 key)", PASSWORD,
        "no MAC, no encryption: a plain keyBag; any password opens it", [dict(bob, friendlyName="bob")], [b_t],
        "none", False, [])

    openssl_export("openssl-nomac-aes.pfx", PASSWORD, "-nomac")
    add("openssl-nomac-aes.pfx", "openssl pkcs12 -export -nomac", PASSWORD,
        "no MAC: a wrong password shows only when the contents do not decrypt", [dict(alice, friendlyName="alice")],
        [a_t], "none", False, None)

    # Python cryptography.
    alice_key = serialization.load_pem_private_key(open(ALICE[0], "rb").read(), None)
    alice_cert = x509.load_pem_x509_certificate(open(ALICE[1], "rb").read())
    ca_cert = x509.load_pem_x509_certificate(open(OLDCA[1], "rb").read())
    enc = (serialization.PrivateFormat.PKCS12.encryption_builder().kdf_rounds(5000)
           .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC).hmac_hash(hashes.SHA1()).build(PASSWORD.encode()))
    open(out("python-aes256-sha1mac.pfx"), "wb").write(
        pkcs12.serialize_key_and_certificates(b"alice", alice_key, alice_cert, [ca_cert], enc))
    add("python-aes256-sha1mac.pfx", "cryptography serialize_key_and_certificates, PBESv2SHA256AndAES256CBC, "
        "hmac_hash SHA1 (like Windows' AES256-SHA256 export)", PASSWORD,
        "PBES2 AES-256 with a SHA-1 MAC, 5000 rounds, a CA certificate",
        [dict(alice, friendlyName="alice")], [a_t, ca_t], "HMAC-SHA1", False, None)

    enc = (serialization.PrivateFormat.PKCS12.encryption_builder().kdf_rounds(2000)
           .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC).hmac_hash(hashes.SHA1())
           .build(PASSWORD.encode()))
    open(out("python-3des.pfx"), "wb").write(
        pkcs12.serialize_key_and_certificates(b"alice", alice_key, alice_cert, None, enc))
    add("python-3des.pfx", "cryptography serialize_key_and_certificates, PBESv1SHA1And3KeyTripleDESCBC", PASSWORD,
        "3-key 3DES for key and certificate (Windows' TripleDES-SHA1 export)",
        [dict(alice, friendlyName="alice")], [a_t], "HMAC-SHA1", True, ["pbeWithSHAAnd3-KeyTripleDES-CBC"])

    # The custom writer.
    vectors = kdf_vectors()
    open(out("windows-style-null-password.pfx"), "wb").write(windows_style_null_password())
    add("windows-style-null-password.pfx", "make-pkcs12-fixtures.py (custom writer)", "",
        "Windows' layout and attributes, keyed with the null password (no bytes): opens with an empty passphrase",
        [dict(alice, friendlyName="{3F2504E0-4F89-11D3-9A0C-0305E82C3301}", localKeyID="01000000")], [a_t],
        "HMAC-SHA1", True, ["pbeWithSHAAnd3-KeyTripleDES-CBC"])

    open(out("custom-two-keys-ber.pfx"), "wb").write(two_keys_ber())
    add("custom-two-keys-ber.pfx", "make-pkcs12-fixtures.py (custom writer)", PASSWORD,
        "BER indefinite lengths and constructed OCTET STRINGs, two keys (keyBag in a nested safeContentsBag paired "
        "by localKeyId; RC2-128 shrouded P-256 key paired by public key), an unusable RSA-1024 certificate, a "
        "skipped secretBag",
        [dict(alice, friendlyName="alice", localKeyID=b"alice-key".hex()), dict(bob, friendlyName="bob")],
        [b_t, ca_t, a_t], "HMAC-SHA256", True, None)

    open(out("custom-pbmac1.pfx"), "wb").write(pbmac1_file())
    add("custom-pbmac1.pfx", "make-pkcs12-fixtures.py (custom writer)", PASSWORD,
        "PBMAC1 (RFC 9579) HMAC-SHA256 with PBKDF2-HMAC-SHA256",
        [dict(alice, friendlyName="alice", localKeyID="01")], [a_t], "PBMAC1", False, None)

    # RFC 9579 appendix A.1, verbatim (password "1234").
    a1 = base64.b64decode(open(out("rfc9579-a1.b64")).read())
    open(out("rfc9579-a1.pfx"), "wb").write(a1)

    # Read back what openssl and cryptography can read.
    for f in files:
        name, pw = f["file"], f["password"]
        data = open(out(name), "rb").read()
        if f["integrity"] != "PBMAC1":  # OpenSSL 3.0 predates PBMAC1
            info = check_with_openssl(name, pw)
            assert "MAC" in info or f["integrity"] == "none", (name, info)
        if name != "windows-style-null-password.pfx" and f["integrity"] != "PBMAC1":
            key, cert, extra = pkcs12.load_key_and_certificates(data, pw.encode())
            assert key is not None, name
    # The null-password file must not open with cryptography's empty password but with None.
    key, _, _ = pkcs12.load_key_and_certificates(open(out("windows-style-null-password.pfx"), "rb").read(), None)
    assert key is not None

    os.remove(OLDCA[0])  # only its certificate is a fixture
    for name in os.listdir(HERE):
        os.chmod(out(name), 0o644)
    json.dump({"files": files, "rfc9579": {"file": "rfc9579-a1.pfx", "password": "1234"}},
              open(out("expected.json"), "w"), indent=2, ensure_ascii=False)
    json.dump({"vectors": vectors}, open(out("kdf-vectors.json"), "w"), indent=2, ensure_ascii=False)
    print(f"wrote {len(files)} fixtures and {len(vectors)} KDF vectors to {HERE}")


if __name__ == "__main__":
    main()
