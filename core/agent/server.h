/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef JABALI_SERVER_H
#define JABALI_SERVER_H

/* The master's state, shared by the files that make up the daemon. Each
 * concern keeps its own file (listener.c, conn.c, dispatch.c, pool.c, ...);
 * this header only names the objects they pass between them. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <systemd/sd-event.h>

#include "config.h"

typedef struct server server;
typedef struct conn conn;
typedef struct pending pending;
typedef struct modset modset;
typedef struct audit audit;
typedef struct reloader reloader;

struct uid_count {
        uid_t uid;
        unsigned count;
};

struct server {
        sd_event *event;
        struct agent_config *config;    /* owned; replaced on SIGHUP */
        const char *config_path;        /* borrowed from argv */
        const char *exe_path;           /* what workers are exec'd from (owned, strdup) */

        int listen_fd;
        sd_event_source *listen_source;
        bool socket_activated;
        bool listen_paused;
        char *bound_path;               /* the path we created (and remove at exit), or NULL */

        conn *conns;                    /* doubly linked list */
        unsigned n_conns;
        struct uid_count *uid_counts;   /* one slot per connected uid */
        unsigned n_uid_counts;
        unsigned fd_budget;             /* connections allowed by RLIMIT_NOFILE */

        modset *modules;                /* the current module set (a reference) */
        audit *audit;
        reloader *reloader;             /* coalesced service reloads */

        bool draining;                  /* SIGTERM seen: no new work, exit when idle */
        bool ready_sent;                /* READY=1 told to the service manager */
        bool audit_failing;             /* the last audit record could not be written */
        unsigned in_flight;             /* requests accepted and not yet answered */
        uint64_t start_usec;

        struct {
                uint64_t requests, errors, connections, refused;
        } stats;
};

/* Monotonic clock in microseconds. */
uint64_t now_usec(void);

/* listener.c */
int listener_open(server *s);
void listener_close(server *s);
void listener_update(server *s);        /* pause or resume accepting */

/* server.c */
int server_run(const char *config_path);
int server_check_config(const char *config_path);
void server_maybe_exit(server *s);      /* draining and idle: leave the loop */
void server_maybe_ready(server *s);     /* every pool started: READY=1 */

#endif
