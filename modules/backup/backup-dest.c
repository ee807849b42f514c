/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Destinations: where a repository lives and how to open it, as a request
 * gives it ({kind, location, password_ref, credentials_ref}), and
 * backup.destination.test, which opens the repository (and creates it
 * when asked) and writes and reads back a probe, so that a bad password,
 * a missing repository, a stale lock, an unreachable server or a
 * destination that takes no writes is found before a backup depends on
 * it. */

#include <stdio.h>
#include <string.h>

#include <jabali/validate.h>

#include "backup-internal.h"

/* A local repository is a clean absolute path strictly beneath local_root:
 * the request cannot point restic at /etc or at another tree. */
static int check_local(const backup_cfg *c, const char *loc, jb_err *err) {
        size_t n = strlen(c->local_root), l = strlen(loc);

        if (loc[0] != '/' || l < 2 || !jb_valid_rel_path(loc + 1, l - 1, NULL))
                return jb_err_set(err, JB_E_INVALID_PARAMS, "destination.location must be a clean absolute path");
        if (strncmp(loc, c->local_root, n) != 0 || loc[n] != '/')
                return jb_err_set(err, JB_E_INVALID_PARAMS, "destination.location must lie beneath %s",
                                  c->local_root);
        return 0;
}

static const char *member(json_object *o, const char *name) {
        json_object *v;

        return json_object_object_get_ex(o, name, &v) ? json_object_get_string(v) : NULL;
}

int backup_dest_from_params(const backup_cfg *c, json_object *dest, backup_dest *d, jb_err *err) {
        const char *ref, *cref;

        memset(d, 0, sizeof *d);
        d->kind = member(dest, "kind");
        d->location = member(dest, "location");
        ref = member(dest, "password_ref");
        cref = member(dest, "credentials_ref");
        if (!d->kind || !d->location || !ref)
                return jb_err_set(err, JB_E_INVALID_PARAMS, "destination needs kind, location and password_ref");
        if (strcmp(d->kind, "local") == 0) {
                if (cref)
                        return jb_err_set(err, JB_E_INVALID_PARAMS, "a local destination takes no credentials_ref");
                if (check_local(c, d->location, err) < 0)
                        return -1;
                if ((size_t) snprintf(d->repository, sizeof d->repository, "%s", d->location) >= sizeof d->repository)
                        return jb_err_set(err, JB_E_INVALID_PARAMS, "destination.location is too long");
        } else if (backup_remote_from_params(c, d, cref, err) < 0)
                return -1;
        return backup_secret_path(c, ref, d->password_file, sizeof d->password_file, err);
}

/* `restic cat config`: opens the repository with the password and takes
 * (and drops) a shared lock, so it fails the way a backup would. */
static int read_config(jb_call *call, const backup_cfg *c, const backup_dest *d, json_object **ret, jb_err *err) {
        static const char *const args[] = { "cat", "config", NULL };
        jb_spawn_result r;

        if (backup_restic_run(c, d, args, jb_call_remaining_ms(call), &r, err) < 0)
                return -1;
        if (!jb_spawn_succeeded(&r)) {
                backup_restic_err(&r, err);
                jb_spawn_result_free(&r);
                return -1;
        }
        *ret = json_tokener_parse(r.stdout_data);
        jb_spawn_result_free(&r);
        if (!*ret || !json_object_is_type(*ret, json_type_object)) {
                json_object_put(*ret);
                *ret = NULL;
                return jb_err_set(err, JB_E_SERVICE_FAILED, "restic cat config: not a JSON object");
        }
        return 0;
}

/* A concurrent init of the same location loses to the first one: restic
 * says the config exists, and the repository is there all the same. */
static int init_repo(jb_call *call, const backup_cfg *c, const backup_dest *d, jb_err *err) {
        static const char *const args[] = { "init", NULL };
        jb_spawn_result r;
        int ret = 0;

        if (backup_restic_run(c, d, args, jb_call_remaining_ms(call), &r, err) < 0)
                return -1;
        if (!jb_spawn_succeeded(&r) && !(r.exit_code == 1 && strstr(r.stderr_data, "config file already exists")))
                ret = backup_restic_err(&r, err);
        jb_spawn_result_free(&r);
        return ret;
}

static void add_str(json_object *o, const char *k, const char *v) {
        json_object_object_add(o, k, v ? json_object_new_string(v) : NULL);
}

int backup_destination_test(jb_call *call) {
        jb_err err = JB_ERR_INIT;
        backup_cfg c;
        BACKUP_DEST_WIPED backup_dest d;
        json_object *dest = NULL, *conf = NULL, *v, *res = jb_call_result(call);
        bool created = false;

        backup_cfg_from_settings(jb_call_settings(call), &c);
        json_object_object_get_ex(jb_call_params(call), "destination", &dest);
        if (backup_dest_from_params(&c, dest, &d, &err) < 0)
                return jb_call_fail_err(call, &err);
        add_str(res, "kind", d.kind);
        add_str(res, "location", d.location);
        if (read_config(call, &c, &d, &conf, &err) < 0) {
                if (!jb_param_bool(call, "init", false) || strcmp(err.code, jb_code_name(JB_E_NOT_FOUND)) != 0)
                        return jb_call_fail_err(call, &err);
                json_object_object_add(res, "created", json_object_new_boolean(true));
                jb_call_set_changed(call, true);
                if (jb_call_dry_run(call))
                        return 0;
                err = (jb_err) JB_ERR_INIT;
                if (init_repo(call, &c, &d, &err) < 0 || read_config(call, &c, &d, &conf, &err) < 0)
                        return jb_call_fail_err(call, &err);
                created = true;
        }
        if (!created)
                json_object_object_add(res, "created", json_object_new_boolean(false));
        /* A dry run writes nothing, not even the probe. */
        if (!jb_call_dry_run(call) && backup_probe(call, &c, &d, &err) < 0) {
                json_object_put(conf);
                return jb_call_fail_err(call, &err);
        }
        json_object_object_add(res, "write_checked", json_object_new_boolean(!jb_call_dry_run(call)));
        if (json_object_object_get_ex(conf, "id", &v))
                add_str(res, "repository_id", json_object_get_string(v));
        if (json_object_object_get_ex(conf, "version", &v))
                json_object_object_add(res, "repository_version", json_object_new_int64(json_object_get_int64(v)));
        json_object_put(conf);
        return 0;
}

void backup_dest_wipe(backup_dest *d) {
        explicit_bzero(d, sizeof *d);
}
