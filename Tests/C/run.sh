#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# This file is part of swift-efs. See LICENSE for details.
#
# Compiles Tests/C/efs_backup_example.c against libefsapi.so and runs it in a fresh EFS volume.
#
# Run `swift build` first: this script builds nothing with swift. It needs `cc` and `openssl`.
# Set EFS_C_KEEP=1 to keep the temporary directory.
set -euo pipefail
cd "$(dirname "$0")/../.."

EFS=$PWD/.build/debug/efs
for f in "$EFS" "$PWD/.build/debug/libefsapi.so"; do
    [[ -e $f ]] || { echo "run.sh: $f is missing: run 'swift build' first" >&2; exit 2; }
done
command -v openssl >/dev/null || { echo "run.sh: openssl is needed" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/efs-c-example.XXXXXX")
if [[ ${EFS_C_KEEP:-} == 1 ]]; then echo "run.sh: keeping $work"; else trap 'rm -rf "$work"' EXIT; fi
unset EFS_PASSPHRASE_FILE XDG_DATA_HOME

# Three key stores: the user (alice), another user (bob) and a recovery agent.
efs_as() { local who=$1; shift; EFS_HOME=$work/$who "$EFS" "$@"; }
alice=$(efs_as alice key new --no-passphrase --name alice)
bob=$(efs_as bob key new --no-passphrase --name bob)
agent=$(efs_as agent key new --recovery-agent --no-passphrase --name "recovery agent")
efs_as alice key export "$alice" --cert -o "$work/alice.pem"
efs_as bob key export "$bob" --cert -o "$work/bob.pem"
efs_as agent key export "$agent" --cert -o "$work/agent.pem"
for who in alice bob; do openssl x509 -in "$work/$who.pem" -outform der -out "$work/$who.der"; done

# The volume, with the agent as its recovery policy, and a passphrase for SetUserFileEncryptionKey(NULL).
mkdir "$work/volume"
efs_as alice init "$work/volume" --recovery-agent "$work/agent.pem"
mkdir "$work/volume/backup-test"
printf 'correct horse battery staple\n' >"$work/passphrase"
chmod 600 "$work/passphrase"

cc Tests/C/efs_backup_example.c -I Sources/CEFSWin32/include -L .build/debug -lefsapi -Wl,-rpath,$PWD/.build/debug -o "$work/efs_backup_example"

EFS_HOME=$work/alice EFS_EXAMPLE_PASSPHRASE_FILE=$work/passphrase \
    "$work/efs_backup_example" "$work/volume/backup-test" "$work/alice.der" "$work/bob.der"
