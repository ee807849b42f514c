/* SPDX-License-Identifier: GPL-3.0-or-later */
/* backup.restore (files): an account's snapshot back beneath its home, as
 * a job whose first stage is "files"; with files: true and databases[],
 * a stage per database follows (backup-db-restore.c), each from its own
 * snapshot_id, so a site comes back whole in one job.
 *
 * The handler checks what it can at once: the snapshot exists and is the
 * account's (tag user=<user>; NOT_FOUND otherwise, so one account's data
 * never lands in another's home), the home is a directory and not a
 * symbolic link, the staging directory (setting restore_dir, beneath the
 * home) is not a symbolic link (CONFLICT).
 *
 * The runner then:
 *  1. makes <restore_dir>/.work-<job_id>, root's and 0700, beneath the home
 *     by descriptor (nothing the account does can reach into it);
 *  2. in a mount namespace of its own (entered first), mounts that directory over the
 *     home's path with MS_NOSYMFOLLOW, and has restic restore into the
 *     home's path: restic, root, writes only into the work directory, and
 *     no symbolic link there — one restic itself restored from a hostile
 *     snapshot included — is followed;
 *  3. hands the restored tree over to the account (backup-restore-tree.c);
 *  4. staging: renames it to <restore_dir>/<job_id>; in_place: moves each
 *     entry into its place in the home;
 *  5. removes the work directory, whatever happened.
 *
 * restic recreates the snapshot's absolute path under its target; the
 * tree of the snapshot's root (its recorded path: the home as it was when
 * the backup ran) is the one restored, so a home that moved since maps to
 * the current one. */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jabali/fs.h>
#include <jabali/validate.h>

#include "backup-internal.h"

#ifndef MS_NOSYMFOLLOW
#define MS_NOSYMFOLLOW 256
#endif

#define PATHS_MAX 12
#define SNAPSHOT_ID_LEN 64
/* restic's per-entry complaints kept in the stage. */
#define ERRORS_MAX 20

typedef struct rplan {
        backup_dest d;
        char id[BACKUP_JOB_ID_LEN + 1];
        char user[64];
        char home[PATH_MAX];
        uid_t uid;
        gid_t gid;
        char snapshot[SNAPSHOT_ID_LEN + 1];
        char root[PATH_MAX];            /* the snapshot's tree restored: an absolute path */
        char dir[NAME_MAX + 1];         /* restore_dir */
        bool in_place;
        json_object *paths;             /* borrowed from the request; valid in the runner's copy */
        backup_db_rplan dbs;            /* databases[] after the files, when dbs.databases */
} rplan;

/* The request's copy; the runner has its own. */
static void rplan_wipe(rplan *p) {
        backup_dest_wipe(&p->d);
}

/* The runner's descriptors and what it made, for the unwinding. */
typedef struct rstate {
        int home, stg, work;
        bool made_stg, made_work;
        char work_name[BACKUP_JOB_ID_LEN + 8];
} rstate;

static void set_str(json_object *o, const char *k, const char *v) {
        json_object_object_add(o, k, json_object_new_string(v));
}

static bool hex_id_ok(const char *s) {
        size_t n = strlen(s);

        if (n != 8 && n != SNAPSHOT_ID_LEN)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        return true;
}

static bool has_tag(json_object *snap, const char *tag) {
        json_object *tags;

        if (!json_object_object_get_ex(snap, "tags", &tags) || !json_object_is_type(tags, json_type_array))
                return false;
        for (size_t i = 0; i < json_object_array_length(tags); i++)
                if (strcmp(json_object_get_string(json_object_array_get_idx(tags, i)), tag) == 0)
                        return true;
        return false;
}

static bool beneath(const char *path, const char *dir) {
        size_t n = strlen(dir);

        return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* The snapshot's root: its one recorded path, or for a path stage (which
 * recorded <home>/<p>) the current home it lies beneath. */
static int plan_root(rplan *p, json_object *snap, jb_err *err) {
        json_object *paths;
        const char *path;

        if (!json_object_object_get_ex(snap, "paths", &paths) || !json_object_is_type(paths, json_type_array) ||
            json_object_array_length(paths) != 1)
                return jb_err_set(err, JB_E_CONFLICT, "snapshot %s: restored are snapshots of one path", p->snapshot);
        path = json_object_get_string(json_object_array_get_idx(paths, 0));
        if (has_tag(snap, "jabali-stage=path")) {
                if (!beneath(path, p->home))
                        return jb_err_set(err, JB_E_CONFLICT,
                                          "snapshot %s: a path outside the account's current home; restore its job's "
                                          "home snapshot", p->snapshot);
                path = p->home;
        }
        if (path[0] != '/' || strlen(path) >= sizeof p->root - 2048 || !jb_valid_rel_path(path + 1, strlen(path) - 1, NULL))
                return jb_err_set(err, JB_E_CONFLICT, "snapshot %s: its path is not a clean absolute path", p->snapshot);
        snprintf(p->root, sizeof p->root, "%s", path);
        return 0;
}

/* restic's word on the snapshot: it must be there and the account's. */
static int plan_snapshot(const backup_cfg *c, rplan *p, const char *want, uint64_t timeout_ms, jb_err *err) {
        const char *args[] = { "snapshots", "--json", want, NULL };
        char tag[80];
        json_object *list, *snap = NULL;
        jb_spawn_result r;
        int rc;

        if (backup_restic_run(c, &p->d, args, timeout_ms, &r, err) < 0)
                return -1;
        if (!jb_spawn_succeeded(&r)) {
                rc = backup_restic_err(&r, err);
                jb_spawn_result_free(&r);
                return rc;
        }
        list = r.stdout_truncated ? NULL : json_tokener_parse(r.stdout_data);
        jb_spawn_result_free(&r);
        if (!list || !json_object_is_type(list, json_type_array)) {
                json_object_put(list);
                return jb_err_set(err, JB_E_SERVICE_FAILED, "restic snapshots: not a JSON array");
        }
        snprintf(tag, sizeof tag, "user=%s", p->user);
        for (size_t i = 0; i < json_object_array_length(list); i++) {
                json_object *s = json_object_array_get_idx(list, i);
                const char *id = json_object_get_string(json_object_object_get(s, "id"));

                if (id && strlen(id) == SNAPSHOT_ID_LEN && strncmp(id, want, strlen(want)) == 0 && has_tag(s, tag))
                        snap = s;
        }
        if (!snap) {
                json_object_put(list);
                return jb_err_set(err, JB_E_NOT_FOUND, "no snapshot %s of %s", want, p->user);
        }
        snprintf(p->snapshot, sizeof p->snapshot, "%s", json_object_get_string(json_object_object_get(snap, "id")));
        rc = plan_root(p, snap, err);
        json_object_put(list);
        return rc;
}

/* The home, a directory and not a link (its path is root's: passwd). */
static int open_home(const char *home, jb_err *err) {
        int fd = open(home, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

        if (fd < 0)
                return jb_err_set(err, errno == ENOENT ? JB_E_NOT_FOUND : JB_E_CONFLICT,
                                  "%s: not a directory (%s)", home, strerror(errno));
        return fd;
}

/* The staging directory must not be anything but a directory. */
static int check_staging(const rplan *p, jb_err *err) {
        jb_err e = JB_ERR_INIT;
        int fd = open_home(p->home, err), k;

        if (fd < 0)
                return -1;
        k = jb_fs_kind_of(fd, p->dir, &e);
        close(fd);
        if (k == JB_FS_MISSING || k == JB_FS_DIR)
                return 0;
        return jb_err_set(err, JB_E_CONFLICT, "%s/%s is not a directory (a symbolic link?): nothing restored",
                          p->home, p->dir);
}

static int plan_from_params(const backup_cfg *c, jb_call *call, rplan *p, jb_err *err) {
        json_object *params = jb_call_params(call), *dest = NULL, *dbs = NULL;
        const char *user = jb_param_str(call, "user", ""), *snap = jb_param_str(call, "snapshot_id", "");
        const char *dir = jb_settings_str(jb_call_settings(call), "restore_dir", ".jabali-restore");
        struct passwd *pw;

        if (!hex_id_ok(snap))
                return jb_err_set(err, JB_E_INVALID_PARAMS, "snapshot_id: 8 or 64 lower-case hex digits");
        json_object_object_get_ex(params, "destination", &dest);
        if (backup_dest_from_params(c, dest, &p->d, err) < 0)
                return -1;
        pw = getpwnam(user);
        if (!pw || pw->pw_dir[0] != '/' || strlen(pw->pw_dir) >= sizeof p->home - 2048 ||
            !jb_valid_rel_path(pw->pw_dir + 1, strlen(pw->pw_dir) - 1, NULL))
                return jb_err_set(err, JB_E_NOT_FOUND, "no account %s with a home", user);
        snprintf(p->user, sizeof p->user, "%s", user);
        snprintf(p->home, sizeof p->home, "%s", pw->pw_dir);
        snprintf(p->dir, sizeof p->dir, "%s", dir);
        p->uid = pw->pw_uid;
        p->gid = pw->pw_gid;
        p->in_place = strcmp(jb_param_str(call, "mode", "staging"), "in_place") == 0;
        if (json_object_object_get_ex(params, "paths", &p->paths) && json_object_array_length(p->paths) == 0)
                p->paths = NULL;
        if (check_staging(p, err) < 0 || plan_snapshot(c, p, snap, jb_call_remaining_ms(call), err) < 0)
                return -1;
        if (json_object_object_get_ex(params, "databases", &dbs) && json_object_array_length(dbs) > 0)
                return backup_db_restore_plan(c, &p->d, dbs, p->user, NULL, &p->dbs, err);
        return 0;
}

/* ---- the runner ---- */

static int fail_errno(jb_err *err, const char *what) {
        return jb_err_set(err, JB_E_INTERNAL, "%s: %s", what, strerror(errno));
}

/* The staging directory (made the account's, 0700, when missing) and in
 * it the work directory, root's. */
static int open_dirs(const rplan *p, rstate *x, jb_err *err) {
        jb_err e = JB_ERR_INIT;
        struct stat st;
        int r;

        if ((x->home = open_home(p->home, err)) < 0)
                return -1;
        if ((r = jb_fs_mkdir_p(x->home, p->dir, 0700, p->uid, p->gid, &e)) < 0 ||
            (x->stg = jb_fs_open(x->home, p->dir, O_PATH | O_DIRECTORY, 0, &e)) < 0)
                return jb_err_set(err, JB_E_CONFLICT, "%s/%s: %s", p->home, p->dir, e.msg);
        x->made_stg = r == 1;
        if (fstat(x->stg, &st) < 0 || (st.st_uid != p->uid && st.st_uid != 0))
                return jb_err_set(err, JB_E_CONFLICT, "%s/%s belongs to someone else", p->home, p->dir);
        snprintf(x->work_name, sizeof x->work_name, ".work-%s", p->id);
        if (mkdirat(x->stg, x->work_name, 0700) < 0)
                return fail_errno(err, "making the work directory");
        x->made_work = true;
        if ((x->work = openat(x->stg, x->work_name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
                return fail_errno(err, "opening the work directory");
        return 0;
}

/* A mount namespace of the runner's own, entered before anything is
 * opened: a bind mount's source must be one of its mounts. */
static int private_ns(jb_err *err) {
        if (unshare(CLONE_NEWNS) < 0 || mount("none", "/", "none", MS_REC | MS_SLAVE, NULL) < 0)
                return fail_errno(err, "a private mount namespace");
        return 0;
}

/* The work directory over the home's path, following no symbolic link;
 * then the path must lead there. */
static int mount_work(const rplan *p, const rstate *x, jb_err *err) {
        struct stat a, b;
        char src[64];

        snprintf(src, sizeof src, "/proc/self/fd/%d", x->work);
        if (mount(src, p->home, "none", MS_BIND, NULL) < 0 ||
            mount("none", p->home, "none", MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | MS_NOSYMFOLLOW, NULL) < 0)
                return fail_errno(err, "a private view of the work directory");
        if (fstat(x->work, &a) < 0 || stat(p->home, &b) < 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino)
                return jb_err_set(err, JB_E_INTERNAL, "the work directory is not where restic writes");
        return 0;
}

/* restic's pattern for rel beneath the root: glob characters escaped. */
static void include_of(const char *root, const char *rel, char *out, size_t size) {
        size_t n = (size_t) snprintf(out, size, "%s/", root);

        for (; *rel && n + 2 < size; rel++) {
                if (strchr("*?[]\\", *rel))
                        out[n++] = '\\';
                out[n++] = *rel;
        }
        out[n] = '\0';
}

static void keep_errors(json_object *stage, const char *text) {
        static const char prefix[] = "ignoring error for ";
        json_object *list = json_object_new_array();
        const char *line = text;

        while (line && *line && json_object_array_length(list) < ERRORS_MAX) {
                const char *end = strchr(line, '\n');
                size_t n = end ? (size_t) (end - line) : strlen(line);

                if (strncmp(line, prefix, sizeof prefix - 1) == 0)
                        json_object_array_add(list, json_object_new_string_len(line + sizeof prefix - 1, (int) n -
                                                                                (int) (sizeof prefix - 1)));
                line = end ? end + 1 : NULL;
        }
        json_object_object_add(stage, "errors", list);
}

/* `restic restore` into the home's path (the work directory here). */
static const char *run_restic(backup_job *j, const rplan *p, json_object *stage, jb_err *err) {
        char inc[PATHS_MAX][2 * PATH_MAX + 8];
        const char *args[8 + 2 * PATHS_MAX];
        jb_spawn_io io = { .cancel_fd = j->cancel_fd, .cancel_signal = SIGINT };
        size_t n = 0, np = p->paths ? json_object_array_length(p->paths) : 0;
        jb_spawn_result r;
        const char *state;

        args[n++] = "restore";
        args[n++] = p->snapshot;
        args[n++] = "--target";
        args[n++] = p->home;
        for (size_t i = 0; i < np && i < PATHS_MAX; i++) {
                include_of(p->root, json_object_get_string(json_object_array_get_idx(p->paths, i)), inc[i],
                           sizeof inc[i]);
                args[n++] = "--include";
                args[n++] = inc[i];
        }
        args[n] = NULL;
        if (backup_restic_run_io(j->c, &p->d, args, &io, &r, err) < 0)
                return "failed";
        json_object_object_add(stage, "exit_code", json_object_new_int(r.exit_code));
        if (io.cancelled) {
                state = backup_restic_cancelled(j, &p->d, stage, err);
        } else if (jb_spawn_succeeded(&r)) {
                state = "succeeded";
        } else if (r.exit_code == 1 && strstr(r.stderr_data, "Fatal: There were ")) {
                /* Per-entry failures; what could be restored was. */
                state = "partial";
                keep_errors(stage, r.stderr_data);
        } else {
                state = "failed";
                backup_restic_err(&r, err);
        }
        jb_spawn_result_free(&r);
        return state;
}

/* The restored root beneath the work directory, by one non-following
 * step per component: its parent's descriptor and its own. */
static int open_root(const rplan *p, const rstate *x, int *parent, char *last, size_t size, jb_err *err) {
        char copy[PATH_MAX], *save = NULL, *c, *next;
        int dir = dup(x->work), sub = -1;

        snprintf(copy, sizeof copy, "%s", p->root + 1);
        for (c = strtok_r(copy, "/", &save); c && dir >= 0; c = next) {
                next = strtok_r(NULL, "/", &save);
                if (!next) {
                        snprintf(last, size, "%s", c);
                        break;
                }
                sub = openat(dir, c, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                close(dir);
                dir = sub;
        }
        if (dir < 0 || (sub = openat(dir, last, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
                if (dir >= 0)
                        close(dir);
                return jb_err_set(err, JB_E_NOT_FOUND, "the snapshot holds nothing%s to restore",
                                  p->paths ? " at paths[]" : "");
        }
        *parent = dir;
        return sub;
}

/* Steps 3 and 4 on the restored tree. */
static const char *hand_over(backup_job *j, const rplan *p, rstate *x, json_object *stage,
                             backup_restore_report *rep, jb_err *err) {
        char last[NAME_MAX + 1] = "", rel[NAME_MAX + BACKUP_JOB_ID_LEN + 2];
        int parent = -1, root = open_root(p, x, &parent, last, sizeof last, err);
        const char *state = "succeeded";

        if (root < 0)
                return "failed";
        if (backup_restore_tidy(root, p->uid, p->gid, rep, err) < 0) {
                state = "failed";
        } else if (!p->in_place) {
                if (renameat2(parent, last, x->stg, p->id, RENAME_NOREPLACE) < 0) {
                        jb_err_set(err, JB_E_CONFLICT, "%s/%s: %s", p->dir, p->id, strerror(errno));
                        state = "failed";
                } else {
                        snprintf(rel, sizeof rel, "%s/%s", p->dir, p->id);
                        set_str(stage, "staging_path", rel);
                }
        } else {
                backup_restore_place(j, root, x->home, p->uid, rep);
                if (backup_job_cancelled(j)) {
                        state = "cancelled";
                        jb_err_set_code(err, BACKUP_E_CANCELLED, "cancelled at the caller's request");
                }
        }
        close(root);
        close(parent);
        return state;
}

static const char *restore_files(backup_job *j, const rplan *p, rstate *x, json_object *stage,
                                 backup_restore_report *rep, jb_err *err) {
        const char *state;

        if (private_ns(err) < 0 || open_dirs(p, x, err) < 0 || mount_work(p, x, err) < 0)
                return "failed";
        state = run_restic(j, p, stage, err);
        if (strcmp(state, "succeeded") != 0 && strcmp(state, "partial") != 0)
                return state;
        if (backup_job_cancelled(j)) {
                jb_err_set_code(err, BACKUP_E_CANCELLED, "cancelled at the caller's request");
                return "cancelled";
        }
        {
                const char *s = hand_over(j, p, x, stage, rep, err);

                if (strcmp(s, "succeeded") != 0)
                        return s;
        }
        if (strcmp(state, "partial") == 0 || rep->n_refused > 0) {
                jb_err_set_code(err, BACKUP_E_RESTORE_PARTIAL, "%zu entries were not restored (see refused, errors)",
                                rep->n_refused);
                return "partial";
        }
        return "succeeded";
}

/* Step 5, and a staging directory the job made stays only with a result. */
static void unwind(const rplan *p, rstate *x, const char *state) {
        if (x->made_work)
                (void) jb_fs_remove_tree(x->stg, x->work_name, NULL);
        if (x->made_stg && (p->in_place || strcmp(state, "failed") == 0 || strcmp(state, "cancelled") == 0))
                (void) unlinkat(x->home, p->dir, AT_REMOVEDIR);
        if (x->work >= 0)
                close(x->work);
        if (x->stg >= 0)
                close(x->stg);
        if (x->home >= 0)
                close(x->home);
}

static void work(backup_job *j, void *arg) {
        const rplan *p = arg;
        json_object *stage = backup_job_stage_begin(j, "files");
        rstate x = { .home = -1, .stg = -1, .work = -1 };
        backup_restore_report rep;
        jb_err err = JB_ERR_INIT;
        const char *state;

        backup_restore_report_init(&rep);
        set_str(stage, "snapshot_id", p->snapshot);
        set_str(stage, "mode", p->in_place ? "in_place" : "staging");
        state = restore_files(j, p, &x, stage, &rep, &err);
        unwind(p, &x, state);
        if (p->in_place)
                json_object_object_add(stage, "restored", json_object_get(rep.restored));
        json_object_object_add(stage, "refused", json_object_get(rep.refused));
        json_object_object_add(stage, "restored_count", json_object_new_int64((int64_t) rep.n_restored));
        json_object_object_add(stage, "refused_count", json_object_new_int64((int64_t) rep.n_refused));
        backup_restore_report_free(&rep);
        backup_job_stage_end(j, stage, state, &err);
        /* Like backup.run's stages, the databases do not depend on how the
         * files went; the job is still no better than its worst stage. */
        if (p->dbs.databases)
                backup_db_restore_work(j, &p->d, &p->dbs);
}

int backup_restore(jb_call *call) {
        jb_err err = JB_ERR_INIT;
        backup_cfg c;
        rplan p __attribute__((cleanup(rplan_wipe))) = { .in_place = false };
        json_object *rec;

        backup_cfg_from_settings(jb_call_settings(call), &c);
        if (plan_from_params(&c, call, &p, &err) < 0)
                return jb_call_fail_err(call, &err);
        jb_call_set_changed(call, true);
        if (jb_call_dry_run(call))
                return 0;
        rec = json_object_new_object();
        set_str(rec, "kind", "restore");
        set_str(rec, "user", p.user);
        set_str(rec, "snapshot_id", p.snapshot);
        set_str(rec, "mode", p.in_place ? "in_place" : "staging");
        json_object_object_add(rec, "destination", json_object_get(json_object_object_get(jb_call_params(call),
                                                                                          "destination")));
        return backup_job_launch(call, &c, rec, p.id, work, &p);
}
