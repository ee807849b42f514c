/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Tests for <jabali/spawn.h>. The tests use /bin/sh to build odd children;
 * the library itself never runs a shell.
 *
 * The test process is a child subreaper, so that what a spawned program
 * leaves behind becomes our child and can be checked (and reaped) here. */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <jabali/spawn.h>

static void assert_code(const jb_err *err, const char *code) {
        if (strcmp(err->code, code) != 0)
                fail_msg("expected %s, got %s (%s)", code, err->code, err->msg);
}

static double now_s(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* Runs argv with defaults, expecting jb_spawn_run to succeed. */
static void run_ok(const jb_spawn_opts *o, jb_spawn_result *r) {
        jb_err err = JB_ERR_INIT;
        if (jb_spawn_run(o, r, &err) != 0)
                fail_msg("jb_spawn_run: %s: %s", err.code, err.msg);
        assert_non_null(r->stdout_data);
        assert_non_null(r->stderr_data);
        assert_int_equal(r->stdout_data[r->stdout_len], '\0');
        assert_int_equal(r->stderr_data[r->stderr_len], '\0');
}

static void test_true_false(void **st) {
        (void) st;
        const char *const t[] = { "/bin/true", NULL };
        const char *const f[] = { "/bin/false", NULL };
        jb_spawn_result r;
        jb_err err = JB_ERR_INIT;

        run_ok(&(jb_spawn_opts) { .argv = t }, &r);
        assert_int_equal(r.exit_code, 0);
        assert_int_equal(r.term_signal, 0);
        assert_false(r.timed_out);
        assert_true(jb_spawn_succeeded(&r));
        assert_int_equal(r.stdout_len, 0);
        assert_string_equal(r.stdout_data, "");
        assert_string_equal(r.program, "/bin/true");
        assert_int_equal(jb_spawn_result_to_err(&r, &err), -1);
        assert_code(&err, "SERVICE_FAILED");
        jb_spawn_result_free(&r);
        jb_spawn_result_free(&r);       /* twice is harmless */
        jb_spawn_result_free(NULL);

        run_ok(&(jb_spawn_opts) { .argv = f }, &r);
        assert_int_equal(r.exit_code, 1);
        assert_false(jb_spawn_succeeded(&r));
        assert_int_equal(jb_spawn_result_to_err(&r, &err), -1);
        assert_code(&err, "SERVICE_FAILED");
        assert_string_equal(err.msg, "/bin/false: exited with status 1");
        jb_spawn_result_free(&r);
        assert_false(jb_spawn_succeeded(NULL));
}

static void test_output_and_status(void **st) {
        (void) st;
        const char *const argv[] = { "/bin/sh", "-c", "echo out; echo 'nginx: [emerg] bad' >&2; "
                                     "echo second >&2; exit 3", NULL };
        jb_spawn_result r;
        jb_err err = JB_ERR_INIT;

        run_ok(&(jb_spawn_opts) { .argv = argv }, &r);
        assert_int_equal(r.exit_code, 3);
        assert_string_equal(r.stdout_data, "out\n");
        assert_string_equal(r.stderr_data, "nginx: [emerg] bad\nsecond\n");
        assert_false(r.stdout_truncated);
        jb_spawn_result_to_err(&r, &err);
        assert_code(&err, "SERVICE_FAILED");
        assert_string_equal(err.msg, "/bin/sh: exited with status 3: nginx: [emerg] bad | second");
        jb_spawn_result_free(&r);

        /* stdout is used when stderr is empty. */
        const char *const only_out[] = { "/bin/sh", "-c", "echo 'zone broken'; exit 2", NULL };
        run_ok(&(jb_spawn_opts) { .argv = only_out }, &r);
        jb_spawn_result_to_err(&r, &err);
        assert_string_equal(err.msg, "/bin/sh: exited with status 2: zone broken");
        jb_spawn_result_free(&r);
}

static void test_signal(void **st) {
        (void) st;
        const char *const argv[] = { "/bin/sh", "-c", "kill -TERM $$", NULL };
        jb_spawn_result r;
        jb_err err = JB_ERR_INIT;

        run_ok(&(jb_spawn_opts) { .argv = argv }, &r);
        assert_int_equal(r.exit_code, -1);
        assert_int_equal(r.term_signal, SIGTERM);
        assert_false(r.timed_out);
        assert_false(jb_spawn_succeeded(&r));
        jb_spawn_result_to_err(&r, &err);
        assert_string_equal(err.msg, "/bin/sh: killed by signal 15 (SIGTERM)");
        jb_spawn_result_free(&r);
}

static void test_stdin(void **st) {
        (void) st;
        const char *const cat[] = { "/bin/cat", NULL };
        const char data[] = "hello\0world\n";
        jb_spawn_result r;

        run_ok(&(jb_spawn_opts) { .argv = cat, .stdin_data = data, .stdin_len = sizeof data - 1 }, &r);
        assert_int_equal(r.exit_code, 0);
        assert_int_equal(r.stdout_len, sizeof data - 1);
        assert_memory_equal(r.stdout_data, data, sizeof data - 1);
        jb_spawn_result_free(&r);

        /* No stdin: /dev/null, cat ends at once. */
        run_ok(&(jb_spawn_opts) { .argv = cat }, &r);
        assert_int_equal(r.exit_code, 0);
        assert_int_equal(r.stdout_len, 0);
        jb_spawn_result_free(&r);

        /* Empty stdin data: a pipe closed at once. */
        run_ok(&(jb_spawn_opts) { .argv = cat, .stdin_data = "", .stdin_len = 0 }, &r);
        assert_int_equal(r.exit_code, 0);
        assert_int_equal(r.stdout_len, 0);
        jb_spawn_result_free(&r);

        /* Much more than a pipe buffer both ways: needs interleaved I/O. */
        size_t big_len = 3u << 20;
        char *big = malloc(big_len);
        assert_non_null(big);
        for (size_t i = 0; i < big_len; i++)
                big[i] = (char) (i * 7 + i / 4096);
        run_ok(&(jb_spawn_opts) { .argv = cat, .stdin_data = big, .stdin_len = big_len,
                                  .max_output = 4u << 20 }, &r);
        assert_int_equal(r.exit_code, 0);
        assert_int_equal(r.stdout_len, big_len);
        assert_false(r.stdout_truncated);
        assert_memory_equal(r.stdout_data, big, big_len);
        jb_spawn_result_free(&r);

        /* A program that does not read its stdin: no SIGPIPE for us. */
        const char *const t[] = { "/bin/true", NULL };
        run_ok(&(jb_spawn_opts) { .argv = t, .stdin_data = big, .stdin_len = big_len }, &r);
        assert_int_equal(r.exit_code, 0);
        jb_spawn_result_free(&r);
        free(big);
}

static void test_env(void **st) {
        (void) st;
        const char *const env[] = { "/usr/bin/env", NULL };
        const char *const extra[] = { "FOO=bar baz", "EMPTY=", NULL };
        const char *const override[] = { "PATH=/opt/x", NULL };
        jb_spawn_result r;

        assert_int_equal(setenv("JB_SECRET_TEST", "leak", 1), 0);
        run_ok(&(jb_spawn_opts) { .argv = env }, &r);
        assert_string_equal(r.stdout_data, "PATH=/usr/sbin:/usr/bin:/sbin:/bin\nLANG=C.UTF-8\n");
        jb_spawn_result_free(&r);

        run_ok(&(jb_spawn_opts) { .argv = env, .env = extra }, &r);
        assert_string_equal(r.stdout_data, "PATH=/usr/sbin:/usr/bin:/sbin:/bin\nLANG=C.UTF-8\n"
                                           "FOO=bar baz\nEMPTY=\n");
        assert_null(strstr(r.stdout_data, "JB_SECRET_TEST"));
        jb_spawn_result_free(&r);

        run_ok(&(jb_spawn_opts) { .argv = env, .env = override }, &r);
        assert_string_equal(r.stdout_data, "PATH=/opt/x\nLANG=C.UTF-8\n");
        jb_spawn_result_free(&r);

        /* A shell sees nothing of ours either. */
        const char *const sh[] = { "/bin/sh", "-c", "echo \"[$JB_SECRET_TEST][$HOME]\"", NULL };
        run_ok(&(jb_spawn_opts) { .argv = sh }, &r);
        assert_string_equal(r.stdout_data, "[][]\n");
        jb_spawn_result_free(&r);
        unsetenv("JB_SECRET_TEST");

        const char *const bad[][3] = {
                { "NOEQUALS", NULL, NULL }, { "=x", NULL, NULL }, { "1A=x", NULL, NULL },
                { "A B=x", NULL, NULL }, { "A-B=x", NULL, NULL }, { "FOO=1", "FOO=2", NULL },
                { "PATH=/a", "PATH=/b", NULL }, { "", NULL, NULL },
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                jb_err err = JB_ERR_INIT;
                assert_int_equal(jb_spawn_run(&(jb_spawn_opts) { .argv = env, .env = bad[i] }, &r, &err), -1);
                assert_code(&err, "INVALID_PARAMS");
                assert_null(r.stdout_data);
        }

        const char *many[JB_SPAWN_ENV_MAX + 2];
        char names[JB_SPAWN_ENV_MAX + 1][16];
        for (int i = 0; i <= JB_SPAWN_ENV_MAX; i++) {
                snprintf(names[i], sizeof names[i], "V%d=1", i);
                many[i] = names[i];
        }
        many[JB_SPAWN_ENV_MAX + 1] = NULL;
        jb_err err = JB_ERR_INIT;
        assert_int_equal(jb_spawn_run(&(jb_spawn_opts) { .argv = env, .env = many }, &r, &err), -1);
        assert_code(&err, "INVALID_PARAMS");
        many[JB_SPAWN_ENV_MAX] = NULL;
        run_ok(&(jb_spawn_opts) { .argv = env, .env = many }, &r);
        assert_non_null(strstr(r.stdout_data, "V63=1\n"));
        jb_spawn_result_free(&r);
}

/* The child starts with an empty signal mask, default dispositions, only
 * fds 0-2, in its own process group, in "/" or the given cwd. */
static void test_child_state(void **st) {
        (void) st;
        const char *const grep[] = { "/bin/grep", "-E", "^(SigBlk|SigIgn)", "/proc/self/status", NULL };
        const char *const ls[] = { "/bin/ls", "/proc/self/fd", NULL };
        const char *const pwd[] = { "/bin/pwd", NULL };
        const char *const pg[] = { "/bin/sh", "-c", "echo $$; cut -d' ' -f5 /proc/$$/stat", NULL };
        sigset_t block, old;
        jb_spawn_result r;
        int leak;

        sigemptyset(&block);
        sigaddset(&block, SIGUSR1);
        sigaddset(&block, SIGCHLD);     /* also proves no SIGCHLD is needed */
        sigprocmask(SIG_BLOCK, &block, &old);
        signal(SIGINT, SIG_IGN);
        leak = open("/dev/null", O_RDONLY);     /* not O_CLOEXEC */
        assert_true(leak >= 3);

        run_ok(&(jb_spawn_opts) { .argv = grep }, &r);
        unsigned long long blk = 1, ign = 1;
        assert_int_equal(sscanf(r.stdout_data, "SigBlk:\t%llx\nSigIgn:\t%llx", &blk, &ign), 2);
        assert_int_equal(blk, 0);
        /* glibc's posix_spawn leaves its internal signals 32 and 33 ignored
         * (it cannot run handlers in the vfork'ed child); all others are
         * back to default. */
        assert_int_equal(ign & ~0x180000000ULL, 0);
        jb_spawn_result_free(&r);

        run_ok(&(jb_spawn_opts) { .argv = ls }, &r);
        assert_string_equal(r.stdout_data, "0\n1\n2\n3\n");     /* 3: ls's own directory fd */
        jb_spawn_result_free(&r);

        run_ok(&(jb_spawn_opts) { .argv = pwd }, &r);
        assert_string_equal(r.stdout_data, "/\n");
        jb_spawn_result_free(&r);
        run_ok(&(jb_spawn_opts) { .argv = pwd, .cwd = "/tmp" }, &r);
        assert_string_equal(r.stdout_data, "/tmp\n");
        jb_spawn_result_free(&r);

        run_ok(&(jb_spawn_opts) { .argv = pg }, &r);
        int pid = 0, pgid = -1;
        assert_int_equal(sscanf(r.stdout_data, "%d\n%d", &pid, &pgid), 2);
        assert_int_equal(pid, pgid);
        assert_int_not_equal(pgid, getpgrp());
        jb_spawn_result_free(&r);

        close(leak);
        signal(SIGINT, SIG_DFL);
        sigprocmask(SIG_SETMASK, &old, NULL);
}

static void test_timeout(void **st) {
        (void) st;
        /* The shell puts a sleep in the background (same process group) and
         * reports both pids, then sleeps itself. */
        const char *const argv[] = { "/bin/sh", "-c", "sleep 30 & echo $$ $!; sleep 10", NULL };
        jb_spawn_result r;
        jb_err err = JB_ERR_INIT;
        double t0 = now_s();
        int sh_pid = 0, bg_pid = 0, status;

        run_ok(&(jb_spawn_opts) { .argv = argv, .timeout_ms = 300 }, &r);
        double took = now_s() - t0;
        assert_true(took >= 0.29);
        assert_true(took < 3.0);
        assert_true(r.timed_out);
        assert_int_equal(r.exit_code, -1);
        assert_int_equal(r.term_signal, SIGKILL);
        assert_false(jb_spawn_succeeded(&r));
        jb_spawn_result_to_err(&r, &err);
        assert_code(&err, "SERVICE_FAILED");
        assert_non_null(strstr(err.msg, "timed out"));
        assert_int_equal(sscanf(r.stdout_data, "%d %d", &sh_pid, &bg_pid), 2);
        jb_spawn_result_free(&r);

        /* What the shell started (the background sleep and its own "sleep
         * 10") was killed too. As their subreaper we reap here whatever the
         * shell did not reap itself before it died: at once, and each was
         * killed by SIGKILL, not still sleeping. */
        pid_t p;
        t0 = now_s();
        while ((p = waitpid(-1, &status, 0)) > 0) {
                assert_true(WIFSIGNALED(status));
                assert_int_equal(WTERMSIG(status), SIGKILL);
        }
        assert_int_equal(errno, ECHILD);
        assert_true(now_s() - t0 < 2.0);
        assert_int_equal(kill(bg_pid, 0), -1);
        assert_int_equal(errno, ESRCH);
        /* Nothing of the group is left. */
        assert_int_equal(kill(-sh_pid, 0), -1);
        assert_int_equal(errno, ESRCH);
}

/* After the program exits, a leftover holding stdout does not keep us
 * waiting for long, and is not killed. */
static void test_leftover_holds_pipe(void **st) {
        (void) st;
        const char *const argv[] = { "/bin/sh", "-c", "sleep 20 & echo $!", NULL };
        jb_spawn_result r;
        double t0 = now_s();
        int bg_pid = 0, status;

        run_ok(&(jb_spawn_opts) { .argv = argv }, &r);
        double took = now_s() - t0;
        assert_true(took < 3.0);
        assert_int_equal(r.exit_code, 0);
        assert_false(r.timed_out);
        assert_int_equal(sscanf(r.stdout_data, "%d", &bg_pid), 1);
        jb_spawn_result_free(&r);

        assert_int_equal(kill(bg_pid, 0), 0);
        assert_int_equal(kill(bg_pid, SIGKILL), 0);
        assert_int_equal(waitpid(bg_pid, &status, 0), bg_pid);
}

static void test_truncation(void **st) {
        (void) st;
        const char *const out[] = { "/usr/bin/head", "-c", "200000", "/dev/zero", NULL };
        const char *const err_big[] = { "/bin/sh", "-c", "head -c 100000 /dev/zero | tr '\\0' e >&2; echo ok",
                                        NULL };
        jb_spawn_result r;
        jb_err err = JB_ERR_INIT;

        /* Beyond the limit output is read and dropped: head is not stopped
         * by SIGPIPE, it exits 0. */
        run_ok(&(jb_spawn_opts) { .argv = out, .max_output = 1000 }, &r);
        assert_int_equal(r.exit_code, 0);
        assert_int_equal(r.stdout_len, 1000);
        assert_true(r.stdout_truncated);
        assert_false(r.stderr_truncated);
        jb_spawn_result_free(&r);

        run_ok(&(jb_spawn_opts) { .argv = err_big }, &r);
        assert_int_equal(r.exit_code, 0);
        assert_int_equal(r.stderr_len, JB_SPAWN_OUTPUT_DEFAULT);
        assert_true(r.stderr_truncated);
        assert_string_equal(r.stdout_data, "ok\n");
        assert_false(r.stdout_truncated);
        jb_spawn_result_free(&r);

        assert_int_equal(jb_spawn_run(&(jb_spawn_opts) { .argv = out, .max_output = JB_SPAWN_OUTPUT_MAX + 1 },
                                      &r, &err), -1);
        assert_code(&err, "INVALID_PARAMS");
}

static void test_bad_programs(void **st) {
        (void) st;
        const char *const rel[] = { "bin/true", NULL };
        const char *const bare[] = { "true", NULL };
        const char *const none[] = { NULL };
        const char *const missing[] = { "/nonexistent/jb-prog", "arg", NULL };
        const char *const t[] = { "/bin/true", NULL };
        const char *const dir[] = { "/tmp", NULL };
        jb_spawn_result r;
        jb_err err = JB_ERR_INIT;

        assert_int_equal(jb_spawn_run(&(jb_spawn_opts) { .argv = rel }, &r, &err), -1);
        assert_code(&err, "INVALID_PARAMS");
        assert_null(r.program);
        assert_int_equal(jb_spawn_run(&(jb_spawn_opts) { .argv = bare }, &r, &err), -1);
        assert_code(&err, "INVALID_PARAMS");
        assert_int_equal(jb_spawn_run(&(jb_spawn_opts) { .argv = none }, &r, &err), -1);
        assert_code(&err, "INVALID_PARAMS");
        assert_int_equal(jb_spawn_run(&(jb_spawn_opts) { .argv = NULL }, &r, &err), -1);
        assert_code(&err, "INVALID_PARAMS");
        assert_int_equal(jb_spawn_run(NULL, &r, &err), -1);
        assert_code(&err, "INVALID_PARAMS");
        assert_int_equal(jb_spawn_run(&(jb_spawn_opts) { .argv = t }, NULL, &err), -1);
        assert_code(&err, "INVALID_PARAMS");
        assert_int_equal(jb_spawn_run(&(jb_spawn_opts) { .argv = t, .stdin_len = 3 }, &r, &err), -1);
        assert_code(&err, "INVALID_PARAMS");
        assert_int_equal(jb_spawn_run(&(jb_spawn_opts) { .argv = t, .cwd = "tmp" }, &r, &err), -1);
        assert_code(&err, "INVALID_PARAMS");

        assert_int_equal(jb_spawn_run(&(jb_spawn_opts) { .argv = missing }, &r, &err), -1);
        assert_code(&err, "NOT_FOUND");
        assert_string_equal(err.msg, "/nonexistent/jb-prog: cannot run: No such file or directory");
        assert_null(r.stdout_data);
        jb_spawn_result_free(&r);

        assert_int_equal(jb_spawn_run(&(jb_spawn_opts) { .argv = t, .cwd = "/nonexistent-jb" }, &r, &err), -1);
        assert_code(&err, "NOT_FOUND");
        assert_string_equal(err.msg, "/nonexistent-jb: no such working directory");

        assert_int_equal(jb_spawn_run(&(jb_spawn_opts) { .argv = dir }, &r, &err), -1);
        assert_code(&err, "INTERNAL");
        assert_string_equal(err.msg, "/tmp: cannot run: not an executable file");
        const char *const noexec[] = { "/etc/passwd", NULL };
        assert_int_equal(jb_spawn_run(&(jb_spawn_opts) { .argv = noexec }, &r, &err), -1);
        assert_code(&err, "INTERNAL");

        /* No child was left behind by any of these. */
        int status;
        assert_int_equal(waitpid(-1, &status, WNOHANG), -1);
        assert_int_equal(errno, ECHILD);
}

/* The message is bounded, has at most 3 lines, no control characters and
 * only valid UTF-8. */
static void test_err_excerpt(void **st) {
        (void) st;
        jb_spawn_result r = { .exit_code = 1 };
        jb_err err = JB_ERR_INIT;
        char text[4096];

        r.program = strdup("/usr/sbin/nginx");
        snprintf(text, sizeof text, "\n\n  first\tline\x01\r\nsecond \xff\xfe caf\xc3\xa9\n\nthird\nfourth\n");
        r.stderr_data = strdup(text);
        r.stderr_len = strlen(text);
        r.stdout_data = strdup("");
        jb_spawn_result_to_err(&r, &err);
        assert_string_equal(err.msg, "/usr/sbin/nginx: exited with status 1: first line | second ?? caf\xc3\xa9 | third");

        /* A long line is cut below 240 bytes, never inside a character. */
        free(r.stderr_data);
        text[0] = '\0';
        for (int i = 0; i < 200; i++)
                strcat(text, "\xc3\xa9");
        r.stderr_data = strdup(text);
        r.stderr_len = strlen(text);
        jb_spawn_result_to_err(&r, &err);
        const char *ex = strstr(err.msg, ": \xc3\xa9");
        assert_non_null(ex);
        ex += 2;
        assert_true(strlen(ex) <= 240);
        assert_int_equal(strlen(ex) % 2, 0);
        jb_spawn_result_free(&r);

        assert_int_equal(jb_spawn_result_to_err(NULL, &err), -1);
        assert_code(&err, "INTERNAL");
}

/* ---- jb_spawn_run_io ---- */

typedef struct lines {
        char text[8192];
        size_t len;
        unsigned count;
        size_t longest;
} lines;

static void collect(const char *line, size_t len, void *arg) {
        lines *l = arg;

        assert_int_equal(line[len], '\0');
        if (len > l->longest)
                l->longest = len;
        if (l->len + len + 2 < sizeof l->text) {
                memcpy(l->text + l->len, line, len);
                l->len += len;
                l->text[l->len++] = '|';
                l->text[l->len] = '\0';
        }
        l->count++;
}

static void test_io_lines(void **st) {
        (void) st;
        const char *const argv[] = { "/bin/sh", "-c", "echo one; printf 'two\\nthree'; echo err >&2", NULL };
        lines l = { .len = 0 };
        jb_spawn_io io = { .on_stdout_line = collect, .line_arg = &l };
        jb_spawn_result r;
        jb_err err = JB_ERR_INIT;

        assert_int_equal(jb_spawn_run_io(&(jb_spawn_opts) { .argv = argv }, &io, &r, &err), 0);
        assert_true(jb_spawn_succeeded(&r));
        assert_string_equal(l.text, "one|two|three|");     /* the last line comes without its newline */
        assert_int_equal(r.stdout_len, 0);
        assert_string_equal(r.stderr_data, "err\n");
        assert_false(io.cancelled);
        jb_spawn_result_free(&r);

        /* 20,000 lines in one burst, and a line longer than the buffer. */
        const char *const many[] = { "/bin/sh", "-c", "seq 1 20000; head -c 5000 /dev/zero | tr '\\0' x; echo", NULL };
        lines m = { .len = 0 };
        jb_spawn_io io2 = { .on_stdout_line = collect, .line_arg = &m };
        assert_int_equal(jb_spawn_run_io(&(jb_spawn_opts) { .argv = many, .max_output = 4096 }, &io2, &r, &err), 0);
        assert_true(jb_spawn_succeeded(&r));
        assert_int_equal(m.count, 20000 + 2);   /* 5000 bytes at 4096 a piece: two pieces */
        assert_int_equal(m.longest, 4096);
        assert_memory_equal(m.text, "1|2|3|", 6);
        jb_spawn_result_free(&r);
}

typedef struct producer {
        int out;
        jb_spawn_result r;
        int rc;
        const char *script;
} producer;

static void *run_producer(void *arg) {
        producer *p = arg;
        const char *const argv[] = { "/bin/sh", "-c", p->script, NULL };
        jb_spawn_io io = { .stdout_fd = p->out };
        jb_err err = JB_ERR_INIT;

        p->rc = jb_spawn_run_io(&(jb_spawn_opts) { .argv = argv }, &io, &p->r, &err);
        return NULL;
}

/* A producer thread feeding a consumer through a pipe: each exit status is
 * seen, and a producer that dies gives its consumer a clean end of file
 * (the caller must look at both). */
static void test_io_pipeline(void **st) {
        (void) st;
        const char *const wc[] = { "/usr/bin/wc", "-c", NULL };
        const char *scripts[] = { "head -c 100000 /dev/zero", "head -c 300 /dev/zero; kill -KILL $$" };

        for (int i = 0; i < 2; i++) {
                int pp[2];
                pthread_t t;
                producer p = { .script = scripts[i] };
                jb_spawn_result r;
                jb_err err = JB_ERR_INIT;

                assert_int_equal(pipe2(pp, O_CLOEXEC), 0);
                /* Above 2, as the header asks. */
                assert_true(pp[0] > 2 && pp[1] > 2);
                p.out = pp[1];
                jb_spawn_io io = { .stdin_fd = pp[0] };
                assert_int_equal(pthread_create(&t, NULL, run_producer, &p), 0);
                assert_int_equal(jb_spawn_run_io(&(jb_spawn_opts) { .argv = wc }, &io, &r, &err), 0);
                assert_int_equal(pthread_join(t, NULL), 0);
                assert_int_equal(p.rc, 0);
                assert_true(jb_spawn_succeeded(&r));
                assert_int_equal(atoi(r.stdout_data), i == 0 ? 100000 : 300);
                if (i == 0)
                        assert_true(jb_spawn_succeeded(&p.r));
                else
                        assert_int_equal(p.r.term_signal, SIGKILL);
                /* Both ends were taken: closing them again fails. */
                assert_int_equal(fcntl(pp[0], F_GETFD), -1);
                assert_int_equal(fcntl(pp[1], F_GETFD), -1);
                jb_spawn_result_free(&r);
                jb_spawn_result_free(&p.r);
        }
}

static void cancel_on_ready(const char *line, size_t len, void *arg) {
        if (len == 5 && memcmp(line, "ready", 5) == 0)
                assert_int_equal(write(*(int *) arg, "x", 1), 1);
}

/* Cancelling: SIGTERM first, a program that ignores it gets SIGKILL after
 * the grace period; cancelled is set; a refused call still closes what it
 * was given. */
static void test_io_cancel(void **st) {
        (void) st;
        const char *const polite[] = { "/bin/sh", "-c", "trap 'exit 7' TERM; while :; do sleep 0.05; done", NULL };
        const char *const stubborn[] = { "/bin/sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.05; done",
                                         NULL };
        jb_spawn_result r;
        jb_err err = JB_ERR_INIT;
        int c[2];
        double t0;

        assert_int_equal(pipe2(c, O_CLOEXEC), 0);
        assert_int_equal(write(c[1], "x", 1), 1);   /* already asked: stops at once */
        jb_spawn_io io = { .cancel_fd = c[0] };
        assert_int_equal(jb_spawn_run_io(&(jb_spawn_opts) { .argv = polite, .timeout_ms = 20000 }, &io, &r, &err), 0);
        assert_true(io.cancelled);
        assert_false(r.timed_out);
        assert_true(r.exit_code == 7 || r.term_signal == SIGTERM);
        jb_spawn_result_free(&r);

        /* Asked only once the trap is set (the ready line). */
        close(c[0]);
        close(c[1]);
        assert_int_equal(pipe2(c, O_CLOEXEC), 0);
        t0 = now_s();
        jb_spawn_io io2 = { .cancel_fd = c[0], .cancel_grace_ms = 300, .on_stdout_line = cancel_on_ready,
                            .line_arg = &c[1] };
        assert_int_equal(jb_spawn_run_io(&(jb_spawn_opts) { .argv = stubborn, .timeout_ms = 20000 }, &io2, &r, &err), 0);
        assert_true(io2.cancelled);
        assert_int_equal(r.term_signal, SIGKILL);
        assert_false(r.timed_out);
        assert_true(now_s() - t0 < 10.0);
        jb_spawn_result_free(&r);
        close(c[0]);
        close(c[1]);

        /* Another first signal, for programs that clean up on SIGINT only. */
        const char *const on_int[] = { "/bin/sh", "-c", "trap 'exit 5' INT; echo ready; while :; do sleep 0.05; done",
                                       NULL };
        assert_int_equal(pipe2(c, O_CLOEXEC), 0);
        jb_spawn_io io6 = { .cancel_fd = c[0], .cancel_signal = SIGINT, .on_stdout_line = cancel_on_ready,
                            .line_arg = &c[1] };
        assert_int_equal(jb_spawn_run_io(&(jb_spawn_opts) { .argv = on_int, .timeout_ms = 20000 }, &io6, &r, &err), 0);
        assert_true(io6.cancelled);
        assert_int_equal(r.exit_code, 5);
        jb_spawn_result_free(&r);
        close(c[0]);
        close(c[1]);

        /* Without a cancel: runs to its end. */
        const char *const t[] = { "/bin/true", NULL };
        jb_spawn_io io3 = { .cancel_fd = 0 };
        assert_int_equal(jb_spawn_run_io(&(jb_spawn_opts) { .argv = t }, &io3, &r, &err), 0);
        assert_false(io3.cancelled);
        jb_spawn_result_free(&r);

        /* Refused (relative program): the given descriptor is closed anyway. */
        int pp[2];
        const char *const rel[] = { "true", NULL };
        assert_int_equal(pipe2(pp, O_CLOEXEC), 0);
        jb_spawn_io io4 = { .stdin_fd = pp[0] };
        assert_int_equal(jb_spawn_run_io(&(jb_spawn_opts) { .argv = rel }, &io4, &r, &err), -1);
        assert_code(&err, "INVALID_PARAMS");
        assert_int_equal(fcntl(pp[0], F_GETFD), -1);
        close(pp[1]);
        /* stdin both ways is refused. */
        assert_int_equal(pipe2(pp, O_CLOEXEC), 0);
        jb_spawn_io io5 = { .stdin_fd = pp[0] };
        assert_int_equal(jb_spawn_run_io(&(jb_spawn_opts) { .argv = t, .stdin_data = "x", .stdin_len = 1 }, &io5,
                                         &r, &err), -1);
        assert_code(&err, "INVALID_PARAMS");
        close(pp[1]);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_true_false),
                cmocka_unit_test(test_output_and_status),
                cmocka_unit_test(test_signal),
                cmocka_unit_test(test_stdin),
                cmocka_unit_test(test_env),
                cmocka_unit_test(test_child_state),
                cmocka_unit_test(test_timeout),
                cmocka_unit_test(test_leftover_holds_pipe),
                cmocka_unit_test(test_truncation),
                cmocka_unit_test(test_bad_programs),
                cmocka_unit_test(test_err_excerpt),
                cmocka_unit_test(test_io_lines),
                cmocka_unit_test(test_io_pipeline),
                cmocka_unit_test(test_io_cancel),
        };

        if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
                return 1;
        return cmocka_run_group_tests(tests, NULL, NULL);
}
