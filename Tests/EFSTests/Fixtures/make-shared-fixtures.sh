#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Adds v1/volume/shared: files whose key entries use wrap algorithm 4 (one HPKE encapsulation shared by several
# files, file-format.md section 4.3; added to format v1 on 2026-12-03), for alice and the recovery agent of the
# frozen v1 fixtures. Run ONCE; the output is committed and tests must open it forever. Do not regenerate.
#   bash make-shared-fixtures.sh /path/to/efs
set -euo pipefail
EFS=${1:?usage: make-shared-fixtures.sh EFS_BINARY}
here=$(cd "$(dirname "$0")" && pwd)
out="$here/v1"
[ ! -e "$out/volume/shared" ] || { echo "already made: $out/volume/shared" >&2; exit 1; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
# The key store wants mode 0700, which git does not keep: use a copy.
cp -r "$out/alice-home" "$work/home"; chmod -R go-rwx "$work/home"
export EFS_HOME="$work/home"
mkdir "$out/volume/shared"
python3 - "$out/volume/shared" <<'PY'
import sys
d = sys.argv[1]
open(f"{d}/one.txt", "wb").write(b"shared encapsulation, file one\n")
open(f"{d}/two.bin", "wb").write(bytes((i * 31 + 7) % 256 for i in range(9000)))
PY
( cd "$out/volume/shared" && sha256sum one.txt two.bin > "$out/SHARED-SHA256SUMS" )
"$EFS" encrypt "$out/volume/shared"
"$EFS" encrypt "$out/volume/shared/one.txt" "$out/volume/shared/two.bin"
echo "fixtures written to $out/volume/shared"
