/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Group commit of vhost changes: the changes that arrive while one `nginx
 * -t` of the whole configuration runs share the next one.
 *
 * Why: that test must pass before a change is answered, and it costs time
 * in proportion to the number of vhosts (about a second at 10,000). One
 * test per change makes a burst of N changes cost N whole tests, each under
 * the apply lock; here a burst costs about N / (changes in flight).
 *
 * How, across worker processes:
 *   1. A worker with a change writes it as one file into the spool
 *      directory, <spool_dir>/<id>.chg (the domain, the new vhost text or
 *      none, the sites-enabled link target or none, the caller's deadline),
 *      then waits for the batch lock.
 *   2. Holding the batch lock, it looks for <id>.res: a leader has applied
 *      its change, and that file says how it went.
 *   3. Otherwise its entry is still in the spool and it becomes the
 *      leader: it claims every entry there (unlinking it: a claim and a
 *      withdrawal cannot both succeed), and under the apply lock writes
 *      them all, runs one whole test, and when nginx refuses, puts every
 *      file back exactly and applies the entries again one at a time, each
 *      with its own test, so that only what nginx refuses is refused. It
 *      writes each other claimed entry's outcome to <id>.res.
 *
 * A worker whose deadline passes while it waits withdraws its entry: if
 * the unlink succeeds nothing of it was applied; if a leader had claimed it
 * the outcome is unknown to the caller. Both answer TIMEOUT, and a
 * converger is called again. An entry whose deadline has passed when a
 * leader finds it is not applied. The spool is runtime state (a tmpfs:
 * deadlines are CLOCK_MONOTONIC, meaningless after a reboot); results
 * nobody collected are removed after an hour. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <jabali/fs.h>
#include <jabali/lock.h>

#include "nginx-internal.h"

/* Entries one leader takes at once: bounds its memory (an entry holds up
 * to NGX_FILE_MAX of vhost) and the length of a one-at-a-time fallback. */
#define BATCH_MAX 64
#define ENTRY_MAX (2 * NGX_FILE_MAX + 8192)
#define STALE_RESULT_S 3600
#define ID_MAX 48

typedef struct entry {
        char id[ID_MAX];
        json_object *obj;               /* owns the strings below */
        const char *domain;
        const char *text;               /* NULL: remove the vhost */
        size_t len;
        const char *target;             /* NULL: remove the link */
        ngx_fileset old;
        bool saved, applied;
        jb_err err;                     /* the outcome: code "" = applied */
} entry;

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

static int open_spool(const ngx_cfg *c, jb_err *err) {
        int fd = jb_fs_open_root(c->spool_dir, err);

        if (fd >= 0 || jb_code_from_name(err->code) != JB_E_NOT_FOUND)
                return fd;
        /* The spool lives on a tmpfs by default: made again after a boot. */
        jb_err_clear(err);
        if (mkdir(c->spool_dir, 0700) < 0 && errno != EEXIST)
                return jb_err_set(err, JB_E_INTERNAL, "%s: %m", c->spool_dir);
        return jb_fs_open_root(c->spool_dir, err);
}

static int batch_lock(jb_call *call, const ngx_cfg *c, jb_err *err) {
        uint64_t ms = jb_call_remaining_ms(call);

        if (ms == 0)
                return jb_err_set(err, JB_E_TIMEOUT, "no time left to wait for the configuration test");
        return jb_lock_acquire(c->lock_dir, "nginx:batch", ms > INT_MAX ? INT_MAX : (int) ms, err);
}

/* ---- the leader ---- */

static int entry_parse(entry *e, const char *id, const char *text) {
        json_object *v;

        e->obj = json_tokener_parse(text);
        if (!e->obj || !json_object_is_type(e->obj, json_type_object) ||
            !json_object_object_get_ex(e->obj, "domain", &v) || !json_object_is_type(v, json_type_string))
                return -1;
        snprintf(e->id, sizeof e->id, "%s", id);
        e->domain = json_object_get_string(v);
        if (json_object_object_get_ex(e->obj, "text", &v) && json_object_is_type(v, json_type_string)) {
                e->text = json_object_get_string(v);
                e->len = (size_t) json_object_get_string_len(v);
        }
        if (json_object_object_get_ex(e->obj, "target", &v) && json_object_is_type(v, json_type_string))
                e->target = json_object_get_string(v);
        return 0;
}

static uint64_t entry_deadline(const entry *e) {
        json_object *v;

        return json_object_object_get_ex(e->obj, "deadline_us", &v) ? (uint64_t) json_object_get_int64(v) : 0;
}

static void entry_free(entry *e) {
        if (e->saved)
                ngx_fileset_free(&e->old);
        json_object_put(e->obj);
        memset(e, 0, sizeof *e);
}

/* Reads and unlinks the entry `name` (the claim). 1: claimed, 0: gone
 * (withdrawn, or not an entry), -1: unreadable, removed. */
static int claim(int spool_fd, const char *name, entry *e) {
        char id[ID_MAX], *text = NULL;
        size_t n = strlen(name);
        int r;

        if (n <= 4 || n - 4 >= sizeof id)
                return 0;
        memcpy(id, name, n - 4);
        id[n - 4] = '\0';
        if (jb_fs_read(spool_fd, name, ENTRY_MAX, &text, NULL, NULL) < 0)
                return 0;
        if (unlinkat(spool_fd, name, 0) < 0) {
                free(text);
                return 0;
        }
        r = entry_parse(e, id, text) < 0 ? -1 : 1;
        free(text);
        if (r < 0)
                entry_free(e);
        return r;
}

static void remove_stale_results(int spool_fd, DIR *dir) {
        struct dirent *de;
        struct stat st;
        time_t now = time(NULL);

        rewinddir(dir);
        while ((de = readdir(dir))) {
                size_t n = strlen(de->d_name);

                if (n > 4 && strcmp(de->d_name + n - 4, ".res") == 0 &&
                    fstatat(spool_fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                    now - st.st_mtime > STALE_RESULT_S)
                        (void) unlinkat(spool_fd, de->d_name, 0);
        }
}

/* Claims up to BATCH_MAX entries; returns how many, own included when it
 * was still there (*own = its index, or -1). */
static size_t claim_all(int spool_fd, const char *own_id, entry *es, int *own) {
        struct dirent *de;
        DIR *dir;
        size_t n = 0;
        int dfd;

        *own = -1;
        dfd = openat(spool_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return 0;
        dir = fdopendir(dfd);
        if (!dir) {
                close(dfd);
                return 0;
        }
        /* Our own first: the caller is waiting for it in any case. */
        {
                char name[ID_MAX + 8];

                snprintf(name, sizeof name, "%s.chg", own_id);
                if (claim(spool_fd, name, &es[0]) == 1)
                        *own = (int) n++;
        }
        while (n < BATCH_MAX && (de = readdir(dir))) {
                size_t l = strlen(de->d_name);

                /* Temporary files of writes in progress start with '.'. */
                if (de->d_name[0] == '.' || l <= 4 || strcmp(de->d_name + l - 4, ".chg") != 0)
                        continue;
                if (claim(spool_fd, de->d_name, &es[n]) == 1)
                        n++;
        }
        remove_stale_results(spool_fd, dir);
        closedir(dir);
        return n;
}

/* Writes one entry's files. On failure what was there is put back. */
static int apply_one(int avail_fd, int enabled_fd, entry *e, jb_err *err) {
        if (e->saved)
                ngx_fileset_free(&e->old);
        e->saved = false;
        if (ngx_fileset_save(avail_fd, enabled_fd, e->domain, &e->old, err) < 0)
                return -1;
        e->saved = true;
        if (e->text) {
                if (jb_fs_write_atomic(avail_fd, e->old.name, e->text, e->len, 0644, 0, 0, err) < 0)
                        goto undo;
        } else if (jb_fs_unlink(avail_fd, e->old.name, err) < 0)
                goto undo;
        if (e->target) {
                if (!ngx_fileset_enabled_ok(&e->old, e->target) && ngx_enable(enabled_fd, e->old.name, e->target, err) < 0)
                        goto undo;
        } else if (jb_fs_unlink(enabled_fd, e->old.name, err) < 0)
                goto undo;
        e->applied = true;
        return 0;
undo:
        (void) ngx_fileset_restore(avail_fd, enabled_fd, &e->old, NULL);
        return -1;
}

static void undo_one(jb_call *call, int avail_fd, int enabled_fd, entry *e) {
        if (!e->applied)
                return;
        if (ngx_fileset_restore(avail_fd, enabled_fd, &e->old, NULL) < 0)
                jb_log(call, LOG_ERR, "could not restore the files of %s", e->domain);
        e->applied = false;
}

/* Everything at once, one test; on a refusal, one at a time. */
static void apply_batch(jb_call *call, const ngx_cfg *c, entry *es, size_t n) {
        jb_err err = JB_ERR_INIT;
        int avail_fd = -1, enabled_fd = -1;
        size_t applied = 0;

        avail_fd = jb_fs_open_root(c->sites_available, &err);
        if (avail_fd >= 0)
                enabled_fd = jb_fs_open_root(c->sites_enabled, &err);
        if (enabled_fd < 0) {
                for (size_t i = 0; i < n; i++)
                        if (!es[i].err.code[0])
                                es[i].err = err;
                goto out;
        }
        for (size_t i = 0; i < n; i++)
                if (!es[i].err.code[0] && apply_one(avail_fd, enabled_fd, &es[i], &es[i].err) == 0)
                        applied++;
        if (applied == 0 || ngx_test_full(call, c, &err) == 0)
                goto out;
        for (size_t i = n; i-- > 0;)
                undo_one(call, avail_fd, enabled_fd, &es[i]);
        if (applied == 1) {
                for (size_t i = 0; i < n; i++)
                        if (!es[i].err.code[0])
                                es[i].err = err;
                goto out;
        }
        jb_log(call, LOG_NOTICE, "nginx refused a batch of %zu changes; testing them one at a time", applied);
        for (size_t i = 0; i < n; i++) {
                if (es[i].err.code[0] || apply_one(avail_fd, enabled_fd, &es[i], &es[i].err) < 0)
                        continue;
                if (ngx_test_full(call, c, &es[i].err) < 0)
                        undo_one(call, avail_fd, enabled_fd, &es[i]);
        }
out:
        if (avail_fd >= 0)
                close(avail_fd);
        if (enabled_fd >= 0)
                close(enabled_fd);
}

static void write_result(jb_call *call, int spool_fd, const entry *e) {
        json_object *o = json_object_new_object();
        char name[ID_MAX + 8];
        const char *s;

        if (!o)
                return;
        json_object_object_add(o, "code", json_object_new_string(e->err.code));
        json_object_object_add(o, "message", json_object_new_string(e->err.msg));
        s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
        snprintf(name, sizeof name, "%s.res", e->id);
        if (jb_fs_write_atomic(spool_fd, name, s, strlen(s), 0600, (uid_t) -1, (gid_t) -1, NULL) < 0)
                jb_log(call, LOG_ERR, "could not write the outcome of the change to %s", e->domain);
        json_object_put(o);
}

static int lead(jb_call *call, const ngx_cfg *c, int spool_fd, const char *own_id, jb_err *err) {
        entry *es = calloc(BATCH_MAX, sizeof *es);
        uint64_t now = now_usec();
        size_t n;
        int own, lk, r;

        if (!es)
                return jb_err_set(err, JB_E_INTERNAL, "out of memory");
        n = claim_all(spool_fd, own_id, es, &own);
        for (size_t i = 0; i < n; i++)
                if (entry_deadline(&es[i]) <= now)
                        jb_err_set(&es[i].err, JB_E_TIMEOUT, "the request's time ran out before it was applied");
        lk = n > 0 ? ngx_apply_lock(call, c, err) : -1;
        if (lk < 0) {
                for (size_t i = 0; i < n; i++)
                        if (!es[i].err.code[0])
                                es[i].err = *err;
        } else {
                apply_batch(call, c, es, n);
                jb_lock_release(lk);
        }
        for (size_t i = 0; i < n; i++)
                if ((int) i != own)
                        write_result(call, spool_fd, &es[i]);
        /* Ours gone without an outcome: a leader that claimed it died
         * before writing one. The others were served all the same. */
        if (own < 0)
                r = jb_err_set(err, JB_E_INTERNAL, "the change left the spool without an outcome (a worker died "
                                                   "while applying it): converge again");
        else if (es[own].err.code[0]) {
                *err = es[own].err;
                r = -1;
        } else
                r = 0;
        for (size_t i = 0; i < n; i++)
                entry_free(&es[i]);
        free(es);
        return r;
}

/* ---- a change ---- */

static int spool_write(jb_call *call, int spool_fd, const char *id, const char *domain, const char *text,
                       size_t len, const char *target, jb_err *err) {
        json_object *o = json_object_new_object();
        char name[ID_MAX + 8];
        const char *s;
        int r;

        if (!o)
                return jb_err_set(err, JB_E_INTERNAL, "out of memory");
        json_object_object_add(o, "domain", json_object_new_string(domain));
        json_object_object_add(o, "deadline_us", json_object_new_int64((int64_t) jb_call_deadline_usec(call)));
        if (text)
                json_object_object_add(o, "text", json_object_new_string_len(text, (int) len));
        if (target)
                json_object_object_add(o, "target", json_object_new_string(target));
        s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
        snprintf(name, sizeof name, "%s.chg", id);
        r = jb_fs_write_atomic(spool_fd, name, s, strlen(s), 0600, (uid_t) -1, (gid_t) -1, err);
        json_object_put(o);
        return r < 0 ? -1 : 0;
}

/* 1: an outcome was read into err (code "" = applied), 0: none yet. */
static int result_read(int spool_fd, const char *id, jb_err *err) {
        char name[ID_MAX + 8], *text = NULL;
        json_object *o, *code, *msg;

        snprintf(name, sizeof name, "%s.res", id);
        if (jb_fs_read(spool_fd, name, 4 * JB_ERR_MSG_MAX, &text, NULL, NULL) < 0)
                return 0;
        (void) unlinkat(spool_fd, name, 0);
        o = json_tokener_parse(text);
        free(text);
        if (!o || !json_object_object_get_ex(o, "code", &code) || !json_object_object_get_ex(o, "message", &msg)) {
                json_object_put(o);
                jb_err_set(err, JB_E_INTERNAL, "an unreadable outcome in the spool");
                return 1;
        }
        jb_err_clear(err);
        if (json_object_get_string(code)[0])
                jb_err_set_code(err, json_object_get_string(code), "%s", json_object_get_string(msg));
        json_object_put(o);
        return 1;
}

int ngx_batch_apply(jb_call *call, const ngx_cfg *c, const char *domain, const char *text, size_t len,
                    const char *target, jb_err *err) {
        char id[ID_MAX], name[ID_MAX + 8];
        uint64_t rnd = 0;
        int spool_fd, lk, r = -1;

        if (len > NGX_FILE_MAX)
                return jb_err_set(err, JB_E_INVALID_PARAMS, "the vhost is too large");
        if (getrandom(&rnd, sizeof rnd, 0) != (ssize_t) sizeof rnd)
                return jb_err_set(err, JB_E_INTERNAL, "getrandom: %m");
        snprintf(id, sizeof id, "%ld-%016" PRIx64, (long) getpid(), rnd);
        spool_fd = open_spool(c, err);
        if (spool_fd < 0)
                return -1;
        if (spool_write(call, spool_fd, id, domain, text, len, target, err) < 0)
                goto out;
        lk = batch_lock(call, c, err);
        if (lk < 0) {
                /* Withdrawn: nothing was applied. Claimed: the outcome is
                 * unknown here. Either way the caller's time is up. */
                snprintf(name, sizeof name, "%s.chg", id);
                if (unlinkat(spool_fd, name, 0) == 0)
                        jb_err_set(err, JB_E_TIMEOUT, "timed out waiting for the configuration test; nothing applied");
                else
                        jb_err_set(err, JB_E_TIMEOUT, "timed out waiting for the configuration test; the change "
                                                      "may have been applied: converge again");
                goto out;
        }
        if (result_read(spool_fd, id, err) == 1)
                r = err->code[0] ? -1 : 0;
        else
                r = lead(call, c, spool_fd, id, err);
        jb_lock_release(lk);
out:
        close(spool_fd);
        return r;
}
