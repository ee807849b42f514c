/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef JABALI_IPC_H
#define JABALI_IPC_H

/* Master <-> worker messages.
 *
 * A worker is `jabali-agent --worker <module>` with one end of a
 * SOCK_STREAM socketpair on descriptor IPC_WORKER_FD and nothing else open
 * beyond stdin/stdout/stderr. Messages use the client framing (4-byte
 * big-endian length + one JSON object); the master parses what a worker
 * sends with the same strict checker it applies to clients.
 *
 *   master -> worker, once:  hello {agent_version, module, module_version, path,
 *                            allow_insecure, apparmor, log_level, runtime_dir,
 *                            reload_command[], settings{}}
 *   worker -> master, once:  {"ready":true, "confinement":"apparmor+nnp"}
 *                         or {"ready":false, "code":"SANDBOX_UNAVAILABLE", "error":"..."}
 *   master -> worker:        {request_id, action, params{}, dry_run, deadline_ms}
 *   worker -> master:        {"ok":true, "result":{...}}
 *                         or {"ok":false, "code":"...", "error":"..."}
 *
 * One request at a time per worker; the master closes its end to ask a
 * worker to finish (recycling, shutdown) and SIGKILLs one that overruns. */

#define IPC_WORKER_FD 3

/* Bounds of the channel, both ways. Results may be far larger than any
 * request (a listing of every vhost), and a request may nest as deep as
 * limits.max_depth allows plus the message's own envelope. */
#define IPC_MAX_FRAME (64u * 1024u * 1024u)
#define IPC_MAX_DEPTH 260u

#endif
