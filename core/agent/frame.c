/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The wire framing (frame.h). */

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "frame.h"
#include "util.h"

#define FBUF_MIN_CAP ((size_t) 4096)

static uint32_t get_be32(const uint8_t *p) {
        return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

/* *ret_len is set whenever the header is complete (also for NEED_MORE and
 * TOO_LARGE, so callers can report the announced size), 0 otherwise. */
frame_status frame_parse(const uint8_t *buf, size_t len, uint32_t max, uint32_t *ret_len) {
        uint32_t n;

        if (ret_len)
                *ret_len = 0;
        if (len == 0)
                return FRAME_NEED_MORE;
        /* A length of 0x7b...... (>= 2 GiB) is never a frame: it is the v1
         * dialect's opening brace, recognisable from the first byte. */
        if (buf[0] == '{')
                return FRAME_LEGACY;
        if (len < FRAME_HEADER_SIZE)
                return FRAME_NEED_MORE;
        n = get_be32(buf);
        if (ret_len)
                *ret_len = n;
        if (n == 0)
                return FRAME_EMPTY;
        if (n > max)
                return FRAME_TOO_LARGE;
        if (len - FRAME_HEADER_SIZE < n)
                return FRAME_NEED_MORE;
        return FRAME_READY;
}

void frame_put_header(uint8_t out[FRAME_HEADER_SIZE], uint32_t len) {
        out[0] = (uint8_t) (len >> 24);
        out[1] = (uint8_t) (len >> 16);
        out[2] = (uint8_t) (len >> 8);
        out[3] = (uint8_t) len;
}

void fbuf_init(fbuf *b, size_t limit) {
        *b = (fbuf) { .limit = limit };
}

void fbuf_done(fbuf *b) {
        free(b->data);
        fbuf_init(b, b->limit);
}

size_t fbuf_reserve(fbuf *b, size_t want) {
        size_t need, cap;
        uint8_t *p;

        if (want == 0)
                want = 1;
        if (b->cap - b->len >= want)
                return b->cap - b->len;
        if (b->len >= b->limit || b->cap >= b->limit)
                return b->cap - b->len;

        /* len + want, capped at limit without overflowing. */
        need = want > b->limit - b->len ? b->limit : b->len + want;
        cap = b->cap < FBUF_MIN_CAP ? FBUF_MIN_CAP : b->cap;
        while (cap < need) {
                if (cap > SIZE_MAX / 2) {
                        cap = need;
                        break;
                }
                cap *= 2;
        }
        if (cap > b->limit)
                cap = b->limit;

        p = realloc(b->data, cap);
        if (!p)
                return b->cap - b->len;         /* 0 unless some room is left */
        b->data = p;
        b->cap = cap;
        return b->cap - b->len;
}

void fbuf_consume(fbuf *b, size_t n) {
        if (n >= b->len) {
                b->len = 0;
                return;
        }
        memmove(b->data, b->data + n, b->len - n);
        b->len -= n;
}

/* Waits until fd is ready when it turned out to be non-blocking. */
static int wait_fd(int fd, short events) {
        struct pollfd p = { .fd = fd, .events = events };

        for (;;) {
                int r = poll(&p, 1, -1);
                if (r >= 0)
                        return 0;
                if (errno != EINTR)
                        return -1;
        }
}

static int errno_fail(jb_err *err, const char *what, int e) {
        errno = e;      /* %m reads errno */
        return jb_err_set(err, JB_E_INTERNAL, "%s: %m", what);
}

int frame_write_all(int fd, const void *payload, uint32_t len, jb_err *err) {
        uint8_t header[FRAME_HEADER_SIZE];
        struct iovec iov[2];
        struct iovec *v = iov;
        int n_iov = len > 0 ? 2 : 1;
        bool is_socket = true;

        if (len > 0 && !payload)
                return jb_err_set(err, JB_E_INTERNAL, "no payload");

        frame_put_header(header, len);
        iov[0] = (struct iovec) { .iov_base = header, .iov_len = sizeof(header) };
        iov[1] = (struct iovec) { .iov_base = (void *) payload, .iov_len = len };

        while (n_iov > 0) {
                ssize_t k;

                if (is_socket) {
                        struct msghdr m = { .msg_iov = v, .msg_iovlen = (size_t) n_iov };
                        /* MSG_NOSIGNAL: a peer that went away is an EPIPE
                         * error here, not a SIGPIPE that kills the process. */
                        k = sendmsg(fd, &m, MSG_NOSIGNAL);
                        if (k < 0 && errno == ENOTSOCK) {
                                is_socket = false;
                                continue;
                        }
                } else
                        k = writev(fd, v, n_iov);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN || errno == EWOULDBLOCK) {
                                if (wait_fd(fd, POLLOUT) < 0)
                                        return errno_fail(err, "poll", errno);
                                continue;
                        }
                        return errno_fail(err, "write", errno);
                }
                if (k == 0)     /* no progress on a non-empty write: give up rather than spin */
                        return jb_err_set(err, JB_E_INTERNAL, "write: no progress");
                /* Drop what was written: whole vectors, then part of one. */
                while (n_iov > 0 && (size_t) k >= v->iov_len) {
                        k -= (ssize_t) v->iov_len;
                        v++;
                        n_iov--;
                }
                if (n_iov > 0) {
                        v->iov_base = (uint8_t *) v->iov_base + k;
                        v->iov_len -= (size_t) k;
                }
        }
        return 0;
}

/* Reads up to n bytes; returns the count (0 at EOF) or -1 with err set. */
static ssize_t read_some(int fd, uint8_t *p, size_t n, jb_err *err) {
        for (;;) {
                ssize_t k = read(fd, p, n);
                if (k >= 0)
                        return k;
                if (errno == EINTR)
                        continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) {
                        if (wait_fd(fd, POLLIN) < 0)
                                return errno_fail(err, "poll", errno);
                        continue;
                }
                return errno_fail(err, "read", errno);
        }
}

int frame_read(int fd, uint32_t max, char **ret_buf, uint32_t *ret_len, jb_err *err) {
        uint8_t header[FRAME_HEADER_SIZE];
        size_t have = 0;
        uint32_t len = 0;
        _cleanup_free_ char *buf = NULL;

        *ret_buf = NULL;
        *ret_len = 0;

        /* The header is read as it comes, so that a v1 client's "{...}\n"
         * is recognised at its first byte rather than waited on. */
        for (;;) {
                frame_status s = frame_parse(header, have, max, &len);
                ssize_t k;

                if (s == FRAME_LEGACY)
                        return jb_err_set(err, JB_E_INVALID_FRAME,
                                          "newline-delimited JSON (protocol v1) is not supported");
                if (s == FRAME_EMPTY)
                        return jb_err_set(err, JB_E_INVALID_FRAME, "zero-length frame");
                if (s == FRAME_TOO_LARGE)
                        return jb_err_set(err, JB_E_FRAME_TOO_LARGE,
                                          "frame of %" PRIu32 " bytes exceeds the limit of %" PRIu32 " bytes",
                                          len, max);
                if (have == FRAME_HEADER_SIZE)
                        break;
                k = read_some(fd, header + have, FRAME_HEADER_SIZE - have, err);
                if (k < 0)
                        return -1;
                if (k == 0) {
                        if (have == 0)
                                return 0;
                        return jb_err_set(err, JB_E_INVALID_FRAME, "stream ended inside a frame header");
                }
                have += (size_t) k;
        }

        buf = malloc((size_t) len + 1);
        if (!buf)
                return jb_err_set(err, JB_E_INTERNAL, "out of memory");
        for (size_t got = 0; got < len;) {
                ssize_t k = read_some(fd, (uint8_t *) buf + got, len - got, err);
                if (k < 0)
                        return -1;
                if (k == 0)
                        return jb_err_set(err, JB_E_INVALID_FRAME,
                                          "stream ended inside a frame (%zu of %" PRIu32 " bytes)", got, len);
                got += (size_t) k;
        }
        buf[len] = '\0';
        *ret_buf = TAKE_PTR(buf);
        *ret_len = len;
        return 1;
}
