/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Backup schedules: a systemd timer and service per schedule
 * (units_dir/jabali-backup-<id>.timer and .service), whose service calls
 * backup.schedule.run through jabali-agentctl, and the schedule's job (the
 * params of backup.run) in a root-only file, schedules_dir/<id>.json.
 *
 * The job lives outside the units so that the units hold nothing but a
 * name: the service asks the agent to run "schedule <id>", and the agent
 * reads and checks the job again (against backup.run's schema of the day)
 * when it runs it.
 *
 * Like every writer, write converges: each file is compared with what is
 * on disk and replaced atomically only when it differs; systemd is told
 * (daemon-reload, enable, restart of the timer) only when a unit changed,
 * or when the timer is found not enabled or not active. A unit without
 * the module's first line, or one that is not exactly what its own first
 * line renders to (edited by hand), is CONFLICT and left alone.
 *
 * systemctl is a setting: empty means systemd is not told (a host, or a
 * test, without systemd as PID 1). */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jabali/fs.h>
#include <jabali/validate.h>

#include "backup-internal.h"

#define STATE_MAX (1u << 20)
#define ID_MAX 64
#define CALENDAR_TIMEOUT_MS 10000

typedef struct sched_cfg {
        const char *units_dir;          /* where the timer and service go */
        const char *schedules_dir;      /* the jobs of the schedules */
        const char *systemctl;          /* "" = systemd is not told */
        const char *systemd_analyze;
        const char *agentctl;           /* what the service runs */
        const char *agent_socket;       /* "" = agentctl's default */
        int64_t delay;                  /* RandomizedDelaySec= */
} sched_cfg;

static void sched_cfg_from(json_object *s, sched_cfg *c) {
        c->units_dir = jb_settings_str(s, "units_dir", "/etc/systemd/system");
        c->schedules_dir = jb_settings_str(s, "schedules_dir", "/var/lib/jabali/backup/schedules");
        c->systemctl = jb_settings_str(s, "systemctl", "/usr/bin/systemctl");
        c->systemd_analyze = jb_settings_str(s, "systemd_analyze", "/usr/bin/systemd-analyze");
        c->agentctl = jb_settings_str(s, "agentctl", "/usr/bin/jabali-agentctl");
        c->agent_socket = jb_settings_str(s, "agent_socket", "");
        c->delay = jb_settings_int(s, "randomized_delay_sec", 600);
}

static bool clean_abs(const char *p) {
        size_t n = strlen(p);

        return n >= 2 && p[0] == '/' && jb_valid_rel_path(p + 1, n - 1, NULL);
}

int backup_schedule_check_settings(json_object *s, jb_err *err) {
        sched_cfg c;

        sched_cfg_from(s, &c);
        if (!clean_abs(c.units_dir) || !clean_abs(c.schedules_dir) || !clean_abs(c.systemd_analyze) ||
            (c.systemctl[0] && !clean_abs(c.systemctl)))
                return jb_err_set(err, JB_E_CONFIG_INVALID, "units_dir, schedules_dir, systemd_analyze and "
                                  "systemctl (when set) must be clean absolute paths");
        /* They are written into the service's ExecStart=. */
        if (!clean_abs(c.agentctl) || !backup_unit_path_ok(c.agentctl) ||
            (c.agent_socket[0] && (!clean_abs(c.agent_socket) || !backup_unit_path_ok(c.agent_socket))))
                return jb_err_set(err, JB_E_CONFIG_INVALID, "agentctl and agent_socket must be clean absolute "
                                  "paths of [A-Za-z0-9/._+-]");
        return 0;
}

static void unit_name(char *out, size_t size, const char *id, backup_unit_kind kind) {
        snprintf(out, size, BACKUP_UNIT_PREFIX "%s.%s", id, kind == BACKUP_UNIT_TIMER ? "timer" : "service");
}

/* The schedules directory, made (root only) when `create`; -2 without
 * an error when it is missing and not to be made. */
static int open_state(const sched_cfg *c, bool create, jb_err *err) {
        struct stat st;

        if (create && mkdir(c->schedules_dir, 0700) < 0 && errno != EEXIST)
                return jb_err_set(err, JB_E_INTERNAL, "%s: %s", c->schedules_dir, strerror(errno));
        if (!create && stat(c->schedules_dir, &st) < 0 && errno == ENOENT)
                return -2;
        return jb_fs_open_root(c->schedules_dir, err);
}

/* A file's content, or *text NULL when there is none. Anything but a
 * regular file there is CONFLICT. */
static int read_file(int fd, const char *dir, const char *name, size_t max, char **text, size_t *len,
                     jb_err *err) {
        int k = jb_fs_kind_of(fd, name, err);

        *text = NULL;
        *len = 0;
        if (k < 0)
                return -1;
        if (k == JB_FS_MISSING)
                return 0;
        if (k != JB_FS_FILE)
                return jb_err_set(err, JB_E_CONFLICT, "%s/%s is not a regular file: left alone", dir, name);
        return jb_fs_read(fd, name, max, text, len, err);
}

/* An existing unit, which must be the module's own and as it wrote it. */
static int read_unit(int fd, const sched_cfg *c, const char *name, backup_unit_kind kind, char **text, size_t *len,
                     jb_err *err) {
        if (read_file(fd, c->units_dir, name, BACKUP_UNIT_MAX, text, len, err) < 0)
                return -1;
        if (!*text)
                return 0;
        switch (backup_unit_owner_of(*text, *len, kind)) {
        case BACKUP_UNIT_OURS:
                return 0;
        case BACKUP_UNIT_FOREIGN:
                jb_err_set(err, JB_E_CONFLICT, "%s/%s was not written by this module: left alone", c->units_dir, name);
                break;
        case BACKUP_UNIT_EDITED:
                jb_err_set(err, JB_E_CONFLICT, "%s/%s was changed by hand since this module wrote it: left alone",
                           c->units_dir, name);
                break;
        }
        free(*text);
        *text = NULL;
        return -1;
}

static bool differs(const char *old, size_t old_len, const char *new, size_t new_len) {
        return !old || old_len != new_len || memcmp(old, new, new_len) != 0;
}

/* ---- systemctl ---- */

/* Runs systemctl with args. A query (is-enabled, is-active) answers
 * through *yes; any other verb that fails is SERVICE_FAILED. */
static int ctl(jb_call *call, const sched_cfg *c, const char *const *args, bool *yes, jb_err *err) {
        const char *argv[8];
        size_t n = 0;
        jb_spawn_opts o = { .argv = argv, .timeout_ms = jb_call_remaining_ms(call) };
        jb_spawn_result r;
        int ret = 0;

        argv[n++] = c->systemctl;
        for (; args[n - 1] && n < 7; n++)
                argv[n] = args[n - 1];
        argv[n] = NULL;
        if (jb_spawn_run(&o, &r, err) < 0)
                return -1;
        if (yes)
                *yes = jb_spawn_succeeded(&r);
        else if (!jb_spawn_succeeded(&r))
                ret = jb_spawn_result_to_err(&r, err);
        jb_spawn_result_free(&r);
        return ret;
}

/* Is the timer enabled and active? Without systemctl there is no one to
 * ask, and nothing to do: yes. */
static int timer_running(jb_call *call, const sched_cfg *c, const char *timer, bool *yes, jb_err *err) {
        const char *enabled[] = { "is-enabled", "--quiet", timer, NULL };
        const char *active[] = { "is-active", "--quiet", timer, NULL };

        *yes = true;
        if (!c->systemctl[0])
                return 0;
        if (ctl(call, c, enabled, yes, err) < 0)
                return -1;
        if (*yes && ctl(call, c, active, yes, err) < 0)
                return -1;
        return 0;
}

/* After the units changed: reload, enable, and restart the timer so a
 * changed OnCalendar= counts from now. */
static int timer_apply(jb_call *call, const sched_cfg *c, const char *timer, bool reload, jb_err *err) {
        const char *daemon_reload[] = { "daemon-reload", NULL };
        const char *enable[] = { "enable", timer, NULL };
        const char *restart[] = { "restart", timer, NULL };

        if (!c->systemctl[0])
                return 0;
        if (reload && ctl(call, c, daemon_reload, NULL, err) < 0)
                return -1;
        if (ctl(call, c, enable, NULL, err) < 0 || ctl(call, c, restart, NULL, err) < 0)
                return -1;
        return 0;
}

/* ---- the stored job ---- */

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* A deep copy with every object's members sorted by name: the same job
 * given with its members in another order is the same file. */
static json_object *canonical(json_object *v) {
        json_object *out;
        const char **keys;
        size_t n, i = 0;

        if (json_object_is_type(v, json_type_array)) {
                out = json_object_new_array();
                for (size_t k = 0; k < json_object_array_length(v); k++)
                        json_object_array_add(out, canonical(json_object_array_get_idx(v, k)));
                return out;
        }
        if (!json_object_is_type(v, json_type_object))
                return json_object_get(v);
        n = (size_t) json_object_object_length(v);
        keys = calloc(n ? n : 1, sizeof *keys);
        if (!keys)
                return NULL;
        json_object_object_foreach(v, key, val) {
                (void) val;
                if (i < n)
                        keys[i++] = key;
        }
        qsort(keys, i, sizeof *keys, cmp_str);
        out = json_object_new_object();
        for (size_t k = 0; k < i; k++)
                json_object_object_add(out, keys[k], canonical(json_object_object_get(v, keys[k])));
        free(keys);
        return out;
}

static char *state_text(const char *id, const char *cal, json_object *job) {
        json_object *o = json_object_new_object();
        char *text = NULL;

        json_object_object_add(o, "job", canonical(job));
        json_object_object_add(o, "on_calendar", json_object_new_string(cal));
        json_object_object_add(o, "schedule_id", json_object_new_string(id));
        if (asprintf(&text, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN)) < 0)
                text = NULL;
        json_object_put(o);
        return text;
}

/* ---- backup.schedule.write ---- */

static int check_calendar(jb_call *call, const sched_cfg *c, const char *cal, jb_err *err) {
        const char *argv[] = { c->systemd_analyze, "calendar", "--", cal, NULL };
        uint64_t left = jb_call_remaining_ms(call);
        jb_spawn_opts o = { .argv = argv, .timeout_ms = left < CALENDAR_TIMEOUT_MS ? left : CALENDAR_TIMEOUT_MS };
        jb_spawn_result r;
        int ret = 0;

        if (!backup_calendar_chars_ok(cal))
                return jb_err_set(err, JB_E_INVALID_PARAMS, "on_calendar: only letters, digits, blanks (not at "
                                  "either end) and *:.,/~+_- make a calendar expression");
        if (jb_spawn_run(&o, &r, err) < 0)
                return -1;
        if (!jb_spawn_succeeded(&r)) {
                const char *e = r.stderr_data;
                int n = (int) strcspn(e, "\n");

                if (!r.timed_out && r.exit_code == 1)
                        ret = jb_err_set(err, JB_E_INVALID_PARAMS, "on_calendar: systemd refuses it: %.*s",
                                         n > 300 ? 300 : n, e);
                else
                        ret = jb_spawn_result_to_err(&r, err);
        }
        jb_spawn_result_free(&r);
        return ret;
}

/* The new content of the three files. */
typedef struct sched_files {
        char *unit[2];
        size_t unit_len[2];
        char *state;
} sched_files;

static void files_free(sched_files *f) {
        free(f->unit[0]);
        free(f->unit[1]);
        free(f->state);
}

static int render(const sched_cfg *c, const char *id, const char *cal, json_object *job, sched_files *f,
                  jb_err *err) {
        json_object *meta = backup_unit_meta(id, cal, c->agentctl, c->agent_socket, c->delay);
        int r = 0;

        memset(f, 0, sizeof *f);
        if (backup_unit_render(meta, BACKUP_UNIT_SERVICE, &f->unit[0], &f->unit_len[0], err) < 0 ||
            backup_unit_render(meta, BACKUP_UNIT_TIMER, &f->unit[1], &f->unit_len[1], err) < 0)
                r = -1;
        json_object_put(meta);
        if (r == 0 && !(f->state = state_text(id, cal, job)))
                r = jb_err_set(err, JB_E_INTERNAL, "out of memory");
        if (r < 0)
                files_free(f);
        return r;
}

/* Which of the units and the state file differ from what is on disk.
 * Refuses (CONFLICT) units that are not the module's own. */
static int compare(const sched_cfg *c, int ufd, int sfd, const char *id, const sched_files *f, bool unit_changed[2],
                   bool *state_changed, jb_err *err) {
        char name[NAME_MAX], *old;
        size_t len;

        for (int k = 0; k < 2; k++) {
                unit_name(name, sizeof name, id, (backup_unit_kind) k);
                if (read_unit(ufd, c, name, (backup_unit_kind) k, &old, &len, err) < 0)
                        return -1;
                unit_changed[k] = differs(old, len, f->unit[k], f->unit_len[k]);
                free(old);
        }
        *state_changed = true;
        if (sfd < 0)
                return 0;
        snprintf(name, sizeof name, "%s.json", id);
        if (read_file(sfd, c->schedules_dir, name, STATE_MAX, &old, &len, err) < 0)
                return -1;
        *state_changed = differs(old, len, f->state, strlen(f->state));
        free(old);
        return 0;
}

static int write_all(const sched_cfg *c, int ufd, int sfd, const char *id, const sched_files *f, jb_err *err) {
        char name[NAME_MAX];

        (void) c;
        snprintf(name, sizeof name, "%s.json", id);
        if (jb_fs_write_atomic(sfd, name, f->state, strlen(f->state), 0600, 0, 0, err) < 0)
                return -1;
        /* The service first: the timer names it. */
        for (int k = 0; k < 2; k++) {
                unit_name(name, sizeof name, id, (backup_unit_kind) k);
                if (jb_fs_write_atomic(ufd, name, f->unit[k], f->unit_len[k], 0644, 0, 0, err) < 0)
                        return -1;
        }
        return 0;
}

/* The job must be one backup.run would take, destination included. */
static int check_job(jb_call *call, json_object *job, jb_err *err) {
        backup_cfg bc;
        BACKUP_DEST_WIPED backup_dest d;
        json_object *dest = NULL;

        if (jb_schema_validate(backup_run_schema, job, err) < 0) {
                jb_err_prefix(err, "job: ");
                return -1;
        }
        backup_cfg_from_settings(jb_call_settings(call), &bc);
        json_object_object_get_ex(job, "destination", &dest);
        if (backup_dest_from_params(&bc, dest, &d, err) < 0) {
                jb_err_prefix(err, "job: ");
                return -1;
        }
        return 0;
}

static void answer(jb_call *call, const char *id) {
        json_object *res = jb_call_result(call);
        char name[NAME_MAX];

        json_object_object_add(res, "schedule_id", json_object_new_string(id));
        unit_name(name, sizeof name, id, BACKUP_UNIT_TIMER);
        json_object_object_add(res, "timer", json_object_new_string(name));
        unit_name(name, sizeof name, id, BACKUP_UNIT_SERVICE);
        json_object_object_add(res, "service", json_object_new_string(name));
}

int backup_schedule_write(jb_call *call) {
        jb_err err = JB_ERR_INIT;
        sched_cfg c;
        sched_files f;
        const char *id = jb_param_str(call, "schedule_id", ""), *cal = jb_param_str(call, "on_calendar", "");
        json_object *job = NULL;
        char timer[NAME_MAX];
        bool unit_changed[2], state_changed, running = true, dry = jb_call_dry_run(call);
        int ufd = -1, sfd = -1, ret = -1;

        sched_cfg_from(jb_call_settings(call), &c);
        json_object_object_get_ex(jb_call_params(call), "job", &job);
        if (check_calendar(call, &c, cal, &err) < 0 || check_job(call, job, &err) < 0)
                return jb_call_fail_err(call, &err);
        if (render(&c, id, cal, job, &f, &err) < 0)
                return jb_call_fail_err(call, &err);
        unit_name(timer, sizeof timer, id, BACKUP_UNIT_TIMER);
        ufd = jb_fs_open_root(c.units_dir, &err);
        if (ufd < 0)
                goto out;
        sfd = open_state(&c, !dry, &err);
        if (sfd == -1)
                goto out;
        if (compare(&c, ufd, sfd, id, &f, unit_changed, &state_changed, &err) < 0)
                goto out;
        if (!unit_changed[0] && !unit_changed[1] && timer_running(call, &c, timer, &running, &err) < 0)
                goto out;
        answer(call, id);
        jb_call_set_changed(call, unit_changed[0] || unit_changed[1] || state_changed || !running);
        ret = 0;
        if (dry)
                goto out;
        if (write_all(&c, ufd, sfd, id, &f, &err) < 0 ||
            ((unit_changed[0] || unit_changed[1] || !running) &&
             timer_apply(call, &c, timer, unit_changed[0] || unit_changed[1], &err) < 0))
                ret = -1;
out:
        files_free(&f);
        if (ufd >= 0)
                close(ufd);
        if (sfd >= 0)
                close(sfd);
        return ret < 0 ? jb_call_fail_err(call, &err) : 0;
}

/* ---- backup.schedule.delete ---- */

int backup_schedule_delete(jb_call *call) {
        jb_err err = JB_ERR_INIT;
        sched_cfg c;
        const char *id = jb_param_str(call, "schedule_id", "");
        char names[2][NAME_MAX], state[NAME_MAX], *text[2] = { NULL, NULL };
        size_t len;
        int ufd, sfd = -2, ret = -1, has_state = JB_FS_MISSING;

        sched_cfg_from(jb_call_settings(call), &c);
        ufd = jb_fs_open_root(c.units_dir, &err);
        if (ufd < 0)
                return jb_call_fail_err(call, &err);
        for (int k = 0; k < 2; k++) {
                unit_name(names[k], sizeof names[k], id, (backup_unit_kind) k);
                if (read_unit(ufd, &c, names[k], (backup_unit_kind) k, &text[k], &len, &err) < 0)
                        goto out;
        }
        snprintf(state, sizeof state, "%s.json", id);
        sfd = open_state(&c, false, &err);
        if (sfd == -1)
                goto out;
        if (sfd >= 0 && (has_state = jb_fs_kind_of(sfd, state, &err)) < 0)
                goto out;
        if (has_state != JB_FS_MISSING && has_state != JB_FS_FILE) {
                jb_err_set(&err, JB_E_CONFLICT, "%s/%s is not a regular file: left alone", c.schedules_dir, state);
                goto out;
        }
        answer(call, id);
        jb_call_set_changed(call, text[0] || text[1] || has_state);
        ret = 0;
        if (jb_call_dry_run(call))
                goto out;
        /* Stopped and disabled first: a timer never fires for a schedule
         * whose job is gone. */
        if (text[1] && c.systemctl[0]) {
                const char *disable[] = { "disable", "--now", names[1], NULL };

                if (ctl(call, &c, disable, NULL, &err) < 0) {
                        ret = -1;
                        goto out;
                }
        }
        if (jb_fs_unlink(ufd, names[1], &err) < 0 || jb_fs_unlink(ufd, names[0], &err) < 0 ||
            (has_state && jb_fs_unlink(sfd, state, &err) < 0)) {
                ret = -1;
                goto out;
        }
        if ((text[0] || text[1]) && c.systemctl[0]) {
                const char *daemon_reload[] = { "daemon-reload", NULL };

                ret = ctl(call, &c, daemon_reload, NULL, &err);
        }
out:
        free(text[0]);
        free(text[1]);
        close(ufd);
        if (sfd >= 0)
                close(sfd);
        return ret < 0 ? jb_call_fail_err(call, &err) : 0;
}

/* ---- backup.schedule.run ---- */

/* The stored schedule of `id` (NOT_FOUND when there is none). */
static int read_schedule(const sched_cfg *c, const char *id, json_object **ret, jb_err *err) {
        char name[NAME_MAX], *text = NULL;
        size_t len;
        int fd = open_state(c, false, err), r;

        *ret = NULL;
        if (fd == -2)
                return jb_err_set(err, JB_E_NOT_FOUND, "no schedule %s", id);
        if (fd < 0)
                return -1;
        snprintf(name, sizeof name, "%s.json", id);
        r = read_file(fd, c->schedules_dir, name, STATE_MAX, &text, &len, err);
        close(fd);
        if (r < 0)
                return -1;
        if (!text)
                return jb_err_set(err, JB_E_NOT_FOUND, "no schedule %s", id);
        *ret = json_tokener_parse(text);
        free(text);
        if (!*ret || !json_object_is_type(*ret, json_type_object)) {
                json_object_put(*ret);
                *ret = NULL;
                return jb_err_set(err, JB_E_CONFLICT, "%s/%s is not a JSON object", c->schedules_dir, name);
        }
        return 0;
}

int backup_schedule_run(jb_call *call) {
        jb_err err = JB_ERR_INIT;
        sched_cfg c;
        const char *id = jb_param_str(call, "schedule_id", "");
        json_object *sched, *job = NULL;
        int r;

        sched_cfg_from(jb_call_settings(call), &c);
        if (read_schedule(&c, id, &sched, &err) < 0)
                return jb_call_fail_err(call, &err);
        /* backup.run's schema may have changed since the job was stored. */
        if (!json_object_object_get_ex(sched, "job", &job) || jb_schema_validate(backup_run_schema, job, &err) < 0) {
                char why[JB_ERR_MSG_MAX];

                json_object_put(sched);
                snprintf(why, sizeof why, "%s", err.code[0] ? err.msg : "no job");
                return jb_call_fail(call, JB_E_CONFLICT, "schedule %s: its job is not one backup.run takes (%s)", id,
                                    why);
        }
        r = backup_run_params(call, job, id);
        json_object_put(sched);
        if (r == 0)
                json_object_object_add(jb_call_result(call), "schedule_id", json_object_new_string(id));
        return r;
}

/* ---- backup.schedule.list ---- */

static int cmp_schedule(const void *a, const void *b) {
        json_object *x = *(json_object *const *) a, *y = *(json_object *const *) b;

        return strcmp(json_object_get_string(json_object_object_get(x, "schedule_id")),
                      json_object_get_string(json_object_object_get(y, "schedule_id")));
}

/* The schedule of a directory entry "<id>.json", or NULL to skip it. */
static json_object *listed(const sched_cfg *c, const char *file) {
        size_t n = strlen(file);
        char id[ID_MAX + 1];
        json_object *s = NULL, *v;
        const char *why;

        if (n <= 5 || n - 5 > ID_MAX || strcmp(file + n - 5, ".json") != 0)
                return NULL;
        memcpy(id, file, n - 5);
        id[n - 5] = '\0';
        if (!jb_valid_token(id, n - 5, &why) || read_schedule(c, id, &s, NULL) < 0)
                return NULL;
        if (!json_object_object_get_ex(s, "schedule_id", &v) || strcmp(json_object_get_string(v), id) != 0) {
                json_object_put(s);
                return NULL;
        }
        return s;
}

int backup_schedule_list(jb_call *call) {
        sched_cfg c;
        json_object *out = json_object_new_array();
        DIR *dir;
        struct dirent *e;

        sched_cfg_from(jb_call_settings(call), &c);
        json_object_object_add(jb_call_result(call), "schedules", out);
        dir = opendir(c.schedules_dir);
        if (!dir) {
                if (errno == ENOENT)
                        return 0;
                return jb_call_fail(call, JB_E_INTERNAL, "%s: %s", c.schedules_dir, strerror(errno));
        }
        while ((e = readdir(dir))) {
                json_object *s = listed(&c, e->d_name);

                if (s)
                        json_object_array_add(out, s);
        }
        closedir(dir);
        json_object_array_sort(out, cmp_schedule);
        return 0;
}
