/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef JABALI_TEMPLATE_H
#define JABALI_TEMPLATE_H

/* A small template renderer with per-context escaping, for generating
 * service configuration (nginx server blocks, php-fpm pools, ...).
 *
 * Syntax (a strict subset of Mustache):
 *   {{name}}  {{a.b}}     a value: string, integer or boolean, rendered
 *                         through the escaping context. A missing name, a
 *                         null, an object, an array or a fractional number
 *                         is an error — never silently empty.
 *   {{.}}                 the current element inside a section.
 *   {{#name}}...{{/name}} a section. false, null, "", 0, 0.0 and an empty
 *                         array render nothing; an array renders the body
 *                         once per element; anything else (true, a
 *                         non-empty string, a non-zero number, an object)
 *                         renders it once.
 *                         Inside, the value (or the array element) is the
 *                         current context: names are looked up in it first,
 *                         then outward.
 *   {{^name}}...{{/name}} an inverted section: renders once when the value
 *                         is one of the false ones above, else nothing.
 *   {{! comment }}        dropped; may span lines.
 * Spaces around a name are allowed ({{ name }}). A dotted name a.b.c looks
 * up `a` through the context stack, then b and c inside it. Names are
 * made of [A-Za-z0-9_-] parts. There are no partials, no delimiter changes
 * and no unescaped output ({{{x}}}, {{&x}}): they are errors.
 * A missing name is an error in a section too.
 *
 * A line holding only a section tag ({{#x}}, {{^x}}, {{/x}}) or a comment,
 * plus blanks, is removed whole (Mustache "standalone" lines), so that
 *
 *     {{#ssl}}
 *     listen 443 ssl;
 *     {{/ssl}}
 *
 * leaves no empty lines behind.
 *
 * Every value goes through the context chosen for the render call:
 *   JB_TPL_NGINX      nginx configuration tokens. A value must be
 *                     non-empty and contain no whitespace, control
 *                     characters, or any of ; { } " ' \ $ # and backtick.
 *                     nginx has no escaping that is safe for `$`, so
 *                     refusing is the escaping.
 *   JB_TPL_INI        php-fpm pool / php.ini values: no control characters
 *                     (newlines included), no `"`, no `;`, no "${"
 *                     (variable expansion), no leading or trailing blank.
 *   JB_TPL_JSON       the body of a JSON string (the template supplies the
 *                     quotes): `"`, `\` and control characters are escaped.
 *   JB_TPL_SHELLWORD  a word for shell-like parsers: only
 *                     [A-Za-z0-9@%+=:,./_-], non-empty.
 *   JB_TPL_TEXT       any text without control characters (tab and newline
 *                     included); nothing is changed.
 * In every context a value must be valid UTF-8 (a refusal otherwise).
 * Integers and booleans render as decimal digits and true/false and pass
 * the same checks.
 *
 * Errors:
 *   INVALID_PARAMS  a value refused by the context, e.g.
 *                   "line 12: {{server_name}}: value contains ';' which is
 *                   not allowed in nginx context"; or the output would
 *                   exceed JB_TPL_OUTPUT_MAX bytes.
 *   INTERNAL        a mistake in the template or in how the module built the
 *                   data: a parse error ("line 3: unclosed section
 *                   {{#ssl}}"), a missing name, a value of the wrong type.
 * The message starts with the template line. Prefix it with the template's
 * name with jb_err_prefix() if useful. */

#include <stddef.h>

#include <jabali/error.h>
#include <jabali/visibility.h>

struct json_object;

typedef enum jb_tpl_context {
        JB_TPL_NGINX,
        JB_TPL_INI,
        JB_TPL_JSON,
        JB_TPL_SHELLWORD,
        JB_TPL_TEXT,
} jb_tpl_context;

/* Sections nest at most this deep. */
#define JB_TPL_DEPTH_MAX 16
/* The largest output a render produces. */
#define JB_TPL_OUTPUT_MAX (4u * 1024u * 1024u)

/* Renders the template `tpl` (`tpl_len` bytes; it need not be
 * NUL-terminated and may not contain NUL) with `data` (a json-c object;
 * read only, borrowed) in context `ctx`.
 *
 * On success returns 0, *ret is a new NUL-terminated buffer the caller
 * frees and *ret_len (when ret_len is not NULL) its length without the NUL.
 * On failure returns -1 and *ret is NULL. The whole template is parsed
 * before anything is rendered, so a syntax error is found whatever the
 * data. */
JB_EXPORT int jb_template_render(const char *tpl, size_t tpl_len, struct json_object *data,
                                 jb_tpl_context ctx, char **ret, size_t *ret_len, jb_err *err);

/* Reads the template file `name` (one path segment) from `override_dir`
 * (an administrator's copies; NULL for none) when it is there, else from
 * `dir` (the ones the module ships). Both directories are trusted paths
 * from settings; the file is opened beneath them, never through a symlink
 * that leaves them. At most `max` bytes (else CONFLICT).
 *
 * Returns 0 with *ret malloc'ed as jb_fs_read() gives it, or -1:
 * INTERNAL when neither directory has the file (the module's package is
 * broken), another code when one could not be read. A missing
 * override_dir is not an error: the administrator has no overrides. */
JB_EXPORT int jb_template_load(const char *override_dir, const char *dir, const char *name, size_t max,
                               char **ret, size_t *ret_len, jb_err *err);

#endif
