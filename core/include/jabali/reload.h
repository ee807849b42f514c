/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef JABALI_RELOAD_H
#define JABALI_RELOAD_H

/* Asking for a service reload.
 *
 * Handlers never reload services themselves: they ask the master, which
 * coalesces the requests for one unit that arrive within reload.window_ms
 * (default 250 ms) into a single reload, so that a thousand vhosts created
 * at once cause one nginx reload, not a thousand. The master reloads
 * through systemd (ReloadUnit over D-Bus) when systemd is PID 1, else with
 * the configured reload.command, and logs and audits every failure.
 *
 *   r = jb_reload_unit(call, "nginx.service", 0, &err);                     // queued, returns at once
 *   r = jb_reload_unit(call, "nginx.service", JB_RELOAD_NOW | JB_RELOAD_WAIT, &err);  // nginx.reload
 *
 * Unit names are [A-Za-z0-9:_.@-], 1..255 bytes. */

#include <jabali/call.h>
#include <jabali/error.h>
#include <jabali/visibility.h>

#define JB_RELOAD_NOW  (1u << 0)  /* start without waiting out the coalescing window */
#define JB_RELOAD_WAIT (1u << 1)  /* return when a reload that began after this call has
                                     finished; its failure comes back as SERVICE_FAILED */

/* Returns 0 when the reload was queued (or, with JB_RELOAD_WAIT, done), or
 * -1 with err: INVALID_PARAMS for a bad unit name, SERVICE_FAILED when an
 * awaited reload failed, INTERNAL when the master could not be asked. */
JB_EXPORT int jb_reload_unit(jb_call *call, const char *unit, unsigned flags, jb_err *err);

#endif
