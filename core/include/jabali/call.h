/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef JABALI_CALL_H
#define JABALI_CALL_H

/* The request a handler serves, and the answer it builds.
 *
 * A jb_call lives for one request inside a worker. Every pointer obtained
 * from it is borrowed and valid until the handler returns. Params have been
 * validated against the action's schema before the handler runs: a
 * required member is present with its declared type; an optional one may be
 * absent (the getters then return the given default). */

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include <jabali/error.h>
#include <jabali/visibility.h>

typedef struct jb_call jb_call;

JB_EXPORT const char *jb_call_action(const jb_call *call);
JB_EXPORT const char *jb_call_request_id(const jb_call *call);
/* True when the caller asked to compute the change without applying it. */
JB_EXPORT bool jb_call_dry_run(const jb_call *call);
/* Absolute CLOCK_MONOTONIC deadline in microseconds; the master kills the
 * worker at this time, so long operations should pass what remains on to the
 * programs they run (jb_call_remaining_ms). */
JB_EXPORT uint64_t jb_call_deadline_usec(const jb_call *call);
JB_EXPORT uint64_t jb_call_remaining_ms(const jb_call *call);

/* The validated params object (never NULL). */
JB_EXPORT json_object *jb_call_params(const jb_call *call);
/* The module's settings from the config (never NULL; {} when none). */
JB_EXPORT json_object *jb_call_settings(const jb_call *call);

/* Param getters: the value when present with the right type, else `def`. */
JB_EXPORT const char *jb_param_str(const jb_call *call, const char *name, const char *def);
JB_EXPORT int64_t jb_param_int(const jb_call *call, const char *name, int64_t def);
JB_EXPORT bool jb_param_bool(const jb_call *call, const char *name, bool def);
/* Setting getters, same rules. */
JB_EXPORT const char *jb_setting_str(const jb_call *call, const char *name, const char *def);
JB_EXPORT int64_t jb_setting_int(const jb_call *call, const char *name, int64_t def);
JB_EXPORT bool jb_setting_bool(const jb_call *call, const char *name, bool def);
/* The same from a settings object, for hooks that have no call (init,
 * worker_init): `settings` may be NULL. */
JB_EXPORT const char *jb_settings_str(json_object *settings, const char *name, const char *def);
JB_EXPORT int64_t jb_settings_int(json_object *settings, const char *name, int64_t def);

/* The result object sent back as "result" (created on first use, never
 * NULL). Add members with json_object_object_add(); the result owns them. */
JB_EXPORT json_object *jb_call_result(jb_call *call);
/* Sets result.changed; a handler that never calls it answers changed:false. */
JB_EXPORT void jb_call_set_changed(jb_call *call, bool changed);

/* Fail the call with a core code / a module code / a jb_err. Each returns
 * -1 so a handler can `return jb_call_fail(call, JB_E_NOT_FOUND, "...");`.
 * The first failure wins; later calls are ignored. */
JB_EXPORT int jb_call_fail(jb_call *call, jb_code code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
JB_EXPORT int jb_call_fail_code(jb_call *call, const char *code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
JB_EXPORT int jb_call_fail_err(jb_call *call, const jb_err *err);

/* Operational log line from a handler, tagged with the module, the action
 * and the request_id; priority as syslog's LOG_*. Goes to the journal when
 * there is one, else to standard error. */
JB_EXPORT void jb_log(const jb_call *call, int priority, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

#endif
