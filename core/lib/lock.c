/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Per-resource locks across processes (see <jabali/lock.h>).
 *
 * flock() locks belong to the open file description, not to the process
 * (like fcntl's F_OFD_SETLKW ones), so two threads or one process twice
 * conflict like two processes do, and closing the descriptor is the
 * release. flock() rather than F_OFD_SETLKW: same semantics for a
 * whole-file lock, and valgrind 3.19 runs F_OFD_SETLKW with all signals
 * blocked, which makes a timed wait hang there for good.
 *
 * There is no timed wait in the kernel: a timer signal without SA_RESTART
 * interrupts the wait instead, which keeps it free of polling. */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1   /* gettid, strerrordesc_np */
#endif

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jabali/error.h>
#include <jabali/lock.h>

#include "util.h"

/* Readable part of a lock file name, in bytes (escapes included). */
#define NAME_PREFIX_MAX 64
/* After the deadline the timer keeps firing at this period, so that a
 * signal that came just before the wait began cannot leave it stuck. */
#define REFIRE_NS (10 * 1000 * 1000)

#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

static const char *errno_text(int e) {
        const char *s = strerrordesc_np(e);
        return s ? s : "unknown error";
}

static uint64_t fnv1a64(const char *s) {
        uint64_t h = UINT64_C(0xcbf29ce484222325);
        for (; *s; s++) {
                h ^= (unsigned char) *s;
                h *= UINT64_C(0x100000001b3);
        }
        return h;
}

static bool keep_char(char c, bool first) {
        if (c == '.')
                return !first;          /* no hidden files, never "." or ".." */
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               (c != '\0' && strchr("_:@+=,-", c));
}

/* "<escaped prefix of the key>-<hash of the whole key>.lock": readable for
 * people looking at the directory, unique through the hash (a collision
 * would only make two keys share a lock), and free of '/' by construction. */
static void lock_name(const char *key, char *buf, size_t size) {
        static const char hex[] = "0123456789abcdef";
        size_t o = 0;

        for (const char *p = key; *p && o + 3 <= NAME_PREFIX_MAX; p++) {
                unsigned char c = (unsigned char) *p;
                if (keep_char((char) c, p == key))
                        buf[o++] = (char) c;
                else {
                        buf[o++] = '%';
                        buf[o++] = hex[c >> 4];
                        buf[o++] = hex[c & 15];
                }
        }
        snprintf(buf + o, size - o, "-%016llx.lock", (unsigned long long) fnv1a64(key));
}

static void noop_handler(int sig) {
        (void) sig;
}

/* The no-op handler is installed while at least one timed wait runs in the
 * process; the first installs it, the last restores what was there. */
static pthread_mutex_t handler_mutex = PTHREAD_MUTEX_INITIALIZER;
static unsigned handler_users;
static struct sigaction handler_saved;

static int handler_get(void) {
        int r = 0;

        pthread_mutex_lock(&handler_mutex);
        if (handler_users == 0) {
                /* sa_flags 0: no SA_RESTART, so the wait returns EINTR. */
                struct sigaction sa = { .sa_handler = noop_handler };
                sigemptyset(&sa.sa_mask);
                if (sigaction(JB_LOCK_SIGNAL, &sa, &handler_saved) < 0)
                        r = -errno;
        }
        if (r == 0)
                handler_users++;
        pthread_mutex_unlock(&handler_mutex);
        return r;
}

static void handler_put(void) {
        pthread_mutex_lock(&handler_mutex);
        if (--handler_users == 0)
                (void) sigaction(JB_LOCK_SIGNAL, &handler_saved, NULL);
        pthread_mutex_unlock(&handler_mutex);
}

static uint64_t now_ns(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

/* flock(LOCK_EX) bounded by a timer. Returns 0, -ETIMEDOUT or -errno. */
static int lock_timed(int fd, int timeout_ms) {
        struct sigevent sev = { .sigev_notify = SIGEV_THREAD_ID, .sigev_signo = JB_LOCK_SIGNAL };
        struct itimerspec its = {
                .it_value = { .tv_sec = timeout_ms / 1000, .tv_nsec = (long) (timeout_ms % 1000) * 1000000 },
                .it_interval = { .tv_sec = 0, .tv_nsec = REFIRE_NS },
        };
        uint64_t deadline = now_ns() + (uint64_t) timeout_ms * 1000000u;
        sigset_t set, old_mask;
        timer_t timer;
        int r;

        r = handler_get();
        if (r < 0)
                return r;
        sev.sigev_notify_thread_id = gettid();
        if (timer_create(CLOCK_MONOTONIC, &sev, &timer) < 0) {
                r = -errno;
                handler_put();
                return r;
        }

        sigemptyset(&set);
        sigaddset(&set, JB_LOCK_SIGNAL);
        (void) pthread_sigmask(SIG_UNBLOCK, &set, &old_mask);

        if (timer_settime(timer, 0, &its, NULL) < 0)
                r = -errno;
        else
                for (;;) {
                        if (flock(fd, LOCK_EX) == 0) {
                                r = 0;
                                break;
                        }
                        if (errno != EINTR) {
                                r = -errno;
                                break;
                        }
                        if (now_ns() >= deadline) {
                                r = -ETIMEDOUT;
                                break;
                        }
                }

        /* Once deleted, the timer raises nothing more; what it raised before
         * was delivered on the way out of the last system call, since the
         * signal was unblocked. */
        (void) timer_delete(timer);
        (void) pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
        handler_put();
        return r;
}

static int lock_wait(int fd, int timeout_ms) {
        if (timeout_ms > 0)
                return lock_timed(fd, timeout_ms);
        if (timeout_ms == 0)
                return flock(fd, LOCK_EX | LOCK_NB) < 0 ? -errno : 0;   /* EWOULDBLOCK == EAGAIN */
        while (flock(fd, LOCK_EX) < 0)
                if (errno != EINTR)
                        return -errno;
        return 0;
}

JB_EXPORT int jb_lock_acquire(const char *lock_dir, const char *key, int timeout_ms, jb_err *err) {
        char name[NAME_PREFIX_MAX + sizeof("-0123456789abcdef.lock")];
        _cleanup_close_ int dir_fd = -1, fd = -1;
        struct stat st;
        int r;

        if (!lock_dir || lock_dir[0] != '/')
                return jb_err_set(err, JB_E_INVALID_PARAMS, "lock directory must be an absolute path");
        if (!key || key[0] == '\0')
                return jb_err_set(err, JB_E_INVALID_PARAMS, "lock key is empty");
        if (strnlen(key, JB_LOCK_KEY_MAX + 1) > JB_LOCK_KEY_MAX)
                return jb_err_set(err, JB_E_INVALID_PARAMS, "lock key is longer than %d bytes", JB_LOCK_KEY_MAX);

        lock_name(key, name, sizeof name);

        dir_fd = open(lock_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd < 0) {
                if (errno == ENOENT)
                        return jb_err_set(err, JB_E_NOT_FOUND, "%s: lock directory does not exist", lock_dir);
                return jb_err_set(err, JB_E_INTERNAL, "%s: %s", lock_dir, errno_text(errno));
        }

        /* O_NONBLOCK: a FIFO planted under that name must not stall us. */
        fd = openat(dir_fd, name, O_RDONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0600);
        if (fd < 0) {
                if (errno == ELOOP)
                        return jb_err_set(err, JB_E_CONFLICT, "%s/%s: lock file is a symlink", lock_dir, name);
                if (errno == EISDIR)
                        return jb_err_set(err, JB_E_CONFLICT, "%s/%s: lock file is not a regular file",
                                          lock_dir, name);
                return jb_err_set(err, JB_E_INTERNAL, "%s/%s: %s", lock_dir, name, errno_text(errno));
        }
        if (fstat(fd, &st) < 0)
                return jb_err_set(err, JB_E_INTERNAL, "%s/%s: %s", lock_dir, name, errno_text(errno));
        if (!S_ISREG(st.st_mode))
                return jb_err_set(err, JB_E_CONFLICT, "%s/%s: lock file is not a regular file", lock_dir, name);

        r = lock_wait(fd, timeout_ms);
        if (r == -EAGAIN || r == -ETIMEDOUT)
                return jb_err_set(err, JB_E_BUSY, "lock \"%.128s\" is held by someone else", key);
        if (r < 0)
                return jb_err_set(err, JB_E_INTERNAL, "lock \"%.128s\": %s", key, errno_text(-r));
        return TAKE_FD(fd);
}

JB_EXPORT int jb_lock_release(int lock_fd) {
        return safe_close(lock_fd);
}
