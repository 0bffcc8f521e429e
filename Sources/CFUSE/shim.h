// SPDX-License-Identifier: Apache-2.0
// libfuse3 for Swift. Only EFSFUSE imports this module.
#ifndef CFUSE_SHIM_H
#define CFUSE_SHIM_H

// FUSE_USE_VERSION must be defined before the libfuse headers, and a module map cannot pass -D: this header does.
// 312 gives the fuse_loop_cfg_* API of the multithreaded loop (libfuse 3.12 and later; Debian 12 has 3.14).
#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <unistd.h>

// Function-like macros (versioned symbols) do not import into Swift: wrap them.
static inline int cfuse_session_loop_mt(struct fuse_session *se, struct fuse_loop_config *config) {
    return fuse_session_loop_mt(se, config);
}

// libfuse's multithreaded loop ends by cancelling its workers. A worker cancelled inside an operation would unwind
// through Swift frames and leave locks held, so operations run with cancellation disabled.
static inline int cfuse_cancel_disable(void) {
    int old = 0;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
    return old;
}
static inline void cfuse_cancel_restore(int old) {
    int ignored = 0;
    pthread_setcancelstate(old, &ignored);
}

// A process started with SIGINT, SIGTERM or SIGHUP blocked (some parents block signals in the thread that spawns)
// would never see the signals fuse_set_signal_handlers() handles: unblock them, before the loop starts its workers.
static inline int cfuse_unblock_exit_signals(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    return pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

// Bit fields of struct fuse_file_info, set through functions so the Swift side does not depend on how they import.
static inline void cfuse_file_info_set_keep_cache(struct fuse_file_info *fi, int v) { fi->keep_cache = v ? 1 : 0; }
static inline void cfuse_file_info_set_direct_io(struct fuse_file_info *fi, int v) { fi->direct_io = v ? 1 : 0; }

// MARK: - FUSE_HANDLE_KILLPRIV_V2, which libfuse 3.14 cannot ask for
//
// Without it the kernel asks the daemon for `security.capability` (a GETXATTR round trip) before every write(2)
// to a file, because FUSE sets SB_NOSEC on the super block only when the daemon takes over killing privileges
// (fs/fuse/inode.c, process_init_reply). With it, the daemon must clear set-user-ID and set-group-ID itself when
// the kernel says so: FUSE_WRITE_KILL_SUIDGID in a WRITE, FATTR_KILL_SUIDGID in a SETATTR, FUSE_OPEN_KILL_SUIDGID
// in an OPEN or CREATE (include/uapi/linux/fuse.h, protocol 7.33). Capabilities need nothing here: the daemon's
// own write, truncate or chown of the backing file makes the backing file system drop `security.capability`.
//
// libfuse (3.14) knows none of these bits, so the session's I/O goes through the two functions below
// (fuse_session_custom_io). A worker reads a request and serves it on the same thread, replies included, so
// thread-local state carries what the reader saw to the reply and to the operation:
//   - an INIT request that offers the flag arms the rewrite of the INIT reply with the same unique id;
//   - a request that asks for set-ID bits to be killed leaves its node id for cfuse_take_kill_suidgid().

// (Function-local: the Swift importer emits the inline functions it calls, but no file-scope variables.)
static inline uint64_t *cfuse_init_unique_slot(void) {
    static _Thread_local uint64_t unique;
    return &unique;
}
static inline uint32_t *cfuse_init_offers_slot(void) {
    static _Thread_local uint32_t offers;
    return &offers;
}
static inline uint64_t *cfuse_kill_suidgid_slot(void) {
    static _Thread_local uint64_t node;
    return &node;
}
#define cfuse_init_unique (*cfuse_init_unique_slot())
#define cfuse_init_offers (*cfuse_init_offers_slot())
#define CFUSE_OFFERS_KILLPRIV_V2 1u
#define CFUSE_OFFERS_IO_URING 2u
#define cfuse_kill_suidgid_node (*cfuse_kill_suidgid_slot())

// The `size`-byte (2 or 4) word at `offset` of a request's or reply's argument of `len` bytes; 0 if it is shorter.
static inline uint32_t cfuse_word(const void *arg, size_t len, size_t offset, size_t size) {
    uint32_t w = 0;  // little-endian: a 16-bit word lands in the low half
    if (size <= sizeof w && len >= offset + size) memcpy(&w, (const char *)arg + offset, size);
    return w;
}

// Whether the 32-bit flag word at `offset` of a request's argument has `bit` set (false if the argument is shorter).
static inline int cfuse_flag_set(const char *arg, size_t arglen, size_t offset, uint32_t bit) {
    return (cfuse_word(arg, arglen, offset, 4) & bit) != 0;
}

// Requests whose argument says "kill set-ID bits": where the flag word is in the argument, and its bit.
static inline int cfuse_asks_kill_suidgid(const struct fuse_in_header *h, const char *arg, size_t arglen) {
    switch (h->opcode) {
    case FUSE_WRITE:
        return cfuse_flag_set(arg, arglen, offsetof(struct fuse_write_in, write_flags), FUSE_WRITE_KILL_SUIDGID);
    case FUSE_SETATTR:
        return cfuse_flag_set(arg, arglen, offsetof(struct fuse_setattr_in, valid), FATTR_KILL_SUIDGID);
    case FUSE_OPEN:
        return cfuse_flag_set(arg, arglen, offsetof(struct fuse_open_in, open_flags), FUSE_OPEN_KILL_SUIDGID);
    case FUSE_CREATE:
        return cfuse_flag_set(arg, arglen, offsetof(struct fuse_create_in, open_flags), FUSE_OPEN_KILL_SUIDGID);
    default:
        return 0;
    }
}

#include "uring.h"

static inline ssize_t cfuse_io_read(int fd, void *buf, size_t len, void *userdata) {
    (void)userdata;
    ssize_t n = read(fd, buf, len);
    cfuse_kill_suidgid_node = 0;
    if (n < (ssize_t)sizeof(struct fuse_in_header)) return n;
    struct fuse_in_header h;
    memcpy(&h, buf, sizeof h);
    const char *arg = (const char *)buf + sizeof h;
    size_t arglen = (size_t)n - sizeof h;
    if (h.opcode == FUSE_INIT) {
        // fuse_init_in starts major, minor, max_readahead, flags (32 bits each); KILLPRIV_V2 needs protocol 7.33.
        // flags2 (FUSE_OVER_IO_URING) counts only with FUSE_INIT_EXT.
        uint32_t version[2] = {0, 0};
        if (arglen >= sizeof version) memcpy(version, arg, sizeof version);
        uint32_t offers = 0;
        if (version[0] == 7 && version[1] >= 33 &&
            cfuse_flag_set(arg, arglen, offsetof(struct fuse_init_in, flags), FUSE_HANDLE_KILLPRIV_V2)) {
            offers |= CFUSE_OFFERS_KILLPRIV_V2;
        }
        if (version[0] == 7 && cfuse_flag_set(arg, arglen, offsetof(struct fuse_init_in, flags), FUSE_INIT_EXT) &&
            cfuse_flag_set(arg, arglen, offsetof(struct fuse_init_in, flags2), CFUSE_OVER_IO_URING_FLAGS2)) {
            offers |= CFUSE_OFFERS_IO_URING;
        }
        cfuse_init_unique = h.unique;
        cfuse_init_offers = offers;
    } else if (cfuse_asks_kill_suidgid(&h, arg, arglen)) {
        cfuse_kill_suidgid_node = h.nodeid;
    }
    return n;
}

// Sets `bits` in the 32-bit word at `offset` of a reply argument (if the argument is that long).
static inline void cfuse_reply_set_flags(struct iovec *arg, size_t offset, uint32_t bits) {
    if (arg->iov_len < offset + 4) return;
    uint32_t f;
    memcpy(&f, (char *)arg->iov_base + offset, 4);
    f |= bits;
    memcpy((char *)arg->iov_base + offset, &f, 4);
}

static inline ssize_t cfuse_io_writev(int fd, struct iovec *iov, int count, void *userdata) {
    (void)userdata;
    ssize_t taken = cfuse_uring_take_reply(iov, count);
    if (taken >= 0) return taken;
    if (cfuse_init_unique == 0 || count < 1 || iov[0].iov_len != sizeof(struct fuse_out_header)) {
        return writev(fd, iov, count);
    }
    struct fuse_out_header out;
    memcpy(&out, iov[0].iov_base, sizeof out);
    if (out.unique != cfuse_init_unique) return writev(fd, iov, count);
    cfuse_init_unique = 0;
    // fuse_init_out starts major, minor, max_readahead, flags (32 bits each).
    int ok = out.error == 0 && count >= 2 && iov[1].iov_len >= offsetof(struct fuse_init_out, flags) + 4;
    int uring = ok && (cfuse_init_offers & CFUSE_OFFERS_IO_URING) &&
                iov[1].iov_len >= offsetof(struct fuse_init_out, flags2) + 4 && cfuse_uring_can_offer();
    size_t payload = 0;
    if (ok && (cfuse_init_offers & CFUSE_OFFERS_KILLPRIV_V2)) {
        cfuse_reply_set_flags(&iov[1], offsetof(struct fuse_init_out, flags), FUSE_HANDLE_KILLPRIV_V2);
    }
    if (uring) {
        cfuse_reply_set_flags(&iov[1], offsetof(struct fuse_init_out, flags), FUSE_INIT_EXT);
        cfuse_reply_set_flags(&iov[1], offsetof(struct fuse_init_out, flags2), CFUSE_OVER_IO_URING_FLAGS2);
        // The entries' payload buffers must hold the kernel's largest request: max(8 KiB, max_write, max_pages
        // pages), where max_pages is 32 pages unless the reply sets FUSE_MAX_PAGES.
        size_t page = (size_t)sysconf(_SC_PAGESIZE);
        size_t max_write = cfuse_word(iov[1].iov_base, iov[1].iov_len, offsetof(struct fuse_init_out, max_write), 4);
        size_t max_pages = cfuse_word(iov[1].iov_base, iov[1].iov_len, offsetof(struct fuse_init_out, max_pages), 2);
        payload = 8192;
        if (max_write > payload) payload = max_write;
        if (max_pages * page > payload) payload = max_pages * page;
        if (32 * page > payload) payload = 32 * page;
    }
    ssize_t n = writev(fd, iov, count);
    cfuse_uring_init_done(uring && n >= 0, payload);
    return n;
}

/// Routes the session's requests and replies through the functions above. Call after fuse_session_mount and
/// before the loop starts. Returns 0 or a negative errno.
static inline int cfuse_session_handle_killpriv_v2(struct fuse_session *se) {
    struct fuse_custom_io io;
    memset(&io, 0, sizeof io);
    io.read = cfuse_io_read;
    io.writev = cfuse_io_writev;
    return fuse_session_custom_io(se, &io, fuse_session_fd(se));
}

/// The node id of the request this thread is serving if the kernel asked for its set-ID bits to be killed, else
/// 0. Reading it clears it.
static inline uint64_t cfuse_take_kill_suidgid(void) {
    uint64_t node = cfuse_kill_suidgid_node;
    cfuse_kill_suidgid_node = 0;
    return node;
}

#endif
