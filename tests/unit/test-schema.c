/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <jabali/schema.h>

#define N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- the schemas under test -------------------------------------------- */

static const char *const modes[] = { "static", "php", "proxy", NULL };

static const jb_param ssl_fields[] = {
        JB_P_STRING("cert", JB_CHECK_REL_PATH, JB_REQUIRED, "certificate path"),
        JB_P_STRING("key", JB_CHECK_NONE, JB_REQUIRED | JB_SECRET, "private key"),
        JB_P_END,
};

static const jb_param alias_item = JB_P_STRING(NULL, JB_CHECK_DOMAIN, 0, NULL);

static const jb_param user_fields[] = {
        JB_P_STRING("name", JB_CHECK_USERNAME, JB_REQUIRED, NULL),
        JB_P_STRING("password", JB_CHECK_NONE, JB_SECRET, NULL),
        JB_P_END,
};

static const jb_param user_item = JB_P_OBJECT(NULL, user_fields, 0, NULL);

static const jb_param site_params[] = {
        JB_P_STRING("domain", JB_CHECK_DOMAIN, JB_REQUIRED, "the site's domain"),
        JB_P_ARRAY("aliases", &alias_item, 0, 0, 3, "other names"),
        JB_P_INT("port", JB_CHECK_PORT, 0, 0, 0, "listen port"),
        JB_P_INT("workers", JB_CHECK_NONE, 0, 1, 64, "worker processes"),
        JB_P_INT("offset", JB_CHECK_NONE, 0, 0, 0, NULL),
        JB_P_BOOL("enabled", 0, "serve the site"),
        JB_P_ENUM("mode", modes, 0, "how the site is served"),
        JB_P_STRLEN("title", JB_CHECK_NONE, 0, 1, 16, NULL),
        JB_P_STRING("note", JB_CHECK_NONE, 0, NULL),
        JB_P_OBJECT("ssl", ssl_fields, 0, NULL),
        JB_P_ARRAY("users", &user_item, 0, 0, 0, NULL),
        JB_P_STRING("password", JB_CHECK_NONE, JB_SECRET, NULL),
        JB_P_END,
};

/* ---- helpers ----------------------------------------------------------- */

static json_object *parse(const char *text) {
        json_object *o = json_tokener_parse(text);

        if (!o && strcmp(text, "null") != 0) {
                print_error("test JSON does not parse: %s\n", text);
                fail();
        }
        return o;
}

static char *to_text(json_object *o) {
        const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                          JSON_C_TO_STRING_NOSLASHESCAPE);
        char *copy = strdup(s);

        assert_non_null(copy);
        return copy;
}

/* Validates `obj` (taking it) and compares the outcome: msg NULL = accepted. */
static void check_obj(const jb_param *schema, json_object *obj, const char *code, const char *msg,
                      const char *what) {
        jb_err err = JB_ERR_INIT;
        int r = jb_schema_validate(schema, obj, &err);

        if (!msg) {
                if (r != 0 || jb_err_isset(&err)) {
                        print_error("%s: rejected: %s: %s\n", what, err.code, err.msg);
                        fail();
                }
        } else if (r != -1 || strcmp(err.code, code) != 0 || strcmp(err.msg, msg) != 0) {
                print_error("%s:\n  got  %d %s: %s\n  want -1 %s: %s\n",
                            what, r, err.code, err.msg, code, msg);
                fail();
        }
        json_object_put(obj);
}

typedef struct vcase {
        const char *json;
        const char *msg;        /* NULL: accepted; else the INVALID_PARAMS message */
} vcase;

static void run_cases(const jb_param *schema, const vcase *cases, size_t n) {
        for (size_t i = 0; i < n; i++)
                check_obj(schema, parse(cases[i].json), "INVALID_PARAMS", cases[i].msg, cases[i].json);
}

/* {"<name>": "<n copies of c>"} built without a JSON escape in sight. */
static json_object *obj_with_string(const char *name, char c, size_t n, const char *extra_domain) {
        json_object *o = json_object_new_object();
        char *s = malloc(n + 1);

        assert_non_null(o);
        assert_non_null(s);
        memset(s, c, n);
        s[n] = '\0';
        if (extra_domain)
                json_object_object_add(o, "domain", json_object_new_string(extra_domain));
        json_object_object_add(o, name, json_object_new_string_len(s, (int) n));
        free(s);
        return o;
}

/* ---- validation: the site schema --------------------------------------- */

#define D "\"domain\":\"example.com\""

static const vcase site_cases[] = {
        { "{" D "}", NULL },
        { "{" D ",\"aliases\":[\"www.example.com\",\"xn--bcher-kva.example\"],\"port\":443,"
          "\"workers\":4,\"offset\":-5,\"enabled\":true,\"mode\":\"php\",\"title\":\"My site\","
          "\"note\":\"\",\"ssl\":{\"cert\":\"certs/site.pem\",\"key\":\"k\"},"
          "\"users\":[{\"name\":\"bob\",\"password\":\"pw\"},{\"name\":\"_amy\"}],"
          "\"password\":\"hunter2\"}", NULL },

        /* required, unknown, and their order */
        { "{}", "missing required parameter 'domain'" },
        { "{\"foo\":1}", "missing required parameter 'domain'" },
        { "{\"port\":0}", "missing required parameter 'domain'" },
        { "{" D ",\"foo\":1}", "unknown parameter 'foo'" },
        { "{\"zzz\":1," D ",\"port\":0}", "port: must be between 1 and 65535" },
        { "{" D ",\"Domain\":\"x\"}", "unknown parameter 'Domain'" },
        { "{" D ",\"a\\u0001'b\":1}", "unknown parameter 'a??b'" },
        { "{" D ",\"caf\xc3\xa9\":1}", "unknown parameter 'caf?\?'" },
        { "{" D ",\"\":1}", "unknown parameter ''" },

        /* null and types */
        { "{\"domain\":null}", "domain: null is not an accepted value" },
        { "{\"domain\":5}", "domain: expected a string" },
        { "{\"domain\":[\"a.com\"]}", "domain: expected a string" },
        { "{\"domain\":{}}", "domain: expected a string" },
        { "{\"domain\":true}", "domain: expected a string" },

        /* string checks */
        { "{\"domain\":\"Example.com\"}",
          "domain: not a valid domain name: upper-case letters; send the lower-case form" },
        { "{\"domain\":\"1.2.3.4\"}", "domain: not a valid domain name: top-level label is all digits" },
        { "{\"domain\":\"exa\\u0000mple.com\"}", "domain: not valid text: contains a NUL byte" },
        { "{\"domain\":\"example.com\\u0000\"}", "domain: not valid text: contains a NUL byte" },
        { "{\"domain\":\"\xc0\xaf.com\"}", "domain: not valid text: invalid UTF-8: overlong encoding" },
        { "{\"domain\":\"\xed\xa0\x80.com\"}", "domain: not valid text: invalid UTF-8: encoded surrogate" },
        { "{\"domain\":\"b\xc3\xbc" "cher.example\"}",
          "domain: not a valid domain name: U-labels are not accepted; send the IDNA A-label (xn--...)" },

        /* arrays */
        { "{" D ",\"aliases\":[]}", NULL },
        { "{" D ",\"aliases\":[\"a.com\",\"b.com\","
          "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com\"]}",
          "aliases[2]: not a valid domain name: label longer than 63 bytes" },
        { "{" D ",\"aliases\":[\"a.com\",\"b.com\",\"c.com\",\"d.com\"]}",
          "aliases: too many elements (maximum 3)" },
        { "{" D ",\"aliases\":\"a.com\"}", "aliases: expected an array" },
        { "{" D ",\"aliases\":{}}", "aliases: expected an array" },
        { "{" D ",\"aliases\":[null]}", "aliases[0]: null is not an accepted value" },
        { "{" D ",\"aliases\":[1]}", "aliases[0]: expected a string" },
        { "{" D ",\"aliases\":[\"a.com\",\"xn--.com\"]}",
          "aliases[1]: not a valid domain name: empty IDNA A-label" },

        /* ints */
        { "{" D ",\"port\":1}", NULL },
        { "{" D ",\"port\":65535}", NULL },
        { "{" D ",\"port\":0}", "port: must be between 1 and 65535" },
        { "{" D ",\"port\":65536}", "port: must be between 1 and 65535" },
        { "{" D ",\"port\":-1}", "port: must be between 1 and 65535" },
        { "{" D ",\"port\":4294967376}", "port: must be between 1 and 65535" },
        { "{" D ",\"port\":\"80\"}", "port: expected an integer" },
        { "{" D ",\"port\":80.0}", "port: expected an integer" },
        { "{" D ",\"port\":1e3}", "port: expected an integer" },
        { "{" D ",\"port\":true}", "port: expected an integer" },
        { "{" D ",\"port\":null}", "port: null is not an accepted value" },
        { "{" D ",\"workers\":1}", NULL },
        { "{" D ",\"workers\":64}", NULL },
        { "{" D ",\"workers\":0}", "workers: must be between 1 and 64" },
        { "{" D ",\"workers\":65}", "workers: must be between 1 and 64" },
        { "{" D ",\"offset\":9223372036854775807}", NULL },
        { "{" D ",\"offset\":-9223372036854775808}", NULL },
        { "{" D ",\"offset\":0}", NULL },
        { "{" D ",\"offset\":9223372036854775808}",
          "offset: must be between -9223372036854775808 and 9223372036854775807" },
        { "{" D ",\"offset\":18446744073709551615}",
          "offset: must be between -9223372036854775808 and 9223372036854775807" },
        { "{" D ",\"offset\":99999999999999999999999}",
          "offset: must be between -9223372036854775808 and 9223372036854775807" },

        /* bools */
        { "{" D ",\"enabled\":false}", NULL },
        { "{" D ",\"enabled\":\"true\"}", "enabled: expected a boolean" },
        { "{" D ",\"enabled\":1}", "enabled: expected a boolean" },
        { "{" D ",\"enabled\":null}", "enabled: null is not an accepted value" },

        /* enums */
        { "{" D ",\"mode\":\"proxy\"}", NULL },
        { "{" D ",\"mode\":\"PHP\"}", "mode: must be one of 'static', 'php', 'proxy'" },
        { "{" D ",\"mode\":\"ph\"}", "mode: must be one of 'static', 'php', 'proxy'" },
        { "{" D ",\"mode\":\"phpx\"}", "mode: must be one of 'static', 'php', 'proxy'" },
        { "{" D ",\"mode\":\"\"}", "mode: must be one of 'static', 'php', 'proxy'" },
        { "{" D ",\"mode\":\"php\\u0000\"}", "mode: not valid text: contains a NUL byte" },
        { "{" D ",\"mode\":1}", "mode: expected a string" },

        /* string length bounds, in bytes */
        { "{" D ",\"title\":\"x\"}", NULL },
        { "{" D ",\"title\":\"0123456789abcdef\"}", NULL },
        { "{" D ",\"title\":\"\"}", "title: too short (minimum 1 bytes)" },
        { "{" D ",\"title\":\"0123456789abcdefg\"}", "title: too long (maximum 16 bytes)" },
        { "{" D ",\"title\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"}",
          "title: too long (maximum 16 bytes)" },
        { "{" D ",\"title\":\"a\\u0001\"}", "title: not valid text: contains a control character" },
        { "{" D ",\"title\":\"a\\tb\"}", "title: not valid text: contains a control character" },
        { "{" D ",\"title\":\"\\u007f\"}", "title: not valid text: contains a control character" },
        { "{" D ",\"note\":\"\xf4\x90\x80\x80\"}",
          "note: not valid text: invalid UTF-8: code point above U+10FFFF" },

        /* objects */
        { "{" D ",\"ssl\":\"x\"}", "ssl: expected an object" },
        { "{" D ",\"ssl\":[]}", "ssl: expected an object" },
        { "{" D ",\"ssl\":null}", "ssl: null is not an accepted value" },
        { "{" D ",\"ssl\":{}}", "ssl: missing required parameter 'cert'" },
        { "{" D ",\"ssl\":{\"cert\":\"a\"}}", "ssl: missing required parameter 'key'" },
        { "{" D ",\"ssl\":{\"cert\":1,\"key\":\"k\"}}", "ssl.cert: expected a string" },
        { "{" D ",\"ssl\":{\"cert\":\"a\",\"key\":\"k\",\"x\":1}}", "ssl: unknown parameter 'x'" },
        { "{" D ",\"ssl\":{\"cert\":\"../etc\",\"key\":\"k\"}}",
          "ssl.cert: not a valid relative path: path segment is '.' or '..'" },
        { "{" D ",\"ssl\":{\"cert\":\"a\",\"key\":null}}", "ssl.key: null is not an accepted value" },

        /* arrays of objects */
        { "{" D ",\"users\":[{\"name\":\"bob\",\"password\":\"x\"},{\"name\":\"Bob\"}]}",
          "users[1].name: not a valid user name: must start with a lower-case letter or '_'" },
        { "{" D ",\"users\":[5]}", "users[0]: expected an object" },
        { "{" D ",\"users\":[{}]}", "users[0]: missing required parameter 'name'" },
        { "{" D ",\"users\":[{\"name\":\"bob\",\"x\":1}]}", "users[0]: unknown parameter 'x'" },
        { "{" D ",\"password\":5}", "password: expected a string" },
};

static void test_validate_site(void **state) {
        (void) state;
        run_cases(site_params, site_cases, N_ELEMENTS(site_cases));
}

static void test_validate_not_object(void **state) {
        (void) state;
        check_obj(site_params, parse("[]"), "INVALID_PARAMS", "parameters must be a JSON object", "[]");
        check_obj(site_params, parse("\"x\""), "INVALID_PARAMS", "parameters must be a JSON object", "str");
        check_obj(site_params, parse("1"), "INVALID_PARAMS", "parameters must be a JSON object", "1");
        check_obj(site_params, parse("true"), "INVALID_PARAMS", "parameters must be a JSON object", "true");
}

static void test_validate_null_obj(void **state) {
        (void) state;
        static const jb_param optional[] = {
                JB_P_STRING("a", JB_CHECK_NONE, 0, NULL),
                JB_P_END,
        };

        check_obj(site_params, NULL, "INVALID_PARAMS", "missing required parameter 'domain'", "NULL");
        check_obj(optional, NULL, NULL, NULL, "NULL, nothing required");
        check_obj(optional, parse("{}"), NULL, NULL, "{}");
}

static void test_validate_null_schema(void **state) {
        (void) state;
        check_obj(NULL, parse("{}"), NULL, NULL, "empty schema, {}");
        check_obj(NULL, NULL, NULL, NULL, "empty schema, NULL");
        check_obj(NULL, parse("{\"a\":1}"), "INVALID_PARAMS", "unknown parameter 'a'", "empty schema");
}

static void test_validate_null_err(void **state) {
        (void) state;
        json_object *o = parse("{\"domain\":\"X\"}");

        assert_int_equal(jb_schema_validate(site_params, o, NULL), -1);
        json_object_put(o);
        o = parse("{\"domain\":\"x.com\"}");
        assert_int_equal(jb_schema_validate(site_params, o, NULL), 0);
        json_object_put(o);
}

static void test_validate_long_strings(void **state) {
        (void) state;
        char want[200];

        /* Default string bounds: 0..4096. */
        check_obj(site_params, obj_with_string("note", 'n', 4096, "a.com"), NULL, NULL, "4096 bytes");
        check_obj(site_params, obj_with_string("note", 'n', 4097, "a.com"), "INVALID_PARAMS",
                  "note: too long (maximum 4096 bytes)", "4097 bytes");
        check_obj(site_params, obj_with_string("note", 'n', 1000000, "a.com"), "INVALID_PARAMS",
                  "note: too long (maximum 4096 bytes)", "1 MB");

        /* A hostile member name is cut in the message. */
        snprintf(want, sizeof want, "unknown parameter '%.*s...'", 64,
                 "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk");
        {
                json_object *o = json_object_new_object();
                char key[5001];

                memset(key, 'k', 5000);
                key[5000] = '\0';
                json_object_object_add(o, "domain", json_object_new_string("a.com"));
                json_object_object_add(o, key, json_object_new_int(1));
                check_obj(site_params, o, "INVALID_PARAMS", want, "long key");
        }
}

/* ---- validation: every named check ------------------------------------- */

static const jb_param checks_params[] = {
        JB_P_STRING("domain", JB_CHECK_DOMAIN, 0, NULL),
        JB_P_STRING("user", JB_CHECK_USERNAME, 0, NULL),
        JB_P_STRING("local", JB_CHECK_EMAIL_LOCAL, 0, NULL),
        JB_P_STRING("email", JB_CHECK_EMAIL, 0, NULL),
        JB_P_STRING("ip", JB_CHECK_IP, 0, NULL),
        JB_P_STRING("ipv4", JB_CHECK_IPV4, 0, NULL),
        JB_P_STRING("ipv6", JB_CHECK_IPV6, 0, NULL),
        JB_P_STRING("segment", JB_CHECK_PATH_SEGMENT, 0, NULL),
        JB_P_STRING("path", JB_CHECK_REL_PATH, 0, NULL),
        JB_P_STRLEN("token", JB_CHECK_TOKEN, 0, 1, 8, NULL),
        JB_P_STRING("text", JB_CHECK_NONE, 0, NULL),
        JB_P_END,
};

static const vcase checks_cases[] = {
        { "{\"domain\":\"a.example\",\"user\":\"www-data\",\"local\":\"John.Doe\","
          "\"email\":\"a+b@example.org\",\"ip\":\"::1\",\"ipv4\":\"10.0.0.1\",\"ipv6\":\"fe80::1\","
          "\"segment\":\".htaccess\",\"path\":\"a/b/c\",\"token\":\"php8.2\",\"text\":\"\xe2\x82\xac 5\"}",
          NULL },
        { "{\"domain\":\"a..b\"}", "domain: not a valid domain name: empty label" },
        { "{\"domain\":\"-a.com\"}", "domain: not a valid domain name: label starts with a hyphen" },
        { "{\"domain\":\"ab--c.com\"}",
          "domain: not a valid domain name: '--' in positions 3 and 4 is reserved for IDNA A-labels (xn--...)" },
        { "{\"user\":\"1abc\"}", "user: not a valid user name: must start with a lower-case letter or '_'" },
        { "{\"user\":\"\"}", "user: not a valid user name: empty" },
        { "{\"local\":\"a..b\"}", "local: not a valid email local part: local part contains '..'" },
        { "{\"email\":\"nobody\"}", "email: not a valid email address: missing '@'" },
        { "{\"email\":\"a@b@c.com\"}", "email: not a valid email address: more than one '@'" },
        { "{\"ip\":\"::1%eth0\"}", "ip: not a valid IP address: zone ids are not accepted" },
        { "{\"ip\":\"1.2.3.04\"}", "ip: not a valid IP address: octet with a leading zero" },
        { "{\"ipv4\":\"::1\"}", "ipv4: not a valid IPv4 address: not a dotted-quad IPv4 address" },
        { "{\"ipv4\":\"256.0.0.1\"}", "ipv4: not a valid IPv4 address: octet greater than 255" },
        { "{\"ipv6\":\"1.2.3.4\"}", "ipv6: not a valid IPv6 address: not an IPv6 address" },
        { "{\"segment\":\"..\"}", "segment: not a valid path segment: path segment is '.' or '..'" },
        { "{\"segment\":\"a/b\"}", "segment: not a valid path segment: path segment contains '/'" },
        { "{\"path\":\"/etc/passwd\"}", "path: not a valid relative path: absolute path (leading '/')" },
        { "{\"path\":\"a//b\"}", "path: not a valid relative path: empty path segment ('//')" },
        { "{\"token\":\"-rf\"}", "token: not a valid token: starts with '-' or '.'" },
        { "{\"token\":\"a b\"}", "token: not a valid token: invalid character "
                                   "(only A-Z, a-z, 0-9, '_', '.' and '-' are allowed)" },
        { "{\"token\":\"123456789\"}", "token: too long (maximum 8 bytes)" },
        { "{\"text\":\"\xc0\xaf\"}", "text: not valid text: invalid UTF-8: overlong encoding" },
        { "{\"text\":\"\\ud800\"}", NULL },     /* json-c maps a lone \ud800 escape to U+FFFD */
        { "{\"text\":\"\\u0000\"}", "text: not valid text: contains a NUL byte" },
};

static void test_validate_checks(void **state) {
        (void) state;
        run_cases(checks_params, checks_cases, N_ELEMENTS(checks_cases));
}

/* ---- validation: arrays, nesting, broken schemas ------------------------ */

static const jb_param token_item = JB_P_STRING(NULL, JB_CHECK_TOKEN, 0, NULL);
static const jb_param int_item = JB_P_INT(NULL, JB_CHECK_NONE, 0, 0, 9, NULL);
static const jb_param int_row = JB_P_ARRAY(NULL, &int_item, 0, 1, 3, NULL);

static const jb_param arrays_params[] = {
        JB_P_ARRAY("list", &token_item, JB_REQUIRED, 1, 2, NULL),
        JB_P_ARRAY("matrix", &int_row, 0, 0, 0, NULL),
        JB_P_ARRAY("many", &int_item, 0, 0, 0, NULL),
        JB_P_END,
};

static const vcase arrays_cases[] = {
        { "{\"list\":[\"a\"]}", NULL },
        { "{\"list\":[\"a\",\"b\"],\"matrix\":[[1],[2,3,4]]}", NULL },
        { "{\"list\":[]}", "list: too few elements (minimum 1)" },
        { "{\"list\":[\"a\",\"b\",\"c\"]}", "list: too many elements (maximum 2)" },
        { "{\"list\":[\"a\",\".b\"]}", "list[1]: not a valid token: starts with '-' or '.'" },
        { "{\"list\":[\"a\"],\"matrix\":[[1],[\"2\"]]}", "matrix[1][0]: expected an integer" },
        { "{\"list\":[\"a\"],\"matrix\":[[1],[2,10]]}", "matrix[1][1]: must be between 0 and 9" },
        { "{\"list\":[\"a\"],\"matrix\":[[1],[]]}", "matrix[1]: too few elements (minimum 1)" },
        { "{\"list\":[\"a\"],\"matrix\":[1]}", "matrix[0]: expected an array" },
        { "{\"list\":null}", "list: null is not an accepted value" },
};

static json_object *int_array(size_t n) {
        json_object *a = json_object_new_array();

        assert_non_null(a);
        for (size_t i = 0; i < n; i++)
                json_object_array_add(a, json_object_new_int(1));
        return a;
}

static void test_validate_arrays(void **state) {
        (void) state;
        json_object *o;

        run_cases(arrays_params, arrays_cases, N_ELEMENTS(arrays_cases));

        /* Default element bounds: 0..1024. */
        o = parse("{\"list\":[\"a\"]}");
        json_object_object_add(o, "many", int_array(1024));
        check_obj(arrays_params, o, NULL, NULL, "1024 elements");
        o = parse("{\"list\":[\"a\"]}");
        json_object_object_add(o, "many", int_array(1025));
        check_obj(arrays_params, o, "INVALID_PARAMS", "many: too many elements (maximum 1024)", "1025");
}

static const jb_param deep_d[] = { JB_P_STRING("d", JB_CHECK_NONE, JB_REQUIRED, NULL), JB_P_END };
static const jb_param deep_c[] = { JB_P_OBJECT("c", deep_d, 0, NULL), JB_P_END };
static const jb_param deep_b[] = { JB_P_OBJECT("b", deep_c, 0, NULL), JB_P_END };
static const jb_param deep4[] = { JB_P_OBJECT("a", deep_b, 0, NULL), JB_P_END };   /* 4 levels */
static const jb_param deep5[] = { JB_P_OBJECT("z", deep4, 0, NULL), JB_P_END };    /* 5 levels */
static const jb_param empty_fields[] = { JB_P_END };
static const jb_param empty_obj[] = { JB_P_OBJECT("o", empty_fields, 0, NULL), JB_P_END };

static void test_validate_nesting(void **state) {
        (void) state;
        static const vcase deep_cases[] = {
                { "{\"a\":{\"b\":{\"c\":{\"d\":\"x\"}}}}", NULL },
                { "{\"a\":{\"b\":{\"c\":{\"d\":1}}}}", "a.b.c.d: expected a string" },
                { "{\"a\":{\"b\":{\"c\":{}}}}", "a.b.c: missing required parameter 'd'" },
                { "{\"a\":{\"b\":{\"c\":{\"d\":\"x\",\"e\":{}}}}}", "a.b.c: unknown parameter 'e'" },
        };
        static const vcase empty_cases[] = {
                { "{\"o\":{}}", NULL },
                { "{\"o\":{\"x\":1}}", "o: unknown parameter 'x'" },
        };
        jb_err err = JB_ERR_INIT;
        json_object *o;

        run_cases(deep4, deep_cases, N_ELEMENTS(deep_cases));
        run_cases(empty_obj, empty_cases, N_ELEMENTS(empty_cases));

        /* An unchecked schema one level too deep is the module's bug. */
        o = parse("{\"z\":{\"a\":{\"b\":{\"c\":{\"d\":\"x\"}}}}}");
        assert_int_equal(jb_schema_validate(deep5, o, &err), -1);
        assert_string_equal(err.code, "INTERNAL");
        json_object_put(o);
}

static void test_validate_broken_schema(void **state) {
        (void) state;
        static const jb_param no_item[] = { JB_P_ARRAY("l", NULL, 0, 0, 0, NULL), JB_P_END };
        static const jb_param no_fields[] = { JB_P_OBJECT("o", NULL, 0, NULL), JB_P_END };
        static const jb_param no_values[] = { JB_P_ENUM("e", NULL, 0, NULL), JB_P_END };
        static const jb_param port_string[] = { JB_P_STRING("s", JB_CHECK_PORT, 0, NULL), JB_P_END };
        static const jb_param domain_int[] = { JB_P_INT("i", JB_CHECK_DOMAIN, 0, 0, 0, NULL), JB_P_END };
        static const jb_param bad_type[] = { { .name = "t", .type = (jb_type) 99 }, JB_P_END };
        static const struct {
                const jb_param *schema;
                const char *json;
        } cases[] = {
                { no_item, "{\"l\":[1]}" },
                { no_fields, "{\"o\":{}}" },
                { no_values, "{\"e\":\"x\"}" },
                { port_string, "{\"s\":\"80\"}" },
                { domain_int, "{\"i\":1}" },
                { bad_type, "{\"t\":1}" },
        };

        for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
                jb_err err = JB_ERR_INIT;
                json_object *o = parse(cases[i].json);

                assert_int_equal(jb_schema_validate(cases[i].schema, o, &err), -1);
                assert_string_equal(err.code, "INTERNAL");
                assert_int_equal(jb_schema_check(cases[i].schema, NULL), -1);
                json_object_put(o);
        }
}

/* ---- validation: maps --------------------------------------------------- */

static void expect_redacted(const jb_param *schema, const char *in, const char *want);

static const char *const map_keys[] = { "display_errors", "date.timezone", NULL };
static const jb_param map_value = JB_P_STRLEN(NULL, JB_CHECK_NONE, 0, 0, 8, NULL);
static const jb_param map_int = JB_P_INT(NULL, JB_CHECK_NONE, 0, 0, 9, NULL);

static const jb_param maps_params[] = {
        JB_P_MAP("values", JB_CHECK_TOKEN, &map_value, 0, 0, 2, "ini values"),
        JB_P_MAP("counts", JB_CHECK_NONE, &map_int, 0, 1, 3, NULL),
        JB_P_MAP("free", JB_CHECK_NONE, &map_int, 0, 0, 0, NULL),
        { .name = "known", .type = JB_TYPE_MAP, .check = JB_CHECK_ENUM, .enum_values = map_keys,
          .item = &map_value },
        JB_P_END,
};

/* Four levels through a map: a → b (the map) → its value (an object) → s. */
static const jb_param map_leaf[] = { JB_P_STRING("s", JB_CHECK_NONE, JB_SECRET, NULL), JB_P_END };
static const jb_param map_obj_item = JB_P_OBJECT(NULL, map_leaf, 0, NULL);
static const jb_param map_fields[] = { JB_P_MAP("b", JB_CHECK_TOKEN, &map_obj_item, 0, 0, 0, NULL), JB_P_END };
static const jb_param map_deep4[] = { JB_P_OBJECT("a", map_fields, 0, NULL), JB_P_END };
static const jb_param map_deep5[] = { JB_P_OBJECT("x", map_deep4, 0, NULL), JB_P_END };

static const vcase maps_cases[] = {
        { "{\"values\":{}}", NULL },
        { "{\"values\":{\"date.timezone\":\"UTC\",\"max_input_vars\":\"\"}}", NULL },
        { "{\"values\":{\"a\":\"1\",\"b\":\"2\",\"c\":\"3\"}}", "values: too many members (maximum 2)" },
        { "{\"values\":{\"a b\":\"1\"}}",
          "values: member name 'a b': not a valid token: invalid character (only A-Z, a-z, 0-9, '_', '.' and '-' are allowed)" },
        { "{\"values\":{\".a\":\"1\"}}", "values: member name '.a': not a valid token: starts with '-' or '.'" },
        { "{\"values\":{\"\":\"1\"}}", "values: empty member name" },
        { "{\"values\":{\"a\\nb\":\"1\"}}",
          "values: member name 'a?b': not valid text: contains a control character" },
        { "{\"values\":{\"a'b\":\"1\"}}",
          "values: member name 'a?b': not a valid token: invalid character (only A-Z, a-z, 0-9, '_', '.' and '-' are allowed)" },
        { "{\"values\":{\"a\":\"123456789\"}}", "values['a']: too long (maximum 8 bytes)" },
        { "{\"values\":{\"a\":\"x\\ny\"}}", "values['a']: not valid text: contains a control character" },
        { "{\"values\":{\"a\":1}}", "values['a']: expected a string" },
        { "{\"values\":{\"a\":null}}", "values['a']: null is not an accepted value" },
        { "{\"values\":[\"a\"]}", "values: expected an object" },
        { "{\"values\":\"a=1\"}", "values: expected an object" },
        { "{\"counts\":{}}", "counts: too few members (minimum 1)" },
        { "{\"counts\":{\"any name at all\":3}}", NULL },
        { "{\"counts\":{\"a\":1,\"b\":1,\"c\":1,\"d\":1}}", "counts: too many members (maximum 3)" },
        { "{\"counts\":{\"k\":10}}", "counts['k']: must be between 0 and 9" },
        { "{\"known\":{\"date.timezone\":\"UTC\"}}", NULL },
        { "{\"known\":{\"open_basedir\":\"/\"}}",
          "known: member name 'open_basedir': must be one of 'display_errors', 'date.timezone'" },
};

static void test_validate_maps(void **state) {
        (void) state;
        static const jb_param no_item[] = { JB_P_MAP("m", JB_CHECK_NONE, NULL, 0, 0, 0, NULL), JB_P_END };
        char key[JB_MAP_KEY_MAX + 2];
        jb_err err = JB_ERR_INIT;
        json_object *o, *m;

        assert_int_equal(jb_schema_check(maps_params, NULL), 0);
        run_cases(maps_params, maps_cases, N_ELEMENTS(maps_cases));

        /* Member names: 1..255 bytes. */
        memset(key, 'k', sizeof key - 1);
        key[JB_MAP_KEY_MAX] = '\0';
        o = parse("{\"free\":{}}");
        m = json_object_object_get(o, "free");
        json_object_object_add(m, key, json_object_new_int(1));
        check_obj(maps_params, o, NULL, NULL, "255-byte name");
        key[JB_MAP_KEY_MAX] = 'k';
        key[JB_MAP_KEY_MAX + 1] = '\0';
        o = parse("{\"free\":{}}");
        m = json_object_object_get(o, "free");
        json_object_object_add(m, key, json_object_new_int(1));
        check_obj(maps_params, o, "INVALID_PARAMS",
                  "free: member name 'kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk...' "
                  "too long (maximum 255 bytes)", "256-byte name");

        /* Default member bounds: 0..1024. */
        o = parse("{}");
        m = json_object_new_object();
        for (int i = 0; i < 1025; i++) {
                char k[16];

                snprintf(k, sizeof k, "k%d", i);
                json_object_object_add(m, k, json_object_new_int(1));
        }
        json_object_object_add(o, "free", m);
        check_obj(maps_params, o, "INVALID_PARAMS", "free: too many members (maximum 1024)", "1025 members");

        /* An unchecked map with no item is the module's bug. */
        o = parse("{\"m\":{\"a\":1}}");
        assert_int_equal(jb_schema_validate(no_item, o, &err), -1);
        assert_string_equal(err.code, "INTERNAL");
        json_object_put(o);
}

static void test_check_depth_through_maps(void **state) {
        (void) state;
        jb_err err = JB_ERR_INIT;

        assert_int_equal(jb_schema_check(map_deep4, &err), 0);
        assert_int_equal(jb_schema_check(map_deep5, &err), -1);
        assert_string_equal(err.msg, "schema: parameter 'x.a.b['']': nested deeper than 4 levels");
}

static void test_describe_and_redact_maps(void **state) {
        (void) state;
        static const jb_param secret_value = JB_P_STRING(NULL, JB_CHECK_NONE, JB_SECRET, NULL);
        static const jb_param redact_params[] = {
                JB_P_MAP("env", JB_CHECK_TOKEN, &secret_value, 0, 0, 0, NULL),
                JB_P_MAP("plain", JB_CHECK_TOKEN, &map_value, 0, 0, 0, NULL),
                JB_P_MAP("hidden", JB_CHECK_TOKEN, &map_value, JB_SECRET, 0, 0, NULL),
                JB_P_END,
        };
        json_object *d = jb_schema_describe(maps_params);
        char *text = to_text(d);

        assert_string_equal(text,
                "[{\"name\":\"values\",\"type\":\"map\",\"required\":false,\"check\":\"token\",\"min\":0,\"max\":2,"
                        "\"item\":{\"type\":\"string\",\"required\":false,\"min\":0,\"max\":8},\"doc\":\"ini values\"},"
                "{\"name\":\"counts\",\"type\":\"map\",\"required\":false,\"min\":1,\"max\":3,"
                        "\"item\":{\"type\":\"int\",\"required\":false,\"min\":0,\"max\":9}},"
                "{\"name\":\"free\",\"type\":\"map\",\"required\":false,"
                        "\"item\":{\"type\":\"int\",\"required\":false,\"min\":0,\"max\":9}},"
                "{\"name\":\"known\",\"type\":\"map\",\"required\":false,\"check\":\"enum\","
                        "\"enum\":[\"display_errors\",\"date.timezone\"],"
                        "\"item\":{\"type\":\"string\",\"required\":false,\"min\":0,\"max\":8}}]");
        free(text);
        json_object_put(d);

        expect_redacted(redact_params,
                "{\"env\":{\"KEY\":\"s3cret\",\"N\":1},\"plain\":{\"a\":\"b\"},\"hidden\":{\"a\":\"b\"}}",
                "{\"env\":{\"KEY\":\"***\",\"N\":\"***\"},\"plain\":{\"a\":\"b\"},\"hidden\":\"***\"}");
        /* A map of secrets in another shape is hidden whole. */
        expect_redacted(redact_params, "{\"env\":[\"KEY=s3cret\"]}", "{\"env\":\"***\"}");
        /* Through an object, a map, an object: the secret four levels down. */
        expect_redacted(map_deep4, "{\"a\":{\"b\":{\"k\":{\"s\":\"x\",\"t\":1}}}}",
                        "{\"a\":{\"b\":{\"k\":{\"s\":\"***\",\"t\":\"***\"}}}}");
}

/* ---- jb_schema_check ---------------------------------------------------- */

static void test_check_good(void **state) {
        (void) state;
        static const jb_param ports[] = {
                JB_P_INT("p1", JB_CHECK_PORT, 0, 1, 65535, NULL),
                JB_P_INT("p2", JB_CHECK_PORT, 0, 1024, 2048, NULL),
                JB_P_INT("p3", JB_CHECK_PORT, 0, 0, 0, NULL),
                JB_P_INT("n", JB_CHECK_NONE, 0, INT64_MIN, INT64_MAX, NULL),
                JB_P_STRLEN("s", JB_CHECK_NONE, 0, 0, 100000, NULL),
                JB_P_STRLEN("name_2", JB_CHECK_NONE, 0, 5, 5, NULL),
                JB_P_END,
        };
        static const jb_param secret_item = JB_P_STRING(NULL, JB_CHECK_NONE, JB_SECRET, NULL);
        static const jb_param secrets[] = { JB_P_ARRAY("keys", &secret_item, 0, 0, 0, NULL), JB_P_END };
        jb_err err = JB_ERR_INIT;

        assert_int_equal(jb_schema_check(site_params, &err), 0);
        assert_int_equal(jb_schema_check(checks_params, &err), 0);
        assert_int_equal(jb_schema_check(arrays_params, &err), 0);
        assert_int_equal(jb_schema_check(deep4, &err), 0);
        assert_int_equal(jb_schema_check(empty_obj, &err), 0);
        assert_int_equal(jb_schema_check(empty_fields, &err), 0);
        assert_int_equal(jb_schema_check(ports, &err), 0);
        assert_int_equal(jb_schema_check(secrets, &err), 0);
        assert_int_equal(jb_schema_check(maps_params, &err), 0);
        assert_int_equal(jb_schema_check(NULL, &err), 0);
        assert_false(jb_err_isset(&err));
}

static const char *const no_values[] = { NULL };
static const char *const empty_value[] = { "a", "", NULL };
static const char *const dup_values[] = { "a", "b", "a", NULL };
static const char *const ctl_values[] = { "a\n", NULL };
static const jb_param s_item = JB_P_STRING(NULL, JB_CHECK_NONE, 0, NULL);
static const jb_param req_item = JB_P_STRING(NULL, JB_CHECK_NONE, JB_REQUIRED, NULL);
static const jb_param port_item = JB_P_STRING("x", JB_CHECK_PORT, 0, NULL);
static const jb_param bad_fields[] = { JB_P_STRING("X", JB_CHECK_NONE, 0, NULL), JB_P_END };
static const jb_param dup_fields[] = {
        JB_P_STRING("a", JB_CHECK_NONE, 0, NULL), JB_P_STRING("a", JB_CHECK_NONE, 0, NULL), JB_P_END,
};

#define ONE(...) ((const jb_param[]) { __VA_ARGS__, JB_P_END })

static void test_check_bad(void **state) {
        (void) state;
        const struct {
                const jb_param *schema;
                const char *msg;        /* NULL: only the code is compared */
        } cases[] = {
                { ONE(JB_P_STRING("", JB_CHECK_NONE, 0, NULL)), NULL },
                { ONE(JB_P_STRING("Bad", JB_CHECK_NONE, 0, NULL)),
                  "schema: parameter 'Bad': invalid name (want [a-z][a-z0-9_]*, at most 64 bytes)" },
                { ONE(JB_P_STRING("1a", JB_CHECK_NONE, 0, NULL)), NULL },
                { ONE(JB_P_STRING("_a", JB_CHECK_NONE, 0, NULL)), NULL },
                { ONE(JB_P_STRING("a-b", JB_CHECK_NONE, 0, NULL)), NULL },
                { ONE(JB_P_STRING("a.b", JB_CHECK_NONE, 0, NULL)), NULL },
                { ONE(JB_P_STRING("a b", JB_CHECK_NONE, 0, NULL)), NULL },
                { ONE(JB_P_STRING("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                                  JB_CHECK_NONE, 0, NULL)), NULL },        /* 65 bytes */
                { dup_fields, "schema: parameter 'a': declared twice" },
                { ONE(JB_P_OBJECT("ssl", bad_fields, 0, NULL)),
                  "schema: parameter 'ssl.X': invalid name (want [a-z][a-z0-9_]*, at most 64 bytes)" },
                { ONE(JB_P_OBJECT("o", dup_fields, 0, NULL)), "schema: parameter 'o.a': declared twice" },
                { ONE({ .name = "t", .type = (jb_type) 0 }), "schema: parameter 't': invalid type 0" },
                { ONE({ .name = "t", .type = (jb_type) 7 }), NULL },
                { ONE({ .name = "c", .type = JB_TYPE_STRING, .check = _JB_CHECK_MAX }), NULL },
                { ONE({ .name = "c", .type = JB_TYPE_STRING, .check = (jb_check) -1 }), NULL },
                { ONE(JB_P_STRING("f", JB_CHECK_NONE, 1u << 7, NULL)),
                  "schema: parameter 'f': unknown flags 0x80" },
                { ONE(JB_P_STRING("p", JB_CHECK_PORT, 0, NULL)),
                  "schema: parameter 'p': check 'port' does not apply to a string" },
                { ONE(JB_P_INT("i", JB_CHECK_DOMAIN, 0, 0, 0, NULL)),
                  "schema: parameter 'i': check 'domain' does not apply to an int" },
                { ONE({ .name = "i", .type = JB_TYPE_INT, .check = JB_CHECK_ENUM, .enum_values = modes }), NULL },
                { ONE({ .name = "b", .type = JB_TYPE_BOOL, .check = JB_CHECK_TOKEN }), NULL },
                { ONE({ .name = "a", .type = JB_TYPE_ARRAY, .check = JB_CHECK_DOMAIN, .item = &s_item }), NULL },
                { ONE({ .name = "o", .type = JB_TYPE_OBJECT, .check = JB_CHECK_IP, .fields = empty_fields }), NULL },
                { ONE(JB_P_ENUM("e", NULL, 0, NULL)),
                  "schema: parameter 'e': the enum check needs a non-empty list of values" },
                { ONE(JB_P_ENUM("e", no_values, 0, NULL)), NULL },
                { ONE(JB_P_ENUM("e", empty_value, 0, NULL)), NULL },
                { ONE(JB_P_ENUM("e", dup_values, 0, NULL)), "schema: parameter 'e': enum value 'a' listed twice" },
                { ONE(JB_P_ENUM("e", ctl_values, 0, NULL)), NULL },
                { ONE({ .name = "s", .type = JB_TYPE_STRING, .enum_values = modes }), NULL },
                { ONE(JB_P_INT("n", JB_CHECK_NONE, 0, 5, 1, NULL)),
                  "schema: parameter 'n': min 5 is greater than max 1" },
                { ONE(JB_P_STRLEN("s", JB_CHECK_NONE, 0, 10, 9, NULL)), NULL },
                { ONE(JB_P_STRLEN("s", JB_CHECK_NONE, 0, -1, 9, NULL)), "schema: parameter 's': negative min" },
                { ONE(JB_P_ARRAY("a", &s_item, 0, -5, 0, NULL)), NULL },
                { ONE(JB_P_ARRAY("a", &s_item, 0, 3, 2, NULL)), NULL },
                { ONE(JB_P_INT("p", JB_CHECK_PORT, 0, 0, 70000, NULL)),
                  "schema: parameter 'p': port bounds outside 1..65535" },
                { ONE(JB_P_INT("p", JB_CHECK_PORT, 0, 1, 65536, NULL)), NULL },
                { ONE({ .name = "b", .type = JB_TYPE_BOOL, .min = 0, .max = 1 }),
                  "schema: parameter 'b': bounds do not apply to a bool" },
                { ONE({ .name = "o", .type = JB_TYPE_OBJECT, .max = 1, .fields = empty_fields }), NULL },
                { ONE(JB_P_ARRAY("a", NULL, 0, 0, 0, NULL)), "schema: parameter 'a': an array needs an item" },
                { ONE({ .name = "s", .type = JB_TYPE_STRING, .item = &s_item }),
                  "schema: parameter 's': item only applies to an array or a map" },
                { ONE(JB_P_OBJECT("o", NULL, 0, NULL)), "schema: parameter 'o': an object needs fields" },
                { ONE({ .name = "s", .type = JB_TYPE_STRING, .fields = empty_fields }),
                  "schema: parameter 's': fields only apply to an object" },
                { ONE(JB_P_ARRAY("list", &req_item, 0, 0, 0, NULL)),
                  "schema: parameter 'list[]': an array item cannot be required" },
                { ONE(JB_P_ARRAY("list", &port_item, 0, 0, 0, NULL)),
                  "schema: parameter 'list[]': check 'port' does not apply to a string" },
                { deep5, "schema: parameter 'z.a.b.c': nested deeper than 4 levels" },
                /* maps */
                { ONE(JB_P_MAP("m", JB_CHECK_TOKEN, NULL, 0, 0, 0, NULL)), "schema: parameter 'm': a map needs an item" },
                { ONE(JB_P_MAP("m", JB_CHECK_MULTILINE, &s_item, 0, 0, 0, NULL)),
                  "schema: parameter 'm': check 'multiline' does not apply to a map" },
                { ONE(JB_P_MAP("m", JB_CHECK_PORT, &s_item, 0, 0, 0, NULL)), NULL },
                { ONE(JB_P_MAP("m", JB_CHECK_TOKEN, &s_item, 0, -1, 0, NULL)), "schema: parameter 'm': negative min" },
                { ONE(JB_P_MAP("m", JB_CHECK_TOKEN, &s_item, 0, 3, 2, NULL)), NULL },
                { ONE(JB_P_MAP("m", JB_CHECK_TOKEN, &req_item, 0, 0, 0, NULL)), NULL },
                { ONE(JB_P_MAP("m", JB_CHECK_TOKEN, &port_item, 0, 0, 0, NULL)),
                  "schema: parameter 'm['']': check 'port' does not apply to a string" },
                { ONE({ .name = "m", .type = JB_TYPE_MAP, .check = JB_CHECK_ENUM, .item = &s_item }),
                  "schema: parameter 'm': the enum check needs a non-empty list of values" },
                { ONE({ .name = "m", .type = JB_TYPE_MAP, .item = &s_item, .fields = empty_fields }),
                  "schema: parameter 'm': fields only apply to an object" },
                { map_deep5, "schema: parameter 'x.a.b['']': nested deeper than 4 levels" },
        };

        for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
                jb_err err = JB_ERR_INIT;
                int r = jb_schema_check(cases[i].schema, &err);

                if (r != -1 || strcmp(err.code, "INTERNAL") != 0 ||
                    (cases[i].msg && strcmp(err.msg, cases[i].msg) != 0)) {
                        print_error("case %zu: got %d %s: %s, want -1 INTERNAL: %s\n", i, r,
                                    err.code, err.msg, cases[i].msg ? cases[i].msg : "(any)");
                        fail();
                }
                assert_int_equal(jb_schema_check(cases[i].schema, NULL), -1);
        }
}

/* Four levels through arrays: array → item object → fields → leaf. */
static const jb_param arr_leaf[] = { JB_P_STRING("s", JB_CHECK_NONE, JB_SECRET, NULL),
                                     JB_P_STRING("t", JB_CHECK_NONE, 0, NULL), JB_P_END };
static const jb_param arr_obj_item = JB_P_OBJECT(NULL, arr_leaf, 0, NULL);
static const jb_param arr_fields[] = { JB_P_ARRAY("b", &arr_obj_item, 0, 0, 0, NULL), JB_P_END };
static const jb_param arr_deep4[] = { JB_P_OBJECT("a", arr_fields, 0, NULL), JB_P_END };
static const jb_param arr_deep5[] = { JB_P_OBJECT("x", arr_deep4, 0, NULL), JB_P_END };

static void test_check_depth_through_arrays(void **state) {
        (void) state;
        jb_err err = JB_ERR_INIT;

        assert_int_equal(jb_schema_check(arr_deep4, &err), 0);
        assert_int_equal(jb_schema_check(arr_deep5, &err), -1);
        assert_string_equal(err.code, "INTERNAL");
        assert_string_equal(err.msg, "schema: parameter 'x.a.b[]': nested deeper than 4 levels");
}

/* ---- describe ---------------------------------------------------------- */

static const char *const d_modes[] = { "static", "php", NULL };
static const jb_param d_ssl[] = {
        JB_P_STRING("cert", JB_CHECK_REL_PATH, JB_REQUIRED, "certificate"),
        JB_P_STRING("key", JB_CHECK_NONE, JB_SECRET, NULL),
        JB_P_END,
};
static const jb_param d_alias = JB_P_STRLEN("ignored", JB_CHECK_DOMAIN, 0, 1, 253, NULL);
static const jb_param d_params[] = {
        JB_P_STRING("domain", JB_CHECK_DOMAIN, JB_REQUIRED, "the site's domain"),
        JB_P_INT("port", JB_CHECK_PORT, 0, 0, 0, "listen port"),
        JB_P_INT("admin_port", JB_CHECK_PORT, 0, 1024, 65535, NULL),
        JB_P_INT("workers", JB_CHECK_NONE, 0, -1, 64, NULL),
        JB_P_BOOL("enabled", 0, "serve it"),
        JB_P_ENUM("mode", d_modes, JB_REQUIRED, "how"),
        JB_P_ARRAY("aliases", &d_alias, 0, 0, 10, "other names"),
        JB_P_OBJECT("ssl", d_ssl, 0, NULL),
        JB_P_STRLEN("title", JB_CHECK_NONE, 0, 0, 0, NULL),
        JB_P_STRING("password", JB_CHECK_NONE, JB_REQUIRED | JB_SECRET, "a/b \"quoted\""),
        JB_P_END,
};

static const char d_expected[] =
        "["
        "{\"name\":\"domain\",\"type\":\"string\",\"required\":true,\"check\":\"domain\","
                "\"doc\":\"the site's domain\"},"
        "{\"name\":\"port\",\"type\":\"int\",\"required\":false,\"check\":\"port\","
                "\"min\":1,\"max\":65535,\"doc\":\"listen port\"},"
        "{\"name\":\"admin_port\",\"type\":\"int\",\"required\":false,\"check\":\"port\","
                "\"min\":1024,\"max\":65535},"
        "{\"name\":\"workers\",\"type\":\"int\",\"required\":false,\"min\":-1,\"max\":64},"
        "{\"name\":\"enabled\",\"type\":\"bool\",\"required\":false,\"doc\":\"serve it\"},"
        "{\"name\":\"mode\",\"type\":\"string\",\"required\":true,\"check\":\"enum\","
                "\"enum\":[\"static\",\"php\"],\"doc\":\"how\"},"
        "{\"name\":\"aliases\",\"type\":\"array\",\"required\":false,\"min\":0,\"max\":10,"
                "\"item\":{\"type\":\"string\",\"required\":false,\"check\":\"domain\","
                        "\"min\":1,\"max\":253},"
                "\"doc\":\"other names\"},"
        "{\"name\":\"ssl\",\"type\":\"object\",\"required\":false,\"fields\":["
                "{\"name\":\"cert\",\"type\":\"string\",\"required\":true,\"check\":\"rel_path\","
                        "\"doc\":\"certificate\"},"
                "{\"name\":\"key\",\"type\":\"string\",\"required\":false,\"secret\":true}]},"
        "{\"name\":\"title\",\"type\":\"string\",\"required\":false},"
        "{\"name\":\"password\",\"type\":\"string\",\"required\":true,\"secret\":true,"
                "\"doc\":\"a/b \\\"quoted\\\"\"}"
        "]";

static void test_describe(void **state) {
        (void) state;
        json_object *d = jb_schema_describe(d_params), *again;
        char *text, *text2;

        assert_non_null(d);
        assert_int_equal(jb_schema_check(d_params, NULL), 0);
        text = to_text(d);
        assert_string_equal(text, d_expected);

        /* Deterministic: a second rendering is byte-identical. */
        again = jb_schema_describe(d_params);
        text2 = to_text(again);
        assert_string_equal(text, text2);
        free(text);
        free(text2);
        json_object_put(d);
        json_object_put(again);
}

static void test_describe_edges(void **state) {
        (void) state;
        json_object *d;
        char *text;

        d = jb_schema_describe(NULL);
        text = to_text(d);
        assert_string_equal(text, "[]");
        free(text);
        json_object_put(d);

        d = jb_schema_describe(empty_obj);
        text = to_text(d);
        assert_string_equal(text, "[{\"name\":\"o\",\"type\":\"object\",\"required\":false,\"fields\":[]}]");
        free(text);
        json_object_put(d);

        d = jb_schema_describe(deep4);
        assert_non_null(d);
        json_object_put(d);

        /* Malformed schemas have no description. */
        assert_null(jb_schema_describe(deep5));
        assert_null(jb_schema_describe(ONE(JB_P_ARRAY("a", NULL, 0, 0, 0, NULL))));
        assert_null(jb_schema_describe(ONE(JB_P_OBJECT("o", NULL, 0, NULL))));
        assert_null(jb_schema_describe(ONE({ .name = "t", .type = (jb_type) 42 })));
}

static void test_check_names(void **state) {
        (void) state;
        static const char *const want[] = {
                [JB_CHECK_NONE] = "none", [JB_CHECK_DOMAIN] = "domain",
                [JB_CHECK_USERNAME] = "username", [JB_CHECK_EMAIL_LOCAL] = "email_local",
                [JB_CHECK_EMAIL] = "email", [JB_CHECK_IP] = "ip", [JB_CHECK_IPV4] = "ipv4",
                [JB_CHECK_IPV6] = "ipv6", [JB_CHECK_PORT] = "port",
                [JB_CHECK_PATH_SEGMENT] = "path_segment", [JB_CHECK_REL_PATH] = "rel_path",
                [JB_CHECK_ENUM] = "enum", [JB_CHECK_TOKEN] = "token", [JB_CHECK_MULTILINE] = "multiline",
        };

        assert_int_equal(N_ELEMENTS(want), _JB_CHECK_MAX);
        for (int c = 0; c < _JB_CHECK_MAX; c++)
                assert_string_equal(jb_check_name((jb_check) c), want[c]);
        assert_null(jb_check_name(_JB_CHECK_MAX));
        assert_null(jb_check_name((jb_check) -1));
}

/* ---- redact ------------------------------------------------------------ */

static void expect_redacted(const jb_param *schema, const char *in, const char *want) {
        json_object *o = in ? parse(in) : NULL, *r;
        char *before = in ? to_text(o) : NULL, *after, *got;

        r = jb_schema_redact(schema, o);
        assert_non_null(r);
        assert_true(r != o);
        got = to_text(r);
        if (strcmp(got, want) != 0) {
                print_error("redact %s:\n  got  %s\n  want %s\n", in ? in : "NULL", got, want);
                fail();
        }
        /* The input is left alone. */
        if (in) {
                after = to_text(o);
                assert_string_equal(before, after);
                free(after);
        }
        free(before);
        free(got);
        json_object_put(r);
        json_object_put(o);
}

static void test_redact(void **state) {
        (void) state;

        expect_redacted(site_params,
                "{\"domain\":\"example.com\",\"password\":\"hunter2\","
                "\"ssl\":{\"cert\":\"c\",\"key\":\"PRIVATE\",\"extra\":\"x\"},"
                "\"users\":[{\"name\":\"bob\",\"password\":\"pw1\"},{\"name\":\"amy\"},5,null,"
                        "{\"password\":[\"deep\"]}],"
                "\"extra\":{\"password\":\"not-in-schema\"},\"aliases\":[\"a.com\"],\"port\":80}",
                "{\"domain\":\"example.com\",\"password\":\"***\","
                "\"ssl\":{\"cert\":\"c\",\"key\":\"***\",\"extra\":\"***\"},"
                "\"users\":[{\"name\":\"bob\",\"password\":\"***\"},{\"name\":\"amy\"},\"***\",\"***\","
                        "{\"password\":\"***\"}],"
                "\"extra\":\"***\",\"aliases\":[\"a.com\"],\"port\":80}");

        /* Whatever its type, a secret is hidden: refused requests are audited too. */
        expect_redacted(site_params, "{\"password\":12345}", "{\"password\":\"***\"}");
        expect_redacted(site_params, "{\"password\":{\"a\":\"b\"}}", "{\"password\":\"***\"}");
        expect_redacted(site_params, "{\"password\":null}", "{\"password\":\"***\"}");
        /* A container holding a secret, in the wrong shape, is hidden whole. */
        expect_redacted(site_params, "{\"ssl\":[{\"key\":\"k\"}]}", "{\"ssl\":\"***\"}");
        expect_redacted(site_params, "{\"ssl\":\"key=k\"}", "{\"ssl\":\"***\"}");
        expect_redacted(site_params, "{\"ssl\":null,\"note\":null}", "{\"ssl\":\"***\",\"note\":null}");
        expect_redacted(site_params, "{\"pasword\":\"typo\"}", "{\"pasword\":\"***\"}");
        expect_redacted(site_params, "{\"users\":{\"password\":\"x\"}}", "{\"users\":\"***\"}");
        /* Without a secret beneath, a wrong shape is copied as it is. */
        expect_redacted(site_params, "{\"aliases\":{\"a\":1},\"domain\":[1]}",
                        "{\"aliases\":{\"a\":1},\"domain\":[1]}");

        expect_redacted(site_params, NULL, "{}");
        expect_redacted(site_params, "{}", "{}");
        expect_redacted(site_params, "[1,{\"password\":\"x\"}]", "[1,{\"password\":\"x\"}]");
        expect_redacted(site_params, "\"password\"", "\"password\"");
        expect_redacted(NULL, "{\"password\":\"x\",\"a\":[1,2]}", "{\"password\":\"***\",\"a\":\"***\"}");
        expect_redacted(site_params, "{\"note\":\"a\\u0000b\"}", "{\"note\":\"a\\u0000b\"}");
}

static void test_redact_arrays_and_depth(void **state) {
        (void) state;
        static const jb_param secret_item = JB_P_STRING(NULL, JB_CHECK_NONE, JB_SECRET, NULL);
        static const jb_param plain_item = JB_P_STRING(NULL, JB_CHECK_NONE, 0, NULL);
        static const jb_param arrays[] = {
                JB_P_ARRAY("tokens", &secret_item, 0, 0, 0, NULL),
                JB_P_ARRAY("keys", &plain_item, JB_SECRET, 0, 0, NULL),
                JB_P_ARRAY("names", &plain_item, 0, 0, 0, NULL),
                JB_P_END,
        };

        expect_redacted(arrays,
                "{\"tokens\":[\"t1\",\"t2\",3],\"keys\":[\"k1\"],\"names\":[\"n\"]}",
                "{\"tokens\":[\"***\",\"***\",\"***\"],\"keys\":\"***\",\"names\":[\"n\"]}");
        expect_redacted(arrays, "{\"tokens\":\"t\",\"names\":\"n\"}", "{\"tokens\":\"***\",\"names\":\"n\"}");

        /* Four levels down, through an array of objects. */
        expect_redacted(arr_deep4,
                "{\"a\":{\"b\":[{\"s\":\"x\",\"t\":\"y\"},{\"t\":\"z\",\"s\":{\"n\":1}}],\"c\":1}}",
                "{\"a\":{\"b\":[{\"s\":\"***\",\"t\":\"y\"},{\"t\":\"z\",\"s\":\"***\"}],\"c\":\"***\"}}");

        /* Past the depth limit nothing can be vouched for. */
        expect_redacted(arr_deep5,
                "{\"x\":{\"a\":{\"b\":[{\"s\":\"x\",\"t\":\"y\"}]}}}",
                "{\"x\":{\"a\":{\"b\":[{\"s\":\"***\",\"t\":\"***\"}]}}}");
}

/* The copy shares nothing with the input. */
static void test_redact_is_deep(void **state) {
        (void) state;
        json_object *o = parse("{\"aliases\":[\"a.com\"],\"extra\":{\"k\":[1]}}"), *r, *a, *b;

        r = jb_schema_redact(site_params, o);
        assert_non_null(r);
        assert_true(json_object_object_get_ex(o, "aliases", &a));
        assert_true(json_object_object_get_ex(r, "aliases", &b));
        assert_true(a != b);
        json_object_array_add(b, json_object_new_string("b.com"));
        assert_int_equal(json_object_array_length(a), 1);
        assert_true(json_object_object_get_ex(o, "extra", &a));
        assert_true(json_object_object_get_ex(r, "extra", &b));
        assert_true(a != b);
        json_object_put(o);
        /* r must survive its source. */
        assert_int_equal(json_object_array_length(json_object_object_get(r, "aliases")), 2);
        json_object_put(r);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_validate_site),
                cmocka_unit_test(test_validate_not_object),
                cmocka_unit_test(test_validate_null_obj),
                cmocka_unit_test(test_validate_null_schema),
                cmocka_unit_test(test_validate_null_err),
                cmocka_unit_test(test_validate_long_strings),
                cmocka_unit_test(test_validate_checks),
                cmocka_unit_test(test_validate_arrays),
                cmocka_unit_test(test_validate_nesting),
                cmocka_unit_test(test_validate_broken_schema),
                cmocka_unit_test(test_validate_maps),
                cmocka_unit_test(test_check_depth_through_maps),
                cmocka_unit_test(test_describe_and_redact_maps),
                cmocka_unit_test(test_check_good),
                cmocka_unit_test(test_check_bad),
                cmocka_unit_test(test_check_depth_through_arrays),
                cmocka_unit_test(test_describe),
                cmocka_unit_test(test_describe_edges),
                cmocka_unit_test(test_check_names),
                cmocka_unit_test(test_redact),
                cmocka_unit_test(test_redact_arrays_and_depth),
                cmocka_unit_test(test_redact_is_deep),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
