/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Tests for <jabali/lock.h>. Contention between processes is ordered with
 * pipes, never with sleeps. Children report through their exit status and
 * pipes only (no cmocka calls in a child). */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <jabali/lock.h>

typedef struct state {
        char base[64];
        char dir[96];           /* base/locks */
} state;

static void assert_code(const jb_err *err, const char *code) {
        if (strcmp(err->code, code) != 0)
                fail_msg("expected %s, got %s (%s)", code, err->code, err->msg);
}

static double now_s(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static int setup(void **st) {
        state *s = calloc(1, sizeof *s);

        assert_non_null(s);
        snprintf(s->base, sizeof s->base, "/tmp/jb-test-lock-XXXXXX");
        assert_non_null(mkdtemp(s->base));
        snprintf(s->dir, sizeof s->dir, "%s/locks", s->base);
        assert_int_equal(mkdir(s->dir, 0700), 0);
        *st = s;
        return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
        (void) sb;
        (void) flag;
        (void) ftw;
        return remove(path);
}

static int teardown(void **st) {
        state *s = *st;
        assert_int_equal(nftw(s->base, rm_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
        free(s);
        return 0;
}

static void put_byte(int fd, char c) {
        if (write(fd, &c, 1) != 1)
                _exit(90);
}

static char get_byte(int fd) {
        char c = 0;
        return read(fd, &c, 1) == 1 ? c : 0;
}

static size_t count_entries(const char *path) {
        DIR *d = opendir(path);
        struct dirent *de;
        size_t n = 0;

        assert_non_null(d);
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                        n++;
        closedir(d);
        return n;
}

/* The only lock file's name (there must be exactly one). */
static void only_entry(const char *path, char *name, size_t size) {
        DIR *d = opendir(path);
        struct dirent *de;
        int n = 0;

        assert_non_null(d);
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
                        snprintf(name, size, "%s", de->d_name);
                        n++;
                }
        closedir(d);
        assert_int_equal(n, 1);
}

static void test_basic(void **st) {
        state *s = *st;
        jb_err err = JB_ERR_INIT;
        char name[300];

        int lk = jb_lock_acquire(s->dir, "domain:example.com", -1, &err);
        assert_true(lk >= 0);
        assert_true(fcntl(lk, F_GETFD) & FD_CLOEXEC);
        only_entry(s->dir, name, sizeof name);
        /* Readable for people: the key's text, then a hash. */
        assert_int_equal(strncmp(name, "domain:example.com-", 19), 0);
        assert_non_null(strstr(name, ".lock"));

        /* Not re-entrant: the same key again waits for itself. */
        assert_int_equal(jb_lock_acquire(s->dir, "domain:example.com", 0, &err), -1);
        assert_code(&err, "BUSY");
        double t0 = now_s();
        assert_int_equal(jb_lock_acquire(s->dir, "domain:example.com", 150, &err), -1);
        double took = now_s() - t0;
        assert_code(&err, "BUSY");
        assert_true(took >= 0.14);
        assert_true(took < 1.5);

        /* Another key is independent. */
        int other = jb_lock_acquire(s->dir, "domain:example.org", 0, &err);
        assert_true(other >= 0);
        assert_int_equal(jb_lock_release(other), -1);

        assert_int_equal(jb_lock_release(lk), -1);
        lk = jb_lock_acquire(s->dir, "domain:example.com", 0, &err);
        assert_true(lk >= 0);
        jb_lock_release(lk);
        assert_int_equal(jb_lock_release(-1), -1);
        /* Lock files stay; there are two now. */
        assert_int_equal(count_entries(s->dir), 2);
}

/* A holds the key; B waits with `timeout_ms` and gets it once A lets go. */
static void contend(state *s, int b_timeout_ms) {
        int a_up[2], a_go[2], b_up[2], status;
        jb_err err = JB_ERR_INIT;
        pid_t a, b;

        assert_int_equal(pipe2(a_up, O_CLOEXEC), 0);
        assert_int_equal(pipe2(a_go, O_CLOEXEC), 0);
        assert_int_equal(pipe2(b_up, O_CLOEXEC), 0);

        a = fork();
        assert_true(a >= 0);
        if (a == 0) {
                int lk = jb_lock_acquire(s->dir, "user:ann", -1, NULL);
                if (lk < 0)
                        _exit(1);
                put_byte(a_up[1], 'a');
                if (get_byte(a_go[0]) != 'g')
                        _exit(2);
                jb_lock_release(lk);
                _exit(0);
        }
        assert_int_equal(get_byte(a_up[0]), 'a');

        /* Held elsewhere: we cannot have it now, nor within 100 ms. */
        assert_int_equal(jb_lock_acquire(s->dir, "user:ann", 0, &err), -1);
        assert_code(&err, "BUSY");
        assert_int_equal(jb_lock_acquire(s->dir, "user:ann", 100, &err), -1);
        assert_code(&err, "BUSY");
        /* A different key is free meanwhile. */
        int other = jb_lock_acquire(s->dir, "user:bob", 0, &err);
        assert_true(other >= 0);
        jb_lock_release(other);

        b = fork();
        assert_true(b >= 0);
        if (b == 0) {
                jb_err e = JB_ERR_INIT;
                if (jb_lock_acquire(s->dir, "user:ann", 0, &e) >= 0 || strcmp(e.code, "BUSY") != 0)
                        _exit(3);
                put_byte(b_up[1], 'x');
                int lk = jb_lock_acquire(s->dir, "user:ann", b_timeout_ms, &e);
                if (lk < 0)
                        _exit(4);
                put_byte(b_up[1], 'b');
                jb_lock_release(lk);
                _exit(0);
        }
        /* B found it busy and is waiting: it has not got it. */
        assert_int_equal(get_byte(b_up[0]), 'x');
        struct pollfd pfd = { .fd = b_up[0], .events = POLLIN };
        assert_int_equal(poll(&pfd, 1, 50), 0);

        put_byte(a_go[1], 'g');
        double t0 = now_s();
        assert_int_equal(get_byte(b_up[0]), 'b');
        assert_true(now_s() - t0 < 5.0);

        assert_int_equal(waitpid(a, &status, 0), a);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        assert_int_equal(waitpid(b, &status, 0), b);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);

        int lk = jb_lock_acquire(s->dir, "user:ann", 0, &err);
        assert_true(lk >= 0);
        jb_lock_release(lk);
        close(a_up[0]), close(a_up[1]), close(a_go[0]), close(a_go[1]), close(b_up[0]), close(b_up[1]);
}

static void test_two_processes_wait_forever(void **st) {
        contend(*st, -1);
}

static void test_two_processes_timed(void **st) {
        contend(*st, 20000);
}

static int custom_hits;
static void custom_handler(int sig) {
        (void) sig;
        custom_hits++;
}

/* The timed wait puts the caller's signal handler and mask back, and works
 * even when the caller had the timer signal blocked. */
static void test_timeout_restores_signals(void **st) {
        state *s = *st;
        jb_err err = JB_ERR_INIT;
        struct sigaction sa = { .sa_handler = custom_handler, .sa_flags = SA_RESTART }, cur;
        sigset_t block, before, after;
        int sig = JB_LOCK_SIGNAL;

        sigemptyset(&sa.sa_mask);
        assert_int_equal(sigaction(sig, &sa, NULL), 0);
        sigemptyset(&block);
        sigaddset(&block, sig);
        sigprocmask(SIG_BLOCK, &block, &before);

        int lk = jb_lock_acquire(s->dir, "k", -1, &err);
        assert_true(lk >= 0);
        for (int i = 0; i < 3; i++) {
                double t0 = now_s();
                assert_int_equal(jb_lock_acquire(s->dir, "k", 120, &err), -1);
                double took = now_s() - t0;
                assert_code(&err, "BUSY");
                assert_true(took >= 0.11);
                assert_true(took < 1.5);
        }
        /* A 1 ms timeout: the timer may fire before the wait even starts. */
        assert_int_equal(jb_lock_acquire(s->dir, "k", 1, &err), -1);
        assert_code(&err, "BUSY");
        jb_lock_release(lk);

        sigprocmask(SIG_SETMASK, NULL, &after);
        assert_int_equal(sigismember(&after, sig), 1);
        assert_int_equal(sigaction(sig, NULL, &cur), 0);
        assert_ptr_equal(cur.sa_handler, custom_handler);
        assert_true(cur.sa_flags & SA_RESTART);
        assert_int_equal(custom_hits, 0);
        /* Nothing of ours is left pending. */
        sigset_t pending;
        sigpending(&pending);
        assert_int_equal(sigismember(&pending, sig), 0);

        sigprocmask(SIG_SETMASK, &before, NULL);
        signal(sig, SIG_DFL);
}

/* The kernel drops the lock when its holder dies without releasing. */
static void test_holder_dies(void **st) {
        state *s = *st;
        jb_err err = JB_ERR_INIT;
        int up[2], status;

        assert_int_equal(pipe2(up, O_CLOEXEC), 0);
        pid_t a = fork();
        assert_true(a >= 0);
        if (a == 0) {
                if (jb_lock_acquire(s->dir, "crash", -1, NULL) < 0)
                        _exit(1);
                put_byte(up[1], 'a');
                pause();
                _exit(0);
        }
        assert_int_equal(get_byte(up[0]), 'a');
        assert_int_equal(jb_lock_acquire(s->dir, "crash", 0, &err), -1);
        assert_code(&err, "BUSY");
        kill(a, SIGKILL);
        assert_int_equal(waitpid(a, &status, 0), a);
        int lk = jb_lock_acquire(s->dir, "crash", 0, &err);
        assert_true(lk >= 0);
        jb_lock_release(lk);
        close(up[0]);
        close(up[1]);
}

static void test_hostile_keys(void **st) {
        state *s = *st;
        jb_err err = JB_ERR_INIT;
        char longkey[JB_LOCK_KEY_MAX + 2];
        const char *keys[] = { "../../etc/passwd", "a/b", "a%2fb", "..", ".", "/", "/etc/shadow", "\x01\xff\n\t",
                               ".hidden", "a\\b", "-", "%", "caf\xc3\xa9", longkey };

        memset(longkey, 'k', JB_LOCK_KEY_MAX);
        longkey[JB_LOCK_KEY_MAX] = '\0';
        size_t n = sizeof keys / sizeof keys[0];
        int fds[sizeof keys / sizeof keys[0]];

        /* All held at once: distinct keys never share a file. */
        for (size_t i = 0; i < n; i++) {
                fds[i] = jb_lock_acquire(s->dir, keys[i], 0, &err);
                if (fds[i] < 0)
                        fail_msg("key %zu: %s: %s", i, err.code, err.msg);
        }
        assert_int_equal(count_entries(s->dir), n);
        /* Nothing was made outside the lock directory. */
        assert_int_equal(count_entries(s->base), 1);

        DIR *d = opendir(s->dir);
        struct dirent *de;
        assert_non_null(d);
        while ((de = readdir(d))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                assert_true(de->d_name[0] != '.');
                assert_int_equal(de->d_type, DT_REG);
                assert_true(strlen(de->d_name) < 100);
                for (const char *p = de->d_name; *p; p++)
                        assert_true(*p > 0x20 && *p < 0x7f);
        }
        closedir(d);
        for (size_t i = 0; i < n; i++)
                jb_lock_release(fds[i]);

        longkey[JB_LOCK_KEY_MAX] = 'k';
        longkey[JB_LOCK_KEY_MAX + 1] = '\0';
        assert_int_equal(jb_lock_acquire(s->dir, longkey, 0, &err), -1);
        assert_code(&err, "INVALID_PARAMS");
        assert_int_equal(jb_lock_acquire(s->dir, "", 0, &err), -1);
        assert_code(&err, "INVALID_PARAMS");
        assert_int_equal(jb_lock_acquire(s->dir, NULL, 0, &err), -1);
        assert_code(&err, "INVALID_PARAMS");
        assert_int_equal(jb_lock_acquire("relative/locks", "k", 0, &err), -1);
        assert_code(&err, "INVALID_PARAMS");
        assert_int_equal(jb_lock_acquire(NULL, "k", 0, &err), -1);
        assert_code(&err, "INVALID_PARAMS");
        char missing[128];
        snprintf(missing, sizeof missing, "%s/missing", s->base);
        assert_int_equal(jb_lock_acquire(missing, "k", 0, &err), -1);
        assert_code(&err, "NOT_FOUND");
}

/* Something planted under a lock file's name is refused, not followed. */
static void test_planted_lock_file(void **st) {
        state *s = *st;
        jb_err err = JB_ERR_INIT;
        char name[300], path[512], victim[128];

        int lk = jb_lock_acquire(s->dir, "planted", 0, &err);
        assert_true(lk >= 0);
        jb_lock_release(lk);
        only_entry(s->dir, name, sizeof name);
        snprintf(path, sizeof path, "%s/%s", s->dir, name);
        snprintf(victim, sizeof victim, "%s/victim", s->base);

        assert_int_equal(unlink(path), 0);
        assert_int_equal(symlink(victim, path), 0);
        assert_int_equal(jb_lock_acquire(s->dir, "planted", 0, &err), -1);
        assert_code(&err, "CONFLICT");
        assert_int_equal(access(victim, F_OK), -1);     /* not created through the link */

        assert_int_equal(unlink(path), 0);
        assert_int_equal(mkfifo(path, 0600), 0);
        assert_int_equal(jb_lock_acquire(s->dir, "planted", -1, &err), -1);
        assert_code(&err, "CONFLICT");

        assert_int_equal(unlink(path), 0);
        assert_int_equal(mkdir(path, 0700), 0);
        assert_int_equal(jb_lock_acquire(s->dir, "planted", 0, &err), -1);
        assert_code(&err, "CONFLICT");
        assert_int_equal(rmdir(path), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_basic, setup, teardown),
                cmocka_unit_test_setup_teardown(test_two_processes_wait_forever, setup, teardown),
                cmocka_unit_test_setup_teardown(test_two_processes_timed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_timeout_restores_signals, setup, teardown),
                cmocka_unit_test_setup_teardown(test_holder_dies, setup, teardown),
                cmocka_unit_test_setup_teardown(test_hostile_keys, setup, teardown),
                cmocka_unit_test_setup_teardown(test_planted_lock_file, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
