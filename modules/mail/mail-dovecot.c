/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The dovecot backend: Dovecot 2.3 (passwd-file, quota, Sieve) and
 * Postfix 3.7 (virtual domains, mailboxes and aliases), driven through
 * files only.
 *
 *   <users_dir>/users        Dovecot's passdb and userdb (passwd-file)
 *   <maps_dir>/domains       virtual_mailbox_domains = hash:...
 *   <maps_dir>/mailboxes     virtual_mailbox_maps = hash:...
 *   <maps_dir>/aliases       virtual_alias_maps = hash:... (forwarder
 *                            aliases, catch-alls, and the self-maps a
 *                            catch-all needs for every real mailbox)
 *   <mail_root>/<domain>/<local>/               the mailbox's home
 *       sieve/jabali-managed.sieve              forwards + autoresponder
 *       .dovecot.sieve -> sieve/jabali-managed.sieve
 *
 * Why hash: maps and postmap rather than texthash: smtpd and cleanup
 * notice a rebuilt .db before their next connection and restart
 * themselves, so a new mailbox, alias or catch-all is in force for the
 * next message without any reload; texthash: tables are read once per
 * process and would need a postfix reload after every change. Only the
 * domain list needs one (trivial-rewrite does not restart for it), which
 * the master coalesces (jb_reload_unit).
 *
 * Every writer holds one lock for its read-modify-write of the shared
 * files, works on a model of all of them, and writes only the files whose
 * bytes change (atomically, in an order that never accepts mail for a
 * mailbox that cannot log in or store it); a failure puts back what was
 * already written.
 *
 * Dovecot's auth process looks at the passwd-file (stat) at most once per
 * second of its event loop's clock, and re-reads it when mtime (seconds)
 * or size differ from what it read. So a rewrite of the same size within
 * the same second gets its mtime moved on by one second, and a writer of
 * the passwd-file answers only once the wall clock has passed the second
 * of its write: every login after the answer sees the new file. That
 * costs a change of a mailbox up to a second; it is what "a password
 * change takes effect at once" needs (src/auth/db-passwd-file.c,
 * passwd_file_sync, Dovecot 2.3). */

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <jabali/fs.h>
#include <jabali/lock.h>
#include <jabali/reload.h>
#include <jabali/spawn.h>
#include <jabali/stamp.h>

#include "mail-internal.h"

#define ADD(o, k, v) json_object_object_add((o), (k), (v))

#define SCRIPT_NAME "jabali-managed"
#define SCRIPT_DIR "sieve"
#define SCRIPT_FILE SCRIPT_DIR "/" SCRIPT_NAME ".sieve"
#define SCRIPT_BIN SCRIPT_DIR "/" SCRIPT_NAME ".svbin"
#define ACTIVE_LINK ".dovecot.sieve"

enum { F_USERS, F_DOMAINS, F_MAILBOXES, F_ALIASES, F_COUNT };
static const char *const file_names[F_COUNT] = { "users", "domains", "mailboxes", "aliases" };

typedef struct dv_file {
        char *old;              /* bytes on disk, NULL when missing */
        size_t old_len;
        char *text;             /* bytes wanted, NULL: leave as is */
        size_t len;
        bool empty;             /* the text holds no entry */
        bool written;
} dv_file;

typedef struct dv {
        mail_ctx *ctx;
        const mail_cfg *c;
        int users_fd, maps_fd, root_fd, lock;
        gid_t users_gid;
        mail_users users;
        mail_map domains, mailboxes, aliases;
        dv_file f[F_COUNT];
} dv;

/* ---- opening and loading ---- */

static int lock_all(dv *d, jb_err *err) {
        uint64_t ms = jb_call_remaining_ms(d->ctx->call);

        if (ms == 0)
                return jb_err_set(err, JB_E_TIMEOUT, "no time left to take the mail lock");
        d->lock = jb_lock_acquire(d->c->lock_dir, "mail:dovecot", ms > INT_MAX ? INT_MAX : (int) ms, err);
        return d->lock < 0 ? -1 : 0;
}

static int dir_of(const dv *d, int i) {
        return i == F_USERS ? d->users_fd : d->maps_fd;
}

/* Reads one managed file: missing is empty; one without the stamp line
 * is an administrator's and CONFLICT. *body points into f->old. */
static int load_file(dv *d, int i, const char **body, size_t *body_len, jb_err *err) {
        dv_file *f = &d->f[i];
        json_object *meta;
        const char *nl;

        *body = "";
        *body_len = 0;
        if (jb_fs_read(dir_of(d, i), file_names[i], MAIL_FILE_MAX, &f->old, &f->old_len, err) < 0) {
                if (jb_code_from_name(err->code) != JB_E_NOT_FOUND)
                        return -1;
                jb_err_clear(err);
                return 0;
        }
        meta = jb_stamp_parse(MAIL_STAMP, f->old, f->old_len);
        if (!meta)
                return jb_err_set(err, JB_E_CONFLICT, "%s/%s was not written by this module",
                                  i == F_USERS ? d->c->users_dir : d->c->maps_dir, file_names[i]);
        json_object_put(meta);
        nl = memchr(f->old, '\n', f->old_len);
        *body = nl + 1;
        *body_len = f->old_len - (size_t) (nl + 1 - f->old);
        return 0;
}

static int load(dv *d, jb_err *err) {
        const char *body;
        size_t len;

        if (load_file(d, F_USERS, &body, &len, err) < 0 || mail_users_parse(body, len, &d->users, err) < 0)
                return -1;
        if (load_file(d, F_DOMAINS, &body, &len, err) < 0 || mail_map_parse(body, len, &d->domains, err) < 0)
                return -1;
        if (load_file(d, F_MAILBOXES, &body, &len, err) < 0 || mail_map_parse(body, len, &d->mailboxes, err) < 0)
                return -1;
        if (load_file(d, F_ALIASES, &body, &len, err) < 0 || mail_map_parse(body, len, &d->aliases, err) < 0)
                return -1;
        return 0;
}

static int users_gid(dv *d, jb_err *err) {
        struct group g, *res = NULL;
        char buf[4096];

        if (getgrnam_r(d->c->users_group, &g, buf, sizeof buf, &res) != 0 || !res)
                return jb_err_set(err, JB_E_CONFLICT, "users_group: no group named %s", d->c->users_group);
        d->users_gid = res->gr_gid;
        return 0;
}

static void dv_close(dv *d) {
        jb_lock_release(d->lock);
        for (int i = 0; i < F_COUNT; i++) {
                if (i == F_USERS) {
                        /* Password hashes: not left in freed memory. */
                        if (d->f[i].old)
                                explicit_bzero(d->f[i].old, d->f[i].old_len);
                        if (d->f[i].text)
                                explicit_bzero(d->f[i].text, d->f[i].len);
                }
                free(d->f[i].old);
                free(d->f[i].text);
        }
        mail_users_free(&d->users);
        mail_map_free(&d->domains);
        mail_map_free(&d->mailboxes);
        mail_map_free(&d->aliases);
        if (d->users_fd >= 0)
                close(d->users_fd);
        if (d->maps_fd >= 0)
                close(d->maps_fd);
        if (d->root_fd >= 0)
                close(d->root_fd);
}

/* writer: takes the lock; readers see a consistent state anyway, since
 * every file is replaced atomically. */
static int dv_open(dv *d, mail_ctx *ctx, bool writer, jb_err *err) {
        memset(d, 0, sizeof *d);
        d->ctx = ctx;
        d->c = &ctx->cfg;
        d->users_fd = d->maps_fd = d->root_fd = d->lock = -1;
        if ((d->users_fd = jb_fs_open_root(d->c->users_dir, err)) < 0 ||
            (d->maps_fd = jb_fs_open_root(d->c->maps_dir, err)) < 0 ||
            (d->root_fd = jb_fs_open_root(d->c->mail_root, err)) < 0)
                return -1;
        if (writer && (users_gid(d, err) < 0 || lock_all(d, err) < 0))
                return -1;
        return load(d, err);
}

/* ---- rendering and committing ---- */

/* Catch-alls swallow every address of their domain, real mailboxes too,
 * unless each mailbox maps to itself: the self-maps follow the mailboxes
 * and catch-alls, never anything else. */
static int sync_selfmaps(dv *d, jb_err *err) {
        for (size_t i = 0; i < d->aliases.n;) {
                if (strcmp(d->aliases.v[i].key, d->aliases.v[i].value) == 0)
                        mail_map_remove(&d->aliases, d->aliases.v[i].key);
                else
                        i++;
        }
        for (size_t i = 0; i < d->users.n; i++) {
                const char *addr = d->users.v[i].address, *at = strrchr(addr, '@');

                if (at && mail_map_get(&d->aliases, at) && mail_map_set(&d->aliases, addr, addr, err) < 0)
                        return -1;
        }
        return 0;
}

static int render_one(dv *d, int i, jb_err *err) {
        dv_file *f = &d->f[i];
        mail_buf b = { 0 };
        json_object *meta;
        char *body = NULL;
        size_t body_len = 0;
        int r;

        r = i == F_USERS ? mail_users_render(&d->users, d->c->mail_uid, d->c->mail_gid, &b, err) :
            i == F_DOMAINS ? mail_map_render(&d->domains, &b, err) :
            i == F_MAILBOXES ? mail_map_render(&d->mailboxes, &b, err) : mail_map_render(&d->aliases, &b, err);
        if (r < 0 || mail_buf_take(&b, &body, &body_len, err) < 0) {
                mail_buf_free(&b);
                return -1;
        }
        f->empty = body_len == 0;
        meta = json_object_new_object();
        ADD(meta, "file", json_object_new_string(file_names[i]));
        r = jb_stamp_compose(MAIL_STAMP, meta, body, body_len, MAIL_FILE_MAX, &f->text, &f->len, err);
        json_object_put(meta);
        if (i == F_USERS)
                explicit_bzero(body, body_len);
        free(body);
        if (r < 0)
                return -1;
        if (f->old && f->old_len == f->len && memcmp(f->old, f->text, f->len) == 0) {
                free(f->text);
                f->text = NULL;
        }
        return 0;
}

static int postmap(dv *d, const char *name, jb_err *err) {
        char map[PATH_MAX + 8];
        const char *const argv[] = { d->c->postmap, "-c", d->c->postfix_config_dir, map, NULL };
        jb_spawn_opts o = { .argv = argv, .timeout_ms = jb_call_remaining_ms(d->ctx->call) };
        jb_spawn_result res;
        int r = 0;

        if (o.timeout_ms == 0)
                return jb_err_set(err, JB_E_TIMEOUT, "no time left to run postmap");
        snprintf(map, sizeof map, "hash:%s/%s", d->c->maps_dir, name);
        if (jb_spawn_run(&o, &res, err) < 0)
                return -1;
        if (!jb_spawn_succeeded(&res))
                r = jb_spawn_result_to_err(&res, err);
        jb_spawn_result_free(&res);
        return r;
}

/* Dovecot sees a new passwd-file only when mtime (seconds) or size
 * differ from what it read last, and a Postfix daemon restarts for a new
 * .db only when its mtime (seconds) differs from the one it opened: a
 * rewrite within the same second moves mtime on by one. */
static void bump_mtime(int dir_fd, const char *name, const struct stat *before, bool size_counts) {
        struct stat st;

        if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || (size_counts && st.st_size != before->st_size) ||
            st.st_mtim.tv_sec > before->st_mtim.tv_sec)
                return;
        {
                struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_sec = before->st_mtim.tv_sec + 1 } };
                (void) utimensat(dir_fd, name, ts, AT_SYMLINK_NOFOLLOW);
        }
}

static int write_one(dv *d, int i, const char *text, size_t len, jb_err *err) {
        struct stat before = { 0 };
        bool users = i == F_USERS;
        char db[32];
        int r;

        snprintf(db, sizeof db, "%s.db", file_names[i]);
        if (fstatat(dir_of(d, i), users ? file_names[i] : db, &before, AT_SYMLINK_NOFOLLOW) < 0)
                before.st_size = -1;
        r = jb_fs_write_atomic(dir_of(d, i), file_names[i], text, len, users ? 0640 : 0644, 0,
                               users ? d->users_gid : 0, err);
        if (r < 0)
                return -1;
        if (!users && postmap(d, file_names[i], err) < 0)
                return -1;
        if (before.st_size >= 0)
                bump_mtime(dir_of(d, i), users ? file_names[i] : db, &before, users);
        return 0;
}

static void rollback(dv *d) {
        for (int i = F_COUNT - 1; i >= 0; i--) {
                dv_file *f = &d->f[i];
                jb_err e = JB_ERR_INIT;

                if (!f->written)
                        continue;
                if (f->old ? write_one(d, i, f->old, f->old_len, &e) < 0 :
                             jb_fs_unlink(dir_of(d, i), file_names[i], &e) < 0)
                        jb_log(d->ctx->call, LOG_ERR, "could not restore %s: %s", file_names[i], e.msg);
        }
}

/* Returns once CLOCK_REALTIME is in a later second than now (see the top
 * of the file): at most one second. */
static void next_second(void) {
        struct timespec now, until = { 0 };

        if (clock_gettime(CLOCK_REALTIME, &now) < 0)
                return;
        until.tv_sec = now.tv_sec + 1;
        while (clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &until, NULL) == EINTR)
                ;
}

/* Renders every file and writes the ones that change: additions in the
 * order users → domains → mailboxes → aliases (a mailbox can log in and
 * store mail before Postfix accepts mail for it), removals the other way.
 * Returns 1 when something changed (or would: dry run), 0, or -1 after
 * putting back what was written. */
static int commit(dv *d, bool removing, jb_err *err) {
        bool any = false;

        if (sync_selfmaps(d, err) < 0)
                return -1;
        for (int i = 0; i < F_COUNT; i++) {
                if (render_one(d, i, err) < 0)
                        return -1;
                /* A missing file alone is no change: a call that changes
                 * nothing creates nothing. The first real change creates
                 * the whole set, so that Postfix never meets a missing
                 * table (a lookup error defers all mail). */
                any = any || (d->f[i].text && (d->f[i].old || !d->f[i].empty));
        }
        if (!any || d->ctx->dry_run)
                return any ? 1 : 0;
        for (int k = 0; k < F_COUNT; k++) {
                int i = removing ? F_COUNT - 1 - k : k;

                if (!d->f[i].text)
                        continue;
                d->f[i].written = true;
                if (write_one(d, i, d->f[i].text, d->f[i].len, err) < 0) {
                        rollback(d);
                        return -1;
                }
        }
        if (d->f[F_USERS].written)
                next_second();
        /* Postfix's trivial-rewrite keeps its idea of which domains are
         * virtual across table changes (only smtpd and cleanup restart for
         * a changed .db): a changed domain list needs a reload, coalesced
         * by the master. The other tables need none. */
        if (d->f[F_DOMAINS].written && d->c->postfix_unit[0] &&
            jb_reload_unit(d->ctx->call, d->c->postfix_unit, 0, err) < 0)
                return -1;
        return 1;
}

/* Authentication caches: a changed or removed password must not keep
 * working. Dovecot not running has no cache to flush: a warning, not a
 * failure (the files are already in force). */
static void flush_cache(dv *d, const char *address) {
        /* address NULL: every entry (a whole domain went). */
        const char *const argv[] = { d->c->doveadm, "-c", d->c->dovecot_config, "auth", "cache", "flush", address,
                                     NULL };
        jb_spawn_opts o = { .argv = argv, .timeout_ms = jb_call_remaining_ms(d->ctx->call) };
        jb_spawn_result res;
        jb_err e = JB_ERR_INIT;
        bool ok = false;

        if (d->ctx->dry_run || d->f[F_USERS].text == NULL)
                return;
        if (o.timeout_ms > 0 && jb_spawn_run(&o, &res, &e) == 0) {
                ok = jb_spawn_succeeded(&res);
                if (!ok)
                        jb_spawn_result_to_err(&res, &e);
                jb_spawn_result_free(&res);
        }
        if (!ok)
                jb_log(d->ctx->call, LOG_WARNING, "auth cache flush: %s", e.msg[0] ? e.msg : "no time left");
        ADD(d->ctx->result, "cache_flushed", json_object_new_boolean(ok));
}

/* ---- shared checks ---- */

static int need_domain(dv *d, const char *domain, jb_err *err) {
        if (!mail_map_get(&d->domains, domain))
                return jb_err_set(err, JB_E_NOT_FOUND, "%s is not a mail domain here (mail.domain.upsert first)",
                                  domain);
        return 0;
}

static mail_user *need_mailbox(dv *d, const char *address, jb_err *err) {
        mail_user *u = mail_users_find(&d->users, address);

        if (!u)
                jb_err_set(err, JB_E_NOT_FOUND, "no mailbox %s", address);
        return u;
}

static bool in_domain(const char *address, const char *domain) {
        const char *at = strrchr(address, '@');
        return at && strcmp(at + 1, domain) == 0;
}

/* ---- the managed Sieve script ---- */

typedef struct sv {
        char home[MAIL_ADDR_MAX + 2];           /* <domain>/<local> beneath mail_root */
        char script[MAIL_ADDR_MAX + 64];
        char link[MAIL_ADDR_MAX + 64];
        char bin[MAIL_ADDR_MAX + 64];
        char *old;                              /* the script on disk, or NULL */
        size_t old_len;
        json_object *meta;                      /* what it does (owned), {} when none */
        int link_state;                         /* 0 missing, 1 ours, -1 someone else's */
} sv;

static void sv_free(sv *s) {
        free(s->old);
        json_object_put(s->meta);
}

static int link_state(dv *d, sv *s, jb_err *err) {
        char target[PATH_MAX];
        int kind, hfd;
        ssize_t n;

        kind = jb_fs_kind_of(d->root_fd, s->link, err);
        if (kind < 0)
                return -1;
        s->link_state = kind == JB_FS_MISSING ? 0 : -1;
        if (kind != JB_FS_SYMLINK)
                return 0;
        hfd = jb_fs_open(d->root_fd, s->home, O_PATH | O_DIRECTORY, 0, err);
        if (hfd < 0)
                return -1;
        n = readlinkat(hfd, ACTIVE_LINK, target, sizeof target - 1);
        close(hfd);
        if (n < 0)
                return jb_err_set(err, JB_E_INTERNAL, "%s: %s", s->link, strerror(errno));
        target[n] = '\0';
        s->link_state = strcmp(target, SCRIPT_FILE) == 0 ? 1 : -1;
        return 0;
}

static int sv_load(dv *d, const char *address, sv *s, jb_err *err) {
        char local[MAIL_ADDR_MAX];
        const char *domain = mail_addr_split(address, local, sizeof local);

        memset(s, 0, sizeof *s);
        if (!domain)
                return jb_err_set(err, JB_E_INVALID_PARAMS, "not an address");
        snprintf(s->home, sizeof s->home, "%s/%s", domain, local);
        snprintf(s->script, sizeof s->script, "%s/" SCRIPT_FILE, s->home);
        snprintf(s->link, sizeof s->link, "%s/" ACTIVE_LINK, s->home);
        snprintf(s->bin, sizeof s->bin, "%s/" SCRIPT_BIN, s->home);
        if (jb_fs_read(d->root_fd, s->script, MAIL_SCRIPT_MAX * 2, &s->old, &s->old_len, err) < 0) {
                if (jb_code_from_name(err->code) != JB_E_NOT_FOUND)
                        return -1;
                jb_err_clear(err);
        }
        if (s->old) {
                s->meta = jb_stamp_parse(MAIL_STAMP, s->old, s->old_len);
                if (!s->meta)
                        return jb_err_set(err, JB_E_CONFLICT, "%s/%s was not written by this module",
                                          d->c->mail_root, s->script);
        } else
                s->meta = json_object_new_object();
        if (!s->meta)
                return jb_err_set(err, JB_E_INTERNAL, "out of memory");
        return link_state(d, s, err) < 0 ? -1 : 0;
}

static const char *jstr(json_object *o, const char *k) {
        json_object *v;
        return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string) ?
                       json_object_get_string(v) : NULL;
}

/* The script meta → what the script does; addresses: the mailbox and its
 * aliases, so that the autoresponder answers mail sent to any of them. */
static int sv_render(dv *d, const char *address, json_object *meta, char **out, size_t *len, jb_err *err) {
        mail_external ext[MAIL_EXTERNALS_MAX];
        const char *addrs[MAIL_ALIASES_MAX + 1];
        mail_sieve s = { .externals = ext, .addresses = addrs };
        json_object *list = NULL, *vac = NULL, *v;
        mail_buf b = { 0 };
        char *body = NULL;
        size_t body_len = 0;
        int r;

        addrs[s.n_addresses++] = address;
        for (size_t i = 0; i < d->aliases.n && s.n_addresses <= MAIL_ALIASES_MAX; i++)
                if (strcmp(d->aliases.v[i].value, address) == 0 && d->aliases.v[i].key[0] != '@' &&
                    strcmp(d->aliases.v[i].key, address) != 0)
                        addrs[s.n_addresses++] = d->aliases.v[i].key;
        if (json_object_object_get_ex(meta, "externals", &list))
                for (size_t i = 0; i < json_object_array_length(list) && s.n_externals < MAIL_EXTERNALS_MAX; i++) {
                        json_object *e = json_object_array_get_idx(list, i);
                        ext[s.n_externals].target = jstr(e, "target");
                        ext[s.n_externals].keep_copy =
                                json_object_object_get_ex(e, "keep_copy", &v) && json_object_get_boolean(v);
                        if (ext[s.n_externals].target)
                                s.n_externals++;
                }
        if (json_object_object_get_ex(meta, "vacation", &vac)) {
                s.vacation.on = true;
                s.vacation.subject = jstr(vac, "subject");
                s.vacation.body = jstr(vac, "body");
                s.vacation.start = jstr(vac, "start");
                s.vacation.end = jstr(vac, "end");
                s.vacation.interval_days =
                        json_object_object_get_ex(vac, "interval_days", &v) ? json_object_get_int64(v) : 1;
        }
        if (mail_sieve_render(&s, &b, err) < 0 || mail_buf_take(&b, &body, &body_len, err) < 0) {
                mail_buf_free(&b);
                return -1;
        }
        r = jb_stamp_compose(MAIL_STAMP, meta, body, body_len, MAIL_SCRIPT_MAX * 2, out, len, err);
        free(body);
        return r;
}

static bool meta_empty(json_object *meta) {
        return json_object_object_length(meta) == 0;
}

static int make_link(dv *d, sv *s, jb_err *err) {
        static const char tmp[] = ".dovecot.sieve.jabali-tmp";
        int hfd = jb_fs_open(d->root_fd, s->home, O_PATH | O_DIRECTORY, 0, err);
        int r = 0;

        if (hfd < 0)
                return -1;
        (void) unlinkat(hfd, tmp, 0);
        if (symlinkat(SCRIPT_FILE, hfd, tmp) < 0 ||
            fchownat(hfd, tmp, (uid_t) d->c->mail_uid, (gid_t) d->c->mail_gid, AT_SYMLINK_NOFOLLOW) < 0 ||
            renameat(hfd, tmp, hfd, ACTIVE_LINK) < 0) {
                r = jb_err_set(err, JB_E_INTERNAL, "%s: %s", s->link, strerror(errno));
                (void) unlinkat(hfd, tmp, 0);
        }
        close(hfd);
        return r;
}

/* Converges the script of `address` to `meta` ({}: no script). A script
 * the user made active instead of ours is never replaced: CONFLICT. */
static int sv_apply(dv *d, const char *address, sv *s, json_object *meta, jb_err *err) {
        char *text = NULL;
        size_t len = 0;
        bool same;
        int r = -1;

        if (meta_empty(meta)) {
                if (!s->old && s->link_state != 1)
                        return 0;
                if (d->ctx->dry_run)
                        return 1;
                if ((s->link_state == 1 && jb_fs_unlink(d->root_fd, s->link, err) < 0) ||
                    jb_fs_unlink(d->root_fd, s->script, err) < 0 || jb_fs_unlink(d->root_fd, s->bin, err) < 0)
                        return -1;
                return 1;
        }
        if (s->link_state < 0)
                return jb_err_set(err, JB_E_CONFLICT, "%s has an active Sieve script of its own (%s); "
                                                      "it is never replaced", address, ACTIVE_LINK);
        if (sv_render(d, address, meta, &text, &len, err) < 0)
                return -1;
        same = s->old && s->old_len == len && memcmp(s->old, text, len) == 0;
        if (same && s->link_state == 1) {
                r = 0;
                goto out;
        }
        if (d->ctx->dry_run) {
                r = 1;
                goto out;
        }
        if (jb_fs_mkdir_p(d->root_fd, s->home, 0700, (uid_t) d->c->mail_uid, (gid_t) d->c->mail_gid, err) < 0)
                goto out;
        {
                char dir[sizeof s->home + 8];
                snprintf(dir, sizeof dir, "%s/" SCRIPT_DIR, s->home);
                if (jb_fs_mkdir_p(d->root_fd, dir, 0700, (uid_t) d->c->mail_uid, (gid_t) d->c->mail_gid, err) < 0)
                        goto out;
        }
        if (jb_fs_write_atomic(d->root_fd, s->script, text, len, 0600, (uid_t) d->c->mail_uid,
                               (gid_t) d->c->mail_gid, err) < 0)
                goto out;
        if (s->link_state == 0 && make_link(d, s, err) < 0)
                goto out;
        r = 1;
out:
        free(text);
        return r;
}

/* Updates one part ("externals" or "vacation") of the script's meta:
 * value NULL removes it. Takes value. */
static int sv_set_part(dv *d, const char *address, const char *part, json_object *value, jb_err *err) {
        sv s;
        int r;

        if (sv_load(d, address, &s, err) < 0) {
                json_object_put(value);
                sv_free(&s);
                return -1;
        }
        if (value)
                ADD(s.meta, part, value);
        else
                json_object_object_del(s.meta, part);
        r = sv_apply(d, address, &s, s.meta, err);
        sv_free(&s);
        return r;
}

/* ---- domains ---- */

static int domain_upsert(mail_ctx *ctx, const mail_req *r, jb_err *err) {
        dv d;
        int rc = -1;

        if (dv_open(&d, ctx, true, err) == 0 && mail_map_set(&d.domains, r->domain, "OK", err) == 0)
                rc = commit(&d, false, err);
        dv_close(&d);
        return rc;
}

static void drop_aliases_of(dv *d, const char *address) {
        for (size_t i = 0; i < d->aliases.n;) {
                if (strcmp(d->aliases.v[i].value, address) == 0 && d->aliases.v[i].key[0] != '@')
                        mail_map_remove(&d->aliases, d->aliases.v[i].key);
                else
                        i++;
        }
}

static int domain_delete(mail_ctx *ctx, const mail_req *r, jb_err *err) {
        char catchall[MAIL_ADDR_MAX + 2];
        size_t n = 0;
        dv d;
        int rc = -1;

        if (dv_open(&d, ctx, true, err) < 0)
                goto out;
        for (size_t i = 0; i < d.users.n; i++)
                n += in_domain(d.users.v[i].address, r->domain);
        if (n > 0 && !r->purge) {
                jb_err_set(err, JB_E_CONFLICT, "%s still has %zu mailbox%s (purge deletes them and their mail)",
                           r->domain, n, n == 1 ? "" : "es");
                goto out;
        }
        for (size_t i = 0; i < d.users.n;) {
                if (!in_domain(d.users.v[i].address, r->domain)) {
                        i++;
                        continue;
                }
                mail_map_remove(&d.mailboxes, d.users.v[i].address);
                drop_aliases_of(&d, d.users.v[i].address);
                mail_users_remove(&d.users, d.users.v[i].address);
        }
        for (size_t i = 0; i < d.aliases.n;) {
                if (in_domain(d.aliases.v[i].key, r->domain) && d.aliases.v[i].key[0] != '@')
                        mail_map_remove(&d.aliases, d.aliases.v[i].key);
                else
                        i++;
        }
        snprintf(catchall, sizeof catchall, "@%s", r->domain);
        mail_map_remove(&d.aliases, catchall);
        mail_map_remove(&d.domains, r->domain);
        rc = commit(&d, true, err);
        if (rc > 0 && n > 0)
                flush_cache(&d, NULL);
        if (rc >= 0 && r->purge && !ctx->dry_run) {
                int p = jb_fs_remove_tree(d.root_fd, r->domain, err);
                if (p < 0)
                        rc = -1;
                else if (p > 0)
                        rc = 1;
        } else if (rc == 0 && r->purge && ctx->dry_run && jb_fs_kind_of(d.root_fd, r->domain, NULL) == JB_FS_DIR)
                rc = 1;
out:
        dv_close(&d);
        return rc;
}

/* ---- mailboxes ---- */

static int home_of(const mail_cfg *c, const mail_req *r, char *out, size_t size, jb_err *err) {
        if ((size_t) snprintf(out, size, "%s/%s/%s", c->mail_root, r->domain, r->local_part) >= size)
                return jb_err_set(err, JB_E_INVALID_PARAMS, "the mailbox's home path is too long");
        return 0;
}

static int mailbox_create(mail_ctx *ctx, const mail_req *r, jb_err *err) {
        char home[PATH_MAX], rel[MAIL_ADDR_MAX + 2], password[600];
        const char *owner;
        dv d;
        int rc = -1;

        if (home_of(&ctx->cfg, r, home, sizeof home, err) < 0)
                return -1;
        snprintf(rel, sizeof rel, "%s/%s", r->domain, r->local_part);
        snprintf(password, sizeof password, "{%s}%s", mail_scheme_dovecot(r->scheme), r->password_hash);
        if (dv_open(&d, ctx, true, err) < 0 || need_domain(&d, r->domain, err) < 0)
                goto out;
        owner = mail_map_get(&d.aliases, r->address);
        if (owner && strcmp(owner, r->address) != 0) {
                jb_err_set(err, JB_E_CONFLICT, "%s is an alias of %s", r->address, owner);
                goto out;
        }
        if (mail_users_set(&d.users, r->address, password, home, r->quota_mib, err) < 0 ||
            mail_map_set(&d.mailboxes, r->address, "OK", err) < 0)
                goto out;
        rc = commit(&d, false, err);
        if (rc >= 0 && !ctx->dry_run) {
                /* The home, for Dovecot (which runs as the mail owner and
                 * cannot create it beneath a root-owned mail_root). */
                int m = jb_fs_mkdir_p(d.root_fd, rel, 0700, (uid_t) ctx->cfg.mail_uid, (gid_t) ctx->cfg.mail_gid, err);
                if (m < 0)
                        rc = -1;
                else if (m > 0)
                        rc = 1;
        } else if (rc == 0 && ctx->dry_run && jb_fs_kind_of(d.root_fd, rel, NULL) == JB_FS_MISSING)
                rc = 1;
        if (rc > 0)
                flush_cache(&d, r->address);
out:
        explicit_bzero(password, sizeof password);
        dv_close(&d);
        return rc;
}

static int mailbox_passwd(mail_ctx *ctx, const mail_req *r, jb_err *err) {
        char password[600];
        mail_user *u;
        dv d;
        int rc = -1;

        snprintf(password, sizeof password, "{%s}%s", mail_scheme_dovecot(r->scheme), r->password_hash);
        if (dv_open(&d, ctx, true, err) < 0 || !(u = need_mailbox(&d, r->address, err)))
                goto out;
        if (mail_users_set(&d.users, r->address, password, u->home, u->quota_mib, err) < 0)
                goto out;
        rc = commit(&d, false, err);
        if (rc > 0)
                flush_cache(&d, r->address);
out:
        explicit_bzero(password, sizeof password);
        dv_close(&d);
        return rc;
}

static int mailbox_set_quota(mail_ctx *ctx, const mail_req *r, jb_err *err) {
        mail_user *u;
        dv d;
        int rc = -1;

        if (dv_open(&d, ctx, true, err) == 0 && (u = need_mailbox(&d, r->address, err))) {
                u->quota_mib = r->quota_mib;
                rc = commit(&d, false, err);
                if (rc > 0)
                        flush_cache(&d, r->address);
        }
        dv_close(&d);
        return rc;
}

static int mailbox_delete(mail_ctx *ctx, const mail_req *r, jb_err *err) {
        char rel[MAIL_ADDR_MAX + 2];
        dv d;
        int rc = -1;

        snprintf(rel, sizeof rel, "%s/%s", r->domain, r->local_part);
        if (dv_open(&d, ctx, true, err) < 0)
                goto out;
        mail_map_remove(&d.mailboxes, r->address);
        drop_aliases_of(&d, r->address);
        mail_users_remove(&d.users, r->address);
        rc = commit(&d, true, err);
        if (rc > 0)
                flush_cache(&d, r->address);
        if (rc >= 0 && r->purge) {
                if (ctx->dry_run)
                        rc = rc || jb_fs_kind_of(d.root_fd, rel, NULL) == JB_FS_DIR;
                else {
                        int p = jb_fs_remove_tree(d.root_fd, rel, err);
                        rc = p < 0 ? -1 : (rc || p);
                }
        }
out:
        dv_close(&d);
        return rc;
}

static json_object *describe(const mail_user *u) {
        json_object *o = json_object_new_object();
        char local[MAIL_ADDR_MAX];
        const char *domain = mail_addr_split(u->address, local, sizeof local);

        ADD(o, "address", json_object_new_string(u->address));
        ADD(o, "local_part", json_object_new_string(local));
        ADD(o, "domain", json_object_new_string(domain ? domain : ""));
        ADD(o, "quota_mib", json_object_new_int64(u->quota_mib));
        return o;
}

static int mailbox_get(mail_ctx *ctx, const mail_req *r, jb_err *err) {
        const mail_user *u;
        dv d;
        int rc = -1;

        if (dv_open(&d, ctx, false, err) == 0 && (u = need_mailbox(&d, r->address, err))) {
                json_object *o = describe(u), *aliases = json_object_new_array();

                json_object_object_foreach(o, k, v) {
                        ADD(ctx->result, k, json_object_get(v));
                }
                json_object_put(o);
                for (size_t i = 0; i < d.aliases.n; i++)
                        if (strcmp(d.aliases.v[i].value, r->address) == 0 && d.aliases.v[i].key[0] != '@' &&
                            strcmp(d.aliases.v[i].key, r->address) != 0)
                                json_object_array_add(aliases, json_object_new_string(d.aliases.v[i].key));
                ADD(ctx->result, "aliases", aliases);
                rc = 0;
        }
        dv_close(&d);
        return rc;
}

static int mailbox_list(mail_ctx *ctx, const mail_req *r, jb_err *err) {
        json_object *list;
        dv d;
        int rc = -1;

        if (dv_open(&d, ctx, false, err) < 0 || need_domain(&d, r->domain, err) < 0)
                goto out;
        list = json_object_new_array();
        for (size_t i = 0; i < d.users.n; i++)
                if (in_domain(d.users.v[i].address, r->domain))
                        json_object_array_add(list, describe(&d.users.v[i]));
        ADD(ctx->result, "mailboxes", list);
        rc = 0;
out:
        dv_close(&d);
        return rc;
}

/* `doveadm -f tab quota get -u U`: a header line, then
 * "name<TAB>type<TAB>value<TAB>limit<TAB>%" rows; STORAGE is in KiB. */
static int parse_quota(const char *out, int64_t *kib, int64_t *messages) {
        const char *p = out;
        bool found = false;

        *kib = *messages = -1;
        while (*p) {
                const char *nl = strchr(p, '\n'), *t1 = strchr(p, '\t'), *t2;
                size_t l = nl ? (size_t) (nl - p) : strlen(p);

                if (t1 && (size_t) (t1 - p) < l && (t2 = strchr(t1 + 1, '\t')) && (size_t) (t2 - p) < l) {
                        char *end;
                        long long v = strtoll(t2 + 1, &end, 10);

                        if (end != t2 + 1 && *end == '\t' && v >= 0) {
                                if (strncmp(t1 + 1, "STORAGE\t", 8) == 0)
                                        *kib = v, found = true;
                                else if (strncmp(t1 + 1, "MESSAGE\t", 8) == 0)
                                        *messages = v;
                        }
                }
                p += l + (nl ? 1 : 0);
        }
        return found ? 0 : -1;
}

static int mailbox_usage(mail_ctx *ctx, const mail_req *r, jb_err *err) {
        const char *const argv[] = { ctx->cfg.doveadm, "-f", "tab", "-c", ctx->cfg.dovecot_config, "quota", "get",
                                     "-u", r->address, NULL };
        jb_spawn_opts o = { .argv = argv, .timeout_ms = jb_call_remaining_ms(ctx->call) };
        jb_spawn_result res = { 0 };
        const mail_user *u;
        int64_t kib, messages;
        dv d;
        int rc = -1;

        if (dv_open(&d, ctx, false, err) < 0 || !(u = need_mailbox(&d, r->address, err)))
                goto out;
        if (o.timeout_ms == 0) {
                jb_err_set(err, JB_E_TIMEOUT, "no time left to ask doveadm");
                goto out;
        }
        if (jb_spawn_run(&o, &res, err) < 0)
                goto out;
        if (!jb_spawn_succeeded(&res)) {
                jb_spawn_result_to_err(&res, err);
                goto out;
        }
        if (parse_quota(res.stdout_data, &kib, &messages) < 0) {
                jb_err_set(err, JB_E_SERVICE_FAILED, "doveadm quota get: no STORAGE row (is the quota plugin on?)");
                goto out;
        }
        ADD(ctx->result, "used_bytes", json_object_new_int64(kib * 1024));
        if (messages >= 0)
                ADD(ctx->result, "messages", json_object_new_int64(messages));
        ADD(ctx->result, "quota_mib", json_object_new_int64(u->quota_mib));
        rc = 0;
out:
        jb_spawn_result_free(&res);
        dv_close(&d);
        return rc;
}

/* ---- forwarders ---- */

static json_object *externals_json(const mail_req *r) {
        json_object *a = json_object_new_array();

        for (size_t i = 0; i < r->n_externals; i++) {
                json_object *e = json_object_new_object();
                ADD(e, "target", json_object_new_string(r->externals[i].target));
                ADD(e, "keep_copy", json_object_new_boolean(r->externals[i].keep_copy));
                json_object_array_add(a, e);
        }
        return a;
}

static int forwarder_upsert(mail_ctx *ctx, const mail_req *r, jb_err *err) {
        char key[MAIL_ADDR_MAX + 70];
        dv d;
        int rc = -1, rs;

        if (dv_open(&d, ctx, true, err) < 0 || !need_mailbox(&d, r->address, err))
                goto out;
        drop_aliases_of(&d, r->address);
        for (size_t i = 0; i < r->n_aliases; i++) {
                const char *owner;

                snprintf(key, sizeof key, "%s@%s", r->aliases[i], r->domain);
                if (mail_users_find(&d.users, key)) {
                        jb_err_set(err, JB_E_CONFLICT, "aliases[%zu]: %s is a mailbox", i, key);
                        goto out;
                }
                owner = mail_map_get(&d.aliases, key);
                if (owner) {
                        jb_err_set(err, JB_E_CONFLICT, "aliases[%zu]: %s already goes to %s", i, key, owner);
                        goto out;
                }
                if (mail_map_set(&d.aliases, key, r->address, err) < 0)
                        goto out;
        }
        rc = commit(&d, false, err);
        if (rc < 0)
                goto out;
        rs = sv_set_part(&d, r->address, "externals", r->n_externals ? externals_json(r) : NULL, err);
        if (rs < 0) {
                if (rc > 0 && !ctx->dry_run)
                        rollback(&d);
                rc = -1;
        } else
                rc = rc || rs;
out:
        dv_close(&d);
        return rc;
}

static int forwarder_delete(mail_ctx *ctx, const mail_req *r, jb_err *err) {
        dv d;
        int rc = -1, rs;

        if (dv_open(&d, ctx, true, err) < 0)
                goto out;
        drop_aliases_of(&d, r->address);
        rc = commit(&d, true, err);
        if (rc < 0)
                goto out;
        rs = sv_set_part(&d, r->address, "externals", NULL, err);
        if (rs < 0) {
                if (rc > 0 && !ctx->dry_run)
                        rollback(&d);
                rc = -1;
        } else
                rc = rc || rs;
out:
        dv_close(&d);
        return rc;
}

/* ---- autoresponders ---- */

static int autoresponder_upsert(mail_ctx *ctx, const mail_req *r, jb_err *err) {
        const mail_vacation *v = &r->vacation;
        json_object *o;
        dv d;
        int rc = -1;

        if (dv_open(&d, ctx, true, err) < 0 || !need_mailbox(&d, r->address, err))
                goto out;
        o = json_object_new_object();
        ADD(o, "subject", json_object_new_string(v->subject));
        ADD(o, "body", json_object_new_string(v->body));
        if (v->start)
                ADD(o, "start", json_object_new_string(v->start));
        if (v->end)
                ADD(o, "end", json_object_new_string(v->end));
        ADD(o, "interval_days", json_object_new_int64(v->interval_days));
        rc = sv_set_part(&d, r->address, "vacation", o, err);
out:
        dv_close(&d);
        return rc;
}

static int autoresponder_delete(mail_ctx *ctx, const mail_req *r, jb_err *err) {
        dv d;
        int rc = -1;

        if (dv_open(&d, ctx, true, err) == 0)
                rc = sv_set_part(&d, r->address, "vacation", NULL, err);
        dv_close(&d);
        return rc;
}

/* ---- catch-all ---- */

static int catchall_set(mail_ctx *ctx, const mail_req *r, jb_err *err) {
        char key[MAIL_ADDR_MAX + 2];
        dv d;
        int rc = -1;

        snprintf(key, sizeof key, "@%s", r->domain);
        if (dv_open(&d, ctx, true, err) < 0 || need_domain(&d, r->domain, err) < 0)
                goto out;
        if (r->target && in_domain(r->target, r->domain) && !mail_users_find(&d.users, r->target)) {
                /* It would be caught by the catch-all itself: a loop. */
                jb_err_set(err, JB_E_INVALID_PARAMS, "target: %s is not a mailbox of %s", r->target, r->domain);
                goto out;
        }
        if (r->target) {
                if (mail_map_set(&d.aliases, key, r->target, err) < 0)
                        goto out;
        } else
                mail_map_remove(&d.aliases, key);
        rc = commit(&d, r->target == NULL, err);
out:
        dv_close(&d);
        return rc;
}

const mail_backend mail_backend_dovecot = {
        .name = "dovecot",
        .domain_upsert = domain_upsert,
        .domain_delete = domain_delete,
        .mailbox_create = mailbox_create,
        .mailbox_passwd = mailbox_passwd,
        .mailbox_set_quota = mailbox_set_quota,
        .mailbox_delete = mailbox_delete,
        .mailbox_get = mailbox_get,
        .mailbox_list = mailbox_list,
        .mailbox_usage = mailbox_usage,
        .forwarder_upsert = forwarder_upsert,
        .forwarder_delete = forwarder_delete,
        .autoresponder_upsert = autoresponder_upsert,
        .autoresponder_delete = autoresponder_delete,
        .catchall_set = catchall_set,
};
