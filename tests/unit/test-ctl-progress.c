/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Tests for client/progress.c: a job record as the line `job watch` shows. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "progress.h"

static json_object *parse(const char *text) {
        json_object *o = json_tokener_parse(text);

        assert_non_null(o);
        return o;
}

static void test_running_with_bar(void **st) {
        (void) st;
        json_object *j = parse("{\"state\":\"running\",\"stages\":[{\"name\":\"home\"}],"
                               "\"progress\":{\"percent_done\":0.5,\"bytes_done\":1073741824,"
                               "\"total_bytes\":2147483648,\"files_done\":10,\"total_files\":20}}");
        char line[256];
        bool ok;

        ctl_job_line(j, true, line, sizeof line);
        assert_string_equal(line, "running home  50% [############------------] 1.0 GiB/2.0 GiB 10/20 files");
        ctl_job_line(j, false, line, sizeof line);
        assert_string_equal(line, "running home  50% 1.0 GiB/2.0 GiB 10/20 files");
        assert_false(ctl_job_finished(j, &ok));
        json_object_put(j);
}

static void test_bounds_and_missing(void **st) {
        (void) st;
        /* restic leaves zeros out; a percentage past 1 is clamped. */
        json_object *j = parse("{\"state\":\"queued\"}");
        json_object *k = parse("{\"state\":\"running\",\"progress\":{\"percent_done\":7}}");
        char line[256];

        ctl_job_line(j, true, line, sizeof line);
        assert_string_equal(line, "queued");
        ctl_job_line(k, true, line, sizeof line);
        assert_string_equal(line, "running 100% [########################] 0 B/0 B 0/0 files");
        /* Cut to size, NUL-terminated. */
        ctl_job_line(k, true, line, 8);
        assert_string_equal(line, "running");
        json_object_put(j);
        json_object_put(k);
}

static void test_finished(void **st) {
        (void) st;
        json_object *j = parse("{\"state\":\"failed\",\"stages\":[{},{}],"
                               "\"error\":{\"code\":\"REPO_LOCKED\",\"message\":\"locked\\u001b[31m\\nx\"}}");
        json_object *s = parse("{\"state\":\"succeeded\",\"stages\":[{}]}");
        char line[256];
        bool ok = true;

        assert_true(ctl_job_finished(j, &ok));
        assert_false(ok);
        ctl_job_line(j, true, line, sizeof line);
        /* The escape sequence and the newline of the record are not passed on. */
        assert_string_equal(line, "failed 2 stages REPO_LOCKED: locked?[31m?x");
        assert_true(ctl_job_finished(s, &ok));
        assert_true(ok);
        ctl_job_line(s, true, line, sizeof line);
        assert_string_equal(line, "succeeded 1 stage");
        json_object_put(j);
        json_object_put(s);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_running_with_bar),
                cmocka_unit_test(test_bounds_and_missing),
                cmocka_unit_test(test_finished),
        };

        return cmocka_run_group_tests_name("ctl-progress", tests, NULL, NULL);
}
