/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Database stages: a dump program streaming into `restic backup --stdin`,
 * and `restic dump` streaming into the database's client. Each pipeline is
 * two programs joined by a pipe, the producer run on a second thread, and
 * both exit statuses decide: a producer that died leaves its consumer a
 * short but clean end of file, which alone would look like success.
 *
 * PostgreSQL's tools run as the pg_user system user (setpriv, which execs:
 * jb_spawn's process-group kill still reaches them) because Debian's
 * server admits its superuser by peer authentication only. */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "backup-internal.h"

#define SETPRIV "/usr/bin/setpriv"
#define ARGV_MAX 24
/* The longest names: MariaDB's identifiers, PostgreSQL's NAMEDATALEN - 1. */
#define MARIADB_NAME_MAX 64
#define PG_NAME_MAX 63

static bool name_char(char ch) {
        return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
               ch == '$';
}

int backup_db_check(const char *user, const char *engine, const char *name, jb_err *err) {
        size_t n = strlen(name), max, u;

        if (strcmp(engine, "mariadb") == 0)
                max = MARIADB_NAME_MAX;
        else if (strcmp(engine, "postgresql") == 0)
                max = PG_NAME_MAX;
        else
                return jb_err_set(err, JB_E_INVALID_PARAMS, "engine %s: mariadb or postgresql", engine);
        if (n == 0 || n > max)
                return jb_err_set(err, JB_E_INVALID_PARAMS, "database name: 1 to %zu characters", max);
        for (size_t i = 0; i < n; i++)
                if (!name_char(name[i]))
                        return jb_err_set(err, JB_E_INVALID_PARAMS, "database %s: only [A-Za-z0-9_$]", name);
        if (!user)
                return 0;
        /* The panel names an account's databases <user>_<something>. */
        u = strlen(user);
        if (n <= u + 1 || strncmp(name, user, u) != 0 || name[u] != '_')
                return jb_err_set(err, JB_E_PERMISSION_DENIED, "database %s is not the account's (%s_...)", name,
                                  user);
        return 0;
}

/* ---- argv ---- */

typedef struct cmd {
        const char *argv[ARGV_MAX];
        size_t n;
        char buf[6][PATH_MAX + 32];     /* --option=value strings the argv points to */
        size_t nbuf;
} cmd;

static void add(cmd *c, const char *a) {
        if (c->n < ARGV_MAX - 1)
                c->argv[c->n++] = a;
        c->argv[c->n] = NULL;
}

static int addf(cmd *c, const char *opt, const char *val, jb_err *err) {
        char *b;

        if (c->nbuf == sizeof c->buf / sizeof c->buf[0])
                return jb_err_set(err, JB_E_INTERNAL, "too many options");
        b = c->buf[c->nbuf++];
        if ((size_t) snprintf(b, sizeof c->buf[0], "%s=%s", opt, val) >= sizeof c->buf[0])
                return jb_err_set(err, JB_E_INVALID_PARAMS, "%s: too long", opt);
        add(c, b);
        return 0;
}

/* setpriv ... -- <tool> --host=H --username=U --no-password: as pg_user. */
static int pg_prefix(cmd *c, const backup_cfg *cfg, const char *tool, jb_err *err) {
        add(c, SETPRIV);
        if (addf(c, "--reuid", cfg->pg_user, err) < 0 || addf(c, "--regid", cfg->pg_user, err) < 0)
                return -1;
        add(c, "--init-groups");
        add(c, "--");
        add(c, tool);
        if (addf(c, "--host", cfg->pg_host, err) < 0 || addf(c, "--username", cfg->pg_user, err) < 0)
                return -1;
        add(c, "--no-password");
        return 0;
}

/* The dump: a plain SQL script that recreates the database's objects
 * (MariaDB: CREATE DATABASE IF NOT EXISTS, USE, DROP TABLE IF EXISTS ...;
 * PostgreSQL: --clean --if-exists), so restoring it over the live
 * database replaces what the dump holds. */
static int dump_cmd(cmd *c, const backup_cfg *cfg, const char *engine, const char *name, jb_err *err) {
        if (strcmp(engine, "postgresql") == 0) {
                if (pg_prefix(c, cfg, cfg->pg_dump, err) < 0)
                        return -1;
                add(c, "--clean");
                add(c, "--if-exists");
                return addf(c, "--dbname", name, err);
        }
        add(c, cfg->mariadb_dump);
        if (addf(c, "--defaults-file", cfg->mariadb_defaults_file, err) < 0)   /* first, as it must be */
                return -1;
        add(c, "--single-transaction");
        add(c, "--routines");
        add(c, "--events");
        add(c, "--triggers");
        add(c, "--skip-dump-date");
        add(c, "--databases");
        add(c, name);
        return 0;
}

/* The client reading a dump: PostgreSQL's in one transaction that only an
 * end of file without error commits; MariaDB's with --one-database, so a
 * statement for another database (after a USE of it) is skipped. MariaDB
 * has no transactional DDL: a restore that fails half way leaves the
 * database half restored (the stage says failed). */
static int client_cmd(cmd *c, const backup_cfg *cfg, const char *engine, const char *name, jb_err *err) {
        if (strcmp(engine, "postgresql") == 0) {
                if (pg_prefix(c, cfg, cfg->psql, err) < 0)
                        return -1;
                add(c, "--no-psqlrc");
                add(c, "--quiet");
                add(c, "--set=ON_ERROR_STOP=1");
                add(c, "--single-transaction");
                if (addf(c, "--dbname", name, err) < 0)
                        return -1;
                add(c, "--file=-");
                return 0;
        }
        add(c, cfg->mariadb_client);
        if (addf(c, "--defaults-file", cfg->mariadb_defaults_file, err) < 0)
                return -1;
        add(c, "--batch");
        add(c, "--one-database");
        add(c, name);
        return 0;
}

/* A database that is not there, in the tools' own words. */
static bool db_missing(const jb_spawn_result *r) {
        const char *e = r->stderr_data ? r->stderr_data : "";

        return strstr(e, "Unknown database") || (strstr(e, "database \"") && strstr(e, "\" does not exist"));
}

/* ---- the producer thread ---- */

typedef struct producer {
        const backup_cfg *c;
        const backup_dest *d;           /* set: restic with these args; else argv */
        const char *const *args;
        const char *const *argv;
        int out;                        /* its stdout (taken) */
        int cancel_fd;
        int done_fd;                    /* closed once it succeeded; -1 when not used */
        int abort_w;                    /* written once it failed; -1 when not used */
        int rc;
        bool cancelled;
        jb_spawn_result r;
        jb_err err;
} producer;

static void *run_producer(void *arg) {
        producer *p = arg;
        /* restic removes its lock on SIGINT only; a dump program takes SIGTERM. */
        jb_spawn_io io = { .stdout_fd = p->out, .cancel_fd = p->cancel_fd, .cancel_signal = p->d ? SIGINT : 0 };
        jb_spawn_opts o = { .argv = p->argv };

        p->rc = p->d ? backup_restic_run_io(p->c, p->d, p->args, &io, &p->r, &p->err)
                     : jb_spawn_run_io(&o, &io, &p->r, &p->err);
        p->cancelled = io.cancelled;
        /* The consumer sees end of file only after a complete stream; a
         * cut one stops it first (its cancel descriptor). */
        if (p->rc == 0 && jb_spawn_succeeded(&p->r) && p->done_fd >= 0) {
                close(p->done_fd);
                p->done_fd = -1;
        } else if (p->abort_w >= 0) {
                (void) !write(p->abort_w, "a", 1);
        }
        return NULL;
}

static int start_producer(producer *p, pthread_t *t, jb_err *err) {
        int e = pthread_create(t, NULL, run_producer, p);

        if (e != 0) {
                close(p->out);
                return jb_err_set(err, JB_E_INTERNAL, "pthread_create: %s", strerror(e));
        }
        return 0;
}

/* ---- backup ---- */

static const char *dump_failed(const producer *p, jb_err *err) {
        if (p->rc < 0) {
                *err = p->err;
                return "failed";
        }
        if (db_missing(&p->r))
                jb_err_set(err, JB_E_NOT_FOUND, "no such database");
        else {
                jb_spawn_result_to_err(&p->r, err);
                snprintf(err->code, sizeof err->code, "%s", BACKUP_E_DUMP_FAILED);
        }
        return "failed";
}

const char *backup_db_dump_stage(backup_job *j, const backup_dest *d, const char *const *restic_args,
                                 const char *engine, const char *name, json_object *stage, jb_err *err) {
        producer p = { .c = j->c, .cancel_fd = j->cancel_fd, .done_fd = -1, .abort_w = -1, .err = JB_ERR_INIT };
        cmd dump = { .n = 0 };
        pthread_t t;
        int pp[2];
        const char *state;

        if (backup_db_check(NULL, engine, name, err) < 0 || dump_cmd(&dump, j->c, engine, name, err) < 0)
                return "failed";
        p.argv = dump.argv;
        if (pipe2(pp, O_CLOEXEC) < 0)
                return jb_err_set(err, JB_E_INTERNAL, "pipe: %s", strerror(errno)), "failed";
        p.out = pp[1];
        if (start_producer(&p, &t, err) < 0) {
                close(pp[0]);
                return "failed";
        }
        state = backup_restic_stage(j, d, restic_args, pp[0], stage, err);
        pthread_join(t, NULL);
        if (p.rc == 0)
                json_object_object_add(stage, "dump_exit_code", json_object_new_int(p.r.exit_code));
        /* restic's own failure (or a cancel) explains a dump that lost its
         * reader; a dump that failed under a restic that did not fails the
         * stage, and the snapshot of its cut stream goes. */
        if ((strcmp(state, "succeeded") == 0 || strcmp(state, "partial") == 0) &&
            (p.rc < 0 || !jb_spawn_succeeded(&p.r))) {
                *err = (jb_err) JB_ERR_INIT;
                state = dump_failed(&p, err);
                backup_restic_forget(j->c, d, stage);
        }
        jb_spawn_result_free(&p.r);
        return state;
}

/* ---- restore ---- */

static void restore_failed(const jb_spawn_result *r, jb_err *err) {
        if (db_missing(r)) {
                jb_err_set(err, JB_E_NOT_FOUND, "no such database (restore into one the panel created)");
                return;
        }
        jb_spawn_result_to_err(r, err);
        snprintf(err->code, sizeof err->code, "%s", BACKUP_E_DB_RESTORE_FAILED);
}

static void restic_dump_failed(const producer *p, jb_err *err) {
        const char *e = p->r.stderr_data ? p->r.stderr_data : "";

        if (p->rc < 0)
                *err = p->err;
        else if (strstr(e, "not found in snapshot"))
                jb_err_set(err, JB_E_NOT_FOUND, "the snapshot holds no such dump");
        else if (strstr(e, "no matching ID found") || strstr(e, "no snapshot"))
                jb_err_set(err, JB_E_NOT_FOUND, "no such snapshot");
        else
                backup_restic_err(&p->r, err);
}

/* Runs the pipeline; returns the stage's state. */
static const char *restore_pipe(backup_job *j, const backup_dest *d, const char *snapshot, const char *path,
                                const cmd *client, json_object *stage, jb_err *err) {
        const char *args[] = { "dump", "--", snapshot, path, NULL };
        producer p = { .c = j->c, .d = d, .args = args, .cancel_fd = j->cancel_fd, .err = JB_ERR_INIT };
        jb_spawn_opts o = { .argv = client->argv };
        jb_spawn_io io = { 0 };
        jb_spawn_result r = { 0 };
        pthread_t t;
        int pp[2], ab[2], rc;
        const char *state = "failed";

        if (pipe2(pp, O_CLOEXEC) < 0)
                return jb_err_set(err, JB_E_INTERNAL, "pipe: %s", strerror(errno)), "failed";
        if (pipe2(ab, O_CLOEXEC) < 0) {
                close(pp[0]), close(pp[1]);
                return jb_err_set(err, JB_E_INTERNAL, "pipe: %s", strerror(errno)), "failed";
        }
        /* A second writer, held until restic is known to have succeeded. */
        p.done_fd = fcntl(pp[1], F_DUPFD_CLOEXEC, 3);
        p.abort_w = ab[1];
        p.out = pp[1];
        if (p.done_fd < 0 || start_producer(&p, &t, err) < 0) {
                if (p.done_fd < 0)
                        close(pp[1]), jb_err_set(err, JB_E_INTERNAL, "dup: %s", strerror(errno));
                else
                        close(p.done_fd);
                close(pp[0]), close(ab[0]), close(ab[1]);
                return "failed";
        }
        io.stdin_fd = pp[0];
        io.cancel_fd = ab[0];
        rc = jb_spawn_run_io(&o, &io, &r, err);
        pthread_join(t, NULL);
        if (p.done_fd >= 0)
                close(p.done_fd);
        close(ab[0]), close(ab[1]);
        if (rc == 0)
                json_object_object_add(stage, "exit_code", json_object_new_int(r.exit_code));
        if (p.rc == 0)
                json_object_object_add(stage, "dump_exit_code", json_object_new_int(p.r.exit_code));
        /* The first to fail explains the other: a client stopped because
         * restic failed (io.cancelled), restic cut off by a client that
         * refused the dump. */
        if (p.cancelled) {
                state = backup_restic_cancelled(j, d, stage, err);
        } else if (rc < 0) {
                state = "failed";       /* err: the client could not be run */
        } else if (!io.cancelled && !jb_spawn_succeeded(&r)) {
                restore_failed(&r, err);
        } else if (p.rc < 0 || !jb_spawn_succeeded(&p.r)) {
                *err = (jb_err) JB_ERR_INIT;
                restic_dump_failed(&p, err);
        } else {
                state = "succeeded";
        }
        jb_spawn_result_free(&r);
        jb_spawn_result_free(&p.r);
        return state;
}

void backup_db_restore_stage(backup_job *j, const backup_dest *d, const char *snapshot, const char *engine,
                             const char *name) {
        char sname[96], path[96];
        cmd client = { .n = 0 };
        jb_err err = JB_ERR_INIT;
        json_object *stage;
        const char *state = "failed";

        snprintf(sname, sizeof sname, "db:%s:%s", engine, name);
        stage = backup_job_stage_begin(j, sname);
        json_object_object_add(stage, "snapshot_id", json_object_new_string(snapshot));
        /* The path is built from the checked name, never read from the
         * snapshot; what the dump holds is the client's to parse. */
        if (backup_db_check(NULL, engine, name, &err) == 0 &&
            (size_t) snprintf(path, sizeof path, "/%s/%s.sql", engine, name) < sizeof path &&
            client_cmd(&client, j->c, engine, name, &err) == 0)
                state = restore_pipe(j, d, snapshot, path, &client, stage, &err);
        backup_job_stage_end(j, stage, state, &err);
}
