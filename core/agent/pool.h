/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef JABALI_POOL_H
#define JABALI_POOL_H

/* A module's worker pool, seen from the master: spawning workers (fork +
 * exec of the agent in worker mode), handing them validated requests one at
 * a time, deadlines, crash containment with back-off, per-resource
 * serialisation, recycling. The worker side is worker.c; the messages
 * between the two are described in ipc.h. */

#include <stdbool.h>

#include <json-c/json.h>

#include <jabali/error.h>

#include "dispatch.h"
#include "modules.h"

typedef struct pool pool;
typedef struct worker worker;

pool *pool_new(modset *set, module *m, jb_err *err);
/* Starts the first worker; `s` must outlive the pool. */
int pool_start(pool *p, server *s);
/* Kills every worker and fails whatever is still queued; NULL-safe. */
void pool_free(pool *p);

/* Queues `req` (holding a modset reference) and runs it when a worker and
 * its lock key are free. Answers BUSY when the queue is full and
 * MODULE_UNAVAILABLE / SANDBOX_UNAVAILABLE while the module is failing. */
void pool_submit(pool *p, pending *req);
/* Detaches `req` from whatever pool holds it (pending_free calls this). */
void pool_forget(pending *req);

/* Fills `o` with state, workers and counters; returns true when degraded. */
bool pool_health(const pool *p, json_object *o);

/* True while any worker of any pool is starting (for READY=1). */
bool pool_starting(const pool *p);

#endif
