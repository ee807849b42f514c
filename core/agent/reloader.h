/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef JABALI_RELOADER_H
#define JABALI_RELOADER_H

/* Coalesced service reloads, run by the master on behalf of workers
 * (the SDK side is <jabali/reload.h>).
 *
 * Per unit: requests that arrive while no reload is scheduled arm a timer
 * of reload.window_ms; everything that arrives before it fires joins that
 * one reload. Requests that arrive while a reload runs form the next batch,
 * started (after a fresh window) when the running one ends: a waiter is
 * only ever answered by a reload that began after it asked. JB_RELOAD_NOW
 * shortens the window of the batch it joins to zero. */

#include <stdbool.h>

#include <json-c/json.h>

#include <jabali/error.h>

#include "server.h"

typedef struct reloader reloader;

/* Called once per awaited request with the outcome (err NULL: success). */
typedef void (*reload_done_fn)(void *userdata, const char *unit, const jb_err *err);

reloader *reloader_new(server *s);
void reloader_free(reloader *r);        /* NULL-safe; kills a reload still running */

/* Queues a reload of `unit`. With `done`, it is called when a reload that
 * starts after now has finished; without, the request only counts. */
int reloader_request(reloader *r, const char *unit, bool now, reload_done_fn done, void *userdata);
/* Forgets every waiter with this userdata (its worker died). */
void reloader_cancel(reloader *r, void *userdata);

/* Per-unit state and counters for agent.health:
 * {"unit":{"state":"idle|armed|running","requested","reloads","failed","last_error"}}. */
json_object *reloader_health(const reloader *r);

#endif
