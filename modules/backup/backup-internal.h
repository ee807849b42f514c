/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef BACKUP_INTERNAL_H
#define BACKUP_INTERNAL_H

/* Shared between the backup module's files; nothing here is exported. */

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jabali/module.h>
#include <jabali/spawn.h>

/* Module-specific error codes (published through agent.describe). */
#define BACKUP_E_WRONG_PASSWORD "REPO_WRONG_PASSWORD"   /* the password opens no key of the repository */
#define BACKUP_E_LOCKED "REPO_LOCKED"                   /* another restic holds an exclusive lock */
/* In job records only (error.code of a job). */
#define BACKUP_E_PARTIAL "BACKUP_PARTIAL"               /* restic exit 3: a snapshot without some files */
#define BACKUP_E_INTERRUPTED "JOB_INTERRUPTED"          /* the job's process ended before the job */

/* A job_id: 128 random bits in lower-case hex. */
#define BACKUP_JOB_ID_LEN 32

/* Largest restic output the module keeps (snapshot lists). */
#define BACKUP_OUTPUT_MAX (16u << 20)

typedef struct backup_cfg {
        const char *restic;             /* the restic binary */
        const char *secrets_dir;        /* root-only files that password_ref and credentials_ref name */
        const char *jobs_dir;           /* durable job records */
        const char *lock_dir;
        const char *cache_dir;          /* restic's cache (RESTIC_CACHE_DIR) */
        const char *local_root;         /* local repositories live beneath it */
} backup_cfg;

void backup_cfg_from_settings(json_object *s, backup_cfg *c);

/* A destination as the request gives it, checked (backup-dest.c). The
 * password file path is resolved and checked, never its content read. */
typedef struct backup_dest {
        const char *kind;
        const char *location;
        char password_file[PATH_MAX];
} backup_dest;

int backup_dest_from_params(const backup_cfg *c, json_object *dest, backup_dest *d, jb_err *err);

/* backup-secret.c: the path of a root-only file of secrets_dir named by
 * ref; NOT_FOUND when absent, CONFLICT when anyone but root could read or
 * replace it. */
int backup_secret_path(const backup_cfg *c, const char *ref, char *out, size_t size, jb_err *err);

/* backup-restic.c: runs restic with `args` on the destination's
 * repository. The repository and the password file go through the
 * environment (RESTIC_REPOSITORY, RESTIC_PASSWORD_FILE), never argv, which
 * any local user can read. Returns 0 when restic ran (*r filled, the caller
 * frees it), -1 when it could not be run. */
int backup_restic_run(const backup_cfg *c, const backup_dest *d, const char *const *args, uint64_t timeout_ms,
                      jb_spawn_result *r, jb_err *err);
/* Maps an unsuccessful restic run to a stable code: NOT_FOUND (no
 * repository there), REPO_WRONG_PASSWORD, REPO_LOCKED, else SERVICE_FAILED
 * with restic's first lines. Always returns -1. */
int backup_restic_err(const jb_spawn_result *r, jb_err *err);

/* backup-job.c: durable job records, jobs_dir/<job_id>.json. */
int backup_job_new_id(char id[BACKUP_JOB_ID_LEN + 1], jb_err *err);
bool backup_job_id_ok(const char *id);
int backup_job_write(const backup_cfg *c, json_object *rec, jb_err *err);
int backup_job_read(const backup_cfg *c, const char *id, json_object **ret, jb_err *err);
/* Start time of a process (/proc/<pid>/stat field 22), -1 when it is gone. */
long long backup_pid_start(pid_t pid);

/* Handlers. */
int backup_run(jb_call *call);
int backup_job_get(jb_call *call);
int backup_job_list(jb_call *call);
int backup_destination_test(jb_call *call);
int backup_snapshots_list(jb_call *call);

/* ---- forget, check and schedules (backup-forget.c, backup-check.c,
 * backup-schedule.c, backup-unit.c) ---- */

#define BACKUP_E_DAMAGED "REPO_DAMAGED"                 /* restic check found errors in the repository */

/* backup.run's params schema (backup.c): a schedule's job is validated
 * against it when written and again when run. */
extern const jb_param *const backup_run_schema;
/* backup.run's work on a params object (backup-run.c). */
int backup_run_job(jb_call *call, json_object *params);

/* Schedule units. The meta object (the stamp on the first line of both
 * units) holds everything they are rendered from, so a unit can be
 * rendered again from its own first line: a unit that differs from that
 * was changed by hand. */
#define BACKUP_UNIT_HEADER "# jabali-backup: "
#define BACKUP_UNIT_PREFIX "jabali-backup-"
#define BACKUP_UNIT_MAX (16u << 10)
typedef enum backup_unit_kind { BACKUP_UNIT_SERVICE, BACKUP_UNIT_TIMER } backup_unit_kind;
typedef enum backup_unit_owner { BACKUP_UNIT_FOREIGN, BACKUP_UNIT_EDITED, BACKUP_UNIT_OURS } backup_unit_owner;
json_object *backup_unit_meta(const char *schedule_id, const char *on_calendar, const char *agentctl,
                              const char *agent_socket, int64_t randomized_delay_sec);
int backup_unit_render(json_object *meta, backup_unit_kind kind, char **ret, size_t *ret_len, jb_err *err);
backup_unit_owner backup_unit_owner_of(const char *text, size_t len, backup_unit_kind kind);
/* What a calendar expression, an ExecStart path may hold in a unit file:
 * no specifier (%), escape (\\), quote, blank at either end or control character. */
bool backup_calendar_chars_ok(const char *s);
bool backup_unit_path_ok(const char *s);

int backup_schedule_check_settings(json_object *s, jb_err *err);

int backup_forget(jb_call *call);
int backup_check(jb_call *call);
int backup_schedule_write(jb_call *call);
int backup_schedule_delete(jb_call *call);
int backup_schedule_run(jb_call *call);
int backup_schedule_list(jb_call *call);

#endif
