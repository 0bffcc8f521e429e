#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# This file is part of swift-efs. See LICENSE for details.
"""Runs every POSIX call of issue 4 part 3 in a fresh directory and prints one line per result.

    posix-calls.py run DIR          # works in DIR/work (new); DIR holds the `prepare` objects
    posix-calls.py prepare DIR      # as root: objects the caller does not own (DIR/foreign*), made before `run`
    posix-calls.py keyless DIR      # a caller without the key, in an encrypted directory DIR holding `theirs`

Each line is `STEP<TAB>RESULT`. RESULT is what the call returned or the errno name it failed with, with the
contents (length and digest) and stat fields (type, mode, links, owner, size) it left, never inode numbers,
devices or exact clock times (times set explicitly are printed exactly; others as "recent"). The same program run
as the same uid on the mount and on a plain ext4 directory must print the same lines (Tests/EFSFUSETests/
POSIXTests.swift compares them, with the few differences FUSE itself imposes listed there).

Python's own calls are used where they exist; ctypes reaches renameat2, fallocate and utimensat(UTIME_OMIT).
"""
import ctypes
import errno
import hashlib
import mmap
import os
import stat
import sys
import threading
import time

libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
AT_FDCWD = -100
RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT = 1, 2, 4
FALLOC_KEEP_SIZE, FALLOC_PUNCH_HOLE, FALLOC_COLLAPSE, FALLOC_ZERO, FALLOC_INSERT = 0x01, 0x02, 0x08, 0x10, 0x20
UTIME_NOW, UTIME_OMIT = (1 << 30) - 1, (1 << 30) - 2
PAGE = mmap.PAGESIZE

out = []


def emit(step, value):
    out.append(f"{step}\t{value}")


def errname(e):
    return errno.errorcode.get(e, str(e))


def call(fn, *args, **kwargs):
    """fn(*args, **kwargs) as a result string: what it returned ("ok" for None) or the errno name it raised."""
    try:
        r = fn(*args, **kwargs)
    except OSError as e:
        return errname(e.errno)
    if r is None:
        return "ok"
    return r


def opens(path, flags, mode=0o600):
    """Opens and closes `path`: "ok" or the errno name."""
    return call(lambda: os.close(os.open(path, flags, mode)))


def check(rc):
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def fallocate(fd, mode, offset, length):
    check(libc.fallocate(fd, mode, offset, length))


def renameat2(a, b, flags):
    check(libc.renameat2(AT_FDCWD, a.encode(), AT_FDCWD, b.encode(), flags))


class timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def utimensat(path, atime, mtime, nofollow=False):
    """Times as (sec, nsec) or the UTIME_NOW / UTIME_OMIT markers."""
    def ts(t):
        return timespec(0, t) if isinstance(t, int) else timespec(*t)
    times = (timespec * 2)(ts(atime), ts(mtime))
    check(libc.utimensat(AT_FDCWD, path.encode(), times, 0x100 if nofollow else 0))


KINDS = {stat.S_IFREG: "file", stat.S_IFDIR: "dir", stat.S_IFLNK: "link", stat.S_IFCHR: "chr", stat.S_IFIFO: "fifo"}


def describe(st):
    kind = KINDS.get(stat.S_IFMT(st.st_mode), "other")
    s = f"{kind} {stat.S_IMODE(st.st_mode):04o} n{st.st_nlink} {st.st_uid}:{st.st_gid}"
    if kind != "dir":  # directory sizes are the backing file system's business
        s += f" size {st.st_size}"
    return s


def st(path, follow=True):
    try:
        return describe(os.stat(path, follow_symlinks=follow))
    except OSError as e:
        return errname(e.errno)


def fst(fd):
    return describe(os.fstat(fd))


def digest(b):
    return f"{len(b)}:{hashlib.sha256(b).hexdigest()[:16]}"


def content(path):
    try:
        with open(path, "rb") as f:
            return digest(f.read())
    except OSError as e:
        return errname(e.errno)


def pattern(n, seed):
    """n deterministic bytes (no zeros, so holes and lost writes show)."""
    h = hashlib.sha256(str(seed).encode()).digest()
    return bytes(1 + (h[i % 32] + i * 7) % 255 for i in range(n))


def write_file(path, data, mode=0o644):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.pwrite(fd, data, 0)
    finally:
        os.close(fd)


def pread_all(fd, n, offset):
    got = b""
    while len(got) < n:
        chunk = os.pread(fd, n - len(got), offset + len(got))
        if not chunk:
            break
        got += chunk
    return got


def recent(t):
    return "recent" if abs(time.time() - t) < 120 else f"{t:.0f}"


def times(path, follow=True):
    s = os.stat(path, follow_symlinks=follow)
    return f"a {s.st_atime_ns} m {s.st_mtime_ns} c {recent(s.st_ctime)}"


def sparse(path):
    s = os.stat(path)
    return "sparse" if s.st_blocks * 512 < s.st_size // 2 else "allocated"


def listing(path):
    return ",".join(sorted(f"{e.name}:{'d' if e.is_dir(follow_symlinks=False) else 'l' if e.is_symlink() else 'f'}"
                           for e in os.scandir(path)))


# MARK: - Steps


def create_and_open():
    emit("create 0640", call(lambda: os.close(os.open("c1", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640))))
    emit("create 0640: stat", st("c1"))
    for mode in (0o000, 0o4755, 0o2750, 0o1777, 0o444):
        fd = os.open(f"c-{mode:o}", os.O_RDWR | os.O_CREAT | os.O_EXCL, mode)
        # A file created read-only (even mode 0) can be written through the descriptor that created it.
        emit(f"create {mode:04o}: write through it", call(os.pwrite, fd, b"abc", 0))
        os.close(fd)
        emit(f"create {mode:04o}: stat", st(f"c-{mode:o}"))
    old = os.umask(0o027)
    os.close(os.open("c-umask", os.O_WRONLY | os.O_CREAT, 0o777))
    os.umask(old)
    emit("create 0777 under umask 027: stat", st("c-umask"))
    emit("O_EXCL on an existing file", opens("c1", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    os.symlink("nowhere", "dangling")
    emit("O_EXCL on a dangling symlink", opens("dangling", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    emit("O_CREAT through a dangling symlink", opens("dangling", os.O_WRONLY | os.O_CREAT))
    emit("O_CREAT through a dangling symlink: target", st("nowhere"))
    emit("open a missing file", opens("missing", os.O_RDONLY))
    emit("open below a file", opens("c1/x", os.O_RDONLY))
    emit("create a 256-byte name", opens("n" * 256, os.O_WRONLY | os.O_CREAT, 0o600))
    emit("create a 255-byte name", opens("n" * 255, os.O_WRONLY | os.O_CREAT))
    os.mkdir("odir")
    emit("open a directory for writing", opens("odir", os.O_WRONLY))
    emit("O_DIRECTORY on a file", opens("c1", os.O_RDONLY | os.O_DIRECTORY))
    os.symlink("c1", "c1-link")
    emit("O_NOFOLLOW on a symlink", opens("c1-link", os.O_RDONLY | os.O_NOFOLLOW))
    emit("O_PATH|O_NOFOLLOW on a symlink", opens("c1-link", os.O_PATH | os.O_NOFOLLOW))
    # Permissions (root passes them all).
    write_file("ro", b"read only", 0o444)
    emit("open a 0444 file for writing", opens("ro", os.O_WRONLY))
    emit("open a 0444 file O_RDONLY|O_TRUNC", opens("ro", os.O_RDONLY | os.O_TRUNC))
    write_file("none", b"no access", 0o000)
    emit("open a 0000 file for reading", opens("none", os.O_RDONLY))
    os.mkdir("rodir", 0o555)
    emit("create in a 0555 directory", opens("rodir/x", os.O_WRONLY | os.O_CREAT, 0o600))
    os.chmod("rodir", 0o755)
    # O_TRUNC and O_APPEND.
    write_file("t", pattern(10_000, 1))
    os.close(os.open("t", os.O_WRONLY | os.O_TRUNC))
    emit("O_TRUNC", st("t"))
    write_file("t2", pattern(10_000, 2))
    fd = os.open("t2", os.O_RDONLY | os.O_TRUNC)  # Linux truncates even for O_RDONLY when writing is allowed
    emit("O_RDONLY|O_TRUNC: fstat", fst(fd))
    os.close(fd)
    write_file("t3", pattern(10_000, 3))
    fd = os.open("t3", os.O_RDWR | os.O_TRUNC)
    emit("O_RDWR|O_TRUNC then write", call(os.pwrite, fd, b"xyz", 5))
    os.close(fd)
    emit("O_RDWR|O_TRUNC then write: content", content("t3"))
    write_file("ap", b"abc")
    fd = os.open("ap", os.O_WRONLY | os.O_APPEND)
    os.lseek(fd, 0, os.SEEK_SET)
    emit("O_APPEND write after lseek 0", call(os.write, fd, b"XY"))
    emit("O_APPEND: position after the write", os.lseek(fd, 0, os.SEEK_CUR))
    emit("O_APPEND pwrite at 0 (appends on Linux)", call(os.pwrite, fd, b"Q", 0))
    emit("O_APPEND ftruncate", call(os.ftruncate, fd, 2))
    emit("O_APPEND write after ftruncate", call(os.write, fd, b"Z"))
    os.close(fd)
    emit("O_APPEND: content", content("ap"))
    fd = os.open("ap", os.O_RDWR | os.O_APPEND)
    emit("O_RDWR|O_APPEND read at 0", call(os.pread, fd, 10, 0))
    os.close(fd)
    fd = os.open("ap-new", os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o600)
    for i in range(5):
        os.write(fd, pattern(3000, i))
    os.close(fd)
    emit("O_APPEND|O_CREAT: five appends", content("ap-new"))


def read_and_write():
    fd = os.open("rw", os.O_RDWR | os.O_CREAT, 0o644)
    for off, n, seed in [(0, 5000, 10), (4095, 10, 11), (3 * 4096 - 1, 3, 12), (70_000, 1, 13), (65_530, 20, 14)]:
        emit(f"pwrite {n} at {off}", call(os.pwrite, fd, pattern(n, seed), off))
    emit("after pwrites: fstat", fst(fd))
    emit("pread all", digest(pread_all(fd, 100_000, 0)))
    emit("pread past the end", call(lambda: os.pread(fd, 10, 200_000)))
    emit("pread across the end", call(lambda: len(os.pread(fd, 100, 70_000 - 50))))
    emit("pread 0 bytes", call(lambda: os.pread(fd, 0, 10)))
    emit("pread at a negative offset", call(os.pread, fd, 10, -1))
    emit("pwrite at a negative offset", call(os.pwrite, fd, b"x", -1))
    emit("lseek SEEK_END", os.lseek(fd, 0, os.SEEK_END))
    emit("write at the position", call(os.write, fd, b"end"))
    emit("read at the position (end)", call(os.read, fd, 10))
    emit("pwrite 0 bytes", call(os.pwrite, fd, b"", 5))
    os.close(fd)
    emit("read-write: content", content("rw"))
    fd = os.open("rw", os.O_RDONLY)
    emit("write to an O_RDONLY descriptor", call(os.write, fd, b"x"))
    os.close(fd)
    fd = os.open("rw", os.O_WRONLY)
    emit("read from an O_WRONLY descriptor", call(os.read, fd, 1))
    os.close(fd)
    # Beyond 4 GiB (sparse), and a read in the hole.
    fd = os.open("far", os.O_RDWR | os.O_CREAT, 0o644)
    big = 5 * (1 << 30) + 7
    emit("pwrite past 5 GiB", call(os.pwrite, fd, pattern(100, 15), big))
    emit("past 5 GiB: fstat", fst(fd))
    emit("past 5 GiB: read back", digest(os.pread(fd, 200, big)))
    emit("past 5 GiB: read the hole", call(lambda: os.pread(fd, 4096, 1 << 32) == bytes(4096)))
    # ext4's largest file is 16 TiB: past it, EFBIG.
    emit("pwrite across 16 TiB", call(os.pwrite, fd, b"x" * 100, (1 << 44) - 50))
    emit("pwrite past 16 TiB", call(os.pwrite, fd, b"x", 1 << 44))
    emit("ftruncate to 16 TiB + 1", call(os.ftruncate, fd, (1 << 44) + 1))
    emit("ftruncate to 2^61", call(os.ftruncate, fd, 1 << 61))
    emit("past 16 TiB: fstat", fst(fd))
    os.close(fd)
    emit("past 5 GiB: sparse", sparse("far"))
    os.unlink("far")


def holes():
    fd = os.open("holes", os.O_RDWR | os.O_CREAT, 0o644)
    os.pwrite(fd, pattern(10, 20), (1 << 20) - 5)
    os.pwrite(fd, pattern(10, 21), 8 << 20)
    emit("holes: fstat", fst(fd))
    emit("holes: the first MiB", digest(os.pread(fd, 1 << 20, 0)))
    emit("holes: zeros between", call(lambda: os.pread(fd, 1 << 20, 3 << 20) == bytes(1 << 20)))
    emit("holes: sparse", sparse("holes"))
    os.ftruncate(fd, 20 << 20)
    emit("holes: grown by ftruncate", fst(fd))
    emit("holes: grown region reads zeros", call(lambda: os.pread(fd, 65536, 15 << 20) == bytes(65536)))
    emit("holes: still sparse", sparse("holes"))
    os.close(fd)
    emit("holes: content", content("holes"))


def truncation():
    data = pattern(50_000, 30)
    write_file("tr", data)
    emit("truncate grow", call(os.truncate, "tr", 100_000))
    emit("truncate grow: content", content("tr"))
    emit("truncate shrink mid-block", call(os.truncate, "tr", 4_100))
    emit("truncate shrink: content", content("tr"))
    emit("truncate grow after shrink", call(os.truncate, "tr", 10_000))
    with open("tr", "rb") as f:
        b = f.read()
    emit("old bytes do not come back", b == data[:4_100] + bytes(10_000 - 4_100))
    fd = os.open("tr", os.O_RDWR)
    emit("ftruncate shrink", call(os.ftruncate, fd, 10))
    emit("ftruncate shrink: fstat", fst(fd))
    emit("ftruncate grow", call(os.ftruncate, fd, 70_000))
    emit("ftruncate grow: read", digest(pread_all(fd, 100_000, 0)))
    emit("ftruncate to 0", call(os.ftruncate, fd, 0))
    emit("write after ftruncate to 0", call(os.pwrite, fd, b"again", 3))
    emit("ftruncate negative", call(os.ftruncate, fd, -1))
    os.close(fd)
    emit("ftruncate: content", content("tr"))
    emit("truncate negative", call(os.truncate, "tr", -1))
    emit("truncate a directory", call(os.truncate, "odir", 0))
    emit("truncate a missing file", call(os.truncate, "missing", 0))
    emit("truncate a 0444 file", call(os.truncate, "ro", 0))
    fd = os.open("tr", os.O_RDONLY)
    emit("ftruncate an O_RDONLY descriptor", call(os.ftruncate, fd, 0))
    os.close(fd)
    emit("truncate through a symlink", call(lambda: (os.symlink("tr", "tr-link"), os.truncate("tr-link", 2))[1]))
    emit("truncate through a symlink: target", st("tr"))


def renames():
    write_file("ra", b"new version")
    write_file("rb", b"old version, longer")
    emit("rename a file to a new name", call(os.rename, "ra", "ra2"))
    emit("rename over an existing file", call(os.rename, "ra2", "rb"))
    emit("rename over: content", content("rb"))
    emit("rename over: source gone", st("ra2"))
    os.link("rb", "rb-link")
    emit("rename onto its own hard link", call(os.rename, "rb", "rb-link"))
    emit("rename onto its own hard link: both stay", f"{st('rb')} / {st('rb-link')}")
    emit("rename to itself", call(os.rename, "rb", "rb"))
    emit("rename a missing file", call(os.rename, "missing", "x"))
    os.makedirs("rd1/sub")
    write_file("rd1/sub/f", b"in a directory")
    os.mkdir("rd2")
    emit("rename a directory to a new name", call(os.rename, "rd1", "rd3"))
    emit("rename a directory over an empty one", call(os.rename, "rd3", "rd2"))
    emit("rename a directory over: content", content("rd2/sub/f"))
    os.makedirs("rd4/x")
    emit("rename a directory over a non-empty one", call(os.rename, "rd4", "rd2"))
    write_file("rf", b"file")
    emit("rename a file over a directory", call(os.rename, "rf", "rd4"))
    emit("rename a directory over a file", call(os.rename, "rd4", "rf"))
    emit("rename a directory into itself", call(os.rename, "rd2", "rd2/sub/inner"))
    emit("rename with a trailing slash on a file", call(os.rename, "rf/", "rf2"))
    emit("directory link counts", f"{st('.')} / {st('rd2')} / {st('rd4')}")
    emit("RENAME_NOREPLACE to a new name", call(renameat2, "rf", "rf2", RENAME_NOREPLACE))
    write_file("rg", b"g")
    emit("RENAME_NOREPLACE over an existing file", call(renameat2, "rg", "rf2", RENAME_NOREPLACE))
    emit("RENAME_NOREPLACE over: both intact", f"{content('rg')} / {content('rf2')}")
    emit("RENAME_NOREPLACE of a directory over one", call(renameat2, "rd4", "rd2", RENAME_NOREPLACE))
    emit("RENAME_EXCHANGE of two files", call(renameat2, "rg", "rf2", RENAME_EXCHANGE))
    emit("RENAME_EXCHANGE: contents", f"{content('rg')} / {content('rf2')}")
    emit("RENAME_EXCHANGE of a file and a directory", call(renameat2, "rg", "rd4", RENAME_EXCHANGE))
    emit("RENAME_EXCHANGE of a file and a directory: kinds", f"{st('rg')} / {st('rd4')}")
    emit("RENAME_EXCHANGE with a missing name", call(renameat2, "rg", "missing", RENAME_EXCHANGE))
    emit("RENAME_NOREPLACE|RENAME_EXCHANGE", call(renameat2, "rg", "rd4", RENAME_NOREPLACE | RENAME_EXCHANGE))
    emit("RENAME_WHITEOUT", call(renameat2, "rf2", "rf3", RENAME_WHITEOUT))
    emit("RENAME_WHITEOUT: what is left", f"{st('rf2', False)} / {st('rf3')}")
    # A file renamed over while open keeps its content for the open descriptor.
    write_file("ro1", b"the first")
    write_file("ro2", b"the second")
    fd = os.open("ro2", os.O_RDONLY)
    os.rename("ro1", "ro2")
    emit("rename over an open file: the old descriptor reads", call(os.pread, fd, 100, 0))
    emit("rename over an open file: fstat", fst(fd))
    os.close(fd)
    emit("rename over an open file: the name reads", content("ro2"))
    os.chmod("rodir", 0o555)
    emit("rename into a 0555 directory", call(os.rename, "ro2", "rodir/x"))
    os.chmod("rodir", 0o755)


def links():
    write_file("l1", b"linked")
    emit("link", call(os.link, "l1", "l2"))
    emit("link: both names", f"{st('l1')} / {st('l2')}")
    fd = os.open("l2", os.O_RDWR)
    os.pwrite(fd, b"LINKED", 0)
    os.close(fd)
    emit("link: write through one, read the other", content("l1"))
    emit("link over an existing name", call(os.link, "l1", "c1"))
    emit("link a directory", call(os.link, "odir", "odir-link"))
    emit("link a missing file", call(os.link, "missing", "l3"))
    os.symlink("l1", "l1-sym")
    emit("link a symlink itself", call(os.link, "l1-sym", "l1-sym-hard", follow_symlinks=False))
    emit("link a symlink itself: stat", st("l1-sym-hard", False))
    emit("link through a symlink", call(os.link, "l1-sym", "l4", follow_symlinks=True))
    emit("link through a symlink: stat", st("l4", False))
    emit("unlink one name", call(os.unlink, "l2"))
    emit("unlink one name: the others", st("l1"))
    emit("link into a 0555 directory", call(os.link, "l1", "rodir/l"))


def symlinks():
    emit("symlink", call(os.symlink, "target-of-s", "s1"))
    emit("symlink: lstat", st("s1", False))
    emit("readlink", call(os.readlink, "s1"))
    emit("stat of a dangling symlink", st("s1"))
    emit("open a dangling symlink", opens("s1", os.O_RDONLY))
    write_file("target-of-s", b"target")
    emit("read through a symlink", content("s1"))
    emit("symlink over an existing name", call(os.symlink, "x", "s1"))
    emit("readlink of a file", call(os.readlink, "target-of-s"))
    emit("symlink with an empty target", call(os.symlink, "", "s-empty"))
    long_target = "d/" * 2000 + "t"
    emit("symlink with a 4001-byte target", call(os.symlink, long_target, "s-long"))
    emit("readlink of the long target", call(lambda: os.readlink("s-long") == long_target))
    emit("symlink with a 4096-byte target", call(os.symlink, "x" * 4096, "s-toolong"))
    os.symlink("s-loop2", "s-loop1")
    os.symlink("s-loop1", "s-loop2")
    emit("open a symlink loop", opens("s-loop1", os.O_RDONLY))
    emit("symlink to a directory", call(os.symlink, "odir", "s-dir"))
    emit("create through a symlinked directory", call(lambda: write_file("s-dir/inside", b"in")))
    emit("create through a symlinked directory: stat", st("odir/inside"))
    emit("unlink a symlink leaves its target", call(lambda: (os.unlink("s1"), st("target-of-s"))[1]))


def directories():
    for mode in (0o755, 0o700, 0o500, 0o000, 0o1777, 0o2755, 0o3777):
        emit(f"mkdir {mode:04o}", call(os.mkdir, f"d-{mode:o}", mode))
        emit(f"mkdir {mode:04o}: stat", st(f"d-{mode:o}"))
    old = os.umask(0o022)
    os.mkdir("d-umask", 0o777)
    os.umask(old)
    emit("mkdir 0777 under umask 022: stat", st("d-umask"))
    emit("mkdir an existing name", call(os.mkdir, "d-755"))
    emit("mkdir below a missing directory", call(os.mkdir, "missing/d"))
    emit("mkdir in a 0555 directory", call(os.mkdir, "rodir/d"))
    emit("mkdir in a 0500 directory", call(os.mkdir, "d-500/d"))
    os.mkdir("d-2755/sub", 0o755)
    write_file("d-2755/file", b"x")
    emit("setgid directory: a new subdirectory", st("d-2755/sub"))
    emit("setgid directory: a new file", st("d-2755/file"))
    emit("parent link count after mkdirs", st("."))
    write_file("d-755/f", b"x")
    emit("rmdir a non-empty directory", call(os.rmdir, "d-755"))
    emit("rmdir a file", call(os.rmdir, "d-755/f"))
    emit("rmdir a missing directory", call(os.rmdir, "missing"))
    emit("rmdir .", call(os.rmdir, "d-700/."))
    emit("rmdir a 0500 directory", call(os.rmdir, "d-500"))
    emit("rmdir a 0000 directory", call(os.rmdir, "d-0"))
    emit("rmdir an empty 1777 directory", call(os.rmdir, "d-1777"))
    emit("rmdir in a 0555 directory", call(lambda: (os.chmod("rodir", 0o755), os.mkdir("rodir/e"),
                                                    os.chmod("rodir", 0o555), os.rmdir("rodir/e"))[3]))
    os.chmod("rodir", 0o755)
    emit("unlink a directory", call(os.unlink, "d-700"))
    emit("parent link count after rmdirs", st("."))
    emit("listing of a directory", listing("d-2755"))


def unlink_open():
    data = pattern(20_000, 40)
    write_file("u", data)
    fd = os.open("u", os.O_RDWR)
    emit("unlink an open file", call(os.unlink, "u"))
    emit("unlink an open file: the name is gone", st("u"))
    emit("unlink an open file: fstat", fst(fd))
    emit("unlinked: write", call(os.pwrite, fd, b"more", 20_000))
    emit("unlinked: read", digest(pread_all(fd, 30_000, 0)))
    emit("unlinked: ftruncate", call(os.ftruncate, fd, 100))
    emit("unlinked: fsync", call(os.fsync, fd))
    emit("unlinked: fstat after", fst(fd))
    os.close(fd)
    emit("unlink a missing file", call(os.unlink, "u"))
    # Two descriptors of an unlinked file share it.
    write_file("u2", b"shared")
    a, b = os.open("u2", os.O_RDWR), os.open("u2", os.O_RDONLY)
    os.unlink("u2")
    os.pwrite(a, b"SHARED", 0)
    emit("unlinked: a second descriptor sees the write", call(os.pread, b, 10, 0))
    os.close(a)
    emit("unlinked: the second descriptor after the first closes", call(os.pread, b, 10, 0))
    os.close(b)
    emit("unlink in a 0555 directory", call(lambda: (os.chmod("rodir", 0o755), write_file("rodir/f", b""),
                                                     os.chmod("rodir", 0o555), os.unlink("rodir/f"))[3]))
    os.chmod("rodir", 0o755)


def modes_and_owners():
    write_file("m", b"mode")
    for mode in (0o640, 0o4755, 0o2755, 0o1644, 0o7777, 0o000):
        emit(f"chmod {mode:04o}", call(os.chmod, "m", mode))
        emit(f"chmod {mode:04o}: stat", st("m"))
    os.chmod("m", 0o644)
    fd = os.open("m", os.O_RDONLY)
    emit("fchmod 0600", call(os.fchmod, fd, 0o600))
    emit("fchmod: fstat", fst(fd))
    os.close(fd)
    emit("chmod through a symlink", call(lambda: (os.symlink("m", "m-link"), os.chmod("m-link", 0o604))[1]))
    emit("chmod through a symlink: target, link", f"{st('m')} / {st('m-link', False)}")
    emit("chmod a directory 1777", call(os.chmod, "odir", 0o1777))
    emit("chmod a directory: stat", st("odir"))
    emit("chmod a missing file", call(os.chmod, "missing", 0o600))
    # A write by a caller without CAP_FSETID clears set-user-ID (and set-group-ID with group execute).
    write_file("suid", b"program")
    os.chmod("suid", 0o6755)
    fd = os.open("suid", os.O_WRONLY)
    os.pwrite(fd, b"P", 0)
    os.close(fd)
    emit("write to a 6755 file: stat", st("suid"))
    os.chmod("suid", 0o6755)
    os.truncate("suid", 3)
    emit("truncate a 6755 file: stat", st("suid"))
    os.chmod("suid", 0o6755)
    os.close(os.open("suid", os.O_WRONLY | os.O_TRUNC))
    emit("open O_TRUNC a 6755 file: stat", st("suid"))
    os.chmod("suid", 0o2745)
    fd = os.open("suid", os.O_WRONLY)
    os.pwrite(fd, b"P", 0)
    os.close(fd)
    emit("write to a 2745 file (set-group-ID without group execute): stat", st("suid"))
    # File capabilities go with any write, root's too (setting them needs CAP_SETFCAP: root's run only).
    # vfs_cap_data revision 2: magic, then permitted and inheritable words for capabilities 0-31 and 32-63.
    caps = (0x02000000).to_bytes(4, "little") + (1 << 10).to_bytes(4, "little") + bytes(12)
    write_file("capped", b"program", 0o755)
    if call(os.setxattr, "capped", "security.capability", caps) == "ok":
        emit("a file with a capability: getxattr", digest(os.getxattr("capped", "security.capability")))
        fd = os.open("capped", os.O_WRONLY)
        os.pwrite(fd, b"P", 0)
        os.close(fd)
        emit("after a write: getxattr", call(os.getxattr, "capped", "security.capability"))
        os.setxattr("capped", "security.capability", caps)
        os.truncate("capped", 1)
        emit("after a truncate: getxattr", call(os.getxattr, "capped", "security.capability"))
    uid, gid = os.getuid(), os.getgid()
    emit("chown to itself", call(os.chown, "m", uid, gid))
    emit("chown -1 -1", call(os.chown, "m", -1, -1))
    emit("chgrp to its own group", call(os.chown, "m", -1, gid))
    emit("chown to 65534:65534", call(os.chown, "m", 65534, 65534))
    emit("chown to 65534:65534: stat", st("m"))
    emit("chown to root", call(os.chown, "m", 0, -1))
    emit("chgrp to root", call(os.chown, "m", -1, 0))
    emit("after chown to root: stat", st("m"))
    write_file("suid2", b"program")
    os.chmod("suid2", 0o6755)
    emit("chown a 6755 file", call(os.chown, "suid2", 65534, 65534))
    emit("chown a 6755 file: stat", st("suid2"))
    os.symlink("suid2", "own-link")
    emit("lchown a symlink", call(os.lchown, "own-link", 65534, 65534))
    emit("lchown a symlink: link, target", f"{st('own-link', False)} / {st('suid2')}")
    os.mkdir("own-dir")
    emit("chown a directory", call(os.chown, "own-dir", 65534, 65534))
    emit("chown a directory: stat", st("own-dir"))


def time_stamps():
    write_file("tm", b"times")
    emit("utimens explicit", call(os.utime, "tm", ns=(1_000_000_001_000_000_002, 1_100_000_003_000_000_004)))
    emit("utimens explicit: times", times("tm"))
    emit("utimens omit atime", call(utimensat, "tm", UTIME_OMIT, (1_200_000_000, 5)))
    emit("utimens omit atime: times", times("tm"))
    emit("utimens omit mtime", call(utimensat, "tm", (1_300_000_000, 6), UTIME_OMIT))
    emit("utimens omit mtime: times", times("tm"))
    emit("utimens now", call(os.utime, "tm"))
    s = os.stat("tm")
    emit("utimens now: times", f"{recent(s.st_atime)} {recent(s.st_mtime)}")
    fd = os.open("tm", os.O_RDWR)
    emit("futimens", call(os.utime, fd, ns=(7_000_000_000, 8_000_000_000)))
    emit("futimens: times", times("tm"))
    os.pwrite(fd, b"T", 0)
    os.close(fd)
    emit("a write moves mtime", recent(os.stat("tm").st_mtime))
    os.utime("tm", ns=(9_000_000_000, 9_000_000_000))
    os.truncate("tm", 1)
    emit("a truncate moves mtime", recent(os.stat("tm").st_mtime))
    os.utime("odir", ns=(9_000_000_000, 9_000_000_000))
    write_file("odir/new", b"")
    emit("a create moves the directory's mtime", recent(os.stat("odir").st_mtime))
    os.utime("tm", ns=(5_000_000_000, 6_000_000_000))
    os.symlink("tm", "tm-link")
    emit("utimens of a symlink itself", call(os.utime, "tm-link", ns=(3_000_000_000, 4_000_000_000), follow_symlinks=False))
    emit("utimens of a symlink itself: link, target", f"{times('tm-link', False)} / {times('tm')}")
    emit("utimens of a missing file", call(os.utime, "missing"))
    # Only reading the data may move atime (relatime: an atime older than mtime); open, stat and close may not.
    os.utime("tm", ns=(4_000_000_000, 6_000_000_000))
    time.sleep(0.2)  # the mount's release of the last open arrives after close(2) returns
    os.close(os.open("tm", os.O_RDONLY))
    os.stat("tm")
    os.close(os.open("tm", os.O_RDWR))
    time.sleep(1.1)  # past the mount's attribute cache, so what the backing file says shows
    emit("open, stat and close keep atime", os.stat("tm").st_atime_ns == 4_000_000_000)
    with open("tm", "rb") as f:
        f.read()
    emit("a read moves an atime older than mtime", recent(os.stat("tm").st_atime))
    # Written, timed, then closed: close must not move the time again.
    fd = os.open("tm2", os.O_WRONLY | os.O_CREAT, 0o644)
    os.pwrite(fd, pattern(5000, 50), 0)
    os.utime(fd, ns=(2_000_000_000, 2_000_000_000))
    os.close(fd)
    emit("a write, futimens, close: times", times("tm2"))
    emit("a write, futimens, close: stat", st("tm2"))


def foreign():
    """Objects made by root with `prepare`: calls on another user's files (root may do them all)."""
    emit("foreign: stat", st("../foreign"))
    emit("foreign: read", content("../foreign"))
    emit("foreign: open for writing", opens("../foreign", os.O_WRONLY))
    emit("foreign: chmod", call(os.chmod, "../foreign", 0o666))
    emit("foreign: chown to the caller", call(os.chown, "../foreign", os.getuid(), -1))
    emit("foreign: utimens explicit", call(os.utime, "../foreign", ns=(1, 1)))
    emit("foreign: utimens now (no write permission)", call(os.utime, "../foreign"))
    emit("foreign: utimens now of a 0666 file", call(os.utime, "../foreign-rw"))
    emit("foreign: truncate", call(os.truncate, "../foreign", 0))
    emit("foreign: truncate a 0666 file", call(os.truncate, "../foreign-rw", 3))
    emit("foreign: write a 0666 file", call(lambda: write_file("../foreign-rw", b"written")))
    emit("foreign: hard link (protected_hardlinks)", call(os.link, "../foreign", "foreign-link"))
    emit("foreign: fallocate a 0666 file", call(lambda: fallocate_fd("../foreign-rw", 0, 0, 100)))
    emit("foreign: stats after", f"{st('../foreign')} / {st('../foreign-rw')}")
    emit("foreign: create in a root 0755 directory", opens("../foreign-dir/x", os.O_WRONLY | os.O_CREAT, 0o600))
    emit("foreign: unlink in a root 0755 directory", call(os.unlink, "../foreign-dir/f"))
    emit("foreign: rmdir a root directory in ours", call(os.rmdir, "../foreign-empty"))
    emit("foreign: rename a root file in ours", call(os.rename, "../foreign-moved", "foreign-moved"))
    emit("foreign: sticky directory, another's file", call(os.unlink, "../sticky/theirs"))


def fallocate_fd(path, mode, offset, length):
    fd = os.open(path, os.O_RDWR)
    try:
        fallocate(fd, mode, offset, length)
    finally:
        os.close(fd)


def fallocation():
    fd = os.open("fa", os.O_RDWR | os.O_CREAT, 0o644)
    emit("fallocate mode 0 from empty", call(fallocate, fd, 0, 0, 100_000))
    emit("fallocate mode 0: fstat", fst(fd))
    emit("fallocate mode 0: zeros", call(lambda: os.pread(fd, 100_000, 0) == bytes(100_000)))
    os.pwrite(fd, pattern(100_000, 60), 0)
    emit("fallocate mode 0 inside the file", call(fallocate, fd, 0, 1000, 5000))
    emit("fallocate mode 0 inside: content", digest(pread_all(fd, 200_000, 0)))
    emit("fallocate mode 0 across the end", call(fallocate, fd, 0, 90_000, 20_000))
    emit("fallocate mode 0 across the end: fstat", fst(fd))
    emit("fallocate KEEP_SIZE past the end", call(fallocate, fd, FALLOC_KEEP_SIZE, 100_000, 50_000))
    emit("fallocate KEEP_SIZE: fstat", fst(fd))
    emit("fallocate PUNCH_HOLE|KEEP_SIZE unaligned", call(fallocate, fd, FALLOC_PUNCH_HOLE | FALLOC_KEEP_SIZE, 1000, 9000))
    emit("fallocate PUNCH_HOLE|KEEP_SIZE aligned", call(fallocate, fd, FALLOC_PUNCH_HOLE | FALLOC_KEEP_SIZE, 16384, 32768))
    emit("fallocate PUNCH_HOLE|KEEP_SIZE past the end", call(fallocate, fd, FALLOC_PUNCH_HOLE | FALLOC_KEEP_SIZE, 105_000, 50_000))
    emit("fallocate PUNCH_HOLE: content", digest(pread_all(fd, 200_000, 0)))
    emit("fallocate PUNCH_HOLE: fstat", fst(fd))
    emit("fallocate PUNCH_HOLE without KEEP_SIZE", call(fallocate, fd, FALLOC_PUNCH_HOLE, 0, 4096))
    emit("fallocate ZERO_RANGE", call(fallocate, fd, FALLOC_ZERO, 50_000, 3000))
    emit("fallocate ZERO_RANGE across the end", call(fallocate, fd, FALLOC_ZERO, 105_000, 10_000))
    emit("fallocate ZERO_RANGE: fstat", fst(fd))
    emit("fallocate ZERO_RANGE|KEEP_SIZE past the end", call(fallocate, fd, FALLOC_ZERO | FALLOC_KEEP_SIZE, 110_000, 10_000))
    emit("fallocate ZERO_RANGE: content", digest(pread_all(fd, 200_000, 0)))
    emit("fallocate PUNCH_HOLE|ZERO_RANGE", call(fallocate, fd, FALLOC_PUNCH_HOLE | FALLOC_ZERO | FALLOC_KEEP_SIZE, 0, 10))
    emit("fallocate an unknown mode bit", call(fallocate, fd, 0x80, 0, 10))
    emit("fallocate a negative offset", call(fallocate, fd, 0, -1, 10))
    emit("fallocate a zero length", call(fallocate, fd, 0, 0, 0))
    emit("fallocate a negative length", call(fallocate, fd, 0, 0, -10))
    emit("fallocate offset+length overflows", call(fallocate, fd, 0, 1 << 62, 1 << 62))
    emit("fallocate at the largest offset", call(fallocate, fd, 0, (1 << 63) - 2, 1))
    emit("fallocate PUNCH_HOLE offset+length overflows", call(fallocate, fd, FALLOC_PUNCH_HOLE | FALLOC_KEEP_SIZE, 1 << 62, 1 << 62))
    emit("fallocate invalid: fstat", fst(fd))
    os.close(fd)
    fd = os.open("fa", os.O_RDONLY)
    emit("fallocate an O_RDONLY descriptor", call(fallocate, fd, 0, 0, 10))
    os.close(fd)
    fd = os.open("odir", os.O_RDONLY | os.O_DIRECTORY)
    emit("fallocate a directory", call(fallocate, fd, 0, 0, 10))
    os.close(fd)
    emit("fallocate: content", content("fa"))
    # FUSE does not pass these two on (the kernel answers EOPNOTSUPP); on ext4 they shift the data after the range.
    data = pattern(100_000, 61)
    write_file("fa-shift", data)
    fd = os.open("fa-shift", os.O_RDWR)
    emit("fallocate COLLAPSE_RANGE", call(fallocate, fd, FALLOC_COLLAPSE, 4096, 8192))
    emit("fallocate COLLAPSE_RANGE: unchanged", pread_all(fd, 200_000, 0) == data)
    data = pread_all(fd, 200_000, 0)
    emit("fallocate INSERT_RANGE", call(fallocate, fd, FALLOC_INSERT, 65536, 4096))
    emit("fallocate INSERT_RANGE: unchanged", pread_all(fd, 200_000, 0) == data)
    os.close(fd)


def sync_and_statfs():
    fd = os.open("sy", os.O_RDWR | os.O_CREAT, 0o644)
    os.pwrite(fd, pattern(70_000, 70), 0)
    emit("fsync", call(os.fsync, fd))
    emit("fdatasync", call(os.fdatasync, fd))
    os.close(fd)
    fd = os.open("sy", os.O_RDONLY)
    emit("fsync an O_RDONLY descriptor", call(os.fsync, fd))
    os.close(fd)
    fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
    emit("fsync a directory", call(os.fsync, fd))
    a, b = os.fstatvfs(fd), os.statvfs(".")
    os.close(fd)
    emit("statvfs", f"bsize {a.f_bsize} frsize {a.f_frsize} blocks {a.f_blocks} files {a.f_files} namemax {a.f_namemax}")
    emit("statvfs: counts in range", a.f_bavail <= a.f_bfree <= a.f_blocks and a.f_ffree <= a.f_files)
    emit("statvfs and fstatvfs agree", (a.f_blocks, a.f_bsize) == (b.f_blocks, b.f_bsize))
    emit("statvfs of a missing path", call(os.statvfs, "missing"))


def concurrency():
    """Four writers on disjoint ranges and two readers of a stable prefix, on one file through separate
    descriptors; then four threads appending records."""
    stable = pattern(64 * 1024, 80)
    write_file("cc", stable)
    chunk, rounds, writers = 40_000, 20, 4
    bad = []

    def work(k):
        fd = os.open("cc", os.O_RDWR)
        try:
            for r in range(rounds):
                if k < writers:
                    os.pwrite(fd, pattern(chunk, k * 1000 + r), len(stable) + k * chunk)
                elif pread_all(fd, len(stable), 0) != stable:
                    bad.append(f"reader {k} round {r}")
        except OSError as e:
            bad.append(f"thread {k}: {errname(e.errno)}")
        finally:
            os.close(fd)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(writers + 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    emit("concurrent writers and readers: failures", ",".join(bad) or "none")
    emit("concurrent writers and readers: content", content("cc"))
    records, per = 1000, 50

    def append(k):
        fd = os.open("cc-log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            for r in range(per):
                os.write(fd, (f"{k}:{r}:".encode() + bytes([65 + k]) * records)[:records])
        finally:
            os.close(fd)

    threads = [threading.Thread(target=append, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with open("cc-log", "rb") as f:
        log = f.read()
    recs = sorted(log[i:i + records] for i in range(0, len(log), records))
    emit("concurrent appends: size", len(log))
    emit("concurrent appends: records intact", digest(b"".join(recs)))


def mapping():
    n = 3 * PAGE + 100
    data = bytearray(pattern(n, 90))
    write_file("mm", bytes(data))
    fd = os.open("mm", os.O_RDWR)
    m = mmap.mmap(fd, n, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    emit("mmap: reads the file", digest(m[:]))
    for i, at in enumerate([0, PAGE - 1, PAGE, 2 * PAGE + 17, n - 1]):
        m[at] = 200 + i
        data[at] = 200 + i
    m.flush()
    other = os.open("mm", os.O_RDONLY)
    emit("mmap: stores reach read(2) after msync", os.pread(other, n + 10, 0) == bytes(data))
    os.pwrite(fd, b"WRITTEN", PAGE + 5)
    data[PAGE + 5:PAGE + 12] = b"WRITTEN"
    emit("mmap: sees write(2)", m[:] == bytes(data))
    emit("mmap: past the end of the file reads zeros", m.size() == n)
    m.close()
    tail = mmap.mmap(fd, n, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ)
    emit("mmap: the partial last page", tail[3 * PAGE:] == bytes(data[3 * PAGE:]))
    tail.close()
    p = mmap.mmap(fd, n, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    p[0:4] = b"PRIV"
    p.close()
    emit("mmap MAP_PRIVATE: stores stay private", os.pread(other, 4, 0) == bytes(data[0:4]))
    os.ftruncate(fd, n + PAGE)
    g = mmap.mmap(fd, n + PAGE, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    g[n + 10:n + 14] = b"GROW"
    g.flush()
    g.close()
    os.close(fd)
    os.close(other)
    emit("mmap: stores after ftruncate grow", content("mm"))
    ro = os.open("mm", os.O_RDONLY)
    emit("mmap MAP_SHARED writable of an O_RDONLY descriptor",
         call(lambda: mmap.mmap(ro, PAGE, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE) and "mapped"))
    os.close(ro)


def prepare(d):
    """As root, in DIR: objects the unprivileged caller does not own."""
    def make(name, data, mode):
        write_file(os.path.join(d, name), data, mode)
        os.chmod(os.path.join(d, name), mode)
    make("foreign", b"root's file", 0o644)
    make("foreign-rw", b"root's file, world-writable", 0o666)
    make("foreign-moved", b"root's file to move", 0o644)
    os.mkdir(os.path.join(d, "foreign-dir"), 0o755)
    make("foreign-dir/f", b"inside", 0o644)
    os.mkdir(os.path.join(d, "foreign-empty"), 0o755)
    os.mkdir(os.path.join(d, "sticky"), 0o1777)
    make("sticky/theirs", b"theirs", 0o666)


def keyless(d):
    """In DIR, an encrypted directory of the mounting user's (mode 0777) holding their encrypted file `theirs`
    (0666): what a caller without the key may and may not do."""
    os.chdir(d)
    emit("stat their file", call(lambda: stat.S_IMODE(os.stat("theirs").st_mode) == 0o666 and "ok"))
    emit("open their file for reading", opens("theirs", os.O_RDONLY))
    emit("open their file for writing", opens("theirs", os.O_WRONLY))
    emit("truncate their file", call(os.truncate, "theirs", 0))
    emit("read an attribute of their file", call(os.getxattr, "theirs", "user.note"))
    emit("create in their encrypted directory", opens("mine", os.O_WRONLY | os.O_CREAT, 0o644))
    emit("mknod a file in their encrypted directory", call(os.mknod, "mine-node", 0o644 | stat.S_IFREG))
    emit("rename their file", call(os.rename, "theirs", "theirs-renamed"))
    emit("unlink their file", call(os.unlink, "theirs-renamed"))


STEPS = [create_and_open, read_and_write, holes, truncation, renames, links, symlinks, directories, unlink_open,
         modes_and_owners, time_stamps, foreign, fallocation, sync_and_statfs, concurrency, mapping]


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("run", "prepare", "keyless"):
        sys.exit(__doc__)
    if sys.argv[1] == "prepare":
        prepare(sys.argv[2])
        return
    if sys.argv[1] == "keyless":
        keyless(sys.argv[2])
        sys.stdout.write("\n".join(out) + "\n")
        return
    os.umask(0)
    work = os.path.join(sys.argv[2], "work")
    os.mkdir(work, 0o755)
    os.chdir(work)
    for step in STEPS:
        try:
            step()
        except Exception as e:  # a call the step did not expect to fail: report it and go on with the next step
            emit(f"{step.__name__}: unexpected", f"{type(e).__name__} {e}")
    emit("final listing", listing("."))
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
