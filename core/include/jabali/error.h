/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef JABALI_ERROR_H
#define JABALI_ERROR_H

/* Errors are values: a stable code string and a human message.
 *
 * Every function in libjabali that can fail takes a `jb_err *` as its last
 * argument, returns a negative number on failure and fills the jb_err (when
 * it is not NULL). The code is what a client branches on; the message is
 * for people and may change between releases.
 *
 * The core's codes are listed in <jabali/errors.def>. A module may answer
 * with a code of its own (upper-case letters, digits and '_', at most 31
 * bytes) through jb_err_set_code(); it documents it with the action. */

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include <jabali/visibility.h>

typedef enum jb_code {
        JB_OK = 0,
#define JB_ERROR(name, msg) JB_E_##name,
#include <jabali/errors.def>
#undef JB_ERROR
        _JB_CODE_MAX
} jb_code;

#define JB_ERR_CODE_MAX 32
#define JB_ERR_MSG_MAX 512

typedef struct jb_err {
        char code[JB_ERR_CODE_MAX];     /* "" while no error is set */
        char msg[JB_ERR_MSG_MAX];
} jb_err;

#define JB_ERR_INIT { "", "" }

/* The stable name of a core code ("INVALID_PARAMS"), or NULL when out of range. */
JB_EXPORT const char *jb_code_name(jb_code code);

/* The default message of a core code, or NULL when out of range. */
JB_EXPORT const char *jb_code_message(jb_code code);

/* Looks a name up among the core codes; returns JB_OK (0) when unknown. */
JB_EXPORT jb_code jb_code_from_name(const char *name);

/* True when `code` is a syntactically valid error code ([A-Z][A-Z0-9_]*, < 32 bytes). */
JB_EXPORT bool jb_code_valid(const char *code);

/* Sets a core code with a printf-style message; a NULL or empty fmt uses the
 * code's default message. Accepts err == NULL. Always returns -1 so that
 * `return jb_err_set(err, ...);` reads as the failure it is. */
JB_EXPORT int jb_err_set(jb_err *err, jb_code code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* The same for a module-defined code; an invalid code string becomes INTERNAL. */
JB_EXPORT int jb_err_set_code(jb_err *err, const char *code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

JB_EXPORT int jb_err_setv(jb_err *err, const char *code, const char *fmt, va_list ap)
        __attribute__((format(printf, 3, 0)));

/* Prepends "prefix: " to the message (for context such as a field name). */
JB_EXPORT void jb_err_prefix(jb_err *err, const char *prefix);

/* True when an error has been set. */
static inline bool jb_err_isset(const jb_err *err) { return err && err->code[0] != '\0'; }

static inline void jb_err_clear(jb_err *err) { if (err) { err->code[0] = '\0'; err->msg[0] = '\0'; } }

#endif
