/* SPDX-License-Identifier: GPL-3.0-or-later */
/* php.ext.enable, php.ext.disable: what Debian's phpenmod / phpdismod do
 * for the fpm SAPI of one version, as file operations.
 *
 * An extension is mods-available/<ext>.ini. It is enabled for fpm by the
 * symlink conf.d/<priority>-<ext>.ini → <mods-available>/<ext>.ini, the
 * priority taken from the ini's "; priority=NN" line (20 without one).
 * Beside the link, php-common keeps a record of who decided:
 * <state>/{enabled,disabled}_by_{admin,maint}/<ext>. Package maintainer
 * scripts (phpenmod -m) do not re-enable what an administrator disabled,
 * so these actions record the admin's decision the way phpenmod does.
 * A link that is there but is not the one phpenmod makes (another
 * target, or a regular file) was made by hand: CONFLICT, untouched.
 *
 * php-fpm -t runs with the change in place, before and after it: a
 * refusal, or a startup problem that was not there before (an extension
 * that does not load, an ini syntax error), undoes it exactly and answers
 * CONFIG_INVALID. php-fpm -t alone would pass both. */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <jabali/fs.h>
#include <jabali/lock.h>
#include <jabali/reload.h>

#include "php-internal.h"

#define ADD(o, k, v) json_object_object_add((o), (k), (v))
#define INI_MAX (64u * 1024u)
#define NAME_MAX_EXT 64

typedef enum { REC_ENABLED_ADMIN, REC_ENABLED_MAINT, REC_DISABLED_ADMIN, REC_DISABLED_MAINT, REC_N } record;

static const char *const record_dirs[REC_N] = {
        "enabled_by_admin", "enabled_by_maint", "disabled_by_admin", "disabled_by_maint",
};

typedef struct ext {
        const char *name;
        char mods[PATH_MAX];            /* mods-available */
        char state[PATH_MAX];           /* "" when no records are kept */
        char link[NAME_MAX_EXT + 16];   /* "20-calendar.ini" */
        char target[PATH_MAX + NAME_MAX_EXT + 8];
        int link_kind;
        char link_now[PATH_MAX + NAME_MAX_EXT + 8];     /* what a symlink there points at */
        bool rec[REC_N];                /* which records exist */
} ext;

/* The first "; priority=NN" line, as phpenmod's sed reads it (the digits
 * verbatim, so "05" stays "05"); 20 without one. */
static void priority_of(const char *ini, char out[static 12]) {
        const char *p = ini;

        snprintf(out, 12, "20");
        while (p && *p) {
                const char *q = p, *d;
                size_t n;

                if (*q == ';') {
                        for (q++; *q == ' ' || *q == '\t'; q++)
                                ;
                        if (strncmp(q, "priority", 8) == 0) {
                                for (q += 8; *q == ' ' || *q == '\t'; q++)
                                        ;
                                if (*q == '=') {
                                        for (q++; *q == ' ' || *q == '\t'; q++)
                                                ;
                                        for (d = q, n = 0; *q >= '0' && *q <= '9'; q++, n++)
                                                ;
                                        while (*q == ' ' || *q == '\t' || *q == '\r')
                                                q++;
                                        if (n > 0 && n < 10 && (*q == '\n' || *q == '\0')) {
                                                snprintf(out, 12, "%.*s", (int) n, d);
                                                return;
                                        }
                                }
                        }
                }
                p = strchr(p, '\n');
                if (p)
                        p++;
        }
}

/* Everything the change depends on, read from the host. */
static int inspect(const php_cfg *c, const php_target *t, const char *name, int conf_fd, ext *e, jb_err *err) {
        char file[NAME_MAX_EXT + 8], prio[12], *ini = NULL;
        int fd, r;

        memset(e, 0, sizeof *e);
        e->name = name;
        if (php_subst(c->mods_available, NULL, t->version, e->mods, sizeof e->mods, err) < 0)
                return -1;
        if (c->mods_state_dir && php_subst(c->mods_state_dir, NULL, t->version, e->state, sizeof e->state, err) < 0)
                return -1;
        snprintf(file, sizeof file, "%s.ini", name);
        fd = jb_fs_open_root(e->mods, err);
        if (fd < 0)
                return -1;
        r = jb_fs_read(fd, file, INI_MAX, &ini, NULL, err);
        close(fd);
        if (r < 0) {
                if (jb_code_from_name(err->code) == JB_E_NOT_FOUND)
                        jb_err_set(err, JB_E_NOT_FOUND, "ext: no %s in %s", file, e->mods);
                return -1;
        }
        priority_of(ini, prio);
        free(ini);
        snprintf(e->link, sizeof e->link, "%s-%s.ini", prio, name);
        snprintf(e->target, sizeof e->target, "%s/%s", e->mods, file);

        e->link_kind = jb_fs_kind_of(conf_fd, e->link, err);
        if (e->link_kind < 0)
                return -1;
        if (e->link_kind == JB_FS_SYMLINK) {
                /* one checked name: readlinkat reads the link, never follows it */
                ssize_t n = readlinkat(conf_fd, e->link, e->link_now, sizeof e->link_now - 1);

                if (n < 0)
                        return jb_err_set(err, JB_E_INTERNAL, "conf.d/%s: %m", e->link);
                e->link_now[n] = '\0';
        }
        if (e->link_kind != JB_FS_MISSING &&
            (e->link_kind != JB_FS_SYMLINK || strcmp(e->link_now, e->target) != 0))
                return jb_err_set(err, JB_E_CONFLICT, "%s/%s was changed by hand (not a link to %s): left alone",
                                  t->conf_d, e->link, e->target);

        if (!e->state[0])
                return 0;
        fd = jb_fs_open_root(e->state, err);
        if (fd < 0) {
                /* no records yet: the first one makes the directory */
                if (jb_code_from_name(err->code) != JB_E_NOT_FOUND)
                        return -1;
                jb_err_clear(err);
                return 0;
        }
        for (int i = 0; i < REC_N; i++) {
                char rel[NAME_MAX_EXT + 32];
                int k;

                snprintf(rel, sizeof rel, "%s/%s", record_dirs[i], name);
                k = jb_fs_kind_of(fd, rel, err);
                if (k < 0) {
                        close(fd);
                        return -1;
                }
                e->rec[i] = k != JB_FS_MISSING;
        }
        close(fd);
        return 0;
}

/* The records as phpenmod / phpdismod leave them: the admin's decision,
 * nothing else. 1 when something changed. */
static int set_records(const ext *e, bool enable, jb_err *err) {
        record want = enable ? REC_ENABLED_ADMIN : REC_DISABLED_ADMIN;
        char base[PATH_MAX];
        const char *leaf;
        int fd, r = 0;

        /* mkdir -p of the state directory: its parent is php-common's */
        snprintf(base, sizeof base, "%s", e->state);
        leaf = strrchr(base, '/');
        if (!leaf || leaf == base)
                return jb_err_set(err, JB_E_INTERNAL, "%s: not a state directory", e->state);
        base[leaf - base] = '\0';
        fd = jb_fs_open_root(base, err);
        if (fd < 0)
                return -1;
        if (jb_fs_mkdir_p(fd, leaf + 1, 0755, 0, 0, err) < 0) {
                close(fd);
                return -1;
        }
        close(fd);
        fd = jb_fs_open_root(e->state, err);
        if (fd < 0)
                return -1;
        for (int i = 0; i < REC_N && r >= 0; i++) {
                char rel[NAME_MAX_EXT + 32];

                snprintf(rel, sizeof rel, "%s/%s", record_dirs[i], e->name);
                if (i != (int) want && e->rec[i]) {
                        if (jb_fs_unlink(fd, rel, err) < 0)
                                r = -1;
                        else
                                r = 1;
                } else if (i == (int) want && !e->rec[i]) {
                        int f;

                        if (jb_fs_mkdir_p(fd, record_dirs[i], 0755, 0, 0, err) < 0)
                                r = -1;
                        else if ((f = jb_fs_open(fd, rel, O_WRONLY | O_CREAT | O_EXCL, 0644, err)) < 0)
                                r = -1;
                        else {
                                close(f);
                                r = 1;
                        }
                }
        }
        close(fd);
        return r;
}

static bool records_differ(const ext *e, bool enable) {
        record want = enable ? REC_ENABLED_ADMIN : REC_DISABLED_ADMIN;

        if (!e->state[0])
                return false;
        for (int i = 0; i < REC_N; i++)
                if (e->rec[i] != (i == (int) want))
                        return true;
        return false;
}

/* A line of `after` that `before` does not have, or NULL. */
static const char *new_problem(json_object *before, json_object *after) {
        for (size_t i = 0; i < json_object_array_length(after); i++) {
                const char *a = json_object_get_string(json_object_array_get_idx(after, i));
                bool seen = false;

                for (size_t j = 0; j < json_object_array_length(before) && !seen; j++)
                        seen = strcmp(a, json_object_get_string(json_object_array_get_idx(before, j))) == 0;
                if (!seen)
                        return a;
        }
        return NULL;
}

static int make_link(int conf_fd, const ext *e, jb_err *err) {
        if (symlinkat(e->target, conf_fd, e->link) < 0)
                return jb_err_set(err, errno == EEXIST ? JB_E_CONFLICT : JB_E_INTERNAL, "conf.d/%s: symlink: %m",
                                  e->link);
        return 0;
}

/* The link change under the version's lock, tested before and after. */
static int change_link(jb_call *call, const php_cfg *c, const php_target *t, int conf_fd, const ext *e,
                       bool enable, jb_err *err) {
        json_object *before = NULL, *after = NULL;
        const char *fresh;
        int lk, r = -1;

        lk = php_apply_lock(call, c, t, err);
        if (lk < 0)
                return -1;
        if (php_fpm_test(call, t, &before, err) < 0)
                goto out;
        if ((enable ? make_link(conf_fd, e, err) : jb_fs_unlink(conf_fd, e->link, err)) < 0)
                goto out;
        r = php_fpm_test(call, t, &after, err);
        if (r == 0 && (fresh = new_problem(before, after)))
                r = jb_err_set(err, JB_E_CONFIG_INVALID, "php-fpm%s with %s %s: %s", t->version, e->link,
                               enable ? "enabled" : "disabled", fresh);
        if (r < 0 && (enable ? jb_fs_unlink(conf_fd, e->link, NULL) : make_link(conf_fd, e, NULL)) < 0)
                jb_log(call, LOG_ERR, "could not restore %s/%s", t->conf_d, e->link);
out:
        jb_lock_release(lk);
        json_object_put(before);
        json_object_put(after);
        return r;
}

static int ext_set(jb_call *call, bool enable) {
        const char *name = jb_param_str(call, "ext", "");
        php_cfg c;
        php_target t;
        ext e;
        jb_err err = JB_ERR_INIT;
        const char *plan[3];
        size_t nplan = 0;
        bool link_change, rec_change;
        int conf_fd = -1, r = -1;

        php_cfg_from_settings(jb_call_settings(call), &c);
        if (php_target_for(&c, jb_param_str(call, "php_version", ""), &t, &err) < 0)
                goto out;
        conf_fd = jb_fs_open_root(t.conf_d, &err);
        if (conf_fd < 0 || inspect(&c, &t, name, conf_fd, &e, &err) < 0)
                goto out;
        link_change = enable ? e.link_kind == JB_FS_MISSING : e.link_kind == JB_FS_SYMLINK;
        rec_change = records_differ(&e, enable);
        if (link_change)
                plan[nplan++] = enable ? "link conf.d" : "unlink conf.d";
        if (rec_change)
                plan[nplan++] = enable ? "record enabled_by_admin" : "record disabled_by_admin";
        if (link_change)
                plan[nplan++] = "reload php-fpm";
        ADD(jb_call_result(call), "php_version", json_object_new_string(t.version));
        ADD(jb_call_result(call), "ext", json_object_new_string(name));
        ADD(jb_call_result(call), "link", json_object_new_string(e.link));
        ADD(jb_call_result(call), "enabled", json_object_new_boolean(enable));
        ADD(jb_call_result(call), "plan", php_strarray(plan, nplan));
        if (nplan == 0 || jb_call_dry_run(call)) {
                r = nplan > 0;
                goto out;
        }
        if (link_change && change_link(call, &c, &t, conf_fd, &e, enable, &err) < 0)
                goto out;
        if (rec_change && set_records(&e, enable, &err) < 0) {
                /* the link goes back to what was tested valid before */
                if (link_change && (enable ? jb_fs_unlink(conf_fd, e.link, NULL) : make_link(conf_fd, &e, NULL)) < 0)
                        jb_log(call, LOG_ERR, "could not restore %s/%s", t.conf_d, e.link);
                goto out;
        }
        if (link_change && jb_reload_unit(call, t.unit, 0, &err) < 0)
                goto out;
        r = 1;
out:
        if (conf_fd >= 0)
                close(conf_fd);
        if (r < 0)
                return jb_call_fail_err(call, &err);
        jb_call_set_changed(call, r > 0);
        return 0;
}

int php_ext_enable(jb_call *call) {
        return ext_set(call, true);
}

int php_ext_disable(jb_call *call) {
        return ext_set(call, false);
}
