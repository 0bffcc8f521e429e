#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Regenerates the FuzzPKCS12 seed corpus in Corpus/FuzzPKCS12/ from PKCS#12 files made with openssl (passphrase
# "fuzz", one iteration, so MACs verify and contents decrypt quickly) and from the frozen test fixtures of
# Tests/EFSCoreTests/Vectors/PKCS12/ (prefixed with a byte that picks their passphrase).
#   bash FuzzTesting/make-corpus-pkcs12.sh
# Needs openssl 3 with its legacy provider.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
fixtures="$here/../Tests/EFSCoreTests/Vectors/PKCS12"
corpus="$here/Corpus/FuzzPKCS12"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rm -rf "$corpus"
mkdir -p "$corpus"

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/rsa.key" -out "$work/rsa.crt" -days 3650 -subj /CN=fuzz 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/ec.key"
openssl req -x509 -key "$work/ec.key" -out "$work/ec.crt" -days 3650 -subj /CN=fuzz-ec
legacy=(-provider legacy -provider default)
export_pfx() { # name key cert pass args…
    local name=$1 key=$2 cert=$3 pass=$4
    shift 4
    openssl pkcs12 -export -inkey "$key" -in "$cert" -name fuzz -passout "pass:$pass" -iter 1 \
        -out "$corpus/$name" "$@"
}
export_pfx pbes2-aes256-sha256mac.pfx "$work/ec.key" "$work/ec.crt" fuzz
export_pfx legacy-3des-rc240-sha1mac.pfx "$work/ec.key" "$work/ec.crt" fuzz -legacy "${legacy[@]}"
export_pfx 2des-rc2128.pfx "$work/ec.key" "$work/ec.crt" fuzz -keypbe PBE-SHA1-2DES -certpbe PBE-SHA1-RC2-128 "${legacy[@]}"
export_pfx pbes2-3des-aes128.pfx "$work/ec.key" "$work/ec.crt" fuzz -keypbe des-ede3-cbc -certpbe aes-128-cbc -macalg sha512
export_pfx nomac-pbes2.pfx "$work/ec.key" "$work/ec.crt" fuzz -nomac
export_pfx nomac-legacy.pfx "$work/ec.key" "$work/ec.crt" fuzz -nomac -legacy "${legacy[@]}"
export_pfx nomac-plain.pfx "$work/ec.key" "$work/ec.crt" fuzz -nomac -keypbe NONE -certpbe NONE
export_pfx nomac-plain-rsa.pfx "$work/rsa.key" "$work/rsa.crt" fuzz -nomac -keypbe NONE -certpbe NONE
export_pfx empty.pfx "$work/ec.key" "$work/ec.crt" "" -legacy "${legacy[@]}"
{ printf '\xff'; cat "$corpus/empty.pfx"; } >"$corpus/empty.ffpfx"
rm "$corpus/empty.pfx"
{ echo "-----BEGIN PKCS12-----"; base64 -w 64 "$corpus/nomac-plain.pfx"; echo "-----END PKCS12-----"; } >"$corpus/nomac-plain.pem"

# Frozen fixtures: BER and nested bags, PBMAC1, the null password. The first byte picks the passphrase:
# 0xFE "correct horse", 0xFD "1234", 0xFF empty (see FuzzPKCS12.swift).
for f in custom-two-keys-ber custom-pbmac1; do { printf '\xfe'; cat "$fixtures/$f.pfx"; } >"$corpus/$f.fepfx"; done
{ printf '\xfd'; cat "$fixtures/rfc9579-a1.pfx"; } >"$corpus/rfc9579-a1.fdpfx"
{ printf '\xff'; cat "$fixtures/windows-style-null-password.pfx"; } >"$corpus/windows-style-null-password.ffpfx"
ls "$corpus"
