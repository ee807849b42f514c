/* SPDX-License-Identifier: GPL-3.0-or-later */
/* backup.run: a backup of an account's home as a job. The handler answers
 * at once with the job_id; the work is done by a detached runner, a
 * grandchild of the worker in its own session (so recycling the worker,
 * one request at a time, never waits for or kills it) that stays in the
 * worker's hat and writes the job record as it goes.
 *
 * Order matters: the handler writes the queued record, naming the
 * runner's pid, before the runner may write anything (it waits for the
 * handler to close a pipe), so the job_id the caller gets always names a
 * record, and a runner that dies at any point leaves a record that readers
 * turn into interrupted.
 *
 * restic's exit status 3 means a snapshot was made without some files: the
 * job is partial, never succeeded. */

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backup-internal.h"

static void set_str(json_object *o, const char *k, const char *v) {
        json_object_object_add(o, k, json_object_new_string(v));
}

static void set_error(json_object *rec, const char *code, const char *msg) {
        json_object *e = json_object_new_object();

        set_str(e, "code", code);
        set_str(e, "message", msg);
        json_object_object_add(rec, "error", e);
}

/* The progress a finished run reached, from its summary (restic's last
 * status line comes before the end). */
static void final_progress(json_object *rec, json_object *sum) {
        json_object *p = json_object_new_object(), *v;

        json_object_object_add(p, "percent_done", json_object_new_double(1.0));
        if (json_object_object_get_ex(sum, "total_files_processed", &v))
                json_object_object_add(p, "files_done", json_object_get(v));
        if (json_object_object_get_ex(sum, "total_bytes_processed", &v))
                json_object_object_add(p, "bytes_done", json_object_get(v));
        json_object_object_add(rec, "progress", p);
}

/* The last status line is the progress; the summary names the snapshot. */
static void read_output(json_object *rec, json_object *stage, const char *out) {
        const char *line = out;

        while (line && *line) {
                const char *end = strchr(line, '\n');
                size_t n = end ? (size_t) (end - line) : strlen(line);
                char *copy = strndup(line, n);
                json_object *o = copy ? json_tokener_parse(copy) : NULL, *t;

                free(copy);
                if (o && json_object_object_get_ex(o, "message_type", &t)) {
                        if (strcmp(json_object_get_string(t), "status") == 0)
                                json_object_object_add(rec, "progress", json_object_get(o));
                        else if (strcmp(json_object_get_string(t), "summary") == 0) {
                                json_object_object_add(stage, "summary", json_object_get(o));
                                final_progress(rec, o);
                                if (json_object_object_get_ex(o, "snapshot_id", &t))
                                        json_object_object_add(rec, "snapshot_id", json_object_get(t));
                        }
                }
                json_object_put(o);
                line = end ? end + 1 : NULL;
        }
}

static void run_job(const backup_cfg *c, const backup_dest *d, json_object *rec, const char *user,
                    const char *home) {
        char tag[64];
        const char *args[] = { "backup", "--json", "--tag", tag, home, NULL };
        jb_err err = JB_ERR_INIT;
        json_object *stages = json_object_new_array(), *stage = json_object_new_object();
        jb_spawn_result r;
        const char *state;

        snprintf(tag, sizeof tag, "user=%s", user);
        json_object_object_add(rec, "pid", json_object_new_int64(getpid()));
        json_object_object_add(rec, "pid_start", json_object_new_int64(backup_pid_start(getpid())));
        set_str(rec, "state", "running");
        json_object_object_add(rec, "started_at", json_object_new_int64((int64_t) time(NULL)));
        set_str(stage, "name", "files");
        json_object_array_add(stages, stage);
        json_object_object_add(rec, "stages", stages);
        (void) backup_job_write(c, rec, NULL);

        if (backup_restic_run(c, d, args, 0, &r, &err) < 0) {
                state = "failed";
                set_error(rec, err.code, err.msg);
        } else {
                read_output(rec, stage, r.stdout_data);
                if (jb_spawn_succeeded(&r))
                        state = "succeeded";
                else if (r.exit_code == 3 && json_object_object_get_ex(rec, "snapshot_id", NULL)) {
                        state = "partial";
                        set_error(rec, BACKUP_E_PARTIAL, "the snapshot lacks files restic could not read");
                } else {
                        state = "failed";
                        backup_restic_err(&r, &err);
                        set_error(rec, err.code, err.msg);
                }
                json_object_object_add(stage, "exit_code", json_object_new_int(r.exit_code));
                jb_spawn_result_free(&r);
        }
        set_str(stage, "state", state);
        set_str(rec, "state", state);
        json_object_object_add(rec, "finished_at", json_object_new_int64((int64_t) time(NULL)));
        (void) backup_job_write(c, rec, NULL);
}

/* In the grandchild: wait until the handler has written the queued record
 * (it then writes one byte to `go`; end of file without it means the
 * handler gave up or died: there is no record to follow), drop every
 * descriptor of the worker, do the job. */
static void runner(const backup_cfg *c, const backup_dest *d, json_object *rec, const char *user, const char *home,
                   int go) {
        char b;
        ssize_t n;
        int null;

        while ((n = read(go, &b, 1)) < 0 && errno == EINTR)
                ;
        if (n != 1)
                _exit(0);
        null = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null >= 0) {
                dup2(null, 0);
                dup2(null, 1);
                dup2(null, 2);
        }
        closefrom(3);
        run_job(c, d, rec, user, home);
        _exit(0);
}

/* Starts the runner; returns its pid, or -1. */
static pid_t start_runner(const backup_cfg *c, const backup_dest *d, json_object *rec, const char *user,
                          const char *home, int *go_w, jb_err *err) {
        int pp[2], go[2];
        pid_t child, g = -1;
        ssize_t n;

        if (pipe2(pp, O_CLOEXEC) < 0)
                return jb_err_set(err, JB_E_INTERNAL, "pipe: %s", strerror(errno));
        if (pipe2(go, O_CLOEXEC) < 0) {
                close(pp[0]), close(pp[1]);
                return jb_err_set(err, JB_E_INTERNAL, "pipe: %s", strerror(errno));
        }
        child = fork();
        if (child == 0) {
                pid_t gc;

                close(pp[0]);
                close(go[1]);
                (void) setsid();
                gc = fork();
                if (gc == 0) {
                        close(pp[1]);
                        runner(c, d, rec, user, home, go[0]);
                }
                (void) !write(pp[1], &gc, sizeof gc);
                _exit(0);
        }
        close(pp[1]);
        close(go[0]);
        if (child < 0) {
                close(pp[0]), close(go[1]);
                return jb_err_set(err, JB_E_INTERNAL, "fork: %s", strerror(errno));
        }
        n = read(pp[0], &g, sizeof g);
        close(pp[0]);
        while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
                ;
        if (n != (ssize_t) sizeof g || g <= 0) {
                close(go[1]);
                return jb_err_set(err, JB_E_INTERNAL, "could not start the job's process");
        }
        *go_w = go[1];
        return g;
}

int backup_run(jb_call *call) {
        return backup_run_job(call, jb_call_params(call));
}

/* backup.run's work on `params` (validated against its schema), shared
 * with backup.schedule.run, whose params come from a stored schedule. */
int backup_run_job(jb_call *call, json_object *params) {
        jb_err err = JB_ERR_INIT;
        backup_cfg c;
        backup_dest d;
        char id[BACKUP_JOB_ID_LEN + 1];
        json_object *dest = NULL, *rec, *res = jb_call_result(call), *u = NULL;
        const char *user = json_object_object_get_ex(params, "user", &u) ? json_object_get_string(u) : "";
        struct passwd *pw;
        pid_t g;
        int go = -1;

        backup_cfg_from_settings(jb_call_settings(call), &c);
        json_object_object_get_ex(params, "destination", &dest);
        if (backup_dest_from_params(&c, dest, &d, &err) < 0)
                return jb_call_fail_err(call, &err);
        pw = getpwnam(user);
        if (!pw || pw->pw_dir[0] != '/')
                return jb_call_fail(call, JB_E_NOT_FOUND, "no account %s with a home", user);
        jb_call_set_changed(call, true);
        if (jb_call_dry_run(call))
                return 0;
        if (backup_job_new_id(id, &err) < 0)
                return jb_call_fail_err(call, &err);
        rec = json_object_new_object();
        set_str(rec, "job_id", id);
        set_str(rec, "kind", "backup");
        set_str(rec, "state", "queued");
        set_str(rec, "user", user);
        json_object_object_add(rec, "destination", json_object_get(dest));
        json_object_object_add(rec, "created_at", json_object_new_int64((int64_t) time(NULL)));
        g = start_runner(&c, &d, rec, user, pw->pw_dir, &go, &err);
        if (g < 0) {
                json_object_put(rec);
                return jb_call_fail_err(call, &err);
        }
        json_object_object_add(rec, "pid", json_object_new_int64(g));
        json_object_object_add(rec, "pid_start", json_object_new_int64(backup_pid_start(g)));
        if (backup_job_write(&c, rec, &err) < 0) {
                close(go);      /* without the byte: the runner gives up */
                json_object_put(rec);
                return jb_call_fail_err(call, &err);
        }
        (void) !write(go, "g", 1);
        close(go);
        json_object_put(rec);
        set_str(res, "job_id", id);
        set_str(res, "state", "queued");
        return 0;
}
