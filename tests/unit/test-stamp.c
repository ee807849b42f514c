/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Tests for <jabali/stamp.h> and jb_template_load() of <jabali/template.h>:
 * what modules write as their own files and where their templates come from. */

#include <fcntl.h>
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
#include <jabali/stamp.h>
#include <jabali/template.h>

#define PREFIX "# jabali-x: "

static void assert_code(const jb_err *err, const char *code) {
        if (strcmp(err->code, code) != 0)
                fail_msg("expected %s, got %s (%s)", code, err->code, err->msg);
}

static void compose_then_parse(void **state) {
        json_object *meta = json_tokener_parse("{\"domain\":\"a.test\",\"n\":3,\"s\":\"x\\ny\\u0000z/\"}");
        char *out = NULL;
        size_t len = 0;
        jb_err err = JB_ERR_INIT;
        json_object *back, *v;

        (void) state;
        assert_int_equal(jb_stamp_compose(PREFIX, meta, "body\n", 5, 4096, &out, &len, &err), 0);
        assert_int_equal(strlen(out), len);
        /* One line: the newline and the NUL of the string are escaped;
         * the slash is not. */
        assert_string_equal(out, PREFIX "{\"domain\":\"a.test\",\"n\":3,\"s\":\"x\\ny\\u0000z/\"}\nbody\n");
        back = jb_stamp_parse(PREFIX, out, len);
        assert_non_null(back);
        assert_true(json_object_equal(back, meta));
        assert_true(json_object_object_get_ex(back, "s", &v));
        assert_int_equal(json_object_get_string_len(v), 6);
        json_object_put(back);
        free(out);

        /* An empty body. */
        assert_int_equal(jb_stamp_compose(PREFIX, meta, NULL, 0, 4096, &out, NULL, &err), 0);
        assert_int_equal(out[strlen(out) - 1], '\n');
        back = jb_stamp_parse(PREFIX, out, strlen(out));
        assert_non_null(back);
        json_object_put(back);
        free(out);
        json_object_put(meta);
}

static void compose_bounds(void **state) {
        json_object *meta = json_tokener_parse("{\"k\":\"0123456789\"}");
        json_object *arr = json_object_new_array();
        char *out = (char *) 1;
        jb_err err = JB_ERR_INIT;
        size_t exact = strlen(PREFIX) + strlen("{\"k\":\"0123456789\"}") + 1 + 4;

        (void) state;
        assert_int_equal(jb_stamp_compose(PREFIX, meta, "abcd", 4, exact, &out, NULL, &err), 0);
        free(out);
        out = (char *) 1;
        assert_int_equal(jb_stamp_compose(PREFIX, meta, "abcd", 4, exact - 1, &out, NULL, &err), -1);
        assert_code(&err, "INVALID_PARAMS");
        assert_null(out);
        /* A body larger than the bound cannot wrap the sum. */
        jb_err_clear(&err);
        assert_int_equal(jb_stamp_compose(PREFIX, meta, "abcd", SIZE_MAX, 1 << 20, &out, NULL, &err), -1);
        assert_code(&err, "INVALID_PARAMS");
        /* Only an object is a stamp. */
        jb_err_clear(&err);
        assert_int_equal(jb_stamp_compose(PREFIX, arr, "", 0, 4096, &out, NULL, &err), -1);
        assert_code(&err, "INTERNAL");
        json_object_put(arr);
        json_object_put(meta);
}

static void parse_refuses(void **state) {
        static const char *const bad[] = {
                "",
                "# jabali-x:",                               /* prefix cut short */
                "# jabali-y: {}\n",                          /* another module's */
                "server {}\n",                               /* an administrator's */
                PREFIX "{}",                                 /* no newline */
                PREFIX "{\"a\":1} x\n",                      /* trailing text */
                PREFIX "{\"a\":1}{}\n",                      /* a second value */
                PREFIX "[1,2]\n",                            /* not an object */
                PREFIX "\"s\"\n",
                PREFIX "{\"a\":\n1}\n",                      /* the object spans lines */
                PREFIX "{\"a\":1\n",                         /* cut short */
                PREFIX "\n{\"a\":1}\n",
                " " PREFIX "{}\n",                           /* not at the very start */
        };
        json_object *o;

        (void) state;
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                o = jb_stamp_parse(PREFIX, bad[i], strlen(bad[i]));
                if (o)
                        fail_msg("case %zu accepted: %s", i, bad[i]);
        }
        /* A NUL inside the line ends nothing early: the line is refused. */
        {
                static const char nul[] = PREFIX "{\"a\":1}\0{}\n";
                assert_null(jb_stamp_parse(PREFIX, nul, sizeof nul - 1));
        }
        /* Only the first line counts; what follows may be anything. */
        o = jb_stamp_parse(PREFIX, PREFIX "{}\n\x01\xff{{{", strlen(PREFIX "{}\n\x01\xff{{{"));
        assert_non_null(o);
        json_object_put(o);
        /* len is honoured: the newline beyond it is not seen. */
        assert_null(jb_stamp_parse(PREFIX, PREFIX "{}\n", strlen(PREFIX "{}")));
        assert_null(jb_stamp_parse(PREFIX, NULL, 0));
}

/* ---- jb_template_load ---- */

static char dir[] = "/tmp/jb-stamp-XXXXXX";

static void put(const char *rel, const char *text) {
        char p[512];
        FILE *f;

        snprintf(p, sizeof p, "%s/%s", dir, rel);
        f = fopen(p, "w");
        assert_non_null(f);
        fputs(text, f);
        fclose(f);
}

static void template_load_order(void **state) {
        char shipped[512], over[512], missing[512], *out = NULL;
        size_t len = 0;
        jb_err err = JB_ERR_INIT;

        (void) state;
        assert_non_null(mkdtemp(dir));
        snprintf(shipped, sizeof shipped, "%s/shipped", dir);
        snprintf(over, sizeof over, "%s/over", dir);
        snprintf(missing, sizeof missing, "%s/none", dir);
        assert_int_equal(mkdir(shipped, 0755), 0);
        assert_int_equal(mkdir(over, 0755), 0);
        put("shipped/a.tpl", "shipped a");
        put("shipped/b.tpl", "shipped b");
        put("over/a.tpl", "admin a");

        assert_int_equal(jb_template_load(over, shipped, "a.tpl", 1024, &out, &len, &err), 0);
        assert_string_equal(out, "admin a");
        assert_int_equal(len, 7);
        free(out);
        assert_int_equal(jb_template_load(over, shipped, "b.tpl", 1024, &out, &len, &err), 0);
        assert_string_equal(out, "shipped b");
        free(out);
        /* No override directory at all, or none configured. */
        assert_int_equal(jb_template_load(missing, shipped, "a.tpl", 1024, &out, &len, &err), 0);
        assert_string_equal(out, "shipped a");
        free(out);
        assert_int_equal(jb_template_load(NULL, shipped, "a.tpl", 1024, &out, NULL, &err), 0);
        assert_string_equal(out, "shipped a");
        free(out);
        /* Neither has it: the package is broken. */
        assert_int_equal(jb_template_load(over, shipped, "c.tpl", 1024, &out, &len, &err), -1);
        assert_code(&err, "INTERNAL");
        assert_null(out);
        /* Too large is refused, not cut. */
        jb_err_clear(&err);
        assert_int_equal(jb_template_load(over, shipped, "a.tpl", 3, &out, &len, &err), -1);
        assert_code(&err, "CONFLICT");
        /* A symlink that leaves the override directory is not followed,
         * and is an error rather than a silent fall-back. */
        {
                char link[600];
                snprintf(link, sizeof link, "%s/b.tpl", over);
                assert_int_equal(symlink("/etc/passwd", link), 0);
                jb_err_clear(&err);
                assert_int_equal(jb_template_load(over, shipped, "b.tpl", 1 << 20, &out, &len, &err), -1);
                assert_true(err.code[0] != '\0');
                assert_null(out);
        }
        /* A name with a slash is not one segment. */
        jb_err_clear(&err);
        assert_int_equal(jb_template_load(over, shipped, "../shipped/a.tpl", 1024, &out, &len, &err), -1);
        assert_true(err.code[0] != '\0');
}

static int teardown_dir(void **state) {
        int fd = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC), r;

        (void) state;
        if (fd < 0)
                return -1;
        r = jb_fs_remove_tree(fd, dir + strlen("/tmp/"), NULL);
        close(fd);
        return r < 0 ? -1 : 0;
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(compose_then_parse),
                cmocka_unit_test(compose_bounds),
                cmocka_unit_test(parse_refuses),
                cmocka_unit_test_teardown(template_load_order, teardown_dir),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
