/* SPDX-License-Identifier: GPL-3.0-or-later */
/* A job's process. backup.run and backup.restore answer at once; the work
 * is done by a detached runner, a grandchild of the worker in a session of
 * its own (recycling the worker, one request at a time, neither waits for
 * nor kills it), still in the worker's hat, holding no descriptor of the
 * worker. It writes the job record as it goes.
 *
 * Order matters: the handler writes the queued record naming the runner's
 * pid before the runner may write anything (it waits for one byte on a
 * pipe), so a job_id always names a record, and a runner that dies at any
 * point leaves a record that readers turn into interrupted.
 *
 * Cancelling is a SIGTERM to the runner (backup.job.cancel). The runner
 * does not die of it: the handler makes its cancel pipe readable, which
 * stops the program running (restic gets SIGTERM, so it drops its lock
 * and writes no snapshot) and every stage not begun yet. */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backup-internal.h"

/* Progress is written to the record at most this often. */
#define PROGRESS_WRITE_MS 500

static int cancel_w = -1;       /* the runner's cancel pipe, write end */
/* The pipe stops whatever runs; this says whether the caller asked (it
 * also stops a stalled restic, which is not a cancel). */
static volatile sig_atomic_t cancel_requested;

static void on_term(int sig) {
        int e = errno;

        (void) sig;
        cancel_requested = 1;
        (void) !write(cancel_w, "c", 1);
        errno = e;
}

uint64_t backup_mono_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
}

static void set_str(json_object *o, const char *k, const char *v) {
        json_object_object_add(o, k, json_object_new_string(v));
}

static void set_error(json_object *o, const char *code, const char *msg) {
        json_object *e = json_object_new_object();

        set_str(e, "code", code);
        set_str(e, "message", msg);
        json_object_object_add(o, "error", e);
}

static void write_record(backup_job *j) {
        (void) backup_job_write(j->c, j->rec, NULL);
        j->last_write_ms = backup_mono_ms();
}

bool backup_job_cancelled(backup_job *j) {
        if (cancel_requested)
                j->cancel_asked = true;
        return j->cancel_asked;
}

void backup_job_stop_programs(backup_job *j) {
        j->stopping = true;
        (void) !write(cancel_w, "s", 1);
}

/* After a stop that was not a cancel: the pipe emptied (it is
 * non-blocking), and readable again if a cancel came meanwhile. */
static void stop_done(backup_job *j) {
        char b[16];

        if (!j->stopping)
                return;
        while (read(j->cancel_fd, b, sizeof b) > 0)
                ;
        j->stopping = false;
        if (cancel_requested)
                (void) !write(cancel_w, "c", 1);
}

void backup_job_stage_fail(backup_job *j, json_object *stage, const jb_err *err) {
        backup_job_stage_end(j, stage, strcmp(err->code, BACKUP_E_CANCELLED) == 0 ? "cancelled" : "failed", err);
}

json_object *backup_job_stage_begin(backup_job *j, const char *name) {
        json_object *stages, *stage = json_object_new_object();

        if (!json_object_object_get_ex(j->rec, "stages", &stages)) {
                stages = json_object_new_array();
                json_object_object_add(j->rec, "stages", stages);
        }
        set_str(stage, "name", name);
        set_str(stage, "state", "running");
        json_object_object_add(stage, "started_at", json_object_new_int64((int64_t) time(NULL)));
        json_object_array_add(stages, stage);
        json_object_object_del(j->rec, "progress");
        write_record(j);
        return stage;
}

void backup_job_stage_end(backup_job *j, json_object *stage, const char *state, const jb_err *err) {
        stop_done(j);
        set_str(stage, "state", state);
        json_object_object_add(stage, "finished_at", json_object_new_int64((int64_t) time(NULL)));
        if (err && err->code[0])
                set_error(stage, err->code, err->msg);
        write_record(j);
}

void backup_job_progress(backup_job *j, json_object *progress) {
        json_object_object_add(j->rec, "progress", progress);
        if (backup_mono_ms() - j->last_write_ms >= PROGRESS_WRITE_MS)
                write_record(j);
}

/* failed beats cancelled beats partial beats succeeded: a job is no better
 * than its worst stage, and the error shown is that stage's. */
static int rank(const char *state) {
        static const char *const order[] = { "succeeded", "skipped", "partial", "cancelled", "failed" };

        for (int i = (int) (sizeof order / sizeof order[0]) - 1; i >= 0; i--)
                if (strcmp(state, order[i]) == 0)
                        return i;
        return 4;       /* an unfinished stage at the end is a failure */
}

void backup_job_finish(backup_job *j) {
        json_object *stages, *worst = NULL, *v;
        const char *state = "succeeded";
        size_t n;

        if (json_object_object_get_ex(j->rec, "stages", &stages) && (n = json_object_array_length(stages)) > 0) {
                for (size_t i = 0; i < n; i++) {
                        json_object *s = json_object_array_get_idx(stages, i);
                        const char *st = json_object_get_string(json_object_object_get(s, "state"));

                        if (rank(st) > rank(state)) {
                                state = rank(st) == 4 ? "failed" : st;
                                worst = s;
                        }
                }
        }
        if (strcmp(state, "skipped") == 0)
                state = "succeeded";
        if (backup_job_cancelled(j) && strcmp(state, "failed") != 0)
                state = "cancelled";
        set_str(j->rec, "state", state);
        if (worst && json_object_object_get_ex(worst, "error", &v))
                json_object_object_add(j->rec, "error", json_object_get(v));
        else if (strcmp(state, "cancelled") == 0)
                set_error(j->rec, BACKUP_E_CANCELLED, "cancelled at the caller's request");
        json_object_object_add(j->rec, "finished_at", json_object_new_int64((int64_t) time(NULL)));
        write_record(j);
}

/* In the grandchild: wait until the handler has written the queued record
 * (one byte on `go`; end of file without it means the handler gave up or
 * died: there is no record to follow), drop every descriptor of the
 * worker, take SIGTERM as a cancel, do the job. */
static _Noreturn void runner(const backup_cfg *c, json_object *rec, backup_job_fn fn, void *arg, int go) {
        backup_job j = { .c = c, .rec = rec, .cancel_fd = -1 };
        struct sigaction sa = { .sa_handler = on_term };
        sigset_t none;
        int cp[2], null;
        ssize_t n;
        char b;

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
        /* Above 2, as jb_spawn_io wants its cancel descriptor. */
        if (pipe2(cp, O_CLOEXEC | O_NONBLOCK) < 0)
                _exit(1);
        j.cancel_fd = cp[0];
        cancel_w = cp[1];
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESTART;
        (void) sigaction(SIGTERM, &sa, NULL);
        (void) sigaction(SIGINT, &sa, NULL);
        sigemptyset(&none);
        (void) sigprocmask(SIG_SETMASK, &none, NULL);

        json_object_object_add(rec, "pid", json_object_new_int64(getpid()));
        json_object_object_add(rec, "pid_start", json_object_new_int64(backup_pid_start(getpid())));
        json_object_object_add(rec, "sid", json_object_new_int64(getsid(0)));
        set_str(rec, "state", "running");
        json_object_object_add(rec, "started_at", json_object_new_int64((int64_t) time(NULL)));
        write_record(&j);
        fn(&j, arg);
        backup_job_finish(&j);
        _exit(0);
}

/* Starts the runner; returns its pid, or -1. */
static pid_t start_runner(const backup_cfg *c, json_object *rec, backup_job_fn fn, void *arg, int *go_w,
                          jb_err *err) {
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
                        runner(c, rec, fn, arg, go[0]);
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

int backup_job_launch(jb_call *call, const backup_cfg *c, json_object *rec, char id[BACKUP_JOB_ID_LEN + 1],
                      backup_job_fn fn, void *arg) {
        jb_err err = JB_ERR_INIT;
        json_object *res = jb_call_result(call);
        int r;

        if (backup_job_new_id(id, &err) < 0) {
                json_object_put(rec);
                return jb_call_fail_err(call, &err);
        }
        set_str(rec, "job_id", id);
        backup_job_expire(c);
        r = backup_job_start(c, rec, fn, arg, &err);
        json_object_put(rec);
        if (r < 0)
                return jb_call_fail_err(call, &err);
        set_str(res, "job_id", id);
        set_str(res, "state", "queued");
        return 0;
}

int backup_job_start(const backup_cfg *c, json_object *rec, backup_job_fn fn, void *arg, jb_err *err) {
        pid_t g;
        int go = -1;

        set_str(rec, "state", "queued");
        json_object_object_add(rec, "created_at", json_object_new_int64((int64_t) time(NULL)));
        g = start_runner(c, rec, fn, arg, &go, err);
        if (g < 0)
                return -1;
        json_object_object_add(rec, "pid", json_object_new_int64(g));
        json_object_object_add(rec, "pid_start", json_object_new_int64(backup_pid_start(g)));
        if (backup_job_write(c, rec, err) < 0) {
                close(go);      /* without the byte: the runner gives up */
                return -1;
        }
        (void) !write(go, "g", 1);
        close(go);
        return 0;
}
