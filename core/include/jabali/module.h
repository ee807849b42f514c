/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef JABALI_MODULE_H
#define JABALI_MODULE_H

/* Writing a jabali-agent module.
 *
 * A module is a shared object (`<name>.so` in the module directory) that
 * exports exactly one symbol: `jabali_module`, a const jb_module descriptor,
 * defined with the JABALI_MODULE() macro. Everything else in the module is
 * built with -fvisibility=hidden.
 *
 *   static int domain_create(jb_call *call) { ... }
 *
 *   static const jb_param create_params[] = {
 *           JB_P_STRING("domain", JB_CHECK_DOMAIN, JB_REQUIRED, "the site's domain"),
 *           JB_P_END
 *   };
 *
 *   static const jb_action actions[] = {
 *           { .name = "nginx.domain.create", .handler = domain_create,
 *             .params = create_params, .summary = "create or converge a vhost",
 *             .flags = JB_ACTION_MUTATING | JB_ACTION_DRY_RUN, .lock = "domain" },
 *           { .name = NULL }
 *   };
 *
 *   JABALI_MODULE(.name = "nginx", .version = "1.0.0", .hat = "nginx",
 *                 .summary = "web server virtual hosts", .actions = actions);
 *
 * Where code runs:
 *   - The master (root, unconfined) dlopen()s the module to read the
 *     descriptor, checks it, validates the module's settings against
 *     `settings` and calls `init` — which must only inspect its settings: no
 *     I/O, no threads, no side effects. Handlers never run in the master.
 *   - A worker is a fresh exec of the agent that loads only this module,
 *     calls `worker_init` (may open files it needs later), enters the
 *     module's AppArmor hat for good and then runs handlers, one request at a
 *     time. Workers are recycled (after workers.max_use requests or when
 *     idle), so no state may be assumed to survive between calls.
 *
 * Ownership: everything a handler receives through jb_call is borrowed for
 * the duration of the call. Values a handler adds to the result object are
 * owned by the result (json-c reference rules: json_object_object_add takes
 * the caller's reference).
 *
 * ABI: JABALI_MODULE_ABI is bumped on any change to the layout or meaning of
 * jb_module, jb_action, jb_param or the semantics of the SDK functions. The
 * loader compares magic, ABI and struct_size exactly and refuses a mismatch,
 * naming both versions. Fields are only ever appended before `reserved`. */

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include <jabali/abi.h>
#include <jabali/call.h>
#include <jabali/error.h>
#include <jabali/schema.h>
#include <jabali/visibility.h>

#define JABALI_MODULE_MAGIC 0x314d424au         /* "JBM1" read as little-endian bytes */
#define JABALI_MODULE_SYMBOL "jabali_module"

/* A handler converges the host toward what the params describe. It returns 0
 * after filling the result (jb_call_result(), jb_call_set_changed()) or -1
 * after jb_call_fail*(). Returning -1 without an error, or 0 with one, is a
 * bug the worker reports as INTERNAL. */
typedef int (*jb_handler_fn)(jb_call *call);

/* jb_action.flags */
#define JB_ACTION_MUTATING (1u << 0)    /* may change the host (audited as such) */
#define JB_ACTION_DRY_RUN  (1u << 1)    /* honours dry_run; without it a dry_run request is INVALID_REQUEST */

typedef struct jb_action {
        const char *name;               /* "<module>.<noun>.<verb>", [a-z0-9_.]; NULL terminates the table */
        jb_handler_fn handler;
        const jb_param *params;         /* NULL-terminated; NULL means "takes no params" */
        const char *summary;            /* one line for agent.describe */
        unsigned flags;
        uint32_t timeout_ms;            /* default deadline; 0 = limits.default_timeout_ms */
        uint32_t max_timeout_ms;        /* ceiling for a caller's timeout_ms; 0 = limits.max_timeout_ms */
        const char *lock;               /* name of a required string param whose value keys a
                                           per-resource lock ("domain"), or NULL */
        const char *const *errors;      /* NULL-terminated module-specific codes it may answer, or NULL */
        const void *reserved[4];
} jb_action;

typedef struct jb_module {
        uint32_t magic;                 /* JABALI_MODULE_MAGIC */
        uint32_t abi;                   /* JABALI_MODULE_ABI */
        uint32_t struct_size;           /* sizeof(jb_module) */
        const char *name;               /* must equal the file name without ".so": [a-z][a-z0-9_]{0,31} */
        const char *version;            /* the module's own version string */
        const char *hat;                /* AppArmor hat the workers enter ("nginx"), or NULL for none */
        const char *summary;
        const jb_action *actions;       /* at least one action */
        const jb_param *settings;       /* schema of the module's `settings` config group, or NULL */
        /* In the master, after the settings were validated: may reject
         * settings the schema cannot express. No I/O, no side effects. */
        int (*init)(json_object *settings, jb_err *err);
        /* In each worker, before it enters the hat. */
        int (*worker_init)(json_object *settings, jb_err *err);
        /* In each worker, before it exits normally. */
        void (*fini)(void);
        const void *reserved[4];
} jb_module;

#define JABALI_MODULE(...)                                                      \
        JB_EXPORT extern const jb_module jabali_module;                         \
        JB_EXPORT const jb_module jabali_module = {                             \
                .magic = JABALI_MODULE_MAGIC,                                   \
                .abi = JABALI_MODULE_ABI,                                       \
                .struct_size = sizeof(jb_module),                               \
                __VA_ARGS__                                                     \
        }

#endif
