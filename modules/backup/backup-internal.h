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
#define BACKUP_E_FULL "DEST_FULL"                       /* no space (or quota) left where restic writes */
/* In job records only (error.code of a job). */
#define BACKUP_E_PARTIAL "BACKUP_PARTIAL"               /* restic exit 3: a snapshot without some files */
#define BACKUP_E_INTERRUPTED "JOB_INTERRUPTED"          /* the job's process ended before the job */
#define BACKUP_E_CANCELLED "JOB_CANCELLED"              /* backup.job.cancel stopped it */
#define BACKUP_E_STALLED "JOB_STALLED"                  /* restic showed no progress for stall_timeout_s */

/* A job_id: 128 random bits in lower-case hex. */
#define BACKUP_JOB_ID_LEN 32

/* Largest restic output the module keeps (snapshot lists). */
#define BACKUP_OUTPUT_MAX (16u << 20)

typedef struct backup_cfg {
        const char *restic;             /* the restic binary */
        uint64_t stall_ms;              /* a backup stage's restic showing no progress that long is stopped */
        int64_t job_retention_s;        /* a finished record unchanged that long is removed */
        const char *secrets_dir;        /* root-only files that password_ref and credentials_ref name */
        const char *jobs_dir;           /* durable job records */
        const char *lock_dir;
        const char *cache_dir;          /* restic's cache (RESTIC_CACHE_DIR) */
        const char *local_root;         /* local repositories live beneath it */
        const char *ssh;                /* the ssh client restic runs for sftp destinations */
        /* Database stages (backup-db.c). */
        const char *mariadb_defaults_file;      /* the client's credentials (root's) */
        const char *mariadb_dump;
        const char *mariadb_client;
        const char *pg_dump;
        const char *psql;
        const char *pg_user;                    /* the role and the system user both run as */
        const char *pg_host;                    /* the server's socket directory */
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
/* Zeroes a destination (REST credentials live in repository and scrub),
 * so a worker that served the request does not keep them on its stack.
 * Declare destinations BACKUP_DEST_WIPED, and structs holding one with a
 * cleanup that calls this. */
void backup_dest_wipe(backup_dest *d);
#define BACKUP_DEST_WIPED __attribute__((cleanup(backup_dest_wipe)))

/* backup-secret.c: the path of a root-only file of secrets_dir named by
 * ref; NOT_FOUND when absent, CONFLICT when anyone but root could read or
 * replace it. */
int backup_secret_path(const backup_cfg *c, const char *ref, char *out, size_t size, jb_err *err);

/* backup-restic.c: runs restic with `args` on the destination's
 * repository. The repository and the password file go through the
 * environment (RESTIC_REPOSITORY, RESTIC_PASSWORD_FILE), never argv, which
 * any local user can read. Returns 0 when restic ran (*r filled, the caller
 * frees it), -1 when it could not be run. `args` holds at most
 * BACKUP_RESTIC_ARGS_MAX arguments (a backup stage's tags are most of them). */
#define BACKUP_RESTIC_ARGS_MAX 64
int backup_restic_run(const backup_cfg *c, const backup_dest *d, const char *const *args, uint64_t timeout_ms,
                      jb_spawn_result *r, jb_err *err);
/* The same with `in` (len bytes) on restic's stdin (backup --stdin). */
int backup_restic_run_input(const backup_cfg *c, const backup_dest *d, const char *const *args, const void *in,
                            size_t len, uint64_t timeout_ms, jb_spawn_result *r, jb_err *err);
/* Where a maintenance command (forget, prune, check) runs: for a request,
 * within its deadline (call set), or as a step of a job (job set), with
 * no deadline and stopped by the job's cancel. */
typedef struct backup_exec {
        const backup_cfg *c;
        const backup_dest *d;
        jb_call *call;
        struct backup_job *job;
} backup_exec;
/* backup_restic_run there. In a job, a cancel sends restic SIGINT (which
 * makes it remove its lock; backup_restic_unlock follows) and the call
 * returns -1 with JOB_CANCELLED, *r freed. */
int backup_restic_exec(const backup_exec *x, const char *const *args, jb_spawn_result *r, jb_err *err);
/* Maps an unsuccessful restic run to a stable code: NOT_FOUND (no
 * repository there), REPO_WRONG_PASSWORD, REPO_LOCKED, else SERVICE_FAILED
 * with restic's first lines. Always returns -1. */
int backup_restic_err(const jb_spawn_result *r, jb_err *err);

/* backup-job.c: durable job records, jobs_dir/<job_id>.json. */
int backup_job_new_id(char id[BACKUP_JOB_ID_LEN + 1], jb_err *err);
bool backup_job_id_ok(const char *id);
int backup_job_write(const backup_cfg *c, json_object *rec, jb_err *err);
int backup_job_read(const backup_cfg *c, const char *id, json_object **ret, jb_err *err);
/* A record's state ("" when it has none), and whether it is queued or
 * running. */
const char *backup_job_state(json_object *rec);
bool backup_job_unfinished(json_object *rec);
/* Removes the records of finished jobs (any state but queued and running)
 * last written more than job_retention_s ago. Best effort, and quick: run
 * when a job starts. */
void backup_job_expire(const backup_cfg *c);
/* Start time of a process (/proc/<pid>/stat field 22), -1 when it is gone. */
long long backup_pid_start(pid_t pid);

/* backup-runner.c: a job's detached process and what it writes.
 *
 * backup_job_start() stamps `rec` (which must hold job_id and kind, and is
 * still the caller's after the call) queued, forks the runner, writes the
 * record naming it and only then lets it start; 0 means the record is on
 * disk. The runner calls fn(job, arg) in a copy of the caller's memory
 * (arg and everything it points to stays valid there), then
 * backup_job_finish(). */
typedef struct backup_job {
        const backup_cfg *c;
        json_object *rec;               /* the record, the runner's own */
        int cancel_fd;                  /* readable: stop what runs (a cancel, or a stall) */
        bool cancel_asked;
        bool stopping;                  /* a stall stopped the stage's programs */
        uint64_t last_write_ms;
} backup_job;

typedef void (*backup_job_fn)(backup_job *j, void *arg);

int backup_job_start(const backup_cfg *c, json_object *rec, backup_job_fn fn, void *arg, jb_err *err);
/* What every job handler does once its plan holds: a new job_id (into id,
 * which fn's arg may point at), stamped on `rec` (taken), the job started,
 * and the answer {job_id, state: queued}; or the call failed. */
int backup_job_launch(jb_call *call, const backup_cfg *c, json_object *rec, char id[BACKUP_JOB_ID_LEN + 1],
                      backup_job_fn fn, void *arg);
/* Appends {name, state: running} to the record's stages and writes it;
 * the stage belongs to the record. */
json_object *backup_job_stage_begin(backup_job *j, const char *name);
/* state: succeeded, partial, failed, cancelled or skipped; err (when set)
 * becomes the stage's error. Writes the record. */
void backup_job_stage_end(backup_job *j, json_object *stage, const char *state, const jb_err *err);
/* Ends a stage that failed with err: cancelled when err is JOB_CANCELLED
 * (a cancel stopped its program), else failed. */
void backup_job_stage_fail(backup_job *j, json_object *stage, const jb_err *err);
/* Stops the programs of the current stage as a cancel would (everything
 * watching cancel_fd), without cancelling the job: a stalled restic. The
 * next backup_job_stage_end() rearms the pipe. */
void backup_job_stop_programs(backup_job *j);
/* CLOCK_MONOTONIC in milliseconds. */
uint64_t backup_mono_ms(void);
/* Replaces the record's progress (taking `progress`); written at most twice
 * a second. */
void backup_job_progress(backup_job *j, json_object *progress);
/* True once backup.job.cancel asked the runner to stop: begin no more
 * stages. */
bool backup_job_cancelled(backup_job *j);
/* The job's state from its stages (failed > cancelled > partial >
 * succeeded), its error from the worst stage; writes the final record. */
void backup_job_finish(backup_job *j);

/* backup-restic.c: `restic backup --json ...` (args) as a stage of job j:
 * progress from its status lines, the snapshot from its summary, stdin
 * from stdin_fd (0 = none; given, closed in every case), stopped by a
 * cancel. Returns the stage's state: succeeded (a snapshot was written),
 * partial (exit 3: a snapshot lacking files; err BACKUP_PARTIAL),
 * cancelled, failed (err set). A snapshot a cancelled or failed run still
 * wrote is forgotten: no job leaves a snapshot it does not report. */
const char *backup_restic_stage(backup_job *j, const backup_dest *d, const char *const *args, int stdin_fd,
                                json_object *stage, jb_err *err);

/* backup-view.c: in the runner, before reading an account's files as
 * root: a private mount namespace in which `home` is a read-only bind
 * mount that follows no symbolic link (MS_NOSYMFOLLOW), so nothing the
 * account swaps in while restic walks its tree leads restic outside it. */
int backup_home_view(const char *home, jb_err *err);

/* ---- database stages (backup-db.c) ---- */

/* In job records only. */
#define BACKUP_E_DUMP_FAILED "DUMP_FAILED"              /* the dump program failed or was killed */
#define BACKUP_E_DB_RESTORE_FAILED "DB_RESTORE_FAILED"  /* the client refused the dump (or died) */

/* engine (mariadb|postgresql) and name: the name's characters and length;
 * with user, also that the database is the account's (`<user>_...`):
 * INVALID_PARAMS, PERMISSION_DENIED. */
int backup_db_check(const char *user, const char *engine, const char *name, jb_err *err);
/* The dump of engine/name streamed into `restic backup` (restic_args,
 * which must read stdin) as the job's stage `stage`; both exit statuses
 * decide. Returns the stage's state like backup_restic_stage; a dump that
 * failed is DUMP_FAILED and leaves no snapshot. */
const char *backup_db_dump_stage(backup_job *j, const backup_dest *d, const char *const *restic_args,
                                 const char *engine, const char *name, json_object *stage, jb_err *err);
/* A stage "db:<engine>:<name>" of job j: `restic dump` of the snapshot's
 * <engine>/<name>.sql piped into the database's client. The name is
 * checked again here; the caller checked it is the account's. */
void backup_db_restore_stage(backup_job *j, const backup_dest *d, const char *snapshot, const char *engine,
                             const char *name);
/* backup-restic.c: restic with stdin/stdout descriptors (jb_spawn_io). */
int backup_restic_run_io(const backup_cfg *c, const backup_dest *d, const char *const *args, jb_spawn_io *io,
                         jb_spawn_result *r, jb_err *err);
/* backup-restic.c: forgets the stage's snapshot_id (a snapshot whose input
 * was cut short) and drops it from the stage. */
void backup_restic_forget(const backup_cfg *c, const backup_dest *d, json_object *stage);
/* backup-restic.c: `restic unlock`, which removes the locks of processes
 * gone from this host (never a live restic's); out.stale_locks_removed
 * (out may be NULL) says whether it succeeded. Run after every restic a cancel, a stall or
 * an agent's death stopped: restic 0.14 writes its lock file some
 * milliseconds before its SIGINT cleanup knows of it (while it looks for
 * other locks), so a cancel in that window leaves the lock behind. */
void backup_restic_unlock(const backup_cfg *c, const backup_dest *d, json_object *out);
/* What every restic a cancel stopped is followed by: the job knows it is
 * cancelled, err is JOB_CANCELLED, and backup_restic_unlock runs (into
 * out). Returns "cancelled", the stage's state. */
const char *backup_restic_cancelled(backup_job *j, const backup_dest *d, json_object *out, jb_err *err);
/* backup-db-restore.c: the databases of a backup.restore, checked before
 * the answer: each the account's, each snapshot (its own snapshot_id, or
 * `default_snapshot` when it names none and that is not NULL) a dump of
 * that database taken for that account. The runner's copy of the plan is
 * what backup_db_restore_work() restores, a stage per database. */
#define BACKUP_DBS_MAX 32
typedef struct backup_db_rplan {
        json_object *databases;         /* borrowed from the request; valid in the runner's copy */
        char snaps[BACKUP_DBS_MAX][65]; /* each database's snapshot, its full id as restic listed it */
} backup_db_rplan;
int backup_db_restore_plan(const backup_cfg *c, const backup_dest *d, json_object *databases, const char *user,
                           const char *default_snapshot, backup_db_rplan *p, jb_err *err);
void backup_db_restore_work(backup_job *j, const backup_dest *d, const backup_db_rplan *p);
/* backup.restore of databases alone (no files: true). */
int backup_db_restore(jb_call *call);

/* Handlers. */
int backup_run(jb_call *call);
/* backup.run's work for a params object that passed its schema; a
 * schedule starts it with its schedule_id (NULL otherwise), which the job
 * record names and every snapshot carries as jabali-schedule=<id>. */
int backup_run_params(jb_call *call, json_object *params, const char *schedule_id);
int backup_job_get(jb_call *call);
int backup_job_list(jb_call *call);
int backup_job_cancel(jb_call *call);
int backup_destination_test(jb_call *call);
int backup_snapshots_list(jb_call *call);

/* ---- forget, check and schedules (backup-forget.c, backup-check.c,
 * backup-schedule.c, backup-unit.c) ---- */

#define BACKUP_E_DAMAGED "REPO_DAMAGED"                 /* restic check found errors in the repository */

/* backup.run's params schema (backup.c): a schedule's job is validated
 * against it when written and again when run. */
extern const jb_param *const backup_run_schema;

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
/* backup.restore (files): backup-restore.c, backup-restore-tree.c. */
#define BACKUP_E_RESTORE_PARTIAL "RESTORE_PARTIAL"     /* in job records: entries restic or the move refused */


/* What a restore did, for its stage: paths (relative to the home) moved
 * into place and entries refused with a reason, the first LIST_MAX of
 * each and their counts. */
typedef struct backup_restore_report {
        json_object *restored;
        json_object *refused;
        size_t n_restored, n_refused;
} backup_restore_report;

void backup_restore_report_init(backup_restore_report *r);
void backup_restore_report_free(backup_restore_report *r);
void backup_restore_refused(backup_restore_report *r, const char *rel, const char *name, const char *why);
/* Removes device nodes from the tree of dfd and gives the rest (dfd
 * included) to uid:gid, following no link. */
int backup_restore_tidy(int dfd, uid_t uid, gid_t gid, backup_restore_report *r, jb_err *err);
/* Moves the entries of src into the same places beneath home; stops
 * between entries once j is cancelled. */
void backup_restore_place(backup_job *j, int src, int home, uid_t uid, backup_restore_report *r);

int backup_restore(jb_call *call);

#endif
