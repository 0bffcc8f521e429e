#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# This file is part of swift-efs. See LICENSE for details.
#
# bench/mount/run.sh: `efs mount` against gocryptfs and plain ext4, side by side in one run (issue 4).
# See bench/README.md ("efs mount benchmark") for what each row measures. Run as root (drop_caches, FUSE).

set -uo pipefail

usage() {
    cat <<'EOF'
usage: bench/mount/run.sh [options]

Measures plain ext4, gocryptfs and `efs mount` (a directory marked encrypted) in one run:
  1  sequential write of SIZE from a file in the page cache, ending with fsync (dd bs=1M conv=fsync)   MB/s
  2  sequential read of that file with a cold page cache (drop_caches first)                          MB/s
  3  4 KiB random reads, then 4 KiB random writes, O_DIRECT, on a RAND_SIZE file for SECONDS (fio)     ops/s
  4  untar of a source tree (tar xf, then sync, both timed)                                             s

options:
  --size SIZE          sequential file size (default 1G; K/M/G are powers of 1024)
  --rand-size SIZE     random-I/O file size (default 256M)
  --rand-seconds S     length of each random-I/O run (default 30)
  --tar FILE           tarball to untar (.tar, .tar.xz, .tar.gz, .tar.zst; default /usr/src/linux-source-6.1.tar.xz,
                       decompressed once into the scratch directory outside the timing)
  --quick              smoke run: --size 64M --rand-size 64M --rand-seconds 5, and a tar of this repository
                       (explicit --size, --rand-size, --rand-seconds and --tar still apply)
  --scratch DIR        where to work (default /work/bench-tmp, else /var/tmp); must not be a tmpfs. A fresh
                       mount-bench.XXXXXX directory is made in it and removed at the end
  --targets LIST       comma-separated subset of ext4,gocryptfs,efs (default all three)
  --rows LIST          comma-separated subset of 1,2,3,4 (default all; 2 needs 1's file, made untimed if 1 is skipped)
  --efs PATH           the efs binary (default REPO/.build/release/efs)
  --build              run `swift build -c release --product efs` in the repository first
  --recovery-agent     give the EFS volume a recovery agent (files then carry a DRF entry too)
  --no-verify          skip the untimed checks (cmp of the sequential file, diff -r of the untarred tree)
  --no-warm            skip touching fresh pages before the write rows (see README: balloon free page reporting)
  --perf DIR           record `perf record -g` of the efs daemon during each efs row into DIR (kept), with reports
  --keep               keep the scratch directory (everything is still unmounted)
  --io-uring WHEN      efs mount --io-uring WHEN: auto (default), on or off (the kernel's fuse.enable_uring must be on for io_uring)
  -h, --help           this text
EOF
}

# ---------------------------------------------------------------------------------------------------------------
# Options

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SIZE_ARG=""
RAND_SIZE_ARG=""
RAND_SECONDS=""
TAR_ARG=""
QUICK=0
SCRATCH_BASE=""
TARGETS_ARG="ext4,gocryptfs,efs"
ROWS_ARG="1,2,3,4"
EFS_BIN="$REPO/.build/release/efs"
BUILD=0
WITH_RA=0
VERIFY=1
WARM=1
PERF_DIR=""
KEEP=0
IO_URING=auto

die() { echo "run.sh: $*" >&2; exit 2; }
need_arg() { [[ $# -ge 2 && -n $2 ]] || die "$1 needs a value"; }

while [[ $# -gt 0 ]]; do
    case $1 in
        --size) need_arg "$@"; SIZE_ARG=$2; shift 2 ;;
        --rand-size) need_arg "$@"; RAND_SIZE_ARG=$2; shift 2 ;;
        --rand-seconds) need_arg "$@"; RAND_SECONDS=$2; shift 2 ;;
        --tar) need_arg "$@"; TAR_ARG=$2; shift 2 ;;
        --quick) QUICK=1; shift ;;
        --scratch) need_arg "$@"; SCRATCH_BASE=$2; shift 2 ;;
        --targets) need_arg "$@"; TARGETS_ARG=$2; shift 2 ;;
        --rows) need_arg "$@"; ROWS_ARG=$2; shift 2 ;;
        --efs) need_arg "$@"; EFS_BIN=$2; shift 2 ;;
        --build) BUILD=1; shift ;;
        --recovery-agent) WITH_RA=1; shift ;;
        --no-verify) VERIFY=0; shift ;;
        --no-warm) WARM=0; shift ;;
        --perf) need_arg "$@"; PERF_DIR=$2; shift 2 ;;
        --keep) KEEP=1; shift ;;
        --io-uring) need_arg "$@"; IO_URING=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown option $1" ;;
    esac
done

# Defaults; --quick changes them, and explicit options win over both.
if [[ $QUICK == 1 ]]; then
    : "${SIZE_ARG:=64M}" "${RAND_SIZE_ARG:=64M}" "${RAND_SECONDS:=5}"
else
    : "${SIZE_ARG:=1G}" "${RAND_SIZE_ARG:=256M}" "${RAND_SECONDS:=30}"
fi

to_bytes() { # 1G, 256M, 4096, 64K -> bytes (powers of 1024)
    local v=$1 n u
    [[ $v =~ ^([0-9]+)([KkMmGgTt]?)(i?B?)$ ]] || die "bad size '$v'"
    n=${BASH_REMATCH[1]}; u=${BASH_REMATCH[2]^^}
    case $u in K) n=$((n << 10)) ;; M) n=$((n << 20)) ;; G) n=$((n << 30)) ;; T) n=$((n << 40)) ;; esac
    echo "$n"
}
SIZE=$(to_bytes "$SIZE_ARG") || exit 2
RAND_SIZE=$(to_bytes "$RAND_SIZE_ARG") || exit 2
(( SIZE >= 1048576 && SIZE % 1048576 == 0 )) || die "--size must be a whole number of MiB"
(( RAND_SIZE >= 1048576 && RAND_SIZE % 1048576 == 0 )) || die "--rand-size must be a whole number of MiB"
[[ $RAND_SECONDS =~ ^[0-9]+$ && $RAND_SECONDS -ge 1 ]] || die "--rand-seconds must be a positive integer"

declare -A WANT_TARGET=() WANT_ROW=()
IFS=, read -ra _t <<<"$TARGETS_ARG"
for t in "${_t[@]}"; do
    case $t in ext4|gocryptfs|efs) WANT_TARGET[$t]=1 ;; *) die "unknown target '$t'" ;; esac
done
TARGETS=()
for t in ext4 gocryptfs efs; do [[ -n ${WANT_TARGET[$t]:-} ]] && TARGETS+=("$t"); done
IFS=, read -ra _r <<<"$ROWS_ARG"
for r in "${_r[@]}"; do
    case $r in 1|2|3|4) WANT_ROW[$r]=1 ;; *) die "unknown row '$r'" ;; esac
done
row_on() { [[ -n ${WANT_ROW[$1]:-} ]]; }

[[ $(id -u) == 0 ]] || die "run as root (drop_caches and the FUSE mounts need it)"

human() { # bytes -> 1 GiB / 64 MiB
    local b=$1
    if (( b % (1 << 30) == 0 )); then echo "$((b >> 30)) GiB"; else echo "$((b >> 20)) MiB"; fi
}

# ---------------------------------------------------------------------------------------------------------------
# Tools

install_pkg() { # install_pkg COMMAND PACKAGE
    command -v "$1" >/dev/null 2>&1 && return 0
    echo "installing $2 (apt-get) ..."
    DEBIAN_FRONTEND=noninteractive apt-get install -y "$2" >/dev/null 2>&1 || die "'$1' is missing and 'apt-get install -y $2' failed"
}
install_pkg fusermount3 fuse3
install_pkg fio fio
[[ -n ${WANT_TARGET[gocryptfs]:-} ]] && install_pkg gocryptfs gocryptfs
if row_on 4 && [[ -z $TAR_ARG && $QUICK == 0 && ! -e /usr/src/linux-source-6.1.tar.xz ]]; then
    echo "installing linux-source-6.1 (apt-get) ..."
    DEBIAN_FRONTEND=noninteractive apt-get install -y linux-source-6.1 >/dev/null 2>&1 \
        || echo "warning: linux-source-6.1 is not installable; using the largest tarball in /usr/src" >&2
fi
[[ -n $PERF_DIR ]] && { command -v perf >/dev/null || die "--perf needs perf (apt-get install linux-perf)"; }

if [[ $BUILD == 1 ]]; then
    echo "building efs (swift build -c release --product efs) ..."
    (cd "$REPO" && swift build -c release --product efs) || die "the release build failed"
fi
if [[ -n ${WANT_TARGET[efs]:-} ]]; then
    [[ -x $EFS_BIN ]] || die "no efs binary at $EFS_BIN: build it with 'swift build -c release --product efs' (or --build)"
    newest=$(find "$REPO/Sources" "$REPO/Package.swift" -type f -newer "$EFS_BIN" 2>/dev/null | head -3)
    if [[ -n $newest ]]; then
        echo "warning: $EFS_BIN is older than some sources (e.g. ${newest//$'\n'/, }); rebuild with --build" >&2
    fi
fi

# ---------------------------------------------------------------------------------------------------------------
# Scratch directory and cleanup

if [[ -z $SCRATCH_BASE ]]; then
    if [[ -d /work ]]; then SCRATCH_BASE=/work/bench-tmp; else SCRATCH_BASE=/var/tmp; fi
fi
mkdir -p "$SCRATCH_BASE" || die "cannot create $SCRATCH_BASE"
MADE_BASE=0
[[ -z $(ls -A "$SCRATCH_BASE" 2>/dev/null) ]] && MADE_BASE=1
fstype=$(df --output=fstype "$SCRATCH_BASE" | tail -1 | tr -d ' ')
[[ $fstype == tmpfs || $fstype == ramfs ]] && die "$SCRATCH_BASE is on $fstype: pick a disk with --scratch"
S=$(mktemp -d "$SCRATCH_BASE/mount-bench.XXXXXX") || die "mktemp failed"

MOUNTS=()      # mount points to unmount on exit
DAEMONS=()     # daemon PIDs (started by this script) to reap on exit
CHILD=""       # the command being measured, if any
PERF_PID=""

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    [[ -n $CHILD ]] && kill -TERM "$CHILD" 2>/dev/null && wait "$CHILD" 2>/dev/null
    [[ -n $PERF_PID ]] && kill -INT "$PERF_PID" 2>/dev/null && wait "$PERF_PID" 2>/dev/null
    local m pid i left=0
    for m in "${MOUNTS[@]}"; do
        if mountpoint -q "$m" 2>/dev/null; then
            fusermount3 -u "$m" 2>/dev/null || { sleep 1; fusermount3 -u "$m" 2>/dev/null; } || fusermount3 -uz "$m"
        fi
    done
    for pid in "${DAEMONS[@]}"; do
        for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            echo "run.sh: daemon $pid did not exit after the unmount; sending SIGTERM" >&3
            kill -TERM "$pid" 2>/dev/null; sleep 2; kill -KILL "$pid" 2>/dev/null
        fi
        wait "$pid" 2>/dev/null
    done
    for m in "${MOUNTS[@]}"; do mountpoint -q "$m" 2>/dev/null && left=1; done
    if [[ -n ${S:-} && -d $S ]]; then
        if [[ $left == 1 ]]; then
            echo "run.sh: a mount is still in place under $S; not removing it" >&3
        elif [[ $KEEP == 1 ]]; then
            echo "scratch kept: $S" >&3
        else
            rm -rf --one-file-system "$S"
            [[ $MADE_BASE == 1 ]] && rmdir "$SCRATCH_BASE" 2>/dev/null
        fi
    fi
    exit "$rc"
}
exec 3>&2   # the script's standard error, for messages from traps that fire inside a redirected command
trap cleanup EXIT
trap 'echo "run.sh: interrupted" >&3; exit 130' INT
trap 'echo "run.sh: terminated" >&3; exit 143' TERM

# Runs a command as a waited-for child (so INT/TERM interrupt the wait, and the cleanup can kill it).
run_child() {
    "$@" &
    CHILD=$!
    wait "$CHILD"
    local rc=$?
    CHILD=""
    return $rc
}

wait_mounted() { # wait_mounted MOUNTPOINT PID NAME LOG
    local i
    for ((i = 0; i < 300; i++)); do
        mountpoint -q "$1" && return 0
        kill -0 "$2" 2>/dev/null || { echo "--- $4:"; cat "$4"; die "$3 exited before mounting"; }
        sleep 0.02
    done
    die "$3 did not mount within 6 s"
}

# ---------------------------------------------------------------------------------------------------------------
# CPU accounting: /proc/stat deltas, our own children's and the daemons' CPU time

HZ=$(getconf CLK_TCK)
NCPU=$(nproc)
cpu_busy_total() { # -> "busy total" jiffies
    awk '/^cpu /{busy=$2+$3+$4+$7+$8+$9; total=busy+$5+$6; print busy, total, $6}' /proc/stat
}
proc_cpu() { # PID -> utime+stime jiffies (own), or cutime+cstime with "children"
    local f
    f=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
    f=${f##*) }
    # after "pid (comm) ", fields start at 3 (state): utime=14 stime=15 cutime=16 cstime=17 -> index 11..14 here
    read -ra a <<<"$f"
    if [[ ${2:-} == children ]]; then echo $((a[13] + a[14])); else echo $((a[11] + a[12])); fi
}

# measure TARGET COMMAND... : runs the command, sets ELAPSED (s), DCPU (daemon CPU s), OTHERS (% of machine),
# IOWAIT (% of machine), CMDCPU (s)
ELAPSED=0 DCPU=0 OTHERS=0 IOWAIT=0 CMDCPU=0
measure() {
    local target=$1; shift
    local dpid=${DAEMON_PID[$target]:-}
    local b0 t0 w0 b1 t1 w1 c0 c1 d0=0 d1=0 s0 s1 rc
    read -r b0 t0 w0 < <(cpu_busy_total)
    c0=$(proc_cpu $$ children)
    [[ -n $dpid ]] && d0=$(proc_cpu "$dpid")
    s0=$EPOCHREALTIME
    run_child "$@"; rc=$?
    s1=$EPOCHREALTIME
    [[ -n $dpid ]] && d1=$(proc_cpu "$dpid")
    c1=$(proc_cpu $$ children)
    read -r b1 t1 w1 < <(cpu_busy_total)
    read -r ELAPSED DCPU CMDCPU OTHERS IOWAIT < <(awk -v s0="$s0" -v s1="$s1" -v b="$((b1 - b0))" -v t="$((t1 - t0))" \
        -v w="$((w1 - w0))" -v c="$((c1 - c0))" -v d="$((d1 - d0))" -v hz="$HZ" 'BEGIN {
            o = b - c - d; if (o < 0) o = 0; if (t <= 0) t = 1
            printf "%.3f %.2f %.2f %.0f %.0f\n", s1 - s0, d / hz, c / hz, 100 * o / t, 100 * w / t }')
    return $rc
}

# ---------------------------------------------------------------------------------------------------------------
# Machine facts

load() { cut -d' ' -f1-3 /proc/loadavg; }
echo "== efs mount benchmark (issue 4) — $(date -Is)"
echo "machine: $NCPU cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(awk '/MemTotal/{printf "%.1f GiB RAM", $2/1048576}' /proc/meminfo), kernel $(uname -r)"
echo "scratch: $S ($fstype on $(df --output=source "$S" | tail -1), options $(findmnt -no OPTIONS -T "$S"))"
echo "load average at start: $(load)"
echo "busiest processes at start:"
top -bn1 -o %CPU | sed -n '8,12p' | awk '{printf "  %5s%% %s\n", $9, $12}'
echo "tools: $(gocryptfs --version 2>/dev/null | cut -d';' -f1), $(fio --version), $(tar --version | head -1)"
if [[ -n ${WANT_TARGET[efs]:-} ]]; then
    echo "efs: $EFS_BIN ($("$EFS_BIN" --version), built $(date -r "$EFS_BIN" '+%F %T'), repository at $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null)$( [[ -n $(git -C "$REPO" status --porcelain -- Sources Package.swift 2>/dev/null) ]] && echo ' + uncommitted changes'))"
fi
echo "sizes: sequential $(human "$SIZE"), random $(human "$RAND_SIZE") for ${RAND_SECONDS} s per direction"
echo "FUSE over io_uring: kernel fuse.enable_uring=$(cat /sys/module/fuse/parameters/enable_uring 2>/dev/null || echo absent), efs mount --io-uring $IO_URING"
echo

# ---------------------------------------------------------------------------------------------------------------
# Set up the three targets

declare -A DIR=() DAEMON_PID=() MOUNT_START=()
SRC="$S/src.bin"
echo "setup: writing $(human "$((SIZE > RAND_SIZE ? SIZE : RAND_SIZE))") of random data to $SRC ..."
src_mib=$(( (SIZE > RAND_SIZE ? SIZE : RAND_SIZE) >> 20 ))
dd if=/dev/urandom of="$SRC" bs=1M count="$src_mib" iflag=fullblock status=none || die "cannot write $SRC"

for t in "${TARGETS[@]}"; do
    case $t in
    ext4)
        mkdir -p "$S/ext4/data"
        DIR[ext4]="$S/ext4/data"
        ;;
    gocryptfs)
        mkdir -p "$S/gocryptfs/cipher" "$S/gocryptfs/mnt"
        echo "bench-passphrase" >"$S/gocryptfs/passfile"
        # -scryptn 10 only makes the passphrase KDF cheap at mount (as gocryptfs' own benchmark.bash); the data
        # path is the default: AES-256-GCM, 4 KiB blocks, encrypted names.
        gocryptfs -init -q -scryptn 10 -passfile "$S/gocryptfs/passfile" "$S/gocryptfs/cipher" >"$S/gocryptfs/init.log" 2>&1 \
            || { cat "$S/gocryptfs/init.log"; die "gocryptfs -init failed"; }
        s0=$EPOCHREALTIME
        gocryptfs -fg -q -passfile "$S/gocryptfs/passfile" "$S/gocryptfs/cipher" "$S/gocryptfs/mnt" >"$S/gocryptfs/mount.log" 2>&1 &
        DAEMON_PID[gocryptfs]=$!
        DAEMONS+=("$!")
        MOUNTS+=("$S/gocryptfs/mnt")
        wait_mounted "$S/gocryptfs/mnt" "${DAEMON_PID[gocryptfs]}" gocryptfs "$S/gocryptfs/mount.log"
        MOUNT_START[gocryptfs]=$(awk -v a="$s0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.2f", b-a}')
        DIR[gocryptfs]="$S/gocryptfs/mnt"
        ;;
    efs)
        mkdir -p "$S/efs/home" "$S/efs/vol" "$S/efs/mnt"
        export EFS_HOME="$S/efs/home"
        unset EFS_PASSPHRASE_FILE
        "$EFS_BIN" key new --no-passphrase --name bench >/dev/null || die "efs key new failed"
        ra=()
        if [[ $WITH_RA == 1 ]]; then
            thumb=$("$EFS_BIN" key new --recovery-agent --no-passphrase --name bench-ra | grep -oE '[0-9A-Fa-f]{4}( ?[0-9A-Fa-f]{4}){9}' | head -1 | tr -d ' ')
            "$EFS_BIN" key export "$thumb" --cert -o "$S/efs/ra.pem" || die "efs key export failed"
            ra=(--recovery-agent "$S/efs/ra.pem")
        fi
        "$EFS_BIN" init "$S/efs/vol" "${ra[@]}" >/dev/null || die "efs init failed"
        mkdir "$S/efs/vol/secret"
        "$EFS_BIN" encrypt "$S/efs/vol/secret" || die "efs encrypt of the directory failed"
        s0=$EPOCHREALTIME
        "$EFS_BIN" mount --foreground --io-uring "$IO_URING" "$S/efs/vol" "$S/efs/mnt" >"$S/efs/mount.log" 2>&1 &
        DAEMON_PID[efs]=$!
        DAEMONS+=("$!")
        MOUNTS+=("$S/efs/mnt")
        wait_mounted "$S/efs/mnt" "${DAEMON_PID[efs]}" "efs mount" "$S/efs/mount.log"
        MOUNT_START[efs]=$(awk -v a="$s0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.2f", b-a}')
        DIR[efs]="$S/efs/mnt/secret"
        [[ -d ${DIR[efs]} ]] || die "the encrypted directory does not show in the mount"
        ;;
    esac
done
for t in gocryptfs efs; do
    [[ -n ${MOUNT_START[$t]:-} ]] || continue
    echo "setup: $t mounted in ${MOUNT_START[$t]} s (pid ${DAEMON_PID[$t]}, $(awk '/Max open files/{print "open-file limit " $4 "/" $5}' "/proc/${DAEMON_PID[$t]}/limits"))"
done
[[ $WITH_RA == 1 ]] && echo "setup: the EFS volume has a recovery agent"

# The untar source
TAR=""
TAR_DESC=""
if row_on 4; then
    if [[ -n $TAR_ARG ]]; then
        TAR_IN=$TAR_ARG
    elif [[ $QUICK == 1 ]]; then
        TAR_IN=""
    elif [[ -e /usr/src/linux-source-6.1.tar.xz ]]; then
        TAR_IN=/usr/src/linux-source-6.1.tar.xz
    else
        TAR_IN=$(ls -S /usr/src/*.tar* 2>/dev/null | head -1)
        [[ -n $TAR_IN ]] || die "no tarball: install linux-source-6.1 or give --tar FILE"
    fi
    TAR="$S/tree.tar"
    if [[ -z $TAR_IN ]]; then
        # Without the test fixtures: they hold a volume's .efs directory and .efs-dir markers, names the mount
        # refuses or treats specially.
        if git -C "$REPO" archive --format=tar HEAD -- . ':(exclude)Tests/EFSTests/Fixtures' \
            ':(exclude,glob)**/.efs/**' ':(exclude,glob)**/.efs-dir' >"$TAR" 2>/dev/null; then
            TAR_DESC="swift-efs at $(git -C "$REPO" rev-parse --short HEAD) (git archive, no test fixtures)"
        else
            tar cf "$TAR" -C "$REPO" --exclude=.build --exclude=Fixtures Sources Tests Documentation || die "cannot tar the repository"
            TAR_DESC="swift-efs Sources, Tests (no fixtures), Documentation"
        fi
    else
        [[ -r $TAR_IN ]] || die "cannot read $TAR_IN"
        echo "setup: decompressing $TAR_IN into the scratch directory (not timed) ..."
        case $TAR_IN in
            *.tar.xz|*.txz) xz -T0 -dc "$TAR_IN" >"$TAR" ;;
            *.tar.gz|*.tgz) gzip -dc "$TAR_IN" >"$TAR" ;;
            *.tar.zst) zstd -dc "$TAR_IN" >"$TAR" ;;
            *.tar.bz2) bzip2 -dc "$TAR_IN" >"$TAR" ;;
            *.tar) cp "$TAR_IN" "$TAR" ;;
            *) die "unknown tarball type: $TAR_IN" ;;
        esac || die "cannot decompress $TAR_IN"
        TAR_DESC=$(basename "$TAR_IN")
    fi
    TAR_ENTRIES=$(tar tf "$TAR" | wc -l)
    TAR_BYTES=$(stat -c %s "$TAR")
    echo "setup: untar source $TAR_DESC: $TAR_ENTRIES entries, $(awk -v b="$TAR_BYTES" 'BEGIN{printf "%.0f MB", b/1e6}') as .tar"
fi
echo

# Touches fresh pages: on a VM with free page reporting, pages freed long ago are slow to fault in again; write and
# unlink a file (never synced, so nothing reaches the disk) just before a timed write.
warm_pages() {
    [[ $WARM == 1 ]] || return 0
    local mib=$(( $1 >> 20 ))
    dd if=/dev/zero of="$S/warm.tmp" bs=1M count="$mib" status=none
    rm -f "$S/warm.tmp"
}

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# Results: R[row,target] = value, or FAIL; DET[row,target] = detail line
declare -A R=() DET=()
detail() { # detail ROW TARGET EXTRA...
    local extra=${3:-} pid=${DAEMON_PID[$2]:-}
    DET[$1,$2]=$(printf '%-9s %8.2f s wall' "$2" "$ELAPSED")
    if [[ -n $pid ]]; then
        DET[$1,$2]+=$(printf ', daemon CPU %6.2f s (%s fds open)' "$DCPU" "$(ls "/proc/$pid/fd" 2>/dev/null | wc -l)")
    fi
    DET[$1,$2]+=$(printf ', command CPU %6.2f s, others %3s%%, iowait %3s%%' "$CMDCPU" "$OTHERS" "$IOWAIT")
    [[ -n $extra ]] && DET[$1,$2]+=", $extra"
    echo "  ${DET[$1,$2]}"
}
# fail ROW TARGET WHY: the cell failed; the run goes on.
fail() {
    R[$1,$2]=FAIL
    DET[$1,$2]=$(printf '%-9s FAILED: %s' "$2" "$3")
    echo "  ${DET[$1,$2]}"
}
# daemon_ok TARGET: false (with a note) if the target's FUSE daemon has gone away.
daemon_ok() {
    local pid=${DAEMON_PID[$1]:-}
    [[ -z $pid ]] && return 0
    kill -0 "$pid" 2>/dev/null && mountpoint -q "$S/$1/mnt" && return 0
    echo "  $1: the daemon (pid $pid) is gone or the mount is broken; skipping it"
    return 1
}

perf_start() { # perf_start TARGET TAG
    [[ -n $PERF_DIR && $1 == efs ]] || return 0
    mkdir -p "$PERF_DIR"
    perf record -F 499 -g -p "${DAEMON_PID[efs]}" -o "$PERF_DIR/$2.data" >/dev/null 2>"$PERF_DIR/$2.record.log" &
    PERF_PID=$!
    sleep 0.3
}
perf_stop() {
    [[ -n $PERF_PID ]] || return 0
    kill -INT "$PERF_PID" 2>/dev/null
    wait "$PERF_PID" 2>/dev/null
    PERF_PID=""
}

# err_summary FILE: how many lines, and the first two
err_summary() {
    local n
    n=$(wc -l <"$1")
    [[ $n == 0 ]] && return
    echo "$n error lines, first: $(head -2 "$1" | tr '\n' ' ' | cut -c1-300)"
}

VERIFY_NOTES=()

# ---------------------------------------------------------------------------------------------------------------
# Row 1: sequential write, ending with fsync

SEQ_MIB=$((SIZE >> 20))
if row_on 1; then
    echo "== row 1: sequential write of $(human "$SIZE") from the page cache, dd bs=1M conv=fsync  [$(load)]"
    for t in "${TARGETS[@]}"; do
        daemon_ok "$t" || { fail 1 "$t" "daemon gone"; continue; }
        cat "$SRC" >/dev/null
        warm_pages $((2 * SIZE))
        sync
        perf_start "$t" row1-seq-write
        if measure "$t" dd if="$SRC" of="${DIR[$t]}/seq.bin" bs=1M count="$SEQ_MIB" conv=fsync status=none 2>"$S/err.txt"; then
            perf_stop
            R[1,$t]=$(awk -v b="$SIZE" -v s="$ELAPSED" 'BEGIN{printf "%.0f", b / 1e6 / s}')
            detail 1 "$t" "${R[1,$t]} MB/s"
        else
            perf_stop
            fail 1 "$t" "dd: $(err_summary "$S/err.txt")"
        fi
    done
    echo
fi

# ---------------------------------------------------------------------------------------------------------------
# Row 2: sequential read, cold page cache

if row_on 2; then
    echo "== row 2: sequential read of $(human "$SIZE") with a cold page cache, dd bs=1M  [$(load)]"
    for t in "${TARGETS[@]}"; do
        daemon_ok "$t" || { fail 2 "$t" "daemon gone"; continue; }
        if [[ $(stat -c %s "${DIR[$t]}/seq.bin" 2>/dev/null) != "$SIZE" ]]; then
            dd if="$SRC" of="${DIR[$t]}/seq.bin" bs=1M count="$SEQ_MIB" conv=fsync status=none 2>"$S/err.txt" \
                || { fail 2 "$t" "cannot make the file: $(err_summary "$S/err.txt")"; continue; }
        fi
        drop_caches
        perf_start "$t" row2-seq-read
        if measure "$t" dd if="${DIR[$t]}/seq.bin" of=/dev/null bs=1M status=none 2>"$S/err.txt"; then
            perf_stop
            R[2,$t]=$(awk -v b="$SIZE" -v s="$ELAPSED" 'BEGIN{printf "%.0f", b / 1e6 / s}')
            detail 2 "$t" "${R[2,$t]} MB/s"
        else
            perf_stop
            fail 2 "$t" "dd: $(err_summary "$S/err.txt")"
        fi
    done
    echo
fi
if [[ $VERIFY == 1 ]] && { row_on 1 || row_on 2; }; then
    for t in "${TARGETS[@]}"; do
        [[ -e ${DIR[$t]}/seq.bin ]] || continue
        if cmp -n "$SIZE" "$SRC" "${DIR[$t]}/seq.bin" >/dev/null 2>&1 && [[ $(stat -c %s "${DIR[$t]}/seq.bin") == "$SIZE" ]]; then
            VERIFY_NOTES+=("sequential file on $t: same bytes as the source")
        else
            VERIFY_NOTES+=("sequential file on $t: DIFFERS from the source")
        fi
    done
fi
if [[ -n ${WANT_TARGET[efs]:-} && -e $S/efs/vol/secret/seq.bin ]]; then
    VERIFY_NOTES+=("efs backing file: $("$EFS_BIN" status "$S/efs/vol/secret/seq.bin" 2>&1 | sed "s|$S/||"), $(stat -c %s "$S/efs/vol/secret/seq.bin") bytes on disk for $SIZE of plaintext")
fi
for t in "${TARGETS[@]}"; do rm -f "${DIR[$t]}/seq.bin"; done

# ---------------------------------------------------------------------------------------------------------------
# Row 3: 4 KiB random reads and writes (fio, O_DIRECT, one job, queue depth 1)

fio_run() { # fio_run TARGET rw FILE ROW -> FIO_IOPS, or false after fail()
    local out="$S/fio-$1-$2.txt"
    perf_start "$1" "row3-$2"
    if ! measure "$1" fio --name="$2" --filename="$3" --rw="$2" --bs=4k --size="$RAND_SIZE" --direct=1 --ioengine=psync \
        --iodepth=1 --numjobs=1 --time_based --runtime="$RAND_SECONDS" --norandommap --randrepeat=0 --fallocate=none \
        --minimal --output="$out" 2>"$S/err.txt"; then
        perf_stop
        cat "$out" >>"$S/err.txt" 2>/dev/null
        fail "$4" "$1" "fio $2: $(err_summary "$S/err.txt")"
        return 1
    fi
    perf_stop
    # terse v3: field 8 = read IOPS, field 49 = write IOPS
    if [[ $2 == randread ]]; then FIO_IOPS=$(cut -d';' -f8 "$out"); else FIO_IOPS=$(cut -d';' -f49 "$out"); fi
}

if row_on 3; then
    echo "== row 3: 4 KiB random reads, then writes, O_DIRECT, on a $(human "$RAND_SIZE") file, ${RAND_SECONDS} s each (fio psync, 1 job)  [$(load)]"
    for t in "${TARGETS[@]}"; do
        daemon_ok "$t" || { fail 3r "$t" "daemon gone"; fail 3w "$t" "daemon gone"; continue; }
        f="${DIR[$t]}/rand.bin"
        if ! dd if="$SRC" of="$f" bs=1M count=$((RAND_SIZE >> 20)) conv=fsync status=none 2>"$S/err.txt"; then
            fail 3r "$t" "cannot make the file: $(err_summary "$S/err.txt")"; R[3w,$t]=FAIL; DET[3w,$t]=${DET[3r,$t]}
            continue
        fi
        sync
        if fio_run "$t" randread "$f" 3r; then
            R[3r,$t]=$FIO_IOPS
            detail 3r "$t" "$FIO_IOPS reads/s"
        fi
        sync
        if fio_run "$t" randwrite "$f" 3w; then
            R[3w,$t]=$FIO_IOPS
            detail 3w "$t" "$FIO_IOPS writes/s"
        fi
        rm -f "$f"
    done
    echo
fi

# ---------------------------------------------------------------------------------------------------------------
# Row 4: untar, then sync (both timed)

if row_on 4; then
    echo "== row 4: untar of $TAR_DESC ($TAR_ENTRIES entries): tar xf, then sync, both timed  [$(load)]"
    for t in "${TARGETS[@]}"; do
        daemon_ok "$t" || { fail 4 "$t" "daemon gone"; continue; }
        d="${DIR[$t]}/tree"
        mkdir -p "$d"
        cat "$TAR" >/dev/null
        warm_pages $((2 * TAR_BYTES))
        sync
        perf_start "$t" row4-untar
        if ! measure "$t" tar xf "$TAR" -C "$d" 2>"$S/tar-$t.err"; then
            perf_stop
            fail 4 "$t" "tar xf after $(printf '%.1f' "$ELAPSED") s: $(err_summary "$S/tar-$t.err"); $(find "$d" | wc -l) of $TAR_ENTRIES entries made"
            continue
        fi
        tar_s=$ELAPSED tar_d=$DCPU tar_c=$CMDCPU tar_o=$OTHERS tar_w=$IOWAIT
        measure "$t" sync
        perf_stop
        sync_s=$ELAPSED
        ELAPSED=$(awk -v a="$tar_s" -v b="$sync_s" 'BEGIN{printf "%.3f", a + b}')
        DCPU=$(awk -v a="$tar_d" -v b="$DCPU" 'BEGIN{printf "%.2f", a + b}')
        CMDCPU=$tar_c OTHERS=$tar_o IOWAIT=$tar_w
        R[4,$t]=$ELAPSED
        detail 4 "$t" "$(printf 'tar %.2f s + sync %.2f s' "$tar_s" "$sync_s") (others/iowait: during tar)"
    done
    # Space the tree takes in each backing directory (not timed).
    for t in "${TARGETS[@]}"; do
        [[ ${R[4,$t]:-FAIL} == FAIL ]] && continue
        case $t in
            ext4) b="${DIR[ext4]}/tree" ;;
            gocryptfs) b="$S/gocryptfs/cipher" ;;
            efs) b="$S/efs/vol/secret/tree" ;;
        esac
        VERIFY_NOTES+=("backing size of the untarred tree on $t: $(du -s --block-size=1M "$b" | cut -f1) MiB allocated, $(du -s --apparent-size --block-size=1M "$b" | cut -f1) MiB apparent, $(find "$b" -type f | wc -l) files")
    done
    if [[ $VERIFY == 1 ]]; then
        ref=""
        for t in "${TARGETS[@]}"; do [[ -z $ref && ${R[4,$t]:-FAIL} != FAIL ]] && ref=$t; done
        for t in "${TARGETS[@]}"; do
            [[ -z $ref || $t == "$ref" || ${R[4,$t]:-FAIL} == FAIL ]] && continue
            if diff -r --no-dereference "${DIR[$ref]}/tree" "${DIR[$t]}/tree" >"$S/diff-$t.txt" 2>&1; then
                VERIFY_NOTES+=("untarred tree on $t: same as on $ref (diff -r)")
            else
                VERIFY_NOTES+=("untarred tree on $t: DIFFERS from $ref: $(head -c 300 "$S/diff-$t.txt" | tr '\n' ' ')")
            fi
        done
    fi
    echo
fi

# ---------------------------------------------------------------------------------------------------------------
# Report

END_LOAD=$(load)
echo "== results ($(date -Is)); load average at end: $END_LOAD"
echo
ratio_mode() { case $1 in 4) echo time ;; *) echo rate ;; esac; }
row_name() {
    case $1 in
        1) echo "1 seq write $(human "$SIZE") +fsync, MB/s" ;;
        2) echo "2 seq read $(human "$SIZE") cold, MB/s" ;;
        3r) echo "3 rand read 4K O_DIRECT, ops/s" ;;
        3w) echo "3 rand write 4K O_DIRECT, ops/s" ;;
        4) echo "4 untar+sync ($TAR_ENTRIES entries), s" ;;
    esac
}
hdr=$(printf '%-40s' row)
for t in "${TARGETS[@]}"; do hdr+=$(printf ' %10s' "$t"); done
have_ratio=0
[[ -n ${WANT_TARGET[gocryptfs]:-} && -n ${WANT_TARGET[efs]:-} ]] && have_ratio=1
[[ $have_ratio == 1 ]] && hdr+=$(printf ' %14s  %s' "efs÷gocryptfs" "goal ≥1.5×")
echo "$hdr"
goals_met=0 goals_total=0
for row in 1 2 3r 3w 4; do
    [[ -n ${R[$row,${TARGETS[0]}]:-} ]] || continue
    line=$(printf '%-40s' "$(row_name "$row")")
    for t in "${TARGETS[@]}"; do
        v=${R[$row,$t]:-FAIL}
        if [[ $row == 4 && $v != FAIL ]]; then line+=$(printf ' %10.1f' "$v"); else line+=$(printf ' %10s' "$v"); fi
    done
    if [[ $have_ratio == 1 ]]; then
        goals_total=$((goals_total + 1))
        g=${R[$row,gocryptfs]:-FAIL} e=${R[$row,efs]:-FAIL}
        if [[ $g == FAIL || $e == FAIL ]]; then
            line+=$(printf ' %14s  %s' "–" "NOT met ($( [[ $e == FAIL ]] && echo "efs failed" || echo "gocryptfs failed"))")
        else
            ratio=$(awk -v g="$g" -v e="$e" -v m="$(ratio_mode "$row")" 'BEGIN {
                if (m == "time") r = (e > 0 ? g / e : 0); else r = (g > 0 ? e / g : 0); printf "%.2f", r }')
            if awk -v r="$ratio" 'BEGIN{exit !(r >= 1.5)}'; then verdict="met"; goals_met=$((goals_met + 1)); else verdict="NOT met"; fi
            line+=$(printf ' %13s×  %s' "$ratio" "$verdict")
        fi
    fi
    echo "$line"
done
echo
[[ $have_ratio == 1 ]] && echo "goal (efs ≥ 1.5× gocryptfs) met on $goals_met of $goals_total rows. For row 4 the ratio is gocryptfs time ÷ efs time."
echo "MB/s are 10^6 bytes per second of wall time. 'others' = share of the machine's CPU ($NCPU cores) not used by the"
echo "measured command or its daemon during the step (other processes and kernel threads, e.g. writeback)."
echo
echo "details per row:"
for row in 1 2 3r 3w 4; do
    [[ -n ${R[$row,${TARGETS[0]}]:-} ]] || continue
    echo "  $(row_name "$row")"
    for t in "${TARGETS[@]}"; do echo "    ${DET[$row,$t]:-$t: not run}"; done
done
if [[ ${#VERIFY_NOTES[@]} -gt 0 ]]; then
    echo
    echo "checks (not timed):"
    for n in "${VERIFY_NOTES[@]}"; do echo "  $n"; done
fi
for t in gocryptfs efs; do
    [[ -n ${WANT_TARGET[$t]:-} ]] || continue
    log="$S/$t/mount.log"
    if [[ -s $log ]]; then
        echo
        echo "$t daemon log ($(wc -l <"$log") lines; first 20):"
        head -20 "$log" | sed 's/^/  /'
    fi
done
if [[ -n $PERF_DIR ]]; then
    echo
    echo "perf profiles of the efs daemon: $PERF_DIR/*.data (reports: *.report.txt)"
    for f in "$PERF_DIR"/*.data; do
        [[ -e $f ]] || continue
        perf report -i "$f" --stdio --no-children --percent-limit 1 2>/dev/null \
            | { if command -v swift >/dev/null; then swift demangle --simplified; else cat; fi; } >"${f%.data}.report.txt"
    done
fi
