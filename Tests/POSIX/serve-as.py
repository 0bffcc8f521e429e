#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# This file is part of swift-efs. See LICENSE for details.
"""Mounts a FUSE file system as root and hands it to a daemon that runs as another uid, as mount.fuse3's
drop_privileges does: the daemon has only that uid's rights, and the mount is its own (no allow_other).

    serve-as.py UID MOUNTPOINT COMMAND... # in COMMAND, @FD@ stands for /dev/fd/N, the mount's /dev/fuse descriptor

Tests use it where an unprivileged user cannot mount on its own (here /dev/fuse is mode 0600, and libfuse falls
back to fusermount3 only when mount(2) fails, not when /dev/fuse does not open). libfuse takes a mount point of
the form /dev/fd/N as an already mounted session. The kernel options are the ones `efs mount` asks for.
"""
import ctypes
import os
import sys

MS_NOSUID, MS_NODEV = 2, 4


def main():
    if len(sys.argv) < 4 or os.geteuid() != 0:
        sys.exit(__doc__)
    uid, mountpoint, command = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open("/dev/fuse", os.O_RDWR)  # not close-on-exec: the daemon serves it
    os.set_inheritable(fd, True)
    options = f"fd={fd},rootmode=40000,user_id={uid},group_id={uid},default_permissions"
    if libc.mount(b"efs:serve-as", mountpoint.encode(), b"fuse.efs", MS_NOSUID | MS_NODEV, options.encode()) != 0:
        e = ctypes.get_errno()
        sys.exit(f"serve-as: mount on {mountpoint}: {os.strerror(e)}")
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    os.execvp(command[0], [a.replace("@FD@", f"/dev/fd/{fd}") for a in command])


if __name__ == "__main__":
    main()
