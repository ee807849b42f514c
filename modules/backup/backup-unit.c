/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The systemd timer and service of a schedule, as text. Nothing here
 * touches the host, so the unit tests link this file as it is.
 *
 * Units are rendered in C rather than from a template file: an
 * administrator who wants more (Nice=, a different delay) adds a drop-in
 * (jabali-backup-<id>.timer.d/), which systemd merges and this module
 * never touches, so there is nothing a template override would add.
 *
 * systemd reads '%' as a specifier, '\' and quotes as escapes in ExecStart=
 * and a trailing '\' as a continuation: none of them can reach a unit. The
 * schedule_id is a token ([A-Za-z0-9_.-]) by schema; paths and calendar
 * expressions are checked here. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jabali/stamp.h>

#include "backup-internal.h"

#define ADD(o, k, v) json_object_object_add((o), (k), (v))

bool backup_calendar_chars_ok(const char *s) {
        size_t n = strlen(s);

        if (n == 0 || s[0] == ' ' || s[n - 1] == ' ')
                return false;
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
                      strchr(" *:.,/~+_-", *s)))
                        return false;
        return true;
}

bool backup_unit_path_ok(const char *s) {
        if (s[0] != '/')
                return false;
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
                      strchr("/._+-", *s)))
                        return false;
        return true;
}

json_object *backup_unit_meta(const char *schedule_id, const char *on_calendar, const char *agentctl,
                              const char *agent_socket, int64_t randomized_delay_sec) {
        json_object *m = json_object_new_object();

        ADD(m, "schedule_id", json_object_new_string(schedule_id));
        ADD(m, "on_calendar", json_object_new_string(on_calendar));
        ADD(m, "agentctl", json_object_new_string(agentctl));
        ADD(m, "agent_socket", json_object_new_string(agent_socket));
        ADD(m, "randomized_delay_sec", json_object_new_int64(randomized_delay_sec));
        return m;
}

/* A member of the meta as a string, NULL when absent or not a string
 * (the meta may come from a file someone edited). */
static const char *meta_str(json_object *m, const char *k) {
        json_object *v;

        if (!json_object_object_get_ex(m, k, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

static char *service_body(json_object *m) {
        const char *id = meta_str(m, "schedule_id"), *ctl = meta_str(m, "agentctl"),
                   *sock = meta_str(m, "agent_socket");
        char *body = NULL;

        if (!id || !ctl || !sock)
                return NULL;
        if (asprintf(&body,
                     "[Unit]\n"
                     "Description=jabali backup schedule %s\n"
                     "Documentation=man:jabali-agentctl(1)\n"
                     "After=jabali-agent.socket\n"
                     "\n"
                     "[Service]\n"
                     "Type=oneshot\n"
                     "# Starts the backup as a job of the agent and ends; the job's record\n"
                     "# (backup.job.get) tells how it went.\n"
                     "ExecStart=%s%s%s --json call backup.schedule.run schedule_id==%s\n",
                     id, ctl, sock[0] ? " --socket=" : "", sock, id) < 0)
                return NULL;
        return body;
}

static char *timer_body(json_object *m) {
        const char *id = meta_str(m, "schedule_id"), *cal = meta_str(m, "on_calendar");
        json_object *d;
        char *body = NULL;

        if (!id || !cal || !json_object_object_get_ex(m, "randomized_delay_sec", &d) ||
            !json_object_is_type(d, json_type_int))
                return NULL;
        if (asprintf(&body,
                     "[Unit]\n"
                     "Description=jabali backup schedule %s\n"
                     "\n"
                     "[Timer]\n"
                     "OnCalendar=%s\n"
                     "Persistent=true\n"
                     "RandomizedDelaySec=%lld\n"
                     "Unit=" BACKUP_UNIT_PREFIX "%s.service\n"
                     "\n"
                     "[Install]\n"
                     "WantedBy=timers.target\n",
                     id, cal, (long long) json_object_get_int64(d), id) < 0)
                return NULL;
        return body;
}

int backup_unit_render(json_object *meta, backup_unit_kind kind, char **ret, size_t *ret_len, jb_err *err) {
        char *body = kind == BACKUP_UNIT_TIMER ? timer_body(meta) : service_body(meta);
        int r;

        *ret = NULL;
        if (!body)
                return jb_err_set(err, JB_E_INTERNAL, "a schedule unit's parameters are incomplete");
        r = jb_stamp_compose(BACKUP_UNIT_HEADER, meta, body, strlen(body), BACKUP_UNIT_MAX, ret, ret_len, err);
        free(body);
        return r;
}

backup_unit_owner backup_unit_owner_of(const char *text, size_t len, backup_unit_kind kind) {
        json_object *meta = jb_stamp_parse(BACKUP_UNIT_HEADER, text, len);
        backup_unit_owner o = BACKUP_UNIT_EDITED;
        char *again = NULL;
        size_t n = 0;

        if (!meta)
                return BACKUP_UNIT_FOREIGN;
        if (backup_unit_render(meta, kind, &again, &n, NULL) == 0 && again && n == len &&
            memcmp(again, text, len) == 0)
                o = BACKUP_UNIT_OURS;
        free(again);
        json_object_put(meta);
        return o;
}
