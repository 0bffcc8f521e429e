#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Makes the frozen format-v1 fixtures. Run ONCE per format version with the efs binary of that version; the
# output is committed and tests must open it forever. Do not regenerate v1.
#   bash make-fixtures.sh /path/to/efs
set -euo pipefail
EFS=${1:?usage: make-fixtures.sh EFS_BINARY}
here=$(cd "$(dirname "$0")" && pwd)
out="$here/v1"
rm -rf "$out" "$here/corrupt"
mkdir -p "$out" "$here/corrupt"
export EFS_HOME="$out/alice-home"
"$EFS" key new --name alice --no-passphrase >/dev/null
"$EFS" key new --name "recovery agent" --recovery-agent --no-passphrase > "$out/ra.thumbprint"
EFS_HOME="$out/ra-home" "$EFS" key import "$EFS_HOME/certs/$(tr -d ' ' < "$out/ra.thumbprint").pem" "$EFS_HOME/keys/$(tr -d ' ' < "$out/ra.thumbprint").pem" --no-passphrase >/dev/null 2>&1 || true
# The recovery agent's own store: its certificate and key together.
mkdir -p "$out/ra-home"
cat "$EFS_HOME/certs/$(tr -d ' ' < "$out/ra.thumbprint").pem" "$EFS_HOME/keys/$(tr -d ' ' < "$out/ra.thumbprint").pem" > "$out/ra-bundle.pem"
rm -rf "$out/ra-home"; EFS_HOME="$out/ra-home" "$EFS" key import "$out/ra-bundle.pem" --no-passphrase >/dev/null
rm "$EFS_HOME/keys/$(tr -d ' ' < "$out/ra.thumbprint").pem" "$EFS_HOME/certs/$(tr -d ' ' < "$out/ra.thumbprint").pem" "$out/ra-bundle.pem"
"$EFS" key export "$(cat "$out/ra.thumbprint")" --cert -o "$out/ra.pem" 2>/dev/null || EFS_HOME="$out/ra-home" "$EFS" key export "$(cat "$out/ra.thumbprint")" --cert -o "$out/ra.pem"
mkdir "$out/volume"
"$EFS" init "$out/volume" --recovery-agent "$out/ra.pem" >/dev/null
mkdir "$out/volume/docs"
python3 - "$out/volume/docs" <<'PY'
import sys
d = sys.argv[1]
open(f"{d}/empty.txt", "wb").write(b"")
open(f"{d}/hello.txt", "wb").write(b"hello, EFS\n")
open(f"{d}/block-plus-one.bin", "wb").write(bytes((i * 7 + 3) % 256 for i in range(4097)))
open(f"{d}/seventy-k.bin", "wb").write(bytes((i * 13 + i // 4096) % 256 for i in range(70000)))
PY
( cd "$out/volume/docs" && sha256sum empty.txt hello.txt block-plus-one.bin seventy-k.bin > "$out/SHA256SUMS" )
"$EFS" encrypt "$out/volume/docs"
"$EFS" encrypt "$out/volume/docs/empty.txt" "$out/volume/docs/hello.txt" "$out/volume/docs/block-plus-one.bin" "$out/volume/docs/seventy-k.bin"
# Deliberately damaged copies (each must be rejected with the named error).
c="$here/corrupt"
cp "$out/volume/docs/seventy-k.bin" "$c/flipped-data-block.bin"
python3 - "$c/flipped-data-block.bin" <<'PY'
import sys, struct
p = sys.argv[1]; b = bytearray(open(p, "rb").read())
cap = struct.unpack_from("<I", b, 32)[0]; data = 4096 + 2 * cap
b[data + 4124 * 5 + 100] ^= 0x01
open(p, "wb").write(b)
PY
cp "$out/volume/docs/seventy-k.bin" "$c/truncated-at-block.bin"
python3 - "$c/truncated-at-block.bin" <<'PY'
import sys, struct
p = sys.argv[1]; b = open(p, "rb").read()
cap = struct.unpack_from("<I", b, 32)[0]; data = 4096 + 2 * cap
open(p, "wb").write(b[: data + 4124 * 10])
PY
cp "$out/volume/docs/hello.txt" "$c/bad-header-checksum.bin"
python3 -c "import sys; p=sys.argv[1]; b=bytearray(open(p,'rb').read()); b[40]^=1; open(p,'wb').write(b)" "$c/bad-header-checksum.bin"
cp "$out/volume/docs/hello.txt" "$c/version-2.bin"
python3 - "$c/version-2.bin" <<'PY'
import sys, hashlib
p = sys.argv[1]; b = bytearray(open(p, "rb").read())
b[8] = 2; b[48:64] = hashlib.sha256(bytes(b[:48])).digest()[:16]
open(p, "wb").write(b)
PY
cp "$out/volume/docs/hello.txt" "$c/metadata-edited.bin"
python3 - "$c/metadata-edited.bin" <<'PY'
import sys, hashlib, struct
# Swap a byte inside the wrapped key of the first DDF entry and fix the slot checksum: only the MAC catches it.
p = sys.argv[1]; b = bytearray(open(p, "rb").read())
off = 4096; length = struct.unpack_from("<I", b, off + 4)[0]
body = off + 32
b[body + length - 40] ^= 0x01
b[off + 16: off + 32] = hashlib.sha256(bytes(b[off:off + 16]) + bytes(b[body:body + length])).digest()[:16]
open(p, "wb").write(b)
PY
echo "fixtures written to $out and $c"
