#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Regenerates Corpus/FuzzWindowsMetadata and Corpus/FuzzWindowsRawStream from the frozen Windows vectors of
# Tests/EFSWindowsTests/Vectors/frozen (made by the independent Python generator), plus one synthetic raw stream
# with a three-block (sparse) segment. Needs python3.
#   bash FuzzTesting/make-corpus-windows.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$here/Corpus/FuzzWindowsMetadata" "$here/Corpus/FuzzWindowsRawStream"
mkdir -p "$here/Corpus/FuzzWindowsMetadata" "$here/Corpus/FuzzWindowsRawStream"
cd "$here"
python3 - <<'PY'
import json, struct
V = '../Tests/EFSWindowsTests/Vectors/frozen'
d = json.load(open(f'{V}/vectors.json'))
cm, cr = 'Corpus/FuzzWindowsMetadata', 'Corpus/FuzzWindowsRawStream'
ALG = {'AES-256': 0, '3DES': 1, 'DESX': 2}
n = 0
for v in d['vectors']:
    efs = open(f"{V}/{v['files']['efs']}", 'rb').read()
    if v['name'] in ('aes256-v2-size621-worked-example', 'aes256-v1-size100', 'aes256-v2-drf-first',
                     'desx-v1-size511', 'aes256-v3-random'):
        open(f"{cm}/{v['name']}.efs", 'wb').write(efs)
    robs = open(f"{V}/{v['files']['robs']}", 'rb').read()
    alg = ALG[v['algorithm']]
    if len(robs) <= 20000:  # mode byte: ROBS, the vector's algorithm, a chunk size
        open(f"{cr}/{v['name']}.robs", 'wb').write(bytes([(alg << 1) | (n % 4 << 4)]) + robs)
        n += 1
    for s in v['streams']:
        if s.get('efsRaw') and s['efsRaw']['size'] <= 8000 and \
                v['name'].endswith(('511', '513', '621-worked-example', 'size0', 'random')):
            raw = open(f"{V}/{s['efsRaw']['file']}", 'rb').read()
            open(f"{cr}/{v['name']}.efs_raw", 'wb').write(bytes([1 | (alg << 1) | ((n % 10) << 4)]) + raw)
            n += 1
for m in d['malformed']:
    data = open(f"{V}/{m['file']}", 'rb').read()
    if m['input'] == 'efs' and m['name'] in ('efs-pki-type-1', 'efs-lists-overlap', 'efs-version-4-metadata-v2',
                                             'efs-thumbprint-100-bytes', 'efs-gap-12-bytes',
                                             'efs-display-name-unterminated'):
        open(f"{cm}/{m['name']}.efs", 'wb').write(data)
    if m['input'] == 'robs' and m['name'] in ('robs-offsets-backwards', 'robs-vdl-exceeds-size',
                                              'robs-block-sizes-mismatch'):
        open(f"{cr}/{m['name']}.robs", 'wb').write(bytes([0]) + data)
    if m['input'] == 'efsRaw':
        open(f"{cr}/{m['name']}.efs_raw", 'wb').write(bytes([0x31]) + data)
# A segment of 10000 bytes in three 4 KiB data units, the middle one a hole (DataBlockSizes 4096, 0, 2048).
src = open(f"{cr}/aes256-v2-size512.robs", 'rb').read()[1:]
name = ':\x00:\x00$\x00D\x00A\x00T\x00A\x00'.encode('latin1')
prefix = src[:src.index(name) + len(name)]
h = bytearray(0x30)
h[4:12] = 'GURE'.encode('utf-16-le')
sizes = [4096, 0, 2048]
struct.pack_into('<QIIIHBBBBH', h, 0x10, 8192, 0x1F0, 10000, 9000, 0, 12, 12, 12, 1, len(sizes))
h = bytes(h) + struct.pack('<3I', *sizes) + b'EXTD' + struct.pack('<III', 16, 1, 0)
seg = bytearray(h + bytes(0x200 - len(h)) + bytes((i * 7) & 255 for i in range(sum(sizes))))
struct.pack_into('<I', seg, 0, len(seg))
open(f"{cr}/synthetic-sparse-blocks.robs", 'wb').write(bytes([0x20]) + prefix + bytes(seg))
PY
ls "$here/Corpus/FuzzWindowsMetadata" "$here/Corpus/FuzzWindowsRawStream" | wc -l
