/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef JABALI_ENVELOPE_H
#define JABALI_ENVELOPE_H

/* The request and response envelopes (docs/protocol.md §Requests,
 * §Responses). A request frame's payload is parsed and checked here; the
 * action's params are checked later against the action's schema. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include <jabali/error.h>

#define REQUEST_ID_MAX 128u             /* bytes */
#define ACTION_NAME_MAX 64u             /* bytes */
#define ACTOR_MEMBERS_MAX 16u
#define ACTOR_KEY_MAX 64u               /* bytes */
#define ACTOR_STRING_MAX 256u           /* bytes */
/* Nesting allowed in a response's result before it is refused as not
 * serialisable (see response_ok()). */
#define RESPONSE_MAX_DEPTH 128u

struct envelope_limits {
        uint32_t max_depth;             /* nesting of the whole request, top-level object = 1 */
        uint32_t max_timeout_ms;        /* largest timeout_ms accepted */
};

typedef struct request {
        json_object *root;              /* owns the parsed frame */
        const char *action;             /* borrowed from root */
        const char *request_id;         /* borrowed from root; NULL when absent or invalid */
        json_object *params;            /* borrowed from root, always an object (an empty one
                                           owned by root is inserted when absent) */
        bool dry_run;
        uint32_t timeout_ms;            /* 0 = not given */
        json_object *actor;             /* borrowed from root, or NULL when not given */
} request;

/* Parses one request payload (buf[0..len), not necessarily NUL-terminated).
 *
 * The payload must be strict JSON (jsoncheck.h, nesting at most
 * lim->max_depth; else INVALID_JSON) holding one object (else
 * INVALID_REQUEST "request is not a JSON object") whose members are only:
 *   request_id  required string, 1..128 bytes of printable ASCII (0x20..0x7E)
 *   action      required string, 1..64 bytes matching [a-z0-9][a-z0-9_.-]*
 *   params      object; {} when absent
 *   dry_run     boolean; false when absent
 *   timeout_ms  integer, 1..lim->max_timeout_ms; 0 in *ret when absent
 *   actor       object of at most 16 members; keys 1..64 bytes of printable
 *               ASCII; values strings (at most 256 bytes, no control
 *               characters), integers or booleans
 * JSON null is not "absent": it is refused like any other wrong type. Any
 * other member is INVALID_REQUEST naming it. Rules are checked in this
 * order: object, request_id, unknown members, action, params, dry_run,
 * timeout_ms, actor; the first failure is reported.
 *
 * request_id is checked first so that ret->request_id is set whenever it
 * was valid, even when a later rule fails: the caller echoes it in its
 * error response. For that reason *ret (ret->root in particular) may hold
 * data after a failure too, and the caller must call request_done() after
 * every request_parse(), successful or not.
 *
 * Returns 0, or -1 with err set (INVALID_JSON, INVALID_REQUEST, or INTERNAL
 * when out of memory). */
int request_parse(const char *buf, size_t len, const struct envelope_limits *lim,
                  request *ret, jb_err *err);

/* Drops root and zeroes *r; safe on a zeroed or failed request and twice. */
void request_done(request *r);

/* Serialised responses. Both return a new malloc'd, NUL-terminated buffer
 * owned by the caller (free()) and store its length (without the NUL) in
 * *ret_len when ret_len is not NULL. Key order is fixed, output is compact
 * and does not escape '/'. A request_id that is not a valid one (NULL, or
 * not 1..128 bytes of printable ASCII) is written as null. */

/* {"request_id":...,"ok":true,"result":{...}}. `result` is borrowed and
 * must be an object (NULL writes {}). Returns NULL when out of memory, when
 * result is not an object, or when the result cannot be written as strict
 * JSON (a non-finite double, a string that is not valid UTF-8 or holds a
 * NUL or a noncharacter, an integer beyond int64, nesting beyond
 * RESPONSE_MAX_DEPTH): the
 * caller then answers with response_error(..., "INTERNAL", ...). */
char *response_ok(const char *request_id, json_object *result, size_t *ret_len);

/* {"request_id":... or null,"ok":false,"error":message,"code":code}.
 * A NULL or malformed code (see jb_code_valid()) is written as "INTERNAL";
 * a NULL message as the core code's default message (or "error"); bytes of
 * the message that are not valid UTF-8 (or encode a Unicode noncharacter)
 * as '?'. Returns NULL only when out
 * of memory. */
char *response_error(const char *request_id, const char *code, const char *message,
                     size_t *ret_len);

#endif
