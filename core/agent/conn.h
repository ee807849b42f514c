/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef JABALI_CONN_H
#define JABALI_CONN_H

/* One client connection: framed input, the in-order queue of its requests,
 * buffered output, back-pressure and the half-sent-frame timeout. */

#include "dispatch.h"
#include "server.h"

/* Takes ownership of `fd` (an accepted, authorised, non-blocking socket). */
conn *conn_new(server *s, int fd, const struct peer *peer);
void conn_free(conn *c);

server *conn_server(const conn *c);
/* Appends a request to the connection's queue (dispatch.c). */
void conn_enqueue(conn *c, pending *p);
/* A request of this connection finished: flush what is answerable in order. */
void conn_request_done(conn *c);
/* SIGTERM: read no more frames; close each connection once it is idle. */
void conn_drain_all(server *s);
/* Sends what every connection has ready (after the audit sync). */
void conn_flush_all(server *s);

/* Per-uid accounting used by the listener's cap. */
unsigned uid_count_get(const server *s, uid_t uid);

/* Best effort, for refusing a connection: one error frame on a fresh
 * non-blocking socket, then the caller closes it. */
void send_refusal(int fd, const char *code, const char *msg);

#endif
