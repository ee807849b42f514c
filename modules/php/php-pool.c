/* SPDX-License-Identifier: GPL-3.0-or-later */
/* php.pool.*, php.test, php.reload.
 *
 * A pool is converged in the order: check the account against the host →
 * render → compare with what is there → (dry run stops here) → create the
 * pool's temporary directory → write the pool file → php-fpm -t of the
 * whole configuration → put the old file back exactly on failure → ask for
 * a reload. An identical pool changes nothing and reloads nothing. */

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <jabali/fs.h>
#include <jabali/lock.h>
#include <jabali/reload.h>
#include <jabali/spawn.h>
#include <jabali/template.h>
#include <jabali/validate.h>

#include "php-internal.h"

#define ADD(o, k, v) json_object_object_add((o), (k), (v))

/* ---- settings per version ---- */

typedef struct target {
        char version[8];
        char fpm[PATH_MAX];
        char conf[PATH_MAX];
        char pool_dir[PATH_MAX];
        char unit[256];
} target;

static bool version_served(const php_cfg *c, const char *ver) {
        if (!c->versions)
                return strcmp(ver, "8.2") == 0;
        for (size_t i = 0; i < json_object_array_length(c->versions); i++)
                if (strcmp(json_object_get_string(json_object_array_get_idx(c->versions, i)), ver) == 0)
                        return true;
        return false;
}

static int target_for(const php_cfg *c, const char *ver, target *t, jb_err *err) {
        const char *p;
        size_t n = 0;

        if (!version_served(c, ver))
                return jb_err_set(err, JB_E_INVALID_PARAMS, "php_version: %s is not served here", ver);
        snprintf(t->version, sizeof t->version, "%s", ver);
        if (php_subst(c->php_fpm, NULL, ver, t->fpm, sizeof t->fpm, err) < 0 ||
            php_subst(c->fpm_conf, NULL, ver, t->conf, sizeof t->conf, err) < 0 ||
            php_subst(c->pool_dir, NULL, ver, t->pool_dir, sizeof t->pool_dir, err) < 0)
                return -1;
        for (p = c->unit; *p; ) {
                const char *v = strncmp(p, "{version}", 9) == 0 ? ver : NULL;
                size_t l = v ? strlen(v) : 1;

                if (n + l >= sizeof t->unit)
                        return jb_err_set(err, JB_E_INVALID_PARAMS, "unit: too long");
                memcpy(t->unit + n, v ? v : p, l);
                n += l;
                p += v ? 9 : 1;
        }
        t->unit[n] = '\0';
        return 0;
}

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
                return jb_err_set(err, JB_E_INVALID_PARAMS, "user_id: %s has uid %u, not %lld", user,
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

/* ---- templates and the header line ---- */

static int try_read(const char *dir, const char *name, char **ret, size_t *ret_len, jb_err *err) {
        int fd, r;

        fd = jb_fs_open_root(dir, err);
        if (fd < 0) {
                if (jb_code_from_name(err->code) != JB_E_NOT_FOUND)
                        return -1;
                jb_err_clear(err);
                return 0;
        }
        r = jb_fs_read(fd, name, PHP_FILE_MAX, ret, ret_len, err);
        close(fd);
        if (r < 0) {
                if (jb_code_from_name(err->code) != JB_E_NOT_FOUND)
                        return -1;
                jb_err_clear(err);
                return 0;
        }
        return 1;
}

static int template_load(const php_cfg *c, char **ret, size_t *ret_len, jb_err *err) {
        int r;

        if (c->template_override_dir) {
                r = try_read(c->template_override_dir, PHP_POOL_TEMPLATE, ret, ret_len, err);
                if (r != 0)
                        return r < 0 ? -1 : 0;
        }
        r = try_read(c->template_dir, PHP_POOL_TEMPLATE, ret, ret_len, err);
        if (r < 0)
                return -1;
        if (r == 0)
                return jb_err_set(err, JB_E_INTERNAL, "template %s not found in %s", PHP_POOL_TEMPLATE,
                                  c->template_dir);
        return 0;
}

/* The header line + the rendered template. *ret is malloc'ed. */
static int render(const php_cfg *c, json_object *data, json_object *meta, char **ret, size_t *ret_len, jb_err *err) {
        char *tpl = NULL, *body = NULL, *out;
        size_t tpl_len = 0, body_len = 0, hlen = strlen(PHP_HEADER), mlen;
        const char *m;
        int r;

        *ret = NULL;
        if (template_load(c, &tpl, &tpl_len, err) < 0)
                return -1;
        r = jb_template_render(tpl, tpl_len, data, JB_TPL_INI, &body, &body_len, err);
        free(tpl);
        if (r < 0) {
                /* A value php-fpm must not see stays INVALID_PARAMS; anything
                 * else is the template's fault: nothing is applied. */
                if (jb_code_from_name(err->code) != JB_E_INVALID_PARAMS)
                        jb_err_set(err, JB_E_CONFIG_INVALID, "template %s: %s", PHP_POOL_TEMPLATE, err->msg);
                return -1;
        }
        /* JSON escapes every control character: the meta stays one line. */
        m = json_object_to_json_string_ext(meta, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        mlen = strlen(m);
        if (body_len > PHP_FILE_MAX || mlen > PHP_FILE_MAX) {
                free(body);
                return jb_err_set(err, JB_E_INVALID_PARAMS, "the rendered pool is too large");
        }
        out = malloc(hlen + mlen + 1 + body_len + 1);
        if (!out) {
                free(body);
                return jb_err_set(err, JB_E_INTERNAL, "out of memory");
        }
        memcpy(out, PHP_HEADER, hlen);
        memcpy(out + hlen, m, mlen);
        out[hlen + mlen] = '\n';
        memcpy(out + hlen + mlen + 1, body, body_len);
        out[hlen + mlen + 1 + body_len] = '\0';
        free(body);
        *ret = out;
        *ret_len = hlen + mlen + 1 + body_len;
        return 0;
}

/* The parameters recorded in a file the module wrote (new reference), or
 * NULL when the file is not ours. */
static json_object *header_parse(const char *text, size_t len) {
        size_t hlen = strlen(PHP_HEADER);
        const char *nl;
        json_object *o;
        json_tokener *tok;

        if (len < hlen || memcmp(text, PHP_HEADER, hlen) != 0)
                return NULL;
        nl = memchr(text + hlen, '\n', len - hlen);
        if (!nl || nl - text - hlen > INT_MAX)
                return NULL;
        tok = json_tokener_new();
        if (!tok)
                return NULL;
        o = json_tokener_parse_ex(tok, text + hlen, (int) (nl - text - hlen));
        if (o && (json_tokener_get_error(tok) != json_tokener_success || !json_object_is_type(o, json_type_object) ||
                  json_tokener_get_parse_end(tok) != (size_t) (nl - text - hlen))) {
                json_object_put(o);
                o = NULL;
        }
        json_tokener_free(tok);
        return o;
}

/* ---- php-fpm -t ---- */

static int fpm_test(jb_call *call, const target *t, jb_err *err) {
        const char *const argv[] = { t->fpm, "-t", "-y", t->conf, NULL };
        jb_spawn_opts o = { .argv = argv, .timeout_ms = jb_call_remaining_ms(call) };
        jb_spawn_result res;
        int r = 0;

        if (o.timeout_ms == 0)
                return jb_err_set(err, JB_E_TIMEOUT, "no time left to test the configuration");
        if (jb_spawn_run(&o, &res, err) < 0)
                return -1;
        if (!jb_spawn_succeeded(&res)) {
                jb_spawn_result_to_err(&res, err);
                r = jb_err_set(err, res.timed_out ? JB_E_TIMEOUT : JB_E_CONFIG_INVALID, "php-fpm%s -t: %s",
                               t->version, err->msg);
        }
        jb_spawn_result_free(&res);
        return r;
}

static int apply_lock(jb_call *call, const php_cfg *c, const target *t, jb_err *err) {
        uint64_t ms = jb_call_remaining_ms(call);
        char key[64];

        if (ms == 0)
                return jb_err_set(err, JB_E_TIMEOUT, "no time left to take the apply lock");
        snprintf(key, sizeof key, "php:apply:%s", t->version);
        return jb_lock_acquire(c->lock_dir, key, ms > INT_MAX ? INT_MAX : (int) ms, err);
}

/* ---- the desired pool ---- */

typedef struct desired {
        account acct;
        char file[300];                 /* "<user>.conf" */
        char socket[PATH_MAX];
        char tmp[PATH_MAX];
        bool tmp_missing;
        char *text;                     /* the rendered file, owned */
        size_t len;
} desired;

static int64_t param_int(jb_call *call, json_object *meta, const char *name, int64_t def) {
        int64_t v = jb_param_int(call, name, def);
        ADD(meta, name, json_object_new_int64(v));
        return v;
}

static int build(jb_call *call, const php_cfg *c, const target *t, desired *d, jb_err *err) {
        const char *user = jb_param_str(call, "user", NULL);
        const char *pm = jb_param_str(call, "pm", "ondemand");
        json_object *data = NULL, *meta = NULL;
        int64_t children, start, minsp, maxsp;
        char basedir[PATH_MAX * 2 + 4];
        int home_fd, kind, r = -1;

        memset(d, 0, sizeof *d);
        if (lookup_user(c, user, jb_param_int(call, "user_id", -1), &d->acct, err) < 0)
                return -1;
        snprintf(d->file, sizeof d->file, "%s.conf", user);
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

        meta = json_object_new_object();
        data = json_object_new_object();
        if (!meta || !data) {
                jb_err_set(err, JB_E_INTERNAL, "out of memory");
                goto out;
        }
        ADD(meta, "user", json_object_new_string(user));
        ADD(meta, "user_id", json_object_new_int64(d->acct.uid));
        ADD(meta, "php_version", json_object_new_string(t->version));
        ADD(meta, "pm", json_object_new_string(pm));
        children = param_int(call, meta, "max_children", 5);
        start = param_int(call, meta, "start_servers", 1);
        minsp = param_int(call, meta, "min_spare_servers", 1);
        maxsp = param_int(call, meta, "max_spare_servers", 3);
        if (strcmp(pm, "dynamic") == 0 && !(minsp <= start && start <= maxsp && maxsp <= children)) {
                jb_err_set(err, JB_E_INVALID_PARAMS, "dynamic needs min_spare_servers <= start_servers <= "
                                                     "max_spare_servers <= max_children");
                goto out;
        }

        /* The trailing '/' matters: open_basedir is a prefix match, and
         * /home/ab must not open /home/abc. */
        snprintf(basedir, sizeof basedir, "%s/:%s/", d->acct.home, d->tmp);
        ADD(data, "pool", json_object_new_string(user));
        ADD(data, "user", json_object_new_string(user));
        ADD(data, "group", json_object_new_string(d->acct.group));
        ADD(data, "socket", json_object_new_string(d->socket));
        ADD(data, "listen_owner", json_object_new_string(c->listen_owner));
        ADD(data, "listen_group", json_object_new_string(c->listen_group));
        ADD(data, "pm", json_object_new_string(pm));
        ADD(data, "dynamic", json_object_new_boolean(strcmp(pm, "dynamic") == 0));
        ADD(data, "ondemand", json_object_new_boolean(strcmp(pm, "ondemand") == 0));
        ADD(data, "max_children", json_object_new_int64(children));
        ADD(data, "start_servers", json_object_new_int64(start));
        ADD(data, "min_spare_servers", json_object_new_int64(minsp));
        ADD(data, "max_spare_servers", json_object_new_int64(maxsp));
        ADD(data, "process_idle_timeout", json_object_new_int64(param_int(call, meta, "process_idle_timeout", 10)));
        ADD(data, "max_requests", json_object_new_int64(param_int(call, meta, "max_requests", 500)));
        ADD(data, "memory_limit", json_object_new_int64(param_int(call, meta, "memory_limit_mb", 256)));
        ADD(data, "upload_max_filesize", json_object_new_int64(param_int(call, meta, "upload_max_mb", 64)));
        ADD(data, "open_basedir", json_object_new_string(basedir));
        ADD(data, "tmp", json_object_new_string(d->tmp));
        ADD(data, "home", json_object_new_string(d->acct.home));
        r = render(c, data, meta, &d->text, &d->len, err);
out:
        json_object_put(data);
        json_object_put(meta);
        return r;
}

static json_object *strarray(const char *const *v, size_t n) {
        json_object *a = json_object_new_array();
        for (size_t i = 0; i < n; i++)
                json_object_array_add(a, json_object_new_string(v[i]));
        return a;
}

/* What the pool file holds now: 0 and *old (NULL when missing), or -1. A
 * file someone else wrote is CONFLICT: never overwritten nor removed. */
static int read_ours(int dir_fd, const target *t, const char *file, char **old, size_t *old_len, jb_err *err) {
        json_object *hdr;

        *old = NULL;
        *old_len = 0;
        if (jb_fs_read(dir_fd, file, PHP_FILE_MAX, old, old_len, err) < 0) {
                if (jb_code_from_name(err->code) != JB_E_NOT_FOUND)
                        return -1;
                jb_err_clear(err);
                return 0;
        }
        hdr = header_parse(*old, *old_len);
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

static int converge(jb_call *call, bool must_exist) {
        php_cfg c;
        target t;
        desired d = { 0 };
        jb_err err = JB_ERR_INIT;
        char path[PATH_MAX * 2], *old = NULL;
        size_t old_len = 0, nplan = 0;
        const char *plan[4];
        bool same;
        int dir_fd = -1, home_fd = -1, lk = -1, r = -1;

        php_cfg_from_settings(jb_call_settings(call), &c);
        if (target_for(&c, jb_param_str(call, "php_version", ""), &t, &err) < 0 ||
            build(call, &c, &t, &d, &err) < 0)
                goto out;
        dir_fd = jb_fs_open_root(t.pool_dir, &err);
        if (dir_fd < 0 || read_ours(dir_fd, &t, d.file, &old, &old_len, &err) < 0)
                goto out;
        if (must_exist && !old) {
                jb_err_set(&err, JB_E_NOT_FOUND, "no pool for %s (PHP %s)", d.file, t.version);
                goto out;
        }
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
        ADD(jb_call_result(call), "plan", strarray(plan, nplan));
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
        if (same) {
                r = 1;
                goto out;
        }
        lk = apply_lock(call, &c, &t, &err);
        if (lk < 0)
                goto out;
        if (jb_fs_write_atomic(dir_fd, d.file, d.text, d.len, 0644, 0, 0, &err) < 0 || fpm_test(call, &t, &err) < 0) {
                if (restore(dir_fd, d.file, old, old_len) < 0)
                        jb_log(call, LOG_ERR, "could not restore %s", path);
                goto out;
        }
        lk = jb_lock_release(lk);
        if (jb_reload_unit(call, t.unit, 0, &err) < 0)
                goto out;
        r = 1;
out:
        jb_lock_release(lk);
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

int php_pool_create(jb_call *call) {
        return converge(call, false);
}

int php_pool_update(jb_call *call) {
        return converge(call, true);
}

int php_pool_delete(jb_call *call) {
        php_cfg c;
        target t;
        jb_err err = JB_ERR_INIT;
        const char *user = jb_param_str(call, "user", "");
        char file[300], *old = NULL;
        size_t old_len = 0;
        int dir_fd = -1, lk = -1, r = -1;

        php_cfg_from_settings(jb_call_settings(call), &c);
        if (target_for(&c, jb_param_str(call, "php_version", ""), &t, &err) < 0)
                goto out;
        snprintf(file, sizeof file, "%s.conf", user);
        dir_fd = jb_fs_open_root(t.pool_dir, &err);
        if (dir_fd < 0 || read_ours(dir_fd, &t, file, &old, &old_len, &err) < 0)
                goto out;
        ADD(jb_call_result(call), "user", json_object_new_string(user));
        ADD(jb_call_result(call), "php_version", json_object_new_string(t.version));
        if (!old) {
                r = 0;
                goto out;
        }
        {
                const char *plan[] = { "remove pool", "reload php-fpm" };
                ADD(jb_call_result(call), "plan", strarray(plan, 2));
        }
        if (jb_call_dry_run(call)) {
                r = 1;
                goto out;
        }
        lk = apply_lock(call, &c, &t, &err);
        if (lk < 0)
                goto out;
        /* php-fpm refuses a configuration without any pool: the last one
         * cannot go, and comes back. */
        if (jb_fs_unlink(dir_fd, file, &err) < 0 || fpm_test(call, &t, &err) < 0) {
                if (restore(dir_fd, file, old, old_len) < 0)
                        jb_log(call, LOG_ERR, "could not restore %s/%s", t.pool_dir, file);
                goto out;
        }
        lk = jb_lock_release(lk);
        if (jb_reload_unit(call, t.unit, 0, &err) < 0)
                goto out;
        r = 1;
out:
        jb_lock_release(lk);
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
static json_object *describe(const php_cfg *c, const target *t, int dir_fd, const char *user, jb_err *err) {
        char file[300], path[PATH_MAX * 2], sock[PATH_MAX], *text = NULL;
        size_t len = 0;
        json_object *o, *meta;

        snprintf(file, sizeof file, "%s.conf", user);
        if (jb_fs_read(dir_fd, file, PHP_FILE_MAX, &text, &len, err) < 0) {
                if (jb_code_from_name(err->code) == JB_E_NOT_FOUND)
                        jb_err_set(err, JB_E_NOT_FOUND, "no pool for %s (PHP %s)", user, t->version);
                return NULL;
        }
        meta = header_parse(text, len);
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
        target t;
        jb_err err = JB_ERR_INIT;
        json_object *o = NULL;
        int fd = -1;

        php_cfg_from_settings(jb_call_settings(call), &c);
        if (target_for(&c, jb_param_str(call, "php_version", ""), &t, &err) == 0 &&
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

static int list_version(const php_cfg *c, const char *ver, json_object *list, jb_err *err) {
        target t;
        DIR *dir;
        struct dirent *de;
        int fd, dfd;

        if (target_for(c, ver, &t, err) < 0)
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
                size_t n = strlen(de->d_name);
                char user[64];
                json_object *o;

                if (n <= 5 || n - 5 >= sizeof user || strcmp(de->d_name + n - 5, ".conf") != 0)
                        continue;
                memcpy(user, de->d_name, n - 5);
                user[n - 5] = '\0';
                if (!jb_valid_username(user, n - 5, NULL))
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

static size_t n_versions(const php_cfg *c) {
        return c->versions ? json_object_array_length(c->versions) : 1;
}

static const char *version_at(const php_cfg *c, size_t i) {
        return c->versions ? json_object_get_string(json_object_array_get_idx(c->versions, i)) : "8.2";
}

int php_pool_list(jb_call *call) {
        php_cfg c;
        jb_err err = JB_ERR_INIT;
        json_object *list = json_object_new_array();

        php_cfg_from_settings(jb_call_settings(call), &c);
        for (size_t i = 0; i < n_versions(&c); i++)
                if (list_version(&c, version_at(&c, i), list, &err) < 0) {
                        json_object_put(list);
                        return jb_call_fail_err(call, &err);
                }
        ADD(jb_call_result(call), "pools", list);
        return 0;
}

/* ---- the services ---- */

int php_test(jb_call *call) {
        php_cfg c;
        target t;
        jb_err err = JB_ERR_INIT;

        php_cfg_from_settings(jb_call_settings(call), &c);
        for (size_t i = 0; i < n_versions(&c); i++)
                if (target_for(&c, version_at(&c, i), &t, &err) < 0 || fpm_test(call, &t, &err) < 0)
                        return jb_call_fail_err(call, &err);
        ADD(jb_call_result(call), "valid", json_object_new_boolean(true));
        return 0;
}

int php_reload(jb_call *call) {
        php_cfg c;
        target t;
        jb_err err = JB_ERR_INIT;

        php_cfg_from_settings(jb_call_settings(call), &c);
        jb_call_set_changed(call, true);
        if (jb_call_dry_run(call))
                return 0;
        /* Every version is tested before any is reloaded: php-fpm dies on
         * a reload with a bad configuration. */
        for (size_t i = 0; i < n_versions(&c); i++)
                if (target_for(&c, version_at(&c, i), &t, &err) < 0 || fpm_test(call, &t, &err) < 0)
                        return jb_call_fail_err(call, &err);
        for (size_t i = 0; i < n_versions(&c); i++)
                if (target_for(&c, version_at(&c, i), &t, &err) < 0 ||
                    jb_reload_unit(call, t.unit, JB_RELOAD_NOW | JB_RELOAD_WAIT, &err) < 0)
                        return jb_call_fail_err(call, &err);
        ADD(jb_call_result(call), "reloaded", json_object_new_boolean(true));
        return 0;
}
