#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Independent checker for Windows EFS data: a raw stream (ROBS, MS-EFSR 2.2.3) or the ntfs-3g representation
(`efs_raw` ciphertext + `$EFS` bytes), written from the public spec files alone, not from the Swift code:

    /work/shared/spec/raw-stream-format.md      (cited below as "raw §3.x")
    /work/shared/spec/windows-efs-metadata.md   (cited below as "meta §4.x")

It parses the stream, parses `$EFS` v1, finds the key list entry for the given key by certificate thumbprint,
unwraps the FEK, decrypts every stream, and prints each plaintext's SHA-256. Any deviation from the spec ends it
with a non-zero exit and a one-line message `error: <kind>: <what>` (kinds are listed in README.md).

    check-windows-stream.py FILE.robs --key alice.pfx --password-file pw.txt [-o OUT] [--strict]
    check-windows-stream.py FILE.efs_raw --efsinfo FILE.efs --key alice.key.pem
    check-windows-stream.py FILE.robs --inspect                  # no key: users, agents, streams
    check-windows-stream.py FILE.efs --efs --inspect             # a bare $EFS (system.ntfs_efsinfo)
    check-windows-stream.py --selftest frozen/vectors.json       # every frozen vector and malformed sample

`--strict` also checks the writer rules (win32-efs-api.md §7 items 8-9, raw §3.4): use it on streams made by
`efs windows export`, which must look exactly like a Windows export.

Exit status: 0 success; 1 the input deviates from the spec; 2 key problem (no matching entry, wrong password,
FEK unwrap failed, unsupported FEK); 64 usage error.

Passwords are read from a file (`--password-file`), an environment variable (`--password-env`) or a prompt;
never from the command line.
"""
import argparse
import getpass
import hashlib
import json
import math
import os
import struct
import sys
from pathlib import Path

from cryptography import x509
try:  # cryptography >= 43 moved the DES family to "decrepit"; Debian 12 ships 38, which has it in primitives
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
except ImportError:
    from cryptography.hazmat.primitives.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.serialization import pkcs12

# MARK: - Named limits and constants

EFS_HEADER_SIZE = 0x54  # meta §4.2: DDF list starts at 0x54; a Length <= 0x54 is invalid (meta §4.1)
EFS_MAXIMUM_SIZE = 0x40000  # meta §4.1: Length > 0x40000 is invalid; MS-EFSR <7>: 262,144 bytes
MAXIMUM_GAP = 8  # meta §4.2: "unused gaps must not exceed 8 bytes"
MAXIMUM_LIST_ENTRIES = 500  # win32-efs-api.md §2: hash and certificate lists are range(0, 500)
MAXIMUM_THUMBPRINT = 100  # EFS_HASH_BLOB cbData range(0, 100)
MAXIMUM_CERTIFICATE = 32768  # EFS_CERTIFICATE_BLOB cbData range(0, 32768); applied to Certificate Data Length
MAXIMUM_ENCRYPTED_FEK = 1086  # meta §4.1: "An Encrypted FEK structure must be <= 1,086 bytes (<11>)"
KEY_ENTRY_HEADER = 20  # meta §4.2 Key list entry: 5 x u32
PUBLIC_KEY_INFO_HEADER = 28  # meta §4.2 Public Key Information: 5 x u32 + 8 reserved
CERTIFICATE_DATA_HEADER = 20  # meta §4.2 Certificate Data: 5 x u32
SEGMENT_HEADER = 0x200  # raw §3.4: the GURE header totals 512 bytes
SEGMENT_MAXIMUM_DATA = 65536  # raw §3.4: BytesWithinStreamSize <= 65536 (Windows' segmentation)
UNIT = 512  # meta §4.5: independent 512-byte CBC units

ALG_AES_256 = 0x6610
ALG_3DES = 0x6603
ALG_DESX = 0x6604
KEY_LENGTHS = {ALG_AES_256: 32, ALG_3DES: 24, ALG_DESX: 16}  # meta §4.2 ALG_ID table
ALG_NAMES = {ALG_AES_256: "AES-256", ALG_3DES: "3DES", ALG_DESX: "DESX"}

AES_IV_BASE = (0x5816657BE9161312, 0x1989ADBE44918961)  # meta §4.5
DES_IV_BASE = 0x169119629891AD13  # meta §4.5

SIG_ROBS = "ROBS".encode("utf-16-le")
SIG_NTFS = "NTFS".encode("utf-16-le")
SIG_GURE = "GURE".encode("utf-16-le")
ROBS_VERSION = b"\x00\x01\x00\x00"  # raw §3.1
METADATA_NAME = b"\x10\x19"  # raw §3.2: the 16-bit value 0x1910, little-endian
METADATA_NAME_TOLERATED = b"\x19\x10"  # raw §3.2 / reader rule 10: tolerate
UNNAMED_DATA = "::$DATA".encode("utf-16-le")  # raw §3.2: NameLength 14, no NUL

EXIT_FORMAT, EXIT_KEY, EXIT_USAGE = 1, 2, 64
KEY_ERROR_KINDS = {"noMatchingEntry", "wrongPassword", "fekUnwrapFailed", "badFEK", "unsupportedAlgorithm",
                   "unsupportedKeyWrap", "badKeyFile"}


class SpecError(Exception):
    """A deviation from the spec, with a stable kind (README.md lists them) and a message."""

    def __init__(self, kind, message, **extra):
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message
        self.extra = extra


def u16(b, o):
    return struct.unpack_from("<H", b, o)[0]


def u32(b, o):
    return struct.unpack_from("<I", b, o)[0]


def u64(b, o):
    return struct.unpack_from("<Q", b, o)[0]


def roundup512(n):
    return (n + UNIT - 1) // UNIT * UNIT


def data_unit_shift(n):
    """raw §3.4 / win32-efs-api.md §7 item 9: ceil(log2(roundup512(n))), at least 9."""
    r = roundup512(n)
    return max(9, math.ceil(math.log2(r))) if r else 9


# MARK: - RPC SID (MS-DTYP 2.4.2.2, as meta §4.2 "Owner Hint (an RPC SID)")

def parse_sid(b, off, limit):
    if off + 8 > limit:
        raise SpecError("offsetOutOfRange", f"SID at {off:#x} runs past its structure end {limit:#x}")
    revision, count = b[off], b[off + 1]
    if revision != 1 or count > 15:
        raise SpecError("badSID", f"SID at {off:#x}: revision {revision}, {count} sub-authorities")
    end = off + 8 + 4 * count
    if end > limit:
        raise SpecError("offsetOutOfRange", f"SID at {off:#x} with {count} sub-authorities runs past {limit:#x}")
    authority = int.from_bytes(b[off + 2:off + 8], "big")
    subs = struct.unpack_from(f"<{count}I", b, off + 8)
    return "S-1-" + str(authority) + "".join(f"-{s}" for s in subs), bytes(b[off:end])


def utf16z(b, off, limit, what):
    """A NUL-terminated UTF-16LE string starting at `off` that must end before `limit` (meta §4.2)."""
    if off >= limit or off + 2 > limit:
        raise SpecError("offsetOutOfRange", f"{what} at {off:#x} is outside its structure (end {limit:#x})")
    p = off
    while p + 2 <= limit:
        if b[p] == 0 and b[p + 1] == 0:
            try:
                return bytes(b[off:p]).decode("utf-16-le"), p + 2
            except UnicodeDecodeError as e:
                raise SpecError("badString", f"{what} at {off:#x} is not valid UTF-16LE: {e}")
        p += 2
    raise SpecError("unterminatedString", f"{what} at {off:#x} has no NUL before {limit:#x}")


# MARK: - $EFS (meta §4.2)

def parse_efs(b):
    """Parse `$EFS` metadata v1 (EFS_Version 1-3). Returns a dict with the fields vectors.json lists."""
    b = bytes(b)
    # meta §4.4: metadata v3 (".pfile", RMS) may start with its preamble: recognise it before reading Length.
    if b[:6] == b".pfile":
        raise SpecError("unsupportedVersion", "EFS metadata version 3 (.pfile preamble, EFS_Version 6) is not "
                        "supported yet", metadataVersion=3)
    if len(b) < 16:
        raise SpecError("headerTooShort", f"$EFS of {len(b)} bytes is shorter than its 16-byte common header")
    length, reserved1, version, reserved2 = struct.unpack_from("<IIII", b, 0)
    # meta §4.3/§4.4, MS-EFSR 2.2.2.2-2.2.2.3: EFS_Version 4/5 = metadata v2 (EFSX), 6 = metadata v3.
    if version in (4, 5):
        raise SpecError("unsupportedVersion", f"EFS metadata version 2 (EFSX, EFS_Version {version}) is not "
                        "supported yet", metadataVersion=2, efsVersion=version)
    if version == 6:
        raise SpecError("unsupportedVersion", "EFS metadata version 3 (.pfile, EFS_Version 6) is not supported yet",
                        metadataVersion=3, efsVersion=version)
    if version not in (1, 2, 3):
        raise SpecError("unknownVersion", f"EFS_Version {version} is not a known metadata version")
    # meta §4.1: a Length <= 0x54 or > 0x40000 is invalid. The named limits come before the buffer check.
    if length <= EFS_HEADER_SIZE:
        raise SpecError("headerTooShort", f"$EFS Length {length:#x} is <= {EFS_HEADER_SIZE:#x}")
    if length > EFS_MAXIMUM_SIZE:
        raise SpecError("tooLarge", f"$EFS Length {length:#x} is > {EFS_MAXIMUM_SIZE:#x}")
    if length != len(b):
        raise SpecError("lengthMismatch", f"$EFS Length field {length:#x} but {len(b):#x} bytes given")
    efs_id = b[0x10:0x20]
    efs_hash = b[0x20:0x30]
    ddf_off, drf_off = struct.unpack_from("<II", b, 0x40)
    out = {"length": length, "reserved1": reserved1, "efsVersion": version, "reserved2": reserved2,
           "efsIdHex": efs_id.hex(), "efsHashHex": efs_hash.hex(), "reserved3Hex": b[0x30:0x40].hex(),
           "ddfOffset": ddf_off, "drfOffset": drf_off, "reserved4Hex": b[0x48:0x54].hex()}
    # meta §4.2: EFS_Hash is MD5 of the metadata with the field zeroed on Windows 2000, 0 later. Report, don't fail.
    if any(efs_hash):
        z = bytearray(b)
        z[0x20:0x30] = bytes(16)
        out["efsHashIsMD5"] = hashlib.md5(z).digest() == efs_hash
    spans = [(0, EFS_HEADER_SIZE, "header")]
    if ddf_off == 0:
        raise SpecError("offsetOutOfRange", "DDF_Offset is 0: no user key list")
    out["ddf"], ddf_end = parse_key_list(b, ddf_off, length, "DDF")
    spans.append((ddf_off, ddf_end, "DDF list"))
    out["drf"] = []
    if drf_off != 0:  # meta §4.2: DRF_Offset 0 = no DRAs
        # Overlap first: a DRF list that starts inside the DDF list is "overlapping", whatever it parses as.
        if ddf_off <= drf_off < ddf_end:
            raise SpecError("overlap", f"DRF list at {drf_off:#x} starts inside the DDF list "
                                       f"[{ddf_off:#x}, {ddf_end:#x})")
        out["drf"], drf_end = parse_key_list(b, drf_off, length, "DRF")
        spans.append((drf_off, drf_end, "DRF list"))
    # meta §4.2: the lists lie in Data_Fields in any order, must not overlap, and leave gaps of at most 8 bytes.
    spans.sort()
    for (s0, e0, n0), (s1, e1, n1) in zip(spans, spans[1:]):
        if s1 < e0:
            raise SpecError("overlap", f"{n1} [{s1:#x}, {e1:#x}) overlaps {n0} [{s0:#x}, {e0:#x})")
        if s1 - e0 > MAXIMUM_GAP:
            raise SpecError("gapTooLarge", f"{s1 - e0}-byte gap between {n0} and {n1} (at most {MAXIMUM_GAP})")
    out["_ends"] = {n: e for _, e, n in spans}
    last = spans[-1][1]
    if length - last > MAXIMUM_GAP:
        raise SpecError("gapTooLarge", f"{length - last} unused bytes after the last key list (at most {MAXIMUM_GAP})")
    return out


def parse_key_list(b, off, length, name):
    # meta §4.2: Data_Fields start at 0x54; a list is u32 count then entries, each skipped by its Length.
    if off < EFS_HEADER_SIZE or off + 4 > length:
        raise SpecError("offsetOutOfRange", f"{name} offset {off:#x} is outside Data_Fields [0x54, {length:#x})")
    count = u32(b, off)
    if count > MAXIMUM_LIST_ENTRIES:
        raise SpecError("listTooLong", f"{name} list has {count} entries (at most {MAXIMUM_LIST_ENTRIES})")
    if count == 0 and name == "DDF":
        raise SpecError("emptyUserList", "the DDF list has 0 entries: no user can open the file")
    p = off + 4
    entries = []
    for i in range(count):
        entries.append(parse_key_entry(b, p, length, f"{name}[{i}]", i))
        p += entries[-1]["length"]
    return entries, p


def parse_key_entry(b, p, length, what, index):
    if p + KEY_ENTRY_HEADER > length:
        raise SpecError("offsetOutOfRange", f"{what} at {p:#x}: entry header runs past $EFS end {length:#x}")
    elen, pki_off, efek_len, efek_off, flags = struct.unpack_from("<IIIII", b, p)
    if elen < KEY_ENTRY_HEADER or p + elen > length:
        raise SpecError("offsetOutOfRange", f"{what} at {p:#x}: Length {elen:#x} is outside [20, {length - p:#x}]")
    e = {"index": index, "offset": p, "length": elen, "flags": flags, "publicKeyInfoOffset": pki_off,
         "encryptedFEKOffset": efek_off, "encryptedFEKLength": efek_len}
    # MS-EFSR 2.2.2.1.2: offsets from the start of the entry; both fields "completely contained" in Data Fields.
    if pki_off < KEY_ENTRY_HEADER or pki_off + PUBLIC_KEY_INFO_HEADER > elen:
        raise SpecError("offsetOutOfRange", f"{what}: Public Key Information offset {pki_off:#x} outside the entry")
    if efek_len > MAXIMUM_ENCRYPTED_FEK:
        raise SpecError("encryptedFEKTooLarge", f"{what}: Encrypted FEK of {efek_len} bytes (at most "
                                                f"{MAXIMUM_ENCRYPTED_FEK})")
    if efek_off < KEY_ENTRY_HEADER or efek_off + efek_len > elen or efek_len == 0:
        raise SpecError("offsetOutOfRange", f"{what}: Encrypted FEK [{efek_off:#x}, +{efek_len:#x}) outside the entry")
    q = p + pki_off
    pki_len, hint_off, pki_type, cd_len, cd_off = struct.unpack_from("<IIIII", b, q)
    e.update({"publicKeyInfoLength": pki_len, "ownerHintOffset": hint_off, "publicKeyInfoType": pki_type,
              "certificateDataLength": cd_len, "certificateDataOffset": cd_off,
              "publicKeyInfoReservedHex": b[q + 20:q + 28].hex()})
    if pki_len < PUBLIC_KEY_INFO_HEADER or pki_off + pki_len > elen:
        raise SpecError("offsetOutOfRange", f"{what}: Public Key Information Length {pki_len:#x} runs past the entry")
    # Encrypted FEK and Public Key Information must not share bytes.
    if efek_off < pki_off + pki_len and pki_off < efek_off + efek_len:
        raise SpecError("overlap", f"{what}: Encrypted FEK [{efek_off:#x}, +{efek_len:#x}) overlaps Public Key "
                                   f"Information [{pki_off:#x}, +{pki_len:#x})")
    # meta §4.2: type 3 = certificate thumbprint; MS-EFSR fixes it at 3 (ntfs-3g: 1 = CryptoAPI container).
    if pki_type != 3:
        raise SpecError("unsupportedPublicKeyType", f"{what}: Public Key Information type {pki_type} (only 3, "
                                                    "certificate thumbprint, is defined)")
    q_end = q + pki_len
    e["sid"] = None
    e["sidHex"] = None
    if hint_off:
        if hint_off < PUBLIC_KEY_INFO_HEADER:
            raise SpecError("offsetOutOfRange", f"{what}: Owner Hint offset {hint_off:#x} inside the PKI header")
        e["sid"], sid_bytes = parse_sid(b, q + hint_off, q_end)
        e["sidHex"] = sid_bytes.hex()
    if cd_len > MAXIMUM_CERTIFICATE:
        raise SpecError("certificateTooLarge", f"{what}: Certificate Data of {cd_len} bytes (at most "
                                               f"{MAXIMUM_CERTIFICATE})")
    if cd_off < PUBLIC_KEY_INFO_HEADER or cd_len < CERTIFICATE_DATA_HEADER or cd_off + cd_len > pki_len:
        raise SpecError("offsetOutOfRange", f"{what}: Certificate Data [{cd_off:#x}, +{cd_len:#x}) outside the "
                                            f"Public Key Information ({pki_len:#x} bytes)")
    c = q + cd_off
    c_end = c + cd_len
    tp_off, tp_len, cn_off, pn_off, dn_off = struct.unpack_from("<IIIII", b, c)
    e.update({"thumbprintOffset": tp_off, "thumbprintLength": tp_len, "containerNameOffset": cn_off,
              "providerNameOffset": pn_off, "displayNameOffset": dn_off})
    if tp_len > MAXIMUM_THUMBPRINT:
        raise SpecError("thumbprintTooLong", f"{what}: thumbprint of {tp_len} bytes (at most {MAXIMUM_THUMBPRINT})")
    if tp_off < CERTIFICATE_DATA_HEADER or tp_off + tp_len > cd_len or tp_len == 0:
        raise SpecError("offsetOutOfRange", f"{what}: thumbprint [{tp_off:#x}, +{tp_len}) outside Certificate Data")
    e["thumbprint"] = b[c + tp_off:c + tp_off + tp_len].hex()
    # MS-EFSR 2.2.2.1.4: offsets from the start of Certificate Data; 0 = absent; NUL-terminated UTF-16LE.
    for key, off in (("containerName", cn_off), ("providerName", pn_off), ("displayName", dn_off)):
        if off == 0:
            e[key] = None
            continue
        if off < CERTIFICATE_DATA_HEADER:
            raise SpecError("offsetOutOfRange", f"{what}: {key} offset {off:#x} inside the Certificate Data header")
        e[key], _ = utf16z(b, c + off, c_end, f"{what} {key}")
    efek = b[p + efek_off:p + efek_off + efek_len]
    e["encryptedFEKSHA256"] = hashlib.sha256(efek).hexdigest()
    e["_efek"] = efek
    return e


def efs_writer_warnings(efs):
    """Writer rules for $EFS (meta §4.2 as Windows lays it out): for `--strict` on streams we produce."""
    w = []
    for k in ("reserved1", "reserved2"):
        if efs[k]:
            w.append(f"$EFS {k} is {efs[k]:#x}, not 0")
    if any(bytes.fromhex(efs["reserved3Hex"])) or any(bytes.fromhex(efs["reserved4Hex"])):
        w.append("$EFS Reserved3/Reserved4 are not zero")
    if any(bytes.fromhex(efs["efsHashHex"])) and not efs.get("efsHashIsMD5"):
        w.append("$EFS EFS_Hash is neither zero nor the MD5 of the metadata")
    ends = efs["_ends"]
    if efs["ddfOffset"] != EFS_HEADER_SIZE:
        w.append(f"DDF list at {efs['ddfOffset']:#x}, Windows puts it at 0x54")
    if efs["drfOffset"] and efs["drfOffset"] != ends["DDF list"]:
        w.append(f"DRF list at {efs['drfOffset']:#x}, not right after the DDF list ({ends['DDF list']:#x})")
    if efs["length"] != max(ends.values()):
        w.append(f"$EFS has {efs['length'] - max(ends.values())} unused bytes at its end")
    for lst in ("ddf", "drf"):
        for e in efs[lst]:
            if e["thumbprintLength"] != 20:
                w.append(f"{lst.upper()}[{e['index']}]: thumbprint of {e['thumbprintLength']} bytes, not 20 (SHA-1)")
            if e["flags"] != 0:
                w.append(f"{lst.upper()}[{e['index']}]: Flags {e['flags']}")
            if any(bytes.fromhex(e["publicKeyInfoReservedHex"])):
                w.append(f"{lst.upper()}[{e['index']}]: Public Key Information reserved bytes are not zero")
    return w


def public_entry(e):
    return {k: v for k, v in e.items() if not k.startswith("_")}


# MARK: - ROBS (raw §3)

def parse_robs(b, strict=False, warnings=None):
    """Parse a raw stream. Returns {"metadata": bytes, "streams": [...]}; `warnings` collects writer deviations."""
    b = bytes(b)
    warn = warnings if warnings is not None else []
    if len(b) < 20:
        raise SpecError("truncated", f"{len(b)} bytes: shorter than the 20-byte ROBS header")
    if b[0:4] != ROBS_VERSION or b[4:12] != SIG_ROBS:  # raw §3.1
        raise SpecError("badSignature", f"header {b[0:12].hex()} is not 00010000 + L\"ROBS\"")
    if any(b[12:20]):
        warn.append("ROBS header reserved bytes are not zero")
    p = 20
    metadata = None
    streams = []
    while p < len(b):
        if p + 12 > len(b):
            raise SpecError("truncated", f"{len(b) - p} stray bytes at {p:#x}")
        slen = u32(b, p)
        sig = b[p + 4:p + 12]
        if sig != SIG_NTFS:
            raise SpecError("badSignature", f"expected L\"NTFS\" stream header at {p:#x}, found {sig.hex()}")
        # raw §3.2: Length covers the header through Stream Name; always skip by Length.
        if p + 28 > len(b):
            raise SpecError("truncated", f"stream header at {p:#x} is cut short")
        flag = u32(b, p + 12)
        name_len = u32(b, p + 24)
        if slen < 28 + name_len:
            raise SpecError("badLength", f"stream header at {p:#x}: Length {slen} < 28 + NameLength {name_len}")
        if p + slen > len(b):
            raise SpecError("truncated", f"stream header at {p:#x}: Length {slen} runs past the end")
        name = b[p + 28:p + 28 + name_len]
        if slen != 28 + name_len:
            warn.append(f"stream header at {p:#x}: Length {slen} != 28 + NameLength ({28 + name_len})")
        if any(b[p + 16:p + 24]):
            warn.append(f"stream header at {p:#x}: reserved bytes are not zero")
        header_at = p
        p += slen
        # Collect the GURE segments that follow (raw §3.3: tell GURE from NTFS by the signature at +4).
        segs = []
        while p + 12 <= len(b) and b[p + 4:p + 12] == SIG_GURE:
            glen = u32(b, p)
            if glen < 16:
                raise SpecError("badLength", f"GURE at {p:#x}: Length {glen} < 16")
            if p + glen > len(b):
                raise SpecError("truncated", f"GURE at {p:#x}: Length {glen} runs past the end ({len(b) - p} left)")
            if u32(b, p + 12) != 0:
                warn.append(f"GURE at {p:#x}: reserved field is not zero")
            segs.append((p, glen))
            p += glen
        is_metadata = name in (METADATA_NAME, METADATA_NAME_TOLERATED) and name_len == 2
        if metadata is None and not streams and not is_metadata:
            raise SpecError("missingMetadataStream", f"first stream at {header_at:#x} is {name!r}, not the "
                                                     "metadata stream (name 10 19)")
        if is_metadata:
            if metadata is not None or streams:
                raise SpecError("duplicateMetadataStream", f"second metadata stream at {header_at:#x}")
            if name != METADATA_NAME:
                warn.append("metadata stream name is 19 10 (tolerated), Windows writes 10 19")
            if flag != 0:
                warn.append(f"metadata stream Flag is {flag} (ignored; Windows writes 0)")
            if slen != 0x1E:
                warn.append(f"metadata stream header Length {slen:#x} != 0x1E")
            if len(segs) != 1:
                raise SpecError("badMetadataStream", f"metadata stream has {len(segs)} GURE segments (need exactly 1)")
            gp, glen = segs[0]
            metadata = b[gp + 16:gp + glen]  # raw §3.3: the whole $EFS, no encryption header
            continue
        try:
            sname = name.decode("utf-16-le")
        except UnicodeDecodeError:
            raise SpecError("badStreamName", f"stream name at {header_at:#x} is not UTF-16LE")
        if name_len == 16 and name == UNNAMED_DATA + b"\x00\x00":
            sname = "::$DATA"
            warn.append("::$DATA NameLength is 16 (with NUL; tolerated), Windows writes 14")
        elif sname.endswith("\x00"):
            sname = sname.rstrip("\x00")
            warn.append(f"stream name {sname!r} carries a NUL terminator")
        if not (sname == "::$DATA" or (sname.startswith(":") and sname.endswith(":$DATA") and len(sname) > 7)):
            warn.append(f"stream name {sname!r} is not ::$DATA or :name:$DATA")
        if flag not in (0, 1):
            raise SpecError("badStreamHeader", f"stream {sname!r}: Flag {flag} is neither 0 nor 1")
        stream = {"name": sname, "nameHex": name.hex(), "flag": flag, "segments": []}
        prev_end = None
        for gp, glen in segs:
            stream["segments"].append(parse_segment(b, gp, glen, flag, sname, warn))
            s = stream["segments"][-1]
            if s["startingFileOffset"] % UNIT:
                raise SpecError("misalignedOffset", f"stream {sname!r}: StartingFileOffset "
                                                    f"{s['startingFileOffset']:#x} is not a multiple of 512")
            if prev_end is not None and s["startingFileOffset"] < prev_end:
                raise SpecError("offsetsGoBackwards", f"stream {sname!r}: segment at {s['startingFileOffset']:#x} "
                                                      f"starts before the previous one ends ({prev_end:#x})")
            prev_end = s["startingFileOffset"] + s["bytesWithinStreamSize"]
        streams.append(stream)
    if metadata is None:
        raise SpecError("missingMetadataStream", "no metadata stream")
    check_stream_layout(streams, warn)
    if strict and warn:
        raise SpecError("writerDeviation", "; ".join(warn))
    return {"metadata": metadata, "streams": streams}


def parse_segment(b, gp, glen, flag, sname, warn):
    """raw §3.4: the Data Segment Encryption Header at +0x10 of an encrypted stream's GURE segment."""
    if flag != 0:
        return {"offset": gp, "length": glen, "plain": b[gp + 16:gp + glen]}
    if glen < 0x30:
        raise SpecError("badLength", f"GURE at {gp:#x}: Length {glen} too short for an encryption header")
    start, hlen, bws, bwv, comp, dus, cs, cls, encfmt, nblocks = struct.unpack_from("<QIIIHBBBBH", b, gp + 0x10)
    if nblocks == 0 or 0x2C + 4 * nblocks > glen:
        raise SpecError("badSegmentHeader", f"GURE at {gp:#x}: NumberOfDataBlocks {nblocks} does not fit")
    sizes = list(struct.unpack_from(f"<{nblocks}I", b, gp + 0x2C))
    data_at = 0x10 + hlen  # Length runs from StartingFileOffset (+0x10) to the end of the header
    if data_at < 0x2C + 4 * nblocks or data_at > glen:
        raise SpecError("badSegmentHeader", f"GURE at {gp:#x}: header Length {hlen:#x} is inconsistent")
    if data_at + sum(sizes) != glen:
        raise SpecError("badSegmentHeader", f"GURE at {gp:#x}: header {data_at:#x} + DataBlockSizes {sum(sizes)} "
                                            f"!= Length {glen}")
    if bwv > bws:
        raise SpecError("badSegmentHeader", f"GURE at {gp:#x}: BytesWithinVDL {bwv} > BytesWithinStreamSize {bws}")
    if nblocks == 1 and sizes[0] < bws:
        raise SpecError("badSegmentHeader", f"GURE at {gp:#x}: BytesWithinStreamSize {bws} > DataBlockSizes[0] "
                                            f"{sizes[0]}")
    if nblocks != 1:
        raise SpecError("unsupportedSegment", f"GURE at {gp:#x}: {nblocks} data blocks (compressed/sparse-inside-"
                                              "segment layout is not specified; only 1 is)")
    if sizes[0] % UNIT:
        raise SpecError("badSegmentHeader", f"GURE at {gp:#x}: DataBlockSizes[0] {sizes[0]} not a multiple of 512")
    if comp != 0:
        raise SpecError("unsupportedSegment", f"GURE at {gp:#x}: CompressionFormat {comp}")
    extd = None
    ext_at = 0x2C + 4 * nblocks
    if data_at >= ext_at + 16 and b[gp + ext_at:gp + ext_at + 4] == b"EXTD":
        extd = {"length": u32(b, gp + ext_at + 4), "flags": u32(b, gp + ext_at + 8),
                "reserved": u32(b, gp + ext_at + 12)}
    seg = {"offset": gp, "length": glen, "startingFileOffset": start, "headerLength": hlen,
           "bytesWithinStreamSize": bws, "bytesWithinVDL": bwv, "compressionFormat": comp,
           "dataUnitShift": dus, "chunkShift": cs, "clusterShift": cls, "encryptionFormat": encfmt,
           "numberOfDataBlocks": nblocks, "dataBlockSizes": sizes, "extd": extd,
           "ciphertext": b[gp + data_at:gp + glen]}
    # Writer rules (win32-efs-api.md §7 item 9; raw §3.4 "observed on Windows 10").
    w = f"stream {sname!r} segment at file offset {start:#x}"
    if hlen != 0x1F0:
        warn.append(f"{w}: header Length {hlen:#x} != 0x1F0")
    if dus != data_unit_shift(bws) or cs != dus:
        warn.append(f"{w}: DataUnitShift/ChunkShift {dus}/{cs}, expected {data_unit_shift(bws)}")
    if not 9 <= cls <= 21:
        warn.append(f"{w}: ClusterShift {cls} is not a plausible NTFS cluster size")
    if encfmt != 1:
        warn.append(f"{w}: EncryptionFormat {encfmt} != 1")
    if sizes[0] != roundup512(bws):
        warn.append(f"{w}: DataBlockSizes[0] {sizes[0]} != roundup512({bws})")
    if bws > SEGMENT_MAXIMUM_DATA:
        warn.append(f"{w}: {bws} bytes in one segment (Windows writes at most 65536)")
    if extd is None:
        warn.append(f"{w}: no EXTD extended header")
    elif extd["length"] != 0x10 or extd["reserved"] != 0 or extd["flags"] not in (0, 1):
        warn.append(f"{w}: EXTD header {extd} is not {{0x10, 0|1, 0}}")
    if any(b[gp + ext_at + (16 if extd else 0):gp + data_at]):
        warn.append(f"{w}: header padding is not zero")
    return seg


def check_stream_layout(streams, warn):
    """Writer rules for segmentation: contiguous 64 KiB segments unless the stream is sparse (EXTD flags 1)."""
    for s in streams:
        segs = [g for g in s["segments"] if "startingFileOffset" in g]
        sparse = any(g["extd"] and g["extd"]["flags"] & 1 for g in segs)
        for i, g in enumerate(segs):
            if sparse:
                continue
            if g["startingFileOffset"] != i * SEGMENT_MAXIMUM_DATA:
                warn.append(f"stream {s['name']!r}: segment {i} starts at {g['startingFileOffset']:#x}, "
                            f"expected {i * SEGMENT_MAXIMUM_DATA:#x}")
            if i < len(segs) - 1 and g["bytesWithinStreamSize"] != SEGMENT_MAXIMUM_DATA:
                warn.append(f"stream {s['name']!r}: segment {i} holds {g['bytesWithinStreamSize']} bytes; only the "
                            "last may be shorter than 65536")
        if s["flag"] != 0:
            warn.append(f"stream {s['name']!r}: Flag {s['flag']} (FEK encryption not present)")


# MARK: - ntfs-3g efs_raw (meta §4.7)

def parse_efs_raw(b):
    """An efs_raw read: ciphertext padded to 512 + LE16 padding length. Returns (ciphertext, size)."""
    b = bytes(b)
    if len(b) < 2 or (len(b) - 2) % UNIT:
        raise SpecError("badLength", f"efs_raw of {len(b)} bytes is not 512*k + 2")
    pad = u16(b, len(b) - 2)
    if pad >= UNIT or pad > len(b) - 2:
        raise SpecError("badPadding", f"efs_raw padding length {pad} is outside 0..511")
    return b[:-2], len(b) - 2 - pad


# MARK: - Keys

def read_password(args_file=None, env=None, prompt=None):
    if args_file:
        return Path(args_file).read_bytes().rstrip(b"\r\n")
    if env:
        v = os.environ.get(env)
        if v is None:
            raise SpecError("badKeyFile", f"environment variable {env} is not set")
        return v.encode()
    if prompt and sys.stdin.isatty():
        return getpass.getpass(prompt).encode()
    return None


def load_key(data, password):
    """PEM (PKCS#8 / traditional, optionally with certificates) or PKCS#12. Returns (private_key, [certs])."""
    data = bytes(data)
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            encrypted = b"ENCRYPTED PRIVATE KEY" in data or b"Proc-Type: 4,ENCRYPTED" in data
            if encrypted and not password:
                raise SpecError("wrongPassword", "the PEM private key is encrypted and no password was given")
            key = serialization.load_pem_private_key(data, password if encrypted else None)
            certs = x509.load_pem_x509_certificates(data) if b"BEGIN CERTIFICATE" in data else []
        else:
            key, cert, extra = pkcs12.load_key_and_certificates(data, password)
            certs = ([cert] if cert else []) + list(extra or [])
    except SpecError:
        raise
    except ValueError as e:
        text = str(e).lower()
        if "password" in text or "decrypt" in text or "mac" in text or "bad decrypt" in text:
            raise SpecError("wrongPassword", f"cannot decrypt the key file: {e}")
        raise SpecError("badKeyFile", f"unreadable key file: {e}")
    except TypeError as e:
        raise SpecError("wrongPassword", f"cannot decrypt the key file: {e}")
    if not isinstance(key, rsa.RSAPrivateKey):
        raise SpecError("badKeyFile", "the key file holds no RSA private key")
    return key, certs


def thumbprint(cert):
    return hashlib.sha1(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def rsa_pkcs1v15_decrypt(key, c):
    """Textbook RSA then an explicit PKCS#1 v1.5 (RFC 8017 §7.2.2) padding check, so a wrong key gives an error
    instead of OpenSSL's implicit-rejection random bytes. Test tool only: not constant time."""
    nums = key.private_numbers()
    n, d = nums.public_numbers.n, nums.d
    k = (n.bit_length() + 7) // 8
    if len(c) != k:
        raise SpecError("fekUnwrapFailed", f"Encrypted FEK is {len(c)} bytes, the RSA modulus {k}")
    ci = int.from_bytes(c, "big")
    if ci >= n:
        raise SpecError("fekUnwrapFailed", "Encrypted FEK is not smaller than the modulus (wrong key?)")
    em = pow(ci, d, n).to_bytes(k, "big")
    if em[0] != 0 or em[1] != 2:
        raise SpecError("fekUnwrapFailed", "PKCS#1 v1.5 padding check failed (wrong key?)")
    sep = em.find(b"\x00", 2)
    if sep < 10:
        raise SpecError("fekUnwrapFailed", "PKCS#1 v1.5 padding check failed (wrong key?)")
    return em[sep + 1:]


def parse_fek(m):
    """meta §4.2 Encrypted FEK, plaintext form: {KeyLength, Entropy, ALG_ID, 0, Key}."""
    if len(m) < 16:
        raise SpecError("badFEK", f"FEK structure of {len(m)} bytes is shorter than 16")
    klen, entropy, alg, reserved = struct.unpack_from("<IIII", m, 0)
    if alg not in KEY_LENGTHS:
        raise SpecError("unsupportedAlgorithm", f"FEK ALG_ID {alg:#06x} is not AES-256, 3DES or DESX")
    if klen != KEY_LENGTHS[alg] or 16 + klen > len(m):
        raise SpecError("badFEK", f"FEK KeyLength {klen} does not fit {ALG_NAMES[alg]} ({KEY_LENGTHS[alg]} bytes) "
                                  f"or the {len(m)}-byte structure")
    # Entropy is not validated strictly (meta §4.2: Windows 10 stores 0x20 for AES-256).
    return {"keyLength": klen, "entropy": entropy, "algId": alg, "reserved": reserved, "key": m[16:16 + klen],
            "structLength": len(m)}


def find_entry(efs, key, certs):
    """Match by certificate thumbprint (meta §4.2); with no certificate, try each entry's Encrypted FEK."""
    entries = [("ddf", e) for e in efs["ddf"]] + [("drf", e) for e in efs["drf"]]
    pub = key.public_key().public_numbers()
    tps = {thumbprint(c) for c in certs if isinstance(c.public_key(), rsa.RSAPublicKey)
           and c.public_key().public_numbers() == pub}
    if tps:
        for lst, e in entries:
            if e["thumbprint"] in tps:
                return lst, e
        raise SpecError("noMatchingEntry", f"no DDF or DRF entry has thumbprint {', '.join(sorted(tps))}")
    last = None
    for lst, e in entries:  # no certificate: a PEM key alone
        if e["flags"] != 0:
            continue
        try:
            parse_fek(rsa_pkcs1v15_decrypt(key, e["_efek"][::-1]))
            return lst, e
        except SpecError as err:
            last = err
    raise SpecError("noMatchingEntry", "the key opens no DDF or DRF entry" + (f" (last: {last.message})" if last
                                                                                else ""))


def unwrap_fek(entry, key):
    if entry["flags"] != 0:
        # meta §4.2 Flags 1 = AES-256 wrap under SHA-256(RSA-sign(L"MICROSOFTE")): not specified exactly enough.
        raise SpecError("unsupportedKeyWrap", f"entry flags {entry['flags']}: only RSA-wrapped FEKs (flags 0) are "
                                              "supported")
    # meta §4.2: the RSA ciphertext is stored byte-reversed; reverse it before the RSA operation.
    return parse_fek(rsa_pkcs1v15_decrypt(key, entry["_efek"][::-1]))


# MARK: - Data (meta §4.5)

def unit_iv(alg, off):
    if alg == ALG_AES_256:
        return struct.pack("<QQ", (AES_IV_BASE[0] + off) % 2**64, (AES_IV_BASE[1] + off) % 2**64)
    return struct.pack("<Q", (DES_IV_BASE + off) % 2**64)


def desx_expand(key16):
    """meta §4.5 DESX key expansion (MD5 with the 12-byte salts). Returns (des_key, in_white, out_white)."""
    md = hashlib.md5(key16 + b"Dan Simon  \x00").digest()
    des_key = bytes(x ^ y for x, y in zip(md[0:4], md[4:8])) + bytes(x ^ y for x, y in zip(md[8:12], md[12:16]))
    md2 = hashlib.md5(key16 + b"Scott Field\x00").digest()
    return des_key, md2[8:16], md2[0:8]


def xor(a, b):
    return bytes(x ^ y for x, y in zip(a, b))


def decrypt_unit(alg, key, off, ct):
    iv = unit_iv(alg, off)
    if alg == ALG_AES_256:
        d = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
        return d.update(ct) + d.finalize()
    if alg == ALG_3DES:
        d = Cipher(TripleDES(key), modes.CBC(iv)).decryptor()
        return d.update(ct) + d.finalize()
    # DESX-CBC by hand: P = in_white ^ DES^-1(C ^ out_white), then the CBC xor with the previous ciphertext.
    des_key, w_in, w_out = desx_expand(key)
    ecb = Cipher(TripleDES(des_key * 3), modes.ECB()).decryptor()
    out = bytearray()
    prev = iv
    for i in range(0, len(ct), 8):
        c = ct[i:i + 8]
        out += xor(xor(ecb.update(xor(c, w_out)), w_in), prev)
        prev = c
    return bytes(out)


def decrypt_ciphertext(alg, key, start, ct):
    if len(ct) % UNIT:
        raise SpecError("badSegmentHeader", f"ciphertext of {len(ct)} bytes is not a multiple of 512")
    return b"".join(decrypt_unit(alg, key, start + i, ct[i:i + UNIT]) for i in range(0, len(ct), UNIT))


def decrypt_stream(stream, fek, tail_warn=None):
    """Plaintext of a parsed ROBS stream: holes between segments are zeros, bytes past VDL are zeros."""
    out = bytearray()
    for g in stream["segments"]:
        if "plain" in g:  # Flag 1: "FEK encryption not present"
            out += g["plain"]
            continue
        start, bws, bwv = g["startingFileOffset"], g["bytesWithinStreamSize"], g["bytesWithinVDL"]
        pt = decrypt_ciphertext(fek["algId"], fek["key"], start, g["ciphertext"])
        if tail_warn is not None and any(pt[bws:]):
            tail_warn.append(f"stream {stream['name']!r}: the zero padding past byte {start + bws:#x} decrypts to "
                             "non-zero bytes (meta §4.5: the plaintext tail is zero-padded)")
        if len(out) < start:
            out += bytes(start - len(out))  # a hole (sparse file): reads as zeros
        out[start:] = pt[:bwv] + bytes(bws - bwv)  # raw §3.4: bytes beyond VDL are zero after decryption
    return bytes(out)


# MARK: - Whole-file operations

def open_input(path, efsinfo=None, bare_efs=False):
    """Returns (efs_bytes, streams) from a ROBS file, an efs_raw file plus its $EFS, or a bare $EFS."""
    data = Path(path).read_bytes()
    warn = []
    if bare_efs:
        return data, [], warn
    if efsinfo is not None:
        ct, size = parse_efs_raw(data)
        stream = {"name": "::$DATA", "nameHex": UNNAMED_DATA.hex(), "flag": 0, "segments": []}
        if size or ct:
            stream["segments"].append({"startingFileOffset": 0, "bytesWithinStreamSize": size,
                                       "bytesWithinVDL": size, "ciphertext": ct, "extd": None})
        return Path(efsinfo).read_bytes(), [stream], warn
    robs = parse_robs(data, strict=False, warnings=warn)
    return robs["metadata"], robs["streams"], warn


def describe(efs, streams):
    lines = [f"$EFS: {efs['length']} bytes, EFS_Version {efs['efsVersion']}, EFS_ID {efs['efsIdHex']}"]
    for lst in ("ddf", "drf"):
        for e in efs[lst]:
            who = "user" if lst == "ddf" else "recovery agent"
            lines.append(f"  {lst.upper()}[{e['index']}] {who}: {e['displayName']!r} sid={e['sid']} "
                         f"thumbprint={e['thumbprint']} container={e['containerName']!r} "
                         f"provider={e['providerName']!r} flags={e['flags']}")
    for s in streams:
        size = stream_size(s)
        lines.append(f"  stream {s['name']!r}: {size} bytes in {len(s['segments'])} segment(s)")
    return "\n".join(lines)


def stream_size(s):
    return max((g.get("startingFileOffset", 0) + g.get("bytesWithinStreamSize", len(g.get("plain", b"")))
                for g in s["segments"]), default=0)


def check_file(path, key_path=None, password=None, efsinfo=None, strict=False, out=None, cert_paths=(),
               bare_efs=False):
    """The whole check. Returns a result dict; raises SpecError on any deviation."""
    efs_bytes, streams, warn = open_input(path, efsinfo, bare_efs)
    efs = parse_efs(efs_bytes)
    warn += efs_writer_warnings(efs)
    result = {"efs": efs, "streams": [], "warnings": warn, "text": describe(efs, streams)}
    if key_path is None:
        if strict and warn:
            raise SpecError("writerDeviation", "; ".join(warn))
        return result
    key, certs = load_key(Path(key_path).read_bytes(), password)
    for cp in cert_paths:
        cd = Path(cp).read_bytes()
        certs += x509.load_pem_x509_certificates(cd) if cd.lstrip().startswith(b"-----") else \
            [x509.load_der_x509_certificate(cd)]
    lst, entry = find_entry(efs, key, certs)
    fek = unwrap_fek(entry, key)
    result.update({"list": lst, "index": entry["index"], "fek": fek})
    if fek["reserved"] != 0:
        warn.append(f"FEK structure Reserved is {fek['reserved']:#x}, not 0")
    for s in streams:
        pt = decrypt_stream(s, fek, warn)
        result["streams"].append({"name": s["name"], "size": len(pt), "sha256": hashlib.sha256(pt).hexdigest(),
                                  "plaintext": pt})
    if strict and warn:
        raise SpecError("writerDeviation", "; ".join(warn))
    if out:
        for s in result["streams"]:
            target = Path(out) if s["name"] == "::$DATA" else Path(f"{out}{s['name'][:-len(':$DATA')]}")
            target.write_bytes(s["plaintext"])
    return result


# MARK: - Self-test against vectors.json

def selftest(manifest_path, verbose=False):
    """Check every vector, malformed sample and key error listed in vectors.json. Returns a list of failures."""
    root = Path(manifest_path).parent
    m = json.loads(Path(manifest_path).read_text(encoding="utf-8"))
    pw = json.loads((root / m["passwordsFile"]).read_text(encoding="utf-8"))
    keys = {k["id"]: k for k in m["keys"]}
    fails = []

    def key_file(kid, flavour="pkcs8"):
        f = keys[kid]["files"][flavour]
        return root / f, pw.get(f, "").encode() or None

    def expect(name, cond, what):
        if not cond:
            fails.append(f"{name}: {what}")

    for v in m["vectors"]:
        name = v["name"]
        try:
            robs = parse_robs((root / v["files"]["robs"]).read_bytes(), strict=False, warnings=(w := []))
            efs_bytes = robs["metadata"]
            expect(name, efs_bytes == (root / v["files"]["efs"]).read_bytes(), "$EFS in ROBS != .efs file")
            efs = parse_efs(efs_bytes)
            w += efs_writer_warnings(efs)
            expect(name, bool(w) != v["robs"]["strictConformant"], f"writer deviations {w}")
            for k in ("length", "efsVersion", "efsIdHex", "efsHashHex", "ddfOffset", "drfOffset"):
                expect(name, efs[k] == v["efs"][k], f"$EFS {k} {efs[k]} != {v['efs'][k]}")
            for lst in ("ddf", "drf"):
                got = [public_entry(e) for e in efs[lst]]
                want = v["efs"][lst]
                expect(name, len(got) == len(want), f"{lst} count {len(got)} != {len(want)}")
                for g, w_ in zip(got, want):
                    for k, val in w_.items():
                        if k == "keyId":
                            continue
                        expect(name, k in g and g[k] == val, f"{lst}[{g['index']}].{k} {g.get(k)!r} != {val!r}")
            for ow in v["openWith"]:
                for flavour in (["pkcs8", "pfxModern", "pfxLegacy3DES", "pfxLegacyRC2", "pkcs8Encrypted"]
                                if ow is v["openWith"][0] else ["pkcs8"]):
                    kp, kpw = key_file(ow["keyId"], flavour)
                    res = check_file(root / v["files"]["robs"], kp, kpw,
                                     cert_paths=[root / keys[ow["keyId"]]["files"]["certDER"]])
                    expect(name, (res["list"], res["index"]) == (ow["list"], ow["index"]),
                           f"{ow['keyId']} matched {res['list']}[{res['index']}]")
                    expect(name, res["fek"]["key"].hex() == v["fek"]["keyHex"], "FEK differs")
                    got = {s["name"]: s["sha256"] for s in res["streams"]}
                    want = {s["name"]: s["plaintextSHA256"] for s in v["streams"]}
                    expect(name, got == want, f"plaintext SHA-256 {got} != {want}")
            for s in v["streams"]:
                if s.get("efsRaw"):
                    kp, kpw = key_file(v["openWith"][0]["keyId"])
                    res = check_file(root / s["efsRaw"]["file"], kp, kpw, efsinfo=root / v["files"]["efs"])
                    expect(name, res["streams"][0]["sha256"] == s["plaintextSHA256"], f"efs_raw {s['name']} sha")
            if v["robs"]["strictConformant"]:
                try:
                    kp, kpw = key_file(v["openWith"][0]["keyId"])
                    check_file(root / v["files"]["robs"], kp, kpw, strict=True)
                except SpecError as e:
                    fails.append(f"{name}: strict check failed: {e}")
        except SpecError as e:
            fails.append(f"{name}: unexpected {e}")
        if verbose:
            print(f"ok   {name}" if not any(f.startswith(name + ":") for f in fails) else f"FAIL {name}")

    for s in m["malformed"]:
        name = s["name"]
        try:
            kp = kpw = None
            if s.get("keyId"):
                kp, kpw = key_file(s["keyId"])
            f = root / s["file"]
            if s["input"] == "efs":
                try:
                    check_file(f, bare_efs=True)
                except SpecError as e:
                    parse_efs(f.read_bytes())  # the same error must come from the codec alone
                    raise e
                if kp:
                    efs = parse_efs(f.read_bytes())
                    k, certs = load_key(kp.read_bytes(), kpw)
                    certs.append(x509.load_der_x509_certificate(
                        (root / keys[s["keyId"]]["files"]["certDER"]).read_bytes()))
                    lst, e = find_entry(efs, k, certs)
                    unwrap_fek(e, k)
            elif s["input"] == "efsRaw":
                parse_efs_raw(f.read_bytes())
                if s["errorKind"] is not None:  # also through the command-line path
                    check_file(f, efsinfo=root / "vectors/aes256-v2-size512.efs")
            else:
                check_file(f, kp, kpw, cert_paths=[root / keys[s["keyId"]]["files"]["certDER"]] if kp else [])
            if s["errorKind"] is not None:
                fails.append(f"{name}: accepted, expected {s['errorKind']}")
        except SpecError as e:
            ok = e.kind == s["errorKind"] or e.kind in s.get("alsoAccept", [])
            expect(name, ok, f"got {e.kind} ({e.message}), expected {s['errorKind']}")
            if ok and "metadataVersion" in s:
                expect(name, e.extra.get("metadataVersion") == s["metadataVersion"], "metadata version not named")
        if verbose:
            print(f"ok   {name}" if not any(f.startswith(name + ":") for f in fails) else f"FAIL {name}")

    for s in m["keyErrors"]:
        name = s["name"]
        try:
            kf = root / s["keyFile"]
            password = s["password"].encode() if "password" in s else (pw.get(s["keyFile"], "").encode() or None)
            check_file(root / s["file"], kf, password,
                       efsinfo=(root / s["efsinfo"]) if s.get("efsinfo") else None)
            fails.append(f"{name}: accepted, expected {s['errorKind']}")
        except SpecError as e:
            expect(name, e.kind == s["errorKind"] or e.kind in s.get("alsoAccept", []),
                   f"got {e.kind} ({e.message}), expected {s['errorKind']}")
        if verbose:
            print(f"ok   {name}" if not any(f.startswith(name + ":") for f in fails) else f"FAIL {name}")
    return fails


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file", nargs="?", help="a ROBS raw stream, or an efs_raw file with --efsinfo")
    ap.add_argument("--efsinfo", help="the $EFS bytes (system.ntfs_efsinfo) when FILE is an efs_raw read")
    ap.add_argument("--efs", action="store_true", help="FILE is a bare $EFS: parse it (and unwrap the FEK with "
                                                       "--key), no data")
    ap.add_argument("--key", help="private key: PEM (PKCS#8, optionally with its certificate) or PKCS#12 .pfx")
    ap.add_argument("--cert", action="append", default=[], help="certificate(s) for a bare PEM key (DER or PEM)")
    ap.add_argument("--password-file", help="file holding the key's password (first line)")
    ap.add_argument("--password-env", help="environment variable holding the key's password")
    ap.add_argument("-o", "--output", help="write the plaintext here (named streams go to OUT:name)")
    ap.add_argument("--strict", action="store_true", help="also enforce the Windows writer rules (for exports)")
    ap.add_argument("--inspect", action="store_true", help="list users, agents and streams; needs no key")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    ap.add_argument("--selftest", metavar="VECTORS_JSON", help="check every frozen vector and sample")
    a = ap.parse_args(argv)
    if a.selftest:
        fails = selftest(a.selftest, verbose=not a.json)
        for f in fails:
            print("FAIL", f, file=sys.stderr)
        print(f"selftest: {len(fails)} failure(s)")
        return EXIT_FORMAT if fails else 0
    if not a.file or (not a.key and not a.inspect):
        ap.print_usage(sys.stderr)
        print("error: usage: give FILE and --key KEY (or --inspect)", file=sys.stderr)
        return EXIT_USAGE
    try:
        pw = read_password(a.password_file, a.password_env) if a.key else None
        key = None if a.inspect else a.key
        try:
            res = check_file(a.file, key, pw or None, a.efsinfo, a.strict, a.output, a.cert, a.efs)
        except SpecError as e:
            if not (e.kind == "wrongPassword" and pw is None and key and sys.stdin.isatty()):
                raise
            pw = read_password(prompt=f"password for {key}: ")
            res = check_file(a.file, key, pw or None, a.efsinfo, a.strict, a.output, a.cert, a.efs)
    except SpecError as e:
        print(f"error: {e.kind}: {e.message}", file=sys.stderr)
        return EXIT_KEY if e.kind in KEY_ERROR_KINDS else EXIT_FORMAT
    except OSError as e:
        print(f"error: io: {e}", file=sys.stderr)
        return EXIT_USAGE
    if a.json:
        fek = res.get("fek")
        print(json.dumps({"efs": {k: ([public_entry(e) for e in v] if k in ("ddf", "drf") else v)
                                  for k, v in res["efs"].items() if not k.startswith("_")},
                          "matched": {"list": res.get("list"), "index": res.get("index")} if fek else None,
                          "algorithm": ALG_NAMES.get(fek["algId"]) if fek else None,
                          "streams": [{k: v for k, v in s.items() if k != "plaintext"} for s in res["streams"]],
                          "warnings": res["warnings"]}, indent=1))
        return 0
    print(res["text"])
    for w in res["warnings"]:
        print(f"warning: {w}")
    if res.get("fek"):
        fek = res["fek"]
        weak = "" if fek["algId"] == ALG_AES_256 else "  (WEAK: DES-based)"
        print(f"opened with {res['list'].upper()}[{res['index']}]: {ALG_NAMES[fek['algId']]} "
              f"(ALG_ID {fek['algId']:#06x}, entropy {fek['entropy']}){weak}")
        for s in res["streams"]:
            print(f"{s['sha256']}  {s['size']:>9}  {s['name']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
