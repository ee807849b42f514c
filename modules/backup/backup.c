/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The backup module: restic repositories (Debian's restic) as backup
 * destinations. The descriptor, the action table, the schemas and the
 * settings; the handlers live in backup-dest.c, backup-snapshots.c, backup-run.c
 * and backup-job.c. See README.md. */

#include <string.h>

#include <jabali/module.h>
#include <jabali/validate.h>

#include "backup-internal.h"

/* Every setting with its production default. */
void backup_cfg_from_settings(json_object *s, backup_cfg *c) {
        c->restic = jb_settings_str(s, "restic", "/usr/bin/restic");
        c->secrets_dir = jb_settings_str(s, "secrets_dir", "/etc/jabali/backup/secrets");
        c->jobs_dir = jb_settings_str(s, "jobs_dir", "/var/lib/jabali/backup/jobs");
        c->lock_dir = jb_settings_str(s, "lock_dir", "/run/jabali-agent/locks");
        c->cache_dir = jb_settings_str(s, "cache_dir", "/var/cache/jabali/restic");
        c->local_root = jb_settings_str(s, "local_root", "/var/backups/jabali");
}

/* ---- parameter schemas ---- */

static const char *const kinds[] = { "local", NULL };

static const jb_param destination_fields[] = {
        JB_P_ENUM("kind", kinds, JB_REQUIRED, "where the repository lives: local (a directory beneath local_root)"),
        JB_P_STRLEN("location", JB_CHECK_NONE, JB_REQUIRED, 2, 1024,
                    "local: the repository's absolute path, beneath settings.local_root"),
        JB_P_STRLEN("password_ref", JB_CHECK_TOKEN, JB_REQUIRED, 1, 128,
                    "a root-only file of settings.secrets_dir holding the repository password"),
        JB_P_END
};

#define DESTINATION_PARAM JB_P_OBJECT("destination", destination_fields, JB_REQUIRED, "the restic repository")

static const jb_param destination_test_params[] = {
        DESTINATION_PARAM,
        JB_P_BOOL("init", 0, "create the repository when there is none; default false"),
        JB_P_END
};

static const jb_param snapshots_list_params[] = {
        DESTINATION_PARAM,
        JB_P_STRING("user", JB_CHECK_USERNAME, JB_REQUIRED, "the account whose snapshots (tag user=<user>) to list"),
        JB_P_END
};

static const jb_param rel_path_item[] = {
        JB_P_STRLEN("path", JB_CHECK_REL_PATH, 0, 1, 1024, "relative to the home"),
        JB_P_END
};

static const jb_param tag_value[] = {
        JB_P_STRLEN("value", JB_CHECK_TOKEN, 0, 1, 128, "a tag's value"),
        JB_P_END
};

static const jb_param run_params[] = {
        DESTINATION_PARAM,
        JB_P_STRING("user", JB_CHECK_USERNAME, JB_REQUIRED, "the account whose files to back up (tag user=<user>)"),
        JB_P_BOOL("home", 0, "a stage saving the whole home; default true"),
        JB_P_ARRAY("paths", rel_path_item, 0, 0, 64, "a stage for each of these paths beneath the home"),
        JB_P_MAP("tags", JB_CHECK_TOKEN, tag_value, 0, 0, 16, "more restic tags, as key=value"),
        JB_P_END
};

static const char *const restore_modes[] = { "staging", "in_place", NULL };

static const jb_param restore_params[] = {
        DESTINATION_PARAM,
        JB_P_STRLEN("snapshot_id", JB_CHECK_TOKEN, JB_REQUIRED, 8, 64,
                    "the snapshot (8 or 64 lower-case hex digits); it must carry the tag user=<user>"),
        JB_P_STRING("user", JB_CHECK_USERNAME, JB_REQUIRED, "the account whose home receives the files"),
        JB_P_ENUM("mode", restore_modes, 0,
                  "staging (default): into <home>/<restore_dir>/<job_id>; in_place: over the home's files"),
        JB_P_ARRAY("paths", rel_path_item, 0, 0, 12, "only these paths, relative to the home the snapshot recorded"),
        JB_P_END
};

static const jb_param job_params[] = {
        JB_P_STRLEN("job_id", JB_CHECK_TOKEN, JB_REQUIRED, 32, 32, "what backup.run answered"),
        JB_P_END
};

/* ---- settings ---- */

#define PATH_SETTING(n, d) JB_P_STRLEN(n, JB_CHECK_NONE, 0, 2, 1024, d)

static const jb_param settings[] = {
        PATH_SETTING("restic", "the restic binary; default /usr/bin/restic"),
        PATH_SETTING("secrets_dir", "root-only files that password_ref and credentials_ref name; "
                                    "default /etc/jabali/backup/secrets"),
        PATH_SETTING("jobs_dir", "durable job records; default /var/lib/jabali/backup/jobs"),
        PATH_SETTING("lock_dir", "where the module's locks live; default /run/jabali-agent/locks"),
        PATH_SETTING("cache_dir", "restic's cache; default /var/cache/jabali/restic"),
        PATH_SETTING("local_root", "local repositories lie beneath it; default /var/backups/jabali"),
        JB_P_STRLEN("restore_dir", JB_CHECK_PATH_SEGMENT, 0, 1, 64,
                    "backup.restore's staging directory, one name beneath the home; default .jabali-restore"),
        JB_P_END
};

static int init(json_object *s, jb_err *err) {
        static const char *const paths[] = { "restic", "secrets_dir", "jobs_dir", "lock_dir", "cache_dir",
                                             "local_root" };
        json_object *v;

        for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
                const char *p;
                size_t n;

                if (!json_object_object_get_ex(s, paths[i], &v))
                        continue;
                p = json_object_get_string(v);
                n = strlen(p);
                if (p[0] != '/' || !jb_valid_rel_path(p + 1, n - 1, NULL))
                        return jb_err_set(err, JB_E_CONFIG_INVALID, "%s must be a clean absolute path", paths[i]);
        }
        return 0;
}

/* ---- actions ---- */

static const char *const errors[] = { BACKUP_E_WRONG_PASSWORD, BACKUP_E_LOCKED, NULL };

static const jb_action actions[] = {
        { .name = "backup.destination.test", .handler = backup_destination_test, .params = destination_test_params,
          .summary = "open a destination's repository (create it with init): password, presence, locks",
          .flags = JB_ACTION_MUTATING | JB_ACTION_DRY_RUN, .timeout_ms = 120000, .errors = errors },
        { .name = "backup.snapshots.list", .handler = backup_snapshots_list, .params = snapshots_list_params,
          .summary = "an account's snapshots in a repository (tag user=<user>)", .timeout_ms = 120000,
          .errors = errors },
        { .name = "backup.run", .handler = backup_run, .params = run_params,
          .summary = "back up an account's home and paths as a job of stages; answers at once with its job_id",
          .flags = JB_ACTION_MUTATING | JB_ACTION_DRY_RUN, .timeout_ms = 30000, .errors = errors },
        { .name = "backup.restore", .handler = backup_restore, .params = restore_params,
          .summary = "restore an account's snapshot beneath its home (staging or in place) as a job; answers at once",
          .flags = JB_ACTION_MUTATING | JB_ACTION_DRY_RUN, .timeout_ms = 120000, .errors = errors },
        { .name = "backup.job.get", .handler = backup_job_get, .params = job_params,
          .summary = "a job's record: state, stages, progress, snapshot, error", .timeout_ms = 10000 },
        { .name = "backup.job.list", .handler = backup_job_list, .params = NULL,
          .summary = "every job record, oldest first", .timeout_ms = 30000 },
        { .name = "backup.job.cancel", .handler = backup_job_cancel, .params = job_params,
          .summary = "stop a queued or running job: restic stops, no snapshot stays; answers the state",
          .flags = JB_ACTION_MUTATING | JB_ACTION_DRY_RUN, .timeout_ms = 30000 },
        { .name = NULL }
};

JABALI_MODULE(.name = "backup", .version = "0.1.0", .hat = "backup",
              .summary = "backups to restic repositories", .actions = actions,
              .settings = settings, .init = init);
