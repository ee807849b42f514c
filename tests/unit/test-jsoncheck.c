/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The strict JSON validator: every json-c leak from the platform notes must
 * be refused, valid documents must pass and parse identically. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "jsoncheck.h"
#include "util.h"

/* 2^1024 - 2^970: the smallest decimal that rounds to +inf. */
#define ROUND_TO_INF "179769313486231580793728971405303415079934132710037826936173778980444968292764750946649017977587207096330286416692887910946555547851940402630657488671505820681908902000708383676273854845817711531764475730270069855571366959622842914819860834936475292719074168444365510704342711559699508093042880177904174497792"
#define BELOW_INF    "179769313486231580793728971405303415079934132710037826936173778980444968292764750946649017977587207096330286416692887910946555547851940402630657488671505820681908902000708383676273854845817711531764475730270069855571366959622842914819860834936475292719074168444365510704342711559699508093042880177904174497791"

typedef struct json_case {
        const char *doc;
        size_t len;             /* 0: strlen(doc) */
        const char *msg;        /* NULL: accepted; else the exact INVALID_JSON message */
} json_case;

#define S(lit) lit, sizeof(lit) - 1     /* for documents holding NUL bytes */

/* Runs the checker on an exact-size heap copy, so that ASan catches any
 * read beyond the end. */
static int check_copy(const char *doc, size_t len, unsigned depth, jb_err *err) {
        char *copy = malloc(len ? len : 1);
        int r;

        assert_non_null(copy);
        memcpy(copy, doc, len);
        r = json_check_strict(copy, len, depth, err);
        free(copy);
        return r;
}

static void run_cases(const json_case *cases, size_t n, unsigned depth) {
        for (size_t i = 0; i < n; i++) {
                const json_case *t = &cases[i];
                size_t len = t->len ? t->len : strlen(t->doc);
                jb_err err = JB_ERR_INIT;
                json_object *o;
                int r;

                r = check_copy(t->doc, len, depth, &err);
                if (!t->msg) {
                        if (r != 0)
                                fail_msg("case %zu <%s>: refused: %s", i, t->doc, err.msg);
                        /* json-c must agree on everything accepted. */
                        o = json_parse_strict(t->doc, len, depth, &err);
                        if (!o)
                                fail_msg("case %zu <%s>: json-c refused: %s", i, t->doc, err.msg);
                        json_object_put(o);
                        continue;
                }
                if (r != -1)
                        fail_msg("case %zu <%s>: accepted, wanted \"%s\"", i, t->doc, t->msg);
                assert_string_equal(err.code, "INVALID_JSON");
                if (strcmp(err.msg, t->msg) != 0)
                        fail_msg("case %zu <%s>: got \"%s\", wanted \"%s\"", i, t->doc, err.msg, t->msg);
                jb_err_clear(&err);
                o = json_parse_strict(t->doc, len, depth, &err);
                assert_null(o);
                assert_string_equal(err.msg, t->msg);
        }
}

/* platform.md §4, item by item: json-c 0.16 lets all of these through. */
static void test_json_c_leaks(void **state) {
        static const json_case cases[] = {
                { "{'a':1}", 0, "offset 1: expected string key" },
                { "[NaN]", 0, "offset 1: unexpected character" },
                { "[Infinity]", 0, "offset 1: unexpected character" },
                { "[-Infinity]", 0, "offset 1: invalid number" },
                { "[nan]", 0, "offset 1: invalid literal" },
                { "[\"a\nb\"]", 0, "offset 3: control character in string" },
                { "[\"a\tb\"]", 0, "offset 3: control character in string" },
                { "[\"\x1f\"]", 0, "offset 2: control character in string" },
                { "[\"\xc0\xaf\"]", 0, "offset 2: invalid UTF-8" },             /* overlong '/' */
                { "[\"\xe0\x80\xaf\"]", 0, "offset 2: invalid UTF-8" },
                { "[\"\xf0\x80\x80\xaf\"]", 0, "offset 2: invalid UTF-8" },
                { "[\"\xed\xa0\x80\"]", 0, "offset 2: invalid UTF-8" },         /* U+D800 in UTF-8 */
                { "[\"\xed\xbf\xbf\"]", 0, "offset 2: invalid UTF-8" },         /* U+DFFF */
                { "[\"\\ud800\"]", 0, "offset 2: unpaired surrogate" },
                { "{\"a\":1}xyz", 0, "offset 7: trailing data" },
                { "{\"a\":1}{\"b\":2}", 0, "offset 7: trailing data" },
                { S("{\"k\":\"a\0b\"}"), "offset 7: control character in string" },
                { S("{\"k\":1}\0junk"), "offset 7: trailing data" },
                { S("{\"k\":1}\0"), "offset 7: trailing data" },
                { S("\0{}"), "offset 0: unexpected character" },
                { "[9223372036854775808]", 0, "offset 1: number out of range" },
                { "[18446744073709551616]", 0, "offset 1: number out of range" },
                { "[-9223372036854775809]", 0, "offset 1: number out of range" },
                { "[1E400]", 0, "offset 1: number out of range" },
                { "[1e400]", 0, "offset 1: number out of range" },
                { "[-1e400]", 0, "offset 1: number out of range" },
                { "{\"a\":1,\"a\":2}", 0, "offset 7: duplicate key" },
                { "{\"a\\u0000b\":1}", 0, "offset 3: \\u0000 not allowed" },
                { "[\"a\\u0000b\"]", 0, "offset 3: \\u0000 not allowed" },
                { "\"\xff\"", 0, "offset 1: invalid UTF-8" },
                { "[1,2,]", 0, "offset 5: unexpected character" },
                { "{\"a\":1,}", 0, "offset 7: expected string key" },
                { "{/*c*/\"a\":1}", 0, "offset 1: expected string key" },
                { "[01]", 0, "offset 1: leading zero" },
                { "[True]", 0, "offset 1: unexpected character" },
                { "{\"a\":1", 0, "offset 6: unexpected end of input" },
        };
        (void) state;
        run_cases(cases, ELEMENTSOF(cases), 16);
}

static void test_strings(void **state) {
        static const json_case cases[] = {
                { "\"\"", 0, NULL },
                { "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", 0, NULL },
                { "\"\\u0041\\u00e9\\u20AC\\u0001\\u001f\\u007f\"", 0, NULL },
                { "\"\\ud83d\\ude00\"", 0, NULL },                 /* a valid pair */
                { "\"\\uD83D\\uDE00\"", 0, NULL },
                { "\"\\udbff\\udfdf\"", 0, NULL },                 /* U+10FFDF */
                { "\"é€😀\x7f\"", 0, NULL },                       /* raw UTF-8 and DEL */
                { "\"\xf4\x8f\xbf\xbd\"", 0, NULL },                /* U+10FFFD */
                { "\"\xef\xbf\xbd\"", 0, NULL },                    /* U+FFFD */
                { "\"\xee\x80\x80\"", 0, NULL },                    /* U+E000 */
                { "\"\xed\x9f\xbf\"", 0, NULL },                    /* U+D7FF */
                { "\"\xc2\x80\"", 0, NULL },                        /* U+0080 */
                { "\"\xf0\x90\x80\x80\"", 0, NULL },                /* U+10000 */
                { "\"\\uFDCF\\uFDF0\"", 0, NULL },                  /* beside the noncharacters */

                { "\"\xf4\x90\x80\x80\"", 0, "offset 1: invalid UTF-8" },   /* U+110000 */
                { "\"\xf5\x80\x80\x80\"", 0, "offset 1: invalid UTF-8" },
                { "\"\xf8\x88\x80\x80\x80\"", 0, "offset 1: invalid UTF-8" },
                { "\"\xfe\"", 0, "offset 1: invalid UTF-8" },
                { "\"\x80\"", 0, "offset 1: invalid UTF-8" },                /* stray continuation */
                { "\"\xc3\"", 0, "offset 1: invalid UTF-8" },                /* truncated */
                { "\"\xc3", 0, "offset 1: invalid UTF-8" },                  /* truncated at the end */
                { "\"\xe2\x82\"", 0, "offset 1: invalid UTF-8" },
                { "\"\xe2\x82", 0, "offset 1: invalid UTF-8" },
                { "\"\xf0\x9f\x98\"", 0, "offset 1: invalid UTF-8" },
                { "\"\xc1\xbf\"", 0, "offset 1: invalid UTF-8" },            /* overlong */
                { "\"a\xc3\x28\"", 0, "offset 2: invalid UTF-8" },
                { "\"\xef\xbf\xbe\"", 0, "offset 1: noncharacter not allowed" },    /* U+FFFE */
                { "\"\xef\xbf\xbf\"", 0, "offset 1: noncharacter not allowed" },    /* U+FFFF */
                { "\"\xef\xb7\x90\"", 0, "offset 1: noncharacter not allowed" },    /* U+FDD0 */
                { "\"\xf4\x8f\xbf\xbf\"", 0, "offset 1: noncharacter not allowed" },/* U+10FFFF */
                { "\"\\uffff\"", 0, "offset 1: noncharacter not allowed" },
                { "\"\\uFDEF\"", 0, "offset 1: noncharacter not allowed" },
                { "\"\\ud83f\\udffe\"", 0, "offset 1: noncharacter not allowed" },  /* U+1FFFE */

                { "\"\\udc00\"", 0, "offset 1: unpaired surrogate" },
                { "\"\\udc00\\ud800\"", 0, "offset 1: unpaired surrogate" },
                { "\"\\ud800\\u0041\"", 0, "offset 1: unpaired surrogate" },
                { "\"\\ud800\\ud800\"", 0, "offset 1: unpaired surrogate" },
                { "\"\\ud800x\"", 0, "offset 1: unpaired surrogate" },
                { "\"\\ud800\\n\"", 0, "offset 1: unpaired surrogate" },
                { "\"x\\ud800", 0, "offset 2: unpaired surrogate" },
                { "\"\\ud800\\u12\"", 0, "offset 7: invalid \\u escape" },
                { "\"\\u0000\"", 0, "offset 1: \\u0000 not allowed" },
                { "\"\\u12\"", 0, "offset 1: invalid \\u escape" },
                { "\"\\u12G4\"", 0, "offset 1: invalid \\u escape" },
                { "\"\\u", 0, "offset 1: invalid \\u escape" },
                { "\"\\U0041\"", 0, "offset 1: invalid escape" },
                { "\"\\x41\"", 0, "offset 1: invalid escape" },
                { "\"\\'\"", 0, "offset 1: invalid escape" },
                { "\"\\a\"", 0, "offset 1: invalid escape" },
                { "\"\\", 0, "offset 0: unterminated string" },
                { "\"abc", 0, "offset 0: unterminated string" },
                { "[\"abc", 0, "offset 1: unterminated string" },
                { "'a'", 0, "offset 0: unexpected character" },
                { "\"\x7f\x01\"", 0, "offset 2: control character in string" },
                { "\"\r\"", 0, "offset 1: control character in string" },
        };
        (void) state;
        run_cases(cases, ELEMENTSOF(cases), 16);
}

static void test_numbers(void **state) {
        static const json_case cases[] = {
                { "0", 0, NULL },
                { "-0", 0, NULL },
                { "[0,-0,1,-1,10,123456789]", 0, NULL },
                { "9223372036854775807", 0, NULL },
                { "-9223372036854775808", 0, NULL },
                { "[9223372036854775807,-9223372036854775808]", 0, NULL },
                { "1.5e3", 0, NULL },
                { "[0.0,-0.0,0.5,1.25,1E+2,1e-2,1E2,-1.5e-3,0e0,0e-0]", 0, NULL },
                { "1e308", 0, NULL },
                { "0.1e309", 0, NULL },
                { "1.7976931348623157e308", 0, NULL },             /* DBL_MAX */
                { "1.7976931348623158e308", 0, NULL },             /* rounds down to DBL_MAX */
                { "-1.7976931348623157e308", 0, NULL },
                { BELOW_INF "e0", 0, NULL },
                { BELOW_INF ".999999999999999999999999999999999999999999999999999999999999999999999"
                  "9999999999999999999999999999999999999999999999999999999999999999999999999999999"
                  "9999999999999999999999999999999999999999999999999999999999999999999999999999999", 0, NULL },
                { "0.0000000000000000000000000000000000000000000000000000000000000000000000000001e384", 0, NULL },
                { "1e-400", 0, NULL },                              /* underflows to 0: finite */
                { "4.9e-324", 0, NULL },
                { "0e99999999999999999999999", 0, NULL },
                { "0.000e400", 0, NULL },
                { "1e-99999999999999999999999", 0, NULL },
                { "92233720368547758070e-1", 0, NULL },             /* not an integer: a double */
                { "9223372036854775808.0", 0, NULL },

                { "9223372036854775808", 0, "offset 0: number out of range" },
                { "-9223372036854775809", 0, "offset 0: number out of range" },
                { "99999999999999999999", 0, "offset 0: number out of range" },
                { "100000000000000000000000000000", 0, "offset 0: number out of range" },
                { "1e400", 0, "offset 0: number out of range" },
                { "1.7976931348623159e308", 0, "offset 0: number out of range" },
                { "10e308", 0, "offset 0: number out of range" },
                { "1e99999999999999999999999", 0, "offset 0: number out of range" },
                { ROUND_TO_INF "e0", 0, "offset 0: number out of range" },
                { ROUND_TO_INF ".0", 0, "offset 0: number out of range" },
                { "0." ROUND_TO_INF "e309", 0, "offset 0: number out of range" },
                { "[1,-1e999]", 0, "offset 3: number out of range" },

                { "+1", 0, "offset 0: unexpected character" },
                { ".5", 0, "offset 0: unexpected character" },
                { "1.", 0, "offset 0: invalid number" },
                { "1.e5", 0, "offset 0: invalid number" },
                { "1e", 0, "offset 0: invalid number" },
                { "1e+", 0, "offset 0: invalid number" },
                { "1E-", 0, "offset 0: invalid number" },
                { "-", 0, "offset 0: invalid number" },
                { "--1", 0, "offset 0: invalid number" },
                { "-a", 0, "offset 0: invalid number" },
                { "00", 0, "offset 0: leading zero" },
                { "-01", 0, "offset 0: leading zero" },
                { "01.5", 0, "offset 0: leading zero" },
                { "0x10", 0, "offset 1: trailing data" },
                { "1_000", 0, "offset 1: trailing data" },
                { "1.5.2", 0, "offset 3: trailing data" },
                { "1e5e5", 0, "offset 3: trailing data" },
                { "[1 2]", 0, "offset 3: expected ',' or ']'" },
                { "[-]", 0, "offset 1: invalid number" },
        };
        (void) state;
        run_cases(cases, ELEMENTSOF(cases), 16);
}

static void test_literals_and_structure(void **state) {
        static const json_case cases[] = {
                { "true", 0, NULL },
                { "false", 0, NULL },
                { " \t\r\n{} \t\r\n", 0, NULL },
                { "[]", 0, NULL },
                { "{}", 0, NULL },
                { "[true,false,null,\"x\",1,{},[]]", 0, NULL },
                { "{\"a\":[1,{\"b\":null}],\"c\":{\"d\":[]}}", 0, NULL },
                { "{ \"a\" : 1 , \"b\" : [ 1 , 2 ] }", 0, NULL },

                { "", 0, "offset 0: empty document" },
                { "   ", 0, "offset 3: unexpected end of input" },
                { "tru", 0, "offset 0: invalid literal" },
                { "nul", 0, "offset 0: invalid literal" },
                { "fals", 0, "offset 0: invalid literal" },
                { "nulll", 0, "offset 4: trailing data" },
                { "falsey", 0, "offset 5: trailing data" },
                { "trUe", 0, "offset 0: invalid literal" },
                { "NULL", 0, "offset 0: unexpected character" },
                { "undefined", 0, "offset 0: unexpected character" },
                { "\f{}", 0, "offset 0: unexpected character" },
                { "\v{}", 0, "offset 0: unexpected character" },
                { "\xc2\xa0{}", 0, "offset 0: unexpected character" },       /* NBSP */
                { "\xef\xbb\xbf{}", 0, "offset 0: unexpected character" },   /* BOM */
                { "\xff{}", 0, "offset 0: invalid UTF-8" },
                { "{}\xc3", 0, "offset 2: trailing data" },
                { "[", 0, "offset 1: unexpected end of input" },
                { "[1", 0, "offset 2: unexpected end of input" },
                { "[1,", 0, "offset 3: unexpected end of input" },
                { "{", 0, "offset 1: unexpected end of input" },
                { "{\"a\"", 0, "offset 4: unexpected end of input" },
                { "{\"a\":", 0, "offset 5: unexpected end of input" },
                { "{\"a\" 1}", 0, "offset 5: expected ':'" },
                { "{1:2}", 0, "offset 1: expected string key" },
                { "{\"a\":1 \"b\":2}", 0, "offset 7: expected ',' or '}'" },
                { "[1}", 0, "offset 2: expected ',' or ']'" },
                { "{\"a\":1]", 0, "offset 6: expected ',' or '}'" },
                { "]", 0, "offset 0: unexpected character" },
                { "}", 0, "offset 0: unexpected character" },
                { "[,1]", 0, "offset 1: unexpected character" },
                { "{,}", 0, "offset 1: expected string key" },
                { "{\"a\"::1}", 0, "offset 5: unexpected character" },
                { "[] []", 0, "offset 3: trailing data" },
                { "1 2", 0, "offset 2: trailing data" },
        };
        (void) state;
        run_cases(cases, ELEMENTSOF(cases), 16);
}

static void test_duplicate_keys(void **state) {
        static const json_case cases[] = {
                { "{\"a\":1,\"b\":2,\"ab\":3,\"ba\":4,\"\":5}", 0, NULL },
                { "{\"a\":{\"a\":1},\"b\":{\"a\":2}}", 0, NULL },
                { "[{\"a\":1},{\"a\":1}]", 0, NULL },
                { "{\"a\":{\"b\":1},\"b\":1}", 0, NULL },
                { "{\"a\":1,\"A\":2}", 0, NULL },
                { "[{},{},[{}]]", 0, NULL },          /* objects with no keys: no key store at all */
                { "{\"\\u00e9\":1,\"e\\u0301\":2}", 0, NULL },       /* not normalised: distinct */

                { "{\"a\":1,\"b\":2,\"a\":3}", 0, "offset 13: duplicate key" },
                { "{\"a\":1,\"\\u0061\":2}", 0, "offset 7: duplicate key" },
                { "{\"\\u0061\":1,\"a\":2}", 0, "offset 12: duplicate key" },
                { "{\"\\u00e9\":1,\"\xc3\xa9\":2}", 0, "offset 12: duplicate key" },
                { "{\"\\ud83d\\ude00\":1,\"\xf0\x9f\x98\x80\":2}", 0, "offset 18: duplicate key" },
                { "{\"a\\/b\":1,\"a/b\":2}", 0, "offset 10: duplicate key" },
                { "{\"\\n\":1,\"\\u000a\":2}", 0, "offset 8: duplicate key" },
                { "{\"\":1,\"\":2}", 0, "offset 6: duplicate key" },
                { "{\"a\":{\"x\":1,\"x\":2}}", 0, "offset 12: duplicate key" },
                /* several repeated keys: the earliest repetition is named */
                { "{\"b\":1,\"a\":1,\"a\":2,\"b\":3,\"a\":4}", 0, "offset 13: duplicate key" },
                { "{\"b\":1,\"a\":1,\"b\":2,\"a\":3}", 0, "offset 13: duplicate key" },
                /* the inner object is checked when it closes, first */
                { "{\"a\":1,\"a\":{\"b\":1,\"b\":2}}", 0, "offset 18: duplicate key" },
        };
        (void) state;
        run_cases(cases, ELEMENTSOF(cases), 16);
}

static void test_depth(void **state) {
        static const json_case d3[] = {
                { "[[[1]]]", 0, NULL },
                { "[[[]]]", 0, NULL },
                { "{\"a\":{\"b\":{\"c\":1}}}", 0, NULL },
                { "{\"a\":[{\"c\":[]}]}", 0, "offset 11: nesting too deep" },
                { "[[[[1]]]]", 0, "offset 3: nesting too deep" },
                { "[[[{}]]]", 0, "offset 3: nesting too deep" },
                { "{\"a\":{\"b\":{\"c\":{}}}}", 0, "offset 15: nesting too deep" },
                /* depth is nesting, not total: siblings do not add up */
                { "[[[1]],[[2]],[[3]]]", 0, NULL },
        };
        static const json_case d0[] = {
                { "1", 0, NULL },
                { "\"x\"", 0, NULL },
                { "[]", 0, "offset 0: nesting too deep" },
                { " {}", 0, "offset 1: nesting too deep" },
        };
        static const json_case d1[] = {
                { "[1,2,\"x\"]", 0, NULL },
                { "{\"a\":1}", 0, NULL },
                { "[[]]", 0, "offset 1: nesting too deep" },
        };
        (void) state;
        run_cases(d3, ELEMENTSOF(d3), 3);
        run_cases(d0, ELEMENTSOF(d0), 0);
        run_cases(d1, ELEMENTSOF(d1), 1);
}

static char *repeat(const char *head, const char *unit, size_t n, const char *tail, size_t *ret_len) {
        size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail), len = hl + ul * n + tl;
        char *s = malloc(len + 1), *p;

        assert_non_null(s);
        memcpy(s, head, hl);
        p = s + hl;
        for (size_t i = 0; i < n; i++, p += ul)
                memcpy(p, unit, ul);
        memcpy(p, tail, tl);
        p += tl;
        *p = '\0';
        *ret_len = len;
        return s;
}

/* Hostile shapes must fail (or pass) fast and without deep recursion. */
static void test_hostile_sizes(void **state) {
        _cleanup_free_ char *deep = NULL, *wide = NULL, *dup = NULL, *same = NULL;
        jb_err err = JB_ERR_INIT;
        size_t len, i, n = 200000;
        json_object *o;
        char *p;

        (void) state;

        /* a million open brackets with no depth limit: an explicit stack */
        deep = repeat("", "[", 1000000, "", &len);
        assert_int_equal(json_check_strict(deep, len, UINT32_MAX, &err), -1);
        assert_string_equal(err.msg, "offset 1000000: unexpected end of input");
        assert_int_equal(json_check_strict(deep, len, 64, &err), -1);
        assert_string_equal(err.msg, "offset 64: nesting too deep");

        /* 200000 distinct keys, then the same with a repetition at the end */
        wide = malloc(n * 32 + 16);
        assert_non_null(wide);
        p = wide;
        *p++ = '{';
        for (i = 0; i < n; i++)
                p += sprintf(p, "%s\"k%zu\":%zu", i ? "," : "", i, i);
        *p++ = '}';
        len = (size_t) (p - wide);
        assert_int_equal(json_check_strict(wide, len, 2, &err), 0);
        o = json_parse_strict(wide, len, 2, &err);
        assert_non_null(o);
        assert_int_equal(json_object_object_length(o), (int) n);
        json_object_put(o);

        dup = malloc(len + 32);
        assert_non_null(dup);
        memcpy(dup, wide, len - 1);
        p = dup + len - 1;
        p += sprintf(p, ",\"k%zu\":0}", n / 2);
        assert_int_equal(json_check_strict(dup, (size_t) (p - dup), 2, &err), -1);
        char want[64];
        snprintf(want, sizeof(want), "offset %zu: duplicate key", len);
        assert_string_equal(err.msg, want);

        /* 200000 identical escaped keys: sorted, not compared pairwise */
        same = repeat("{\"\\u0061\":0", ",\"\\u0061\":0", n, "}", &len);
        assert_int_equal(json_check_strict(same, len, 2, &err), -1);
        assert_string_equal(err.msg, "offset 12: duplicate key");
}

static void test_long_number(void **state) {
        _cleanup_free_ char *big = NULL, *tiny = NULL, *wide_int = NULL;
        jb_err err = JB_ERR_INIT;
        size_t len;

        (void) state;
        /* a million-digit fraction: still 1.0 and finite */
        big = repeat("1.", "0", 1000000, "", &len);
        assert_int_equal(json_check_strict(big, len, 1, &err), 0);
        tiny = repeat("0.", "0", 1000000, "1e1000300", &len);  /* 1e-1000001 * 1e1000300 = 1e299 */
        assert_int_equal(json_check_strict(tiny, len, 1, &err), 0);
        free(TAKE_PTR(tiny));
        tiny = repeat("0.", "0", 1000000, "1e1000310", &len);  /* 1e309 */
        assert_int_equal(json_check_strict(tiny, len, 1, &err), -1);
        assert_string_equal(err.msg, "offset 0: number out of range");
        wide_int = repeat("1", "0", 1000000, "", &len);
        assert_int_equal(json_check_strict(wide_int, len, 1, &err), -1);
        assert_string_equal(err.msg, "offset 0: number out of range");
}

static void test_parse_strict(void **state) {
        jb_err err = JB_ERR_INIT;
        json_object *o, *v;
        static const char doc[] = "{\"a\":\"\\u00e9\\ud83d\\ude00\",\"n\":-9223372036854775808,"
                "\"d\":1.5e3,\"l\":[true,null]}";

        (void) state;
        o = json_parse_strict(doc, strlen(doc), 4, &err);
        assert_non_null(o);
        assert_true(json_object_object_get_ex(o, "a", &v));
        assert_string_equal(json_object_get_string(v), "\xc3\xa9\xf0\x9f\x98\x80");
        assert_true(json_object_object_get_ex(o, "n", &v));
        assert_true(json_object_is_type(v, json_type_int));
        assert_true(json_object_get_int64(v) == INT64_MIN);
        assert_true(json_object_object_get_ex(o, "d", &v));
        assert_true(json_object_is_type(v, json_type_double));
        assert_true(json_object_get_double(v) == 1500.0);
        json_object_put(o);

        /* scalars at the top level need json-c's end-of-input nudge */
        o = json_parse_strict("123", 3, 1, &err);
        assert_non_null(o);
        assert_int_equal(json_object_get_int(o), 123);
        json_object_put(o);
        o = json_parse_strict(" true \n", 7, 0, &err);
        assert_non_null(o);
        assert_true(json_object_get_boolean(o));
        json_object_put(o);
        /* JSON null is NULL in json-c: valid, but not returnable */
        assert_int_equal(json_check_strict("null", 4, 0, &err), 0);
        o = json_parse_strict(" null", 5, 0, &err);
        assert_null(o);
        assert_string_equal(err.code, "INVALID_JSON");
        assert_string_equal(err.msg, "offset 0: top-level null not supported");

        /* the buffer is not NUL-terminated: only len bytes count */
        o = json_parse_strict("{\"a\":1}garbage", 7, 2, &err);
        assert_non_null(o);
        json_object_put(o);

        /* NULL buffer */
        assert_int_equal(json_check_strict(NULL, 0, 1, &err), -1);
        assert_string_equal(err.msg, "offset 0: empty document");
        assert_int_equal(json_check_strict(NULL, 1, 1, &err), -1);
        assert_string_equal(err.code, "INTERNAL");
        /* err may be NULL */
        assert_int_equal(json_check_strict("[", 1, 1, NULL), -1);
        assert_null(json_parse_strict("[", 1, 1, NULL));
}

static void test_utf8_sequence_len(void **state) {
        static const struct { const char *s; size_t n, want; } t[] = {
                { "a", 1, 1 }, { "\x00", 1, 1 }, { "\x7f", 1, 1 },
                { "\xc2\x80", 2, 2 }, { "\xdf\xbf", 2, 2 }, { "\xc2", 1, 0 }, { "\xc1\xbf", 2, 0 },
                { "\xe0\xa0\x80", 3, 3 }, { "\xe0\x9f\xbf", 3, 0 }, { "\xed\x9f\xbf", 3, 3 },
                { "\xed\xa0\x80", 3, 0 }, { "\xef\xbf\xbf", 3, 3 }, { "\xe2\x82", 2, 0 },
                { "\xf0\x90\x80\x80", 4, 4 }, { "\xf0\x8f\xbf\xbf", 4, 0 },
                { "\xf4\x8f\xbf\xbf", 4, 4 }, { "\xf4\x90\x80\x80", 4, 0 },
                { "\xf5\x80\x80\x80", 4, 0 }, { "\x80", 1, 0 }, { "\xff", 1, 0 },
                { "\xf0\x9f\x98\x80", 3, 0 }, { "\xe2\x82\x28", 3, 0 },
        };
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(t); i++)
                if (utf8_sequence_len((const uint8_t *) t[i].s, t[i].n) != t[i].want)
                        fail_msg("case %zu: got %zu", i, utf8_sequence_len((const uint8_t *) t[i].s, t[i].n));
        assert_int_equal(utf8_sequence_len((const uint8_t *) "a", 0), 0);

        /* json_text_char_len: the same, minus noncharacters */
        assert_int_equal(json_text_char_len((const uint8_t *) "\x01", 1), 1);
        assert_int_equal(json_text_char_len((const uint8_t *) "\xc3\xa9", 2), 2);
        assert_int_equal(json_text_char_len((const uint8_t *) "\xef\xbf\xbd", 3), 3);
        assert_int_equal(json_text_char_len((const uint8_t *) "\xef\xbf\xbe", 3), 0);
        assert_int_equal(json_text_char_len((const uint8_t *) "\xef\xb7\xaf", 3), 0);   /* U+FDEF */
        assert_int_equal(json_text_char_len((const uint8_t *) "\xef\xb7\xb0", 3), 3);   /* U+FDF0 */
        assert_int_equal(json_text_char_len((const uint8_t *) "\xf0\x9f\xbf\xbf", 4), 0); /* U+1FFFF */
        assert_int_equal(json_text_char_len((const uint8_t *) "\xf4\x8f\xbf\xbf", 4), 0);
        assert_int_equal(json_text_char_len((const uint8_t *) "\xed\xa0\x80", 3), 0);
        assert_int_equal(json_text_char_len((const uint8_t *) "", 0), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_json_c_leaks),
                cmocka_unit_test(test_strings),
                cmocka_unit_test(test_numbers),
                cmocka_unit_test(test_literals_and_structure),
                cmocka_unit_test(test_duplicate_keys),
                cmocka_unit_test(test_depth),
                cmocka_unit_test(test_hostile_sizes),
                cmocka_unit_test(test_long_number),
                cmocka_unit_test(test_parse_strict),
                cmocka_unit_test(test_utf8_sequence_len),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
