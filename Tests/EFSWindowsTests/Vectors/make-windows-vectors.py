#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Independent test vectors for Windows EFS interop (issue 5, part 6), computed with Python's `cryptography`
package from the public spec files alone (not from the Swift code):

    /work/shared/spec/windows-efs-metadata.md   ("meta §4.x": $EFS v1, FEK, data encryption, ntfs-3g efs_raw)
    /work/shared/spec/raw-stream-format.md      ("raw §3.x": the MS-EFSR raw stream, ROBS)

    python3 make-windows-vectors.py                    # rewrite frozen/ (keys are read from frozen/keys/)
    python3 make-windows-vectors.py --check-frozen     # regenerate into a temp dir and diff with frozen/
    python3 make-windows-vectors.py --regenerate-keys  # new RSA keys, certificates, PKCS#8 and PKCS#12 files

Everything but frozen/keys/ is deterministic: FEKs, EFS_IDs, PKCS#1 v1.5 padding and random sizes come from
`random.Random(seed)` per vector, plaintext from SHA-256 in counter mode (README.md "Plaintext"). RSA keys and the
PKCS#8/PKCS#12 files (random salts) are made once by --regenerate-keys and committed. After writing, the
generator runs check-windows-stream.py's self-test over everything it wrote.
"""
import argparse
import datetime
import filecmp
import hashlib
import importlib.util
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

from cryptography import x509
try:  # cryptography >= 43 moved the DES family to "decrepit"; Debian 12 ships 38, which has it in primitives
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
except ImportError:
    from cryptography.hazmat.primitives.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.serialization import PrivateFormat, pkcs12
from cryptography.x509.oid import NameOID

HERE = Path(__file__).resolve().parent
FROZEN = HERE / "frozen"

# MARK: - Spec constants (each cites where it comes from)

ALG_AES_256, ALG_3DES, ALG_DESX = 0x6610, 0x6603, 0x6604  # meta §4.2 ALG_ID table
KEY_LENGTH = {ALG_AES_256: 32, ALG_3DES: 24, ALG_DESX: 16}
ALG_NAME = {ALG_AES_256: "AES-256", ALG_3DES: "3DES", ALG_DESX: "DESX"}
# meta §4.2: Entropy as Windows 10 stores it for AES-256 (0x20, "not the 256 implied by the spec's table");
# the DES-family values are the table's (3DES 168, DESX domestic 128 / export 56).
DEFAULT_ENTROPY = {ALG_AES_256: 32, ALG_3DES: 168, ALG_DESX: 128}
AES_IV_BASE = (0x5816657BE9161312, 0x1989ADBE44918961)  # meta §4.5
DES_IV_BASE = 0x169119629891AD13  # meta §4.5
UNIT = 512  # meta §4.5
SEGMENT_DATA = 65536  # raw §3.4: Windows segments hold at most 64 KiB of stream data
CLUSTER_SHIFT = 12  # raw §3.4: "log2 of the volume cluster size (e.g. 12 for 4 KiB)"
EFS_HEADER = 0x54  # meta §4.2

SIG_ROBS = "ROBS".encode("utf-16-le")
SIG_NTFS = "NTFS".encode("utf-16-le")
SIG_GURE = "GURE".encode("utf-16-le")
METADATA_NAME = b"\x10\x19"  # raw §3.2

EKU_EFS = "1.3.6.1.4.1.311.10.3.4"  # Encrypting File System
EKU_EFS_RECOVERY = "1.3.6.1.4.1.311.10.3.4.1"  # File Recovery
UPN_OID = "1.3.6.1.4.1.311.20.2.3"  # Microsoft UPN otherName

PLAINTEXT_LABEL = b"swift-efs windows vectors"

# MARK: - Identities (fixed; only the RSA keys come from --regenerate-keys)
#
# alice, bob and dra1 are shaped like the Windows 10 sample in meta §4.2 (DDF[0] with SID, container and provider;
# DDF[1] and DRF[0] with only thumbprint and display name), and their display-name lengths are chosen so that the
# worked-example vector has exactly the sample's sizes ($EFS 0x5D8, DRF_Offset 0x42C; raw §3.5).

IDENTITIES = [
    {"id": "alice", "role": "user", "bits": 2048, "cn": "alice", "upn": "alice@WIN10-VECTOR",
     "sid": "S-1-5-21-2718281828-3141592653-1414213562-1001",
     "container": "3b9d5c1e-7f2a-4c61-9e08-5d4b2a61c7f3",
     "provider": "Microsoft Enhanced Cryptographic Provider v1.0",
     "display": "alice(alice@WIN10-VECTOR)", "serial": 0x1D5A3C0FFEE0001},
    {"id": "bob", "role": "user", "bits": 2048, "cn": "bob", "upn": "bob@WIN10-VECTOR", "sid": None,
     "container": None, "provider": None, "display": "bób(bob@WIN10-VECTOR)", "serial": 0x1D5A3C0FFEE0002},
    {"id": "carol", "role": "user", "bits": 1024, "cn": "carol", "upn": "carol@W2K-OLD",
     "sid": "S-1-5-21-1123581321-3455891442-3337761098-1003",
     "container": "{6A1F0E52-9C3B-4D07-8E21-0B7C5D9A34F1}",
     "provider": "Microsoft Base Cryptographic Provider v1.0",
     "display": "carol(carol@W2K-OLD) \U0001F511 キャロル", "serial": 0x1D5A3C0FFEE0003},
    {"id": "dra1", "role": "recoveryAgent", "bits": 2048, "cn": "Administrator", "upn": None, "sid": None,
     "container": None, "provider": None, "display": "Administrator(EFS Recovery Agent, test)",
     "serial": 0x1D5A3C0FFEE0004},
    {"id": "dra2", "role": "recoveryAgent", "bits": 2048, "cn": "EFS Recovery Agent 2",
     "upn": "recovery@CORP.EXAMPLE", "sid": "S-1-5-21-1618033988-2236067977-1732050807-500",
     "container": "te-EFSRecovery-8c1d2e3f-4a5b-6c7d-8e9f-0a1b2c3d4e5f",
     "provider": "Microsoft Software Key Storage Provider",
     "display": "EFS Recovery Agent 2(recovery@CORP.EXAMPLE)", "serial": 0x1D5A3C0FFEE0005},
]
BY_ID = {i["id"]: i for i in IDENTITIES}

PASSWORDS = {  # test-only; ASCII so that PKCS#12's BMPString and UTF-8 password encodings agree
    "pkcs8Encrypted": "{id}-pkcs8-test-password",
    "pfxModern": "{id}-pfx-aes-test-password",
    "pfxLegacy3DES": "{id}-pfx-3des-test-password",
    "pfxLegacyRC2": "{id}-pfx-rc2-test-password",
}
KEY_FILES = {
    "pkcs8": "keys/{id}.key.pem",
    "pkcs8Encrypted": "keys/{id}.key.enc.pem",
    "certDER": "keys/{id}.cert.der",
    "certPEM": "keys/{id}.cert.pem",
    "pfxModern": "keys/{id}.modern.pfx",
    "pfxLegacy3DES": "keys/{id}.legacy-3des.pfx",
    "pfxLegacyRC2": "keys/{id}.legacy-rc2.pfx",
}
PFX_TOOLS = {
    "pfxModern": "cryptography serialize_key_and_certificates, PBESv2SHA256AndAES256CBC (PBKDF2-HMAC-SHA256, "
                 "AES-256-CBC for key and certificates), HMAC-SHA256 MAC, 2048 iterations",
    "pfxLegacy3DES": "cryptography serialize_key_and_certificates, PBESv1SHA1And3KeyTripleDESCBC "
                     "(pbeWithSHAAnd3-KeyTripleDES-CBC for key and certificates), HMAC-SHA1 MAC, 2048 iterations",
    "pfxLegacyRC2": "openssl pkcs12 -export -legacy (OpenSSL 3 legacy provider): pbeWithSHAAnd3-KeyTripleDES-CBC "
                    "for the key, pbeWithSHAAnd40BitRC2-CBC for the certificates, HMAC-SHA1 MAC, 2048 iterations",
}


def load_checker():
    spec = importlib.util.spec_from_file_location("check_windows_stream", HERE / "check-windows-stream.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# MARK: - Keys and certificates (--regenerate-keys)

def make_certificate(ident, key):
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, ident["cn"])]
    if ident["role"] == "recoveryAgent":  # the shape of Windows' default recovery-agent certificate subject
        attrs = [x509.NameAttribute(NameOID.COMMON_NAME, ident["cn"]),
                 x509.NameAttribute(NameOID.LOCALITY_NAME, "EFS"),
                 x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "EFS File Encryption Certificate")]
    name = x509.Name(attrs)
    eku = EKU_EFS_RECOVERY if ident["role"] == "recoveryAgent" else EKU_EFS
    b = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
         .serial_number(ident["serial"])
         .not_valid_before(datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc))
         .not_valid_after(datetime.datetime(2124, 1, 1, tzinfo=datetime.timezone.utc))
         .add_extension(x509.ExtendedKeyUsage([x509.ObjectIdentifier(eku)]), critical=False)
         .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=True,
                                      data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                      crl_sign=False, encipher_only=False, decipher_only=False), critical=False)
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=False))
    if ident["upn"]:
        upn = ident["upn"].encode()
        der = bytes([0x0C, len(upn)]) + upn  # UTF8String
        b = b.add_extension(x509.SubjectAlternativeName([x509.OtherName(x509.ObjectIdentifier(UPN_OID), der)]),
                            critical=False)
    return b.sign(key, hashes.SHA256())


def regenerate_keys(keys_dir):
    keys_dir.mkdir(parents=True, exist_ok=True)
    passwords = {}
    for ident in IDENTITIES:
        i = ident["id"]
        f = {k: keys_dir.parent / v.format(id=i) for k, v in KEY_FILES.items()}
        key = rsa.generate_private_key(public_exponent=65537, key_size=ident["bits"])
        cert = make_certificate(ident, key)
        f["pkcs8"].write_bytes(key.private_bytes(serialization.Encoding.PEM, PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()))
        pw = {k: v.format(id=i) for k, v in PASSWORDS.items()}
        for k, v in pw.items():
            passwords[KEY_FILES[k].format(id=i)] = v
        f["pkcs8Encrypted"].write_bytes(key.private_bytes(
            serialization.Encoding.PEM, PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(pw["pkcs8Encrypted"].encode())))
        f["certDER"].write_bytes(cert.public_bytes(serialization.Encoding.DER))
        f["certPEM"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        friendly = f"{ident['cn']} EFS".encode()
        modern = (PrivateFormat.PKCS12.encryption_builder().kdf_rounds(2048)
                  .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC).hmac_hash(hashes.SHA256())
                  .build(pw["pfxModern"].encode()))
        f["pfxModern"].write_bytes(pkcs12.serialize_key_and_certificates(friendly, key, cert, None, modern))
        legacy = (PrivateFormat.PKCS12.encryption_builder().kdf_rounds(2048)
                  .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC).hmac_hash(hashes.SHA1())
                  .build(pw["pfxLegacy3DES"].encode()))
        f["pfxLegacy3DES"].write_bytes(pkcs12.serialize_key_and_certificates(friendly, key, cert, None, legacy))
        env = dict(os.environ, EFS_VECTOR_PFX_PASSWORD=pw["pfxLegacyRC2"])
        subprocess.run(["openssl", "pkcs12", "-export", "-legacy", "-inkey", str(f["pkcs8"]), "-in", str(f["certPEM"]),
                        "-name", friendly.decode(), "-out", str(f["pfxLegacyRC2"]),
                        "-passout", "env:EFS_VECTOR_PFX_PASSWORD"], check=True, env=env)
        f["pfxLegacyRC2"].chmod(0o644)  # openssl writes 0600; keep the committed mode uniform
        print(f"made keys for {i} ({ident['bits']} bits)")
    (keys_dir / "passwords.json").write_text(json.dumps(passwords, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def load_identities(root):
    out = {}
    for ident in IDENTITIES:
        i = ident["id"]
        key = serialization.load_pem_private_key((root / KEY_FILES["pkcs8"].format(id=i)).read_bytes(), None)
        der = (root / KEY_FILES["certDER"].format(id=i)).read_bytes()
        cert = x509.load_der_x509_certificate(der)
        assert cert.public_key().public_numbers() == key.public_key().public_numbers(), i
        assert key.key_size == ident["bits"], i
        out[i] = dict(ident, key=key, cert=cert, thumbprint=hashlib.sha1(der).digest())
    return out


# MARK: - Primitives

def plaintext(seed, n):
    """SHA-256 counter mode: block i = SHA-256(label || LE64(seed) || LE64(i)); cut to n bytes."""
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(PLAINTEXT_LABEL + struct.pack("<QQ", seed, i)).digest()
        i += 1
    return bytes(out[:n])


def roundup512(n):
    return (n + UNIT - 1) // UNIT * UNIT


def unit_iv(alg, off):
    """meta §4.5: IV of the 512-byte unit at byte offset `off` of the stream (arithmetic mod 2^64)."""
    if alg == ALG_AES_256:
        return struct.pack("<QQ", (AES_IV_BASE[0] + off) % 2**64, (AES_IV_BASE[1] + off) % 2**64)
    return struct.pack("<Q", (DES_IV_BASE + off) % 2**64)


def desx_expand(key16):
    """meta §4.5 DESX key expansion: DES key from MD5(key||"Dan Simon  \\0") words 0^1, 2^3; whitening from
    MD5(key||"Scott Field\\0"): out-whitening = bytes 0-7, in-whitening = bytes 8-15."""
    md = hashlib.md5(key16 + b"Dan Simon  \x00").digest()
    des = bytes(a ^ b for a, b in zip(md[0:4], md[4:8])) + bytes(a ^ b for a, b in zip(md[8:12], md[12:16]))
    md2 = hashlib.md5(key16 + b"Scott Field\x00").digest()
    return des, md2[8:16], md2[0:8]  # (DES key, in-whitening, out-whitening)


def encrypt_unit(alg, key, off, pt):
    assert len(pt) == UNIT
    iv = unit_iv(alg, off)
    if alg == ALG_AES_256:
        e = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
        return e.update(pt) + e.finalize()
    if alg == ALG_3DES:
        e = Cipher(TripleDES(key), modes.CBC(iv)).encryptor()
        return e.update(pt) + e.finalize()
    # DESX (Rivest): C = out_white ^ DES_K(P ^ in_white), chained in CBC.
    des, w_in, w_out = desx_expand(key)
    ecb = Cipher(TripleDES(des * 3), modes.ECB()).encryptor()  # single DES = 3DES with K1=K2=K3
    out = bytearray()
    prev = iv
    for i in range(0, UNIT, 8):
        x = bytes(a ^ b ^ c for a, b, c in zip(pt[i:i + 8], prev, w_in))
        c = bytes(a ^ b for a, b in zip(ecb.update(x), w_out))
        out += c
        prev = c
    return bytes(out)


def encrypt_range(alg, key, start, pt):
    """Encrypt stream bytes that start at stream offset `start` (a multiple of 512), zero-padding the tail."""
    pt = pt + bytes(roundup512(len(pt)) - len(pt))
    return b"".join(encrypt_unit(alg, key, start + i, pt[i:i + UNIT]) for i in range(0, len(pt), UNIT))


def odd_parity(key):
    return bytes((b & 0xFE) | (1 - bin(b >> 1).count("1") % 2) for b in key)


def rsa_pkcs1v15_encrypt(pub, m, rng):
    """RFC 8017 §7.2.1 with padding bytes from the seeded RNG, so the output is reproducible."""
    n, e = pub.public_numbers().n, pub.public_numbers().e
    k = (n.bit_length() + 7) // 8
    assert len(m) <= k - 11
    ps = bytes(rng.randrange(1, 256) for _ in range(k - 3 - len(m)))
    em = b"\x00\x02" + ps + b"\x00" + m
    return pow(int.from_bytes(em, "big"), e, n).to_bytes(k, "big")


def sid_bytes(s):
    """MS-DTYP 2.4.2.2 RPC_SID: revision, count, 6-byte big-endian authority, LE32 sub-authorities."""
    parts = s.split("-")
    assert parts[0] == "S" and parts[1] == "1"
    subs = [int(x) for x in parts[3:]]
    return bytes([1, len(subs)]) + int(parts[2]).to_bytes(6, "big") + struct.pack(f"<{len(subs)}I", *subs)


def utf16z(s):
    return s.encode("utf-16-le") + b"\x00\x00"


# MARK: - $EFS (meta §4.2)

def build_entry(ident, efek, flags=0, thumb=None, display=Ellipsis, display_nul=True, pki_type=3, sid=Ellipsis):
    """One key list entry: header(20) | Public Key Information(28 | SID | Certificate Data) | pad to 4 | EFEK.
    Certificate Data = header(20) | thumbprint | container | provider | display (each NUL-terminated UTF-16LE).
    Returns (bytes, layout) with every offset as the spec defines it (relative to its own structure)."""
    thumb = ident["thumbprint"] if thumb is None else thumb
    display = ident["display"] if display is Ellipsis else display
    sid = ident["sid"] if sid is Ellipsis else sid
    cd = bytearray(20)
    tp_off = len(cd)
    cd += thumb
    name_offs = {}
    for k, v in (("containerName", ident["container"]), ("providerName", ident["provider"]),
                 ("displayName", display)):
        if v is None:
            name_offs[k] = 0
            continue
        name_offs[k] = len(cd)
        cd += utf16z(v) if (k != "displayName" or display_nul) else v.encode("utf-16-le")
    struct.pack_into("<IIIII", cd, 0, tp_off, len(thumb), name_offs["containerName"], name_offs["providerName"],
                     name_offs["displayName"])
    sid_b = sid_bytes(sid) if isinstance(sid, str) else (sid or b"")
    pki = bytearray(28)
    hint_off = len(pki) if sid_b else 0
    pki += sid_b
    cd_off = len(pki)
    pki += cd
    struct.pack_into("<IIIII", pki, 0, len(pki), hint_off, pki_type, len(cd), cd_off)  # + 8 reserved zero bytes
    e = bytearray(20)
    pki_off = len(e)
    e += pki
    e += bytes(-len(e) % 4)  # the Encrypted FEK starts 4-aligned: a gap of 0-3 bytes
    efek_off = len(e)
    e += efek
    struct.pack_into("<IIIII", e, 0, len(e), pki_off, len(efek), efek_off, flags)
    layout = {"length": len(e), "flags": flags, "publicKeyInfoOffset": pki_off, "publicKeyInfoLength": len(pki),
              "ownerHintOffset": hint_off, "publicKeyInfoType": pki_type, "sid": sid if isinstance(sid, str) else None,
              "sidHex": sid_b.hex() if sid_b else None, "certificateDataLength": len(cd),
              "certificateDataOffset": cd_off, "thumbprintOffset": tp_off, "thumbprintLength": len(thumb),
              "thumbprint": thumb.hex(), "containerNameOffset": name_offs["containerName"],
              "containerName": ident["container"], "providerNameOffset": name_offs["providerName"],
              "providerName": ident["provider"], "displayNameOffset": name_offs["displayName"],
              "displayName": display, "encryptedFEKOffset": efek_off, "encryptedFEKLength": len(efek),
              "encryptedFEKSHA256": hashlib.sha256(efek).hexdigest()}
    return bytes(e), layout


def build_efs(version, efs_id, ddf, drf, drf_first=False, gaps=(0, 0, 0), md5_hash=False, ddf_count=None):
    """meta §4.2: 0x54-byte header, then the DDF and DRF key lists (u32 count + entries) in Data_Fields.
    `ddf`/`drf` are lists of (entry bytes, layout). `gaps` = unused bytes before the first list, between the
    lists and after the second (each at most 8 in a valid $EFS)."""
    def key_list(entries, count=None):
        return struct.pack("<I", len(entries) if count is None else count) + b"".join(e for e, _ in entries)

    ddf_b = key_list(ddf, ddf_count)
    drf_b = key_list(drf) if drf else b""
    first, second = (drf_b, ddf_b) if drf_first else (ddf_b, drf_b)
    off1 = EFS_HEADER + gaps[0]
    off2 = off1 + len(first) + (gaps[1] if second else 0)
    total = (off2 + len(second) + gaps[2]) if second else (off1 + len(first) + gaps[2])
    ddf_off, drf_off = (off2, off1) if drf_first else (off1, off2 if drf else 0)
    b = bytearray(total)
    struct.pack_into("<IIII", b, 0, total, 0, version, 0)  # Length, Reserved1, EFS_Version, Reserved2
    b[0x10:0x20] = efs_id  # EFS_ID; EFS_Hash (0x20) and Reserved3 (0x30) stay zero
    struct.pack_into("<II", b, 0x40, ddf_off, drf_off)  # Reserved4 (0x48, 12 bytes) stays zero
    b[off1:off1 + len(first)] = first
    if second:
        b[off2:off2 + len(second)] = second
    if md5_hash:  # meta §4.2: Windows 2000 writes MD5 of the metadata with EFS_Hash zeroed
        b[0x20:0x30] = hashlib.md5(bytes(b)).digest()

    def layouts(lst_off, entries):
        out, p = [], lst_off + 4
        for i, (eb, lay) in enumerate(entries):
            out.append(dict({"index": i, "offset": p}, **lay))
            p += len(eb)
        return out

    info = {"length": total, "efsVersion": version, "efsIdHex": bytes(efs_id).hex(), "efsHashHex": b[0x20:0x30].hex(),
            "ddfOffset": ddf_off, "drfOffset": drf_off, "ddf": layouts(ddf_off, ddf),
            "drf": layouts(drf_off, drf) if drf else []}
    return bytes(b), info


# MARK: - ROBS (raw §3)

def stream_header(name, flag=0, length=None):
    """raw §3.2: Length (= 28 + NameLength), L"NTFS", Flag, 8 reserved, NameLength, Name."""
    return struct.pack("<I", 28 + len(name) if length is None else length) + SIG_NTFS + struct.pack("<I", flag) + \
        bytes(8) + struct.pack("<I", len(name)) + name


def data_unit_shift(n):
    r = roundup512(n)
    return max(9, (r - 1).bit_length()) if r else 9  # ceil(log2(r)), at least 9


def gure(start, bws, bwv, ct, extd_flags):
    """raw §3.3/§3.4: a GURE segment with its 512-byte Data Segment Encryption Header and EXTD."""
    assert len(ct) == roundup512(bws)
    h = bytearray(0x200)
    struct.pack_into("<I", h, 0, 0x200 + len(ct))
    h[4:12] = SIG_GURE
    shift = data_unit_shift(bws)
    struct.pack_into("<QIIIHBBBBH", h, 0x10, start, 0x1F0, bws, bwv, 0, shift, shift, CLUSTER_SHIFT, 1, 1)
    struct.pack_into("<I", h, 0x2C, len(ct))  # DataBlockSizes[0]
    h[0x30:0x40] = b"EXTD" + struct.pack("<III", 0x10, extd_flags, 0)
    return bytes(h) + ct


def metadata_stream(efs, name=METADATA_NAME):
    """raw §3.2-3.3: the metadata stream (NameLength 2) and its single GURE holding $EFS verbatim."""
    return stream_header(name) + struct.pack("<I", 16 + len(efs)) + SIG_GURE + bytes(4) + efs


ROBS_HEADER = b"\x00\x01\x00\x00" + SIG_ROBS + bytes(8)  # raw §3.1


# MARK: - Vectors

def S(name, size, **kw):
    return dict(name=name, size=size, **kw)


VECTORS = [
    # name, seed, alg, EFS_Version, users, agents, streams, options
    dict(name="aes256-v2-size0", seed=1001, alg=ALG_AES_256, version=2, users=["alice", "bob"], dras=["dra1"],
         streams=[S("::$DATA", 0)], note="Empty stream: a data stream header and no GURE segment (raw §8 open "
                                         "question 3; see aes256-v2-size0-onegure for the other reading)."),
    dict(name="aes256-v2-size0-onegure", seed=1002, alg=ALG_AES_256, version=2, users=["alice"], dras=["dra1"],
         streams=[S("::$DATA", 0, empty_gure=True)],
         note="Empty stream as one GURE segment with 0 bytes (DataBlockSizes[0] = 0, DataUnitShift 9)."),
    dict(name="aes256-v2-size511", seed=1003, alg=ALG_AES_256, version=2, users=["alice", "bob", "carol"],
         dras=["dra1", "dra2"], streams=[S("::$DATA", 511)]),
    dict(name="aes256-v2-size512", seed=1004, alg=ALG_AES_256, version=2, users=["alice"], dras=[],
         streams=[S("::$DATA", 512)], note="No recovery agent: DRF_Offset 0."),
    dict(name="aes256-v2-size513", seed=1005, alg=ALG_AES_256, version=2, users=["alice", "bob"], dras=["dra1"],
         streams=[S("::$DATA", 513)], entropy=256, note="FEK Entropy 256 (the spec table's value; Windows 10 "
                                                          "writes 32)."),
    dict(name="aes256-v2-size621-worked-example", seed=1006, alg=ALG_AES_256, version=2, users=["alice", "bob"],
         dras=["dra1"], streams=[S("::$DATA", 621)],
         note="Same sizes as the Windows 10 sample: $EFS 0x5D8 bytes, DDF at 0x54, DRF at 0x42C, 621-byte file; "
              "the ROBS layout is byte for byte the worked example of raw §3.5 (EOF at 0xC44)."),
    dict(name="aes256-v2-size65536", seed=1007, alg=ALG_AES_256, version=2, users=["alice", "bob"], dras=["dra1"],
         streams=[S("::$DATA", 65536)]),
    dict(name="aes256-v2-size65537", seed=1008, alg=ALG_AES_256, version=2, users=["alice", "bob", "carol"],
         dras=["dra1", "dra2"], streams=[S("::$DATA", 65537)]),
    dict(name="aes256-v3-random", seed=1009, alg=ALG_AES_256, version=3, users=["alice", "carol"], dras=["dra2"],
         streams=[S("::$DATA", (65538, 140000))], note="EFS_Version 3 (Vista+), random size from the seed: three "
                                                       "segments."),
    dict(name="aes256-v1-size100", seed=1010, alg=ALG_AES_256, version=1, users=["bob"], dras=["dra1"],
         streams=[S("::$DATA", 100)],
         note="EFS_Version 1 with AES-256: meta §4.2 says version 1 means DESX + RSA, so a strict reader may refuse "
              "it; this vector only exists to show what such metadata looks like. Expected: decrypts."),
    dict(name="aes256-v2-named-streams", seed=1011, alg=ALG_AES_256, version=2, users=["alice", "bob"],
         dras=["dra1"], streams=[S("::$DATA", 1000), S(":secret:$DATA", 700), S(":Zone.Identifier:$DATA", 26)],
         note="Named streams are L\":name:$DATA\" (raw §3.2: presumed, unverified); each stream has its own offsets "
              "(IVs restart at 0)."),
    dict(name="aes256-v2-directory", seed=1012, alg=ALG_AES_256, version=2, users=["alice"], dras=["dra1"],
         streams=[S(":notes:$DATA", 300)], note="A directory: the metadata stream plus a named stream, no ::$DATA "
                                                "(raw §3 / win32-efs-api.md §1.2 'Directories')."),
    dict(name="aes256-v2-sparse", seed=1013, alg=ALG_AES_256, version=2, users=["alice"], dras=["dra1"],
         streams=[S("::$DATA", 132072, runs=[(0, 65536), (131072, 1000)], zero=[(4096, 131072)])],
         note="INFERENCE (raw §8 question 4): a sparse file whose second 64 KiB unit is a hole. The hole is "
              "represented by the absence of a segment (StartingFileOffset jumps from 0 to 131072) and reads as "
              "zeros; EXTD Flags = 1 in every segment. No efs_raw form (ntfs-3g reads holes as raw zeros)."),
    dict(name="aes256-v2-vdl", seed=1014, alg=ALG_AES_256, version=2, users=["alice"], dras=["dra1"],
         streams=[S("::$DATA", 5000, vdl=1234)],
         note="BytesWithinVDL 1234 < BytesWithinStreamSize 5000. The ciphertext past VDL decrypts to non-zero "
              "bytes on purpose; raw §3.4 'Bytes beyond VDL MUST be zero after decryption' is read as a reader "
              "rule, so the expected plaintext is zero from 1234 on. No efs_raw form (ntfs-3g refuses VDL != size)."),
    dict(name="aes256-v2-drf-first", seed=1015, alg=ALG_AES_256, version=2, users=["alice", "bob"],
         dras=["dra1", "dra2"], streams=[S("::$DATA", 700)], drf_first=True, gaps=(8, 8, 8),
         note="Layout variant: the DRF list comes first (meta §4.2 'in any order') and every gap is 8 bytes, the "
              "largest allowed."),
    dict(name="aes256-v2-stream-name-nul", seed=1016, alg=ALG_AES_256, version=2, users=["alice"], dras=[],
         streams=[S("::$DATA", 100, name_nul=True)],
         note="Tolerated variant: ::$DATA with NameLength 16 (NUL included; raw §3.2 'accept 14 or 16')."),
    dict(name="aes256-v2-metadata-name-1910", seed=1017, alg=ALG_AES_256, version=2, users=["alice"], dras=[],
         streams=[S("::$DATA", 100)], metadata_name=b"\x19\x10",
         note="Tolerated variant: metadata stream name bytes 19 10 (raw §3.2, wimlib's untested branch)."),
    dict(name="3des-v2-size0", seed=2001, alg=ALG_3DES, version=2, users=["alice"], dras=["dra1"],
         streams=[S("::$DATA", 0)]),
    dict(name="3des-v2-size511", seed=2002, alg=ALG_3DES, version=2, users=["alice", "bob"], dras=["dra1"],
         streams=[S("::$DATA", 511)]),
    dict(name="3des-v2-size512", seed=2003, alg=ALG_3DES, version=2, users=["carol"], dras=["dra2"],
         streams=[S("::$DATA", 512)]),
    dict(name="3des-v2-size513", seed=2004, alg=ALG_3DES, version=2, users=["alice", "carol"], dras=[],
         streams=[S("::$DATA", 513)]),
    dict(name="3des-v2-random", seed=2005, alg=ALG_3DES, version=2, users=["alice", "bob"], dras=["dra1"],
         streams=[S("::$DATA", (65537, 72000))], note="Random size from the seed: two segments."),
    dict(name="desx-v1-size0", seed=3001, alg=ALG_DESX, version=1, users=["carol"], dras=["dra1"],
         streams=[S("::$DATA", 0)], md5_hash=True),
    dict(name="desx-v1-size511", seed=3002, alg=ALG_DESX, version=1, users=["carol", "alice"], dras=["dra1"],
         streams=[S("::$DATA", 511)], md5_hash=True),
    dict(name="desx-v1-size512", seed=3003, alg=ALG_DESX, version=1, users=["carol"], dras=[],
         streams=[S("::$DATA", 512)], md5_hash=True),
    dict(name="desx-v1-size513", seed=3004, alg=ALG_DESX, version=1, users=["carol", "bob"], dras=["dra1", "dra2"],
         streams=[S("::$DATA", 513)], md5_hash=True),
    dict(name="desx-v1-random", seed=3005, alg=ALG_DESX, version=1, users=["carol"], dras=["dra1"],
         streams=[S("::$DATA", (1, 8191))], md5_hash=True, note="Random size from the seed."),
    dict(name="desx-v2-export-entropy56", seed=3006, alg=ALG_DESX, version=2, users=["alice"], dras=["dra1"],
         streams=[S("::$DATA", 1000)], entropy=56, note="DESX 'export' key: Entropy 56, still 16 key bytes."),
]
for _v in VECTORS:
    if _v.get("md5_hash"):
        _v["note"] = (_v.get("note", "") + " EFS_Hash is the MD5 of the $EFS with EFS_Hash zeroed, as Windows 2000 "
                      "wrote it (meta §4.2).").strip()


def make_vector(spec, ids):
    rng = random.Random(spec["seed"])
    alg = spec["alg"]
    streams = []
    for i, st in enumerate(spec["streams"]):
        size = st["size"] if isinstance(st["size"], int) else rng.randint(*st["size"])
        streams.append(dict(st, size=size, seed=spec["seed"] * 100 + i))
    key = rng.randbytes(KEY_LENGTH[alg])
    if alg == ALG_3DES:
        key = odd_parity(key)  # CryptoAPI 3DES keys carry DES parity; decryption ignores it
    entropy = spec.get("entropy", DEFAULT_ENTROPY[alg])
    fek_struct = struct.pack("<IIII", KEY_LENGTH[alg], entropy, alg, 0) + key  # meta §4.2 Encrypted FEK
    efs_id = rng.randbytes(16)

    def entry(kid):
        c = rsa_pkcs1v15_encrypt(ids[kid]["key"].public_key(), fek_struct, rng)
        assert ids[kid]["key"].decrypt(c, padding.PKCS1v15()) == fek_struct  # cross-check with cryptography
        eb, lay = build_entry(ids[kid], c[::-1])  # meta §4.2: stored byte-reversed
        lay["keyId"] = kid
        return eb, lay

    ddf = [entry(k) for k in spec["users"]]
    drf = [entry(k) for k in spec["dras"]]
    efs, info = build_efs(spec["version"], efs_id, ddf, drf, drf_first=spec.get("drf_first", False),
                          gaps=spec.get("gaps", (0, 0, 0)), md5_hash=spec.get("md5_hash", False))
    robs = bytearray(ROBS_HEADER + metadata_stream(efs, spec.get("metadata_name", METADATA_NAME)))
    out_streams = []
    raw_files = {}
    for st in streams:
        size = st["size"]
        pt = plaintext(st["seed"], size)
        expected = bytearray(pt)
        for a, b_ in st.get("zero", []):
            pt = pt[:a] + bytes(b_ - a) + pt[b_:]  # a sparse file's never-written ranges are zeros on disk too
            expected[a:b_] = bytes(b_ - a)
        vdl = st.get("vdl", size)
        expected[vdl:] = bytes(size - vdl)  # the encrypted bytes past VDL stay non-zero (see the vector's note)
        runs = st.get("runs", [(0, size)] if size else [])
        sparse = "runs" in st
        name_b = st["name"].encode("utf-16-le") + (b"\x00\x00" if st.get("name_nul") else b"")
        robs += stream_header(name_b)
        segs = []
        for rs, rl in runs:
            off = rs
            while off < rs + rl:
                n = min(SEGMENT_DATA, rs + rl - off)
                ct = encrypt_range(alg, key, off, pt[off:off + n])
                bwv = max(0, min(n, vdl - off))
                robs += gure(off, n, bwv, ct, 1 if sparse else 0)
                segs.append({"startingFileOffset": off, "bytesWithinStreamSize": n, "bytesWithinVDL": bwv,
                             "dataUnitShift": data_unit_shift(n), "chunkShift": data_unit_shift(n),
                             "clusterShift": CLUSTER_SHIFT, "dataBlockSizes": [len(ct)],
                             "extdFlags": 1 if sparse else 0, "ciphertextSHA256": hashlib.sha256(ct).hexdigest()})
                off += n
        if st.get("empty_gure"):
            robs += gure(0, 0, 0, b"", 0)
            segs.append({"startingFileOffset": 0, "bytesWithinStreamSize": 0, "bytesWithinVDL": 0,
                         "dataUnitShift": 9, "chunkShift": 9, "clusterShift": CLUSTER_SHIFT, "dataBlockSizes": [0],
                         "extdFlags": 0, "ciphertextSHA256": hashlib.sha256(b"").hexdigest()})
        s_out = {"name": st["name"], "nameHex": name_b.hex(), "size": size, "validDataLength": vdl,
                 "sparse": sparse, "zeroRanges": [list(z) for z in st.get("zero", [])] +
                                                 ([[vdl, size]] if vdl < size else []),
                 "plaintextSeed": st["seed"], "plaintextSHA256": hashlib.sha256(expected).hexdigest(),
                 "plaintextHeadHex": bytes(expected[:32]).hex(), "segments": segs, "efsRaw": None}
        if not sparse and vdl == size:
            # meta §4.7: ciphertext padded to 512, then LE16 padding length.
            ct_all = encrypt_range(alg, key, 0, pt) if size else b""
            pad = roundup512(size) - size
            suffix = "" if st["name"] == "::$DATA" else "." + st["name"][1:-len(":$DATA")]
            fname = f"vectors/{spec['name']}{suffix}.efs_raw"
            raw_files[fname] = ct_all + struct.pack("<H", pad)
            s_out["efsRaw"] = {"file": fname, "size": len(raw_files[fname]), "padLength": pad}
        out_streams.append(s_out)
    deviations = []
    if spec.get("metadata_name"):
        deviations.append("metadataName1910")
    if any(st.get("name_nul") for st in streams):
        deviations.append("dataStreamNameWithNUL")
    if spec.get("drf_first"):
        deviations.append("drfListFirst")
    weak = alg != ALG_AES_256
    v = {"name": spec["name"], "description": spec.get("note", ""), "seed": spec["seed"],
         "specStatus": "inference" if spec["name"] in ("aes256-v2-sparse", "aes256-v2-vdl",
                                                         "aes256-v2-size0", "aes256-v2-size0-onegure",
                                                         "aes256-v2-named-streams", "aes256-v2-directory")
         else "spec",
         "algorithm": ALG_NAME[alg], "algId": alg, "algIdHex": f"0x{alg:04X}", "weak": weak,
         "files": {"robs": f"vectors/{spec['name']}.robs", "efs": f"vectors/{spec['name']}.efs"},
         "robs": {"size": len(robs), "sha256": hashlib.sha256(robs).hexdigest(),
                  "strictConformant": not deviations, "deviations": deviations},
         "fek": {"keyLength": KEY_LENGTH[alg], "entropy": entropy, "algId": alg, "reserved": 0,
                 "keyHex": key.hex(), "structHex": fek_struct.hex()},
         "efs": info, "streams": out_streams,
         "openWith": [{"keyId": e["keyId"], "list": lst, "index": e["index"], "thumbprint": e["thumbprint"]}
                      for lst in ("ddf", "drf") for e in info[lst]]}
    files = {v["files"]["robs"]: bytes(robs), v["files"]["efs"]: efs}
    files.update(raw_files)
    if spec["name"] == "aes256-v2-size621-worked-example":
        # raw §3.5 / meta §4.2: the sample's sizes, reproduced exactly.
        assert (info["length"], info["ddfOffset"], info["drfOffset"]) == (0x5D8, 0x54, 0x42C), info["length"]
        assert robs[0x32:0x36] == struct.pack("<I", 0x5E8) and robs[0x61A:0x61E] == struct.pack("<I", 0x2A)
        assert robs[0x644:0x648] == struct.pack("<I", 0x600) and len(robs) == 0xC44
        assert robs[0x654:0x674].hex() == ("00000000000000" "00" "f0010000" "6d020000" "6d020000" "0000" "0a0a0c01"
                                           "0100" "00040000")
    return v, files


# MARK: - Malformed samples

def base_efs(ids, seed=9000, users=("alice", "bob"), dras=("dra1",), alg=ALG_AES_256, entry_kw=None,
             fek_struct=None, efs_kw=None, efek_for=None):
    """A valid AES-256 $EFS (plus its FEK) for the malformed samples to start from."""
    rng = random.Random(seed)
    key = rng.randbytes(KEY_LENGTH[alg])
    fs = fek_struct or (struct.pack("<IIII", KEY_LENGTH[alg], DEFAULT_ENTROPY[alg], alg, 0) + key)
    efs_id = rng.randbytes(16)
    entry_kw = entry_kw or {}

    def entry(kid, i, lst):
        target = (efek_for or {}).get((lst, i), kid)
        c = rsa_pkcs1v15_encrypt(ids[target]["key"].public_key(), fs, rng)[::-1]
        return build_entry(ids[kid], c, **entry_kw.get((lst, i), {}))

    ddf = [entry(k, i, "ddf") for i, k in enumerate(users)]
    drf = [entry(k, i, "drf") for i, k in enumerate(dras)]
    efs, info = build_efs(2, efs_id, ddf, drf, **(efs_kw or {}))
    return bytearray(efs), info, key


def robs_for(efs, key=None, size=1000, seed=9100, alg=ALG_AES_256):
    key = key or random.Random(seed).randbytes(KEY_LENGTH[alg])
    pt = plaintext(seed, size)
    return bytearray(ROBS_HEADER + metadata_stream(bytes(efs)) + stream_header("::$DATA".encode("utf-16-le")) +
                     gure(0, size, size, encrypt_range(alg, key, 0, pt), 0))


def make_malformed(ids):
    samples, files = [], {}

    def add(name, inp, data, kind, desc, also=(), **extra):
        ext = {"efs": "efs", "robs": "robs", "efsRaw": "efs_raw"}[inp]
        f = f"malformed/{name}.{ext}"
        files[f] = bytes(data)
        s = {"name": name, "input": inp, "file": f, "errorKind": kind, "description": desc}
        if also:
            s["alsoAccept"] = list(also)
        s.update(extra)
        samples.append(s)

    efs, info, _ = base_efs(ids)
    e0 = info["ddf"][0]

    def patched(fn):
        b = bytearray(efs)
        fn(b)
        return b

    def p32(b, off, val):
        struct.pack_into("<I", b, off, val)

    # Header and length (meta §4.1-4.2)
    small = bytearray(EFS_HEADER)
    struct.pack_into("<IIII", small, 0, EFS_HEADER, 0, 2, 0)
    struct.pack_into("<II", small, 0x40, EFS_HEADER, 0)
    add("efs-length-0x54", "efs", small, "headerTooShort",
        "Length = 0x54 (header only): meta §4.1 'a $EFS length <= 0x54 ... invalid'.", also=["offsetOutOfRange"])
    add("efs-length-above-0x40000", "efs", patched(lambda b: p32(b, 0, 0x40001)), "tooLarge",
        "Length field 0x40001 > 0x40000 (meta §4.1). The buffer is the small valid $EFS, so a reader that compares "
        "with the buffer first reports lengthMismatch.", also=["lengthMismatch"])
    add("efs-length-mismatch", "efs", patched(lambda b: p32(b, 0, len(b) + 4)), "lengthMismatch",
        "Length field is 4 more than the bytes given.")
    # Offsets out of range
    add("efs-ddf-offset-out-of-range", "efs", patched(lambda b: p32(b, 0x40, len(b) + 0x100)), "offsetOutOfRange",
        "DDF_Offset points 0x100 bytes past the end of $EFS.")
    add("efs-drf-offset-in-header", "efs", patched(lambda b: p32(b, 0x44, 0x30)), "offsetOutOfRange",
        "DRF_Offset 0x30 points into the 0x54-byte header.")
    add("efs-entry-length-zero", "efs", patched(lambda b: p32(b, e0["offset"], 0)), "offsetOutOfRange",
        "DDF[0] Length = 0 (a reader that walks by Length would loop).")
    add("efs-pki-offset-out-of-range", "efs", patched(lambda b: p32(b, e0["offset"] + 4, e0["length"])),
        "offsetOutOfRange", "DDF[0] Offset to Public Key Information = the entry's Length.")
    add("efs-efek-out-of-range", "efs", patched(lambda b: p32(b, e0["offset"] + 12, e0["encryptedFEKOffset"] + 4)),
        "offsetOutOfRange", "DDF[0] Encrypted FEK (offset + 4, 256 bytes) runs 4 bytes past the entry.")
    add("efs-thumbprint-out-of-range", "efs", patched(lambda b: p32(
        b, e0["offset"] + e0["publicKeyInfoOffset"] + e0["certificateDataOffset"], e0["certificateDataLength"])),
        "offsetOutOfRange", "DDF[0] thumbprint offset = the Certificate Data length.")
    add("efs-display-name-out-of-range", "efs", patched(lambda b: p32(
        b, e0["offset"] + e0["publicKeyInfoOffset"] + e0["certificateDataOffset"] + 16,
        e0["certificateDataLength"] + 2)), "offsetOutOfRange",
        "DDF[0] Offset of Display Name points past the Certificate Data.")
    add("efs-list-count-overruns", "efs", patched(lambda b: p32(b, info["ddfOffset"], 3)), "offsetOutOfRange",
        "DDF count 3 with 2 entries: the third 'entry' is the DRF list's count (1) read as a Length.",
        also=["overlap"])
    # Overlaps
    add("efs-lists-overlap", "efs", patched(lambda b: p32(b, 0x44, info["ddfOffset"] + 4)), "overlap",
        "DRF_Offset points at DDF[0], inside the DDF list.")
    add("efs-efek-overlaps-pki", "efs", patched(lambda b: p32(b, e0["offset"] + 12, e0["publicKeyInfoOffset"])),
        "overlap", "DDF[0] Encrypted FEK offset = the Public Key Information offset (both inside the entry).")
    # Too long / too large (win32-efs-api.md §2 MIDL ranges; meta §4.1 <11>)
    add("efs-list-501-entries", "efs", patched(lambda b: p32(b, info["ddfOffset"], 501)), "listTooLong",
        "DDF count 501 > 500 (ENCRYPTION_CERTIFICATE_HASH_LIST range(0, 500)).", also=["offsetOutOfRange"])
    add("efs-list-count-ffffffff", "efs", patched(lambda b: p32(b, info["ddfOffset"], 0xFFFFFFFF)), "listTooLong",
        "DDF count 0xFFFFFFFF.", also=["offsetOutOfRange"])
    t, _, _ = base_efs(ids, entry_kw={("ddf", 0): {"thumb": bytes(range(101))}})
    add("efs-thumbprint-101-bytes", "efs", t, "thumbprintTooLong",
        "DDF[0] thumbprint of 101 bytes, all offsets consistent (EFS_HASH_BLOB range(0, 100)).")
    t, _, _ = base_efs(ids, entry_kw={("ddf", 0): {"thumb": bytes(range(100))}})
    add("efs-thumbprint-100-bytes", "efs", t, None,
        "Edge, VALID (errorKind null): a 100-byte thumbprint is within the limit, so this $EFS must parse.")
    t, ti, _ = base_efs(ids, entry_kw={("ddf", 0): {"display": "x" * 16370}})
    assert ti["ddf"][0]["certificateDataLength"] > 32768
    add("efs-certificate-data-above-32k", "efs", t, "certificateTooLarge",
        f"DDF[0] Certificate Data of {ti['ddf'][0]['certificateDataLength']} bytes (> 32768; a 16,370-character "
        "display name), all offsets consistent. The 32 KiB certificate limit (EFS_CERTIFICATE_BLOB range(0, "
        "32768)) is applied to the Certificate Data Length: v1 metadata holds no certificate itself.")
    # A 1087-byte Encrypted FEK (content irrelevant: the limit fires before any RSA).
    eb, lay = build_entry(ids["alice"], bytes(1087))
    big, _ = build_efs(2, bytes(16), [(eb, lay)], [])
    add("efs-efek-1087-bytes", "efs", big, "encryptedFEKTooLarge",
        "DDF[0] Encrypted FEK of 1087 bytes > 1086 (meta §4.1, MS-EFSR <11>), offsets consistent.")
    # Gaps (meta §4.2)
    g, _, _ = base_efs(ids, efs_kw={"gaps": (0, 12, 0)})
    add("efs-gap-12-bytes", "efs", g, "gapTooLarge", "12 unused bytes between the DDF and DRF lists (at most 8).")
    g, _, _ = base_efs(ids, efs_kw={"gaps": (0, 0, 16)})
    add("efs-trailing-gap-16-bytes", "efs", g, "gapTooLarge", "16 unused bytes after the last list (at most 8).")
    # Strings, SIDs, types
    u, _, _ = base_efs(ids, entry_kw={("ddf", 0): {"display_nul": False}})
    add("efs-display-name-unterminated", "efs", u, "unterminatedString",
        "DDF[0] display name is the last field of Certificate Data and has no NUL before its end.")
    bad_sid = bytes([2, 1]) + (5).to_bytes(6, "big") + struct.pack("<I", 18)
    u, _, _ = base_efs(ids, entry_kw={("ddf", 0): {"sid": bad_sid}})
    add("efs-sid-revision-2", "efs", u, "badSID", "DDF[0] owner hint SID with revision 2.")
    u, _, _ = base_efs(ids, entry_kw={("ddf", 0): {"pki_type": 1}})
    add("efs-pki-type-1", "efs", u, "unsupportedPublicKeyType",
        "DDF[0] Public Key Information type 1 (ntfs-3g: CryptoAPI container); MS-EFSR fixes it at 3.")
    u, _, _ = base_efs(ids, users=(), dras=("dra1",))
    add("efs-empty-ddf", "efs", u, "emptyUserList", "DDF count 0: no user entry (only a DRF).")
    # Versions (meta §4.3, §4.4; MS-EFSR 2.2.2.2-2.2.2.3)
    for ver, mv in ((4, 2), (5, 2)):
        v2 = bytearray(0x100)
        struct.pack_into("<IIII", v2, 0, 0x100, 0, ver, 0)
        v2[0x10:0x20] = bytes(range(16))
        struct.pack_into("<II", v2, 0x20, 0x34, 0)  # DDF_Offset, DRF_Offset
        struct.pack_into("<HHHH", v2, 0x28, 12, 0, 6, 0)  # FekInfo_Datum: EFSX Datum, type 6 = FEK_INFO (shape)
        struct.pack_into("<IH", v2, 0x34, 0x40, 1)  # protector list: StructureSize, ProtectorsCount (shape)
        struct.pack_into("<HHHHHH", v2, 0x3A, 0x3A, 0, 3, 1, 2, 1)  # EFSX Datum type 3, ProtectorType 2 (RSA)
        add(f"efs-version-{ver}-metadata-v2", "efs", v2, "unsupportedVersion",
            f"EFS_Version {ver} = metadata version 2 (EFSX): must be recognised and refused as 'not supported yet', "
            "never parsed as v1. Only the header is meaningful; the datums are shape-only.", metadataVersion=mv,
            efsVersion=ver)
    pfile = bytearray(b".pfile" + struct.pack("<II", 2, 1) + struct.pack("<I", 0))
    pfile += struct.pack("<IIIIIQII", 0x60, 0x40, 8, 0x48, 0x60, 0, 0x48, 0)
    pfile += bytes(0x60 - len(pfile))
    pfile[0x40:0x48] = ".txt".encode("utf-16-le")
    v6 = bytearray(struct.pack("<IIII", 16 + len(pfile), 0, 6, 0)) + pfile
    add("efs-version-6-metadata-v3", "efs", v6, "unsupportedVersion",
        "EFS_Version 6 = metadata version 3 (.pfile/RMS): the common 16-byte prefix with EFS_Version 6, then a "
        ".pfile body (shape only). Must be refused as 'not supported yet'.", metadataVersion=3, efsVersion=6)
    add("efs-pfile-preamble", "efs", pfile, "unsupportedVersion",
        "Metadata version 3 as MS-EFSR 2.2.2.3 draws it: starting with the '.pfile' preamble (read as a Length, "
        "0x6966702E > 0x40000). Must be recognised by the preamble and refused as 'not supported yet'.",
        metadataVersion=3)
    for ver in (0, 7):
        add(f"efs-version-{ver}", "efs", patched(lambda b, ver=ver: p32(b, 8, ver)), "unknownVersion",
            f"EFS_Version {ver}: neither metadata v1 (1-3), v2 (4-5) nor v3 (6).")

    # Key-level failures: valid structure, error when opening with alice (keyId).
    w, _, _ = base_efs(ids, efek_for={("ddf", 0): "bob"})
    add("key-efek-for-another-key", "robs", robs_for(w), "fekUnwrapFailed",
        "DDF[0] carries alice's thumbprint but its Encrypted FEK is wrapped for bob: opening with alice fails the "
        "PKCS#1 v1.5 check. (An RSA implementation with implicit rejection returns random bytes instead; the FEK "
        "structure check then fails: badFEK.)", also=["badFEK"], keyId="alice")
    fs = struct.pack("<IIII", 16, 128, ALG_AES_256, 0) + bytes(range(16))
    w, _, _ = base_efs(ids, fek_struct=fs)
    add("key-fek-wrong-key-length", "robs", robs_for(w), "badFEK",
        "The FEK structure says AES-256 (0x6610) with KeyLength 16.", keyId="alice")
    fs = struct.pack("<IIII", 16, 128, 0x6602, 0) + bytes(range(16))
    w, _, _ = base_efs(ids, fek_struct=fs)
    add("key-fek-unknown-algorithm", "robs", robs_for(w), "unsupportedAlgorithm",
        "The FEK structure's ALG_ID is 0x6602 (CALG_RC2), not AES-256, 3DES or DESX.", keyId="alice")
    fs = struct.pack("<IIII", 32, 32, ALG_AES_256, 0) + bytes(8)
    w, _, _ = base_efs(ids, fek_struct=fs)
    add("key-fek-truncated", "robs", robs_for(w), "badFEK",
        "The FEK structure says KeyLength 32 but only 8 key bytes follow.", keyId="alice")
    w, _, _ = base_efs(ids, entry_kw={("ddf", 0): {"flags": 1}})
    add("key-entry-flags-1", "robs", robs_for(w), "unsupportedKeyWrap",
        "DDF[0] Flags = 1 (FEK wrapped with AES-256 under SHA-256(RSA-sign(L\"MICROSOFTE\")), meta §4.2): the "
        "exact signature scheme and AES mode are not specified, so this is refused. The Encrypted FEK here is an "
        "ordinary RSA one, so a reader that ignores Flags would wrongly succeed.", keyId="alice")

    # ROBS (raw §3; reader rules, win32-efs-api.md §7 / raw-stream-format 'Reader rules')
    good_efs, _, _ = base_efs(ids)
    r = robs_for(good_efs)
    meta_len = 30 + 16 + len(good_efs)
    data_hdr = 20 + meta_len
    seg = data_hdr + 42

    def rp(fn, src=None):
        b = bytearray(src if src is not None else r)
        fn(b)
        return b

    add("robs-bad-signature", "robs", rp(lambda b: b.__setitem__(slice(10, 12), b"Z\x00")), "badSignature",
        "L\"ROBZ\" instead of L\"ROBS\".")
    add("robs-bad-header-version", "robs", rp(lambda b: b.__setitem__(slice(0, 4), b"\x00\x02\x00\x00")),
        "badSignature", "Header bytes 00 02 00 00 instead of 00 01 00 00.")
    add("robs-missing-metadata", "robs", r[:20] + r[data_hdr:], "missingMetadataStream",
        "The first stream is ::$DATA; no metadata stream.")
    add("robs-duplicate-metadata", "robs", r[:data_hdr] + r[20:data_hdr] + r[data_hdr:], "duplicateMetadataStream",
        "Two metadata streams.")
    ms = bytes(r[20:data_hdr])
    add("robs-metadata-two-segments", "robs", r[:data_hdr] + ms[30:] + r[data_hdr:], "badMetadataStream",
        "The metadata stream has two GURE segments (raw §3.3: exactly one).")
    add("robs-misaligned-offset", "robs", rp(lambda b: struct.pack_into("<Q", b, seg + 0x10, 100)),
        "misalignedOffset", "StartingFileOffset 100 (raw reader rules: must be a multiple of 512).")
    key = random.Random(9100).randbytes(32)
    pt = plaintext(9100, 1024)
    two = bytearray(r[:seg]) + gure(512, 512, 512, encrypt_range(ALG_AES_256, key, 512, pt[512:]), 0) + \
        gure(0, 512, 512, encrypt_range(ALG_AES_256, key, 0, pt[:512]), 0)
    add("robs-offsets-backwards", "robs", two, "offsetsGoBackwards",
        "Two segments, at 512 then at 0 (raw reader rules).")
    add("robs-truncated", "robs", r[:-100], "truncated", "The last GURE segment is cut 100 bytes short.")
    add("robs-stray-bytes", "robs", r + b"\x01\x02\x03\x04\x05", "truncated", "5 stray bytes after the last segment.")
    add("robs-gure-length-8", "robs", rp(lambda b: struct.pack_into("<I", b, seg, 8)), "badLength",
        "A GURE Length of 8 (smaller than its own 16-byte header).")
    add("robs-stream-header-length-20", "robs", rp(lambda b: struct.pack_into("<I", b, data_hdr, 20)), "badLength",
        "The ::$DATA stream header Length is 20, less than 28 + NameLength.")
    add("robs-block-sizes-mismatch", "robs", rp(lambda b: struct.pack_into("<I", b, seg + 0x2C, 512)),
        "badSegmentHeader", "DataBlockSizes[0] = 512 but the GURE Length says 0x200 + 1024.")
    add("robs-stream-size-exceeds-block", "robs", rp(lambda b: struct.pack_into("<I", b, seg + 0x1C, 2000)),
        "badSegmentHeader", "BytesWithinStreamSize 2000 > DataBlockSizes[0] 1024.")
    add("robs-vdl-exceeds-size", "robs", rp(lambda b: struct.pack_into("<I", b, seg + 0x20, 1001)),
        "badSegmentHeader", "BytesWithinVDL 1001 > BytesWithinStreamSize 1000.")
    add("robs-metadata-efs-0x54", "robs", ROBS_HEADER + metadata_stream(bytes(small)) + r[data_hdr:],
        "headerTooShort", "The metadata stream carries a 0x54-byte $EFS (meta §4.1, raw reader rule: cap and floor).",
        also=["offsetOutOfRange"])
    # ntfs-3g efs_raw (meta §4.7)
    add("efsraw-pad-512", "efsRaw", bytes(1024) + struct.pack("<H", 512), "badPadding",
        "Padding length 512 (must be 0-511).")
    add("efsraw-length-515", "efsRaw", bytes(513) + struct.pack("<H", 1), "badLength",
        "515 bytes: not 512*k + 2.")
    return samples, files


def key_errors():
    return [
        {"name": "key-no-matching-entry", "file": "vectors/aes256-v2-size512.robs", "keyFile": "keys/dra1.modern.pfx",
         "errorKind": "noMatchingEntry", "description": "The file has only alice (no DRF); dra1's thumbprint matches "
                                                        "no entry."},
        {"name": "key-no-matching-entry-bare-pem", "file": "vectors/aes256-v2-size512.robs",
         "keyFile": "keys/bob.key.pem", "errorKind": "noMatchingEntry",
         "description": "A bare PEM key (no certificate) that opens no entry: trial unwrap of every entry fails."},
        {"name": "key-no-matching-entry-efs-raw", "file": "vectors/3des-v2-size512.efs_raw",
         "efsinfo": "vectors/3des-v2-size512.efs", "keyFile": "keys/alice.modern.pfx",
         "errorKind": "noMatchingEntry", "description": "ntfs-3g form; only carol and dra2 are on the file."},
        {"name": "key-wrong-password-pfx-modern", "file": "vectors/aes256-v2-size511.robs",
         "keyFile": "keys/alice.modern.pfx", "password": "not the password", "errorKind": "wrongPassword",
         "description": "PBES2/AES PKCS#12 with a wrong password (the MAC check fails)."},
        {"name": "key-wrong-password-pfx-legacy-rc2", "file": "vectors/aes256-v2-size511.robs",
         "keyFile": "keys/alice.legacy-rc2.pfx", "password": "not the password", "errorKind": "wrongPassword",
         "description": "Legacy 3DES/RC2-40 PKCS#12 with a wrong password."},
        {"name": "key-wrong-password-pkcs8", "file": "vectors/aes256-v2-size511.robs",
         "keyFile": "keys/alice.key.enc.pem", "password": "not the password", "errorKind": "wrongPassword",
         "description": "Encrypted PKCS#8 PEM with a wrong password."},
    ]


# MARK: - Output

def write_all(out, keys_root):
    ids = load_identities(keys_root)
    for d in ("vectors", "malformed"):
        if (out / d).exists():
            shutil.rmtree(out / d)
        (out / d).mkdir(parents=True)
    if keys_root.resolve() != out.resolve():
        if (out / "keys").exists():
            shutil.rmtree(out / "keys")
        shutil.copytree(keys_root / "keys", out / "keys")
    files = {}
    vectors = []
    for spec in VECTORS:
        v, f = make_vector(spec, ids)
        vectors.append(v)
        files.update(f)
    malformed, mf = make_malformed(ids)
    files.update(mf)
    for name, data in sorted(files.items()):
        (out / name).write_bytes(data)
    keys = []
    for ident in IDENTITIES:
        i = ident["id"]
        c = ids[i]["cert"]
        keys.append({"id": i, "role": ident["role"], "bits": ident["bits"],
                     "subject": c.subject.rfc4514_string(), "upn": ident["upn"], "sid": ident["sid"],
                     "containerName": ident["container"], "providerName": ident["provider"],
                     "displayName": ident["display"], "thumbprint": ids[i]["thumbprint"].hex(),
                     "eku": EKU_EFS_RECOVERY if ident["role"] == "recoveryAgent" else EKU_EFS,
                     "files": {k: v.format(id=i) for k, v in KEY_FILES.items()}})
    manifest = {
        "schema": 1,
        "generator": "make-windows-vectors.py (Python cryptography); see README.md",
        "specs": {"metadata": "shared/spec/windows-efs-metadata.md", "rawStream": "shared/spec/raw-stream-format.md"},
        "plaintext": {"algorithm": "block i = SHA-256(label || LE64(seed) || LE64(i)), i = 0, 1, ...; concatenated "
                                   "and cut to the stream size; then zeroRanges are set to zero",
                      "labelHex": PLAINTEXT_LABEL.hex()},
        "passwordsFile": "keys/passwords.json",
        "pfxTools": PFX_TOOLS,
        "keys": keys,
        "vectors": vectors,
        "malformed": malformed,
        "keyErrors": key_errors(),
    }
    (out / "vectors.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest


def selfcheck(out):
    chk = load_checker()
    fails = chk.selftest(out / "vectors.json")
    # DES sanity: FIPS 81 / "Now is t" with key 0123456789abcdef (single DES via TripleDES K1=K2=K3).
    e = Cipher(TripleDES(bytes.fromhex("0123456789abcdef") * 3), modes.ECB()).encryptor()
    assert e.update(b"Now is t").hex() == "3fa40e8a984d4815"
    return fails


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=FROZEN, help="output directory (default: frozen/)")
    ap.add_argument("--keys", type=Path, default=FROZEN, help="directory holding keys/ (default: frozen/)")
    ap.add_argument("--regenerate-keys", action="store_true", help="make new RSA keys, certificates and PFX files")
    ap.add_argument("--check-frozen", action="store_true", help="regenerate into a temp dir and diff with frozen/")
    a = ap.parse_args()
    if a.regenerate_keys:
        regenerate_keys(a.keys / "keys")
    if a.check_frozen:
        with tempfile.TemporaryDirectory() as t:
            t = Path(t)
            write_all(t, a.keys)
            bad = []
            for p in sorted(set(x.relative_to(t) for x in t.rglob("*") if x.is_file()) |
                            set(x.relative_to(FROZEN) for x in FROZEN.rglob("*") if x.is_file())):
                if not (t / p).exists() or not (FROZEN / p).exists() or not filecmp.cmp(t / p, FROZEN / p, False):
                    bad.append(str(p))
            print("frozen/ is reproducible byte for byte" if not bad else f"differs: {bad}")
            return 1 if bad else 0
    manifest = write_all(a.out, a.keys)
    fails = selfcheck(a.out)
    for f in fails:
        print("FAIL", f, file=sys.stderr)
    total = sum(p.stat().st_size for p in a.out.rglob("*") if p.is_file())
    print(f"{len(manifest['vectors'])} vectors, {len(manifest['malformed'])} malformed samples, "
          f"{len(manifest['keyErrors'])} key errors; {total} bytes in {a.out}; self-test: {len(fails)} failure(s)")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
