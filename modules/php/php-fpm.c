/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The served versions: their paths, php-fpm -t, the apply lock; the
 * actions php.test, php.reload and php.versions. */

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jabali/lock.h>
#include <jabali/reload.h>
#include <jabali/spawn.h>

#include "php-internal.h"

#define ADD(o, k, v) json_object_object_add((o), (k), (v))
/* Startup problems kept from one php-fpm -t, and candidate versions. */
#define PROBLEMS_MAX 64
#define VERSIONS_MAX 64

json_object *php_strarray(const char *const *v, size_t n) {
        json_object *a = json_object_new_array();

        for (size_t i = 0; i < n; i++)
                json_object_array_add(a, json_object_new_string(v[i]));
        return a;
}

size_t php_n_versions(const php_cfg *c) {
        return c->versions ? json_object_array_length(c->versions) : 1;
}

const char *php_version_at(const php_cfg *c, size_t i) {
        return c->versions ? json_object_get_string(json_object_array_get_idx(c->versions, i)) : "8.2";
}

bool php_version_served(const php_cfg *c, const char *ver) {
        for (size_t i = 0; i < php_n_versions(c); i++)
                if (strcmp(php_version_at(c, i), ver) == 0)
                        return true;
        return false;
}

static int subst_unit(const char *pattern, const char *ver, char *out, size_t size, jb_err *err) {
        size_t n = 0;

        for (const char *p = pattern; *p;) {
                const char *v = strncmp(p, "{version}", 9) == 0 ? ver : NULL;
                size_t l = v ? strlen(v) : 1;

                if (n + l >= size)
                        return jb_err_set(err, JB_E_INVALID_PARAMS, "unit: too long");
                memcpy(out + n, v ? v : p, l);
                n += l;
                p += v ? 9 : 1;
        }
        out[n] = '\0';
        return 0;
}

int php_target_for(const php_cfg *c, const char *ver, php_target *t, jb_err *err) {
        if (!php_version_served(c, ver))
                return jb_err_set(err, JB_E_INVALID_PARAMS, "php_version: %s is not served here", ver);
        snprintf(t->version, sizeof t->version, "%s", ver);
        if (php_subst(c->php_fpm, NULL, ver, t->fpm, sizeof t->fpm, err) < 0 ||
            php_subst(c->fpm_conf, NULL, ver, t->conf, sizeof t->conf, err) < 0 ||
            php_subst(c->pool_dir, NULL, ver, t->pool_dir, sizeof t->pool_dir, err) < 0 ||
            php_subst(c->conf_d, NULL, ver, t->conf_d, sizeof t->conf_d, err) < 0)
                return -1;
        return subst_unit(c->unit, ver, t->unit, sizeof t->unit, err);
}

/* ---- php-fpm -t ---- */

/* A line of PHP's own startup output ("PHP Warning:  PHP Startup: Unable
 * to load dynamic library ...", "PHP:  syntax error, ... in FILE on line
 * 2"), with php-fpm's "[date] NOTICE: PHP message: " taken off; NULL for
 * php-fpm's own lines. */
static const char *problem_of(const char *line) {
        const char *p = line, *m;

        if (*p == '[') {
                p = strchr(p, ']');
                if (!p)
                        return NULL;
                p++;
                while (*p == ' ')
                        p++;
                m = strstr(p, ": ");
                if (!m)
                        return NULL;
                p = m + 2;
        }
        if (strncmp(p, "PHP message: ", 13) == 0)
                p += 13;
        return strncmp(p, "PHP ", 4) == 0 || strncmp(p, "PHP:", 4) == 0 ? p : NULL;
}

static void collect(const char *text, json_object *out) {
        const char *p = text;

        while (p && *p && json_object_array_length(out) < PROBLEMS_MAX) {
                const char *nl = strchr(p, '\n');
                size_t n = nl ? (size_t) (nl - p) : strlen(p);
                char line[512];
                const char *what;

                if (n >= sizeof line)
                        n = sizeof line - 1;
                /* ASCII only: the lines may end up in an answer */
                for (size_t i = 0; i < n; i++)
                        line[i] = p[i] >= 0x20 && p[i] < 0x7f ? p[i] : '?';
                line[n] = '\0';
                what = problem_of(line);
                if (what)
                        json_object_array_add(out, json_object_new_string(what));
                p = nl ? nl + 1 : NULL;
        }
}

int php_fpm_test(jb_call *call, const php_target *t, json_object **problems, jb_err *err) {
        const char *const argv[] = { t->fpm, "-t", "-y", t->conf, NULL };
        char scan[PATH_MAX + 32];
        const char *const env[] = { scan, NULL };
        jb_spawn_opts o = { .argv = argv, .env = env, .timeout_ms = jb_call_remaining_ms(call) };
        jb_spawn_result res;
        int r = 0;

        if (problems)
                *problems = NULL;
        if (o.timeout_ms == 0)
                return jb_err_set(err, JB_E_TIMEOUT, "no time left to test the configuration");
        /* php-fpm reads conf.d from its build's default unless told; the
         * module tests what it manages (the same directory in production). */
        snprintf(scan, sizeof scan, "PHP_INI_SCAN_DIR=%s", t->conf_d);
        if (jb_spawn_run(&o, &res, err) < 0)
                return -1;
        if (!jb_spawn_succeeded(&res)) {
                jb_spawn_result_to_err(&res, err);
                r = jb_err_set(err, res.timed_out ? JB_E_TIMEOUT : JB_E_CONFIG_INVALID, "php-fpm%s -t: %s",
                               t->version, err->msg);
        } else if (problems) {
                *problems = json_object_new_array();
                collect(res.stdout_data, *problems);
                collect(res.stderr_data, *problems);
        }
        jb_spawn_result_free(&res);
        return r;
}

int php_apply_lock(jb_call *call, const php_cfg *c, const php_target *t, jb_err *err) {
        uint64_t ms = jb_call_remaining_ms(call);
        char key[64];

        if (ms == 0)
                return jb_err_set(err, JB_E_TIMEOUT, "no time left to take the apply lock");
        snprintf(key, sizeof key, "php:apply:%s", t->version);
        return jb_lock_acquire(c->lock_dir, key, ms > INT_MAX ? INT_MAX : (int) ms, err);
}

/* ---- php.test, php.reload ---- */

int php_test(jb_call *call) {
        php_cfg c;
        php_target t;
        jb_err err = JB_ERR_INIT;

        php_cfg_from_settings(jb_call_settings(call), &c);
        for (size_t i = 0; i < php_n_versions(&c); i++)
                if (php_target_for(&c, php_version_at(&c, i), &t, &err) < 0 || php_fpm_test(call, &t, NULL, &err) < 0)
                        return jb_call_fail_err(call, &err);
        ADD(jb_call_result(call), "valid", json_object_new_boolean(true));
        return 0;
}

int php_reload(jb_call *call) {
        const char *only = jb_param_str(call, "php_version", NULL);
        json_object *done = json_object_new_array();
        php_cfg c;
        php_target t;
        jb_err err = JB_ERR_INIT;
        size_t n;

        php_cfg_from_settings(jb_call_settings(call), &c);
        n = only ? 1 : php_n_versions(&c);
        ADD(jb_call_result(call), "versions", done);
        /* Every version is tested before any is reloaded: php-fpm dies on a
         * reload with a bad configuration. */
        for (size_t i = 0; i < n; i++)
                if (php_target_for(&c, only ? only : php_version_at(&c, i), &t, &err) < 0 ||
                    (!jb_call_dry_run(call) && php_fpm_test(call, &t, NULL, &err) < 0))
                        return jb_call_fail_err(call, &err);
        jb_call_set_changed(call, true);
        for (size_t i = 0; i < n; i++) {
                if (php_target_for(&c, only ? only : php_version_at(&c, i), &t, &err) < 0)
                        return jb_call_fail_err(call, &err);
                if (!jb_call_dry_run(call) && jb_reload_unit(call, t.unit, JB_RELOAD_NOW | JB_RELOAD_WAIT, &err) < 0)
                        return jb_call_fail_err(call, &err);
                json_object_array_add(done, json_object_new_string(t.version));
        }
        ADD(jb_call_result(call), "reloaded", json_object_new_boolean(!jb_call_dry_run(call)));
        return 0;
}

/* ---- php.versions ---- */

static bool executable(const char *path) {
        struct stat st;

        return stat(path, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111);
}

static bool exists(const char *path) {
        struct stat st;

        return stat(path, &st) == 0;
}

typedef char version_name[8];

static void add_candidate(version_name *v, size_t *n, const char *ver) {
        for (size_t i = 0; i < *n; i++)
                if (strcmp(v[i], ver) == 0)
                        return;
        if (*n < VERSIONS_MAX && strlen(ver) < sizeof v[0])
                snprintf(v[(*n)++], sizeof v[0], "%s", ver);
}

/* Numerically: 8.10 after 8.9. */
static int cmp_version(const void *a, const void *b) {
        const char *x = a, *y = b;
        unsigned long xa = strtoul(x, NULL, 10), ya = strtoul(y, NULL, 10);

        if (xa != ya)
                return xa < ya ? -1 : 1;
        xa = strtoul(strchr(x, '.') + 1, NULL, 10);
        ya = strtoul(strchr(y, '.') + 1, NULL, 10);
        return xa < ya ? -1 : xa > ya;
}

static json_object *version_entry(const php_cfg *c, const char *ver) {
        json_object *o = json_object_new_object();
        char fpm[PATH_MAX], conf[PATH_MAX];
        bool inst = false;

        if (php_subst(c->php_fpm, NULL, ver, fpm, sizeof fpm, NULL) == 0 &&
            php_subst(c->fpm_conf, NULL, ver, conf, sizeof conf, NULL) == 0)
                inst = executable(fpm) && exists(conf);
        ADD(o, "version", json_object_new_string(ver));
        ADD(o, "installed", json_object_new_boolean(inst));
        ADD(o, "served", json_object_new_boolean(php_version_served(c, ver)));
        return o;
}

/* Installed: php-fpm<ver> is an executable file and its main
 * configuration exists (a removed, not purged, package leaves only the
 * latter). The candidates are the MAJOR.MINOR directories of versions_dir
 * (/etc/php) and the served versions. */
int php_versions(jb_call *call) {
        version_name cand[VERSIONS_MAX];
        json_object *list = json_object_new_array();
        struct dirent *de;
        size_t n = 0;
        php_cfg c;
        DIR *d;

        php_cfg_from_settings(jb_call_settings(call), &c);
        d = opendir(c.versions_dir);
        while (d && (de = readdir(d)))
                if (php_version_ok(de->d_name))
                        add_candidate(cand, &n, de->d_name);
        if (d)
                closedir(d);
        for (size_t i = 0; i < php_n_versions(&c); i++)
                add_candidate(cand, &n, php_version_at(&c, i));
        qsort(cand, n, sizeof *cand, cmp_version);
        for (size_t i = 0; i < n; i++)
                json_object_array_add(list, version_entry(&c, cand[i]));
        ADD(jb_call_result(call), "versions", list);
        return 0;
}
