/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef JABALI_DISPATCH_H
#define JABALI_DISPATCH_H

/* From a frame to an answer: envelope, action lookup, schema validation,
 * then a built-in or a module's worker pool; audit; response. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "envelope.h"
#include "modules.h"
#include "server.h"

struct peer {
        pid_t pid;
        uid_t uid;
        gid_t gid;
};

/* One request from its frame to its answer. Owned by its connection's queue
 * (in request order); when the connection goes away first, the request
 * finishes as an orphan and frees itself. */
struct pending {
        server *srv;
        conn *conn;                     /* NULL once orphaned */
        pending *next;                  /* the connection's queue */
        struct peer peer;

        request req;
        const action_entry *action;     /* NULL until looked up */
        modset *set;                    /* reference while dispatched to a pool */
        char *lock_key;                 /* owned: "<param>:<value>" (within the module's pool) or NULL */
        uint64_t start_usec;
        uint64_t deadline_usec;         /* absolute CLOCK_MONOTONIC */

        /* pool.c's bookkeeping while queued or running */
        pending *pool_next;
        struct worker *worker;
        sd_event_source *deadline_source;

        /* the answer */
        bool done;
        char *response;                 /* owned: serialised response frame payload */
        size_t response_len;
};

/* Handles one complete frame payload: appends a pending to `c`'s queue and
 * starts it. Returns <0 only on allocation failure (the caller closes). */
int dispatch_frame(conn *c, const struct peer *peer, const char *buf, size_t len);

/* Completes `p` with a result (ok) or an error: audits, serialises, and
 * hands the answer to the connection. `result` is borrowed. */
void pending_finish_ok(pending *p, json_object *result, const char *hat, const char *confinement);
void pending_finish_err(pending *p, const jb_err *err, const char *hat, const char *confinement);
void pending_free(pending *p);

/* Effective default and maximum deadline of an action. */
uint32_t action_timeout(const struct agent_config *cfg, const jb_action *a);
uint32_t action_max_timeout(const struct agent_config *cfg, const jb_action *a);

/* builtin.c */
json_object *describe_action(const struct agent_config *cfg, const action_entry *e);

/* Audits a connection-level event (refused connection, rejected frame). */
void audit_event(server *s, const char *event, const struct peer *peer, const char *code, const char *msg);

#endif
