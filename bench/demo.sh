#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Shows efs working end to end in a throw-away directory: keys, a volume with a recovery agent, encrypt, cat,
# users, recovery, decrypt.   bash bench/demo.sh [path/to/efs]
set -euo pipefail
EFS=${1:-.build/release/efs}
EFS=$(cd "$(dirname "$EFS")" && pwd)/$(basename "$EFS")
work=$(mktemp -d /tmp/efs-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
step() { printf '\n$ %s\n' "$*"; "$@"; }
export EFS_HOME="$work/alice-home"
step "$EFS" key new --name alice --no-passphrase
EFS_HOME="$work/ra-home" "$EFS" key new --name "recovery agent" --recovery-agent --no-passphrase > ra.thumbprint
EFS_HOME="$work/ra-home" "$EFS" key export "$(cat ra.thumbprint)" --cert -o ra.pem
mkdir vault
step "$EFS" init vault --recovery-agent ra.pem
echo "quarterly numbers: 42" > vault/report.txt
step "$EFS" status vault/report.txt
step "$EFS" encrypt vault/report.txt
step "$EFS" status vault/report.txt
printf '\n$ grep -c quarterly vault/report.txt   # the backing file holds no plaintext\n'
grep -c quarterly vault/report.txt || true
step "$EFS" cat vault/report.txt
step "$EFS" users vault/report.txt
printf '\n$ EFS_HOME=ra-home efs cat vault/report.txt   # the recovery agent can read it too\n'
EFS_HOME="$work/ra-home" "$EFS" cat vault/report.txt
step "$EFS" decrypt vault/report.txt
step cat vault/report.txt
