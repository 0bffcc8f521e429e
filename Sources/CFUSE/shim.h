// SPDX-License-Identifier: Apache-2.0
// libfuse3 for Swift. Only EFSFUSE imports this module.
#ifndef CFUSE_SHIM_H
#define CFUSE_SHIM_H

// FUSE_USE_VERSION must be defined before the libfuse headers, and a module map cannot pass -D: this header does.
// 312 gives the fuse_loop_cfg_* API of the multithreaded loop (libfuse 3.12 and later; Debian 12 has 3.14).
#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

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

#endif
