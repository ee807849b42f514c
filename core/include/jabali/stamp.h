/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef JABALI_STAMP_H
#define JABALI_STAMP_H

/* Stamped files: a configuration file a module writes, whose first line
 * says it is the module's own and records the parameters it was made from.
 *
 *   # jabali-nginx: {"domain":"example.com","user":"alice",...}
 *   server {
 *           ...
 *
 * The line is a prefix the module chooses — a comment in the file's own
 * syntax ("# jabali-nginx: ", "; jabali-php: ") — followed by one JSON
 * object and a newline. What it gives a module:
 *
 *   - ownership: a file without the line (an administrator's) is never
 *     overwritten or removed, and list actions skip it;
 *   - get/list from the host itself: the parameters come back from the
 *     file, with no database of the module's own to drift from it;
 *   - idempotence: the whole file, line included, is compared with what is
 *     on disk, so a change of a parameter that the template does not use
 *     is still a change.
 *
 * JSON escapes every control character, so the object stays on one line
 * whatever strings it holds. */

#include <stddef.h>

#include <jabali/error.h>
#include <jabali/visibility.h>

struct json_object;

/* Builds prefix + meta as one line of plain JSON + '\n' + body.
 * The body may be empty. At most `max` bytes in all (else INVALID_PARAMS,
 * "too large"). *ret is malloc'ed (NUL-terminated; the caller frees it),
 * *ret_len its length. Returns 0 or -1 with err (INTERNAL: out of memory). */
JB_EXPORT int jb_stamp_compose(const char *prefix, struct json_object *meta, const char *body, size_t body_len,
                               size_t max, char **ret, size_t *ret_len, jb_err *err);

/* The object recorded on the first line of text[0..len) (a new reference:
 * json_object_put() it), or NULL when the file does not start with
 * `prefix`, the rest of the line is not exactly one JSON object, or there
 * is no newline. The text is untrusted (an administrator may have edited
 * the file): it is parsed with json-c's depth limit and nothing but the
 * first line is read. */
JB_EXPORT struct json_object *jb_stamp_parse(const char *prefix, const char *text, size_t len);

#endif
