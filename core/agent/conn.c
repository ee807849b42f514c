/* SPDX-License-Identifier: GPL-3.0-or-later */
/* One client connection.
 *
 * Input is parsed into frames as it arrives; each frame becomes a pending
 * request appended to the connection's queue, and answers leave in queue
 * order whatever order they finish in. Back-pressure instead of buffering
 * without bound: the connection stops reading while limits.max_pipeline
 * requests are unanswered or while its unsent output is large, so a client
 * that never reads its answers costs a bounded amount of memory and nobody
 * else's time. A framing error poisons the stream: it is answered, then the
 * connection is closed. */

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "audit.h"
#include "conn.h"
#include "frame.h"
#include "log.h"
#include "util.h"

#define READ_CHUNK (64u * 1024u)
#define OUT_HIGH_WATER (1024u * 1024u)  /* stop reading while this much output is unsent */

struct conn {
        server *srv;
        conn *prev, *next;
        int fd;
        sd_event_source *io;
        sd_event_source *read_timer;    /* armed while a frame is half received */
        struct peer peer;

        fbuf in;
        uint8_t *out;                   /* unsent answers: out[out_off..out_len) */
        size_t out_len, out_off, out_cap;

        pending *q_head, *q_tail;       /* requests in arrival order */
        unsigned n_queued;

        bool eof;                       /* the peer sends no more bytes */
        bool stop;                      /* framing error or drain: take no more frames */
        bool dispatching;               /* inside parse_frames: answers are flushed by the caller */
};

static void conn_update(conn *c);

server *conn_server(const conn *c) {
        return c->srv;
}

static struct uid_count *uid_slot(server *s, uid_t uid, bool create) {
        for (unsigned i = 0; i < s->n_uid_counts; i++)
                if (s->uid_counts[i].uid == uid)
                        return &s->uid_counts[i];
        if (!create)
                return NULL;
        struct uid_count *n = realloc(s->uid_counts, (s->n_uid_counts + 1) * sizeof(*n));
        if (!n)
                return NULL;
        s->uid_counts = n;
        n[s->n_uid_counts] = (struct uid_count) { .uid = uid };
        return &n[s->n_uid_counts++];
}

unsigned uid_count_get(const server *s, uid_t uid) {
        for (unsigned i = 0; i < s->n_uid_counts; i++)
                if (s->uid_counts[i].uid == uid)
                        return s->uid_counts[i].count;
        return 0;
}

static void uid_count_drop(server *s, uid_t uid) {
        struct uid_count *u = uid_slot(s, uid, false);
        if (!u)
                return;
        if (--u->count == 0) {
                *u = s->uid_counts[--s->n_uid_counts];
        }
}

void send_refusal(int fd, const char *code, const char *msg) {
        size_t len = 0;
        _cleanup_free_ char *body = response_error(NULL, code, msg, &len);
        uint8_t hdr[FRAME_HEADER_SIZE];
        struct iovec iov[2];
        struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };

        if (!body)
                return;
        frame_put_header(hdr, (uint32_t) len);
        iov[0] = (struct iovec) { hdr, sizeof hdr };
        iov[1] = (struct iovec) { body, len };
        /* A fresh socket's send buffer takes a small frame whole; if it does
         * not, the refusal is lost, which is acceptable for a refusal. */
        (void) sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static int out_append(conn *c, const char *payload, size_t len) {
        size_t need = FRAME_HEADER_SIZE + len;

        if (c->out_off > 0 && c->out_off == c->out_len)
                c->out_off = c->out_len = 0;
        if (c->out_len + need > c->out_cap) {
                if (c->out_off > 0) {
                        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
                        c->out_len -= c->out_off;
                        c->out_off = 0;
                }
                if (c->out_len + need > c->out_cap) {
                        size_t cap = c->out_cap ? c->out_cap : 4096;
                        while (cap < c->out_len + need)
                                cap *= 2;
                        uint8_t *n = realloc(c->out, cap);
                        if (!n)
                                return -ENOMEM;
                        c->out = n;
                        c->out_cap = cap;
                }
        }
        frame_put_header(c->out + c->out_len, (uint32_t) len);
        memcpy(c->out + c->out_len + FRAME_HEADER_SIZE, payload, len);
        c->out_len += need;
        return 0;
}

/* Moves finished answers from the head of the queue to the output. */
static int flush_queue(conn *c) {
        while (c->q_head && c->q_head->done) {
                pending *p = c->q_head;
                int r = 0;

                c->q_head = p->next;
                if (!c->q_head)
                        c->q_tail = NULL;
                c->n_queued--;
                if (p->response)
                        r = out_append(c, p->response, p->response_len);
                pending_free(p);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int write_out(conn *c) {
        /* Answers wait until their audit records are durable: the
         * master's post-iteration sync sends them (conn_flush_all). */
        if (audit_sync_pending(c->srv->audit))
                return 0;
        while (c->out_off < c->out_len) {
                ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return 0;
                        return -errno;
                }
                c->out_off += (size_t) n;
        }
        return 0;
}

static void reject_frame(conn *c, jb_code code, const char *msg) {
        jb_err err = JB_ERR_INIT;
        pending *p = calloc(1, sizeof(pending));

        jb_err_set(&err, code, "%s", msg);
        audit_event(c->srv, "frame_rejected", &c->peer, err.code, err.msg);
        c->stop = true;
        if (!p)
                return;
        /* Queued like any request so that it is answered after the ones
         * before it; audited above as a frame event, not a request. */
        p->srv = c->srv;
        p->conn = c;
        p->done = true;
        p->response = response_error(NULL, err.code, err.msg, &p->response_len);
        conn_enqueue(c, p);
}

static int arm_read_timer(conn *c, bool on) {
        int r;

        if (!on)
                return c->read_timer ? sd_event_source_set_enabled(c->read_timer, SD_EVENT_OFF) : 0;
        if (c->read_timer) {
                int enabled = SD_EVENT_OFF;
                (void) sd_event_source_get_enabled(c->read_timer, &enabled);
                if (enabled != SD_EVENT_OFF)
                        return 0;       /* the deadline covers the whole frame, not each byte */
                r = sd_event_source_set_time_relative(c->read_timer, c->srv->config->read_timeout_ms * 1000ULL);
                if (r < 0)
                        return r;
                return sd_event_source_set_enabled(c->read_timer, SD_EVENT_ONESHOT);
        }
        return -EINVAL;
}

/* Takes complete frames off the input while the pipeline has room. */
static int parse_frames(conn *c) {
        const struct agent_config *cfg = c->srv->config;

        while (!c->stop && c->n_queued < cfg->max_pipeline && c->in.len > 0) {
                uint32_t len = 0;
                int r;

                switch (frame_parse(c->in.data, c->in.len, cfg->max_frame, &len)) {
                case FRAME_NEED_MORE:
                        if (c->eof) {
                                reject_frame(c, JB_E_INVALID_FRAME, "stream ended inside a frame");
                                return 0;
                        }
                        return arm_read_timer(c, true);
                case FRAME_TOO_LARGE:
                        reject_frame(c, JB_E_FRAME_TOO_LARGE, "frame exceeds limits.max_frame");
                        return 0;
                case FRAME_EMPTY:
                        reject_frame(c, JB_E_INVALID_FRAME, "zero-length frame");
                        return 0;
                case FRAME_LEGACY:
                        reject_frame(c, JB_E_INVALID_FRAME,
                                     "not a length-prefixed frame (the v1 newline dialect is not served)");
                        return 0;
                case FRAME_READY:
                        break;
                }
                (void) arm_read_timer(c, false);
                c->dispatching = true;
                r = dispatch_frame(c, &c->peer, (const char *) c->in.data + FRAME_HEADER_SIZE, len);
                c->dispatching = false;
                fbuf_consume(&c->in, FRAME_HEADER_SIZE + len);
                if (r < 0)
                        return r;
        }
        if (c->in.len == 0)
                (void) arm_read_timer(c, false);
        return 0;
}

static bool want_read(const conn *c) {
        return !c->eof && !c->stop && c->n_queued < c->srv->config->max_pipeline &&
               c->out_len - c->out_off < OUT_HIGH_WATER && c->in.len < c->in.limit;
}

/* One read per readiness event: epoll is level-triggered, and parsing
 * between reads is what keeps the pipeline bound honest. */
static int read_in(conn *c) {
        size_t room = fbuf_reserve(&c->in, READ_CHUNK);
        ssize_t n;

        if (room == 0)
                return 0;
        n = recv(c->fd, c->in.data + c->in.len, room, MSG_DONTWAIT);
        if (n < 0)
                return errno == EINTR || errno == EAGAIN ? 0 : -errno;
        if (n == 0)
                c->eof = true;
        c->in.len += (size_t) n;
        return 0;
}

/* Parses and answers until no buffered frame can make progress: answers
 * that leave free pipeline slots, which let more buffered frames in. */
static int pump(conn *c) {
        for (;;) {
                size_t before = c->in.len;
                int r = parse_frames(c);
                if (r >= 0)
                        r = flush_queue(c);
                if (r < 0)
                        return r;
                if (c->in.len == before || c->stop)
                        break;
        }
        return write_out(c);
}

static int on_io(sd_event_source *es, int fd, uint32_t revents, void *userdata) {
        conn *c = userdata;

        if ((revents & EPOLLERR) || (want_read(c) && read_in(c) < 0) || pump(c) < 0) {
                conn_free(c);
                return 0;
        }
        conn_update(c);
        return 0;
}

static int on_read_timeout(sd_event_source *es, uint64_t usec, void *userdata) {
        conn *c = userdata;

        if (c->in.len == 0 || c->stop)
                return 0;
        reject_frame(c, JB_E_INVALID_FRAME, "timed out waiting for the rest of the frame");
        if (pump(c) < 0) {
                conn_free(c);
                return 0;
        }
        conn_update(c);
        return 0;
}

/* Closes a finished connection, else recomputes which events it waits for. */
static void conn_update(conn *c) {
        uint32_t ev = 0;

        if ((c->eof || c->stop) && !c->q_head && c->out_off == c->out_len) {
                conn_free(c);
                return;
        }
        if (want_read(c))
                ev |= EPOLLIN;
        if (c->out_off < c->out_len)
                ev |= EPOLLOUT;
        (void) sd_event_source_set_io_events(c->io, ev ? ev : EPOLLIN);
        (void) sd_event_source_set_enabled(c->io, ev ? SD_EVENT_ON : SD_EVENT_OFF);
}

void conn_enqueue(conn *c, pending *p) {
        p->next = NULL;
        if (c->q_tail)
                c->q_tail->next = p;
        else
                c->q_head = p;
        c->q_tail = p;
        c->n_queued++;
}

void conn_request_done(conn *c) {
        /* A built-in answers from inside parse_frames(); whoever called
         * parse_frames() flushes afterwards, so do nothing re-entrantly. */
        if (c->dispatching)
                return;
        if (flush_queue(c) < 0 || pump(c) < 0) {
                conn_free(c);
                return;
        }
        conn_update(c);
}

conn *conn_new(server *s, int fd, const struct peer *peer) {
        conn *c = calloc(1, sizeof(conn));
        struct uid_count *u;
        int r;

        if (!c)
                goto fail;
        c->srv = s;
        c->fd = fd;
        c->peer = *peer;
        fbuf_init(&c->in, (size_t) s->config->max_frame + FRAME_HEADER_SIZE);
        r = sd_event_add_io(s->event, &c->io, fd, EPOLLIN, on_io, c);
        if (r < 0)
                goto fail;
        r = sd_event_add_time_relative(s->event, &c->read_timer, CLOCK_MONOTONIC, UINT64_MAX / 2, 0,
                                       on_read_timeout, c);
        if (r < 0)
                goto fail;
        (void) sd_event_source_set_enabled(c->read_timer, SD_EVENT_OFF);
        u = uid_slot(s, peer->uid, true);
        if (!u)
                goto fail;
        u->count++;
        c->next = s->conns;
        if (s->conns)
                s->conns->prev = c;
        s->conns = c;
        s->n_conns++;
        s->stats.connections++;
        return c;
fail:
        if (c) {
                sd_event_source_disable_unref(c->io);
                sd_event_source_disable_unref(c->read_timer);
                fbuf_done(&c->in);
                free(c);
        }
        safe_close(fd);
        return NULL;
}

void conn_free(conn *c) {
        server *s;

        if (!c)
                return;
        s = c->srv;
        /* Requests still running finish as orphans; answered ones go now. */
        while (c->q_head) {
                pending *p = c->q_head;
                c->q_head = p->next;
                if (p->done)
                        pending_free(p);
                else
                        p->conn = NULL;
        }
        sd_event_source_disable_unref(c->io);
        sd_event_source_disable_unref(c->read_timer);
        safe_close(c->fd);
        fbuf_done(&c->in);
        free(c->out);
        if (c->prev)
                c->prev->next = c->next;
        else
                s->conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        s->n_conns--;
        uid_count_drop(s, c->peer.uid);
        free(c);
        listener_update(s);
        server_maybe_exit(s);
}

void conn_drain_all(server *s) {
        conn *c = s->conns;

        while (c) {
                conn *next = c->next;
                c->stop = true;
                conn_update(c);
                c = next;
        }
}

void conn_flush_all(server *s) {
        conn *c = s->conns;

        while (c) {
                conn *next = c->next;
                if (c->out_off < c->out_len) {
                        if (write_out(c) < 0)
                                conn_free(c);
                        else
                                conn_update(c);
                }
                c = next;
        }
}
