// SPDX-License-Identifier: Apache-2.0
#define _GNU_SOURCE 1
#include <fcntl.h>
#include <string.h>
#include <errno.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cefs_system.h"

int cefs_fallocate(int fd, int mode, off_t offset, off_t len) { return fallocate(fd, mode, offset, len); }
int cefs_renameat2(const char *from, const char *to, unsigned int flags) {
    return (int)syscall(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to, flags);
}
int cefs_renameat2_at(int fromdir, const char *from, int todir, const char *to, unsigned int flags) {
    return (int)syscall(SYS_renameat2, fromdir, from, todir, to, flags);
}
int cefs_stat(const char *path, struct stat *st) { return stat(path, st); }
int cefs_lstat(const char *path, struct stat *st) { return lstat(path, st); }
int cefs_fstat(int fd, struct stat *st) { return fstat(fd, st); }
ssize_t cefs_flistxattr(int fd, char *list, size_t size) { return flistxattr(fd, list, size); }
ssize_t cefs_fgetxattr(int fd, const char *name, void *value, size_t size) { return fgetxattr(fd, name, value, size); }
ssize_t cefs_getxattr(const char *path, const char *name, void *value, size_t size) { return getxattr(path, name, value, size); }
int cefs_fsetxattr(int fd, const char *name, const void *value, size_t size, int flags) {
    return fsetxattr(fd, name, value, size, flags);
}
int cefs_fremovexattr(int fd, const char *name) { return fremovexattr(fd, name); }
void cefs_explicit_bzero(void *p, size_t n) { explicit_bzero(p, n); }
int cefs_ofd_setlk(int fd, struct flock *fl) { return fcntl(fd, F_OFD_SETLK, fl); }
int cefs_ofd_getlk(int fd, struct flock *fl) { return fcntl(fd, F_OFD_GETLK, fl); }
int cefs_sync_file_range_write(int fd, off_t offset, off_t nbytes) { return sync_file_range(fd, offset, nbytes, SYNC_FILE_RANGE_WRITE); }
int cefs_syncfs(int fd) { return syncfs(fd); }

int cefs_set_not_dumpable(void) { return prctl(PR_SET_DUMPABLE, 0, 0, 0, 0); }

int cefs_lock_all_memory(void) {
#ifndef MCL_ONFAULT
#define MCL_ONFAULT 4
#endif
    /* With MCL_FUTURE under a finite limit, a later malloc or thread stack past the limit would fail: lock only
       when nothing can hit it (no limit, or root, whose CAP_IPC_LOCK ignores it). */
    struct rlimit r;
    if (getrlimit(RLIMIT_MEMLOCK, &r) != 0) return -1;
    if (r.rlim_cur != RLIM_INFINITY && geteuid() != 0) {
        errno = EPERM;
        return -1;
    }
    return mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT);
}
