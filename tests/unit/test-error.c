/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <jabali/error.h>

/* A jb_err between guard bytes, to see any write outside its buffers. */
typedef struct guarded {
        unsigned char before[32];
        jb_err err;
        unsigned char after[32];
} guarded;

static void guard_init(guarded *g) {
        memset(g, 0xA5, sizeof *g);
        jb_err_clear(&g->err);
}

static void guard_check(const guarded *g) {
        for (size_t i = 0; i < sizeof g->before; i++) {
                assert_int_equal(g->before[i], 0xA5);
                assert_int_equal(g->after[i], 0xA5);
        }
        assert_true(memchr(g->err.code, '\0', sizeof g->err.code) != NULL);
        assert_true(memchr(g->err.msg, '\0', sizeof g->err.msg) != NULL);
}

static int (*const set_plain)(jb_err *, jb_code, const char *, ...) = jb_err_set;
static int (*const set_code_plain)(jb_err *, const char *, const char *, ...) = jb_err_set_code;

static void test_code_tables(void **state) {
        (void) state;
        static const struct {
                jb_code code;
                const char *name;
                const char *msg;
        } all[] = {
#define JB_ERROR(n, m) { JB_E_##n, #n, m },
#include <jabali/errors.def>
#undef JB_ERROR
        };

        assert_int_equal(sizeof all / sizeof all[0], _JB_CODE_MAX - 1);
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
                assert_string_equal(jb_code_name(all[i].code), all[i].name);
                assert_string_equal(jb_code_message(all[i].code), all[i].msg);
                assert_int_equal(jb_code_from_name(all[i].name), all[i].code);
                assert_true(jb_code_valid(all[i].name));
        }
        assert_string_equal(jb_code_name(JB_E_INVALID_PARAMS), "INVALID_PARAMS");
        assert_string_equal(jb_code_message(JB_E_INTERNAL), "internal error");
        assert_string_equal(jb_code_name(JB_OK), "OK");
        assert_non_null(jb_code_message(JB_OK));

        assert_null(jb_code_name(_JB_CODE_MAX));
        assert_null(jb_code_name((jb_code) -1));
        assert_null(jb_code_name((jb_code) 100000));
        assert_null(jb_code_message(_JB_CODE_MAX));
        assert_null(jb_code_message((jb_code) -1));
}

static void test_code_from_name_unknown(void **state) {
        (void) state;
        assert_int_equal(jb_code_from_name(NULL), JB_OK);
        assert_int_equal(jb_code_from_name(""), JB_OK);
        assert_int_equal(jb_code_from_name("OK"), JB_OK);
        assert_int_equal(jb_code_from_name("invalid_params"), JB_OK);
        assert_int_equal(jb_code_from_name("INVALID_PARAMS "), JB_OK);
        assert_int_equal(jb_code_from_name("INVALID_PARAM"), JB_OK);
        assert_int_equal(jb_code_from_name("QUOTA_EXCEEDED"), JB_OK);
}

static void test_code_valid(void **state) {
        (void) state;
        char long31[32], long32[33];

        memset(long31, 'A', 31);
        long31[31] = '\0';
        memset(long32, 'A', 32);
        long32[32] = '\0';

        assert_true(jb_code_valid("A"));
        assert_true(jb_code_valid("QUOTA_EXCEEDED"));
        assert_true(jb_code_valid("E2BIG"));
        assert_true(jb_code_valid("A_"));
        assert_true(jb_code_valid(long31));

        assert_false(jb_code_valid(NULL));
        assert_false(jb_code_valid(""));
        assert_false(jb_code_valid(long32));
        assert_false(jb_code_valid("_A"));
        assert_false(jb_code_valid("2BIG"));
        assert_false(jb_code_valid("quota"));
        assert_false(jb_code_valid("Quota"));
        assert_false(jb_code_valid("A-B"));
        assert_false(jb_code_valid("A B"));
        assert_false(jb_code_valid("A\n"));
        assert_false(jb_code_valid("\xc3\x89"));
}

static void test_set_formats(void **state) {
        (void) state;
        guarded g;

        guard_init(&g);
        assert_false(jb_err_isset(&g.err));
        assert_int_equal(jb_err_set(&g.err, JB_E_NOT_FOUND, "no site '%s' (%d)", "a.com", 7), -1);
        assert_true(jb_err_isset(&g.err));
        assert_string_equal(g.err.code, "NOT_FOUND");
        assert_string_equal(g.err.msg, "no site 'a.com' (7)");
        guard_check(&g);

        jb_err_clear(&g.err);
        assert_false(jb_err_isset(&g.err));
        assert_string_equal(g.err.code, "");
        assert_string_equal(g.err.msg, "");
}

static void test_set_default_message(void **state) {
        (void) state;
        jb_err err = JB_ERR_INIT;
        const char *empty = "";

        assert_int_equal(jb_err_set(&err, JB_E_BUSY, NULL), -1);
        assert_string_equal(err.code, "BUSY");
        assert_string_equal(err.msg, "too many requests in flight");

        jb_err_clear(&err);
        assert_int_equal(jb_err_set(&err, JB_E_TIMEOUT, "%s", empty), -1);
        assert_string_equal(err.code, "TIMEOUT");
        /* "%s" of "" is a format, not an empty one: the message is empty. */
        assert_string_equal(err.msg, "");

        jb_err_clear(&err);
        /* Called through a pointer without the format attribute, which
         * would (rightly) flag an empty format at compile time. */
        assert_int_equal(set_plain(&err, JB_E_TIMEOUT, empty), -1);
        assert_string_equal(err.msg, "the action did not finish before its deadline");
}

static void test_set_bad_code(void **state) {
        (void) state;
        jb_err err = JB_ERR_INIT;

        assert_int_equal(jb_err_set(&err, JB_OK, "oops"), -1);
        assert_string_equal(err.code, "INTERNAL");
        assert_string_equal(err.msg, "oops");

        assert_int_equal(jb_err_set(&err, _JB_CODE_MAX, "x"), -1);
        assert_string_equal(err.code, "INTERNAL");

        assert_int_equal(jb_err_set(&err, (jb_code) -5, NULL), -1);
        assert_string_equal(err.code, "INTERNAL");
        assert_string_equal(err.msg, "internal error");
}

static void test_set_null_err(void **state) {
        (void) state;
        assert_int_equal(jb_err_set(NULL, JB_E_BUSY, "x %d", 1), -1);
        assert_int_equal(jb_err_set_code(NULL, "MINE", "x"), -1);
        jb_err_prefix(NULL, "p");
        assert_false(jb_err_isset(NULL));
        jb_err_clear(NULL);
}

static void test_set_truncates(void **state) {
        (void) state;
        char big[2000];
        guarded g;

        memset(big, 'a', sizeof big - 1);
        big[sizeof big - 1] = '\0';

        guard_init(&g);
        assert_int_equal(jb_err_set(&g.err, JB_E_INTERNAL, "%s|%s", big, big), -1);
        assert_int_equal(strlen(g.err.msg), JB_ERR_MSG_MAX - 1);
        assert_string_equal(g.err.code, "INTERNAL");
        guard_check(&g);
}

/* Truncation must not leave half a UTF-8 sequence at the end. */
static void test_set_truncates_utf8(void **state) {
        (void) state;
        char pad[JB_ERR_MSG_MAX];
        jb_err err = JB_ERR_INIT;

        /* 510 bytes + "é" (2 bytes) = 512: the lead byte alone would fit. */
        memset(pad, 'a', 510);
        pad[510] = '\0';
        jb_err_set(&err, JB_E_INTERNAL, "%s\xc3\xa9", pad);
        assert_int_equal(strlen(err.msg), 510);

        /* 509 + "€" (3 bytes): two of its bytes would fit. */
        pad[509] = '\0';
        jb_err_set(&err, JB_E_INTERNAL, "%s\xe2\x82\xac", pad);
        assert_int_equal(strlen(err.msg), 509);

        /* 508 + "𝄞" (4 bytes): three would fit. */
        pad[508] = '\0';
        jb_err_set(&err, JB_E_INTERNAL, "%s\xf0\x9d\x84\x9e", pad);
        assert_int_equal(strlen(err.msg), 508);

        /* 507 + "𝄞" = 511: fits exactly and is kept whole. */
        pad[507] = '\0';
        jb_err_set(&err, JB_E_INTERNAL, "%s\xf0\x9d\x84\x9e", pad);
        assert_int_equal(strlen(err.msg), 511);
        assert_memory_equal(err.msg + 507, "\xf0\x9d\x84\x9e", 4);

        /* An ASCII end is never trimmed. */
        memset(pad, 'b', 511);
        pad[511] = '\0';
        jb_err_set(&err, JB_E_INTERNAL, "%sXYZ", pad);
        assert_int_equal(strlen(err.msg), 511);
}

/* An argument may point into the message being replaced. */
static void test_set_self_reference(void **state) {
        (void) state;
        jb_err err = JB_ERR_INIT;

        jb_err_set(&err, JB_E_CONFLICT, "inner");
        jb_err_set(&err, JB_E_CONFLICT, "outer: %s (%s)", err.msg, err.code);
        assert_string_equal(err.msg, "outer: inner (CONFLICT)");
}

static void test_set_code(void **state) {
        (void) state;
        char long32[33];
        jb_err err = JB_ERR_INIT;

        assert_int_equal(jb_err_set_code(&err, "QUOTA_EXCEEDED", "quota of %d MB", 50), -1);
        assert_string_equal(err.code, "QUOTA_EXCEEDED");
        assert_string_equal(err.msg, "quota of 50 MB");

        /* A module code without a message falls back to its name. */
        jb_err_set_code(&err, "QUOTA_EXCEEDED", NULL);
        assert_string_equal(err.msg, "QUOTA_EXCEEDED");

        /* A core name keeps its default message. */
        set_code_plain(&err, "NOT_FOUND", "");
        assert_string_equal(err.code, "NOT_FOUND");
        assert_string_equal(err.msg, "no such object");

        jb_err_set_code(&err, "bad code", "kept");
        assert_string_equal(err.code, "INTERNAL");
        assert_string_equal(err.msg, "kept");

        jb_err_set_code(&err, NULL, NULL);
        assert_string_equal(err.code, "INTERNAL");
        assert_string_equal(err.msg, "internal error");

        jb_err_set_code(&err, "", "x");
        assert_string_equal(err.code, "INTERNAL");

        memset(long32, 'B', 32);
        long32[32] = '\0';
        jb_err_set_code(&err, long32, "x");
        assert_string_equal(err.code, "INTERNAL");
}

static int setv_wrapper(jb_err *err, const char *code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static int setv_wrapper(jb_err *err, const char *code, const char *fmt, ...) {
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = jb_err_setv(err, code, fmt, ap);
        va_end(ap);
        return r;
}

static void test_setv(void **state) {
        (void) state;
        jb_err err = JB_ERR_INIT;

        assert_int_equal(setv_wrapper(&err, "SERVICE_FAILED", "%s exited %d", "nginx", 1), -1);
        assert_string_equal(err.code, "SERVICE_FAILED");
        assert_string_equal(err.msg, "nginx exited 1");
        assert_int_equal(setv_wrapper(NULL, "X", "y"), -1);
        setv_wrapper(&err, "lower", "z");
        assert_string_equal(err.code, "INTERNAL");
}

static void test_prefix(void **state) {
        (void) state;
        jb_err err = JB_ERR_INIT;

        /* Nothing to prefix while no error is set. */
        jb_err_prefix(&err, "field");
        assert_false(jb_err_isset(&err));
        assert_string_equal(err.msg, "");

        jb_err_set(&err, JB_E_INVALID_PARAMS, "expected a string");
        jb_err_prefix(&err, "cert");
        jb_err_prefix(&err, "ssl");
        assert_string_equal(err.code, "INVALID_PARAMS");
        assert_string_equal(err.msg, "ssl: cert: expected a string");

        jb_err_prefix(&err, NULL);
        jb_err_prefix(&err, "");
        assert_string_equal(err.msg, "ssl: cert: expected a string");
}

static void test_prefix_truncates(void **state) {
        (void) state;
        char big[1000];
        guarded g;

        memset(big, 'p', sizeof big - 1);
        big[sizeof big - 1] = '\0';

        guard_init(&g);
        jb_err_set_code(&g.err, "MY_CODE", "the message");
        jb_err_prefix(&g.err, big);
        assert_string_equal(g.err.code, "MY_CODE");
        assert_int_equal(strlen(g.err.msg), JB_ERR_MSG_MAX - 1);
        assert_int_equal(g.err.msg[0], 'p');
        guard_check(&g);

        /* A message at the limit loses its tail, not its head. */
        guard_init(&g);
        memset(big, 'm', JB_ERR_MSG_MAX - 1);
        big[JB_ERR_MSG_MAX - 1] = '\0';
        jb_err_set(&g.err, JB_E_INTERNAL, "%s", big);
        jb_err_prefix(&g.err, "ctx");
        assert_int_equal(strlen(g.err.msg), JB_ERR_MSG_MAX - 1);
        assert_memory_equal(g.err.msg, "ctx: mmm", 8);
        guard_check(&g);

        /* And does not end in half a character. */
        guard_init(&g);
        memset(big, 'm', 507);
        memcpy(big + 507, "\xe2\x82\xac", 4);
        jb_err_set(&g.err, JB_E_INTERNAL, "%s", big);
        assert_int_equal(strlen(g.err.msg), 510);
        jb_err_prefix(&g.err, "y");             /* 513 bytes: one of the euro sign's would fit */
        assert_int_equal(strlen(g.err.msg), 510);
        assert_memory_equal(g.err.msg, "y: mmm", 6);
        assert_int_equal(g.err.msg[509], 'm');
        guard_check(&g);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_code_tables),
                cmocka_unit_test(test_code_from_name_unknown),
                cmocka_unit_test(test_code_valid),
                cmocka_unit_test(test_set_formats),
                cmocka_unit_test(test_set_default_message),
                cmocka_unit_test(test_set_bad_code),
                cmocka_unit_test(test_set_null_err),
                cmocka_unit_test(test_set_truncates),
                cmocka_unit_test(test_set_truncates_utf8),
                cmocka_unit_test(test_set_self_reference),
                cmocka_unit_test(test_set_code),
                cmocka_unit_test(test_setv),
                cmocka_unit_test(test_prefix),
                cmocka_unit_test(test_prefix_truncates),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
