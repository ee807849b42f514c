/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The request envelope (accept/reject with exact codes and messages) and
 * the response bytes. */

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "envelope.h"
#include "jsoncheck.h"
#include "util.h"

static const struct envelope_limits lim = { .max_depth = 16, .max_timeout_ms = 600000 };

/* Parses from an exact-size heap copy (ASan sees any over-read). */
static int parse(const char *doc, request *r, jb_err *err) {
        size_t len = strlen(doc);
        char *copy = malloc(len ? len : 1);
        int ret;

        assert_non_null(copy);
        memcpy(copy, doc, len);
        ret = request_parse(copy, len, &lim, r, err);
        free(copy);
        return ret;
}

static void test_minimal(void **state) {
        request r;
        jb_err err = JB_ERR_INIT;
        json_object *v;

        (void) state;
        assert_int_equal(parse("{\"request_id\":\"r1\",\"action\":\"agent.ping\"}", &r, &err), 0);
        assert_false(jb_err_isset(&err));
        assert_string_equal(r.request_id, "r1");
        assert_string_equal(r.action, "agent.ping");
        assert_non_null(r.params);
        assert_true(json_object_is_type(r.params, json_type_object));
        assert_int_equal(json_object_object_length(r.params), 0);
        /* the default params object is owned by root */
        assert_true(json_object_object_get_ex(r.root, "params", &v));
        assert_ptr_equal(v, r.params);
        assert_false(r.dry_run);
        assert_int_equal(r.timeout_ms, 0);
        assert_null(r.actor);
        request_done(&r);
        assert_null(r.root);
        assert_null(r.request_id);
        request_done(&r);               /* twice is fine */
        request_done(NULL);
}

static void test_full(void **state) {
        request r;
        jb_err err = JB_ERR_INIT;
        json_object *v;
        static const char doc[] =
                " {\"timeout_ms\":600000,\"actor\":{\"user\":\"admin\",\"uid\":1000,\"panel\":true,"
                "\"name\":\"Zo\xc3\xab \\u00e9\"},\"dry_run\":true,\"params\":{\"domain\":\"example.com\","
                "\"n\":[1,2]},\"action\":\"0.a_b-c\",\"request_id\":\" ~!\\\"#\"}\n";

        (void) state;
        assert_int_equal(parse(doc, &r, &err), 0);
        assert_string_equal(r.request_id, " ~!\"#");
        assert_string_equal(r.action, "0.a_b-c");
        assert_true(json_object_object_get_ex(r.params, "domain", &v));
        assert_string_equal(json_object_get_string(v), "example.com");
        assert_true(r.dry_run);
        assert_int_equal(r.timeout_ms, 600000);
        assert_non_null(r.actor);
        assert_true(json_object_object_get_ex(r.actor, "uid", &v));
        assert_int_equal(json_object_get_int(v), 1000);
        request_done(&r);

        assert_int_equal(parse("{\"request_id\":\"r\",\"action\":\"a\",\"dry_run\":false,\"timeout_ms\":1,"
                               "\"params\":{},\"actor\":{}}", &r, &err), 0);
        assert_false(r.dry_run);
        assert_int_equal(r.timeout_ms, 1);
        assert_int_equal(json_object_object_length(r.actor), 0);
        request_done(&r);
}

/* tmpl with its one "%s" replaced by n copies of fill. */
static char *with(const char *tmpl, size_t n, char fill) {
        const char *at = strstr(tmpl, "%s");
        size_t head, tail;
        char *out;

        assert_non_null(at);
        head = (size_t) (at - tmpl);
        tail = strlen(at + 2);
        out = malloc(head + n + tail + 1);
        assert_non_null(out);
        memcpy(out, tmpl, head);
        memset(out + head, fill, n);
        memcpy(out + head + n, at + 2, tail + 1);
        return out;
}

static void test_limits_exact(void **state) {
        request r;
        jb_err err = JB_ERR_INIT;
        _cleanup_free_ char *id128 = NULL, *id129 = NULL, *act64 = NULL, *act65 = NULL,
                *s256 = NULL, *s257 = NULL, *k64 = NULL, *k65 = NULL;

        (void) state;
        id128 = with("{\"action\":\"a\",\"request_id\":\"%s\"}", 128, '~');
        assert_int_equal(parse(id128, &r, &err), 0);
        assert_int_equal(strlen(r.request_id), 128);
        request_done(&r);
        id129 = with("{\"action\":\"a\",\"request_id\":\"%s\"}", 129, '~');
        assert_int_equal(parse(id129, &r, &err), -1);
        assert_string_equal(err.code, "INVALID_REQUEST");
        assert_string_equal(err.msg, "request_id must be 1..128 bytes");
        assert_null(r.request_id);
        request_done(&r);

        act64 = with("{\"request_id\":\"r\",\"action\":\"%s\"}", 64, 'z');
        assert_int_equal(parse(act64, &r, &err), 0);
        request_done(&r);
        act65 = with("{\"request_id\":\"r\",\"action\":\"%s\"}", 65, 'z');
        assert_int_equal(parse(act65, &r, &err), -1);
        assert_string_equal(err.msg, "action must be 1..64 bytes matching [a-z0-9][a-z0-9_.-]*");
        assert_string_equal(r.request_id, "r");
        request_done(&r);

        s256 = with("{\"request_id\":\"r\",\"action\":\"a\",\"actor\":{\"n\":\"%s\"}}", 256, 'x');
        assert_int_equal(parse(s256, &r, &err), 0);
        request_done(&r);
        s257 = with("{\"request_id\":\"r\",\"action\":\"a\",\"actor\":{\"n\":\"%s\"}}", 257, 'x');
        assert_int_equal(parse(s257, &r, &err), -1);
        assert_string_equal(err.msg, "actor.n is longer than 256 bytes");
        request_done(&r);

        k64 = with("{\"request_id\":\"r\",\"action\":\"a\",\"actor\":{\"%s\":1}}", 64, 'k');
        assert_int_equal(parse(k64, &r, &err), 0);
        request_done(&r);
        k65 = with("{\"request_id\":\"r\",\"action\":\"a\",\"actor\":{\"%s\":1}}", 65, 'k');
        assert_int_equal(parse(k65, &r, &err), -1);
        assert_string_equal(err.msg, "actor key \"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk...\" "
                            "must be 1..64 bytes of printable ASCII");
        request_done(&r);
}

typedef struct env_case {
        const char *doc;
        const char *code;
        const char *msg;
        const char *request_id;         /* what must be echoed (NULL: none) */
} env_case;

static void test_rejects(void **state) {
        static const env_case cases[] = {
                /* not strict JSON */
                { "", "INVALID_JSON", "offset 0: empty document", NULL },
                { "{", "INVALID_JSON", "offset 1: unexpected end of input", NULL },
                { "{\"request_id\":\"a\",\"request_id\":\"b\",\"action\":\"x\"}", "INVALID_JSON",
                  "offset 18: duplicate key", NULL },
                { "{\"request_id\":\"r1\",\"action\":\"a\",\"params\":{\"x\":NaN}}", "INVALID_JSON",
                  "offset 46: unexpected character", NULL },
                { "{\"request_id\":\"r1\",\"action\":\"a\"} x", "INVALID_JSON", "offset 33: trailing data", NULL },
                { "[1", "INVALID_JSON", "offset 2: unexpected end of input", NULL },
                /* not an object */
                { "[]", "INVALID_REQUEST", "request is not a JSON object", NULL },
                { " \"request_id\"", "INVALID_REQUEST", "request is not a JSON object", NULL },
                { "1", "INVALID_REQUEST", "request is not a JSON object", NULL },
                { "null", "INVALID_REQUEST", "request is not a JSON object", NULL },
                { "true", "INVALID_REQUEST", "request is not a JSON object", NULL },
                /* request_id */
                { "{}", "INVALID_REQUEST", "request_id is required", NULL },
                { "{\"action\":\"a\"}", "INVALID_REQUEST", "request_id is required", NULL },
                { "{\"request_id\":1,\"action\":\"a\"}", "INVALID_REQUEST", "request_id must be a string", NULL },
                { "{\"request_id\":null,\"action\":\"a\"}", "INVALID_REQUEST", "request_id must be a string", NULL },
                { "{\"request_id\":[\"r\"],\"action\":\"a\"}", "INVALID_REQUEST", "request_id must be a string", NULL },
                { "{\"request_id\":\"\",\"action\":\"a\"}", "INVALID_REQUEST", "request_id must be 1..128 bytes", NULL },
                { "{\"request_id\":\"a\\tb\",\"action\":\"a\"}", "INVALID_REQUEST", "request_id must be printable ASCII", NULL },
                { "{\"request_id\":\"\\u007f\",\"action\":\"a\"}", "INVALID_REQUEST", "request_id must be printable ASCII", NULL },
                { "{\"request_id\":\"\xc3\xa9\",\"action\":\"a\"}", "INVALID_REQUEST", "request_id must be printable ASCII", NULL },
                /* request_id is judged before unknown keys */
                { "{\"request_id\":\"\",\"zzz\":1}", "INVALID_REQUEST", "request_id must be 1..128 bytes", NULL },
                /* unknown keys, named (printable ASCII only) */
                { "{\"request_id\":\"r1\",\"action\":\"a\",\"extra\":1}", "INVALID_REQUEST", "unknown key \"extra\"", "r1" },
                { "{\"extra\":1,\"request_id\":\"r1\",\"action\":\"a\"}", "INVALID_REQUEST", "unknown key \"extra\"", "r1" },
                { "{\"request_id\":\"r1\",\"command\":\"ping\"}", "INVALID_REQUEST", "unknown key \"command\"", "r1" },
                { "{\"request_id\":\"r1\",\"Action\":\"a\"}", "INVALID_REQUEST", "unknown key \"Action\"", "r1" },
                { "{\"request_id\":\"r1\",\"\":1}", "INVALID_REQUEST", "unknown key \"\"", "r1" },
                { "{\"request_id\":\"r1\",\"\xc3\xa9\\n\\\"\":1}", "INVALID_REQUEST", "unknown key \"???\"\"", "r1" },
                { "{\"request_id\":\"r1\",\"action\\u0000\":1}", "INVALID_JSON", "offset 26: \\u0000 not allowed", NULL },
                /* action */
                { "{\"request_id\":\"r1\"}", "INVALID_REQUEST", "action is required", "r1" },
                { "{\"request_id\":\"r1\",\"action\":5}", "INVALID_REQUEST", "action must be a string", "r1" },
                { "{\"request_id\":\"r1\",\"action\":null}", "INVALID_REQUEST", "action must be a string", "r1" },
                { "{\"request_id\":\"r1\",\"action\":\"\"}", "INVALID_REQUEST",
                  "action must be 1..64 bytes matching [a-z0-9][a-z0-9_.-]*", "r1" },
                { "{\"request_id\":\"r1\",\"action\":\"Agent.ping\"}", "INVALID_REQUEST",
                  "action must be 1..64 bytes matching [a-z0-9][a-z0-9_.-]*", "r1" },
                { "{\"request_id\":\"r1\",\"action\":\".ping\"}", "INVALID_REQUEST",
                  "action must be 1..64 bytes matching [a-z0-9][a-z0-9_.-]*", "r1" },
                { "{\"request_id\":\"r1\",\"action\":\"_x\"}", "INVALID_REQUEST",
                  "action must be 1..64 bytes matching [a-z0-9][a-z0-9_.-]*", "r1" },
                { "{\"request_id\":\"r1\",\"action\":\"-x\"}", "INVALID_REQUEST",
                  "action must be 1..64 bytes matching [a-z0-9][a-z0-9_.-]*", "r1" },
                { "{\"request_id\":\"r1\",\"action\":\"a b\"}", "INVALID_REQUEST",
                  "action must be 1..64 bytes matching [a-z0-9][a-z0-9_.-]*", "r1" },
                { "{\"request_id\":\"r1\",\"action\":\"a/b\"}", "INVALID_REQUEST",
                  "action must be 1..64 bytes matching [a-z0-9][a-z0-9_.-]*", "r1" },
                { "{\"request_id\":\"r1\",\"action\":\"\xc3\xa9\"}", "INVALID_REQUEST",
                  "action must be 1..64 bytes matching [a-z0-9][a-z0-9_.-]*", "r1" },
                /* params */
                { "{\"request_id\":\"r1\",\"action\":\"a\",\"params\":[]}", "INVALID_REQUEST", "params must be an object", "r1" },
                { "{\"request_id\":\"r1\",\"action\":\"a\",\"params\":null}", "INVALID_REQUEST", "params must be an object", "r1" },
                { "{\"request_id\":\"r1\",\"action\":\"a\",\"params\":\"{}\"}", "INVALID_REQUEST", "params must be an object", "r1" },
                /* dry_run */
                { "{\"request_id\":\"r1\",\"action\":\"a\",\"dry_run\":\"true\"}", "INVALID_REQUEST", "dry_run must be a boolean", "r1" },
                { "{\"request_id\":\"r1\",\"action\":\"a\",\"dry_run\":1}", "INVALID_REQUEST", "dry_run must be a boolean", "r1" },
                { "{\"request_id\":\"r1\",\"action\":\"a\",\"dry_run\":null}", "INVALID_REQUEST", "dry_run must be a boolean", "r1" },
                /* timeout_ms */
                { "{\"request_id\":\"r1\",\"action\":\"a\",\"timeout_ms\":0}", "INVALID_REQUEST", "timeout_ms must be 1..600000", "r1" },
                { "{\"request_id\":\"r1\",\"action\":\"a\",\"timeout_ms\":-1}", "INVALID_REQUEST", "timeout_ms must be 1..600000", "r1" },
                { "{\"request_id\":\"r1\",\"action\":\"a\",\"timeout_ms\":600001}", "INVALID_REQUEST", "timeout_ms must be 1..600000", "r1" },
                { "{\"request_id\":\"r1\",\"action\":\"a\",\"timeout_ms\":9223372036854775807}", "INVALID_REQUEST",
                  "timeout_ms must be 1..600000", "r1" },
                { "{\"request_id\":\"r1\",\"action\":\"a\",\"timeout_ms\":-9223372036854775808}", "INVALID_REQUEST",
                  "timeout_ms must be 1..600000", "r1" },
                { "{\"request_id\":\"r1\",\"action\":\"a\",\"timeout_ms\":4294967297}", "INVALID_REQUEST",
                  "timeout_ms must be 1..600000", "r1" },
                { "{\"request_id\":\"r1\",\"action\":\"a\",\"timeout_ms\":1.5}", "INVALID_REQUEST", "timeout_ms must be an integer", "r1" },
                { "{\"request_id\":\"r1\",\"action\":\"a\",\"timeout_ms\":1e3}", "INVALID_REQUEST", "timeout_ms must be an integer", "r1" },
                { "{\"request_id\":\"r1\",\"action\":\"a\",\"timeout_ms\":\"100\"}", "INVALID_REQUEST", "timeout_ms must be an integer", "r1" },
                { "{\"request_id\":\"r1\",\"action\":\"a\",\"timeout_ms\":null}", "INVALID_REQUEST", "timeout_ms must be an integer", "r1" },
                { "{\"request_id\":\"r1\",\"action\":\"a\",\"timeout_ms\":9223372036854775808}", "INVALID_JSON",
                  "offset 45: number out of range", NULL },
                /* actor */
                { "{\"request_id\":\"r1\",\"action\":\"a\",\"actor\":\"admin\"}", "INVALID_REQUEST", "actor must be an object", "r1" },
                { "{\"request_id\":\"r1\",\"action\":\"a\",\"actor\":[]}", "INVALID_REQUEST", "actor must be an object", "r1" },
                { "{\"request_id\":\"r1\",\"action\":\"a\",\"actor\":null}", "INVALID_REQUEST", "actor must be an object", "r1" },
                { "{\"request_id\":\"r1\",\"action\":\"a\",\"actor\":{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5,\"f\":6,"
                  "\"g\":7,\"h\":8,\"i\":9,\"j\":10,\"k\":11,\"l\":12,\"m\":13,\"n\":14,\"o\":15,\"p\":16,\"q\":17}}",
                  "INVALID_REQUEST", "actor has more than 16 members", "r1" },
                { "{\"request_id\":\"r1\",\"action\":\"a\",\"actor\":{\"x\":null}}", "INVALID_REQUEST",
                  "actor.x must be a string, an integer or a boolean", "r1" },
                { "{\"request_id\":\"r1\",\"action\":\"a\",\"actor\":{\"x\":1.5}}", "INVALID_REQUEST",
                  "actor.x must be a string, an integer or a boolean", "r1" },
                { "{\"request_id\":\"r1\",\"action\":\"a\",\"actor\":{\"x\":{}}}", "INVALID_REQUEST",
                  "actor.x must be a string, an integer or a boolean", "r1" },
                { "{\"request_id\":\"r1\",\"action\":\"a\",\"actor\":{\"x\":[\"a\"]}}", "INVALID_REQUEST",
                  "actor.x must be a string, an integer or a boolean", "r1" },
                { "{\"request_id\":\"r1\",\"action\":\"a\",\"actor\":{\"name\":\"a\\u0001\"}}", "INVALID_REQUEST",
                  "actor.name contains a control character", "r1" },
                { "{\"request_id\":\"r1\",\"action\":\"a\",\"actor\":{\"name\":\"a\\n\"}}", "INVALID_REQUEST",
                  "actor.name contains a control character", "r1" },
                { "{\"request_id\":\"r1\",\"action\":\"a\",\"actor\":{\"name\":\"\\u007f\"}}", "INVALID_REQUEST",
                  "actor.name contains a control character", "r1" },
                { "{\"request_id\":\"r1\",\"action\":\"a\",\"actor\":{\"\":1}}", "INVALID_REQUEST",
                  "actor key \"\" must be 1..64 bytes of printable ASCII", "r1" },
                { "{\"request_id\":\"r1\",\"action\":\"a\",\"actor\":{\"\xc3\xa9\":1}}", "INVALID_REQUEST",
                  "actor key \"??\" must be 1..64 bytes of printable ASCII", "r1" },
                /* rule order: action before params before dry_run before timeout before actor */
                { "{\"request_id\":\"r1\",\"action\":1,\"params\":1,\"dry_run\":1,\"timeout_ms\":0,\"actor\":1}",
                  "INVALID_REQUEST", "action must be a string", "r1" },
                { "{\"request_id\":\"r1\",\"action\":\"a\",\"params\":1,\"dry_run\":1,\"timeout_ms\":0,\"actor\":1}",
                  "INVALID_REQUEST", "params must be an object", "r1" },
                { "{\"request_id\":\"r1\",\"action\":\"a\",\"dry_run\":1,\"timeout_ms\":0,\"actor\":1}",
                  "INVALID_REQUEST", "dry_run must be a boolean", "r1" },
                { "{\"request_id\":\"r1\",\"action\":\"a\",\"timeout_ms\":0,\"actor\":1}",
                  "INVALID_REQUEST", "timeout_ms must be 1..600000", "r1" },
        };

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const env_case *t = &cases[i];
                request r;
                jb_err err = JB_ERR_INIT;

                if (parse(t->doc, &r, &err) != -1)
                        fail_msg("case %zu <%s>: accepted", i, t->doc);
                if (strcmp(err.code, t->code) != 0 || strcmp(err.msg, t->msg) != 0)
                        fail_msg("case %zu <%s>: got %s \"%s\", wanted %s \"%s\"",
                                 i, t->doc, err.code, err.msg, t->code, t->msg);
                if (t->request_id) {
                        assert_non_null(r.request_id);
                        assert_string_equal(r.request_id, t->request_id);
                        assert_non_null(r.root);
                } else
                        assert_null(r.request_id);
                request_done(&r);
                assert_null(r.root);
        }
}

static void test_long_unknown_key(void **state) {
        request r;
        jb_err err = JB_ERR_INIT;
        _cleanup_free_ char *doc = NULL;

        (void) state;
        doc = with("{\"request_id\":\"r1\",\"%s\":1}", 100000, 'q');
        assert_int_equal(parse(doc, &r, &err), -1);
        assert_string_equal(err.msg, "unknown key \"qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq...\"");
        request_done(&r);
}

static void test_depth_and_misuse(void **state) {
        static const struct envelope_limits shallow = { .max_depth = 2, .max_timeout_ms = 1000 };
        static const char deep[] = "{\"request_id\":\"r\",\"action\":\"a\",\"params\":{\"x\":{}}}";
        static const char ok[] = "{\"request_id\":\"r\",\"action\":\"a\",\"params\":{\"x\":1}}";
        request r;
        jb_err err = JB_ERR_INIT;

        (void) state;
        assert_int_equal(request_parse(ok, strlen(ok), &shallow, &r, &err), 0);
        request_done(&r);
        assert_int_equal(request_parse(deep, strlen(deep), &shallow, &r, &err), -1);
        assert_string_equal(err.code, "INVALID_JSON");
        assert_string_equal(err.msg, "offset 45: nesting too deep");
        assert_null(r.root);
        request_done(&r);

        assert_int_equal(request_parse(ok, strlen(ok), NULL, &r, &err), -1);
        assert_string_equal(err.code, "INTERNAL");
        request_done(&r);
        assert_int_equal(request_parse(NULL, 0, &lim, &r, &err), -1);
        assert_string_equal(err.code, "INVALID_JSON");
        request_done(&r);
        /* only len bytes count */
        assert_int_equal(request_parse("{\"request_id\":\"r\",\"action\":\"a\"}GARBAGE", 31, &lim, &r, NULL), 0);
        request_done(&r);
}

/* ---- responses ---- */

static void expect_bytes(char *out, size_t len, const char *want) {
        jb_err err = JB_ERR_INIT;

        assert_non_null(out);
        assert_string_equal(out, want);
        assert_int_equal(len, strlen(want));
        /* every response is itself strict JSON */
        assert_int_equal(json_check_strict(out, len, 64, &err), 0);
        free(out);
}

static void test_response_ok(void **state) {
        json_object *res, *deep, *inner;
        size_t len = 0;
        char *out;

        (void) state;
        out = response_ok("r1", NULL, &len);
        expect_bytes(out, len, "{\"request_id\":\"r1\",\"ok\":true,\"result\":{}}");

        res = json_object_new_object();
        json_object_object_add(res, "changed", json_object_new_boolean(0));
        json_object_object_add(res, "path", json_object_new_string("/var/www/\xc3\xa9\x01\"\\"));
        json_object_object_add(res, "n", json_object_new_int64(INT64_MIN));
        json_object_object_add(res, "list", json_object_new_array());
        out = response_ok("abc-123", res, &len);
        expect_bytes(out, len, "{\"request_id\":\"abc-123\",\"ok\":true,\"result\":{\"changed\":false,"
                     "\"path\":\"/var/www/\xc3\xa9\\u0001\\\"\\\\\",\"n\":-9223372036854775808,\"list\":[]}}");
        /* borrowed: the caller's reference is still the only one */
        out = response_ok(NULL, res, NULL);
        assert_non_null(out);
        assert_string_equal(out, "{\"request_id\":null,\"ok\":true,\"result\":{\"changed\":false,"
                            "\"path\":\"/var/www/\xc3\xa9\\u0001\\\"\\\\\",\"n\":-9223372036854775808,\"list\":[]}}");
        free(out);
        out = response_ok("bad\nid", NULL, &len);
        expect_bytes(out, len, "{\"request_id\":null,\"ok\":true,\"result\":{}}");

        /* what json-c would write but a strict client refuses */
        json_object_object_add(res, "bad", json_object_new_double(NAN));
        assert_null(response_ok("r1", res, &len));
        json_object_object_add(res, "bad", json_object_new_double(INFINITY));
        assert_null(response_ok("r1", res, &len));
        json_object_object_add(res, "bad", json_object_new_string("\xff"));
        assert_null(response_ok("r1", res, &len));
        json_object_object_add(res, "bad", json_object_new_string_len("a\0b", 3));
        assert_null(response_ok("r1", res, &len));
        json_object_object_add(res, "bad", json_object_new_uint64(UINT64_MAX));
        assert_null(response_ok("r1", res, &len));
        json_object_object_add(res, "bad", json_object_new_uint64(INT64_MAX));
        out = response_ok("r1", res, &len);
        assert_non_null(out);
        free(out);
        assert_int_equal(json_object_put(res), 1);

        /* results must be objects */
        res = json_object_new_array();
        assert_null(response_ok("r1", res, &len));
        json_object_put(res);

        /* nesting: RESPONSE_MAX_DEPTH inside result is the most allowed */
        deep = json_object_new_object();
        inner = deep;
        for (unsigned i = 1; i < RESPONSE_MAX_DEPTH; i++) {
                json_object *o = json_object_new_object();
                json_object_object_add(inner, "a", o);
                inner = o;
        }
        out = response_ok("r1", deep, &len);
        assert_non_null(out);
        free(out);
        json_object_object_add(inner, "a", json_object_new_object());
        assert_null(response_ok("r1", deep, &len));
        json_object_put(deep);
}

static void test_response_error(void **state) {
        size_t len = 0;
        char *out;

        (void) state;
        out = response_error("r1", "INVALID_REQUEST", "unknown key \"x\"", &len);
        expect_bytes(out, len, "{\"request_id\":\"r1\",\"ok\":false,\"error\":\"unknown key \\\"x\\\"\","
                     "\"code\":\"INVALID_REQUEST\"}");
        out = response_error(NULL, "INVALID_JSON", "offset 1: unexpected end of input", &len);
        expect_bytes(out, len, "{\"request_id\":null,\"ok\":false,\"error\":\"offset 1: unexpected end of input\","
                     "\"code\":\"INVALID_JSON\"}");
        out = response_error("r1", NULL, "boom", &len);
        expect_bytes(out, len, "{\"request_id\":\"r1\",\"ok\":false,\"error\":\"boom\",\"code\":\"INTERNAL\"}");
        out = response_error("r1", "bad-code", "boom", &len);
        expect_bytes(out, len, "{\"request_id\":\"r1\",\"ok\":false,\"error\":\"boom\",\"code\":\"INTERNAL\"}");
        out = response_error("r1", "DNS_ZONE_LOCKED", "zone /var/x is locked", &len);
        expect_bytes(out, len, "{\"request_id\":\"r1\",\"ok\":false,\"error\":\"zone /var/x is locked\","
                     "\"code\":\"DNS_ZONE_LOCKED\"}");
        out = response_error("r1", "BUSY", NULL, &len);
        expect_bytes(out, len, "{\"request_id\":\"r1\",\"ok\":false,\"error\":\"too many requests in flight\","
                     "\"code\":\"BUSY\"}");
        out = response_error("r1", "DNS_ZONE_LOCKED", NULL, &len);
        expect_bytes(out, len, "{\"request_id\":\"r1\",\"ok\":false,\"error\":\"error\",\"code\":\"DNS_ZONE_LOCKED\"}");
        /* invalid UTF-8 in a message (a file name, say) cannot escape */
        out = response_error("r1", "NOT_FOUND", "no /srv/a\xff" "b\xc3 or \xed\xa0\x80 but \xc3\xa9\x01", &len);
        expect_bytes(out, len, "{\"request_id\":\"r1\",\"ok\":false,\"error\":\"no /srv/a?b? or ??? but \xc3\xa9\\u0001\","
                     "\"code\":\"NOT_FOUND\"}");
        /* noncharacters too: strict clients refuse them (fuzzer find) */
        out = response_error("r1", "NOT_FOUND", "x\xf4\x8f\xbf\xbf\xef\xb7\x90y\xef\xbf\xbd", &len);
        expect_bytes(out, len, "{\"request_id\":\"r1\",\"ok\":false,\"error\":\"x???????y\xef\xbf\xbd\","
                     "\"code\":\"NOT_FOUND\"}");
        out = response_error("\x7f", "TIMEOUT", "late", NULL);
        assert_non_null(out);
        assert_string_equal(out, "{\"request_id\":null,\"ok\":false,\"error\":\"late\",\"code\":\"TIMEOUT\"}");
        free(out);
}

/* A request's echoed id goes back out unchanged. */
static void test_roundtrip(void **state) {
        request r;
        jb_err err = JB_ERR_INIT;
        size_t len;
        char *out;

        (void) state;
        assert_int_equal(parse("{\"request_id\":\"a\\\\b\\\"c/d\",\"action\":\"x\",\"zz\":1}", &r, &err), -1);
        out = response_error(r.request_id, err.code, err.msg, &len);
        expect_bytes(out, len, "{\"request_id\":\"a\\\\b\\\"c/d\",\"ok\":false,\"error\":\"unknown key \\\"zz\\\"\","
                     "\"code\":\"INVALID_REQUEST\"}");
        request_done(&r);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_minimal),
                cmocka_unit_test(test_full),
                cmocka_unit_test(test_limits_exact),
                cmocka_unit_test(test_rejects),
                cmocka_unit_test(test_long_unknown_key),
                cmocka_unit_test(test_depth_and_misuse),
                cmocka_unit_test(test_response_ok),
                cmocka_unit_test(test_response_error),
                cmocka_unit_test(test_roundtrip),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
