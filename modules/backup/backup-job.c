/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Durable job records: jobs_dir/<job_id>.json, replaced atomically at each
 * step, so a reader sees one whole state and a crash leaves the last one.
 *
 * A record whose state is queued or running names the process doing the
 * work by pid and start time (field 22 of /proc/<pid>/stat, so a recycled
 * pid is not mistaken for it). When that process is gone, the job was cut
 * short — the agent stopped, the host rebooted, the runner was killed — and
 * readers report it (and rewrite it) as interrupted: it never stays
 * "running" for ever, and it is never taken for a success. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/pidfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jabali/fs.h>

#include "backup-internal.h"

#define RECORD_MAX (1u << 20)

int backup_job_new_id(char id[BACKUP_JOB_ID_LEN + 1], jb_err *err) {
        unsigned char b[BACKUP_JOB_ID_LEN / 2];

        if (getrandom(b, sizeof b, 0) != (ssize_t) sizeof b)
                return jb_err_set(err, JB_E_INTERNAL, "getrandom: %s", strerror(errno));
        for (size_t i = 0; i < sizeof b; i++)
                snprintf(id + 2 * i, 3, "%02x", b[i]);
        return 0;
}

bool backup_job_id_ok(const char *id) {
        size_t n = 0;

        for (; id[n]; n++)
                if (!((id[n] >= '0' && id[n] <= '9') || (id[n] >= 'a' && id[n] <= 'f')))
                        return false;
        return n == BACKUP_JOB_ID_LEN;
}

/* The jobs directory, made (root only) the first time. */
static int open_jobs(const backup_cfg *c, jb_err *err) {
        if (mkdir(c->jobs_dir, 0700) < 0 && errno != EEXIST)
                return jb_err_set(err, JB_E_INTERNAL, "%s: %s", c->jobs_dir, strerror(errno));
        return jb_fs_open_root(c->jobs_dir, err);
}

int backup_job_write(const backup_cfg *c, json_object *rec, jb_err *err) {
        char name[BACKUP_JOB_ID_LEN + 8];
        const char *text;
        json_object *v;
        int fd, r;

        if (!json_object_object_get_ex(rec, "job_id", &v))
                return jb_err_set(err, JB_E_INTERNAL, "a job record without job_id");
        snprintf(name, sizeof name, "%s.json", json_object_get_string(v));
        json_object_object_add(rec, "updated_at", json_object_new_int64((int64_t) time(NULL)));
        fd = open_jobs(c, err);
        if (fd < 0)
                return -1;
        text = json_object_to_json_string_ext(rec, JSON_C_TO_STRING_PLAIN);
        r = jb_fs_write_atomic(fd, name, text, strlen(text), 0600, 0, 0, err);
        close(fd);
        return r < 0 ? -1 : 0;
}

/* Field `field` (1-based, counted after the command name) of
 * /proc/<pid>/stat; -1 when unreadable. */
static long long stat_field(const char *pid, int field) {
        char path[64], buf[1024], *p;
        long long v = -1;
        ssize_t n;
        int fd;

        snprintf(path, sizeof path, "/proc/%s/stat", pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -1;
        n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0)
                return -1;
        buf[n] = '\0';
        p = strrchr(buf, ')');
        if (!p)
                return -1;
        p++;
        if (field == 3)         /* the state, a letter */
                return p[0] == ' ' && p[1] ? (long long) (unsigned char) p[1] : -1;
        for (int f = 3; f < field && p; f++)
                p = strchr(p + 1, ' ');
        if (!p || sscanf(p, " %lld", &v) != 1)
                return -1;
        return v;
}

/* A zombie counts as gone: it does no more work, and nothing may reap it
 * soon (a runner's parent is whatever adopted it). */
long long backup_pid_start(pid_t pid) {
        char b[16];

        snprintf(b, sizeof b, "%d", (int) pid);
        if (stat_field(b, 3) == 'Z' || stat_field(b, 3) == 'X')
                return -1;
        return stat_field(b, 22);
}

static bool runner_alive(json_object *rec) {
        json_object *pid, *start;

        if (!json_object_object_get_ex(rec, "pid", &pid) || !json_object_object_get_ex(rec, "pid_start", &start))
                return false;
        return backup_pid_start((pid_t) json_object_get_int64(pid)) == json_object_get_int64(start);
}

const char *backup_job_state(json_object *rec) {
        json_object *v;

        return json_object_object_get_ex(rec, "state", &v) ? json_object_get_string(v) : "";
}

bool backup_job_unfinished(json_object *rec) {
        const char *s = backup_job_state(rec);

        return strcmp(s, "queued") == 0 || strcmp(s, "running") == 0;
}

/* What a dead runner left running: restic (or a dump) still in the runner's
 * session, started after the runner. Killed, so no snapshot appears later
 * for a job already reported interrupted, and waited for (a little), so
 * that its lock is stale when restic unlock looks. */
#define SWEEP_MAX 64
#define SWEEP_WAIT_MS 5000

static void sweep_session(json_object *rec) {
        json_object *sid, *start;
        struct dirent *de;
        int fds[SWEEP_MAX];
        pid_t pids[SWEEP_MAX];
        size_t n = 0;
        DIR *d;

        if (!json_object_object_get_ex(rec, "sid", &sid) || !json_object_object_get_ex(rec, "pid_start", &start) ||
            json_object_get_int64(sid) <= 1)
                return;
        d = opendir("/proc");
        if (!d)
                return;
        while ((de = readdir(d)) && n < SWEEP_MAX) {
                pid_t pid;
                int fd;

                if (de->d_name[0] < '1' || de->d_name[0] > '9')
                        continue;
                pid = (pid_t) atoi(de->d_name);
                fd = pidfd_open(pid, 0);
                if (fd < 0 && errno != ENOSYS)
                        continue;
                /* Checked after the pidfd exists: the pid cannot change
                 * hands now. Without pidfd_open (before Linux 5.3;
                 * valgrind), kill() follows the check at once. */
                if (stat_field(de->d_name, 6) == json_object_get_int64(sid) &&
                    stat_field(de->d_name, 22) >= json_object_get_int64(start) &&
                    (fd >= 0 ? pidfd_send_signal(fd, SIGKILL, NULL, 0) : kill(pid, SIGKILL)) == 0) {
                        pids[n] = pid;
                        fds[n++] = fd;
                }
                else if (fd >= 0)
                        close(fd);
        }
        closedir(d);
        /* Dead is not enough: restic unlock takes a zombie's lock for a live
         * one, and the zombie lasts until whoever adopted it reaps it. */
        for (size_t i = 0; i < n; i++) {
                struct pollfd p = { .fd = fds[i], .events = POLLIN };
                const struct timespec tick = { 0, 10 * 1000000L };

                if (fds[i] >= 0)
                        (void) poll(&p, 1, SWEEP_WAIT_MS);
                for (int t = 0; t < SWEEP_WAIT_MS / 10 && kill(pids[i], 0) == 0; t++)
                        (void) nanosleep(&tick, NULL);
                if (fds[i] >= 0)
                        close(fds[i]);
        }
}

/* restic unlock removes the locks of processes that no longer exist on
 * this host: the ones the dead job left, never a live restic's. */
static void unlock_repo(const backup_cfg *c, json_object *rec) {
        json_object *dest;
        BACKUP_DEST_WIPED backup_dest d;

        if (json_object_object_get_ex(rec, "destination", &dest) && backup_dest_from_params(c, dest, &d, NULL) == 0)
                backup_restic_unlock(c, &d, rec);
}

static void mark_interrupted(const backup_cfg *c, json_object *rec) {
        json_object *e = json_object_new_object();

        sweep_session(rec);
        unlock_repo(c, rec);

        json_object_object_add(rec, "state", json_object_new_string("interrupted"));
        json_object_object_add(rec, "finished_at", json_object_new_int64((int64_t) time(NULL)));
        json_object_object_add(e, "code", json_object_new_string(BACKUP_E_INTERRUPTED));
        json_object_object_add(e, "message", json_object_new_string("the process running the job ended before it"));
        json_object_object_add(rec, "error", e);
        (void) backup_job_write(c, rec, NULL);
}

static int parse_record(int fd, const char *name, json_object **ret, jb_err *err) {
        char *text = NULL;
        json_object *rec;

        /* jb_fs_read refuses a file replaced between its stat and its open
         * (CONFLICT); a runner replaces its record every second, so a reader
         * may meet that: each try sees a whole record, or another. */
        for (int tries = 0;; tries++) {
                jb_err e = JB_ERR_INIT;

                if (jb_fs_read(fd, name, RECORD_MAX, &text, NULL, &e) == 0)
                        break;
                if (tries == 8 || strcmp(e.code, jb_code_name(JB_E_CONFLICT)) != 0) {
                        if (err)
                                *err = e;
                        return -1;
                }
        }
        rec = json_tokener_parse(text);
        free(text);
        if (!rec || !json_object_is_type(rec, json_type_object)) {
                json_object_put(rec);
                return jb_err_set(err, JB_E_INTERNAL, "job record %s is not a JSON object", name);
        }
        *ret = rec;
        return 0;
}

/* queued/running without its runner becomes interrupted, on disk too. The
 * runner may have written its last record and exited between the first
 * read and the liveness check: once it is known dead it writes no more, so
 * the record read again is final, and only an unfinished one is changed. */
static int read_record(const backup_cfg *c, int fd, const char *name, json_object **ret, jb_err *err) {
        json_object *rec;

        if (parse_record(fd, name, &rec, err) < 0)
                return -1;
        if (backup_job_unfinished(rec) && !runner_alive(rec)) {
                json_object_put(rec);
                if (parse_record(fd, name, &rec, err) < 0)
                        return -1;
                if (backup_job_unfinished(rec))
                        mark_interrupted(c, rec);
        }
        *ret = rec;
        return 0;
}

int backup_job_read(const backup_cfg *c, const char *id, json_object **ret, jb_err *err) {
        char name[BACKUP_JOB_ID_LEN + 8];
        int fd, r;

        if (!backup_job_id_ok(id))
                return jb_err_set(err, JB_E_INVALID_PARAMS, "job_id: 32 lower-case hex digits");
        snprintf(name, sizeof name, "%s.json", id);
        fd = open_jobs(c, err);
        if (fd < 0)
                return -1;
        r = read_record(c, fd, name, ret, err);
        close(fd);
        return r;
}

int backup_job_get(jb_call *call) {
        jb_err err = JB_ERR_INIT;
        backup_cfg c;
        json_object *rec;

        backup_cfg_from_settings(jb_call_settings(call), &c);
        if (backup_job_read(&c, jb_param_str(call, "job_id", ""), &rec, &err) < 0)
                return jb_call_fail_err(call, &err);
        json_object_object_add(jb_call_result(call), "job", rec);
        return 0;
}

static int by_created(const void *a, const void *b) {
        json_object *x = *(json_object *const *) a, *y = *(json_object *const *) b, *vx = NULL, *vy = NULL;
        int64_t cx, cy;

        json_object_object_get_ex(x, "created_at", &vx);
        json_object_object_get_ex(y, "created_at", &vy);
        cx = json_object_get_int64(vx);
        cy = json_object_get_int64(vy);
        if (cx != cy)
                return cx < cy ? -1 : 1;
        return strcmp(json_object_get_string(json_object_object_get(x, "job_id")),
                      json_object_get_string(json_object_object_get(y, "job_id")));
}

/* Calls fn for the file of each record in jobs_dir (fd: the directory). */
typedef void (*record_fn)(const backup_cfg *c, int fd, const char *name, void *arg);

static int each_record(const backup_cfg *c, record_fn fn, void *arg, jb_err *err) {
        struct dirent *de;
        DIR *d;
        int fd, dfd, e;

        fd = open_jobs(c, err);
        if (fd < 0)
                return -1;
        dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        d = dfd < 0 ? NULL : fdopendir(dfd);
        if (!d) {
                e = errno;
                if (dfd >= 0)
                        close(dfd);
                close(fd);
                return jb_err_set(err, JB_E_INTERNAL, "%s: %s", c->jobs_dir, strerror(e));
        }
        while ((de = readdir(d))) {
                size_t n = strlen(de->d_name);
                char id[BACKUP_JOB_ID_LEN + 1];

                if (n != BACKUP_JOB_ID_LEN + 5 || strcmp(de->d_name + BACKUP_JOB_ID_LEN, ".json") != 0)
                        continue;
                memcpy(id, de->d_name, BACKUP_JOB_ID_LEN);
                id[BACKUP_JOB_ID_LEN] = '\0';
                if (backup_job_id_ok(id))
                        fn(c, fd, de->d_name, arg);
        }
        closedir(d);
        close(fd);
        return 0;
}

/* The record's mtime is when it was last written: a finished job's is its
 * end. Only an old file is read, so a directory of many recent records
 * costs a stat each. An unfinished one is left as it is, even when its
 * runner is dead: marking it interrupted means a restic unlock, which a
 * starting job's request has no time for; the next reader does it. */
static void expire_one(const backup_cfg *c, int fd, const char *name, void *arg) {
        const time_t *before = arg;
        json_object *rec;
        struct stat st;

        (void) c;
        if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode) || st.st_mtime >= *before)
                return;
        if (parse_record(fd, name, &rec, NULL) < 0)
                return;
        if (!backup_job_unfinished(rec))
                (void) unlinkat(fd, name, 0);
        json_object_put(rec);
}

void backup_job_expire(const backup_cfg *c) {
        time_t before = time(NULL) - (time_t) c->job_retention_s;

        (void) each_record(c, expire_one, &before, NULL);
}

typedef struct listing {
        json_object *params;    /* the filters */
        json_object *jobs;
} listing;

static bool matches(json_object *rec, json_object *params) {
        static const char *const keys[] = { "user", "kind", "state" };
        json_object *want, *have;

        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
                if (!json_object_object_get_ex(params, keys[i], &want))
                        continue;
                if (!json_object_object_get_ex(rec, keys[i], &have) || !json_object_is_type(have, json_type_string) ||
                    strcmp(json_object_get_string(have), json_object_get_string(want)) != 0)
                        return false;
        }
        return true;
}

static void list_one(const backup_cfg *c, int fd, const char *name, void *arg) {
        listing *l = arg;
        json_object *rec;

        if (read_record(c, fd, name, &rec, NULL) < 0)
                return;
        if (matches(rec, l->params))
                json_object_array_add(l->jobs, rec);
        else
                json_object_put(rec);
}

int backup_job_list(jb_call *call) {
        jb_err err = JB_ERR_INIT;
        backup_cfg c;
        listing l = { .params = jb_call_params(call), .jobs = json_object_new_array() };
        json_object *res = jb_call_result(call);
        size_t total, limit = (size_t) jb_param_int(call, "limit", 200);

        backup_cfg_from_settings(jb_call_settings(call), &c);
        if (each_record(&c, list_one, &l, &err) < 0) {
                json_object_put(l.jobs);
                return jb_call_fail_err(call, &err);
        }
        json_object_array_sort(l.jobs, by_created);
        total = json_object_array_length(l.jobs);
        if (total > limit)
                json_object_array_del_idx(l.jobs, 0, total - limit);
        json_object_object_add(res, "jobs", l.jobs);
        json_object_object_add(res, "total", json_object_new_int64((int64_t) total));
        json_object_object_add(res, "truncated", json_object_new_boolean(total > limit));
        return 0;
}
