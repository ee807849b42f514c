/* SPDX-License-Identifier: GPL-3.0-or-later */
/* php.pool.write, php.pool.delete, php.pool.get, php.pool.list.
 *
 * A pool is converged in the order: check the request and the account
 * against the host → render → compare with what is there → (dry run stops
 * here) → create the pool's temporary directory → write the pool file →
 * php-fpm -t of the whole configuration → put the old file back exactly on
 * failure → ask for a reload. An identical pool changes nothing and
 * reloads nothing. */

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <jabali/fs.h>
#include <jabali/lock.h>
#include <jabali/reload.h>
#include <jabali/validate.h>

#include "php-internal.h"

#define ADD(o, k, v) json_object_object_add((o), (k), (v))
#define FILE_NAME_MAX 64

/* ---- the account ---- */

typedef struct account {
        uid_t uid;
        gid_t gid;
        char group[64];
        char home[PATH_MAX];
} account;

/* Characters a path may have to go into an unquoted INI value and into
 * open_basedir (whose separator is ':'): no INI operators, no blanks. */
static bool ini_path_ok(const char *p) {
        if (p[0] != '/' || p[1] == '\0' || !jb_valid_rel_path(p + 1, strlen(p + 1), NULL))
                return false;
        for (; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                      strchr("/._-", *p)))
                        return false;
        return true;
}

static int lookup_user(const php_cfg *c, const char *user, int64_t want_uid, account *a, jb_err *err) {
        struct passwd pw, *res = NULL;
        struct group grp, *gr = NULL;
        char buf[4096], gbuf[4096];
        int e;

        e = getpwnam_r(user, &pw, buf, sizeof buf, &res);
        if (e != 0 || !res)
                return jb_err_set(err, JB_E_INVALID_PARAMS, "user: no account named %s", user);
        if (want_uid >= 0 && (int64_t) pw.pw_uid != want_uid)
                return jb_err_set(err, JB_E_CONFLICT, "user_id: %s has uid %u, not %lld", user,
                                  (unsigned) pw.pw_uid, (long long) want_uid);
        if ((int64_t) pw.pw_uid < c->min_uid)
                return jb_err_set(err, JB_E_INVALID_PARAMS, "user: %s is a system account (uid %u < %lld)", user,
                                  (unsigned) pw.pw_uid, (long long) c->min_uid);
        if (!ini_path_ok(pw.pw_dir) || strlen(pw.pw_dir) >= sizeof a->home - 300)
                return jb_err_set(err, JB_E_CONFLICT, "user: %s has an unusable home directory", user);
        a->uid = pw.pw_uid;
        a->gid = pw.pw_gid;
        snprintf(a->home, sizeof a->home, "%s", pw.pw_dir);
        /* The pool's group: the account's primary group, by name. */
        if (getgrgid_r(pw.pw_gid, &grp, gbuf, sizeof gbuf, &gr) != 0)
                gr = NULL;
        if (!gr || !jb_valid_username(gr->gr_name, strlen(gr->gr_name), NULL) ||
            strlen(gr->gr_name) >= sizeof a->group)
                return jb_err_set(err, JB_E_CONFLICT, "user: %s has no usable primary group", user);
        snprintf(a->group, sizeof a->group, "%s", gr->gr_name);
        return 0;
}

static void pool_file(const char *user, char out[static FILE_NAME_MAX]) {
        snprintf(out, FILE_NAME_MAX, PHP_POOL_PREFIX "%s.conf", user);
}

/* ---- the desired pool ---- */

typedef struct desired {
        account acct;
        char file[FILE_NAME_MAX];
        char socket[PATH_MAX];
        char tmp[PATH_MAX];
        bool tmp_missing;
        char *text;                     /* the rendered file, owned */
        size_t len;
} desired;

/* The request, checked against what the schema could not say, then the
 * account and its home: everything that can refuse the request does so
 * here, before anything is written. */
static int build(jb_call *call, const php_cfg *c, const php_target *t, desired *d, jb_err *err) {
        const char *user = jb_param_str(call, "user", NULL);
        json_object *vals = NULL;
        php_pool p = {
                .user = user,
                .php_version = t->version,
                .listen_owner = c->listen_owner,
                .listen_group = c->listen_group,
                .pm = jb_param_str(call, "pm", "ondemand"),
                .max_children = jb_param_int(call, "max_children", 5),
                .start_servers = jb_param_int(call, "start_servers", 1),
                .min_spare = jb_param_int(call, "min_spare", 1),
                .max_spare = jb_param_int(call, "max_spare", 3),
                .process_idle_timeout = jb_param_int(call, "process_idle_timeout", 10),
                .max_requests = jb_param_int(call, "max_requests", 500),
                .request_terminate_timeout = jb_param_int(call, "request_terminate_timeout", 300),
                .memory_limit = jb_param_str(call, "memory_limit", "256M"),
                .upload_max_filesize = jb_param_str(call, "upload_max_filesize", "64M"),
        };
        int home_fd, kind;

        memset(d, 0, sizeof *d);
        if (json_object_object_get_ex(jb_call_params(call), "php_admin_values", &vals))
                p.admin_values = vals;
        if (php_pool_validate(&p, c->admin_allowed, err) < 0)
                return -1;
        if (lookup_user(c, user, jb_param_int(call, "user_id", -1), &d->acct, err) < 0)
                return -1;
        pool_file(user, d->file);
        if (php_subst(c->socket_pattern, user, t->version, d->socket, sizeof d->socket, err) < 0)
                return -1;
        if (!ini_path_ok(d->socket))
                return jb_err_set(err, JB_E_INVALID_PARAMS, "php_socket_pattern gives an unusable path %s", d->socket);
        if (snprintf(d->tmp, sizeof d->tmp, "%s/%s", d->acct.home, c->tmp_dir) >= (int) sizeof d->tmp ||
            !ini_path_ok(d->tmp))
                return jb_err_set(err, JB_E_CONFLICT, "the pool's temporary directory %s is unusable", d->tmp);

        /* The temporary directory, seen beneath the home: a symlink there
         * (the account's own doing) is refused, never followed. */
        home_fd = jb_fs_open_root(d->acct.home, err);
        if (home_fd < 0)
                return -1;
        kind = jb_fs_kind_of(home_fd, c->tmp_dir, err);
        close(home_fd);
        if (kind < 0)
                return -1;
        if (kind == JB_FS_SYMLINK)
                return jb_err_set(err, JB_E_INVALID_PARAMS, "%s is a symlink", d->tmp);
        if (kind != JB_FS_DIR && kind != JB_FS_MISSING)
                return jb_err_set(err, JB_E_CONFLICT, "%s is not a directory", d->tmp);
        d->tmp_missing = kind == JB_FS_MISSING;

        p.uid = d->acct.uid;
        p.group = d->acct.group;
        p.socket = d->socket;
        p.home = d->acct.home;
        p.tmp = d->tmp;
        return php_pool_render(c, &p, &d->text, &d->len, err);
}

/* What the pool file holds now: 0 and *old (NULL when missing), or -1. A
 * file someone else wrote is CONFLICT: never overwritten nor removed. */
static int read_ours(int dir_fd, const php_target *t, const char *file, char **old, size_t *old_len, jb_err *err) {
        json_object *hdr;

        *old = NULL;
        *old_len = 0;
        if (jb_fs_read(dir_fd, file, PHP_FILE_MAX, old, old_len, err) < 0) {
                if (jb_code_from_name(err->code) != JB_E_NOT_FOUND)
                        return -1;
                jb_err_clear(err);
                return 0;
        }
        hdr = php_header_parse(*old, *old_len);
        if (!hdr) {
                free(*old);
                *old = NULL;
                return jb_err_set(err, JB_E_CONFLICT, "%s/%s was not written by this module", t->pool_dir, file);
        }
        json_object_put(hdr);
        return 0;
}

/* Puts back exactly what was there: the old bytes, or no file. */
static int restore(int dir_fd, const char *file, const char *old, size_t old_len) {
        if (old)
                return jb_fs_write_atomic(dir_fd, file, old, old_len, 0644, 0, 0, NULL);
        return jb_fs_unlink(dir_fd, file, NULL);
}

/* Write (or remove, text NULL), test, restore on failure; under the
 * version's apply lock. Then a coalesced reload. */
static int apply(jb_call *call, const php_cfg *c, const php_target *t, int dir_fd, const char *file,
                 const char *text, size_t len, const char *old, size_t old_len, jb_err *err) {
        int lk, r;

        lk = php_apply_lock(call, c, t, err);
        if (lk < 0)
                return -1;
        r = text ? jb_fs_write_atomic(dir_fd, file, text, len, 0644, 0, 0, err) : jb_fs_unlink(dir_fd, file, err);
        if (r >= 0)
                r = php_fpm_test(call, t, NULL, err);
        if (r < 0 && restore(dir_fd, file, old, old_len) < 0)
                jb_log(call, LOG_ERR, "could not restore %s/%s", t->pool_dir, file);
        jb_lock_release(lk);
        if (r < 0)
                return -1;
        return jb_reload_unit(call, t->unit, 0, err);
}

int php_pool_write(jb_call *call) {
        php_cfg c;
        php_target t;
        desired d = { 0 };
        jb_err err = JB_ERR_INIT;
        char path[PATH_MAX + FILE_NAME_MAX], *old = NULL;
        size_t old_len = 0, nplan = 0;
        const char *plan[4];
        bool same;
        int dir_fd = -1, home_fd = -1, r = -1;

        php_cfg_from_settings(jb_call_settings(call), &c);
        if (php_target_for(&c, jb_param_str(call, "php_version", ""), &t, &err) < 0 ||
            build(call, &c, &t, &d, &err) < 0)
                goto out;
        dir_fd = jb_fs_open_root(t.pool_dir, &err);
        if (dir_fd < 0 || read_ours(dir_fd, &t, d.file, &old, &old_len, &err) < 0)
                goto out;
        snprintf(path, sizeof path, "%s/%s", t.pool_dir, d.file);
        same = old && old_len == d.len && memcmp(old, d.text, d.len) == 0;
        if (d.tmp_missing)
                plan[nplan++] = "create temporary directory";
        if (!same) {
                plan[nplan++] = old ? "rewrite pool" : "write pool";
                plan[nplan++] = "reload php-fpm";
        }
        ADD(jb_call_result(call), "user", json_object_new_string(jb_param_str(call, "user", "")));
        ADD(jb_call_result(call), "php_version", json_object_new_string(t.version));
        ADD(jb_call_result(call), "config_path", json_object_new_string(path));
        ADD(jb_call_result(call), "socket", json_object_new_string(d.socket));
        ADD(jb_call_result(call), "plan", php_strarray(plan, nplan));
        if (nplan == 0) {
                r = 0;
                goto out;
        }
        if (jb_call_dry_run(call)) {
                if (!same)
                        ADD(jb_call_result(call), "config", json_object_new_string_len(d.text, (int) d.len));
                r = 1;
                goto out;
        }
        if (d.tmp_missing) {
                home_fd = jb_fs_open_root(d.acct.home, &err);
                if (home_fd < 0 || jb_fs_mkdir_p(home_fd, c.tmp_dir, 0700, d.acct.uid, d.acct.gid, &err) < 0)
                        goto out;
        }
        if (!same && apply(call, &c, &t, dir_fd, d.file, d.text, d.len, old, old_len, &err) < 0)
                goto out;
        r = 1;
out:
        if (home_fd >= 0)
                close(home_fd);
        if (dir_fd >= 0)
                close(dir_fd);
        free(old);
        free(d.text);
        if (r < 0)
                return jb_call_fail_err(call, &err);
        jb_call_set_changed(call, r > 0);
        return 0;
}

int php_pool_delete(jb_call *call) {
        php_cfg c;
        php_target t;
        jb_err err = JB_ERR_INIT;
        const char *user = jb_param_str(call, "user", "");
        char file[FILE_NAME_MAX], *old = NULL;
        size_t old_len = 0;
        int dir_fd = -1, r = -1;

        php_cfg_from_settings(jb_call_settings(call), &c);
        if (php_target_for(&c, jb_param_str(call, "php_version", ""), &t, &err) < 0)
                goto out;
        pool_file(user, file);
        dir_fd = jb_fs_open_root(t.pool_dir, &err);
        if (dir_fd < 0 || read_ours(dir_fd, &t, file, &old, &old_len, &err) < 0)
                goto out;
        ADD(jb_call_result(call), "user", json_object_new_string(user));
        ADD(jb_call_result(call), "php_version", json_object_new_string(t.version));
        if (!old) {
                ADD(jb_call_result(call), "plan", json_object_new_array());
                r = 0;
                goto out;
        }
        {
                const char *plan[] = { "remove pool", "reload php-fpm" };
                ADD(jb_call_result(call), "plan", php_strarray(plan, 2));
        }
        /* php-fpm refuses a configuration without any pool: the last one
         * cannot go, and comes back (CONFIG_INVALID). */
        if (!jb_call_dry_run(call) && apply(call, &c, &t, dir_fd, file, NULL, 0, old, old_len, &err) < 0)
                goto out;
        r = 1;
out:
        if (dir_fd >= 0)
                close(dir_fd);
        free(old);
        if (r < 0)
                return jb_call_fail_err(call, &err);
        jb_call_set_changed(call, r > 0);
        return 0;
}

/* ---- get / list ---- */

/* One pool's description, or NULL (NOT_FOUND, CONFLICT for a foreign file). */
static json_object *describe(const php_cfg *c, const php_target *t, int dir_fd, const char *user, jb_err *err) {
        char file[FILE_NAME_MAX], path[PATH_MAX + FILE_NAME_MAX], sock[PATH_MAX], *text = NULL;
        size_t len = 0;
        json_object *o, *meta;

        pool_file(user, file);
        if (jb_fs_read(dir_fd, file, PHP_FILE_MAX, &text, &len, err) < 0) {
                if (jb_code_from_name(err->code) == JB_E_NOT_FOUND)
                        jb_err_set(err, JB_E_NOT_FOUND, "no pool for %s (PHP %s)", user, t->version);
                return NULL;
        }
        meta = php_header_parse(text, len);
        free(text);
        if (!meta) {
                jb_err_set(err, JB_E_CONFLICT, "%s/%s was not written by this module", t->pool_dir, file);
                return NULL;
        }
        snprintf(path, sizeof path, "%s/%s", t->pool_dir, file);
        o = json_object_new_object();
        ADD(o, "user", json_object_new_string(user));
        ADD(o, "php_version", json_object_new_string(t->version));
        ADD(o, "config_path", json_object_new_string(path));
        if (php_subst(c->socket_pattern, user, t->version, sock, sizeof sock, NULL) == 0)
                ADD(o, "socket", json_object_new_string(sock));
        ADD(o, "params", meta);
        return o;
}

int php_pool_get(jb_call *call) {
        php_cfg c;
        php_target t;
        jb_err err = JB_ERR_INIT;
        json_object *o = NULL;
        int fd = -1;

        php_cfg_from_settings(jb_call_settings(call), &c);
        if (php_target_for(&c, jb_param_str(call, "php_version", ""), &t, &err) == 0 &&
            (fd = jb_fs_open_root(t.pool_dir, &err)) >= 0)
                o = describe(&c, &t, fd, jb_param_str(call, "user", ""), &err);
        if (fd >= 0)
                close(fd);
        if (!o)
                return jb_call_fail_err(call, &err);
        json_object_object_foreach(o, key, val) {
                ADD(jb_call_result(call), key, json_object_get(val));
        }
        json_object_put(o);
        return 0;
}

/* "jabali-<user>.conf" → user, or false. */
static bool user_of(const char *name, char out[static 64]) {
        size_t n = strlen(name), p = strlen(PHP_POOL_PREFIX);

        if (n <= p + 5 || n - p - 5 >= 64 || strncmp(name, PHP_POOL_PREFIX, p) != 0 ||
            strcmp(name + n - 5, ".conf") != 0)
                return false;
        memcpy(out, name + p, n - p - 5);
        out[n - p - 5] = '\0';
        return jb_valid_username(out, n - p - 5, NULL);
}

static int list_version(const php_cfg *c, const char *ver, json_object *list, jb_err *err) {
        php_target t;
        DIR *dir;
        struct dirent *de;
        int fd, dfd;

        if (php_target_for(c, ver, &t, err) < 0)
                return -1;
        fd = jb_fs_open_root(t.pool_dir, err);
        if (fd < 0)
                return -1;
        dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || !(dir = fdopendir(dfd))) {
                if (dfd >= 0)
                        close(dfd);
                close(fd);
                return jb_err_set(err, JB_E_INTERNAL, "%s: %m", t.pool_dir);
        }
        while ((de = readdir(dir))) {
                char user[64];
                json_object *o;

                if (!user_of(de->d_name, user))
                        continue;
                o = describe(c, &t, fd, user, err);
                jb_err_clear(err);      /* files that are not ours are skipped */
                if (o)
                        json_object_array_add(list, o);
        }
        closedir(dir);
        close(fd);
        return 0;
}

int php_pool_list(jb_call *call) {
        php_cfg c;
        jb_err err = JB_ERR_INIT;
        json_object *list = json_object_new_array();

        php_cfg_from_settings(jb_call_settings(call), &c);
        for (size_t i = 0; i < php_n_versions(&c); i++)
                if (list_version(&c, php_version_at(&c, i), list, &err) < 0) {
                        json_object_put(list);
                        return jb_call_fail_err(call, &err);
                }
        ADD(jb_call_result(call), "pools", list);
        return 0;
}
