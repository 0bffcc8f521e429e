#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Independent known-answer vectors for swift-efs format v1, computed with Python's `cryptography` package
from Documentation/file-format.md alone (not from the Swift code). Run once; the output is frozen.

    pip install cryptography && python3 make-efs-v1-vectors.py > efs-v1-blocks.json
"""
import hashlib, hmac, json, struct
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives import hashes

def hkdf(fek, file_id, info):
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=file_id, info=info).derive(fek)

def vector(fek, file_id, block, nonce, plaintext):
    ck = hkdf(fek, file_id, b"swift-efs v1 file content")
    aad = b"EFS1BLK\x00" + file_id + struct.pack("<Q", block)
    stored = nonce + AESGCM(ck).encrypt(nonce, plaintext, aad)
    return {"fek": fek.hex(), "fileID": file_id.hex(), "block": block, "nonce": nonce.hex(),
            "plaintext": plaintext.hex(), "stored": stored.hex()}

def size_record(fek, file_id, gen, size, flags):
    sk = hkdf(fek, file_id, b"swift-efs v1 size record")
    body = struct.pack("<QQI", gen, size, flags) + bytes(12)
    mac = hmac.new(sk, b"EFS1SIZE" + file_id + body, hashlib.sha256).digest()
    return {"fek": fek.hex(), "fileID": file_id.hex(), "generation": gen, "size": size, "flags": flags,
            "record": (body + mac).hex()}

fek = bytes(range(32))
fid = bytes.fromhex("00112233445566778899aabbccddeeff")
nonce = bytes.fromhex("000102030405060708090a0b")
blocks = [
    vector(fek, fid, 0, nonce, b""),
    vector(fek, fid, 0, nonce, b"hello, EFS\n"),
    vector(fek, fid, 1, nonce, bytes(i % 251 for i in range(4095))),
    vector(fek, fid, 7, nonce, bytes((i * 7) % 256 for i in range(4096))),
    vector(fek, fid, 2**40 + 3, bytes.fromhex("ffffffffffffffffffffffff"), b"\x00" * 17),
    vector(bytes([0xA5]) * 32, bytes([1] * 16), 5, nonce, b"another key"),
]
records = [
    size_record(fek, fid, 1, 0, 0),
    size_record(fek, fid, 2, 11, 0),
    size_record(fek, fid, 12345, 2**40 + 1, 1),
]
header_fields = {"fileID": fid.hex(), "slotCapacity": 8192}
hdr = bytes([0x89, 0x45, 0x46, 0x53, 0x0D, 0x0A, 0x1A, 0x0A]) + struct.pack("<HHBBH", 1, 0, 12, 1, 0) + fid + struct.pack("<I", 8192) + bytes(12)
hdr += hashlib.sha256(hdr).digest()[:16]
header_fields["encoded"] = hdr.hex()
print(json.dumps({"generator": "make-efs-v1-vectors.py (Python cryptography)", "blocks": blocks,
                  "sizeRecords": records, "header": header_fields}, indent=1))
