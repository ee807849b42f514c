/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Running a program (see <jabali/spawn.h>).
 *
 * posix_spawn puts the child in its own process group with a clean signal
 * state and only fds 0-2; the parent then multiplexes stdin, stdout,
 * stderr and a pidfd with poll(). Exit is noticed through the pidfd, so no
 * SIGCHLD handler is involved and a blocked SIGCHLD does not matter. Where
 * pidfd_open() is missing (ENOSYS: kernels before 5.3, valgrind 3.19) a
 * waitid(WNOHANG) every NO_PIDFD_TICK_MS takes its place. */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1   /* pipe2, addclosefrom_np, strerrordesc_np, sigabbrev_np */
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jabali/error.h>
#include <jabali/spawn.h>

#include "utf8.h"
#include "util.h"

/* How long output is still read after the program exited (something it
 * started may hold the pipes), and after a timeout kill. */
#define DRAIN_AFTER_EXIT_MS 1000
#define DRAIN_AFTER_KILL_MS 250
/* Without pidfds (kernel < 5.3, or valgrind 3.19) exit is checked this often. */
#define NO_PIDFD_TICK_MS 20
#define NO_DEADLINE UINT64_MAX

#define EXCERPT_LINES 3
#define EXCERPT_BYTES 240
#define PROGRAM_BYTES 128

static const char *const base_env[] = {
        "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG=C.UTF-8",
};

static const char *errno_text(int e) {
        const char *s = strerrordesc_np(e);
        return s ? s : "unknown error";
}

static uint64_t now_ms(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
}

static size_t key_len(const char *entry) {
        const char *eq = strchr(entry, '=');
        return eq ? (size_t) (eq - entry) : 0;
}

static bool key_valid(const char *entry, size_t len) {
        if (len == 0 || (entry[0] >= '0' && entry[0] <= '9'))
                return false;
        for (size_t i = 0; i < len; i++) {
                char c = entry[i];
                if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
                        return false;
        }
        return true;
}

/* Fills envp (room for ELEMENTSOF(base_env) + JB_SPAWN_ENV_MAX + 1) with
 * the base and the extra entries; the strings stay borrowed. */
static int build_env(const char *const *extra, const char **envp, jb_err *err) {
        size_t n = ELEMENTSOF(base_env);
        bool base_replaced[ELEMENTSOF(base_env)] = { false };

        for (size_t i = 0; i < n; i++)
                envp[i] = base_env[i];

        for (size_t i = 0; extra && extra[i]; i++) {
                const char *e = extra[i];
                size_t kl = key_len(e);
                bool placed = false;

                if (i >= JB_SPAWN_ENV_MAX)
                        return jb_err_set(err, JB_E_INVALID_PARAMS, "more than %d environment entries",
                                          JB_SPAWN_ENV_MAX);
                if (!key_valid(e, kl))
                        return jb_err_set(err, JB_E_INVALID_PARAMS, "environment entry %zu is not KEY=VALUE", i);

                for (size_t j = 0; j < n; j++) {
                        if (key_len(envp[j]) != kl || strncmp(envp[j], e, kl) != 0)
                                continue;
                        if (j >= ELEMENTSOF(base_env) || base_replaced[j])
                                return jb_err_set(err, JB_E_INVALID_PARAMS,
                                                  "environment variable %.*s given twice", (int) kl, e);
                        envp[j] = e;
                        base_replaced[j] = true;
                        placed = true;
                        break;
                }
                if (!placed)
                        envp[n++] = e;
        }
        envp[n] = NULL;
        return 0;
}

/* Moves a new descriptor above 2, so that the dup2 onto 0-2 in the child
 * cannot clobber another one when the caller runs with 0-2 closed. */
static int fd_above_stdio(int fd) {
        if (fd < 0 || fd > 2)
                return fd;
        int nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        int e = errno;
        close(fd);
        errno = e;
        return nfd;
}

static int make_pipe(int p[2]) {
        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        p[0] = fd_above_stdio(p[0]);
        p[1] = fd_above_stdio(p[1]);
        if (p[0] < 0 || p[1] < 0) {
                int e = errno;
                p[0] = safe_close(p[0]);
                p[1] = safe_close(p[1]);
                return -e;
        }
        return 0;
}

static void close_pipe(int p[2]) {
        p[0] = safe_close(p[0]);
        p[1] = safe_close(p[1]);
}

static int set_nonblock(int fd) {
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
                return -errno;
        return 0;
}

typedef struct capture {
        char *buf;              /* owned; cap + 1 bytes (room for the NUL) */
        size_t len, cap, max;
        bool truncated;
} capture;

/* Appends what fits below c->max, drops the rest. */
static int capture_add(capture *c, const char *p, size_t n) {
        size_t keep = c->max - c->len;

        if (keep > n)
                keep = n;
        if (keep < n)
                c->truncated = true;
        if (keep == 0)
                return 0;

        if (c->len + keep > c->cap) {
                size_t ncap = c->cap ? c->cap : 4096;
                while (ncap < c->len + keep)
                        ncap *= 2;
                if (ncap > c->max)
                        ncap = c->max;
                char *nbuf = realloc(c->buf, ncap + 1);
                if (!nbuf)
                        return -ENOMEM;
                c->buf = nbuf;
                c->cap = ncap;
        }
        memcpy(c->buf + c->len, p, keep);
        c->len += keep;
        return 0;
}

/* Hands every complete line of c to the callback and keeps the rest; at
 * the end of the stream, or when the buffer is full without a newline,
 * what is left goes out as a line of its own. */
static void deliver_lines(const jb_spawn_io *io, capture *c, bool flush) {
        size_t start = 0;

        for (size_t i = 0; i < c->len; i++) {
                if (c->buf[i] != '\n')
                        continue;
                c->buf[i] = '\0';
                io->on_stdout_line(c->buf + start, i - start, io->line_arg);
                start = i + 1;
        }
        if ((flush || c->len - start >= c->max) && start < c->len) {
                c->buf[c->len] = '\0';
                io->on_stdout_line(c->buf + start, c->len - start, io->line_arg);
                start = c->len;
        }
        memmove(c->buf, c->buf + start, c->len - start);
        c->len -= start;
        c->truncated = false;
}

/* Reads what is available (in line mode, handing out the lines as they
 * come, so a fast writer never overflows the buffer). Returns 1 at end of
 * file, 0 when it would block, -errno on failure. */
static int capture_read(int fd, capture *c, const jb_spawn_io *io) {
        char tmp[16384];

        for (;;) {
                /* In line mode a read never brings more than the buffer holds. */
                size_t want = io && c->max - c->len < sizeof tmp ? c->max - c->len : sizeof tmp;
                ssize_t n = read(fd, tmp, want);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return 0;
                        return -errno;
                }
                if (n == 0) {
                        if (io && c->buf)
                                deliver_lines(io, c, true);
                        return 1;
                }
                int r = capture_add(c, tmp, (size_t) n);
                if (r < 0)
                        return r;
                if (io && c->buf)
                        deliver_lines(io, c, false);
        }
}

/* Hands the buffer out NUL-terminated (an empty one when nothing came). */
static char *capture_take(capture *c, size_t *ret_len, bool *ret_truncated) {
        char *b = c->buf ? c->buf : malloc(1);

        if (!b)
                return NULL;
        b[c->len] = '\0';
        *ret_len = c->len;
        *ret_truncated = c->truncated;
        c->buf = NULL;
        return b;
}

/* write() that cannot kill the caller with SIGPIPE when the program closed
 * its stdin: SIGPIPE is blocked around the call and a SIGPIPE it raised is
 * taken back. */
static ssize_t write_nosigpipe(int fd, const void *p, size_t n) {
        sigset_t pipe_set, old, pending;
        bool was_pending;
        ssize_t r;
        int e;

        sigemptyset(&pipe_set);
        sigaddset(&pipe_set, SIGPIPE);
        (void) pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
        was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;

        r = write(fd, p, n);
        e = errno;
        if (r < 0 && e == EPIPE && !was_pending) {
                const struct timespec zero = { 0, 0 };
                while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
                        ;
        }

        (void) pthread_sigmask(SIG_SETMASK, &old, NULL);
        errno = e;
        return r;
}

typedef struct run {
        pid_t pid;
        int pidfd;              /* -1 when the kernel has no pidfd_open */
        int in_fd, out_fd, err_fd;      /* parent ends, -1 once closed */
        const uint8_t *in_data;
        size_t in_left;
        capture out, err;
        bool exited, timed_out;
        siginfo_t si;
        /* jb_spawn_run_io: stdout by lines, and cancellation. */
        jb_spawn_io *io;
        bool term_sent;
        uint64_t kill_at;       /* after SIGTERM: when SIGKILL follows */
} run;

/* Reaps the child; with `nohang`, only if it has exited (else returns 0
 * and r->exited stays false). */
static int reap(run *r, bool nohang) {
        idtype_t type = r->pidfd >= 0 ? P_PIDFD : P_PID;
        id_t id = r->pidfd >= 0 ? (id_t) r->pidfd : (id_t) r->pid;

        memset(&r->si, 0, sizeof r->si);
        while (waitid(type, id, &r->si, WEXITED | (nohang ? WNOHANG : 0)) < 0) {
                if (errno != EINTR)
                        return -errno;
        }
        r->exited = r->si.si_pid != 0;
        return 0;
}

/* SIGKILLs the program's process group, and the program itself in case it
 * left the group, then reaps it. The child is not reaped yet, so its pid
 * (and group id) cannot have been reused. */
static void kill_and_reap(run *r) {
        if (r->exited)
                return;
        (void) kill(-r->pid, SIGKILL);
        if (r->pidfd >= 0)
                (void) pidfd_send_signal(r->pidfd, SIGKILL, NULL, 0);
        else
                (void) kill(r->pid, SIGKILL);
        (void) reap(r, false);
}

static void run_close(run *r) {
        r->pidfd = safe_close(r->pidfd);
        r->in_fd = safe_close(r->in_fd);
        r->out_fd = safe_close(r->out_fd);
        r->err_fd = safe_close(r->err_fd);
        free(r->out.buf);
        free(r->err.buf);
        r->out.buf = r->err.buf = NULL;
}

static void feed_stdin(run *r) {
        while (r->in_left > 0) {
                ssize_t n = write_nosigpipe(r->in_fd, r->in_data, r->in_left);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return;
                        break;  /* EPIPE: it does not want the rest */
                }
                r->in_data += n;
                r->in_left -= (size_t) n;
        }
        r->in_fd = safe_close(r->in_fd);
}

/* Returns 0 when the stream is still open, 1 when it was closed, -errno. */
static int drain(int *fd, capture *c, const jb_spawn_io *io) {
        int k = capture_read(*fd, c, io);
        if (k < 0)
                return k;
        if (k > 0)
                *fd = safe_close(*fd);
        return k;
}

/* The caller asked to stop (its cancel descriptor became readable):
 * SIGTERM to the program's group, so it can stop cleanly; SIGKILL follows
 * after the grace period. */
static void send_term(run *r) {
        uint64_t grace = r->io->cancel_grace_ms ? r->io->cancel_grace_ms : JB_SPAWN_CANCEL_GRACE_MS;
        int sig = r->io->cancel_signal > 0 && r->io->cancel_signal < NSIG ? r->io->cancel_signal : SIGTERM;

        (void) kill(-r->pid, sig);
        if (r->pidfd >= 0)
                (void) pidfd_send_signal(r->pidfd, sig, NULL, 0);
        else
                (void) kill(r->pid, sig);
        r->term_sent = true;
        r->io->cancelled = true;
        r->kill_at = now_ms() + grace;
}

/* The poll loop. Returns 0 or -errno (the child is then killed and reaped). */
static int run_loop(run *r, uint64_t timeout_ms) {
        uint64_t start = now_ms();
        uint64_t deadline = timeout_ms ? start + timeout_ms : NO_DEADLINE;
        uint64_t drain_until = NO_DEADLINE;

        if (r->in_fd >= 0 && r->in_left == 0)
                r->in_fd = safe_close(r->in_fd);

        while (!r->exited || r->out_fd >= 0 || r->err_fd >= 0) {
                struct pollfd pfd[5];
                int idx_in = -1, idx_out = -1, idx_err = -1, idx_pid = -1, idx_cancel = -1;
                nfds_t n = 0;
                uint64_t now = now_ms(), limit = r->exited ? drain_until : deadline;
                int wait_ms = -1, k;

                if (limit != NO_DEADLINE && now >= limit) {
                        if (r->exited)
                                break;  /* leftovers hold the pipes: stop reading */
                        kill_and_reap(r);
                        r->timed_out = true;
                        drain_until = now + DRAIN_AFTER_KILL_MS;
                        continue;
                }
                if (r->term_sent && !r->exited && now >= r->kill_at) {
                        kill_and_reap(r);
                        drain_until = now + DRAIN_AFTER_KILL_MS;
                        continue;
                }
                if (r->term_sent && !r->exited && (limit == NO_DEADLINE || r->kill_at < limit))
                        limit = r->kill_at;
                if (limit != NO_DEADLINE)
                        wait_ms = limit - now > INT_MAX ? INT_MAX : (int) (limit - now);

                if (r->in_fd >= 0) {
                        idx_in = (int) n;
                        pfd[n++] = (struct pollfd) { .fd = r->in_fd, .events = POLLOUT };
                }
                if (r->out_fd >= 0) {
                        idx_out = (int) n;
                        pfd[n++] = (struct pollfd) { .fd = r->out_fd, .events = POLLIN };
                }
                if (r->err_fd >= 0) {
                        idx_err = (int) n;
                        pfd[n++] = (struct pollfd) { .fd = r->err_fd, .events = POLLIN };
                }
                if (!r->exited && r->pidfd >= 0) {
                        idx_pid = (int) n;
                        pfd[n++] = (struct pollfd) { .fd = r->pidfd, .events = POLLIN };
                } else if (!r->exited && (wait_ms < 0 || wait_ms > NO_PIDFD_TICK_MS))
                        wait_ms = NO_PIDFD_TICK_MS;
                if (!r->exited && !r->term_sent && r->io && r->io->cancel_fd > 2) {
                        idx_cancel = (int) n;
                        pfd[n++] = (struct pollfd) { .fd = r->io->cancel_fd, .events = POLLIN };
                }

                k = poll(pfd, n, wait_ms);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }

                if (idx_in >= 0 && pfd[idx_in].revents)
                        feed_stdin(r);
                if (idx_out >= 0 && pfd[idx_out].revents && (k = drain(&r->out_fd, &r->out, r->io && r->io->on_stdout_line ? r->io : NULL)) < 0)
                        return k;
                if (idx_err >= 0 && pfd[idx_err].revents && (k = drain(&r->err_fd, &r->err, NULL)) < 0)
                        return k;
                if (idx_cancel >= 0 && pfd[idx_cancel].revents && !r->exited)
                        send_term(r);
                if (!r->exited && (r->pidfd < 0 || (idx_pid >= 0 && pfd[idx_pid].revents))) {
                        if ((k = reap(r, r->pidfd < 0)) < 0)
                                return k;
                        if (!r->exited)
                                continue;
                        drain_until = now_ms() + DRAIN_AFTER_EXIT_MS;
                        if (drain_until > deadline)
                                drain_until = deadline;
                        /* Nobody is left to read what is not written yet. */
                        r->in_fd = safe_close(r->in_fd);
                }
        }
        return 0;
}

static int start_failed(jb_err *err, const char *program, int e) {
        if (e == ENOENT)
                return jb_err_set(err, JB_E_NOT_FOUND, "%.*s: cannot run: %s", PROGRAM_BYTES, program,
                                  errno_text(e));
        return jb_err_set(err, JB_E_INTERNAL, "%.*s: cannot run: %s", PROGRAM_BYTES, program, errno_text(e));
}

/* posix_spawn with the file actions and attributes the header promises. */
static int spawn_child(const jb_spawn_opts *o, const char **envp, int in_rd, int out_wr, int err_wr,
                       pid_t *ret_pid) {
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        sigset_t none, all;
        int r;

        r = posix_spawn_file_actions_init(&fa);
        if (r != 0)
                return r;
        r = posix_spawnattr_init(&attr);
        if (r != 0) {
                posix_spawn_file_actions_destroy(&fa);
                return r;
        }

        sigemptyset(&none);
        sigfillset(&all);
        if (in_rd >= 0)
                r = posix_spawn_file_actions_adddup2(&fa, in_rd, STDIN_FILENO);
        else
                r = posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
        if (r == 0)
                r = posix_spawn_file_actions_adddup2(&fa, out_wr, STDOUT_FILENO);
        if (r == 0)
                r = posix_spawn_file_actions_adddup2(&fa, err_wr, STDERR_FILENO);
        if (r == 0)
                r = posix_spawn_file_actions_addchdir_np(&fa, o->cwd ? o->cwd : "/");
        if (r == 0)
                r = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
        if (r == 0)
                r = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                                    POSIX_SPAWN_SETPGROUP);
        if (r == 0)
                r = posix_spawnattr_setsigmask(&attr, &none);
        if (r == 0)
                r = posix_spawnattr_setsigdefault(&attr, &all);
        if (r == 0)
                r = posix_spawnattr_setpgroup(&attr, 0);
        if (r == 0)
                r = posix_spawn(ret_pid, o->argv[0], &fa, &attr, (char *const *) o->argv,
                                (char *const *) envp);

        posix_spawnattr_destroy(&attr);
        posix_spawn_file_actions_destroy(&fa);
        return r;
}

static int check_opts(const jb_spawn_opts *o, jb_err *err) {
        if (!o || !o->argv || !o->argv[0])
                return jb_err_set(err, JB_E_INVALID_PARAMS, "no program to run");
        if (o->argv[0][0] != '/')
                return jb_err_set(err, JB_E_INVALID_PARAMS, "%.*s: program must be an absolute path",
                                  PROGRAM_BYTES, o->argv[0]);
        if (o->max_output > JB_SPAWN_OUTPUT_MAX)
                return jb_err_set(err, JB_E_INVALID_PARAMS, "output limit above %u bytes",
                                  JB_SPAWN_OUTPUT_MAX);
        if (!o->stdin_data && o->stdin_len > 0)
                return jb_err_set(err, JB_E_INVALID_PARAMS, "stdin length without data");
        if (o->cwd && o->cwd[0] != '/')
                return jb_err_set(err, JB_E_INVALID_PARAMS, "working directory must be an absolute path");
        return 0;
}

/* Checks ahead what exec and chdir would say, for clear messages (the
 * child's own failure is still reported if things change meanwhile). */
static int check_paths(const jb_spawn_opts *o, jb_err *err) {
        struct stat st;

        if (stat(o->argv[0], &st) < 0)
                return start_failed(err, o->argv[0], errno);
        if (!S_ISREG(st.st_mode) || !(st.st_mode & 0111))
                return jb_err_set(err, JB_E_INTERNAL, "%.*s: cannot run: not an executable file",
                                  PROGRAM_BYTES, o->argv[0]);
        if (!o->cwd)
                return 0;
        if (stat(o->cwd, &st) < 0 || !S_ISDIR(st.st_mode))
                return jb_err_set(err, errno == ENOENT ? JB_E_NOT_FOUND : JB_E_INTERNAL,
                                  "%.*s: no such working directory", PROGRAM_BYTES, o->cwd);
        return 0;
}

/* The descriptors a jb_spawn_io hands over are the callee's from the
 * call on: closed here whatever happens. */
static void io_close_given(jb_spawn_io *io) {
        if (!io)
                return;
        if (io->stdin_fd > 2)
                io->stdin_fd = safe_close(io->stdin_fd);
        if (io->stdout_fd > 2)
                io->stdout_fd = safe_close(io->stdout_fd);
}

static int check_io(const jb_spawn_opts *o, const jb_spawn_io *io, jb_err *err) {
        if (!io)
                return 0;
        if (io->stdin_fd > 2 && o && o->stdin_data)
                return jb_err_set(err, JB_E_INVALID_PARAMS, "both stdin data and a stdin descriptor");
        if (io->stdout_fd > 2 && io->on_stdout_line)
                return jb_err_set(err, JB_E_INVALID_PARAMS, "stdout both to a descriptor and by lines");
        return 0;
}

static int spawn_run(const jb_spawn_opts *o, jb_spawn_io *io, jb_spawn_result *ret, jb_err *err) {
        const char *envp[ELEMENTSOF(base_env) + JB_SPAWN_ENV_MAX + 1];
        int in_p[2] = { -1, -1 }, out_p[2] = { -1, -1 }, err_p[2] = { -1, -1 };
        int in_rd, out_wr;
        int given_out = io && io->stdout_fd > 2 ? io->stdout_fd : -1;
        const char *program;
        run r = { .pid = -1, .pidfd = -1, .in_fd = -1, .out_fd = -1, .err_fd = -1, .io = io };
        int k;

        if (check_opts(o, err) < 0 || check_io(o, io, err) < 0 || build_env(o->env, envp, err) < 0 ||
            check_paths(o, err) < 0)
                return -1;

        program = o->argv[0];
        r.out.max = r.err.max = o->max_output ? o->max_output : JB_SPAWN_OUTPUT_DEFAULT;
        r.in_data = o->stdin_data;
        r.in_left = o->stdin_data ? o->stdin_len : 0;

        if ((given_out < 0 && (k = make_pipe(out_p)) < 0) || (k = make_pipe(err_p)) < 0 ||
            (o->stdin_data && (k = make_pipe(in_p)) < 0)) {
                close_pipe(out_p);
                close_pipe(err_p);
                return jb_err_set(err, JB_E_INTERNAL, "pipe: %s", errno_text(-k));
        }

        in_rd = io && io->stdin_fd > 2 ? io->stdin_fd : in_p[0];
        out_wr = given_out >= 0 ? given_out : out_p[1];
        k = spawn_child(o, envp, in_rd, out_wr, err_p[1], &r.pid);
        /* The child's ends: the parent must not hold them, or EOF never comes. */
        io_close_given(io);
        in_p[0] = safe_close(in_p[0]);
        out_p[1] = safe_close(out_p[1]);
        err_p[1] = safe_close(err_p[1]);
        r.in_fd = in_p[1];
        r.out_fd = out_p[0];
        r.err_fd = err_p[0];
        if (k != 0) {
                run_close(&r);
                return start_failed(err, program, k);
        }

        r.pidfd = pidfd_open(r.pid, 0);
        if (r.pidfd < 0 && errno != ENOSYS) {
                int e = errno;
                (void) kill(-r.pid, SIGKILL);
                (void) kill(r.pid, SIGKILL);
                while (waitpid(r.pid, NULL, 0) < 0 && errno == EINTR)
                        ;
                run_close(&r);
                return jb_err_set(err, JB_E_INTERNAL, "%.*s: pidfd_open: %s", PROGRAM_BYTES, program,
                                  errno_text(e));
        }

        k = 0;
        if ((r.in_fd >= 0 && (k = set_nonblock(r.in_fd)) < 0) || (r.out_fd >= 0 && (k = set_nonblock(r.out_fd)) < 0) ||
            (k = set_nonblock(r.err_fd)) < 0 || (k = run_loop(&r, o->timeout_ms)) < 0) {
                kill_and_reap(&r);
                run_close(&r);
                return jb_err_set(err, JB_E_INTERNAL, "%.*s: %s", PROGRAM_BYTES, program, errno_text(-k));
        }

        if (r.si.si_code == CLD_EXITED) {
                ret->exit_code = r.si.si_status;
        } else {
                ret->exit_code = -1;
                ret->term_signal = r.si.si_status;
        }
        ret->timed_out = r.timed_out;
        if (io && io->on_stdout_line)
                r.out.len = 0;  /* every byte went to the callback */
        ret->stdout_data = capture_take(&r.out, &ret->stdout_len, &ret->stdout_truncated);
        ret->stderr_data = capture_take(&r.err, &ret->stderr_len, &ret->stderr_truncated);
        ret->program = strdup(program);
        run_close(&r);
        if (!ret->stdout_data || !ret->stderr_data || !ret->program) {
                jb_spawn_result_free(ret);
                return jb_err_set(err, JB_E_INTERNAL, "out of memory");
        }
        return 0;
}

JB_EXPORT int jb_spawn_run(const jb_spawn_opts *o, jb_spawn_result *ret, jb_err *err) {
        if (!ret)
                return jb_err_set(err, JB_E_INVALID_PARAMS, "no result pointer");
        memset(ret, 0, sizeof *ret);
        return spawn_run(o, NULL, ret, err);
}

JB_EXPORT int jb_spawn_run_io(const jb_spawn_opts *o, jb_spawn_io *io, jb_spawn_result *ret, jb_err *err) {
        if (!ret || !io) {
                io_close_given(io);
                return jb_err_set(err, JB_E_INVALID_PARAMS, "no result or io pointer");
        }
        memset(ret, 0, sizeof *ret);
        io->cancelled = false;
        if (spawn_run(o, io, ret, err) < 0) {
                io_close_given(io);
                return -1;
        }
        return 0;
}

JB_EXPORT void jb_spawn_result_free(jb_spawn_result *r) {
        if (!r)
                return;
        free(r->stdout_data);
        free(r->stderr_data);
        free(r->program);
        memset(r, 0, sizeof *r);
}

JB_EXPORT bool jb_spawn_succeeded(const jb_spawn_result *r) {
        return r && !r->timed_out && r->term_signal == 0 && r->exit_code == 0;
}

/* Copies at most `lines` non-empty lines of src into dst (of size dsz),
 * joined by " | ", with control characters as spaces and invalid UTF-8 as
 * '?', never cutting a character. */
static void excerpt(char *dst, size_t dsz, const char *src, size_t n, unsigned lines) {
        const unsigned char *s = (const unsigned char *) src;
        size_t o = 0, i = 0;
        unsigned done = 0;
        bool in_line = false;

        while (i < n && done < lines) {
                size_t l;

                if (s[i] == '\n') {
                        if (in_line) {
                                done++;
                                while (o > 0 && dst[o - 1] == ' ')
                                        o--;
                        }
                        in_line = false;
                        i++;
                        continue;
                }
                if (!in_line && (s[i] <= ' ' || s[i] == 0x7f)) {
                        i++;
                        continue;
                }
                if (!in_line && o > 0) {
                        if (o + 3 >= dsz)
                                break;
                        memcpy(dst + o, " | ", 3);
                        o += 3;
                }
                in_line = true;

                l = utf8_seq_len(s + i, n - i);
                if (o + (l ? l : 1) >= dsz)
                        break;
                if (l == 0) {
                        dst[o++] = '?';
                        i++;
                } else if (l == 1) {
                        dst[o++] = (s[i] < 0x20 || s[i] == 0x7f) ? ' ' : (char) s[i];
                        i++;
                } else {
                        memcpy(dst + o, s + i, l);
                        o += l;
                        i += l;
                }
        }
        /* Drop trailing blanks of the last line. */
        while (o > 0 && dst[o - 1] == ' ')
                o--;
        if (dsz > 0)
                dst[o] = '\0';
}

JB_EXPORT int jb_spawn_result_to_err(const jb_spawn_result *r, jb_err *err) {
        char prog[PROGRAM_BYTES + 1], how[64], text[EXCERPT_BYTES + 1];
        const char *src;
        size_t srclen;

        if (!r)
                return jb_err_set(err, JB_E_INTERNAL, "no result");

        src = r->program ? r->program : "program";
        excerpt(prog, sizeof prog, src, strlen(src), 1);

        if (r->timed_out)
                snprintf(how, sizeof how, "timed out and was killed");
        else if (r->term_signal != 0) {
                const char *abbrev = sigabbrev_np(r->term_signal);
                snprintf(how, sizeof how, "killed by signal %d (SIG%s)", r->term_signal,
                         abbrev ? abbrev : "?");
        } else if (r->exit_code != 0)
                snprintf(how, sizeof how, "exited with status %d", r->exit_code);
        else
                snprintf(how, sizeof how, "succeeded");

        if (r->stderr_data && r->stderr_len > 0)
                src = r->stderr_data, srclen = r->stderr_len;
        else if (r->stdout_data)
                src = r->stdout_data, srclen = r->stdout_len;
        else
                src = "", srclen = 0;
        excerpt(text, sizeof text, src, srclen, EXCERPT_LINES);

        if (text[0] == '\0')
                return jb_err_set(err, JB_E_SERVICE_FAILED, "%s: %s", prog, how);
        return jb_err_set(err, JB_E_SERVICE_FAILED, "%s: %s: %s", prog, how, text);
}
