/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef JABALI_CTL_CLIENT_H
#define JABALI_CTL_CLIENT_H

/* A tiny blocking client of the agent's socket: connect, send one request
 * frame, read one response frame, check the response envelope. One
 * deadline covers the whole round trip, connect included; it is checked
 * around every system call (the socket is non-blocking and waited on with
 * poll()), so a peer that answers slowly or a byte at a time cannot stretch
 * it. No logging, no exit(), no signal handling: SIGPIPE is avoided with
 * MSG_NOSIGNAL.
 *
 * Errors (return -1, err set; jabali-agentctl exits 3 on all of them):
 *   TIMEOUT          the deadline passed (connecting, sending or waiting);
 *   INVALID_FRAME    the peer closed the stream before or inside the
 *                    response, sent an empty frame, or spoke the v1 dialect;
 *   FRAME_TOO_LARGE  the response announced more than CLIENT_RESPONSE_MAX;
 *   INVALID_JSON     the payload is not strict JSON or not a response
 *                    envelope (see client_parse_response());
 *   INTERNAL         cannot connect, other I/O errors, out of memory. */

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include <jabali/error.h>

/* Largest response accepted: what the agent may relay from a worker
 * (IPC_MAX_FRAME) plus its envelope. */
#define CLIENT_RESPONSE_MAX (65u * 1024 * 1024)
/* Nesting accepted in a response (a top-level object is depth 1): the
 * agent answers results nested up to 128 levels inside its envelope. */
#define CLIENT_RESPONSE_MAX_DEPTH 130

typedef struct client_response {
        char *raw;              /* owned: the payload as received, NUL-terminated */
        size_t raw_len;
        json_object *root;      /* owned: the parsed payload */
        bool ok;
        json_object *result;    /* borrowed from root when ok (NULL for a JSON null) */
        const char *code;       /* borrowed from root when !ok: a valid code string */
        const char *message;    /* borrowed from root when !ok */
} client_response;

/* Connects to the unix stream socket at `path` (shorter than sun_path) and
 * runs client_exchange() on it, all within timeout_ms (> 0). On success
 * returns 0 and fills *ret (free with client_response_done()); the response
 * may be an error response (ret->ok false). */
int client_call(const char *path, const char *request, size_t request_len, const char *request_id,
                int timeout_ms, client_response *ret, jb_err *err);

/* The same on a connected stream socket `fd`, which is switched to
 * non-blocking mode and left open (the caller owns it). */
int client_exchange(int fd, const char *request, size_t request_len, const char *request_id,
                    int timeout_ms, client_response *ret, jb_err *err);

/* Checks one response payload: strict JSON, an object with a boolean "ok";
 * "request_id" equal to `request_id` (an error response may carry null or
 * no request_id: the agent could not read ours); when ok, a "result" member
 * (of any type); otherwise a string "code" that is a valid error code and a
 * string "error". Copies buf into ret->raw. Errors: INVALID_JSON, INTERNAL. */
int client_parse_response(const char *buf, size_t len, const char *request_id, client_response *ret,
                          jb_err *err);

/* Frees what a successful call filled; safe on a zeroed struct and twice. */
void client_response_done(client_response *r);

#endif
