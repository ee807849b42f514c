/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Running restic: argv only, the scrubbed environment of jb_spawn plus
 * what restic needs to find the repository, its password and its cache.
 * restic 0.14 answers most failures with exit status 1 and a fixed
 * sentence on stderr; those sentences are mapped to stable codes here. */

#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "backup-internal.h"


/* restic 0.14 prints a status line 40-60 times a second with --json;
 * four times a second is plenty for a record written twice a second. */
#define PROGRESS_FPS "RESTIC_PROGRESS_FPS=4"

/* Unreadable items a stage lists by name; the rest are only counted. */
#define UNREADABLE_MAX 100

/* What jb_spawn_run_io would have closed, when it is not reached. */
static void close_io(jb_spawn_io *io) {
        if (io && io->stdin_fd > 2)
                io->stdin_fd = (close(io->stdin_fd), 0);
        if (io && io->stdout_fd > 2)
                io->stdout_fd = (close(io->stdout_fd), 0);
}

static int restic_run(const backup_cfg *c, const backup_dest *d, const char *const *args, const void *in,
                      size_t len, uint64_t timeout_ms, jb_spawn_io *io, jb_spawn_result *r, jb_err *err) {
        char repo[BACKUP_REPO_MAX + 32], pw[PATH_MAX + 32], cache[PATH_MAX + 32];
        const char *argv[BACKUP_RESTIC_ARGS_MAX + 4], *env[] = { repo, pw, cache, PROGRESS_FPS, NULL };
        size_t n = 0, i = 0;
        jb_spawn_opts o = { .argv = argv, .env = env, .timeout_ms = timeout_ms, .max_output = BACKUP_OUTPUT_MAX,
                            .stdin_data = in, .stdin_len = len };
        int ret;

        argv[n++] = c->restic;
        if (d->option[0]) {
                argv[n++] = "-o";
                argv[n++] = d->option;
        }
        for (; args[i]; i++) {
                if (i >= BACKUP_RESTIC_ARGS_MAX) {
                        close_io(io);
                        return jb_err_set(err, JB_E_INTERNAL, "too many restic arguments");
                }
                argv[n++] = args[i];
        }
        argv[n] = NULL;
        if ((size_t) snprintf(repo, sizeof repo, "RESTIC_REPOSITORY=%s", d->repository) >= sizeof repo ||
            (size_t) snprintf(pw, sizeof pw, "RESTIC_PASSWORD_FILE=%s", d->password_file) >= sizeof pw ||
            (size_t) snprintf(cache, sizeof cache, "RESTIC_CACHE_DIR=%s", c->cache_dir) >= sizeof cache) {
                explicit_bzero(repo, sizeof repo);
                close_io(io);
                return jb_err_set(err, JB_E_INVALID_PARAMS, "a restic path is too long");
        }
        if (io) {
                o.max_output = 1u << 20;        /* the longest line kept */
                ret = jb_spawn_run_io(&o, io, r, err);
        } else
                ret = jb_spawn_run(&o, r, err);
        explicit_bzero(repo, sizeof repo);
        if (ret == 0)
                backup_remote_scrub(d, r);
        return ret;
}

int backup_restic_run_input(const backup_cfg *c, const backup_dest *d, const char *const *args, const void *in,
                            size_t len, uint64_t timeout_ms, jb_spawn_result *r, jb_err *err) {
        return restic_run(c, d, args, in, len, timeout_ms, NULL, r, err);
}

int backup_restic_run(const backup_cfg *c, const backup_dest *d, const char *const *args, uint64_t timeout_ms,
                      jb_spawn_result *r, jb_err *err) {
        return restic_run(c, d, args, NULL, 0, timeout_ms, NULL, r, err);
}

int backup_restic_run_io(const backup_cfg *c, const backup_dest *d, const char *const *args, jb_spawn_io *io,
                         jb_spawn_result *r, jb_err *err) {
        return restic_run(c, d, args, NULL, 0, 0, io, r, err);
}

int backup_restic_exec(const backup_exec *x, const char *const *args, jb_spawn_result *r, jb_err *err) {
        jb_spawn_io io = { .cancel_fd = x->job ? x->job->cancel_fd : 0, .cancel_signal = SIGINT };

        if (!x->job)
                return restic_run(x->c, x->d, args, NULL, 0, jb_call_remaining_ms(x->call), NULL, r, err);
        if (restic_run(x->c, x->d, args, NULL, 0, 0, &io, r, err) < 0)
                return -1;
        if (!io.cancelled)
                return 0;
        jb_spawn_result_free(r);
        backup_restic_cancelled(x->job, x->d, NULL, err);
        return -1;
}

/* A stage's restic as its output shows it. restic 0.14 can hang for good
 * when a pack upload fails (seen with a full destination: the uploaders
 * are gone, the final flush waits on them), printing unchanged status
 * lines and refreshing its lock; what it reported last is watched, and
 * restic stopped when it has not moved for stall_ms. */
typedef struct watch {
        backup_job *job;
        json_object *stage;
        uint64_t last_move_ms;          /* 0 until the first status line */
        double pct;
        int64_t bytes, files, total_bytes;
        bool stalled;
} watch;

static int64_t int_of(json_object *o, const char *k) {
        json_object *v;

        return json_object_object_get_ex(o, k, &v) ? json_object_get_int64(v) : 0;
}

static void watch_stall(watch *w, json_object *status) {
        json_object *v;
        double pct = json_object_object_get_ex(status, "percent_done", &v) ? json_object_get_double(v) : 0;
        int64_t bytes = int_of(status, "bytes_done"), files = int_of(status, "files_done");
        int64_t total = int_of(status, "total_bytes");
        uint64_t now = backup_mono_ms();

        if (w->last_move_ms == 0 || pct != w->pct || bytes != w->bytes || files != w->files ||
            total != w->total_bytes) {
                w->last_move_ms = now;
                w->pct = pct;
                w->bytes = bytes;
                w->files = files;
                w->total_bytes = total;
                return;
        }
        if (!w->stalled && w->job->c->stall_ms > 0 && now - w->last_move_ms >= w->job->c->stall_ms) {
                w->stalled = true;
                backup_job_stop_programs(w->job);
        }
}

/* A number of restic's as one the protocol carries: integers within
 * 0..INT64_MAX, finite doubles. restic prints seconds_remaining as 2^63
 * when a stream has delivered nothing yet, which json-c reads as an
 * unsigned integer the agent's own JSON check rightly refuses. */
static json_object *clean_number(json_object *v) {
        double d;
        int64_t n;

        if (json_object_is_type(v, json_type_double)) {
                d = json_object_get_double(v);
                return json_object_new_double(isfinite(d) && d > 0 ? d : 0);
        }
        n = json_object_get_int64(v);   /* json-c clamps what does not fit */
        return json_object_new_int64(n > 0 ? n : 0);
}

/* The members of a status line a caller wants; restic leaves out zeros. */
static json_object *progress_of(json_object *status) {
        static const char *const keep[] = { "percent_done", "total_files", "files_done", "total_bytes",
                                            "bytes_done", "seconds_elapsed", "seconds_remaining" };
        json_object *p = json_object_new_object(), *v;

        for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++)
                json_object_object_add(p, keep[i], json_object_object_get_ex(status, keep[i], &v)
                                                           ? clean_number(v)
                                                           : (i == 0 ? json_object_new_double(0)
                                                                     : json_object_new_int(0)));
        return p;
}

/* restic's summary line, its numbers cleaned and its snapshot id kept. */
static json_object *summary_of(json_object *sum) {
        json_object *out = json_object_new_object();

        json_object_object_foreach(sum, k, v) {
                if (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double))
                        json_object_object_add(out, k, clean_number(v));
                else if (json_object_is_type(v, json_type_string))
                        json_object_object_add(out, k, json_object_new_string(json_object_get_string(v)));
        }
        return out;
}

/* The summary's counts as the finished stage's progress. */
static json_object *final_progress(json_object *sum) {
        json_object *p = json_object_new_object(), *v;

        json_object_object_add(p, "percent_done", json_object_new_double(1.0));
        if (json_object_object_get_ex(sum, "total_files_processed", &v)) {
                json_object_object_add(p, "total_files", clean_number(v));
                json_object_object_add(p, "files_done", clean_number(v));
        }
        if (json_object_object_get_ex(sum, "total_bytes_processed", &v)) {
                json_object_object_add(p, "total_bytes", clean_number(v));
                json_object_object_add(p, "bytes_done", clean_number(v));
        }
        return p;
}

/* One of restic's --json lines (stdout: status, summary; stderr: error),
 * with its message_type in *type; NULL for any other line. */
static json_object *message_of(const char *line, size_t len, const char **type) {
        json_tokener *tok;
        json_object *o, *t;

        if (len == 0 || line[0] != '{' || !(tok = json_tokener_new()))
                return NULL;
        o = json_tokener_parse_ex(tok, line, (int) (len > INT32_MAX ? INT32_MAX : len));
        json_tokener_free(tok);
        if (!o || !json_object_object_get_ex(o, "message_type", &t) || !json_object_is_type(t, json_type_string)) {
                json_object_put(o);
                return NULL;
        }
        *type = json_object_get_string(t);
        return o;
}

static void on_line(const char *line, size_t len, void *arg) {
        watch *w = arg;
        json_object *o, *t;
        const char *type;

        if (!(o = message_of(line, len, &type)))
                return;
        if (strcmp(type, "status") == 0) {
                watch_stall(w, o);
                backup_job_progress(w->job, progress_of(o));
        }
        else if (strcmp(type, "summary") == 0) {
                json_object_object_add(w->stage, "summary", summary_of(o));
                if (json_object_object_get_ex(o, "snapshot_id", &t))
                        json_object_object_add(w->stage, "snapshot_id", json_object_get(t));
                backup_job_progress(w->job, final_progress(o));
        }
        json_object_put(o);
}

/* A snapshot that must not stay: a cancelled run that finished anyway, or
 * one whose input was cut short. */
static void forget_snapshot(const backup_cfg *c, const backup_dest *d, json_object *stage) {
        json_object *id;
        jb_spawn_result r;
        const char *args[] = { "forget", NULL, NULL };

        if (!json_object_object_get_ex(stage, "snapshot_id", &id))
                return;
        args[1] = json_object_get_string(id);
        if (backup_restic_run(c, d, args, 120000, &r, NULL) == 0) {
                if (jb_spawn_succeeded(&r))
                        json_object_object_add(stage, "snapshot_forgotten", json_object_get(id));
                jb_spawn_result_free(&r);
        }
        json_object_object_del(stage, "snapshot_id");
}

void backup_restic_forget(const backup_cfg *c, const backup_dest *d, json_object *stage) {
        forget_snapshot(c, d, stage);
}


/* One of restic's error lines, {"message_type":"error","error":{"Op",
 * "Path","Err"},"during","item"}, as {path, op, reason}; NULL for any
 * other line. `error` is {} for a directory. */
static json_object *unreadable_item(const char *line, size_t len) {
        json_object *o, *e, *v, *item = NULL;
        const char *type;

        if (!(o = message_of(line, len, &type)))
                return NULL;
        if (strcmp(type, "error") == 0 && json_object_object_get_ex(o, "item", &v)) {
                item = json_object_new_object();
                json_object_object_add(item, "path", json_object_new_string(json_object_get_string(v)));
                if (json_object_object_get_ex(o, "error", &e) && json_object_object_get_ex(e, "Op", &v))
                        json_object_object_add(item, "op", json_object_new_string(json_object_get_string(v)));
                if (json_object_object_get_ex(o, "error", &e) && json_object_object_get_ex(e, "Err", &v) &&
                    json_object_is_type(v, json_type_int))
                        json_object_object_add(item, "reason",
                                               json_object_new_string(strerror(json_object_get_int(v))));
        }
        json_object_put(o);
        return item;
}

/* What restic could not read, from its stderr: the first UNREADABLE_MAX
 * items as `unreadable`, all of them counted in `unreadable_count`. */
static size_t list_unreadable(const jb_spawn_result *r, json_object *stage) {
        const char *line = r->stderr_data, *end, *stop = line ? line + r->stderr_len : NULL;
        json_object *list = json_object_new_array(), *item;
        size_t n = 0;

        for (; line && line < stop; line = end + 1) {
                end = memchr(line, '\n', (size_t) (stop - line));
                if (!end)
                        end = stop;
                if (!(item = unreadable_item(line, (size_t) (end - line))))
                        continue;
                if (n++ < UNREADABLE_MAX)
                        json_object_array_add(list, item);
                else
                        json_object_put(item);
        }
        if (n > 0) {
                json_object_object_add(stage, "unreadable", list);
                json_object_object_add(stage, "unreadable_count", json_object_new_int64((int64_t) n));
        } else
                json_object_put(list);
        return n;
}

void backup_restic_unlock(const backup_cfg *c, const backup_dest *d, json_object *out) {
        static const char *const args[] = { "unlock", NULL };
        jb_spawn_result r;

        if (backup_restic_run(c, d, args, 60000, &r, NULL) < 0)
                return;
        if (out)
                json_object_object_add(out, "stale_locks_removed", json_object_new_boolean(jb_spawn_succeeded(&r)));
        jb_spawn_result_free(&r);
}

const char *backup_restic_cancelled(backup_job *j, const backup_dest *d, json_object *out, jb_err *err) {
        j->cancel_asked = true;
        jb_err_set_code(err, BACKUP_E_CANCELLED, "cancelled at the caller's request");
        backup_restic_unlock(j->c, d, out);
        return "cancelled";
}

/* Why a stalled stage failed: DEST_FULL when a local destination has
 * less room than the stage meant to save (restic removed what it had
 * written, so free space alone says little), JOB_STALLED otherwise. */
static void stalled_err(const watch *w, const backup_dest *d, jb_err *err) {
        unsigned long long stall_s = w->job->c->stall_ms / 1000;
        struct statvfs fs;

        if (strcmp(d->kind, "local") == 0 && statvfs(d->location, &fs) == 0 &&
            (unsigned long long) fs.f_bavail * fs.f_frsize < (unsigned long long) w->total_bytes) {
                jb_err_set_code(err, BACKUP_E_FULL,
                                "the destination has no space left: %llu bytes free for a stage of %lld; restic "
                                "made no progress for %llu s and was stopped",
                                (unsigned long long) fs.f_bavail * fs.f_frsize, (long long) w->total_bytes,
                                stall_s);
                return;
        }
        jb_err_set_code(err, BACKUP_E_STALLED,
                        "restic made no progress for %llu s and was stopped (restic 0.14 hangs when a write to "
                        "the destination fails, or its input stopped)", stall_s);
}

const char *backup_restic_stage(backup_job *j, const backup_dest *d, const char *const *args, int stdin_fd,
                                json_object *stage, jb_err *err) {
        watch w = { .job = j, .stage = stage };
        jb_spawn_io io = { .stdin_fd = stdin_fd, .on_stdout_line = on_line, .line_arg = &w,
                           .cancel_fd = j->cancel_fd, .cancel_signal = SIGINT };
        jb_spawn_result r;
        const char *state;
        size_t unreadable;

        if (restic_run(j->c, d, args, NULL, 0, 0, &io, &r, err) < 0)
                return "failed";
        json_object_object_add(stage, "exit_code", json_object_new_int(r.exit_code));
        unreadable = list_unreadable(&r, stage);
        if (w.stalled) {
                state = "failed";
                stalled_err(&w, d, err);
                forget_snapshot(j->c, d, stage);
                backup_restic_unlock(j->c, d, stage);     /* a killed restic leaves its lock */
        } else if (io.cancelled) {
                forget_snapshot(j->c, d, stage);
                state = backup_restic_cancelled(j, d, stage, err);
        } else if (jb_spawn_succeeded(&r) && json_object_object_get_ex(stage, "snapshot_id", NULL)) {
                state = "succeeded";
        } else if (r.exit_code == 3 && json_object_object_get_ex(stage, "snapshot_id", NULL)) {
                state = "partial";
                jb_err_set_code(err, BACKUP_E_PARTIAL, "the snapshot lacks %zu item%s restic could not read",
                                unreadable, unreadable == 1 ? "" : "s");
        } else {
                state = "failed";
                if (jb_spawn_succeeded(&r))
                        jb_err_set(err, JB_E_SERVICE_FAILED, "restic succeeded without naming a snapshot");
                else
                        backup_restic_err(&r, err);
                forget_snapshot(j->c, d, stage);
        }
        jb_spawn_result_free(&r);
        return state;
}

int backup_restic_err(const jb_spawn_result *r, jb_err *err) {
        const char *e = r->stderr_data ? r->stderr_data : "";

        if (r->timed_out || r->exit_code != 1)
                return jb_spawn_result_to_err(r, err);
        if (strstr(e, "wrong password or no key found"))
                return jb_err_set_code(err, BACKUP_E_WRONG_PASSWORD,
                                       "the password does not open the repository");
        if (strstr(e, "repository is already locked"))
                return jb_err_set_code(err, BACKUP_E_LOCKED,
                                       "the repository is locked by another restic (restic unlock removes a stale lock)");
        /* Go's words for ENOSPC and EDQUOT. A remote server's full disk
         * reaches restic as a generic failure (sftp's SSH_FX_FAILURE, an
         * HTTP 500) and stays SERVICE_FAILED with restic's line. */
        if (strstr(e, "no space left on device") || strstr(e, "disk quota exceeded"))
                return jb_err_set_code(err, BACKUP_E_FULL, "the destination has no space left");
        if (strstr(e, "unable to open config file") && strstr(e, "no such file or directory"))
                return jb_err_set(err, JB_E_NOT_FOUND, "there is no repository at the destination");
        if (backup_remote_err(e, err) < 0)
                return -1;
        return jb_spawn_result_to_err(r, err);
}
