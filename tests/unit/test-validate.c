/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <jabali/validate.h>

typedef bool (*validator)(const char *s, size_t len, const char **why);

typedef struct vcase {
        const char *s;
        size_t len;
        bool ok;
        const char *why;        /* expected reason; NULL: any non-NULL reason */
} vcase;

/* sizeof keeps embedded NULs in the length. */
#define OK(str) { (str), sizeof(str) - 1, true, NULL }
#define BAD(str, reason) { (str), sizeof(str) - 1, false, (reason) }

/* Runs `fn` on an exact-size heap copy of the input, with no terminating
 * NUL, so that the sanitizers and valgrind see any read past the end. */
static bool run_one(validator fn, const char *s, size_t len, const char **why) {
        char *copy = malloc(len > 0 ? len : 1);
        bool r;

        assert_non_null(copy);
        if (len > 0)
                memcpy(copy, s, len);
        *why = NULL;
        r = fn(copy, len, why);
        free(copy);
        return r;
}

static void run_cases(validator fn, const char *fname, const vcase *cases, size_t n) {
        for (size_t i = 0; i < n; i++) {
                const char *why;
                bool r = run_one(fn, cases[i].s, cases[i].len, &why);

                if (r != cases[i].ok ||
                    (!r && !why) ||
                    (!r && cases[i].why && strcmp(why, cases[i].why) != 0)) {
                        print_error("%s case %zu (len %zu): got %s (%s), want %s (%s)\n",
                                    fname, i, cases[i].len, r ? "ok" : "rejected",
                                    why ? why : "-", cases[i].ok ? "ok" : "rejected",
                                    cases[i].why ? cases[i].why : "-");
                        fail();
                }
                /* A NULL `why` is allowed and the answer is the same. */
                assert_int_equal(fn(cases[i].s, cases[i].len, NULL), cases[i].ok);
        }
}

#define RUN(fn, cases) run_cases((fn), #fn, (cases), sizeof(cases) / sizeof((cases)[0]))

/* A string of `n` copies of `c`; the caller frees it. */
static char *repeat(char c, size_t n) {
        char *s = malloc(n + 1);

        assert_non_null(s);
        memset(s, c, n);
        s[n] = '\0';
        return s;
}

static void expect(validator fn, const char *s, size_t len, bool ok, const char *reason) {
        const char *why;

        assert_int_equal(run_one(fn, s, len, &why), ok);
        if (!ok && reason)
                assert_string_equal(why, reason);
}

/* ---- domain ------------------------------------------------------------ */

static const vcase domain_cases[] = {
        OK("example.com"),
        OK("a.b"),
        OK("www.example.co.uk"),
        OK("a-b.c-d.org"),
        OK("123.com"),
        OK("a1.b2"),
        OK("0.example.com"),
        OK("xn--bcher-kva.example"),
        OK("example.xn--p1ai"),
        OK("xn---abc.com"),
        OK("a.b.c.d.e.f.g"),
        BAD("", "empty"),
        BAD("com", "needs at least two labels"),
        BAD("localhost", "needs at least two labels"),
        BAD("Example.com", "upper-case letters; send the lower-case form"),
        BAD("example.COM", "upper-case letters; send the lower-case form"),
        BAD("b\xc3\xbc" "cher.example", "U-labels are not accepted; send the IDNA A-label (xn--...)"),
        BAD("\xff.com", "U-labels are not accepted; send the IDNA A-label (xn--...)"),
        BAD("a..b", "empty label"),
        BAD(".a.com", "empty label"),
        BAD(".", "trailing dot"),
        BAD("a.com.", "trailing dot"),
        BAD("-a.com", "label starts with a hyphen"),
        BAD("a-.com", "label ends with a hyphen"),
        BAD("a.b-", "label ends with a hyphen"),
        BAD("a.-", "label starts with a hyphen"),
        BAD("xn--.com", "empty IDNA A-label"),
        BAD("a.xn--", "empty IDNA A-label"),
        BAD("ab--c.com", "'--' in positions 3 and 4 is reserved for IDNA A-labels (xn--...)"),
        BAD("www.ab--cd.org", "'--' in positions 3 and 4 is reserved for IDNA A-labels (xn--...)"),
        BAD("1.2.3.4", "top-level label is all digits"),
        BAD("a.123", "top-level label is all digits"),
        BAD("a_b.com", NULL),
        BAD("a b.com", NULL),
        BAD("*.example.com", NULL),
        BAD("a/b.com", NULL),
        BAD("a.com\0evil.org", NULL),
        BAD("\0", NULL),
        BAD("a.com\n", NULL),
        BAD("a@b.com", NULL),
};

static void test_domain(void **state) {
        (void) state;
        RUN(jb_valid_domain, domain_cases);
}

static void test_domain_lengths(void **state) {
        (void) state;
        char *l63 = repeat('a', 63), *l64 = repeat('a', 64), buf[400];

        snprintf(buf, sizeof buf, "%s.com", l63);
        expect(jb_valid_domain, buf, strlen(buf), true, NULL);
        snprintf(buf, sizeof buf, "%s.com", l64);
        expect(jb_valid_domain, buf, strlen(buf), false, "label longer than 63 bytes");
        snprintf(buf, sizeof buf, "x.%s", l64);
        expect(jb_valid_domain, buf, strlen(buf), false, "label longer than 63 bytes");

        /* 63 + 1 + 63 + 1 + 63 + 1 + 61 = 253 */
        snprintf(buf, sizeof buf, "%s.%s.%s.%.61s", l63, l63, l63, l63);
        assert_int_equal(strlen(buf), 253);
        expect(jb_valid_domain, buf, 253, true, NULL);
        snprintf(buf, sizeof buf, "%s.%s.%s.%.62s", l63, l63, l63, l63);
        assert_int_equal(strlen(buf), 254);
        expect(jb_valid_domain, buf, 254, false, "longer than 253 bytes");

        /* Length bounds what is read: a longer buffer, a shorter len. */
        expect(jb_valid_domain, "example.com.evil", 11, true, NULL);
        expect(jb_valid_domain, "example.com", 0, false, "empty");
        assert_false(jb_valid_domain(NULL, 0, NULL));
        free(l63);
        free(l64);
}

/* ---- username ---------------------------------------------------------- */

static const vcase username_cases[] = {
        OK("a"),
        OK("_"),
        OK("_apt"),
        OK("www-data"),
        OK("user_1"),
        OK("bob-"),
        OK("abcdefghijklmnopqrstuvwxyz012345"),         /* 32 */
        BAD("", "empty"),
        BAD("abcdefghijklmnopqrstuvwxyz0123456", "longer than 32 bytes"),
        BAD("1user", "must start with a lower-case letter or '_'"),
        BAD("123", "must start with a lower-case letter or '_'"),
        BAD("-user", "must start with a lower-case letter or '_'"),
        BAD("User", "must start with a lower-case letter or '_'"),
        BAD("usEr", NULL),
        BAD("us.er", NULL),
        BAD("us er", NULL),
        BAD("us\0er", NULL),
        BAD("bob\n", NULL),
        BAD("bob$", NULL),
        BAD("b\xc3\xb6" "b", NULL),
        BAD("../root", NULL),
};

static void test_username(void **state) {
        (void) state;
        RUN(jb_valid_username, username_cases);
        assert_false(jb_valid_username(NULL, 0, NULL));
}

/* ---- email ------------------------------------------------------------- */

static const vcase email_local_cases[] = {
        OK("john"),
        OK("John.Doe"),
        OK("a+tag"),
        OK("a_b-c"),
        OK("a.b.c"),
        OK("0"),
        OK("+"),
        OK("1234567890123456789012345678901234567890123456789012345678901234"),    /* 64 */
        BAD("", "empty local part"),
        BAD("12345678901234567890123456789012345678901234567890123456789012345", "local part longer than 64 bytes"),
        BAD(".a", "local part starts with a dot"),
        BAD("a.", "local part ends with a dot"),
        BAD(".", NULL),
        BAD("a..b", "local part contains '..'"),
        BAD("a b", NULL),
        BAD("a@b", NULL),
        BAD("\"quoted\"", NULL),
        BAD("a\0b", NULL),
        BAD("j\xc3\xb6rg", NULL),
        BAD("a,b", NULL),
        BAD("a\nb", NULL),
};

static void test_email_local(void **state) {
        (void) state;
        RUN(jb_valid_email_local, email_local_cases);
}

static const vcase email_cases[] = {
        OK("john@example.com"),
        OK("John.Doe+tag@mail.example.org"),
        OK("a@b.c"),
        OK("x@xn--bcher-kva.example"),
        BAD("", "empty"),
        BAD("johnexample.com", "missing '@'"),
        BAD("a@b@example.com", "more than one '@'"),
        BAD("@example.com", "empty local part"),
        BAD("john@", "empty"),
        BAD("john@Example.com", "upper-case letters; send the lower-case form"),
        BAD("jo..hn@example.com", "local part contains '..'"),
        BAD(".john@example.com", "local part starts with a dot"),
        BAD("john@example", "needs at least two labels"),
        BAD("john@1.2.3.4", "top-level label is all digits"),
        BAD("john@[1.2.3.4]", NULL),
        BAD("john@example.com\0@evil.org", NULL),
        BAD("john@example.com\0", NULL),
        BAD("john doe@example.com", NULL),
        BAD("john@ex ample.com", NULL),
};

static void test_email(void **state) {
        (void) state;
        char *local = repeat('l', 64), *label = repeat('d', 63), buf[600];

        RUN(jb_valid_email, email_cases);

        /* 64 + 1 + 63 + 1 + 63 + 1 + 61 = 254 */
        snprintf(buf, sizeof buf, "%s@%s.%s.%.61s", local, label, label, label);
        assert_int_equal(strlen(buf), 254);
        expect(jb_valid_email, buf, 254, true, NULL);
        snprintf(buf, sizeof buf, "%s@%s.%s.%.62s", local, label, label, label);
        expect(jb_valid_email, buf, 255, false, "longer than 254 bytes");
        free(local);
        free(label);
}

/* ---- IP addresses ------------------------------------------------------ */

static const vcase ipv4_cases[] = {
        OK("0.0.0.0"),
        OK("1.2.3.4"),
        OK("10.0.0.1"),
        OK("192.168.1.100"),
        OK("255.255.255.255"),
        BAD("", "empty"),
        BAD("1.2.3", NULL),
        BAD("1.2.3.4.5", NULL),
        BAD("1.2.3.", NULL),
        BAD(".1.2.3", NULL),
        BAD("1..2.3", NULL),
        BAD("256.1.1.1", "octet greater than 255"),
        BAD("1.2.3.999", "octet greater than 255"),
        BAD("1.2.3.04", "octet with a leading zero"),
        BAD("010.0.0.1", "octet with a leading zero"),
        BAD("00.1.1.1", "octet with a leading zero"),
        BAD("1234.1.1.1", NULL),
        BAD("1.2.3.0004", NULL),
        BAD(" 1.2.3.4", NULL),
        BAD("1.2.3.4 ", NULL),
        BAD("+1.2.3.4", NULL),
        BAD("1.2.3.-4", NULL),
        BAD("0x1.2.3.4", NULL),
        BAD("1.2.3.4/24", NULL),
        BAD("1.2.3.4\0", NULL),
        BAD("1.2\0.3.4", NULL),
        BAD("16909060", NULL),
        BAD("::1", NULL),
        BAD("1.2.3.4.", NULL),
        BAD("255.255.255.2555", NULL),
};

static void test_ipv4(void **state) {
        (void) state;
        RUN(jb_valid_ipv4, ipv4_cases);
}

static const vcase ipv6_cases[] = {
        OK("::"),
        OK("::1"),
        OK("fe80::1"),
        OK("2001:db8::8a2e:370:7334"),
        OK("2001:DB8::1"),
        OK("1:2:3:4:5:6:7:8"),
        OK("::ffff:192.0.2.1"),
        OK("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"),    /* 45 bytes */
        BAD("", "empty"),
        BAD("::1%eth0", "zone ids are not accepted"),
        BAD("fe80::1%1", "zone ids are not accepted"),
        BAD("%", "zone ids are not accepted"),
        BAD(":::1", "not an IPv6 address"),
        BAD("1:2:3:4:5:6:7:8:9", "not an IPv6 address"),
        BAD("1::2::3", "not an IPv6 address"),
        BAD("g::1", "not an IPv6 address"),
        BAD("1.2.3.4", "not an IPv6 address"),
        BAD("::ffff:01.2.3.4", "not an IPv6 address"),
        BAD("[::1]", "not an IPv6 address"),
        BAD(" ::1", "not an IPv6 address"),
        BAD("::1\0", "contains a NUL byte"),
        BAD("::1\0junk", "contains a NUL byte"),
        BAD("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.2555", "longer than 45 bytes"),
};

static void test_ipv6(void **state) {
        (void) state;
        char *big = repeat(':', 5000);

        RUN(jb_valid_ipv6, ipv6_cases);
        expect(jb_valid_ipv6, big, 5000, false, "longer than 45 bytes");
        free(big);
}

static const vcase ip_cases[] = {
        OK("1.2.3.4"),
        OK("::1"),
        OK("2001:db8::1"),
        BAD("", "empty"),
        BAD("1.2.3.04", "octet with a leading zero"),
        BAD("::1%eth0", "zone ids are not accepted"),
        BAD("example.com", NULL),
        BAD("1.2.3.4:80", NULL),
        BAD("1.2.3.4\0", NULL),
};

static void test_ip(void **state) {
        (void) state;
        RUN(jb_valid_ip, ip_cases);
}

/* ---- paths ------------------------------------------------------------- */

static const vcase segment_cases[] = {
        OK("file.txt"),
        OK("a"),
        OK(".hidden"),
        OK("..."),
        OK("..a"),
        OK("a b"),
        OK("caf\xc3\xa9"),
        OK("-rf"),
        BAD("", "empty path segment"),
        BAD(".", "path segment is '.' or '..'"),
        BAD("..", "path segment is '.' or '..'"),
        BAD("a/b", "path segment contains '/'"),
        BAD("/", "path segment contains '/'"),
        BAD("a\0b", "contains a NUL byte"),
        BAD("a\0", "contains a NUL byte"),
        BAD("a\nb", "contains a control character"),
        BAD("a\tb", "contains a control character"),
        BAD("a\x7f", "contains a control character"),
        BAD("\x1b[31m", "contains a control character"),
        BAD("\xc0\xaf", "invalid UTF-8: overlong encoding"),
        BAD("\xed\xa0\x80", "invalid UTF-8: encoded surrogate"),
        BAD("\xff", NULL),
        BAD("a\xc3", "invalid UTF-8: truncated sequence"),
};

static void test_path_segment(void **state) {
        (void) state;
        char *s255 = repeat('s', 255), *s256 = repeat('s', 256);

        RUN(jb_valid_path_segment, segment_cases);
        expect(jb_valid_path_segment, s255, 255, true, NULL);
        expect(jb_valid_path_segment, s256, 256, false, "path segment longer than 255 bytes");
        free(s255);
        free(s256);
}

static const vcase rel_path_cases[] = {
        OK("a"),
        OK("a/b/c"),
        OK("public_html/index.php"),
        OK(".well-known/acme-challenge/tok"),
        OK("a/.../b"),
        OK("..a/b.."),
        BAD("", "empty"),
        BAD("/a", "absolute path (leading '/')"),
        BAD("/", "absolute path (leading '/')"),
        BAD("a/", "trailing '/'"),
        BAD("a//b", "empty path segment ('//')"),
        BAD("a/./b", "path segment is '.' or '..'"),
        BAD("a/../b", "path segment is '.' or '..'"),
        BAD("..", "path segment is '.' or '..'"),
        BAD("../etc/passwd", "path segment is '.' or '..'"),
        BAD("a/..", "path segment is '.' or '..'"),
        BAD(".", "path segment is '.' or '..'"),
        BAD("a/b\0", "contains a NUL byte"),
        BAD("a\0/b", "contains a NUL byte"),
        BAD("a/\x01", "contains a control character"),
        BAD("a/\xc0\xae\xc0\xae/b", "invalid UTF-8: overlong encoding"),
};

static void test_rel_path(void **state) {
        (void) state;
        char *p = repeat('a', 4097), *seg = repeat('s', 256), buf[300];

        RUN(jb_valid_rel_path, rel_path_cases);

        /* 4096 bytes of "a/a/.../aa" */
        for (size_t i = 1; i < 4094; i += 2)
                p[i] = '/';
        expect(jb_valid_rel_path, p, 4096, true, NULL);
        expect(jb_valid_rel_path, p, 4097, false, "longer than 4096 bytes");

        snprintf(buf, sizeof buf, "a/%s/b", seg);
        expect(jb_valid_rel_path, buf, strlen(buf), false, "path segment longer than 255 bytes");
        free(p);
        free(seg);
}

/* ---- token ------------------------------------------------------------- */

static const vcase token_cases[] = {
        OK("nginx.service"),
        OK("php8.2-fpm"),
        OK("A_b"),
        OK("1.0.0"),
        OK("_x"),
        OK("a-"),
        OK("x.."),
        BAD("", "empty"),
        BAD("-rf", "starts with '-' or '.'"),
        BAD(".hidden", "starts with '-' or '.'"),
        BAD("..", "starts with '-' or '.'"),
        BAD("a b", NULL),
        BAD("a/b", NULL),
        BAD("a\0", NULL),
        BAD("a;b", NULL),
        BAD("a\n", NULL),
        BAD("$(x)", NULL),
        BAD("caf\xc3\xa9", NULL),
        BAD("a@b", NULL),
};

static void test_token(void **state) {
        (void) state;
        char *t = repeat('t', 100000);

        RUN(jb_valid_token, token_cases);
        /* No length bound of its own: the schema's bounds apply. */
        expect(jb_valid_token, t, 100000, true, NULL);
        free(t);
}

/* ---- text -------------------------------------------------------------- */

static const vcase text_cases[] = {
        OK(""),
        OK("hello, world"),
        OK(" ~!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}"),
        OK("caf\xc3\xa9"),                      /* U+00E9 */
        OK("\xc2\x80"),                         /* U+0080, first 2-byte */
        OK("\xdf\xbf"),                         /* U+07FF */
        OK("\xe0\xa0\x80"),                     /* U+0800, first 3-byte */
        OK("\xe2\x82\xac"),                     /* U+20AC */
        OK("\xed\x9f\xbf"),                     /* U+D7FF, just below the surrogates */
        OK("\xee\x80\x80"),                     /* U+E000, just above */
        OK("\xef\xbf\xbd"),                     /* U+FFFD */
        OK("\xef\xbf\xbf"),                     /* U+FFFF */
        OK("\xf0\x90\x80\x80"),                 /* U+10000, first 4-byte */
        OK("\xf0\x9d\x84\x9e"),                 /* U+1D11E */
        OK("\xf4\x8f\xbf\xbf"),                 /* U+10FFFF */
        OK("\xc2\x9b"),                         /* U+009B: C1 controls are not refused */
        BAD("\0", "contains a NUL byte"),
        BAD("a\0b", "contains a NUL byte"),
        BAD("\t", "contains a control character"),
        BAD("a\nb", "contains a control character"),
        BAD("\r", "contains a control character"),
        BAD("\x1f", "contains a control character"),
        BAD("\x7f", "contains a control character"),
        BAD("\xc0\xaf", "invalid UTF-8: overlong encoding"),
        BAD("\xc0\x80", "invalid UTF-8: overlong encoding"),
        BAD("\xc1\xbf", "invalid UTF-8: overlong encoding"),
        BAD("\xe0\x80\xaf", "invalid UTF-8: overlong encoding"),
        BAD("\xe0\x9f\xbf", "invalid UTF-8: overlong encoding"),
        BAD("\xf0\x80\x80\xaf", "invalid UTF-8: overlong encoding"),
        BAD("\xf0\x8f\xbf\xbf", "invalid UTF-8: overlong encoding"),
        BAD("\xed\xa0\x80", "invalid UTF-8: encoded surrogate"),
        BAD("\xed\xbf\xbf", "invalid UTF-8: encoded surrogate"),
        BAD("\xed\xa0\xbd\xed\xb8\x80", "invalid UTF-8: encoded surrogate"),
        BAD("\xf4\x90\x80\x80", "invalid UTF-8: code point above U+10FFFF"),
        BAD("\xf5\x80\x80\x80", "invalid UTF-8: code point above U+10FFFF"),
        BAD("\xf7\xbf\xbf\xbf", "invalid UTF-8: code point above U+10FFFF"),
        BAD("\xf8\x88\x80\x80\x80", "invalid UTF-8: invalid byte"),
        BAD("\xff", "invalid UTF-8: invalid byte"),
        BAD("\xfe", "invalid UTF-8: invalid byte"),
        BAD("\x80", "invalid UTF-8: unexpected continuation byte"),
        BAD("a\xbf", "invalid UTF-8: unexpected continuation byte"),
        BAD("\xc3", "invalid UTF-8: truncated sequence"),
        BAD("\xe2\x82", "invalid UTF-8: truncated sequence"),
        BAD("\xf0\x9d\x84", "invalid UTF-8: truncated sequence"),
        BAD("\xc3\x28", "invalid UTF-8: truncated sequence"),
        BAD("\xe2\x28\xa1", "invalid UTF-8: truncated sequence"),
        BAD("\xe2\x82\x28", "invalid UTF-8: truncated sequence"),
        BAD("\xf0\x9d\x84\x28", "invalid UTF-8: truncated sequence"),
        BAD("\xc3\xa9\xc2\x9b\x00", "contains a NUL byte"),
};

static void test_text(void **state) {
        (void) state;
        RUN(jb_valid_text, text_cases);
        assert_true(jb_valid_text(NULL, 0, NULL));
        assert_false(jb_valid_text(NULL, 3, NULL));
        /* The truncated-sequence checks look no further than len. */
        expect(jb_valid_text, "\xe2\x82\xac", 2, false, "invalid UTF-8: truncated sequence");
        expect(jb_valid_text, "\xf0\x9d\x84\x9e", 1, false, "invalid UTF-8: truncated sequence");
}

/* Every byte value as a one-byte string: exactly the printable ASCII range passes. */
static void test_text_every_byte(void **state) {
        (void) state;
        for (unsigned b = 0; b < 256; b++) {
                char c = (char) b;

                assert_int_equal(jb_valid_text(&c, 1, NULL), b >= 0x20 && b < 0x7F);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_domain),
                cmocka_unit_test(test_domain_lengths),
                cmocka_unit_test(test_username),
                cmocka_unit_test(test_email_local),
                cmocka_unit_test(test_email),
                cmocka_unit_test(test_ipv4),
                cmocka_unit_test(test_ipv6),
                cmocka_unit_test(test_ip),
                cmocka_unit_test(test_path_segment),
                cmocka_unit_test(test_rel_path),
                cmocka_unit_test(test_token),
                cmocka_unit_test(test_text),
                cmocka_unit_test(test_text_every_byte),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
