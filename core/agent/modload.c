/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Loading modules: file checks, dlopen, descriptor checks, registration. */

#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "modules.h"
#include "pool.h"
#include "util.h"

static bool valid_module_name(const char *n) {
        size_t len = strlen(n);
        if (len == 0 || len > 32 || !(n[0] >= 'a' && n[0] <= 'z'))
                return false;
        for (size_t i = 0; i < len; i++)
                if (!((n[i] >= 'a' && n[i] <= 'z') || (n[i] >= '0' && n[i] <= '9') || n[i] == '_'))
                        return false;
        return true;
}

static bool valid_action_name(const char *n, const char *module_name) {
        size_t mlen = strlen(module_name), len = strlen(n);
        if (len > 64 || len <= mlen + 1 || strncmp(n, module_name, mlen) != 0 || n[mlen] != '.')
                return false;
        for (size_t i = 0; i < len; i++)
                if (!((n[i] >= 'a' && n[i] <= 'z') || (n[i] >= '0' && n[i] <= '9') || n[i] == '_' ||
                      n[i] == '.'))
                        return false;
        return n[len - 1] != '.' && !strstr(n, "..");
}

/* A module carries root's trust, so only root may have been able to put it
 * there: the file must be a regular file owned by root and not writable by
 * group or others, and so must the directory holding it (else whoever can
 * write the directory can swap the file between this check and dlopen()).
 * A development setting (modules.allow_insecure) relaxes the ownership and
 * mode rules, never the file type. */
static int check_owner_mode(const struct stat *st, const char *path, const char *what, jb_err *err) {
        if (st->st_uid != 0)
                return jb_err_set(err, JB_E_MODULE_UNAVAILABLE,
                                  "%s %s is owned by uid %u, not root (refusing to load)", what, path,
                                  (unsigned) st->st_uid);
        if (st->st_mode & (S_IWGRP | S_IWOTH))
                return jb_err_set(err, JB_E_MODULE_UNAVAILABLE,
                                  "%s %s is writable by group or others (refusing to load)", what, path);
        return 0;
}

/* The directory part of `path` ("/" for "/x.so", "." for "x.so") under the
 * same rules as the module. */
static int check_module_dir(const char *path, jb_err *err) {
        _cleanup_free_ char *dir = strdup(path);
        char *slash;
        struct stat st;

        if (!dir)
                return jb_err_set(err, JB_E_INTERNAL, "out of memory");
        slash = strrchr(dir, '/');
        if (slash)
                *(slash == dir ? slash + 1 : slash) = '\0';
        if (stat(slash ? dir : ".", &st) < 0)
                return jb_err_set(err, JB_E_MODULE_UNAVAILABLE, "cannot stat %s: %s", dir, strerror(errno));
        /* cppcheck (2.10) does not know the cleanup attribute and takes this
         * return for a leak of `dir`. */
        /* cppcheck-suppress memleak */
        return check_owner_mode(&st, slash ? dir : ".", "module directory", err);
}

int module_check_file(const char *path, bool allow_insecure, struct stat *ret_st, jb_err *err) {
        struct stat st;

        if (lstat(path, &st) < 0)
                return jb_err_set(err, JB_E_MODULE_UNAVAILABLE, "cannot open %s: %s", path, strerror(errno));
        if (!S_ISREG(st.st_mode))
                return jb_err_set(err, JB_E_MODULE_UNAVAILABLE, "%s is not a regular file", path);
        if (ret_st)
                *ret_st = st;
        if (allow_insecure)
                return 0;
        if (check_owner_mode(&st, path, "module", err) < 0)
                return -1;
        return check_module_dir(path, err);
}

/* RTLD_LOCAL: modules share nothing through the symbol namespace. The
 * path, not /proc/self/fd/N, is what dlopen() gets: glibc recognises an
 * object it has loaded by its name, and descriptor numbers repeat. */
void *module_dlopen(const char *path, const char *name, jb_err *err) {
        void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!dl)
                jb_err_set(err, JB_E_MODULE_UNAVAILABLE, "module %s: %s", name, dlerror());
        return dl;
}

int module_check_descriptor(const jb_module *d, const char *expected, jb_err *err) {
        if (d->magic != JABALI_MODULE_MAGIC)
                return jb_err_set(err, JB_E_MODULE_UNAVAILABLE, "module %s: bad descriptor magic", expected);
        if (d->abi != JABALI_MODULE_ABI)
                return jb_err_set(err, JB_E_MODULE_UNAVAILABLE,
                                  "module %s: built for module ABI %u, this agent speaks ABI %u", expected,
                                  d->abi, (unsigned) JABALI_MODULE_ABI);
        if (d->struct_size != sizeof(jb_module))
                return jb_err_set(err, JB_E_MODULE_UNAVAILABLE,
                                  "module %s: descriptor size %u, expected %zu", expected, d->struct_size,
                                  sizeof(jb_module));
        if (streq(expected, "agent"))
                return jb_err_set(err, JB_E_MODULE_UNAVAILABLE, "'agent' is reserved for the built-in actions");
        if (!d->name || !streq(d->name, expected))
                return jb_err_set(err, JB_E_MODULE_UNAVAILABLE, "module file %s.so names itself '%s'",
                                  expected, d->name ? d->name : "(null)");
        if (!d->version || !d->actions || !d->actions[0].name)
                return jb_err_set(err, JB_E_MODULE_UNAVAILABLE, "module %s: no version or no actions",
                                  expected);
        if (d->hat && !valid_module_name(d->hat))
                return jb_err_set(err, JB_E_MODULE_UNAVAILABLE, "module %s: invalid hat name", expected);
        for (const jb_action *a = d->actions; a->name; a++) {
                if (!valid_action_name(a->name, d->name))
                        return jb_err_set(err, JB_E_MODULE_UNAVAILABLE,
                                          "module %s: action '%s' must be named '%s.<name>'", expected,
                                          a->name, d->name);
                if (!a->handler)
                        return jb_err_set(err, JB_E_MODULE_UNAVAILABLE, "action %s has no handler", a->name);
                for (const jb_action *b = d->actions; b != a; b++)
                        if (streq(a->name, b->name))
                                return jb_err_set(err, JB_E_MODULE_UNAVAILABLE,
                                                  "action %s is registered twice by module %s", a->name, expected);
                if (a->params && jb_schema_check(a->params, err) < 0) {
                        jb_err_prefix(err, a->name);
                        return -1;
                }
                if (a->max_timeout_ms && a->timeout_ms > a->max_timeout_ms)
                        return jb_err_set(err, JB_E_MODULE_UNAVAILABLE,
                                          "action %s: default timeout above its maximum", a->name);
                if (a->lock) {
                        const jb_param *lp = NULL;
                        for (const jb_param *p = a->params; p && p->name; p++)
                                if (streq(p->name, a->lock))
                                        lp = p;
                        if (!lp || lp->type != JB_TYPE_STRING || !(lp->flags & JB_REQUIRED))
                                return jb_err_set(err, JB_E_MODULE_UNAVAILABLE,
                                                  "action %s: lock '%s' is not a required string param",
                                                  a->name, a->lock);
                }
        }
        if (d->settings && jb_schema_check(d->settings, err) < 0) {
                jb_err_prefix(err, "settings");
                jb_err_prefix(err, expected);
                return -1;
        }
        return 0;
}

/* Loads one module into `m`. On failure `err` names the module and nothing
 * is left open. */
static int module_load(module *m, const struct agent_config *cfg, const modset *prev, jb_err *err) {
        /* Zeroed for -fanalyzer, which cannot see that jb_err_set() (in
         * another file) returns -1, and so thinks module_check_file() may
         * succeed without filling it. */
        struct stat st = {};

        if (module_check_file(m->path, cfg->allow_insecure_modules, &st, err) < 0)
                return -1;
        void *dl = module_dlopen(m->path, m->name, err);
        if (!dl)
                return -1;
        /* glibc hands back an object it already has by name: after an
         * upgrade on disk, a reload would keep running the old code under
         * the new file's name. Refuse that; a restart loads the new file. */
        for (size_t i = 0; prev && i < prev->n_mods; i++) {
                const module *o = &prev->mods[i];
                if (o->dl == dl && (o->dev != st.st_dev || o->ino != st.st_ino)) {
                        jb_err_set(err, JB_E_MODULE_UNAVAILABLE,
                                   "module %s was replaced on disk; restart the agent to load the new file", m->name);
                        dlclose(dl);
                        return -1;
                }
        }
        m->dev = st.st_dev;
        m->ino = st.st_ino;
        const jb_module *d = dlsym(dl, JABALI_MODULE_SYMBOL);
        if (!d) {
                jb_err_set(err, JB_E_MODULE_UNAVAILABLE, "module %s: no '%s' symbol", m->name,
                           JABALI_MODULE_SYMBOL);
                goto fail;
        }
        if (module_check_descriptor(d, m->name, err) < 0)
                goto fail;
        if (d->settings) {
                if (jb_schema_validate(d->settings, m->conf->settings, err) < 0) {
                        jb_err_set(err, JB_E_CONFIG_INVALID, "%s: modules.%s.settings: %s", m->conf->where,
                                   m->name, err->msg);
                        goto fail;
                }
        } else if (json_object_object_length(m->conf->settings) > 0) {
                jb_err_set(err, JB_E_CONFIG_INVALID, "%s: module %s takes no settings", m->conf->where,
                           m->name);
                goto fail;
        }
        if (d->init && d->init(m->conf->settings, err) < 0) {
                if (!jb_err_isset(err))
                        jb_err_set(err, JB_E_MODULE_UNAVAILABLE, "init failed");
                jb_err_prefix(err, m->name);
                goto fail;
        }
        m->dl = dl;
        m->desc = d;
        return 0;
fail:
        dlclose(dl);
        return -1;
}

static void module_done(module *m) {
        pool_free(m->pool);
        if (m->dl)
                dlclose(m->dl);
        free(m->name);
        free(m->path);
        free(m->reason);
}

static int action_cmp(const void *a, const void *b) {
        return strcmp(((const action_entry *) a)->def->name, ((const action_entry *) b)->def->name);
}

static int build_registry(modset *set, jb_err *err) {
        size_t n_builtin, n = 0;
        const action_entry *builtins = builtin_actions(&n_builtin);

        n = n_builtin;
        for (size_t i = 0; i < set->n_mods; i++)
                for (const jb_action *a = set->mods[i].desc ? set->mods[i].desc->actions : NULL; a && a->name; a++)
                        n++;
        set->actions = calloc(n, sizeof(action_entry));
        if (!set->actions)
                return jb_err_set(err, JB_E_INTERNAL, "out of memory");
        memcpy(set->actions, builtins, n_builtin * sizeof(action_entry));
        set->n_actions = n_builtin;
        for (size_t i = 0; i < set->n_mods; i++)
                for (const jb_action *a = set->mods[i].desc ? set->mods[i].desc->actions : NULL; a && a->name; a++)
                        set->actions[set->n_actions++] = (action_entry) { .def = a, .module = &set->mods[i] };
        qsort(set->actions, set->n_actions, sizeof(action_entry), action_cmp);
        for (size_t i = 1; i < set->n_actions; i++)
                if (streq(set->actions[i - 1].def->name, set->actions[i].def->name)) {
                        const module *a = set->actions[i - 1].module, *b = set->actions[i].module;
                        return jb_err_set(err, JB_E_MODULE_UNAVAILABLE,
                                          "action %s is registered twice (by %s and %s)",
                                          set->actions[i].def->name, a ? a->name : "the agent",
                                          b ? b->name : "the agent");
                }
        return 0;
}

/* An optional module that fails stays in the set as unavailable: its actions
 * are not registered, and agent.health says why. */
static int mark_unavailable(module *m, const jb_err *why) {
        m->state = MODULE_UNAVAILABLE;
        m->reason = strdup(why->msg);
        return m->reason ? 0 : -1;
}

/* The pragma: gcc 12's -fanalyzer loses track of what is stored at a
 * symbolic index (set->mods[set->n_mods]) and reports the strdup() of
 * m->name as leaked. It is not: modset_unref() releases every module in
 * mods[0 .. n_mods), and n_mods counts m before anything is stored in it. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wanalyzer-malloc-leak"
int modset_load(struct agent_config *config, const modset *prev, modset **ret, jb_err *err) {
        modset *set = calloc(1, sizeof(modset));
        if (!set)
                return jb_err_set(err, JB_E_INTERNAL, "out of memory");
        set->ref = 1;
        set->mods = calloc(config->n_modules ? config->n_modules : 1, sizeof(module));
        if (!set->mods)
                goto oom;
        for (size_t i = 0; i < config->n_modules; i++) {
                const struct module_conf *mc = &config->modules[i];
                module *m = &set->mods[set->n_mods];
                jb_err e = JB_ERR_INIT;

                if (!mc->enabled)
                        continue;
                if (!valid_module_name(mc->name) || streq(mc->name, "agent")) {
                        jb_err_set(err, JB_E_CONFIG_INVALID, "%s: invalid module name '%s'%s", mc->where, mc->name,
                                   streq(mc->name, "agent") ? " (reserved for the built-in actions)" : "");
                        goto fail_set;
                }
                set->n_mods++;
                m->conf = mc;
                m->name = strdup(mc->name);
                if (!m->name || asprintf(&m->path, "%s/%s.so", config->module_dir, mc->name) < 0) {
                        m->path = NULL;
                        goto oom;
                }
                if (module_load(m, config, prev, &e) < 0) {
                        if (!mc->optional) {
                                *err = e;
                                goto fail_set;
                        }
                        if (mark_unavailable(m, &e) < 0)
                                goto oom;
                        continue;
                }
                m->state = MODULE_READY;
        }
        if (build_registry(set, err) < 0)
                goto fail_set;
        for (size_t i = 0; i < set->n_mods; i++) {
                module *m = &set->mods[i];
                if (m->state != MODULE_READY)
                        continue;
                m->pool = pool_new(set, m, err);
                if (!m->pool)
                        goto fail_set;
        }
        set->config = config;
        *ret = set;
        return 0;
oom:
        jb_err_set(err, JB_E_INTERNAL, "out of memory");
fail_set:
        set->config = NULL;     /* the caller keeps the config on failure */
        modset_unref(set);
        return -1;
}
#pragma GCC diagnostic pop

modset *modset_ref(modset *m) {
        if (m)
                m->ref++;
        return m;
}

modset *modset_unref(modset *set) {
        if (!set || --set->ref > 0)
                return NULL;
        for (size_t i = 0; i < set->n_mods; i++)
                module_done(&set->mods[i]);
        free(set->mods);
        free(set->actions);
        config_free(set->config);
        free(set);
        return NULL;
}

static int find_cmp(const void *key, const void *elem) {
        return strcmp(key, ((const action_entry *) elem)->def->name);
}

const action_entry *modset_find(const modset *m, const char *action) {
        return bsearch(action, m->actions, m->n_actions, sizeof(action_entry), find_cmp);
}

module *modset_module(const modset *m, const char *name) {
        for (size_t i = 0; i < m->n_mods; i++)
                if (streq(m->mods[i].name, name))
                        return &m->mods[i];
        return NULL;
}
