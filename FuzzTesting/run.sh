#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the libFuzzer targets and runs each for SECONDS on a temporary copy of its seed corpus.
#
#   FuzzTesting/run.sh SECONDS [TARGET…]       (default: every target, one after the other)
#
# Replays each target's known crashers in FailCases/ first. Exits non-zero if any target crashes, times out,
# runs out of memory or leaks; the input is kept in $FUZZ_ARTIFACTS (default FuzzTesting/.build/fuzz-artifacts/).
# Prints the executions of each target, taken from libFuzzer's final stats. The committed corpus is never written to.
#
# Environment:
#   FUZZ_CONFIG=debug|release   build configuration (default debug)
#   FUZZ_SKIP_BUILD=1           use the binaries already built
#   FUZZ_ARTIFACTS=DIR          where crashing inputs and logs go
#   FUZZ_KEEP_CORPUS=DIR        copy each target's grown corpus to DIR/<Target>/ at the end (for a long run)
#   FUZZ_ARGS="…"               extra libFuzzer flags (e.g. "-seed=1"; not -jobs, whose stats go to fuzz-N.log)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
all_targets=(FuzzRawStream FuzzFileHeader FuzzFileMetadata FuzzKeyFiles FuzzArchive FuzzPKCS12 FuzzWindowsMetadata
    FuzzWindowsRawStream FuzzWriteJournal)

usage() { echo "usage: $0 SECONDS [TARGET…]   targets: ${all_targets[*]}" >&2; exit 2; }
[[ $# -ge 1 && $1 =~ ^[0-9]+$ && $1 -gt 0 ]] || usage
seconds=$1
shift
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=("${all_targets[@]}")

# Per-target limits. max_len: the largest input worth mutating (seeds are at most ~23 KB for raw streams, ~10 KB
# for archives and ~3 KB otherwise). timeout: seconds for one input before it counts as a hang; key files allow PBKDF2 at
# PrivateKeyFile.maximumIterations (10 000 000 rounds), which takes tens of seconds in a debug ASan build; so do
# PKCS#12 files (PKCS12File.maximumIterations per KDF, maximumTotalIterations per file).
max_len() {
    case $1 in
        FuzzRawStream | FuzzArchive | FuzzWindowsRawStream) echo 65536 ;;
        FuzzWindowsMetadata) echo 16384 ;;
        FuzzFileHeader | FuzzFileMetadata | FuzzKeyFiles | FuzzPKCS12) echo 8192 ;;
        FuzzWriteJournal) echo 16384 ;;
        *) echo "run.sh: unknown target $1" >&2; usage ;;
    esac
}
timeout_for() { case $1 in FuzzKeyFiles | FuzzPKCS12) echo 120 ;; *) echo 10 ;; esac; }
for t in "${targets[@]}"; do max_len "$t" >/dev/null; done

config=${FUZZ_CONFIG:-debug}
artifacts=${FUZZ_ARTIFACTS:-$here/.build/fuzz-artifacts}
mkdir -p "$artifacts"
artifacts=$(cd "$artifacts" && pwd)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [[ -z ${FUZZ_SKIP_BUILD:-} ]]; then
    for t in "${targets[@]}"; do
        # One product at a time: `swift build` without --product would also build every product of the main
        # package, which does not concern us. ld.gold's "Cannot export local symbol '__asan_…'" warnings are noise.
        rc=0
        swift build -c "$config" --package-path "$here" --product "$t" \
            -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library >"$work/build.log" 2>&1 || rc=$?
        grep -v "Cannot export local symbol" "$work/build.log" || true
        [[ $rc -eq 0 ]] || { echo "run.sh: building $t failed (exit $rc)" >&2; exit 3; }
    done
fi
bin=$(swift build -c "$config" --package-path "$here" --show-bin-path)

# Let a Swift runtime trap go straight to libFuzzer's deadly-signal handler: the Swift backtracer and ASan get in
# each other's way (the backtracer's memory reads trip ASan and hide the real report).
export SWIFT_BACKTRACE=enable=no

status=0
summary=()
for t in "${targets[@]}"; do
    [[ -x $bin/$t ]] || { echo "run.sh: $bin/$t is missing (build it, or unset FUZZ_SKIP_BUILD)" >&2; exit 3; }
    corpus="$work/$t"
    mkdir -p "$corpus"
    cp "$here/Corpus/$t/"* "$corpus/"
    log="$artifacts/$t.log"
    # Known crashers first (FailCases/<Target>-*, each also a named regression test): libFuzzer runs each file once.
    shopt -s nullglob
    fails=("$here/FailCases/$t"-*)
    shopt -u nullglob
    if [[ ${#fails[@]} -gt 0 ]]; then
        if ! "$bin/$t" "${fails[@]}" >"$artifacts/$t-failcases.log" 2>&1; then
            status=1
            echo "!! $t FAILED on a known crasher in FailCases/ (log $artifacts/$t-failcases.log)"
            summary+=("$(printf '%-17s FAILED on FailCases/' "$t")")
            continue
        fi
        echo "== $t: ${#fails[@]} known crasher(s) in FailCases/ pass"
    fi
    echo "== $t: ${seconds}s, max_len $(max_len "$t"), log $log"
    rc=0
    # -malloc_limit_mb: one allocation above 256 MB from an input of at most 64 KB is a bug (every format has
    # named maximums far below that); -rss_limit_mb bounds the whole process.
    # shellcheck disable=SC2086
    "$bin/$t" "$corpus" -max_total_time="$seconds" -max_len="$(max_len "$t")" -timeout="$(timeout_for "$t")" \
        -rss_limit_mb=2048 -malloc_limit_mb=256 -print_final_stats=1 -dict="$here/Dictionaries/$t.dict" \
        -artifact_prefix="$artifacts/$t-" ${FUZZ_ARGS:-} >"$log" 2>&1 || rc=$?
    execs=$(grep -E '^stat::number_of_executed_units:' "$log" | awk '{s += $2} END {print s + 0}')
    rate=$(grep -E '^stat::average_exec_per_sec:' "$log" | awk '{s += $2} END {print s + 0}')
    units=$(find "$corpus" -type f | wc -l)
    if [[ $rc -ne 0 ]]; then
        status=1
        echo "!! $t FAILED (exit $rc). Last lines of $log:"
        grep -E '^==[0-9]+==ERROR|^SUMMARY|Fatal error|fuzz invariant|^artifact_prefix|Test unit written|ALARM|out-of-memory|malloc\(' "$log" | head -20 || true
        tail -5 "$log"
    fi
    line=$(printf '%-17s %4ss  %12s execs  %8s exec/s  %5s corpus units  %s' "$t" "$seconds" "$execs" "$rate" "$units" \
        "$([[ $rc -eq 0 ]] && echo ok || echo "FAILED (exit $rc)")")
    echo "$line"
    summary+=("$line")
    if [[ -n ${FUZZ_KEEP_CORPUS:-} ]]; then
        mkdir -p "$FUZZ_KEEP_CORPUS/$t"
        cp "$corpus/"* "$FUZZ_KEEP_CORPUS/$t/"
    fi
done
echo
echo "== summary (FUZZ_CONFIG=$config)"
printf '%s\n' "${summary[@]}"
exit $status
