/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Tests for the php module's renderer (php-render.c): the PHP size
 * strings, the checks the schema cannot make (pm ordering, sizes,
 * php_admin_values names and values), the pool file rendered from the
 * shipped template in modules/php/templates, the administrator's
 * override, and the header line.
 *
 * Where the templates are: $JABALI_SRCDIR/modules/php/templates, else
 * PHP_SRC_TEMPLATES (a build define), else modules/php/templates. */

#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include <jabali/fs.h>

#include "php-internal.h"

#ifndef PHP_SRC_TEMPLATES
#define PHP_SRC_TEMPLATES "modules/php/templates"
#endif

#define N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

static char template_dir[PATH_MAX];

static void assert_code(const jb_err *err, const char *code) {
        if (strcmp(err->code, code) != 0)
                fail_msg("expected %s, got '%s' (%s)", code, err->code, err->msg);
}

/* ---- scratch directories ---- */

static void write_file(const char *dir, const char *name, const char *text) {
        char p[PATH_MAX * 2];
        FILE *f;

        snprintf(p, sizeof p, "%s/%s", dir, name);
        f = fopen(p, "w");
        assert_non_null(f);
        assert_true(fputs(text, f) >= 0);
        assert_int_equal(fclose(f), 0);
}

static void make_tmpdir(char *out, size_t size) {
        const char *t = getenv("TMPDIR");

        snprintf(out, size, "%s/test-php-XXXXXX", t && *t ? t : "/tmp");
        assert_non_null(mkdtemp(out));
}

static void rm_tmpdir(const char *dir) {
        char parent[PATH_MAX];
        const char *slash = strrchr(dir, '/');
        jb_err err = JB_ERR_INIT;
        int fd;

        assert_non_null(slash);
        snprintf(parent, sizeof parent, "%.*s", (int) (slash - dir), dir);
        fd = jb_fs_open_root(parent[0] ? parent : "/", &err);
        assert_true(fd >= 0);
        assert_int_equal(jb_fs_remove_tree(fd, slash + 1, &err), 1);
        close(fd);
}

/* ---- a pool as build() makes it ---- */

static php_pool base_pool(void) {
        php_pool p = {
                .user = "alice",
                .uid = 1001,
                .group = "alice",
                .php_version = "8.2",
                .socket = "/run/php/php8.2-fpm-alice.sock",
                .listen_owner = "www-data",
                .listen_group = "www-data",
                .home = "/home/alice",
                .tmp = "/home/alice/tmp",
                .pm = "ondemand",
                .max_children = 5,
                .start_servers = 1,
                .min_spare = 1,
                .max_spare = 3,
                .process_idle_timeout = 10,
                .max_requests = 500,
                .request_terminate_timeout = 300,
                .memory_limit = "256M",
                .upload_max_filesize = "64M",
        };
        return p;
}

static php_cfg cfg(const char *override) {
        php_cfg c;

        memset(&c, 0, sizeof c);
        c.template_dir = template_dir;
        c.template_override_dir = override;
        return c;
}

/* The rendered file without its header line, which a test checks apart. */
static char *render_body(const php_pool *p, const char *override) {
        php_cfg c = cfg(override);
        jb_err err = JB_ERR_INIT;
        char *text = NULL, *body;
        size_t len = 0;

        if (php_pool_render(&c, p, &text, &len, &err) < 0)
                fail_msg("render: %s: %s", err.code, err.msg);
        assert_int_equal(strlen(text), len);
        assert_true(strncmp(text, PHP_HEADER, strlen(PHP_HEADER)) == 0);
        body = strdup(strchr(text, '\n') + 1);
        assert_non_null(body);
        free(text);
        return body;
}

/* ---- sizes ---- */

static void test_size_parse(void **state) {
        (void) state;
        static const struct {
                const char *s;
                uint64_t bytes;
        } good[] = {
                { "1", 1 }, { "256M", 256ull << 20 }, { "999999K", 999999ull << 10 }, { "64G", 64ull << 30 },
                { "1G", 1ull << 30 }, { "100", 100 }, { "999999", 999999 },
        };
        static const char *const bad[] = {
                "", "0", "0M", "01M", "1234567", "1234567M", "1m", "1k", "1MB", "-1", "+1", "1.5M", " 1M", "1M ",
                "1T", "M", "G1", "1 M", "0x10", "1e6",
        };

        for (size_t i = 0; i < N_ELEMENTS(good); i++) {
                uint64_t b = 0;

                if (php_size_parse(good[i].s, &b) < 0 || b != good[i].bytes)
                        fail_msg("'%s' should be %llu bytes", good[i].s, (unsigned long long) good[i].bytes);
        }
        for (size_t i = 0; i < N_ELEMENTS(bad); i++) {
                uint64_t b = 7;

                if (php_size_parse(bad[i], &b) != -1 || b != 7)
                        fail_msg("'%s' should be refused", bad[i]);
        }
}

/* ---- the checks ---- */

static void expect_invalid(const php_pool *p, json_object *allowed, const char *msg_part) {
        jb_err err = JB_ERR_INIT;

        assert_int_equal(php_pool_validate(p, allowed, &err), -1);
        assert_code(&err, "INVALID_PARAMS");
        if (!strstr(err.msg, msg_part))
                fail_msg("'%s' does not say '%s'", err.msg, msg_part);
}

static void test_validate_pm_and_sizes(void **state) {
        (void) state;
        php_pool p = base_pool();
        jb_err err = JB_ERR_INIT;

        assert_int_equal(php_pool_validate(&p, NULL, &err), 0);
        /* ondemand does not look at the spare servers */
        p.start_servers = 9;
        assert_int_equal(php_pool_validate(&p, NULL, &err), 0);
        p.pm = "dynamic";
        expect_invalid(&p, NULL, "min_spare <= start_servers <= max_spare <= max_children");
        p.start_servers = 2;
        assert_int_equal(php_pool_validate(&p, NULL, &err), 0);
        p.max_spare = 6;
        expect_invalid(&p, NULL, "max_children");
        p.max_spare = 3;
        p.min_spare = 3;
        expect_invalid(&p, NULL, "min_spare");

        p = base_pool();
        p.memory_limit = "15M";
        expect_invalid(&p, NULL, "memory_limit: 15M is outside 16384K..64G");
        p.memory_limit = "16M";
        assert_int_equal(php_pool_validate(&p, NULL, &err), 0);
        p.memory_limit = "64G";
        assert_int_equal(php_pool_validate(&p, NULL, &err), 0);
        p.memory_limit = "65G";
        expect_invalid(&p, NULL, "memory_limit");
        p.memory_limit = "-1";
        expect_invalid(&p, NULL, "memory_limit: '-1' is not a size");
        p.memory_limit = "256M";
        p.upload_max_filesize = "1K";
        assert_int_equal(php_pool_validate(&p, NULL, &err), 0);
        p.upload_max_filesize = "1023";
        expect_invalid(&p, NULL, "upload_max_filesize");
        p.upload_max_filesize = "64M;";
        expect_invalid(&p, NULL, "upload_max_filesize: '64M;' is not a size");
        assert_false(jb_err_isset(&err));
}

static void test_validate_admin_values(void **state) {
        (void) state;
        php_pool p = base_pool();
        json_object *vals = json_object_new_object(), *allowed = json_object_new_array();
        jb_err err = JB_ERR_INIT;

        p.admin_values = vals;
        json_object_object_add(vals, "date.timezone", json_object_new_string("Europe/Berlin"));
        json_object_object_add(vals, "error_reporting", json_object_new_string("E_ALL & ~E_NOTICE"));
        assert_int_equal(php_pool_validate(&p, NULL, &err), 0);

        /* not in the default list */
        json_object_object_add(vals, "include_path", json_object_new_string("/x"));
        expect_invalid(&p, NULL, "'include_path' is not in the allowed list");
        /* a custom list replaces the default one */
        json_object_array_add(allowed, json_object_new_string("include_path"));
        expect_invalid(&p, allowed, "'date.timezone' is not in the allowed list");
        json_object_array_add(allowed, json_object_new_string("date.timezone"));
        json_object_array_add(allowed, json_object_new_string("error_reporting"));
        assert_int_equal(php_pool_validate(&p, allowed, &err), 0);
        json_object_object_del(vals, "include_path");

        /* what the module sets, whatever a list says */
        json_object_array_add(allowed, json_object_new_string("open_basedir"));
        json_object_object_add(vals, "open_basedir", json_object_new_string("/"));
        expect_invalid(&p, allowed, "'open_basedir' is set by the module");
        expect_invalid(&p, NULL, "'open_basedir' is set by the module");
        json_object_object_del(vals, "open_basedir");

        /* values */
        static const struct {
                const char *v, *why;
        } bad[] = {
                { "UTC;x", "contains ';'" }, { "a\"b", "contains '\"'" }, { "${HOME}", "contains '${'" },
                { " UTC", "blank" }, { "UTC ", "blank" },
        };
        for (size_t i = 0; i < N_ELEMENTS(bad); i++) {
                json_object_object_add(vals, "date.timezone", json_object_new_string(bad[i].v));
                expect_invalid(&p, NULL, bad[i].why);
                expect_invalid(&p, NULL, "php_admin_values['date.timezone']");
        }
        json_object_put(vals);
        json_object_put(allowed);
}

static void test_reserved_and_default_lists(void **state) {
        (void) state;
        static const char *const must_be_reserved[] = {
                "open_basedir", "upload_tmp_dir", "sys_temp_dir", "session.save_path", "memory_limit",
                "upload_max_filesize", "post_max_size", "disable_functions", "extension", "zend_extension",
                "auto_prepend_file", "sendmail_path",
        };
        size_t n = 0;

        for (size_t i = 0; i < N_ELEMENTS(must_be_reserved); i++)
                assert_true(php_admin_key_reserved(must_be_reserved[i]));
        assert_false(php_admin_key_reserved("date.timezone"));
        assert_false(php_admin_key_reserved("Open_Basedir"));   /* not a directive: PHP names are case-sensitive */
        for (const char *const *a = php_admin_default_allowed; *a; a++, n++)
                if (php_admin_key_reserved(*a))
                        fail_msg("%s is both allowed by default and reserved", *a);
        assert_true(n >= 10);
}

/* ---- rendering ---- */

static const char ondemand_body[] =
        "[jabali-alice]\n"
        "user = alice\n"
        "group = alice\n"
        "listen = /run/php/php8.2-fpm-alice.sock\n"
        "listen.owner = www-data\n"
        "listen.group = www-data\n"
        "listen.mode = 0660\n"
        "pm = ondemand\n"
        "pm.max_children = 5\n"
        "pm.process_idle_timeout = 10s\n"
        "pm.max_requests = 500\n"
        "request_terminate_timeout = 300\n"
        "chdir = /\n"
        "env[TMPDIR] = /home/alice/tmp\n"
        "php_admin_value[open_basedir] = /home/alice/:/home/alice/tmp/\n"
        "php_admin_value[memory_limit] = 256M\n"
        "php_admin_value[upload_max_filesize] = 64M\n"
        "php_admin_value[post_max_size] = 64M\n"
        "php_admin_value[upload_tmp_dir] = /home/alice/tmp\n"
        "php_admin_value[sys_temp_dir] = /home/alice/tmp\n"
        "php_admin_value[session.save_path] = /home/alice/tmp\n";

static void test_render_ondemand(void **state) {
        (void) state;
        php_pool p = base_pool();
        char *body = render_body(&p, NULL);

        assert_string_equal(body, ondemand_body);
        free(body);
}

static void test_render_dynamic_static_and_admin_values(void **state) {
        (void) state;
        php_pool p = base_pool();
        json_object *vals = json_object_new_object();
        char *body;

        p.pm = "dynamic";
        p.max_children = 8;
        p.start_servers = 2;
        p.min_spare = 1;
        p.max_spare = 4;
        p.request_terminate_timeout = 0;
        p.memory_limit = "1G";
        p.upload_max_filesize = "512K";
        /* given out of order: the file lists them sorted */
        json_object_object_add(vals, "max_input_vars", json_object_new_string("5000"));
        json_object_object_add(vals, "date.timezone", json_object_new_string("UTC"));
        json_object_object_add(vals, "error_reporting", json_object_new_string("E_ALL & ~E_DEPRECATED"));
        p.admin_values = vals;
        body = render_body(&p, NULL);
        assert_non_null(strstr(body, "pm = dynamic\npm.max_children = 8\npm.start_servers = 2\n"
                                     "pm.min_spare_servers = 1\npm.max_spare_servers = 4\npm.max_requests = 500\n"));
        assert_null(strstr(body, "process_idle_timeout"));
        assert_non_null(strstr(body, "request_terminate_timeout = 0\n"));
        assert_non_null(strstr(body, "env[TMPDIR] = /home/alice/tmp\n"
                                     "php_admin_value[date.timezone] = UTC\n"
                                     "php_admin_value[error_reporting] = E_ALL & ~E_DEPRECATED\n"
                                     "php_admin_value[max_input_vars] = 5000\n"
                                     "php_admin_value[open_basedir] = /home/alice/:/home/alice/tmp/\n"
                                     "php_admin_value[memory_limit] = 1G\n"
                                     "php_admin_value[upload_max_filesize] = 512K\n"
                                     "php_admin_value[post_max_size] = 512K\n"));
        free(body);

        p.pm = "static";
        body = render_body(&p, NULL);
        assert_non_null(strstr(body, "pm = static\npm.max_children = 8\npm.max_requests = 500\n"));
        assert_null(strstr(body, "spare"));
        assert_null(strstr(body, "process_idle_timeout"));
        free(body);
        json_object_put(vals);
}

/* The same parameters, whatever the order of the request's members, give
 * the same bytes: a second identical write converges. */
static void test_render_is_deterministic(void **state) {
        (void) state;
        php_pool p = base_pool();
        json_object *a = json_object_new_object(), *b = json_object_new_object();
        php_cfg c = cfg(NULL);
        jb_err err = JB_ERR_INIT;
        char *ta, *tb;
        size_t la, lb;

        json_object_object_add(a, "date.timezone", json_object_new_string("UTC"));
        json_object_object_add(a, "display_errors", json_object_new_string("Off"));
        json_object_object_add(b, "display_errors", json_object_new_string("Off"));
        json_object_object_add(b, "date.timezone", json_object_new_string("UTC"));
        p.admin_values = a;
        assert_int_equal(php_pool_render(&c, &p, &ta, &la, &err), 0);
        p.admin_values = b;
        assert_int_equal(php_pool_render(&c, &p, &tb, &lb, &err), 0);
        assert_int_equal(la, lb);
        assert_memory_equal(ta, tb, la);
        free(ta);
        free(tb);
        json_object_put(a);
        json_object_put(b);
}

static void test_header_round_trip(void **state) {
        (void) state;
        php_pool p = base_pool();
        json_object *vals = json_object_new_object(), *meta, *v;
        php_cfg c = cfg(NULL);
        jb_err err = JB_ERR_INIT;
        char *text;
        size_t len;

        json_object_object_add(vals, "display_errors", json_object_new_string("Off"));
        p.admin_values = vals;
        assert_int_equal(php_pool_render(&c, &p, &text, &len, &err), 0);
        meta = php_header_parse(text, len);
        assert_non_null(meta);
        assert_string_equal(json_object_to_json_string_ext(meta, JSON_C_TO_STRING_PLAIN),
                            "{\"user\":\"alice\",\"user_id\":1001,\"php_version\":\"8.2\",\"pm\":\"ondemand\","
                            "\"max_children\":5,\"start_servers\":1,\"min_spare\":1,\"max_spare\":3,"
                            "\"process_idle_timeout\":10,\"max_requests\":500,\"request_terminate_timeout\":300,"
                            "\"memory_limit\":\"256M\",\"upload_max_filesize\":\"64M\","
                            "\"php_admin_values\":{\"display_errors\":\"Off\"}}");
        assert_true(json_object_object_get_ex(meta, "php_admin_values", &v));
        json_object_put(meta);
        free(text);
        json_object_put(vals);
}

static void test_header_not_ours(void **state) {
        (void) state;
        static const char *const texts[] = {
                "[www]\nuser = www-data\n",
                "; jabali-php: \n",
                "; jabali-php: {\"a\":1}",              /* no end of line */
                "; jabali-php: [1]\n",
                "; jabali-php: {\"a\":1} x\n",
                "; jabali-php: {\"a\":\n",
                "; jabali-php {\"a\":1}\n",
                "",
        };

        for (size_t i = 0; i < N_ELEMENTS(texts); i++)
                assert_null(php_header_parse(texts[i], strlen(texts[i])));
        json_object *o = php_header_parse("; jabali-php: {\"a\":1}\nrest", 27);
        assert_non_null(o);
        json_object_put(o);
}

/* A value the INI context refuses never reaches the file: INVALID_PARAMS. */
static void test_hostile_values_refused(void **state) {
        (void) state;
        static const char *const values[] = { "a;b", "a\"b", "a\nb", "${X}", " a", "a ", "a\tb" };
        php_cfg c = cfg(NULL);

        for (size_t i = 0; i < N_ELEMENTS(values); i++) {
                php_pool p = base_pool();
                jb_err err = JB_ERR_INIT;
                char *text = (char *) 1;
                size_t len = 1;

                p.group = values[i];
                assert_int_equal(php_pool_render(&c, &p, &text, &len, &err), -1);
                assert_code(&err, "INVALID_PARAMS");
                assert_null(text);
                assert_int_equal(len, 0);
        }
}

static void test_template_override_first(void **state) {
        (void) state;
        char dir[PATH_MAX];
        php_pool p = base_pool();
        char *body;

        make_tmpdir(dir, sizeof dir);
        /* An empty override directory: the shipped template. */
        body = render_body(&p, dir);
        assert_string_equal(body, ondemand_body);
        free(body);
        write_file(dir, PHP_POOL_TEMPLATE, "[{{pool}}]\nuser = {{user}}\n");
        body = render_body(&p, dir);
        assert_string_equal(body, "[jabali-alice]\nuser = alice\n");
        free(body);
        rm_tmpdir(dir);
}

static void test_broken_or_missing_template(void **state) {
        (void) state;
        static const char *const broken[] = {
                "{{#unclosed}}\n", "user = {{no_such_value}}\n", "{{{user}}}\n",
        };
        char dir[PATH_MAX], empty[PATH_MAX];
        php_pool p = base_pool();

        make_tmpdir(dir, sizeof dir);
        for (size_t i = 0; i < N_ELEMENTS(broken); i++) {
                php_cfg c = cfg(dir);
                jb_err err = JB_ERR_INIT;
                char *text = NULL;
                size_t len;

                write_file(dir, PHP_POOL_TEMPLATE, broken[i]);
                assert_int_equal(php_pool_render(&c, &p, &text, &len, &err), -1);
                assert_code(&err, "CONFIG_INVALID");
                assert_non_null(strstr(err.msg, PHP_POOL_TEMPLATE));
                assert_null(text);
        }
        rm_tmpdir(dir);

        /* No template anywhere: the installation is broken. */
        make_tmpdir(empty, sizeof empty);
        {
                php_cfg c = cfg(NULL);
                jb_err err = JB_ERR_INIT;
                char *text = NULL;
                size_t len;

                c.template_dir = empty;
                assert_int_equal(php_pool_render(&c, &p, &text, &len, &err), -1);
                assert_code(&err, "INTERNAL");
        }
        rm_tmpdir(empty);
}

static int setup_templates(void **state) {
        const char *src = getenv("JABALI_SRCDIR");
        struct stat st;
        (void) state;

        if (src && *src)
                snprintf(template_dir, sizeof template_dir, "%s/modules/php/templates", src);
        else
                snprintf(template_dir, sizeof template_dir, "%s", PHP_SRC_TEMPLATES);
        if (stat(template_dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
                print_error("no templates in %s (set JABALI_SRCDIR)\n", template_dir);
                return -1;
        }
        /* jb_fs_open_root wants an absolute path. */
        if (template_dir[0] != '/') {
                char abs[PATH_MAX];
                if (!realpath(template_dir, abs))
                        return -1;
                snprintf(template_dir, sizeof template_dir, "%s", abs);
        }
        return 0;
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_size_parse),
                cmocka_unit_test(test_validate_pm_and_sizes),
                cmocka_unit_test(test_validate_admin_values),
                cmocka_unit_test(test_reserved_and_default_lists),
                cmocka_unit_test(test_render_ondemand),
                cmocka_unit_test(test_render_dynamic_static_and_admin_values),
                cmocka_unit_test(test_render_is_deterministic),
                cmocka_unit_test(test_header_round_trip),
                cmocka_unit_test(test_header_not_ours),
                cmocka_unit_test(test_hostile_values_refused),
                cmocka_unit_test(test_template_override_first),
                cmocka_unit_test(test_broken_or_missing_template),
        };

        return cmocka_run_group_tests(tests, setup_templates, NULL);
}
