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
        c->stall_ms = (uint64_t) jb_settings_int(s, "stall_timeout_s", 3600) * 1000;
        c->job_retention_s = (int64_t) jb_settings_int(s, "job_retention_days", 30) * 86400;
        c->secrets_dir = jb_settings_str(s, "secrets_dir", "/etc/jabali/backup/secrets");
        c->jobs_dir = jb_settings_str(s, "jobs_dir", "/var/lib/jabali/backup/jobs");
        c->lock_dir = jb_settings_str(s, "lock_dir", "/run/jabali-agent/locks");
        c->cache_dir = jb_settings_str(s, "cache_dir", "/var/cache/jabali/restic");
        c->local_root = jb_settings_str(s, "local_root", "/var/backups/jabali");
        c->ssh = jb_settings_str(s, "ssh", "/usr/bin/ssh");
        c->mariadb_defaults_file = jb_settings_str(s, "mariadb_defaults_file", "/etc/mysql/debian.cnf");
        c->mariadb_dump = jb_settings_str(s, "mariadb_dump", "/usr/bin/mariadb-dump");
        c->mariadb_client = jb_settings_str(s, "mariadb_client", "/usr/bin/mariadb");
        c->pg_dump = jb_settings_str(s, "pg_dump", "/usr/bin/pg_dump");
        c->psql = jb_settings_str(s, "psql", "/usr/bin/psql");
        c->pg_user = jb_settings_str(s, "pg_user", "postgres");
        c->pg_host = jb_settings_str(s, "pg_host", "/var/run/postgresql");
}

/* ---- parameter schemas ---- */

static const char *const kinds[] = { "local", "sftp", "rest", NULL };

static const jb_param destination_fields[] = {
        JB_P_ENUM("kind", kinds, JB_REQUIRED,
                  "where the repository lives: local (a directory beneath local_root), sftp (over ssh), "
                  "rest (a restic REST server)"),
        JB_P_STRLEN("location", JB_CHECK_NONE, JB_REQUIRED, 2, 1024,
                    "local: the repository's absolute path, beneath settings.local_root; "
                    "sftp: sftp://user@host:port/absolute/path; rest: rest:http(s)://host:port/path"),
        JB_P_STRLEN("password_ref", JB_CHECK_TOKEN, JB_REQUIRED, 1, 128,
                    "a root-only file of settings.secrets_dir holding the repository password"),
        JB_P_STRLEN("credentials_ref", JB_CHECK_TOKEN, 0, 1, 128,
                    "sftp (required): a root-only ssh private key of settings.secrets_dir, the server's "
                    "host key pinned in <credentials_ref>.known_hosts beside it; rest (optional): a root-only "
                    "file holding user:password"),
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

/* Database stages (backup-db.c): names are checked there (characters,
 * length, the account's prefix). */
static const char *const db_engines[] = { "mariadb", "postgresql", NULL };

static const jb_param db_fields[] = {
        JB_P_ENUM("engine", db_engines, JB_REQUIRED, "mariadb or postgresql"),
        JB_P_STRLEN("name", JB_CHECK_NONE, JB_REQUIRED, 1, 64,
                    "the database, [A-Za-z0-9_$], the account's: <user>_..."),
        JB_P_END
};

static const jb_param db_item[] = { JB_P_OBJECT("database", db_fields, 0, "one database"), JB_P_END };

static const jb_param db_restore_fields[] = {
        JB_P_ENUM("engine", db_engines, JB_REQUIRED, "mariadb or postgresql"),
        JB_P_STRLEN("name", JB_CHECK_NONE, JB_REQUIRED, 1, 64,
                    "the database, [A-Za-z0-9_$], the account's: <user>_...; it must exist"),
        JB_P_STRLEN("snapshot_id", JB_CHECK_TOKEN, 0, 8, 64,
                    "the snapshot holding its dump; default the request's snapshot_id"),
        JB_P_END
};

static const jb_param db_restore_item[] = {
        JB_P_OBJECT("database", db_restore_fields, 0, "one database"), JB_P_END
};


static const jb_param run_params[] = {
        DESTINATION_PARAM,
        JB_P_STRING("user", JB_CHECK_USERNAME, JB_REQUIRED, "the account whose files to back up (tag user=<user>)"),
        JB_P_BOOL("home", 0, "a stage saving the whole home; default true"),
        JB_P_ARRAY("paths", rel_path_item, 0, 0, 64, "a stage for each of these paths beneath the home"),
        JB_P_MAP("tags", JB_CHECK_TOKEN, tag_value, 0, 0, 16, "more restic tags, as key=value"),
        JB_P_ARRAY("databases", db_item, 0, 0, 32, "a stage dumping each of these databases, after the files"),
        JB_P_END
};

/* backup.forget, backup.check and the schedules (backup-forget.c,
 * backup-check.c, backup-schedule.c). */
const jb_param *const backup_run_schema = run_params;

static const jb_param forget_params[] = {
        DESTINATION_PARAM,
        JB_P_INT("keep_last", JB_CHECK_NONE, 0, 1, 10000, "keep the n newest snapshots"),
        JB_P_INT("keep_daily", JB_CHECK_NONE, 0, 1, 10000, "keep the newest snapshot of each of the last n days"),
        JB_P_INT("keep_weekly", JB_CHECK_NONE, 0, 1, 10000, "the same per week"),
        JB_P_INT("keep_monthly", JB_CHECK_NONE, 0, 1, 10000, "the same per month"),
        JB_P_STRING("user", JB_CHECK_USERNAME, 0, "only the account's snapshots (tag user=<user>)"),
        JB_P_MAP("tags", JB_CHECK_TOKEN, tag_value, 0, 0, 16,
                 "only snapshots carrying every one of these key=value tags"),
        JB_P_BOOL("prune", 0, "remove the data only forgotten snapshots used; default true"),
        JB_P_BOOL("background", 0,
                  "run as a job (stages forget, prune) and answer at once with its job_id; default false"),
        JB_P_END
};

static const jb_param check_params[] = {
        DESTINATION_PARAM,
        JB_P_STRLEN("read_data_subset", JB_CHECK_NONE, 0, 2, 13,
                    "also read back this part of the data: n/t (the n-th of t groups) or N%"),
        JB_P_BOOL("background", 0, "run as a job (stage check) and answer at once with its job_id; default false"),
        JB_P_END
};

static const jb_param schedule_write_params[] = {
        JB_P_STRLEN("schedule_id", JB_CHECK_TOKEN, JB_REQUIRED, 1, 64,
                    "names the schedule and its units (jabali-backup-<schedule_id>.timer)"),
        JB_P_STRLEN("on_calendar", JB_CHECK_NONE, JB_REQUIRED, 1, 256,
                    "when, as systemd's OnCalendar= takes it (systemd.time(7))"),
        JB_P_OBJECT("job", run_params, JB_REQUIRED, "what to back up: backup.run's params"),
        JB_P_END
};

static const jb_param schedule_id_params[] = {
        JB_P_STRLEN("schedule_id", JB_CHECK_TOKEN, JB_REQUIRED, 1, 64, "what backup.schedule.write was given"),
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
        JB_P_ARRAY("databases", db_restore_item, 0, 0, 32,
                   "restore these databases from their dumps (database stages' snapshots); instead of the "
                   "files unless files is true"),
        JB_P_BOOL("files", 0,
                  "with databases: restore snapshot_id's files too, in the same job, before the databases (each "
                  "then names its own snapshot_id); default true without databases, false with them"),
        JB_P_END
};

static const jb_param job_params[] = {
        JB_P_STRLEN("job_id", JB_CHECK_TOKEN, JB_REQUIRED, 32, 32, "what backup.run answered"),
        JB_P_END
};

static const char *const job_kinds[] = { "backup", "restore", "forget", "check", NULL };
static const char *const job_states[] = { "queued", "running", "succeeded", "partial", "failed", "cancelled",
                                          "interrupted", NULL };

static const jb_param job_list_params[] = {
        JB_P_STRING("user", JB_CHECK_USERNAME, 0, "only the account's jobs"),
        JB_P_ENUM("kind", job_kinds, 0, "only jobs of this kind"),
        JB_P_ENUM("state", job_states, 0, "only jobs in this state"),
        JB_P_INT("limit", JB_CHECK_NONE, 0, 1, 10000, "at most this many, the newest; default 200"),
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
        PATH_SETTING("units_dir", "where schedule timers and services go; default /etc/systemd/system"),
        PATH_SETTING("schedules_dir", "the schedules' jobs; default /var/lib/jabali/backup/schedules"),
        JB_P_STRLEN("systemctl", JB_CHECK_NONE, 0, 0, 1024,
                    "told of changed schedule units; empty: systemd is not told; default /usr/bin/systemctl"),
        PATH_SETTING("systemd_analyze", "checks calendar expressions; default /usr/bin/systemd-analyze"),
        PATH_SETTING("agentctl", "what a schedule's service runs; default /usr/bin/jabali-agentctl"),
        JB_P_STRLEN("agent_socket", JB_CHECK_NONE, 0, 0, 107,
                    "the agent's socket for that agentctl; empty: agentctl's default"),
        JB_P_INT("randomized_delay_sec", JB_CHECK_NONE, 0, 0, 86400,
                 "RandomizedDelaySec= of schedule timers; default 600"),
        PATH_SETTING("ssh", "the ssh client restic runs for sftp destinations; default /usr/bin/ssh"),
        PATH_SETTING("mariadb_defaults_file", "the MariaDB client's credentials; default /etc/mysql/debian.cnf"),
        PATH_SETTING("mariadb_dump", "default /usr/bin/mariadb-dump"),
        PATH_SETTING("mariadb_client", "restores MariaDB dumps; default /usr/bin/mariadb"),
        PATH_SETTING("pg_dump", "default /usr/bin/pg_dump"),
        PATH_SETTING("psql", "restores PostgreSQL dumps; default /usr/bin/psql"),
        JB_P_STRING("pg_user", JB_CHECK_USERNAME, 0, "the PostgreSQL superuser role and the system user pg_dump and "
                                                    "psql run as (peer authentication); default postgres"),
        PATH_SETTING("pg_host", "PostgreSQL's socket directory; default /var/run/postgresql"),
        JB_P_INT("job_retention_days", JB_CHECK_NONE, 0, 1, 3650,
                 "a finished job's record is removed once it has not changed for this long (when a later "
                 "job starts); default 30"),
        JB_P_INT("stall_timeout_s", JB_CHECK_NONE, 0, 5, 604800,
                 "a backup stage whose restic reports no progress for this long is stopped and fails "
                 "(JOB_STALLED, or DEST_FULL); default 3600"),
        JB_P_STRLEN("restore_dir", JB_CHECK_PATH_SEGMENT, 0, 1, 64,
                    "backup.restore's staging directory, one name beneath the home; default .jabali-restore"),
        JB_P_END
};

static int init(json_object *s, jb_err *err) {
        static const char *const paths[] = { "restic", "secrets_dir", "jobs_dir", "lock_dir", "cache_dir",
                                             "local_root", "ssh", "mariadb_defaults_file", "mariadb_dump",
                                             "mariadb_client", "pg_dump", "psql", "pg_host" };
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
        return backup_schedule_check_settings(s, err);
}

/* ---- actions ---- */

/* backup.restore: files (backup-restore.c, followed by databases[] when
 * files is true) or databases alone (backup-db-restore.c); one job. */
static int backup_restore_any(jb_call *call) {
        json_object *params = jb_call_params(call), *v;
        bool dbs = json_object_object_get_ex(params, "databases", &v) && json_object_array_length(v) > 0;
        bool files = json_object_object_get_ex(params, "files", &v) ? json_object_get_boolean(v) : !dbs;

        if (files)
                return backup_restore(call);
        if (!dbs)
                return jb_call_fail(call, JB_E_INVALID_PARAMS, "files: false restores nothing without databases");
        if (json_object_object_get_ex(params, "mode", NULL) || json_object_object_get_ex(params, "paths", NULL))
                return jb_call_fail(call, JB_E_INVALID_PARAMS,
                                    "databases: mode and paths are the files' (files: true restores files and "
                                    "databases in one job)");
        return backup_db_restore(call);
}

static const char *const errors[] = { BACKUP_E_WRONG_PASSWORD, BACKUP_E_LOCKED, BACKUP_E_UNREACHABLE, BACKUP_E_AUTH,
                                      BACKUP_E_READ_ONLY, BACKUP_E_FULL, NULL };
static const char *const check_errors[] = { BACKUP_E_WRONG_PASSWORD, BACKUP_E_LOCKED, BACKUP_E_UNREACHABLE,
                                            BACKUP_E_AUTH, BACKUP_E_READ_ONLY, BACKUP_E_FULL, BACKUP_E_DAMAGED,
                                            NULL };

static const jb_action actions[] = {
        { .name = "backup.destination.test", .handler = backup_destination_test, .params = destination_test_params,
          .summary = "open a destination's repository (create it with init), write and read back a probe: "
                     "reachability, password, presence, locks, writes",
          .flags = JB_ACTION_MUTATING | JB_ACTION_DRY_RUN, .timeout_ms = 120000, .errors = errors },
        { .name = "backup.snapshots.list", .handler = backup_snapshots_list, .params = snapshots_list_params,
          .summary = "an account's snapshots in a repository (tag user=<user>)", .timeout_ms = 120000,
          .errors = errors },
        { .name = "backup.run", .handler = backup_run, .params = run_params,
          .summary = "back up an account's home and paths as a job of stages; answers at once with its job_id",
          .flags = JB_ACTION_MUTATING | JB_ACTION_DRY_RUN, .timeout_ms = 30000, .errors = errors },
        { .name = "backup.restore", .handler = backup_restore_any, .params = restore_params,
          .summary = "restore an account's snapshot beneath its home (staging or in place) as a job; answers at once",
          .flags = JB_ACTION_MUTATING | JB_ACTION_DRY_RUN, .timeout_ms = 120000, .errors = errors },
        { .name = "backup.job.get", .handler = backup_job_get, .params = job_params,
          .summary = "a job's record: state, stages, progress, snapshot, error", .timeout_ms = 10000 },
        { .name = "backup.job.list", .handler = backup_job_list, .params = job_list_params,
          .summary = "job records, oldest first: the newest that match the filters", .timeout_ms = 30000 },
        { .name = "backup.job.cancel", .handler = backup_job_cancel, .params = job_params,
          .summary = "stop a queued or running job: restic stops, no snapshot stays; answers the state",
          .flags = JB_ACTION_MUTATING | JB_ACTION_DRY_RUN, .timeout_ms = 30000 },
        { .name = "backup.forget", .handler = backup_forget, .params = forget_params,
          .summary = "forget the snapshots a keep policy drops (restic forget), then prune their data; "
                     "with background as a job",
          .flags = JB_ACTION_MUTATING | JB_ACTION_DRY_RUN, .timeout_ms = 300000, .errors = errors },
        { .name = "backup.check", .handler = backup_check, .params = check_params,
          .summary = "check a repository's integrity (restic check), reading back part of the data if asked; "
                     "with background as a job",
          .timeout_ms = 300000, .errors = check_errors },
        { .name = "backup.schedule.write", .handler = backup_schedule_write, .params = schedule_write_params,
          .summary = "create or converge a schedule: a systemd timer and service that run its backup job",
          .flags = JB_ACTION_MUTATING | JB_ACTION_DRY_RUN, .timeout_ms = 60000, .lock = "schedule_id" },
        { .name = "backup.schedule.delete", .handler = backup_schedule_delete, .params = schedule_id_params,
          .summary = "stop and remove a schedule's timer, service and job",
          .flags = JB_ACTION_MUTATING | JB_ACTION_DRY_RUN, .timeout_ms = 60000, .lock = "schedule_id" },
        { .name = "backup.schedule.run", .handler = backup_schedule_run, .params = schedule_id_params,
          .summary = "start a schedule's backup job now, as backup.run would (what its service calls)",
          .flags = JB_ACTION_MUTATING | JB_ACTION_DRY_RUN, .timeout_ms = 30000, .lock = "schedule_id",
          .errors = errors },
        { .name = "backup.schedule.list", .handler = backup_schedule_list, .params = NULL,
          .summary = "every schedule with its calendar and job", .timeout_ms = 30000 },
        { .name = NULL }
};

JABALI_MODULE(.name = "backup", .version = "0.1.0", .hat = "backup",
              .summary = "backups to restic repositories", .actions = actions,
              .settings = settings, .init = init);
