/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Tests for the mail module's pure parts: password hash formats, local
 * parts and dates (mail-check.c), the passwd-file (mail-passwd.c), Postfix
 * maps (mail-maps.c), Sieve rendering and quoting (mail-sieve.c) and JMAP
 * requests and answers (mail-jmap.c), each fed hostile input. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "mail-internal.h"

#define SHA "$6$Fp/0oAtBfe9Z1gtD$pZ62w0vYvk51Y5hyGbltsY32l39/eoXJM6YqjTgXwZyFoXCxC/k.GOGVfLAjDacx.jHDl9LcRVKWs.VyJgQ/i0"
#define BCRYPT "$2y$05$l7MrfrfMbfDR9k2MteIv8e.X6M1rD341P7NQk/SNT6I2/jevvj1.S"
#define ARGON "$argon2id$v=19$m=65536,t=3,p=1$XcPVSlbCtTZvaeny5M/pBw$IxicK+ShjAYg62/1q0LQqHFbPz+UdsUlPZF+JQofomM"

static char *take(mail_buf *b) {
        char *s = NULL;
        jb_err err = JB_ERR_INIT;

        assert_int_equal(mail_buf_take(b, &s, NULL, &err), 0);
        return s;
}

/* ---- hashes ---- */

static void hashes_accepted(void **state) {
        mail_scheme s;
        (void) state;

        assert_true(mail_hash_valid(SHA, &s, NULL));
        assert_int_equal(s, MAIL_SCHEME_SHA512_CRYPT);
        assert_string_equal(mail_scheme_dovecot(s), "SHA512-CRYPT");
        assert_true(mail_hash_valid("$6$rounds=5000$abc$" "pZ62w0vYvk51Y5hyGbltsY32l39/eoXJM6YqjTgXwZyFoXCxC/k.GOGVfLAjDacx.jHDl9LcRVKWs.VyJgQ/i0", &s, NULL));
        assert_true(mail_hash_valid(BCRYPT, &s, NULL));
        assert_int_equal(s, MAIL_SCHEME_BCRYPT);
        assert_string_equal(mail_scheme_dovecot(s), "BLF-CRYPT");
        assert_true(mail_hash_valid("$2b$12$l7MrfrfMbfDR9k2MteIv8e.X6M1rD341P7NQk/SNT6I2/jevvj1.S", &s, NULL));
        assert_true(mail_hash_valid(ARGON, &s, NULL));
        assert_int_equal(s, MAIL_SCHEME_ARGON2ID);
        assert_string_equal(mail_scheme_dovecot(s), "ARGON2ID");
}

static void hashes_refused(void **state) {
        static const char *const bad[] = {
                "", "secret", "plaintext password", "{SHA512-CRYPT}" SHA, "$1$abc$def", "$5$abc$def",
                "$y$j9T$abc$def", "$6$", "$6$$" "pZ62w0vYvk51Y5hyGbltsY32l39/eoXJM6YqjTgXwZyFoXCxC/k.GOGVfLAjDacx.jHDl9LcRVKWs.VyJgQ/i0",
                SHA "x", SHA "\n", SHA ":8:8::/root", "$6$salt$short",
                "$6$sa:t$pZ62w0vYvk51Y5hyGbltsY32l39/eoXJM6YqjTgXwZyFoXCxC/k.GOGVfLAjDacx.jHDl9LcRVKWs.VyJgQ/i0",
                "$6$rounds=999$abc$pZ62w0vYvk51Y5hyGbltsY32l39/eoXJM6YqjTgXwZyFoXCxC/k.GOGVfLAjDacx.jHDl9LcRVKWs.VyJgQ/i0",
                "$6$rounds=05000$abc$pZ62w0vYvk51Y5hyGbltsY32l39/eoXJM6YqjTgXwZyFoXCxC/k.GOGVfLAjDacx.jHDl9LcRVKWs.VyJgQ/i0",
                "$6$rounds=99999999999$abc$pZ62w0vYvk51Y5hyGbltsY32l39/eoXJM6YqjTgXwZyFoXCxC/k.GOGVfLAjDacx.jHDl9LcRVKWs.VyJgQ/i0",
                "$2y$03$l7MrfrfMbfDR9k2MteIv8e.X6M1rD341P7NQk/SNT6I2/jevvj1.S",
                "$2y$32$l7MrfrfMbfDR9k2MteIv8e.X6M1rD341P7NQk/SNT6I2/jevvj1.S",
                "$2y$5$l7MrfrfMbfDR9k2MteIv8e.X6M1rD341P7NQk/SNT6I2/jevvj1.S",
                "$2x$05$l7MrfrfMbfDR9k2MteIv8e.X6M1rD341P7NQk/SNT6I2/jevvj1.S",
                BCRYPT "A", "$2y$05$l7MrfrfMbfDR9k2MteIv8e.X6M1rD341P7NQk/SNT6I2/jevvj1.\"",
                "$argon2i$v=19$m=65536,t=3,p=1$XcPVSlbCtTZvaeny5M/pBw$IxicK+ShjAYg62/1q0LQqHFbPz+UdsUlPZF+JQofomM",
                "$argon2id$v=16$m=65536,t=3,p=1$XcPVSlbCtTZvaeny5M/pBw$IxicK+ShjAYg62/1q0LQqHFbPz+UdsUlPZF+JQofomM",
                "$argon2id$v=19$m=65536,t=0,p=1$XcPVSlbCtTZvaeny5M/pBw$IxicK+ShjAYg62/1q0LQqHFbPz+UdsUlPZF+JQofomM",
                "$argon2id$v=19$m=65536,t=3,p=1$XcP$IxicK+ShjAYg62/1q0LQqHFbPz+UdsUlPZF+JQofomM",
                "$argon2id$v=19$m=65536,t=3,p=1$XcPVSlbCtTZvaeny5M/pBw$IxicK+ShjAYg62/1q0LQqHFbPz+UdsUlPZF+JQofomM=",
                "$argon2id$v=19$m=65536,t=3,p=1$XcPVSlbCtTZvaeny5M/pBw$IxicK:ShjAYg62/1q0LQqHFbPz+UdsUlPZF+JQofomM",
                ARGON "\n" "x",
        };
        mail_scheme s;
        const char *why;
        (void) state;

        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                why = NULL;
                if (mail_hash_valid(bad[i], &s, &why))
                        fail_msg("accepted %s", bad[i]);
                assert_non_null(why);
                /* The reason never echoes the value (it is a secret). */
                if (strlen(bad[i]) > 8)
                        assert_null(strstr(why, bad[i]));
        }
        assert_false(mail_hash_valid(NULL, &s, NULL));
}

/* ---- local parts, dates, addresses ---- */

static void local_parts(void **state) {
        static const char *const good[] = { "alice", "a.b", "a+tag", "x_y-z", "0", "a1" };
        static const char *const bad[] = { "", "-x", "Alice", "a/b", "a\nb", "a\"b", "a b", "a:b", ".a", "a.",
                                           "a..b", "a@b", "a\\b", "..", "a;b", "a\rb", "a\tb", "\xc3\xa9" };
        (void) state;

        for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
                if (!mail_local_valid(good[i], NULL))
                        fail_msg("refused %s", good[i]);
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
                if (mail_local_valid(bad[i], NULL))
                        fail_msg("accepted %s", bad[i]);
}

static void dates(void **state) {
        (void) state;
        assert_true(mail_date_valid("2024-02-29"));
        assert_true(mail_date_valid("2000-02-29"));
        assert_true(mail_date_valid("2026-12-31"));
        assert_false(mail_date_valid("2023-02-29"));
        assert_false(mail_date_valid("1900-02-29"));
        assert_false(mail_date_valid("2024-13-01"));
        assert_false(mail_date_valid("2024-00-10"));
        assert_false(mail_date_valid("2024-04-31"));
        assert_false(mail_date_valid("2024-4-30"));
        assert_false(mail_date_valid("2024-04-3a"));
        assert_false(mail_date_valid("2024/04/30"));
        assert_false(mail_date_valid("2024-04-30\""));
        assert_false(mail_date_valid(""));
        assert_false(mail_date_valid(NULL));
}

static void addresses(void **state) {
        char local[MAIL_ADDR_MAX];
        (void) state;

        assert_string_equal(mail_addr_split("alice@example.com", local, sizeof local), "example.com");
        assert_string_equal(local, "alice");
        assert_null(mail_addr_split("alice", local, sizeof local));
        assert_null(mail_addr_split("@example.com", local, sizeof local));
        assert_null(mail_addr_split("alice@", local, sizeof local));
        assert_null(mail_addr_split("alice@example.com", local, 3));
}

/* ---- passwd-file ---- */

#define LINE_A "alice@example.com:{SHA512-CRYPT}" SHA ":8:8::/var/mail/vhosts/example.com/alice::userdb_quota_rule=*:storage=100M\n"
#define LINE_B "bob@example.com:{BLF-CRYPT}" BCRYPT ":8:8::/var/mail/vhosts/example.com/bob::userdb_quota_rule=*:storage=0M\n"

static void passwd_round_trip(void **state) {
        mail_users u = { 0 };
        mail_buf b = { 0 };
        jb_err err = JB_ERR_INIT;
        const char text[] = "# jabali-mail: {}\n" LINE_B "\n" LINE_A;
        char *out;
        (void) state;

        assert_int_equal(mail_users_parse(text, strlen(text), &u, &err), 0);
        assert_int_equal(u.n, 2);
        assert_int_equal(mail_users_find(&u, "alice@example.com")->quota_mib, 100);
        assert_string_equal(mail_users_find(&u, "bob@example.com")->password, "{BLF-CRYPT}" BCRYPT);
        assert_int_equal(mail_users_render(&u, 8, 8, &b, &err), 0);
        out = take(&b);
        assert_string_equal(out, LINE_A LINE_B);        /* sorted */
        free(out);
        assert_int_equal(mail_users_set(&u, "alice@example.com", "{ARGON2ID}" ARGON, "/h", 5, &err), 0);
        assert_int_equal(u.n, 2);
        assert_string_equal(mail_users_find(&u, "alice@example.com")->home, "/h");
        assert_true(mail_users_remove(&u, "bob@example.com"));
        assert_false(mail_users_remove(&u, "bob@example.com"));
        assert_int_equal(u.n, 1);
        mail_users_free(&u);
}

static void passwd_foreign_lines(void **state) {
        static const char *const bad[] = {
                "root:x:0:0::/root:/bin/bash\n",
                "alice@example.com:plain:8:8::/h::userdb_quota_rule=*:storage=1M\n",
                "alice@example.com:{SHA512-CRYPT}x:8:8::/h::userdb_quota_rule=*:storage=1M:extra\n",
                "alice@example.com:{SHA512-CRYPT}x:8:8::/h::userdb_quota_rule=*:storage=01M\n",
                "alice@example.com:{SHA512-CRYPT}x:8:8::/h::userdb_quota_rule=*:storage=1G\n",
                "alice@example.com:{SHA512-CRYPT}x:8:8::/h::userdb_quota_rule=*:storage=1M allow_nets=0.0.0.0/0\n",
                "alice@example.com:{SHA512-CRYPT}x:8:8:gecos:/h::userdb_quota_rule=*:storage=1M\n",
                "alice@example.com:{SHA512-CRYPT}x:8:8::relative::userdb_quota_rule=*:storage=1M\n",
                "alice@example.com:{SHA512-CRYPT}x:8:8::/h:/bin/sh:userdb_quota_rule=*:storage=1M\n",
                "alice@example.com:{SHA512-CRYPT}x:0x8:8::/h::userdb_quota_rule=*:storage=1M\n",
                "alice@example.com:{SHA512-CRYPT}x\n",
                "alice@example.com\n",
                LINE_A LINE_A,
        };
        (void) state;

        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                mail_users u = { 0 };
                jb_err err = JB_ERR_INIT;

                if (mail_users_parse(bad[i], strlen(bad[i]), &u, &err) == 0)
                        fail_msg("accepted %s", bad[i]);
                assert_string_equal(err.code, "CONFLICT");
                mail_users_free(&u);
        }
}

/* ---- maps ---- */

static void maps(void **state) {
        const char text[] = "# jabali-mail: {}\n# comment\n\nb.example OK\na.example OK\n";
        mail_map m = { 0 }, m2 = { 0 };
        mail_buf b = { 0 };
        jb_err err = JB_ERR_INIT;
        char *out;
        (void) state;

        assert_int_equal(mail_map_parse(text, strlen(text), &m, &err), 0);
        assert_int_equal(m.n, 2);
        assert_string_equal(mail_map_get(&m, "a.example"), "OK");
        assert_int_equal(mail_map_set(&m, "@a.example", "x@b.example", &err), 0);
        assert_int_equal(mail_map_set(&m, "s@a.example", "x@b.example, y@c.example", &err), 0);
        assert_int_equal(mail_map_render(&m, &b, &err), 0);
        out = take(&b);
        assert_string_equal(out, "@a.example x@b.example\na.example OK\nb.example OK\n"
                                 "s@a.example x@b.example, y@c.example\n");
        assert_int_equal(mail_map_parse(out, strlen(out), &m2, &err), 0);
        assert_true(mail_map_equal(&m, &m2));
        free(out);
        assert_true(mail_map_remove(&m, "@a.example"));
        assert_false(mail_map_equal(&m, &m2));
        /* Values that would break a line or a postmap source. */
        assert_int_equal(mail_map_set(&m, "a@b", "x\ny", &err), -1);
        assert_int_equal(mail_map_set(&m, "a b", "x", &err), -1);
        assert_int_equal(mail_map_set(&m, "a@b", "", &err), -1);
        assert_int_equal(mail_map_set(&m, "a#b", "x", &err), -1);
        mail_map_free(&m);
        mail_map_free(&m2);
}

static void maps_foreign_lines(void **state) {
        static const char *const bad[] = { "a.example\n", "a.example  OK\n", "a.example OK \n", "a\tOK\n",
                                           "a.example OK\na.example OK\n", "a/b OK\n", "a.example O\"K\n",
                                           " a.example OK\n", "a.example pipe:|cmd\n" };
        (void) state;

        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                mail_map m = { 0 };
                jb_err err = JB_ERR_INIT;

                if (mail_map_parse(bad[i], strlen(bad[i]), &m, &err) == 0)
                        fail_msg("accepted %s", bad[i]);
                assert_string_equal(err.code, "CONFLICT");
                mail_map_free(&m);
        }
}

/* ---- sieve ---- */

static void sieve_quote_hostile(void **state) {
        mail_buf b = { 0 };
        char *out;
        (void) state;

        mail_sieve_quote(&b, "a\"b\\c\r\nd\";\ndiscard;# ${x} \\\"");
        out = take(&b);
        assert_string_equal(out, "\"a\\\"b\\\\c\nd\\\";\ndiscard;# ${x} \\\\\\\"\"");
        free(out);
}

/* The quoted string must end exactly where the renderer ended it: walk it
 * as a Sieve lexer would. */
static const char *skip_quoted(const char *p) {
        assert_int_equal(*p, '"');
        for (p++; *p && *p != '"'; p++)
                if (*p == '\\')
                        p++;
        assert_int_equal(*p, '"');
        return p + 1;
}

static void sieve_render_all(void **state) {
        const mail_external ext[] = { { "x@remote.example", false }, { "y@remote.example", true } };
        const char *const addrs[] = { "alice@example.com", "sales@example.com" };
        mail_sieve s = { .externals = ext, .n_externals = 2, .addresses = addrs, .n_addresses = 2,
                         .vacation = { .on = true, .subject = "Away \"now\"", .body = "Back\r\nsoon \\o/\n\"}",
                                       .start = "2024-01-01", .end = "2024-01-31", .interval_days = 3 } };
        mail_buf b = { 0 };
        jb_err err = JB_ERR_INIT;
        const char *p;
        char *out;
        (void) state;

        assert_int_equal(mail_sieve_render(&s, &b, &err), 0);
        out = take(&b);
        assert_string_equal(out,
                            "require [\"copy\", \"date\", \"relational\", \"vacation\"];\n"
                            "if allof (currentdate :value \"ge\" \"date\" \"2024-01-01\", "
                            "currentdate :value \"le\" \"date\" \"2024-01-31\") {\n"
                            "    vacation :days 3 :addresses [\"alice@example.com\", \"sales@example.com\"] "
                            ":subject \"Away \\\"now\\\"\" \"Back\nsoon \\\\o/\n\\\"}\";\n"
                            "}\n"
                            "redirect :copy \"x@remote.example\";\n"
                            "redirect :copy \"y@remote.example\";\n");
        p = strstr(out, ":subject ") + 9;
        p = skip_quoted(p);
        assert_int_equal(*p, ' ');
        p = skip_quoted(p + 1);
        assert_string_equal(p, ";\n}\nredirect :copy \"x@remote.example\";\nredirect :copy \"y@remote.example\";\n");
        free(out);
}

static void sieve_render_parts(void **state) {
        const mail_external ext[] = { { "x@remote.example", false } };
        mail_sieve s = { .externals = ext, .n_externals = 1 };
        mail_buf b = { 0 };
        jb_err err = JB_ERR_INIT;
        char *out;
        (void) state;

        assert_int_equal(mail_sieve_render(&s, &b, &err), 0);
        out = take(&b);
        assert_string_equal(out, "redirect \"x@remote.example\";\n");     /* no keep: no :copy, no require */
        free(out);

        s = (mail_sieve) { .vacation = { .on = true, .subject = "s", .body = "b", .interval_days = 1 } };
        assert_int_equal(mail_sieve_render(&s, &b, &err), 0);
        out = take(&b);
        assert_string_equal(out, "require [\"vacation\"];\nvacation :days 1 :subject \"s\" \"b\";\n");
        free(out);

        s = (mail_sieve) { 0 };
        assert_int_equal(mail_sieve_render(&s, &b, &err), 0);
        assert_int_equal(b.len, 0);
        mail_buf_free(&b);

        s = (mail_sieve) { .vacation = { .on = true, .subject = "s", .body = "b", .interval_days = 0 } };
        assert_int_equal(mail_sieve_render(&s, &b, &err), -1);
        assert_string_equal(err.code, "INVALID_PARAMS");
        mail_buf_free(&b);
}

/* ---- JMAP ---- */

static void jmap_request(void **state) {
        json_object *args = json_object_new_object(), *req;
        (void) state;

        json_object_object_add(args, "ids", json_object_new_array());
        req = mail_jmap_request("x:Domain/get", args);
        assert_string_equal(json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
                            "{\"using\":[\"urn:ietf:params:jmap:core\",\"urn:stalwart:jmap\"],"
                            "\"methodCalls\":[[\"x:Domain/get\",{\"ids\":[]},\"c0\"]]}");
        json_object_put(req);
        req = mail_jmap_request("SieveScript/get", json_object_new_object());
        assert_non_null(strstr(json_object_to_json_string(req), "urn:ietf:params:jmap:sieve"));
        json_object_put(req);
}

static json_object *parse(const char *s) {
        json_object *o = json_tokener_parse(s);
        assert_non_null(o);
        return o;
}

static void jmap_answers(void **state) {
        json_object *resp, *res;
        jb_err err = JB_ERR_INIT;
        (void) state;

        resp = parse("{\"methodResponses\":[[\"x:Domain/query\",{\"ids\":[\"a\"]},\"c0\"]],\"sessionState\":\"s\"}");
        res = mail_jmap_result(resp, "x:Domain/query", &err);
        assert_non_null(res);
        assert_null(mail_jmap_result(resp, "x:Domain/get", &err));
        assert_string_equal(err.code, "SERVICE_FAILED");
        json_object_put(resp);

        resp = parse("[[\"error\",{\"type\":\"forbidden\"},\"c0\"]]");
        assert_null(mail_jmap_result(resp, "x:Account/set", &err));
        assert_string_equal(err.code, "SERVICE_FAILED");
        json_object_put(resp);

        resp = parse("{\"methodResponses\":[[\"error\",{\"type\":\"unsupportedFilter\",\"description\":\"no emailAddress\"},\"c0\"]]}");
        jb_err_clear(&err);
        assert_null(mail_jmap_result(resp, "x:Account/query", &err));
        assert_string_equal(err.code, MAIL_E_REJECTED);
        assert_string_equal(err.msg, "x:Account/query: unsupportedFilter: no emailAddress");
        json_object_put(resp);

        resp = parse("{\"methodResponses\":[[\"x:Domain/set\",{\"notDestroyed\":{\"d1\":{\"type\":\"objectIsLinked\","
                     "\"description\":\"in use\"}}},\"c0\"]]}");
        res = mail_jmap_result(resp, "x:Domain/set", &err);
        assert_non_null(res);
        assert_null(mail_jmap_set_error(res, "notDestroyed", "d2"));
        assert_null(mail_jmap_set_error(res, "notCreated", "d1"));
        jb_err_clear(&err);
        mail_jmap_set_error_to_err(mail_jmap_set_error(res, "notDestroyed", "d1"), "destroy domain", &err);
        assert_string_equal(err.code, "CONFLICT");
        assert_string_equal(err.msg, "destroy domain: objectIsLinked: in use");
        json_object_put(resp);

        assert_string_equal(mail_jmap_code("primaryKeyViolation"), "ALREADY_EXISTS");
        assert_string_equal(mail_jmap_code("notFound"), "NOT_FOUND");
        assert_string_equal(mail_jmap_code("validationFailed"), MAIL_E_REJECTED);
        assert_string_equal(mail_jmap_code("forbidden"), MAIL_E_AUTH);
        assert_string_equal(mail_jmap_code("serverUnavailable"), "SERVICE_FAILED");
        assert_string_equal(mail_jmap_code(NULL), "SERVICE_FAILED");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(hashes_accepted),   cmocka_unit_test(hashes_refused),
                cmocka_unit_test(local_parts),       cmocka_unit_test(dates),
                cmocka_unit_test(addresses),         cmocka_unit_test(passwd_round_trip),
                cmocka_unit_test(passwd_foreign_lines), cmocka_unit_test(maps),
                cmocka_unit_test(maps_foreign_lines), cmocka_unit_test(sieve_quote_hostile),
                cmocka_unit_test(sieve_render_all),  cmocka_unit_test(sieve_render_parts),
                cmocka_unit_test(jmap_request),      cmocka_unit_test(jmap_answers),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
