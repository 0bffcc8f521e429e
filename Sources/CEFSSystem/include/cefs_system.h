// SPDX-License-Identifier: Apache-2.0
// C shims for the few Linux calls the Swift Glibc module does not surface (GNU extensions, xattrs,
// renameat2). Only EFSSystem imports this module. The definitions live in shim.c, compiled with _GNU_SOURCE,
// so this header stays compatible with the Glibc module map.
#ifndef CEFS_SYSTEM_H
#define CEFS_SYSTEM_H

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>

int cefs_fallocate(int fd, int mode, off_t offset, off_t len);
int cefs_renameat2(const char *from, const char *to, unsigned int flags);
int cefs_renameat2_at(int fromdir, const char *from, int todir, const char *to, unsigned int flags);
int cefs_stat(const char *path, struct stat *st);
int cefs_lstat(const char *path, struct stat *st);
int cefs_fstat(int fd, struct stat *st);
ssize_t cefs_flistxattr(int fd, char *list, size_t size);
ssize_t cefs_fgetxattr(int fd, const char *name, void *value, size_t size);
ssize_t cefs_getxattr(const char *path, const char *name, void *value, size_t size);
int cefs_fsetxattr(int fd, const char *name, const void *value, size_t size, int flags);
int cefs_fremovexattr(int fd, const char *name);
void cefs_explicit_bzero(void *p, size_t n);
int cefs_ofd_setlk(int fd, struct flock *fl);
int cefs_ofd_getlk(int fd, struct flock *fl);
int cefs_sync_file_range_write(int fd, off_t offset, off_t nbytes);
int cefs_syncfs(int fd);
/* prctl(PR_SET_DUMPABLE, 0): no core dump, no ptrace by other processes of the same user, /proc/PID owned by root. */
int cefs_set_not_dumpable(void);
/* mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) when the memory-lock limit allows it without failing later
   allocations (unlimited, or CAP_IPC_LOCK); returns 0 if locked, else -1 with errno (EPERM when the limit is finite). */
int cefs_lock_all_memory(void);

#endif
