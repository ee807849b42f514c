/* SPDX-License-Identifier: GPL-3.0-or-later */
/* backup.run: an account's files as a job of stages, each its own restic
 * snapshot: "home" (the whole home) and "path:<p>" for each of paths[]
 * (relative to the home). The handler checks everything and answers at
 * once with the job_id; the runner (backup-runner.c) does the stages in
 * order, reading the home through a view that follows no symbolic link
 * (backup-view.c).
 *
 * Snapshots are tagged user=<user>, jabali-job=<job_id>,
 * jabali-stage=<home|path|db>, jabali-schedule=<id> when a schedule
 * started the job, and the caller's tags{} as key=value; a
 * database stage "db:<engine>:<name>" (after the files) also
 * jabali-db=<engine>:<name>. */

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jabali/validate.h>

#include "backup-internal.h"

/* restic arguments of one backup stage: "backup --json", five tags of
 * the module's, the caller's, then "--stdin --stdin-filename F" or
 * "-- PATH"; and the terminating NULL. */
#define TAGS_MAX 16
#define STAGE_ARGS_MAX (2 + 2 * (5 + TAGS_MAX) + 3 + 1)
_Static_assert(STAGE_ARGS_MAX - 1 <= BACKUP_RESTIC_ARGS_MAX, "restic_run takes every argument of a stage");

typedef struct plan {
        backup_dest d;
        char id[BACKUP_JOB_ID_LEN + 1];
        char user[64];
        char home[PATH_MAX];
        bool home_stage;
        json_object *paths;     /* borrowed from the request; valid in the runner's copy */
        json_object *databases; /* the same; each checked: the account's */
        char tags[TAGS_MAX][2 * JB_MAP_KEY_MAX + 2];
        size_t ntags;
        char schedule_tag[96];  /* jabali-schedule=<id>, or empty */
} plan;

/* The request's copy; the runner has its own. */
static void plan_wipe(plan *p) {
        backup_dest_wipe(&p->d);
}

static void set_str(json_object *o, const char *k, const char *v) {
        json_object_object_add(o, k, json_object_new_string(v));
}

/* The tags of a stage's snapshot, and the strings they point to. */
typedef struct stage_args {
        const char *v[STAGE_ARGS_MAX];
        size_t n;
        char user_tag[80], job_tag[64], stage_tag[64], extra_tag[160];
} stage_args;

/* `restic backup --json` with the stage's tags (extra: one more, or NULL). */
static void stage_args_init(stage_args *a, const plan *p, const char *kind, const char *extra) {
        snprintf(a->user_tag, sizeof a->user_tag, "user=%s", p->user);
        snprintf(a->job_tag, sizeof a->job_tag, "jabali-job=%s", p->id);
        snprintf(a->stage_tag, sizeof a->stage_tag, "jabali-stage=%s", kind);
        a->n = 0;
        a->v[a->n++] = "backup";
        a->v[a->n++] = "--json";
        a->v[a->n++] = "--tag";
        a->v[a->n++] = a->user_tag;
        a->v[a->n++] = "--tag";
        a->v[a->n++] = a->job_tag;
        a->v[a->n++] = "--tag";
        a->v[a->n++] = a->stage_tag;
        if (extra) {
                snprintf(a->extra_tag, sizeof a->extra_tag, "%s", extra);
                a->v[a->n++] = "--tag";
                a->v[a->n++] = a->extra_tag;
        }
        if (p->schedule_tag[0]) {
                a->v[a->n++] = "--tag";
                a->v[a->n++] = p->schedule_tag;
        }
        for (size_t i = 0; i < p->ntags; i++) {
                a->v[a->n++] = "--tag";
                a->v[a->n++] = p->tags[i];
        }
        a->v[a->n] = NULL;
}

/* One `restic backup` of `path` as stage `name`. */
static void files_stage(backup_job *j, const plan *p, const char *name, const char *kind, const char *path) {
        stage_args a = { .n = 0 };
        jb_err err = JB_ERR_INIT;
        json_object *stage = backup_job_stage_begin(j, name);
        const char *state;

        stage_args_init(&a, p, kind, NULL);
        a.v[a.n++] = "--";
        a.v[a.n++] = path;
        a.v[a.n] = NULL;
        set_str(stage, "path", path);
        state = backup_restic_stage(j, &p->d, a.v, 0, stage, &err);
        backup_job_stage_end(j, stage, state, &err);
}

/* A database's dump, read from restic's stdin as <engine>/<name>.sql:
 * stage db:<engine>:<name>, tags jabali-stage=db and
 * jabali-db=<engine>:<name>. */
static void db_stage(backup_job *j, const plan *p, json_object *db) {
        const char *engine = json_object_get_string(json_object_object_get(db, "engine"));
        const char *name = json_object_get_string(json_object_object_get(db, "name"));
        char sname[96], tag[96], file[96];
        stage_args a = { .n = 0 };
        jb_err err = JB_ERR_INIT;
        json_object *stage;
        const char *state;

        /* The plan checked both (engine <= 10, name <= 64 bytes). */
        snprintf(sname, sizeof sname, "db:%s:%s", engine, name);
        snprintf(tag, sizeof tag, "jabali-db=%s:%s", engine, name);
        snprintf(file, sizeof file, "%s/%s.sql", engine, name);
        stage = backup_job_stage_begin(j, sname);
        stage_args_init(&a, p, "db", tag);
        a.v[a.n++] = "--stdin";
        a.v[a.n++] = "--stdin-filename";
        a.v[a.n++] = file;
        a.v[a.n] = NULL;
        set_str(stage, "path", file);
        state = backup_db_dump_stage(j, &p->d, a.v, engine, name, stage, &err);
        backup_job_stage_end(j, stage, state, &err);
}

static void fail_stage(backup_job *j, const char *name, const jb_err *err) {
        json_object *stage = backup_job_stage_begin(j, name);

        backup_job_stage_end(j, stage, "failed", err);
}

static void work(backup_job *j, void *arg) {
        const plan *p = arg;
        jb_err err = JB_ERR_INIT;
        size_t n = p->paths ? json_object_array_length(p->paths) : 0;

        if (backup_home_view(p->home, &err) < 0) {
                fail_stage(j, p->home_stage ? "home" : "view", &err);
                return;
        }
        if (p->home_stage && !backup_job_cancelled(j))
                files_stage(j, p, "home", "home", p->home);
        for (size_t i = 0; i < n && !backup_job_cancelled(j); i++) {
                const char *rel = json_object_get_string(json_object_array_get_idx(p->paths, i));
                char name[PATH_MAX + 8], path[2 * PATH_MAX];

                /* The plan bounds both (home < PATH_MAX - 2048, rel <= 1024). */
                if ((size_t) snprintf(name, sizeof name, "path:%s", rel) < sizeof name &&
                    (size_t) snprintf(path, sizeof path, "%s/%s", p->home, rel) < sizeof path)
                        files_stage(j, p, name, "path", path);
        }
        for (size_t i = 0; p->databases && i < json_object_array_length(p->databases) && !backup_job_cancelled(j);
             i++)
                db_stage(j, p, json_object_array_get_idx(p->databases, i));
}

/* tags{}: key=value restic tags; the module's own keys are refused. */
static int plan_tags(plan *p, json_object *tags, jb_err *err) {
        json_object_object_foreach(tags, k, v) {
                const char *val = json_object_get_string(v);

                if (strcmp(k, "user") == 0 || strncmp(k, "jabali", 6) == 0)
                        return jb_err_set(err, JB_E_INVALID_PARAMS, "tags.%s: a tag the module sets itself", k);
                if (strchr(val, ','))
                        return jb_err_set(err, JB_E_INVALID_PARAMS, "tags.%s: no comma (restic splits on it)", k);
                if (p->ntags == TAGS_MAX)
                        return jb_err_set(err, JB_E_INVALID_PARAMS, "tags: at most %d", TAGS_MAX);
                snprintf(p->tags[p->ntags++], sizeof p->tags[0], "%s=%s", k, val);
        }
        return 0;
}

/* databases[]: each the account's (backup-db.c), none twice. */
static int plan_databases(plan *p, json_object *params, jb_err *err) {
        size_t n;

        if (!json_object_object_get_ex(params, "databases", &p->databases) ||
            (n = json_object_array_length(p->databases)) == 0) {
                p->databases = NULL;
                return 0;
        }
        for (size_t i = 0; i < n; i++) {
                json_object *db = json_object_array_get_idx(p->databases, i);
                const char *engine = json_object_get_string(json_object_object_get(db, "engine"));
                const char *name = json_object_get_string(json_object_object_get(db, "name"));

                if (backup_db_check(p->user, engine, name, err) < 0) {
                        jb_err_prefix(err, "databases");
                        return -1;
                }
                for (size_t k = 0; k < i; k++) {
                        json_object *o = json_object_array_get_idx(p->databases, k);

                        if (strcmp(engine, json_object_get_string(json_object_object_get(o, "engine"))) == 0 &&
                            strcmp(name, json_object_get_string(json_object_object_get(o, "name"))) == 0)
                                return jb_err_set(err, JB_E_INVALID_PARAMS, "databases: %s:%s twice", engine,
                                                  name);
                }
        }
        return 0;
}

static int plan_from_params(const backup_cfg *c, json_object *params, plan *p, jb_err *err) {
        json_object *dest = NULL, *tags = NULL, *home = NULL;
        const char *user;
        struct passwd *pw;
        size_t n;

        json_object_object_get_ex(params, "destination", &dest);
        if (backup_dest_from_params(c, dest, &p->d, err) < 0)
                return -1;
        user = json_object_get_string(json_object_object_get(params, "user"));
        pw = user ? getpwnam(user) : NULL;
        if (!pw || pw->pw_dir[0] != '/' || strlen(pw->pw_dir) >= sizeof p->home - 2048 ||
            !jb_valid_rel_path(pw->pw_dir + 1, strlen(pw->pw_dir) - 1, NULL))
                return jb_err_set(err, JB_E_NOT_FOUND, "no account %s with a home", user ? user : "");
        snprintf(p->user, sizeof p->user, "%s", user);
        snprintf(p->home, sizeof p->home, "%s", pw->pw_dir);
        p->home_stage = !json_object_object_get_ex(params, "home", &home) || json_object_get_boolean(home);
        if (json_object_object_get_ex(params, "paths", &p->paths) && json_object_array_length(p->paths) == 0)
                p->paths = NULL;
        n = p->paths ? json_object_array_length(p->paths) : 0;
        if (json_object_object_get_ex(params, "tags", &tags) && plan_tags(p, tags, err) < 0)
                return -1;
        if (plan_databases(p, params, err) < 0)
                return -1;
        if (!p->home_stage && n == 0 && !p->databases)
                return jb_err_set(err, JB_E_INVALID_PARAMS, "nothing to back up: home is false and paths is empty");
        return 0;
}

int backup_run_params(jb_call *call, json_object *params, const char *schedule_id) {
        jb_err err = JB_ERR_INIT;
        backup_cfg c;
        plan p __attribute__((cleanup(plan_wipe))) = { .ntags = 0 };
        json_object *rec;

        backup_cfg_from_settings(jb_call_settings(call), &c);
        if (plan_from_params(&c, params, &p, &err) < 0)
                return jb_call_fail_err(call, &err);
        if (schedule_id)
                snprintf(p.schedule_tag, sizeof p.schedule_tag, "jabali-schedule=%s", schedule_id);
        jb_call_set_changed(call, true);
        if (jb_call_dry_run(call))
                return 0;
        rec = json_object_new_object();
        set_str(rec, "kind", "backup");
        set_str(rec, "user", p.user);
        if (schedule_id)
                set_str(rec, "schedule_id", schedule_id);
        json_object_object_add(rec, "destination", json_object_get(json_object_object_get(params, "destination")));
        return backup_job_launch(call, &c, rec, p.id, work, &p);
}

int backup_run(jb_call *call) {
        return backup_run_params(call, jb_call_params(call), NULL);
}
