/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef JABALI_MODULES_H
#define JABALI_MODULES_H

/* The loaded module set and its action registry.
 *
 * A modset is built from one configuration: it dlopen()s every enabled
 * module, checks its descriptor and registers its actions next to the
 * built-in ones. It is reference counted because SIGHUP builds a new set
 * while requests dispatched through the old one are still running: each
 * pending request holds a reference, and the old set (its pools, its
 * dlopen handles, its config) goes away with the last of them. */

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include <jabali/error.h>
#include <jabali/module.h>

#include "config.h"

typedef struct server server;
typedef struct pending pending;
typedef struct pool pool;
typedef struct module module;
typedef struct modset modset;

/* A built-in action runs in the master; it fills `result` or `err`. */
typedef int (*builtin_fn)(server *s, pending *p, json_object *result, jb_err *err);

typedef struct action_entry {
        const jb_action *def;           /* name, params, flags, timeouts, lock */
        module *module;                 /* NULL for built-ins */
        builtin_fn builtin;             /* non-NULL for built-ins */
} action_entry;

typedef enum module_state {
        MODULE_READY,
        MODULE_UNAVAILABLE,             /* optional module that failed to load/init */
} module_state;

struct module {
        char *name;                     /* owned */
        char *path;                     /* owned: <dir>/<name>.so */
        void *dl;                       /* dlopen handle, NULL when unavailable */
        const jb_module *desc;          /* inside dl */
        const struct module_conf *conf; /* borrowed from the set's config */
        module_state state;
        char *reason;                   /* owned: why unavailable */
        pool *pool;                     /* owned, NULL when unavailable */
        dev_t dev;                      /* the file dlopen() loaded */
        ino_t ino;
};

struct modset {
        unsigned ref;
        struct agent_config *config;    /* owned: the config this set was built from */
        module *mods;                   /* n_mods, sorted by name */
        size_t n_mods;
        action_entry *actions;          /* n_actions, sorted by name (bsearch) */
        size_t n_actions;
        bool retired;                   /* replaced by a newer set: pools take no new work */
};

/* Builds a set from `config` (taking ownership of it on success); `prev`,
 * the running set on SIGHUP, lets it refuse a module replaced on disk. Fails,
 * naming the module, on a file that may not be loaded, an ABI mismatch, a
 * duplicate action, a malformed schema or a failing init — unless the module
 * is optional, in which case it is kept as MODULE_UNAVAILABLE. */
int modset_load(struct agent_config *config, const modset *prev, modset **ret, jb_err *err);

modset *modset_ref(modset *m);
modset *modset_unref(modset *m);        /* returns NULL */

const action_entry *modset_find(const modset *m, const char *action);
module *modset_module(const modset *m, const char *name);

/* builtin.c: the agent.* actions, registered into every set. */
const action_entry *builtin_actions(size_t *ret_n);

/* Shared with the worker, which loads its one module the same way. */
int module_check_file(const char *path, bool allow_insecure, struct stat *ret_st, jb_err *err);
void *module_dlopen(const char *path, const char *name, jb_err *err);
int module_check_descriptor(const jb_module *d, const char *expected_name, jb_err *err);

#endif
