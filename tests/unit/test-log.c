/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Operational logging: the stderr line format, sanitising, truncation,
 * level filtering, errno handling, and the journal target (against a fake
 * journald socket in a private mount namespace). */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE     /* pipe2, unshare */
#endif

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"

#define LINE_BUF (LOG_MESSAGE_MAX + 1024)

/* ---- capturing stderr ---- */

/* A SOCK_SEQPACKET pair keeps message boundaries, so each recv() returns
 * exactly what one write(2) wrote: that is how "one line, one write" is
 * checked. */
typedef struct capture {
        int rd;
        int saved_stderr;
} capture;

static void capture_begin(capture *c, bool use_pipe) {
        int p[2];

        if (use_pipe)
                assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
        else
                assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, p), 0);
        /* Flush anything cmocka buffered before swapping the descriptor. */
        fflush(stderr);
        c->saved_stderr = dup(STDERR_FILENO);
        assert_true(c->saved_stderr >= 0);
        assert_int_equal(dup2(p[1], STDERR_FILENO), STDERR_FILENO);
        close(p[1]);
        c->rd = p[0];
}

static void capture_end(capture *c) {
        assert_int_equal(dup2(c->saved_stderr, STDERR_FILENO), STDERR_FILENO);
        close(c->saved_stderr);
}

/* The next message (one write), NUL-terminated; returns its length or -1
 * when nothing is left (the writing end is closed by capture_end()). */
static ssize_t capture_next(capture *c, char *buf, size_t size) {
        ssize_t n = read(c->rd, buf, size - 1);

        if (n < 0)
                assert_int_equal(errno, EAGAIN);
        if (n <= 0) {
                buf[0] = '\0';
                return -1;
        }
        buf[n] = '\0';
        return n;
}

static void capture_done(capture *c) {
        close(c->rd);
}

static char *expect_prefix(const char *ident, const char *level) {
        static char prefix[256];

        snprintf(prefix, sizeof prefix, "%s[%ld]: %s: ", ident, (long) getpid(), level);
        return prefix;
}

static int setup(void **state) {
        (void) state;
        log_setup("test-log");
        log_set_target_stderr(true);
        log_set_level(LOG_INFO);
        return 0;
}

/* ---- format ---- */

static void test_line_format(void **state) {
        char buf[LINE_BUF], want[512];
        capture c;
        (void) state;

        capture_begin(&c, false);
        log_info("hello %d", 42);
        log_full(LOG_WARNING, "req-42", "done in %s", "1ms");
        log_error("failed");
        log_notice("noted");
        log_full(LOG_CRIT, NULL, "crit");
        capture_end(&c);

        snprintf(want, sizeof want, "%shello 42\n", expect_prefix("test-log", "info"));
        assert_int_equal(capture_next(&c, buf, sizeof buf), (ssize_t) strlen(want));
        assert_string_equal(buf, want);
        snprintf(want, sizeof want, "%s[req-42] done in 1ms\n", expect_prefix("test-log", "warning"));
        assert_int_equal(capture_next(&c, buf, sizeof buf), (ssize_t) strlen(want));
        assert_string_equal(buf, want);
        snprintf(want, sizeof want, "%sfailed\n", expect_prefix("test-log", "error"));
        capture_next(&c, buf, sizeof buf);
        assert_string_equal(buf, want);
        snprintf(want, sizeof want, "%snoted\n", expect_prefix("test-log", "notice"));
        capture_next(&c, buf, sizeof buf);
        assert_string_equal(buf, want);
        snprintf(want, sizeof want, "%scrit\n", expect_prefix("test-log", "critical"));
        capture_next(&c, buf, sizeof buf);
        assert_string_equal(buf, want);
        assert_int_equal(capture_next(&c, buf, sizeof buf), -1);
        capture_done(&c);
}

/* The brief says "redirect via a pipe": the same through a plain pipe. */
static void test_line_format_pipe(void **state) {
        char buf[LINE_BUF], want[512];
        capture c;
        (void) state;

        capture_begin(&c, true);
        log_full(LOG_INFO, "abc", "via pipe");
        capture_end(&c);
        snprintf(want, sizeof want, "%s[abc] via pipe\n", expect_prefix("test-log", "info"));
        assert_int_equal(capture_next(&c, buf, sizeof buf), (ssize_t) strlen(want));
        assert_string_equal(buf, want);
        capture_done(&c);
}

static void test_empty_request_id(void **state) {
        char buf[LINE_BUF], want[512];
        capture c;
        (void) state;

        capture_begin(&c, false);
        log_full(LOG_INFO, "", "x");
        capture_end(&c);
        snprintf(want, sizeof want, "%s[] x\n", expect_prefix("test-log", "info"));
        capture_next(&c, buf, sizeof buf);
        assert_string_equal(buf, want);
        capture_done(&c);
}

/* ---- hostile input ---- */

static void test_control_chars_replaced(void **state) {
        char buf[LINE_BUF], want[512];
        capture c;
        (void) state;

        capture_begin(&c, false);
        /* A newline would forge a second line; ESC moves terminals around. */
        log_full(LOG_INFO, "id\nfake: error: [x]", "a\nb%s|%s", "\r\x1b[2J\x7f\t", "caf\xc3\xa9");
        capture_end(&c);
        snprintf(want, sizeof want, "%s[id?fake: error: [x]] a?b??[2J??|caf\xc3\xa9\n",
                 expect_prefix("test-log", "info"));
        assert_int_equal(capture_next(&c, buf, sizeof buf), (ssize_t) strlen(want));
        assert_string_equal(buf, want);
        /* Exactly one newline, at the end. */
        assert_ptr_equal(strchr(buf, '\n'), buf + strlen(buf) - 1);
        capture_done(&c);
}

static void test_ident_sanitized_and_bounded(void **state) {
        char buf[LINE_BUF], ident[200], want[512];
        capture c;
        (void) state;

        log_setup("bad\nident");
        capture_begin(&c, false);
        log_info("m");
        capture_end(&c);
        snprintf(want, sizeof want, "%sm\n", expect_prefix("bad?ident", "info"));
        capture_next(&c, buf, sizeof buf);
        assert_string_equal(buf, want);

        memset(ident, 'i', sizeof ident - 1);
        ident[sizeof ident - 1] = '\0';
        log_setup(ident);
        capture_begin(&c, false);
        log_info("m");
        capture_end(&c);
        ident[LOG_IDENT_MAX - 1] = '\0';
        snprintf(want, sizeof want, "%sm\n", expect_prefix(ident, "info"));
        capture_next(&c, buf, sizeof buf);
        assert_string_equal(buf, want);

        /* NULL and "" keep the previous ident. */
        log_setup("test-log");
        log_setup(NULL);
        log_setup("");
        capture_begin(&c, false);
        log_info("m");
        capture_end(&c);
        snprintf(want, sizeof want, "%sm\n", expect_prefix("test-log", "info"));
        capture_next(&c, buf, sizeof buf);
        assert_string_equal(buf, want);
        capture_done(&c);
}

static void test_request_id_bounded(void **state) {
        char buf[LINE_BUF], rid[1000], want[1600];
        capture c;
        (void) state;

        memset(rid, 'r', sizeof rid - 1);
        rid[sizeof rid - 1] = '\0';
        capture_begin(&c, false);
        log_full(LOG_INFO, rid, "m");
        capture_end(&c);
        rid[LOG_REQUEST_ID_MAX] = '\0';
        snprintf(want, sizeof want, "%s[%s] m\n", expect_prefix("test-log", "info"), rid);
        capture_next(&c, buf, sizeof buf);
        assert_string_equal(buf, want);
        capture_done(&c);
}

static const char *message_of(const char *line, const char *level) {
        const char *prefix = expect_prefix("test-log", level);

        assert_memory_equal(line, prefix, strlen(prefix));
        return line + strlen(prefix);
}

static void test_truncation(void **state) {
        char buf[LINE_BUF], *big;
        const char *msg;
        capture c;
        (void) state;

        big = malloc(5001);
        assert_non_null(big);
        memset(big, 'x', 5000);
        big[5000] = '\0';

        capture_begin(&c, false);
        log_info("%s%s", big, big);
        capture_end(&c);
        assert_true(capture_next(&c, buf, sizeof buf) > 0);
        assert_int_equal(capture_next(&c, (char[8]) {0}, 8), -1);   /* one write only */
        msg = message_of(buf, "info");
        /* LOG_MESSAGE_MAX counts the NUL: that many bytes minus one, the
         * last three of them "...". */
        assert_int_equal(strlen(msg), LOG_MESSAGE_MAX - 1 + 1);
        for (size_t i = 0; i < LOG_MESSAGE_MAX - 4; i++)
                assert_int_equal(msg[i], 'x');
        assert_string_equal(msg + LOG_MESSAGE_MAX - 4, "...\n");

        /* Exactly at the limit: not cut; one more byte: cut. */
        big[LOG_MESSAGE_MAX - 1] = '\0';
        capture_begin(&c, false);
        log_info("%s", big);
        big[LOG_MESSAGE_MAX - 1] = 'x';
        big[LOG_MESSAGE_MAX] = '\0';
        log_info("%s", big);
        capture_end(&c);
        capture_next(&c, buf, sizeof buf);
        msg = message_of(buf, "info");
        assert_int_equal(strlen(msg), LOG_MESSAGE_MAX);
        assert_int_equal(msg[LOG_MESSAGE_MAX - 2], 'x');
        capture_next(&c, buf, sizeof buf);
        msg = message_of(buf, "info");
        assert_int_equal(strlen(msg), LOG_MESSAGE_MAX);
        assert_string_equal(msg + LOG_MESSAGE_MAX - 4, "...\n");
        capture_done(&c);
        free(big);
}

/* A cut never leaves half a UTF-8 sequence before the "...". */
static void test_truncation_utf8_boundary(void **state) {
        char buf[LINE_BUF], big[5001];
        const char *msg;
        size_t len;
        capture c;
        (void) state;

        for (unsigned shift = 0; shift < 4; shift++) {
                size_t i = 0;
                for (; i < shift; i++)
                        big[i] = 'a';
                /* U+1F600, four bytes, repeated */
                for (; i + 4 <= 5000; i += 4)
                        memcpy(big + i, "\xf0\x9f\x98\x80", 4);
                big[i] = '\0';

                capture_begin(&c, false);
                log_info("%s", big);
                capture_end(&c);
                capture_next(&c, buf, sizeof buf);
                capture_done(&c);
                msg = message_of(buf, "info");
                len = strlen(msg);
                assert_true(len <= LOG_MESSAGE_MAX);
                assert_string_equal(msg + len - 4, "...\n");
                /* What is left before "..." is whole emoji after the prefix. */
                assert_int_equal((len - 4 - shift) % 4, 0);
                assert_true(len - 4 >= LOG_MESSAGE_MAX - 4 - 3);
        }
}

/* ---- errno ---- */

static void test_errno_suffix(void **state) {
        char buf[LINE_BUF], want[512], *big;
        const char *msg;
        capture c;
        (void) state;

        capture_begin(&c, false);
        assert_int_equal(log_error_errno(EACCES, "open %s", "/x"), -EACCES);
        assert_int_equal(log_warning_errno(-ENOENT, "stat"), -ENOENT);
        assert_int_equal(log_full_errno(LOG_NOTICE, EIO, "rid", "read"), -EIO);
        assert_int_equal(log_info_errno(0, "no error"), 0);
        assert_int_equal(log_error_errno(INT32_MIN, "absurd"), -INT32_MAX);
        capture_end(&c);

        snprintf(want, sizeof want, "%sopen /x: %s\n", expect_prefix("test-log", "error"), strerror(EACCES));
        capture_next(&c, buf, sizeof buf);
        assert_string_equal(buf, want);
        snprintf(want, sizeof want, "%sstat: %s\n", expect_prefix("test-log", "warning"), strerror(ENOENT));
        capture_next(&c, buf, sizeof buf);
        assert_string_equal(buf, want);
        snprintf(want, sizeof want, "%s[rid] read: %s\n", expect_prefix("test-log", "notice"), strerror(EIO));
        capture_next(&c, buf, sizeof buf);
        assert_string_equal(buf, want);
        snprintf(want, sizeof want, "%sno error\n", expect_prefix("test-log", "info"));
        capture_next(&c, buf, sizeof buf);
        assert_string_equal(buf, want);
        assert_true(capture_next(&c, buf, sizeof buf) > 0);
        capture_done(&c);

        /* A long message is cut, the errno text kept. */
        big = malloc(5001);
        assert_non_null(big);
        memset(big, 'y', 5000);
        big[5000] = '\0';
        capture_begin(&c, false);
        log_error_errno(ENOSPC, "%s", big);
        capture_end(&c);
        capture_next(&c, buf, sizeof buf);
        msg = message_of(buf, "error");
        snprintf(want, sizeof want, "...: %s\n", strerror(ENOSPC));
        assert_true(strlen(msg) <= LOG_MESSAGE_MAX);
        assert_string_equal(msg + strlen(msg) - strlen(want), want);
        capture_done(&c);
        free(big);
}

/* ---- levels ---- */

static void test_level_filter(void **state) {
        char buf[LINE_BUF], want[512];
        capture c;
        (void) state;

        assert_int_equal(log_get_level(), LOG_INFO);
        capture_begin(&c, false);
        log_debug("invisible %d", 1);
        log_set_level(LOG_WARNING);
        assert_int_equal(log_get_level(), LOG_WARNING);
        log_info("invisible");
        log_notice("invisible");
        /* Filtered, and still returns the error. */
        assert_int_equal(log_info_errno(EPERM, "invisible"), -EPERM);
        log_warning("visible");
        log_set_level(LOG_DEBUG);
        log_debug("dbg");
        /* Facility bits are ignored for the level. */
        log_full(LOG_DAEMON | LOG_INFO, NULL, "with facility");
        capture_end(&c);

        snprintf(want, sizeof want, "%svisible\n", expect_prefix("test-log", "warning"));
        capture_next(&c, buf, sizeof buf);
        assert_string_equal(buf, want);
        snprintf(want, sizeof want, "%sdbg\n", expect_prefix("test-log", "debug"));
        capture_next(&c, buf, sizeof buf);
        assert_string_equal(buf, want);
        snprintf(want, sizeof want, "%swith facility\n", expect_prefix("test-log", "info"));
        capture_next(&c, buf, sizeof buf);
        assert_string_equal(buf, want);
        assert_int_equal(capture_next(&c, buf, sizeof buf), -1);
        capture_done(&c);

        log_set_level(100);
        assert_int_equal(log_get_level(), LOG_DEBUG);
        log_set_level(-5);
        assert_int_equal(log_get_level(), LOG_EMERG);
        log_set_level(LOG_INFO);
}

static void test_errno_preserved(void **state) {
        capture c;
        (void) state;

        capture_begin(&c, false);
        errno = 1234;
        log_info("x");
        assert_int_equal(errno, 1234);
        log_debug("filtered");
        assert_int_equal(errno, 1234);
        (void) log_error_errno(EACCES, "e");
        assert_int_equal(errno, 1234);
        (void) log_debug_errno(EACCES, "filtered");
        assert_int_equal(errno, 1234);
        capture_end(&c);
        capture_done(&c);
}

/* ---- journal, against a fake journald socket ---- */

#include "fake-journal.h"

/* The child's part: probe, log to the journal, force stderr, refuse. */
static void journal_child(int out) {
        char line[LINE_BUF];
        int jfd, p[2];
        ssize_t n;
        char flag;

        if (private_run() < 0)
                _exit(77);
        log_set_target_stderr(false);
        log_setup("jtest");
        flag = log_target_is_journal() ? 'y' : 'n';
        send_rec(out, 'P', &flag, 1);           /* no socket yet: expect 'n' */

        jfd = bind_journal();
        if (jfd < 0)
                _exit(4);
        log_setup("jtest");
        flag = log_target_is_journal() ? 'y' : 'n';
        send_rec(out, 'P', &flag, 1);           /* expect 'y' */

        if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0 || dup2(p[1], STDERR_FILENO) < 0)
                _exit(5);
        log_full(LOG_NOTICE, "rid-1", "hello\nworld %d", 7);
        log_info("no request");
        log_debug("filtered");
        (void) log_error_errno(EACCES, "denied");
        send_datagrams(out, jfd);

        log_set_target_stderr(true);
        flag = log_target_is_journal() ? 'y' : 'n';
        send_rec(out, 'P', &flag, 1);           /* expect 'n' */
        log_info("to stderr");
        log_set_target_stderr(false);
        send_datagrams(out, jfd);               /* expect none */

        /* journald gone (no listener on the socket): the line is not lost. */
        close(jfd);
        log_info("fallback");
        while ((n = read(p[0], line, sizeof line)) > 0)
                send_rec(out, 'S', line, (uint32_t) n);
        _exit(0);
}

/* Finds NAME in a native-protocol datagram. Only the NAME=value form is
 * expected: sanitising leaves no newline in any value. */
static bool dg_field(const rec *r, const char *name, char *out, size_t size) {
        size_t nl = strlen(name);

        for (char *p = r->data; p < r->data + r->len;) {
                char *end = memchr(p, '\n', (size_t) (r->data + r->len - p));
                assert_non_null(end);
                assert_non_null(memchr(p, '=', (size_t) (end - p)));   /* no binary form */
                if ((size_t) (end - p) > nl && memcmp(p, name, nl) == 0 && p[nl] == '=') {
                        snprintf(out, size, "%.*s", (int) (end - p - (ptrdiff_t) nl - 1), p + nl + 1);
                        return true;
                }
                p = end + 1;
        }
        return false;
}

static void test_journal_target(void **state) {
        rec recs[32] = { { 0 } };
        char v[512], want[512];
        int p[2], status;
        size_t n, i = 0;
        pid_t pid;
        (void) state;

        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        fflush(NULL);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                close(p[0]);
                journal_child(p[1]);
        }
        close(p[1]);
        n = read_recs(p[0], recs, ELEMENTSOF(recs));
        close(p[0]);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        if (WEXITSTATUS(status) == 77) {
                /* Neither root nor user namespaces: nothing to run this against. */
                print_message("journal target not testable here (no mount namespace)\n");
                return;
        }
        assert_int_equal(WEXITSTATUS(status), 0);

        assert_true(n >= 7);
        assert_int_equal(recs[i].tag, 'P');
        assert_int_equal(recs[i++].data[0], 'n');
        assert_int_equal(recs[i].tag, 'P');
        assert_int_equal(recs[i++].data[0], 'y');

        assert_int_equal(recs[i].tag, 'D');
        assert_true(dg_field(&recs[i], "MESSAGE", v, sizeof v));
        assert_string_equal(v, "hello?world 7");
        assert_true(dg_field(&recs[i], "PRIORITY", v, sizeof v));
        assert_string_equal(v, "5");
        assert_true(dg_field(&recs[i], "SYSLOG_IDENTIFIER", v, sizeof v));
        assert_string_equal(v, "jtest");
        assert_true(dg_field(&recs[i], "REQUEST_ID", v, sizeof v));
        assert_string_equal(v, "rid-1");
        assert_false(dg_field(&recs[i], "CODE_FILE", v, sizeof v));
        i++;

        assert_int_equal(recs[i].tag, 'D');
        assert_true(dg_field(&recs[i], "MESSAGE", v, sizeof v));
        assert_string_equal(v, "no request");
        assert_true(dg_field(&recs[i], "PRIORITY", v, sizeof v));
        assert_string_equal(v, "6");
        assert_false(dg_field(&recs[i], "REQUEST_ID", v, sizeof v));
        i++;

        assert_int_equal(recs[i].tag, 'D');
        assert_true(dg_field(&recs[i], "MESSAGE", v, sizeof v));
        snprintf(want, sizeof want, "denied: %s", strerror(EACCES));
        assert_string_equal(v, want);
        assert_true(dg_field(&recs[i], "PRIORITY", v, sizeof v));
        assert_string_equal(v, "3");
        i++;

        assert_int_equal(recs[i].tag, 'P');
        assert_int_equal(recs[i++].data[0], 'n');

        /* Forced to stderr, then the refused journal: both lines on stderr. */
        assert_int_equal(recs[i].tag, 'S');
        assert_int_equal(n, i + 1);
        assert_non_null(strstr(recs[i].data, "]: info: to stderr\n"));
        assert_non_null(strstr(recs[i].data, "]: info: fallback\n"));
        assert_memory_equal(recs[i].data, "jtest[", 6);

        for (size_t k = 0; k < n; k++)
                free(recs[k].data);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup(test_line_format, setup),
                cmocka_unit_test_setup(test_line_format_pipe, setup),
                cmocka_unit_test_setup(test_empty_request_id, setup),
                cmocka_unit_test_setup(test_control_chars_replaced, setup),
                cmocka_unit_test_setup(test_ident_sanitized_and_bounded, setup),
                cmocka_unit_test_setup(test_request_id_bounded, setup),
                cmocka_unit_test_setup(test_truncation, setup),
                cmocka_unit_test_setup(test_truncation_utf8_boundary, setup),
                cmocka_unit_test_setup(test_errno_suffix, setup),
                cmocka_unit_test_setup(test_level_filter, setup),
                cmocka_unit_test_setup(test_errno_preserved, setup),
                cmocka_unit_test_setup(test_journal_target, setup),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
