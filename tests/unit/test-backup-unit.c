/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The backup module's schedule units (modules/backup/backup-unit.c): what
 * the timer and service say, that each renders again from its own first
 * line, that an edited or foreign unit is told apart, and which calendar
 * expressions and paths may reach a unit file at all. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "backup-internal.h"

static char *render(json_object *meta, backup_unit_kind kind, size_t *len) {
        jb_err err = JB_ERR_INIT;
        char *out = NULL;

        if (backup_unit_render(meta, kind, &out, len, &err) < 0)
                fail_msg("render: %s: %s", err.code, err.msg);
        assert_int_equal(strlen(out), *len);
        return out;
}

static void timer_says_when(void **state) {
        json_object *m = backup_unit_meta("nightly", "*-*-* 03:00:00", "/usr/bin/jabali-agentctl", "", 600);
        size_t len;
        char *t = render(m, BACKUP_UNIT_TIMER, &len);

        (void) state;
        assert_true(strncmp(t, BACKUP_UNIT_HEADER "{", strlen(BACKUP_UNIT_HEADER) + 1) == 0);
        assert_non_null(strstr(t, "\n[Timer]\nOnCalendar=*-*-* 03:00:00\nPersistent=true\nRandomizedDelaySec=600\n"
                                  "Unit=jabali-backup-nightly.service\n"));
        assert_non_null(strstr(t, "\n[Install]\nWantedBy=timers.target\n"));
        assert_int_equal(backup_unit_owner_of(t, len, BACKUP_UNIT_TIMER), BACKUP_UNIT_OURS);
        /* The same meta is not a service. */
        assert_int_equal(backup_unit_owner_of(t, len, BACKUP_UNIT_SERVICE), BACKUP_UNIT_EDITED);
        free(t);
        json_object_put(m);
}

static void service_runs_the_cli(void **state) {
        json_object *m = backup_unit_meta("a.b-c_1", "daily", "/usr/bin/jabali-agentctl", "", 0);
        json_object *s = backup_unit_meta("x", "daily", "/opt/jb/agentctl", "/run/jb/agent.sock", 0);
        size_t len;
        char *t = render(m, BACKUP_UNIT_SERVICE, &len), *u;

        (void) state;
        assert_non_null(strstr(t, "\n[Service]\nType=oneshot\n"));
        assert_non_null(strstr(t, "\nExecStart=/usr/bin/jabali-agentctl --json call backup.schedule.run "
                                  "schedule_id==a.b-c_1\n"));
        assert_int_equal(backup_unit_owner_of(t, len, BACKUP_UNIT_SERVICE), BACKUP_UNIT_OURS);
        u = render(s, BACKUP_UNIT_SERVICE, &len);
        assert_non_null(strstr(u, "\nExecStart=/opt/jb/agentctl --socket=/run/jb/agent.sock --json call "
                                  "backup.schedule.run schedule_id==x\n"));
        free(t);
        free(u);
        json_object_put(m);
        json_object_put(s);
}

static void edited_and_foreign_units(void **state) {
        json_object *m = backup_unit_meta("n", "hourly", "/usr/bin/jabali-agentctl", "", 60);
        size_t len;
        char *t = render(m, BACKUP_UNIT_TIMER, &len), *p;

        (void) state;
        /* One byte changed below the first line. */
        p = strstr(t, "hourly\n");
        assert_non_null(p);
        p[0] = 'H';
        assert_int_equal(backup_unit_owner_of(t, len, BACKUP_UNIT_TIMER), BACKUP_UNIT_EDITED);
        p[0] = 'h';
        /* A line added at the end. */
        t = realloc(t, len + 16);
        assert_non_null(t);
        memcpy(t + len, "Persistent=no\n", 15);
        assert_int_equal(backup_unit_owner_of(t, len + 14, BACKUP_UNIT_TIMER), BACKUP_UNIT_EDITED);
        assert_int_equal(backup_unit_owner_of(t, len, BACKUP_UNIT_TIMER), BACKUP_UNIT_OURS);
        /* No first line, or a first line that is not an object. */
        assert_int_equal(backup_unit_owner_of("[Timer]\nOnCalendar=daily\n", 25, BACKUP_UNIT_TIMER),
                         BACKUP_UNIT_FOREIGN);
        assert_int_equal(backup_unit_owner_of(BACKUP_UNIT_HEADER "[1]\n", strlen(BACKUP_UNIT_HEADER) + 4,
                                              BACKUP_UNIT_TIMER), BACKUP_UNIT_FOREIGN);
        /* A stamp whose meta lacks a member renders nothing: edited. */
        assert_int_equal(backup_unit_owner_of(BACKUP_UNIT_HEADER "{\"schedule_id\":\"n\"}\n",
                                              strlen(BACKUP_UNIT_HEADER) + 20, BACKUP_UNIT_TIMER),
                         BACKUP_UNIT_EDITED);
        free(t);
        json_object_put(m);
}

static void calendar_characters(void **state) {
        static const char *const good[] = { "daily", "*-*-* 03:00:00", "Mon..Fri 02:30", "Sat,Sun 4:00",
                                            "*-*~07/1", "03:00 America/Port-au-Prince", "12:00 Etc/GMT+5",
                                            "2030-01-01 00:00:00 UTC", NULL };
        static const char *const bad[] = { "", " daily", "daily ", "daily\nOnCalendar=hourly", "%H:00",
                                           "daily\\", "\"daily\"", "daily;reboot", "dai\tly", "d\xc3\xa9j\xc3\xa0",
                                           "$(id)", NULL };

        (void) state;
        for (const char *const *g = good; *g; g++)
                if (!backup_calendar_chars_ok(*g))
                        fail_msg("refused: %s", *g);
        for (const char *const *b = bad; *b; b++)
                if (backup_calendar_chars_ok(*b))
                        fail_msg("accepted: %s", *b);
}

static void unit_paths(void **state) {
        (void) state;
        assert_true(backup_unit_path_ok("/usr/bin/jabali-agentctl"));
        assert_true(backup_unit_path_ok("/opt/jb_1/a+b.sock"));
        assert_false(backup_unit_path_ok("usr/bin/x"));
        assert_false(backup_unit_path_ok("/usr/bin/a b"));
        assert_false(backup_unit_path_ok("/usr/bin/%n"));
        assert_false(backup_unit_path_ok("/usr/bin/a\\x20"));
        assert_false(backup_unit_path_ok("/usr/bin/'a'"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(timer_says_when),
                cmocka_unit_test(service_runs_the_cli),
                cmocka_unit_test(edited_and_foreign_units),
                cmocka_unit_test(calendar_characters),
                cmocka_unit_test(unit_paths),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
