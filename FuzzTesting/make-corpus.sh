#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Regenerates the seed corpora in Corpus/<Target>/ from real files made with the efs CLI, openssl keys, and a
# few synthetic raw streams. The committed corpus is the output of one run; you only need this to refresh it.
#   bash FuzzTesting/make-corpus.sh [/path/to/efs]      (default: .build/debug/efs of the main package)
# Needs python3 and openssl. Encrypted keys use the passphrase "fuzz" with 1000 PBKDF2 rounds (FuzzKeyFiles).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
EFS=${1:-$here/../.build/debug/efs}
[[ -x $EFS ]] || { echo "make-corpus.sh: no efs binary at $EFS (build the main package first)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
corpus="$here/Corpus"
rm -rf "$corpus"
mkdir -p "$corpus"/{FuzzRawStream,FuzzFileHeader,FuzzFileMetadata,FuzzKeyFiles,FuzzArchive}

# Keys of the three kinds, a volume with a P-384 recovery agent, and a few files.
export EFS_HOME="$work/home"
alice=$("$EFS" key new --name alice --no-passphrase | tr -d ' ')
ra=$("$EFS" key new --name "recovery agent" --recovery-agent --ec p384 --no-passphrase | tr -d ' ')
bob=$("$EFS" key new --name bob --rsa 2048 --no-passphrase | tr -d ' ')
vol="$work/vol"
mkdir "$vol"
"$EFS" init "$vol" --recovery-agent "$ra" >/dev/null
python3 - "$vol" <<'PY'
import sys
d = sys.argv[1]
open(f"{d}/empty.txt", "wb").write(b"")
open(f"{d}/hello.txt", "wb").write(b"hello, EFS\n")
open(f"{d}/block-plus-one.bin", "wb").write(bytes((i * 7 + 3) % 256 for i in range(4097)))
with open(f"{d}/sparse.bin", "wb") as f:
    f.write(b"x" * 10); f.seek(20000); f.write(b"tail")
PY
"$EFS" encrypt "$vol/empty.txt" "$vol/hello.txt" "$vol/block-plus-one.bin" "$vol/sparse.bin"
"$EFS" users add "$vol/hello.txt" "$alice" >/dev/null   # DDF: bob (RSA) and alice (P-256); DRF: ra (P-384)
mkdir "$vol/dir"
"$EFS" encrypt "$vol/dir"
raw="$work/raw"
mkdir "$raw"
for f in empty.txt hello.txt block-plus-one.bin sparse.bin dir; do "$EFS" raw export "$vol/$f" -o "$raw/${f%%.*}.raw"; done

python3 - "$raw" "$corpus" <<'PY'
import os, struct, sys
raw, corpus = sys.argv[1], sys.argv[2]

def u16(s): return s.encode("utf-16-le")
def stream_header(name, flag=0):
    return struct.pack("<I", 28 + len(name)) + u16("NTFS") + struct.pack("<I", flag) + bytes(8) + struct.pack("<I", len(name)) + name
def metadata_segment(p): return struct.pack("<I", 16 + len(p)) + u16("GURE") + bytes(4) + p
def data_segment(offset, plain, payload, sparse=False, extd=True, blocks=None):
    blocks = blocks or [len(payload)]
    h = struct.pack("<QIIIHBBBBH", offset, 0x1F0, plain, plain, 0, 12, 12, 12, 1, len(blocks))
    h += b"".join(struct.pack("<I", n) for n in blocks)
    if extd: h += b"EXTD" + struct.pack("<III", 16, 1 if sparse else 0, 0)
    h = h.ljust(512 - 16, b"\0")
    return struct.pack("<I", 16 + len(h) + len(payload)) + u16("GURE") + bytes(4) + h + payload
def records(b):
    p, out = 20, []
    while p < len(b):
        n = struct.unpack_from("<I", b, p)[0]
        out.append((b[p + 4:p + 12].decode("utf-16-le"), b[p:p + n])); p += n
    return out
def write(target, name, data):
    open(os.path.join(corpus, target, name), "wb").write(data)

streams = {f[:-4]: open(os.path.join(raw, f), "rb").read() for f in sorted(os.listdir(raw))}
# FuzzRawStream: split byte + stream. Low 4 bits = log2 of the largest chunk (0: one byte at a time, which costs
# ~40 ms per 7 KB input in a debug ASan build, so only the smallest seed uses it).
splits = {"dir": [0x00, 0x08], "empty": [0x14], "hello": [0x05, 0x29], "block-plus-one": [0x37], "sparse": [0x0B]}
for name, s in sorted(streams.items()):
    for split in splits[name]:
        write("FuzzRawStream", f"{name}-split{split:02x}.raw", bytes([split]) + s)
# Synthetic: named streams (flag 0 and flag 1, one empty), a data stream of three segments (a hole between),
# several data blocks, a missing EXTD, a byte-swapped metadata name, a 16-byte ::$DATA name.
meta = [r for k, r in records(streams["hello"]) if k == "GURE"][0][16:]
hdr = streams["hello"][:20]
s = hdr + stream_header(b"\x10\x19") + metadata_segment(meta)
s += stream_header(u16("::$DATA")) + data_segment(0, 1000, bytes(range(256)) * 4 + bytes(28), sparse=True)
s += data_segment(8192, 600, bytes(300) + bytes(range(200)) + bytes(128), blocks=[300, 200, 128], extd=False)
s += data_segment(65536, 5, bytes(33))
s += stream_header(u16(":user.comment:$DATA")) + data_segment(0, 9, bytes(range(37)))
s += stream_header(u16(":user.plain:$DATA"), flag=1) + metadata_segment(b"plain bytes")
s += stream_header(u16(":user.empty:$DATA"))
write("FuzzRawStream", "synthetic-named-streams-split06.raw", bytes([0x06]) + s)
s2 = hdr + stream_header(b"\x19\x10") + metadata_segment(meta) + stream_header(u16("::$DATA") + b"\0\0") + data_segment(0, 11, bytes(39))
write("FuzzRawStream", "synthetic-swapped-names-split04.raw", bytes([0x04]) + s2)

# FuzzFileHeader and FuzzFileMetadata: the metadata payload of each exported file (header, size records, slot).
for name, s in sorted(streams.items()):
    payload = [r for k, r in records(s) if k == "GURE"][0][16:]
    body = payload[224:]
    if name in ("hello", "empty", "dir"):
        write("FuzzFileHeader", f"{name}-mode00.bin", b"\x00" + payload)
        write("FuzzFileHeader", f"{name}-mode03.bin", b"\x03" + payload)
        write("FuzzFileMetadata", f"{name}-raw-mode80.bin", b"\x80" + payload)
        write("FuzzFileMetadata", f"{name}-raw-mode87.bin", b"\x87" + payload)
    write("FuzzFileMetadata", f"{name}-body-mode00.bin", b"\x00" + body)
    write("FuzzFileMetadata", f"{name}-body-mode06.bin", b"\x06" + body)
# A header whose slot capacity is odd (the mode byte's bits 4-6 pick another capacity for the slot).
write("FuzzFileHeader", "hello-mode53.bin", b"\x53" + [r for k, r in records(streams["hello"]) if k == "GURE"][0][16:])
PY

# FuzzKeyFiles: certificates (PEM, DER), keys (PKCS#8, SEC1, PKCS#1, encrypted PBES2 with each PRF and AES size),
# and bundles as `efs key import` reads them.
k="$corpus/FuzzKeyFiles"
for t in "$alice" "$ra" "$bob"; do cp "$EFS_HOME/certs/$t.pem" "$k/cert-$t.pem"; done
openssl x509 -in "$EFS_HOME/certs/$alice.pem" -outform DER -out "$k/cert-$alice.der"
cp "$EFS_HOME/keys/$alice.pem" "$k/key-p256-pkcs8.pem"
cp "$EFS_HOME/keys/$ra.pem" "$k/key-p384-pkcs8.pem"
cp "$EFS_HOME/keys/$bob.pem" "$k/key-rsa2048-pkcs8.pem"
openssl pkcs8 -topk8 -nocrypt -in "$EFS_HOME/keys/$alice.pem" -outform DER -out "$k/key-p256-pkcs8.der"
openssl ec -in "$EFS_HOME/keys/$alice.pem" -out "$k/key-p256-sec1.pem" 2>/dev/null
openssl rsa -traditional -in "$EFS_HOME/keys/$bob.pem" -out "$k/key-rsa2048-pkcs1.pem" 2>/dev/null
enc() { openssl pkcs8 -topk8 -v2 "$2" -v2prf "$3" -iter 1000 -passout pass:fuzz -in "$1"; }
enc "$EFS_HOME/keys/$alice.pem" aes-256-cbc hmacWithSHA256 > "$k/key-p256-enc-aes256-sha256.pem"
enc "$EFS_HOME/keys/$ra.pem" aes-128-cbc hmacWithSHA1 > "$k/key-p384-enc-aes128-sha1.pem"
enc "$EFS_HOME/keys/$alice.pem" aes-192-cbc hmacWithSHA512 > "$k/key-p256-enc-aes192-sha512.pem"
enc "$EFS_HOME/keys/$bob.pem" aes-256-cbc hmacWithSHA256 > "$k/key-rsa2048-enc.pem"
# 0xFF + DER: the harness wraps it as ENCRYPTED PRIVATE KEY PEM (structured mutations of the PBES2 parameters).
for f in key-p256-enc-aes256-sha256 key-p384-enc-aes128-sha1 key-p256-enc-aes192-sha512; do
    { printf '\xff'; sed '1d;$d' "$k/$f.pem" | base64 -d; } > "$k/$f.ffder"
done
cat "$EFS_HOME/certs/$ra.pem" "$k/key-p384-enc-aes128-sha1.pem" > "$k/bundle-ra-cert-and-encrypted-key.pem"
cat "$EFS_HOME/certs/$alice.pem" "$EFS_HOME/certs/$bob.pem" "$EFS_HOME/keys/$alice.pem" > "$k/bundle-two-certs-one-key.pem"
# FuzzArchive: split byte + a pax/GNU/ustar archive, as `efs backup` writes and `efs restore` reads them.
python3 - "$corpus/FuzzArchive" "$raw/hello.raw" <<'PY'
import io, os, sys, tarfile
out, raw = sys.argv[1], open(sys.argv[2], "rb").read()
def member(name, kind=tarfile.REGTYPE, data=b"", pax=None, **kw):
    t = tarfile.TarInfo(name); t.type = kind; t.size = len(data); t.mtime = 1_700_000_000; t.mode = 0o644
    t.uid = t.gid = 1000; t.uname = t.gname = "alice"
    if pax: t.pax_headers = pax
    for k, v in kw.items(): setattr(t, k, v)
    return t, (io.BytesIO(data) if data else None)
def archive(fmt, members, pax=None):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w", format=fmt, pax_headers=pax or {}) as t:
        for m, f in members: t.addfile(m, f)
    return b.getvalue()
def write(name, split, data):
    # tarfile pads to a 10240-byte record; keep the end marker (two zero blocks) and drop the rest of the padding.
    end = (len(data.rstrip(b"\0")) + 511) // 512 * 512 + 1024
    open(os.path.join(out, f"{name}-split{split:02x}.tar"), "wb").write(bytes([split]) + data[:end])
write("pax-efs-raw", 0x09, archive(tarfile.PAX_FORMAT, [
    member("vol/", tarfile.DIRTYPE, mode=0o755),
    member("vol/hello.txt", data=raw, pax={"EFS.raw": "1", "SCHILY.xattr.user.comment": "a comment",
                                            "mtime": "1700000000.123456789", "atime": "1700000001.5"}),
    member("vol/link", tarfile.SYMTYPE, linkname="hello.txt"),
    member("vol/hard", tarfile.LNKTYPE, linkname="vol/hello.txt"),
    member("vol/dir/.efs-dir", data=raw[:600], pax={"EFS.raw": "1", "EFS.directory": "1"}),
]))
write("pax-global-long-names", 0x1c, archive(tarfile.PAX_FORMAT, [
    member("d/" + "n" * 150 + "/file", data=b"x" * 700, pax={"uname": "ünïcode", "SCHILY.xattr.user.empty": ""}),
    member("fifo", tarfile.FIFOTYPE), member("chr", tarfile.CHRTYPE, devmajor=1, devminor=3),
], pax={"comment": "global", "gname": "staff"}))
write("gnu-long-name", 0x06, archive(tarfile.GNU_FORMAT, [
    member("g/" + "l" * 200, data=b"gnu"), member("g/s", tarfile.SYMTYPE, linkname="t" * 120),
    member("big-uid", data=b"", uid=0o10000000),
]))
write("ustar", 0x00, archive(tarfile.USTAR_FORMAT, [member("a/b.txt", data=b"hello\n"), member("a/", tarfile.DIRTYPE)]))
PY
chmod 644 "$corpus"/*/*
du -sh "$corpus"; find "$corpus" -type f | wc -l
