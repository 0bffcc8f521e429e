// SPDX-License-Identifier: Apache-2.0
// FUSE over io_uring (Linux 6.14 and later), for libfuse 3.14, which does not know it. Included by shim.h.
//
// The kernel interface, from Documentation/filesystems/fuse-io-uring.rst and include/uapi/linux/fuse.h (protocol
// 7.42) of the Linux sources:
//   - the daemon offers FUSE_OVER_IO_URING (bit 41, so bit 9 of flags2, read only with FUSE_INIT_EXT) in its INIT
//     reply, and the kernel accepts it when the module parameter fuse.enable_uring is on;
//   - it then submits, on rings made with IORING_SETUP_SQE128, IORING_OP_URING_CMD commands on the /dev/fuse
//     descriptor: REGISTER (addr: two iovecs, a 288-byte header and a payload buffer at least the connection's
//     max_write and max_pages × page size; the 80-byte command area: flags, commit_id, qid) puts one entry on the
//     queue of CPU qid. Each possible CPU has a queue, and until every queue has an entry the kernel holds requests
//     back; once all do, it sends regular requests through the queues (forgets, interrupts and notifications stay
//     on /dev/fuse);
//   - a request completes the entry's command. The header then holds the fuse_in_header (in_out), the first
//     argument (the operation's fixed struct, op_in) and the payload size with the commit id (ring_ent_in_out); the
//     other arguments follow each other in the payload. in_header.len still counts every argument, so the first
//     one is len − 40 − payload bytes long;
//   - the reply goes in the same buffers: fuse_out_header in in_out, every reply argument in the payload with its
//     size in ring_ent_in_out.payload_sz. COMMIT_AND_FETCH (commit_id from the request) delivers it and makes the
//     entry wait for the next request.
//
// Here each possible CPU gets threads of its own (pinned to it), each with a ring and one entry. A thread turns
// each request back into the byte layout read(2) gives (header, first argument and payload end to end, built in
// front of the payload so the payload is never copied) and hands it to fuse_session_process_buf; the operation
// replies on the same thread, and cfuse_io_writev() puts the reply into the entry instead of writing it.
//
// Rings are made before the INIT reply: the offer is made only if every thread has its ring, because the kernel,
// once it has accepted, blocks all requests until every queue has registered (or a registration failed).
#ifndef CFUSE_URING_H
#define CFUSE_URING_H

#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <signal.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>

#define CFUSE_OVER_IO_URING_FLAGS2 (1u << (41 - 32))
#define CFUSE_URING_CMD_REGISTER 1
#define CFUSE_URING_CMD_COMMIT_AND_FETCH 2
#define CFUSE_URING_OP_IN_SIZE 128
// Room in front of the payload for the header and the first argument, page-aligned so the payload is too.
#define CFUSE_URING_GAP 4096

struct cfuse_uring_ent_in_out {
    uint64_t flags;
    uint64_t commit_id;
    uint32_t payload_sz;
    uint32_t padding;
    uint64_t reserved;
};

struct cfuse_uring_req_header {
    char in_out[128];
    char op_in[CFUSE_URING_OP_IN_SIZE];
    struct cfuse_uring_ent_in_out ring_ent_in_out;
};

struct cfuse_uring_cmd_req {
    uint64_t flags;
    uint64_t commit_id;
    uint16_t qid;
    uint8_t padding[6];
};

_Static_assert(sizeof(struct cfuse_uring_req_header) == 288, "fuse_uring_req_header is 288 bytes");
_Static_assert(sizeof(struct cfuse_uring_cmd_req) == 24, "fuse_uring_cmd_req is 24 bytes");

struct cfuse_ring {
    unsigned qid;
    int fd;
    pthread_t thread;
    pid_t tid;
    int waiting_ticks;             // consecutive guard looks that found it runnable without CPU time
    unsigned long long cpu_ticks;  // its CPU time at the guard's last look
    int started;
    void *ring_map;
    size_t ring_map_len;
    struct io_uring_sqe *sqes;  // 128-byte entries (IORING_SETUP_SQE128)
    size_t sqes_len;
    _Atomic unsigned *sq_tail;
    unsigned *sq_mask, *sq_array;
    _Atomic unsigned *cq_head, *cq_tail;
    unsigned *cq_mask;
    struct io_uring_cqe *cqes;
    unsigned pending;  // SQEs written and not yet submitted
    struct cfuse_uring_req_header header __attribute__((aligned(64)));
    struct iovec iov[2];
    char *buffer;  // CFUSE_URING_GAP bytes, then the payload
    size_t payload_size;
    uint64_t unique;  // of the request being served
    int replied;
};

enum { CFUSE_URING_PREPARED = 0, CFUSE_URING_RUN = 1, CFUSE_URING_STOP = 2 };

struct cfuse_uring_state {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    struct fuse_session *se;
    int devfd;
    int count;  // threads (and rings)
    int made;   // threads that made their ring
    int failed;
    int phase;
    int offered;  // the INIT reply offered io_uring
    size_t payload_size;
    struct cfuse_ring *rings;
    _Atomic int serving;  // threads that have served a request
    int idle_policy;      // ring threads run SCHED_IDLE, with the guard below
    pthread_t guard;
    int guard_started;
    _Atomic int promotions;  // times the guard moved the threads to SCHED_OTHER
    _Atomic int promoted;    // the guard has them at SCHED_OTHER now
};

// Function-local statics, like the slots in shim.h: every function here is emitted in the one Swift file that
// calls cfuse_session_handle_killpriv_v2, cfuse_uring_prepare and cfuse_uring_stop (SetIDBits.swift).
static inline struct cfuse_uring_state *cfuse_uring(void) {
    static struct cfuse_uring_state state = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};
    return &state;
}
static inline struct cfuse_ring **cfuse_uring_current_slot(void) {
    static _Thread_local struct cfuse_ring *ring;
    return &ring;
}

static inline int cfuse_uring_kernel_allows(void) {
    int fd = open("/sys/module/fuse/parameters/enable_uring", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    char c = 0;
    ssize_t n = read(fd, &c, 1);
    close(fd);
    return n == 1 && (c == 'Y' || c == 'y' || c == '1');
}

// The number of possible CPUs (num_possible_cpus, the kernel's queue count): the CPUs listed in
// /sys/devices/system/cpu/possible ("0-1", "0,2-5", …, ending in a newline or not), or -1 if the list is malformed.
static inline int cfuse_count_cpu_list(const char *text) {
    long count = 0, value = -1, from = -1;
    for (const char *p = text; ; p++) {
        if (*p >= '0' && *p <= '9') {
            value = (value < 0 ? 0 : value * 10) + (*p - '0');
            if (value > 100000) return -1;
            continue;
        }
        if (*p == '-' && value >= 0 && from < 0) {
            from = value;
            value = -1;
            continue;
        }
        if (value < 0) return -1;
        if (from >= 0 && value < from) return -1;
        count += from >= 0 ? value - from + 1 : 1;
        from = value = -1;
        if (*p == 0 || *p == '\n') break;
        if (*p != ',') return -1;
    }
    return count > 0 && count <= 100000 ? (int)count : -1;
}

static inline int cfuse_possible_cpus(void) {
    int fd = open("/sys/devices/system/cpu/possible", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    char text[256];
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n <= 0) return -1;
    text[n] = 0;
    return cfuse_count_cpu_list(text);
}

// Closes the ring. The payload buffer stays until the thread has been joined (cfuse_uring_stop): a request the
// kernel had already handed to the entry is copied into it in the thread's context, up to its last system call.
static inline void cfuse_ring_unmap(struct cfuse_ring *r) {
    if (r->sqes) munmap(r->sqes, r->sqes_len);
    if (r->ring_map) munmap(r->ring_map, r->ring_map_len);
    if (r->fd >= 0) close(r->fd);
    r->sqes = NULL;
    r->ring_map = NULL;
    r->fd = -1;
}

// Makes the ring (on the thread that will submit to it: IORING_SETUP_SINGLE_ISSUER). 0 or a negative errno.
static inline int cfuse_ring_setup(struct cfuse_ring *r) {
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    p.flags = IORING_SETUP_SQE128 | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    int fd = (int)syscall(__NR_io_uring_setup, 4, &p);
    if (fd < 0) return -errno;
    r->fd = fd;
    if (!(p.features & IORING_FEAT_SINGLE_MMAP) || !(p.features & IORING_FEAT_EXT_ARG)) return -EOPNOTSUPP;
    size_t sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    size_t cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    r->ring_map_len = sq_len > cq_len ? sq_len : cq_len;
    void *map = mmap(NULL, r->ring_map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
    if (map == MAP_FAILED) return -errno;
    r->ring_map = map;
    r->sqes_len = p.sq_entries * 128;
    void *sqes = mmap(NULL, r->sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
    if (sqes == MAP_FAILED) return -errno;
    r->sqes = sqes;
    char *m = map;
    r->sq_tail = (_Atomic unsigned *)(m + p.sq_off.tail);
    r->sq_mask = (unsigned *)(m + p.sq_off.ring_mask);
    r->sq_array = (unsigned *)(m + p.sq_off.array);
    r->cq_head = (_Atomic unsigned *)(m + p.cq_off.head);
    r->cq_tail = (_Atomic unsigned *)(m + p.cq_off.tail);
    r->cq_mask = (unsigned *)(m + p.cq_off.ring_mask);
    r->cqes = (struct io_uring_cqe *)(m + p.cq_off.cqes);
    return 0;
}

// Queues one command for the ring's entry (submitted by the next cfuse_ring_wait).
static inline void cfuse_ring_queue_cmd(struct cfuse_ring *r, int devfd, uint32_t op, uint64_t commit_id) {
    unsigned tail = atomic_load_explicit(r->sq_tail, memory_order_relaxed);
    unsigned idx = tail & *r->sq_mask;
    struct io_uring_sqe *sqe = (struct io_uring_sqe *)((char *)r->sqes + (size_t)idx * 128);
    memset(sqe, 0, 128);
    sqe->opcode = IORING_OP_URING_CMD;
    sqe->fd = devfd;
    sqe->cmd_op = op;
    sqe->addr = (uint64_t)(uintptr_t)r->iov;
    sqe->len = 2;
    struct cfuse_uring_cmd_req cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.commit_id = commit_id;
    cmd.qid = (uint16_t)r->qid;
    memcpy(sqe->cmd, &cmd, sizeof cmd);
    r->sq_array[idx] = idx;
    atomic_store_explicit(r->sq_tail, tail + 1, memory_order_release);
    r->pending++;
}

// Submits what is queued and waits up to `ms` for a completion. 1 and its result in *res, 0 if none came.
static inline int cfuse_ring_wait(struct cfuse_ring *r, int ms, int *res) {
    struct __kernel_timespec ts = {ms / 1000, (long long)(ms % 1000) * 1000000};
    struct io_uring_getevents_arg arg;
    memset(&arg, 0, sizeof arg);
    arg.ts = (uint64_t)(uintptr_t)&ts;
    long n = syscall(__NR_io_uring_enter, r->fd, r->pending, 1, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, &arg, sizeof arg);
    if (n >= 0) r->pending -= (unsigned)n > r->pending ? r->pending : (unsigned)n;
    else if (errno != EINTR && errno != ETIME && errno != EAGAIN && errno != EBUSY) { *res = -errno; return 1; }
    unsigned head = atomic_load_explicit(r->cq_head, memory_order_relaxed);
    if (head == atomic_load_explicit(r->cq_tail, memory_order_acquire)) return 0;
    *res = r->cqes[head & *r->cq_mask].res;
    atomic_store_explicit(r->cq_head, head + 1, memory_order_release);
    return 1;
}

#define CFUSE_SCHED_OTHER 0
#define CFUSE_SCHED_IDLE 5

static inline int cfuse_set_policy(pid_t tid, int policy) {
    struct sched_param sp;
    memset(&sp, 0, sizeof sp);
    return (int)syscall(__NR_sched_setscheduler, tid, policy, &sp);
}

// A READ or WRITE of 64 KiB or more (fuse_read_in: fh, offset, then the 32-bit size).
static inline int cfuse_uring_long_request(const struct fuse_in_header *in, const char *arg, size_t arglen, size_t payload) {
    if (in->opcode == FUSE_WRITE) return payload >= 65536;
    return in->opcode == FUSE_READ && cfuse_word(arg, arglen, offsetof(struct fuse_read_in, size), 4) >= 65536;
}

// Serves the request in the entry: rebuilds read(2)'s layout in front of the payload, lets libfuse dispatch it,
// and leaves the reply (or EIO when there was none) in the entry.
static inline void cfuse_ring_serve(struct cfuse_ring *r, struct cfuse_uring_state *st) {
    struct fuse_in_header in;
    memcpy(&in, r->header.in_out, sizeof in);
    size_t payload = r->header.ring_ent_in_out.payload_sz;
    char *start = NULL;
    size_t op_len = 0;
    if (in.len >= sizeof in + payload && payload <= r->payload_size) {
        op_len = in.len - sizeof in - payload;
        if (op_len <= CFUSE_URING_OP_IN_SIZE) start = r->buffer + CFUSE_URING_GAP - sizeof in - op_len;
    }
    r->unique = in.unique;
    r->replied = 0;
    if (start) {
        memcpy(start, &in, sizeof in);
        memcpy(start + sizeof in, r->header.op_in, op_len);
        cfuse_kill_suidgid_node = cfuse_asks_kill_suidgid(&in, start + sizeof in, op_len + payload) ? in.nodeid : 0;
        struct fuse_buf buf;
        memset(&buf, 0, sizeof buf);
        buf.size = sizeof in + op_len + payload;
        buf.mem = start;
        buf.fd = -1;
        // Long requests (reads and writes of 64 KiB or more: a millisecond of work) run at the normal policy, so
        // the kernel's own threads (writeback, a loop device) do not hold them up; a preemption costs nothing next
        // to them. Short ones stay at the idle policy (see Scheduling), unless the guard has promoted every thread.
        int long_request = st->idle_policy && cfuse_uring_long_request(&in, start + sizeof in, op_len + payload, payload) &&
                           !atomic_load_explicit(&st->promoted, memory_order_relaxed);
        if (long_request) (void)cfuse_set_policy(0, CFUSE_SCHED_OTHER);
        *cfuse_uring_current_slot() = r;
        fuse_session_process_buf(st->se, &buf);
        *cfuse_uring_current_slot() = NULL;
        if (long_request && !atomic_load_explicit(&st->promoted, memory_order_relaxed)) (void)cfuse_set_policy(0, CFUSE_SCHED_IDLE);
        cfuse_kill_suidgid_node = 0;
    }
    if (!r->replied) {
        struct fuse_out_header out = {sizeof out, -EIO, in.unique};
        memcpy(r->header.in_out, &out, sizeof out);
        r->header.ring_ent_in_out.payload_sz = 0;
    }
}

// A reply written on a thread serving a ring entry: put it in the entry. Returns the bytes "written", or -1 when
// the reply is not for that entry (it is then written to /dev/fuse as usual).
static inline ssize_t cfuse_uring_take_reply(const struct iovec *iov, int count) {
    struct cfuse_ring *r = *cfuse_uring_current_slot();
    if (!r || r->replied || count < 1 || iov[0].iov_len != sizeof(struct fuse_out_header)) return -1;
    struct fuse_out_header out;
    memcpy(&out, iov[0].iov_base, sizeof out);
    if (out.unique != r->unique) return -1;
    size_t total = 0;
    for (int i = 1; i < count; i++) total += iov[i].iov_len;
    char *payload = r->buffer + CFUSE_URING_GAP;
    if (total > r->payload_size) {
        out.error = -EIO;
        total = 0;
    } else {
        size_t at = 0;
        for (int i = 1; i < count; i++) {
            memmove(payload + at, iov[i].iov_base, iov[i].iov_len);
            at += iov[i].iov_len;
        }
    }
    memcpy(r->header.in_out, &out, sizeof out);
    r->header.ring_ent_in_out.payload_sz = (uint32_t)total;
    r->replied = 1;
    return (ssize_t)(sizeof out + total);
}

// MARK: Scheduling
//
// A request from a process on CPU c goes to queue c, whose thread is pinned there, and the process sleeps until the
// reply. With both at the normal policy the thread's wake-up leaves two runnable tasks on c for a moment, the idle
// CPU takes the process, its next request goes to the other queue, and so on: measured here (2 CPUs, fio 4 KiB
// O_DIRECT random reads), one migration per read and 22k reads/s, against 35k through /dev/fuse. As SCHED_IDLE the
// thread counts as idle to the scheduler: the process stays where it is and is never preempted by the thread, and
// the thread runs exactly when the process waits for it: 57–60k reads/s, with writes and creates as fast as at the
// normal policy.
//
// SCHED_IDLE threads get almost no CPU next to busy normal tasks (weight 3 against 1024): a CPU-bound job that does
// not use the mount would starve it. So a guard thread (normal policy) looks at the ring threads every 50 ms
// (/proc/self/task/TID/stat): one found runnable at two looks in a row without having had CPU time in between is
// waiting for a CPU, and then every ring thread goes to SCHED_OTHER for a while (see cfuse_uring_guard). Going
// back from SCHED_IDLE needs CAP_SYS_NICE or RLIMIT_NICE ≥ 20: without it the threads are not made SCHED_IDLE.


static inline void *cfuse_policy_probe(void *arg) {
    int *ok = arg;
    *ok = cfuse_set_policy(0, CFUSE_SCHED_IDLE) == 0 && cfuse_set_policy(0, CFUSE_SCHED_OTHER) == 0;
    return NULL;
}

// Whether a thread can go to SCHED_IDLE and back (tried on a thread of its own, which then ends).
static inline int cfuse_can_leave_idle_policy(void) {
    int ok = 0;
    pthread_t t;
    if (pthread_create(&t, NULL, cfuse_policy_probe, &ok) != 0) return 0;
    pthread_join(t, NULL);
    return ok;
}

// Thread `tid` of this process: whether it is runnable (or running), and its CPU time in clock ticks (user and
// system). 0, or -1 if its state cannot be read.
static inline int cfuse_thread_sample(pid_t tid, int *runnable, unsigned long long *ticks) {
    char path[64], text[512];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n <= 0) return -1;
    text[n] = 0;
    // "TID (COMM) STATE PPID … UTIME STIME …" (proc(5): fields 3, 14 and 15): COMM may hold spaces and
    // parentheses, so the fields start after the last ')'.
    char *p = strrchr(text, ')');
    if (!p || p[1] != ' ') return -1;
    p += 2;
    *runnable = *p == 'R';
    unsigned long long utime = 0, stime = 0;
    for (int field = 3; field < 15; field++) {
        p = strchr(p, ' ');
        if (!p) return -1;
        p++;
        if (field + 1 == 14) utime = strtoull(p, NULL, 10);
        if (field + 1 == 15) stime = strtoull(p, NULL, 10);
    }
    *ticks = utime + stime;
    return 0;
}

static inline void *cfuse_uring_guard(void *arg) {
    struct cfuse_uring_state *st = arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    // Ticks of 50 ms. A thread runnable at two looks in a row without a clock tick of CPU time in between is
    // waiting for a CPU. Promoted, the threads go back to SCHED_IDLE after `hold` quiet ticks: 1 s, doubled (up to
    // a minute) each time they had to be promoted again within a second of going back, because then a busy task
    // is still there.
    int promoted = 0, quiet = 0, hold = 20, since_demotion = 1 << 30;
    for (;;) {
        struct timespec tick = {0, 50 * 1000000};
        nanosleep(&tick, NULL);
        pthread_mutex_lock(&st->lock);
        int stop = st->phase == CFUSE_URING_STOP;
        pthread_mutex_unlock(&st->lock);
        if (stop) break;
        int waiting = 0;
        for (int i = 0; i < st->count; i++) {
            struct cfuse_ring *r = &st->rings[i];
            int runnable = 0;
            unsigned long long ticks = 0;
            if (!r->started || r->tid == 0 || cfuse_thread_sample(r->tid, &runnable, &ticks) != 0) continue;
            r->waiting_ticks = runnable && ticks == r->cpu_ticks ? r->waiting_ticks + 1 : 0;
            r->cpu_ticks = ticks;
            if (r->waiting_ticks >= 2) waiting = 1;
        }
        since_demotion++;
        int change = -1;
        if (waiting) {
            quiet = 0;
            if (!promoted) {
                change = CFUSE_SCHED_OTHER;
                hold = since_demotion <= 20 ? (hold * 2 > 1200 ? 1200 : hold * 2) : 20;
            }
        } else if (promoted && ++quiet >= hold) {
            change = CFUSE_SCHED_IDLE;
            since_demotion = 0;
        }
        if (change >= 0) {
            promoted = change == CFUSE_SCHED_OTHER;
            atomic_store(&st->promoted, promoted);
            if (promoted) atomic_fetch_add(&st->promotions, 1);
            for (int i = 0; i < st->count; i++) {
                if (st->rings[i].started && st->rings[i].tid != 0) (void)cfuse_set_policy(st->rings[i].tid, change);
            }
        }
    }
    return NULL;
}

static inline void *cfuse_ring_thread(void *arg) {
    struct cfuse_ring *r = arg;
    struct cfuse_uring_state *st = cfuse_uring();
    // Signals go to the loop's threads; cancellation never reaches a thread libfuse did not start.
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    // Pinned to the CPU of its queue (sched_setaffinity of this thread; the glibc macros need _GNU_SOURCE, which
    // the libfuse headers before this one were included without). An offline CPU: run anywhere.
    unsigned long cpus[1024 / (8 * sizeof(unsigned long))];
    memset(cpus, 0, sizeof cpus);
    cpus[r->qid / (8 * sizeof(unsigned long))] |= 1ul << (r->qid % (8 * sizeof(unsigned long)));
    (void)syscall(__NR_sched_setaffinity, 0, sizeof cpus, cpus);
    r->tid = (pid_t)syscall(__NR_gettid);
    if (st->idle_policy) (void)cfuse_set_policy(0, CFUSE_SCHED_IDLE);

    int err = cfuse_ring_setup(r);
    pthread_mutex_lock(&st->lock);
    if (err == 0) st->made++; else st->failed++;
    pthread_cond_broadcast(&st->changed);
    while (st->phase == CFUSE_URING_PREPARED) pthread_cond_wait(&st->changed, &st->lock);
    int run = err == 0 && st->phase == CFUSE_URING_RUN && st->offered;
    size_t payload_size = st->payload_size;
    pthread_mutex_unlock(&st->lock);

    if (run) {
        r->buffer = aligned_alloc(4096, CFUSE_URING_GAP + payload_size);
        if (!r->buffer) {
            // The kernel holds every request back until each queue has an entry or a REGISTER was refused: have
            // this one refused (a payload buffer of 0 bytes), which turns io_uring off for the connection.
            r->iov[0].iov_base = &r->header;
            r->iov[0].iov_len = sizeof r->header;
            r->iov[1].iov_base = &r->header;
            r->iov[1].iov_len = 0;
            cfuse_ring_queue_cmd(r, st->devfd, CFUSE_URING_CMD_REGISTER, 0);
            int res = 0;
            (void)cfuse_ring_wait(r, 1000, &res);
            run = 0;
        }
    }
    if (run) {
        r->payload_size = payload_size;
        r->iov[0].iov_base = &r->header;
        r->iov[0].iov_len = sizeof r->header;
        r->iov[1].iov_base = r->buffer + CFUSE_URING_GAP;
        r->iov[1].iov_len = payload_size;
        cfuse_ring_queue_cmd(r, st->devfd, CFUSE_URING_CMD_REGISTER, 0);
        int served = 0, committed = 0;  // committed: the command in flight is a COMMIT_AND_FETCH
        for (;;) {
            int res = 0;
            int got = cfuse_ring_wait(r, 200, &res);
            pthread_mutex_lock(&st->lock);
            int stop = st->phase == CFUSE_URING_STOP;
            pthread_mutex_unlock(&st->lock);
            if (!got) {
                if (stop) break;
                continue;
            }
            if (res < 0) {
                // A refused REGISTER (io_uring refused, or the connection is going), or the connection ended
                // (ENOTCONN, ECONNABORTED, ECANCELED, ENODEV): the thread ends. A refused commit (the kernel no
                // longer knew the request: ENOENT) leaves the entry unusable in the kernel: register a new one,
                // so the queue of this CPU keeps its threads.
                int ended = res == -ENOTCONN || res == -ECONNABORTED || res == -ECANCELED || res == -ENODEV;
                if (!committed || ended) break;
                committed = 0;
                cfuse_ring_queue_cmd(r, st->devfd, CFUSE_URING_CMD_REGISTER, 0);
                continue;
            }
            if (!served) {
                served = 1;
                atomic_fetch_add(&st->serving, 1);
            }
            cfuse_ring_serve(r, st);
            cfuse_ring_queue_cmd(r, st->devfd, CFUSE_URING_CMD_COMMIT_AND_FETCH, r->header.ring_ent_in_out.commit_id);
            committed = 1;
            if (stop) {
                // Deliver this reply and take no more: closing the ring below cancels the fetch.
                (void)syscall(__NR_io_uring_enter, r->fd, r->pending, 0, 0, NULL, 0);
                break;
            }
        }
    }
    cfuse_ring_unmap(r);
    // Until cfuse_uring_stop: the guard may still look at (and set the policy of) this thread's id, which must not
    // be another thread's by then.
    pthread_mutex_lock(&st->lock);
    while (st->phase != CFUSE_URING_STOP) pthread_cond_wait(&st->changed, &st->lock);
    pthread_mutex_unlock(&st->lock);
    return NULL;
}

/// Starts `per_queue` threads for each possible CPU and makes their rings, before the loop reads INIT. Returns the
/// number of threads if every ring was made (INIT will then offer io_uring), else 0 (nothing is left running).
/// With `only_with_idle_policy`, also 0 where the threads could not run SCHED_IDLE (see Scheduling).
static inline int cfuse_uring_prepare(struct fuse_session *se, int per_queue, int only_with_idle_policy) {
    struct cfuse_uring_state *st = cfuse_uring();
    if (st->rings || per_queue < 1 || !cfuse_uring_kernel_allows()) return 0;
    // The kernel has a queue for each possible CPU and holds every request back until all of them have an entry:
    // no guessing, the count comes from the kernel's own list (or io_uring is not used).
    int cpus = cfuse_possible_cpus();
    if (cpus < 1 || cpus > 256) return 0;
    // At most 128 threads, fewer per queue on machines with many CPUs (never fewer than one per CPU).
    if (cpus * per_queue > 128) per_queue = 128 / cpus > 0 ? 128 / cpus : 1;
    int count = cpus * per_queue;
    int me_runnable = 0;
    unsigned long long me_ticks = 0;
    int idle_policy = cfuse_can_leave_idle_policy() &&
                      cfuse_thread_sample((pid_t)syscall(__NR_gettid), &me_runnable, &me_ticks) == 0 && me_runnable;
    if (only_with_idle_policy && !idle_policy) return 0;
    struct cfuse_ring *rings = calloc((size_t)count, sizeof *rings);
    if (!rings) return 0;
    pthread_mutex_lock(&st->lock);
    st->idle_policy = idle_policy;
    st->se = se;
    st->devfd = fuse_session_fd(se);
    st->count = count;
    st->made = st->failed = 0;
    st->phase = CFUSE_URING_PREPARED;
    st->offered = 0;
    st->rings = rings;
    pthread_mutex_unlock(&st->lock);
    int started = 0;
    for (int i = 0; i < count; i++) {
        rings[i].qid = (unsigned)(i / per_queue);
        rings[i].fd = -1;
        if (pthread_create(&rings[i].thread, NULL, cfuse_ring_thread, &rings[i]) == 0) {
            rings[i].started = 1;
            started++;
        }
    }
    pthread_mutex_lock(&st->lock);
    st->failed += count - started;
    while (st->made + st->failed < count) pthread_cond_wait(&st->changed, &st->lock);
    int ok = st->failed == 0;
    pthread_mutex_unlock(&st->lock);
    if (ok && idle_policy) {
        ok = pthread_create(&st->guard, NULL, cfuse_uring_guard, st) == 0;
        st->guard_started = ok;
    }
    if (!ok) {
        pthread_mutex_lock(&st->lock);
        st->phase = CFUSE_URING_STOP;
        pthread_cond_broadcast(&st->changed);
        pthread_mutex_unlock(&st->lock);
        for (int i = 0; i < count; i++) if (rings[i].started) pthread_join(rings[i].thread, NULL);
        for (int i = 0; i < count; i++) free(rings[i].buffer);
        free(rings);
        st->rings = NULL;
        return 0;
    }
    return count;
}

// From the INIT reply: whether to offer io_uring (the rings are ready and the kernel offered it).
static inline int cfuse_uring_can_offer(void) {
    struct cfuse_uring_state *st = cfuse_uring();
    pthread_mutex_lock(&st->lock);
    int can = st->rings != NULL && st->phase == CFUSE_URING_PREPARED;
    pthread_mutex_unlock(&st->lock);
    return can;
}

// After the INIT reply was written: let the threads register (if it offered io_uring), or end them.
static inline void cfuse_uring_init_done(int offered, size_t payload_size) {
    struct cfuse_uring_state *st = cfuse_uring();
    pthread_mutex_lock(&st->lock);
    if (st->rings && st->phase == CFUSE_URING_PREPARED) {
        st->offered = offered;
        st->payload_size = (payload_size + 4095) / 4096 * 4096;
        st->phase = offered ? CFUSE_URING_RUN : CFUSE_URING_STOP;
        pthread_cond_broadcast(&st->changed);
    }
    pthread_mutex_unlock(&st->lock);
}

/// Threads that have served a request from their ring (0 while requests come through /dev/fuse only).
static inline int cfuse_uring_serving(void) { return atomic_load(&cfuse_uring()->serving); }

/// Whether the ring threads run SCHED_IDLE (with the guard), and how often the guard has moved them to SCHED_OTHER.
static inline int cfuse_uring_idle_policy(void) { return cfuse_uring()->idle_policy; }
static inline int cfuse_uring_promotions(void) { return atomic_load(&cfuse_uring()->promotions); }

/// Ends the threads (each finishes and delivers the request it is serving; requests the kernel sends after that
/// wait for the unmount, which ends them) and frees the rings and buffers.
static inline void cfuse_uring_stop(void) {
    struct cfuse_uring_state *st = cfuse_uring();
    pthread_mutex_lock(&st->lock);
    struct cfuse_ring *rings = st->rings;
    int count = st->count;
    st->phase = CFUSE_URING_STOP;
    pthread_cond_broadcast(&st->changed);
    pthread_mutex_unlock(&st->lock);
    if (!rings) return;
    if (st->guard_started) pthread_join(st->guard, NULL);
    st->guard_started = 0;
    for (int i = 0; i < count; i++) if (rings[i].started) pthread_join(rings[i].thread, NULL);
    pthread_mutex_lock(&st->lock);
    st->rings = NULL;
    pthread_mutex_unlock(&st->lock);
    for (int i = 0; i < count; i++) free(rings[i].buffer);
    free(rings);
}

#endif
