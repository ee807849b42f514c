/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The floor: the cheapest server that speaks the agent's framing.
 *
 *   floor --socket PATH
 *
 * One thread, one epoll loop, a unix stream socket, and for every frame a
 * fixed answer that carries the request's request_id:
 *
 *   {"request_id":"ID","ok":true,"result":{"changed":false}}
 *
 * The request is not parsed beyond finding its request_id. What a client
 * measures against this is what the protocol's framing and the kernel's
 * unix sockets cost on this machine at best; the agent's numbers are read
 * against it. With NOTIFY_SOCKET set it says READY=1 there once it listens,
 * like the agent. SIGTERM or SIGINT: unlink the socket and exit 0. */

#define _GNU_SOURCE 1

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_FRAME (8u << 20)            /* the agent's default limits.max_frame */
#define MAX_ID 128                      /* the protocol's request_id bound */
#define WRITE_HIGH (1u << 20)           /* stop reading while this much is unsent, like the agent */

typedef struct conn {
        int fd;
        unsigned char *rbuf;            /* owned */
        size_t rlen, rcap;
        char *wbuf;                     /* owned */
        size_t wlen, wcap;
        uint32_t events;
} conn;

#define MAX_FD 4096                     /* connections on higher descriptors are refused */

static int ep = -1;
/* Every connection, indexed by its descriptor; a slot with fd == 0 is free
 * (0 is stdin, never a connection). Owns the buffers. */
static conn conns[MAX_FD];

static void conn_close(conn *c) {
        close(c->fd);           /* also leaves the epoll set */
        free(c->rbuf);
        free(c->wbuf);
        *c = (conn) {};
}

static int set_events(conn *c, uint32_t events) {
        struct epoll_event ev = { .events = events, .data.fd = c->fd };

        if (c->events == events)
                return 0;
        c->events = events;
        return epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Finds "request_id" and returns its string value as it is spelled in the
 * request (escapes left alone: they are valid JSON in the answer too), or
 * NULL for anything else, which is answered with a null request_id. */
static const unsigned char *find_id(const unsigned char *p, size_t len, size_t *ret_len) {
        static const char key[] = "\"request_id\"";
        const unsigned char *k = memmem(p, len, key, sizeof key - 1);
        const unsigned char *end = p + len, *s;

        if (!k)
                return NULL;
        s = k + sizeof key - 1;
        while (s < end && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r'))
                s++;
        if (s >= end || *s++ != ':')
                return NULL;
        while (s < end && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r'))
                s++;
        if (s >= end || *s++ != '"')
                return NULL;
        for (const unsigned char *q = s; q < end && q - s <= MAX_ID; q++) {
                if (*q == '\\') {
                        q++;
                        continue;
                }
                if (*q < 0x20)
                        return NULL;
                if (*q == '"') {
                        *ret_len = (size_t) (q - s);
                        return s;
                }
        }
        return NULL;
}

/* Returns -1 when out of memory. */
static int answer(conn *c, const unsigned char *payload, size_t len) {
        static const char pre[] = "{\"request_id\":", post[] = ",\"ok\":true,\"result\":{\"changed\":false}}";
        size_t idlen = 0, n;
        const unsigned char *id = find_id(payload, len, &idlen);
        char *w;

        if (c->wcap - c->wlen < 4 + sizeof pre + MAX_ID + 2 + sizeof post) {
                size_t cap = c->wlen + 4096 + MAX_ID;
                char *nb = realloc(c->wbuf, cap);
                if (!nb)
                        return -1;
                c->wbuf = nb;
                c->wcap = cap;
        }
        w = c->wbuf + c->wlen + 4;
        memcpy(w, pre, sizeof pre - 1);
        n = sizeof pre - 1;
        if (id) {
                w[n++] = '"';
                memcpy(w + n, id, idlen);
                n += idlen;
                w[n++] = '"';
        } else {
                memcpy(w + n, "null", 4);
                n += 4;
        }
        memcpy(w + n, post, sizeof post - 1);
        n += sizeof post - 1;
        w -= 4;
        w[0] = (char) (n >> 24);
        w[1] = (char) (n >> 16);
        w[2] = (char) (n >> 8);
        w[3] = (char) n;
        c->wlen += 4 + n;
        return 0;
}

/* Returns -1 when the connection is to be closed. */
static int flush(conn *c) {
        size_t done = 0;

        while (done < c->wlen) {
                ssize_t n = send(c->fd, c->wbuf + done, c->wlen - done, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                break;
                        return -1;
                }
                done += (size_t) n;
        }
        if (done) {
                memmove(c->wbuf, c->wbuf + done, c->wlen - done);
                c->wlen -= done;
        }
        return set_events(c, (c->wlen < WRITE_HIGH ? EPOLLIN : 0) | (c->wlen ? EPOLLOUT : 0));
}

static int on_readable(conn *c) {
        size_t off = 0;

        for (;;) {
                size_t room;
                ssize_t n;

                if (c->rcap - c->rlen < 65536) {
                        if (c->rlen > MAX_FRAME + 4)
                                return -1;
                        size_t cap = c->rlen + 65536 * 2;
                        unsigned char *nb = realloc(c->rbuf, cap);
                        if (!nb)
                                return -1;
                        c->rbuf = nb;
                        c->rcap = cap;
                }
                room = c->rcap - c->rlen;
                n = recv(c->fd, c->rbuf + c->rlen, room, MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                break;
                        return -1;
                }
                if (n == 0)
                        return -1;      /* EOF: answers owed to a half-closed peer are not this floor's concern */
                c->rlen += (size_t) n;
                if ((size_t) n < room)
                        break;
        }
        while (c->rlen - off >= 4) {
                const unsigned char *h = c->rbuf + off;
                uint32_t len = (uint32_t) h[0] << 24 | (uint32_t) h[1] << 16 | (uint32_t) h[2] << 8 | h[3];

                if (len == 0 || len > MAX_FRAME)
                        return -1;
                if (c->rlen - off - 4 < len)
                        break;
                if (answer(c, h + 4, len) < 0)
                        return -1;
                off += 4 + (size_t) len;
        }
        memmove(c->rbuf, c->rbuf + off, c->rlen - off);
        c->rlen -= off;
        return flush(c);
}

static void conn_new(int fd) {
        struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
        conn *c;

        if (fd <= 0 || fd >= MAX_FD) {
                close(fd);
                return;
        }
        c = &conns[fd];
        *c = (conn) { .fd = fd, .events = EPOLLIN };
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
                conn_close(c);
}

static void notify_ready(void) {
        const char *path = getenv("NOTIFY_SOCKET");
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        socklen_t salen;
        int fd;

        if (!path || (path[0] != '/' && path[0] != '@') || strlen(path) >= sizeof sa.sun_path)
                return;
        memcpy(sa.sun_path, path, strlen(path));
        if (path[0] == '@')
                sa.sun_path[0] = '\0';
        salen = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + strlen(path));
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return;
        (void) sendto(fd, "READY=1", 7, MSG_NOSIGNAL, (struct sockaddr *) &sa, salen);
        close(fd);
}

static int listen_on(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct stat stt;
        int fd;

        if (strlen(path) >= sizeof sa.sun_path) {
                fprintf(stderr, "floor: socket path too long\n");
                return -1;
        }
        strcpy(sa.sun_path, path);
        /* A stale socket of an earlier run, never any other file. */
        if (lstat(path, &stt) == 0 && S_ISSOCK(stt.st_mode))
                (void) unlink(path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *) &sa, sizeof sa) < 0 || listen(fd, 512) < 0) {
                fprintf(stderr, "floor: %s: %s\n", path, strerror(errno));
                if (fd >= 0)
                        close(fd);
                return -1;
        }
        return fd;
}

int main(int argc, char **argv) {
        static const struct option longopts[] = {
                { "socket", required_argument, NULL, 's' },
                {},
        };
        const char *path = NULL;
        struct epoll_event ev, evs[256];
        sigset_t ss;
        int c, lfd, sfd;
        bool running = true;

        while ((c = getopt_long(argc, argv, "", longopts, NULL)) >= 0) {
                if (c != 's') {
                        fprintf(stderr, "usage: floor --socket PATH\n");
                        return 2;
                }
                path = optarg;
        }
        if (!path || optind != argc) {
                fprintf(stderr, "usage: floor --socket PATH\n");
                return 2;
        }
        sigemptyset(&ss);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGINT);
        if (sigprocmask(SIG_BLOCK, &ss, NULL) < 0)
                return 1;
        (void) signal(SIGPIPE, SIG_IGN);
        sfd = signalfd(-1, &ss, SFD_NONBLOCK | SFD_CLOEXEC);
        ep = epoll_create1(EPOLL_CLOEXEC);
        lfd = listen_on(path);
        if (sfd < 0 || ep < 0 || lfd < 0)
                return 1;
        ev = (struct epoll_event) { .events = EPOLLIN, .data.fd = lfd };
        if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
                return 1;
        ev = (struct epoll_event) { .events = EPOLLIN, .data.fd = sfd };
        if (epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev) < 0)
                return 1;
        notify_ready();

        while (running) {
                int n = epoll_wait(ep, evs, (int) (sizeof evs / sizeof evs[0]), -1);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        perror("floor: epoll_wait");
                        break;
                }
                for (int i = 0; i < n; i++) {
                        int fd = evs[i].data.fd;

                        if (fd == sfd) {
                                running = false;
                        } else if (fd == lfd) {
                                int nfd;
                                while ((nfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
                                        conn_new(nfd);
                        } else if (fd > 0 && fd < MAX_FD && conns[fd].fd == fd) {
                                conn *cc = &conns[fd];
                                int r = 0;
                                if (evs[i].events & EPOLLOUT)
                                        r = flush(cc);
                                if (r >= 0 && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && (cc->events & EPOLLIN))
                                        r = on_readable(cc);
                                else if (r >= 0 && (evs[i].events & (EPOLLHUP | EPOLLERR)))
                                        r = -1;
                                /* A descriptor closed here and reused by a
                                 * later accept in this batch cannot be
                                 * reported again: epoll reports each
                                 * registered descriptor once per wait. */
                                if (r < 0)
                                        conn_close(cc);
                        }
                }
        }
        for (int i = 1; i < MAX_FD; i++)
                if (conns[i].fd == i)
                        conn_close(&conns[i]);
        (void) unlink(path);
        close(lfd);
        close(sfd);
        close(ep);
        return 0;
}
