/* SPDX-License-Identifier: GPL-3.0-or-later */
/* backup.restore of databases: a stage per database (see
 * backup_db_restore_stage), in a job of their own or after the files of a
 * restore with files: true (backup-restore.c). Before answering, the
 * handler checks each
 * database is the account's and each snapshot is a dump of that very
 * database taken for that account (tags user=<user> and
 * jabali-db=<engine>:<name>), so a snapshot id of another account's, or
 * of another database, restores nothing. */

#include <pwd.h>
#include <stdio.h>
#include <string.h>

#include "backup-internal.h"

typedef struct rplan {
        backup_dest d;
        char id[BACKUP_JOB_ID_LEN + 1];
        backup_db_rplan dbs;
} rplan;

/* The request's copy; the runner has its own. */
static void rplan_wipe(rplan *p) {
        backup_dest_wipe(&p->d);
}

static const char *db_str(json_object *db, const char *k) {
        json_object *v;

        return json_object_object_get_ex(db, k, &v) ? json_object_get_string(v) : NULL;
}

void backup_db_restore_work(backup_job *j, const backup_dest *d, const backup_db_rplan *p) {
        size_t n = json_object_array_length(p->databases);

        for (size_t i = 0; i < n && !backup_job_cancelled(j); i++) {
                json_object *db = json_object_array_get_idx(p->databases, i);

                backup_db_restore_stage(j, d, p->snaps[i], db_str(db, "engine"), db_str(db, "name"));
        }
}

static void work(backup_job *j, void *arg) {
        const rplan *p = arg;

        backup_db_restore_work(j, &p->d, &p->dbs);
}

static bool has_tag(json_object *snap, const char *tag) {
        json_object *tags;
        size_t n;

        if (!json_object_object_get_ex(snap, "tags", &tags) || !json_object_is_type(tags, json_type_array))
                return false;
        n = json_object_array_length(tags);
        for (size_t i = 0; i < n; i++)
                if (strcmp(json_object_get_string(json_object_array_get_idx(tags, i)), tag) == 0)
                        return true;
        return false;
}

/* The one snapshot restic lists for `id` (a full id or a prefix), or NULL
 * (none, or a prefix of several). */
static json_object *find_snapshot(json_object *list, const char *id) {
        size_t n = json_object_array_length(list), len = strlen(id);
        json_object *found = NULL;

        for (size_t i = 0; i < n; i++) {
                json_object *s = json_object_array_get_idx(list, i), *v;

                if (!json_object_object_get_ex(s, "id", &v) || strncmp(json_object_get_string(v), id, len) != 0)
                        continue;
                if (found)
                        return NULL;
                found = s;
        }
        return found;
}

/* The account's snapshots, once: `restic snapshots --json --tag user=U`. */
static int list_snapshots(const backup_cfg *c, const backup_dest *d, const char *user, json_object **ret,
                          jb_err *err) {
        char tag[80];
        const char *args[] = { "snapshots", "--json", "--tag", tag, NULL };
        jb_spawn_result r;
        int rc = 0;

        snprintf(tag, sizeof tag, "user=%s", user);
        if (backup_restic_run(c, d, args, 110000, &r, err) < 0)
                return -1;
        if (!jb_spawn_succeeded(&r))
                rc = backup_restic_err(&r, err);
        else if (!(*ret = json_tokener_parse(r.stdout_data)) || !json_object_is_type(*ret, json_type_array)) {
                json_object_put(*ret);
                *ret = NULL;
                rc = jb_err_set(err, JB_E_SERVICE_FAILED, "restic listed snapshots in a form not understood");
        }
        jb_spawn_result_free(&r);
        return rc;
}

int backup_db_restore_plan(const backup_cfg *c, const backup_dest *d, json_object *databases, const char *user,
                           const char *default_snapshot, backup_db_rplan *p, jb_err *err) {
        size_t n = json_object_array_length(databases);
        json_object *list = NULL;
        int rc = 0;

        if (n > BACKUP_DBS_MAX)
                return jb_err_set(err, JB_E_INVALID_PARAMS, "databases: at most %d", BACKUP_DBS_MAX);
        p->databases = databases;
        for (size_t i = 0; i < n; i++) {
                json_object *db = json_object_array_get_idx(databases, i);

                if (backup_db_check(user, db_str(db, "engine"), db_str(db, "name"), err) < 0) {
                        jb_err_prefix(err, "databases");
                        return -1;
                }
                if (!db_str(db, "snapshot_id") && !default_snapshot)
                        return jb_err_set(err, JB_E_INVALID_PARAMS,
                                          "databases[%zu].snapshot_id: required when files are restored too "
                                          "(snapshot_id is the files' snapshot)", i);
        }
        if (list_snapshots(c, d, user, &list, err) < 0)
                return -1;
        for (size_t i = 0; i < n && rc == 0; i++) {
                json_object *db = json_object_array_get_idx(databases, i), *snap;
                const char *id = db_str(db, "snapshot_id") ? db_str(db, "snapshot_id") : default_snapshot;
                char tag[96];

                snprintf(tag, sizeof tag, "jabali-db=%s:%s", db_str(db, "engine"), db_str(db, "name"));
                if (!(snap = find_snapshot(list, id)))
                        rc = jb_err_set(err, JB_E_NOT_FOUND, "no snapshot %s of account %s (or several)", id,
                                        user);
                else if (!has_tag(snap, tag))
                        rc = jb_err_set(err, JB_E_NOT_FOUND, "snapshot %s holds no dump of %s:%s", id,
                                        db_str(db, "engine"), db_str(db, "name"));
                else
                        snprintf(p->snaps[i], sizeof p->snaps[i], "%s",
                                 json_object_get_string(json_object_object_get(snap, "id")));
        }
        json_object_put(list);
        return rc;
}

static void set_str(json_object *o, const char *k, const char *v) {
        json_object_object_add(o, k, json_object_new_string(v));
}

int backup_db_restore(jb_call *call) {
        json_object *params = jb_call_params(call), *dest = NULL, *dbs = NULL, *rec;
        jb_err err = JB_ERR_INIT;
        backup_cfg c;
        rplan p __attribute__((cleanup(rplan_wipe))) = { .dbs.databases = NULL };
        const char *user = json_object_get_string(json_object_object_get(params, "user"));
        const char *snapshot = json_object_get_string(json_object_object_get(params, "snapshot_id"));

        backup_cfg_from_settings(jb_call_settings(call), &c);
        json_object_object_get_ex(params, "destination", &dest);
        json_object_object_get_ex(params, "databases", &dbs);
        if (backup_dest_from_params(&c, dest, &p.d, &err) < 0)
                return jb_call_fail_err(call, &err);
        if (!getpwnam(user))
                return jb_call_fail(call, JB_E_NOT_FOUND, "no account %s", user);
        if (backup_db_restore_plan(&c, &p.d, dbs, user, snapshot, &p.dbs, &err) < 0)
                return jb_call_fail_err(call, &err);
        jb_call_set_changed(call, true);
        if (jb_call_dry_run(call))
                return 0;
        rec = json_object_new_object();
        set_str(rec, "kind", "restore");
        set_str(rec, "user", user);
        set_str(rec, "snapshot_id", snapshot);
        json_object_object_add(rec, "destination", json_object_get(dest));
        return backup_job_launch(call, &c, rec, p.id, work, &p);
}
