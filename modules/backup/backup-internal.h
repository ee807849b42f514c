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
/* Remote destinations (backup-remote.c) and the write probe (backup-probe.c). */
#define BACKUP_E_UNREACHABLE "DEST_UNREACHABLE"         /* no connection to the server */
#define BACKUP_E_AUTH "DEST_AUTH_FAILED"                /* credentials refused, or the host key is not the pinned one */
#define BACKUP_E_READ_ONLY "DEST_READ_ONLY"             /* the destination refuses writes */
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
        const char *ssh;                /* the ssh client restic runs for sftp destinations */
} backup_cfg;

void backup_cfg_from_settings(json_object *s, backup_cfg *c);

/* Sizes of what backup-remote.c derives from a remote destination. */
#define BACKUP_REPO_MAX 8192
#define BACKUP_OPTION_MAX 4096
#define BACKUP_CRED_MAX 1024

/* A destination as the request gives it, checked (backup-dest.c). The
 * password file path is resolved and checked, never its content read.
 * `repository` is what restic gets as RESTIC_REPOSITORY (for rest with
 * credentials it holds them: it goes nowhere else); `option` is one
 * `-o` value for restic's command line (sftp.command: paths, never a
 * secret), or empty; `scrub` is the REST password, cut out of whatever
 * restic prints. */
typedef struct backup_dest {
        const char *kind;
        const char *location;
        char password_file[PATH_MAX];
        char repository[BACKUP_REPO_MAX];
        char option[BACKUP_OPTION_MAX];
        char scrub[BACKUP_CRED_MAX];
} backup_dest;

/* backup-remote.c: fills d->repository, d->option and d->scrub for an
 * sftp or rest destination (d->kind, d->location set), INVALID_PARAMS for
 * a location it does not accept. */
int backup_remote_from_params(const backup_cfg *c, backup_dest *d, const char *credentials_ref, jb_err *err);
/* Removes the REST credentials (and any URL userinfo) from restic's
 * stderr in place; every restic run goes through it. */
void backup_remote_scrub(const backup_dest *d, jb_spawn_result *r);
/* Maps what restic (or ssh beneath it) says about the connection:
 * DEST_UNREACHABLE, DEST_AUTH_FAILED, DEST_READ_ONLY, NOT_FOUND of a
 * remote repository. Returns -1 when it set *err, 0 when it did not. */
int backup_remote_err(const char *stderr_text, jb_err *err);

/* backup-probe.c: writes a few random bytes as a snapshot tagged
 * jabali-probe, reads them back, compares and forgets that snapshot. */
int backup_probe(jb_call *call, const backup_cfg *c, const backup_dest *d, jb_err *err);

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
/* The same with `in` (len bytes) on restic's stdin (backup --stdin). */
int backup_restic_run_input(const backup_cfg *c, const backup_dest *d, const char *const *args, const void *in,
                            size_t len, uint64_t timeout_ms, jb_spawn_result *r, jb_err *err);
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

#endif
