/* SPDX-License-Identifier: GPL-3.0-or-later */
/* jabali-agentctl: one request, one response, one deadline.
 *
 * frame_write_all()/frame_read() block without a deadline, so the I/O here
 * is a poll() loop around the same codec (frame_put_header, frame_parse,
 * fbuf): the deadline is re-checked before every wait. */

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>

#include "client.h"
#include "frame.h"
#include "jsoncheck.h"
#include "util.h"

#define READ_CHUNK (64u * 1024)

static int64_t now_ms(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds left before `deadline`, 0 when it has passed. */
static int time_left(int64_t deadline) {
        int64_t left = deadline - now_ms();

        if (left <= 0)
                return 0;
        return left > INT_MAX ? INT_MAX : (int) left;
}

/* Waits until fd is ready for `events`. 1: ready (or in error: the next
 * system call will say which), 0: the deadline passed, -1: poll failed. */
static int wait_fd(int fd, short events, int64_t deadline) {
        for (;;) {
                struct pollfd p = { .fd = fd, .events = events };
                int left = time_left(deadline);
                int r;

                if (left == 0)
                        return 0;
                r = poll(&p, 1, left);
                if (r > 0)
                        return 1;
                if (r < 0 && errno != EINTR)
                        return -1;
        }
}

static int connect_unix(const char *path, int64_t deadline, jb_err *err) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -1;
        size_t n = strlen(path);

        if (n == 0 || n >= sizeof sa.sun_path)
                return jb_err_set(err, JB_E_INTERNAL, "socket path '%s' is empty or too long", path);
        memcpy(sa.sun_path, path, n);

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return jb_err_set(err, JB_E_INTERNAL, "cannot create a socket: %s", strerror(errno));

        for (;;) {
                int left = time_left(deadline);
                struct timeval tv = { .tv_sec = left / 1000, .tv_usec = (left % 1000) * 1000 };

                if (left == 0)
                        return jb_err_set(err, JB_E_TIMEOUT, "timed out connecting to %s", path);
                /* A unix stream connect() blocks while the listener's backlog is
                 * full, for at most SO_SNDTIMEO, then fails with EAGAIN. */
                if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0)
                        return jb_err_set(err, JB_E_INTERNAL, "cannot set a socket timeout: %s", strerror(errno));
                if (connect(fd, (const struct sockaddr *) &sa,
                            (socklen_t) (offsetof(struct sockaddr_un, sun_path) + n + 1)) == 0)
                        break;
                if (errno == EINTR)
                        continue;
                if (errno == EAGAIN || errno == EINPROGRESS)
                        return jb_err_set(err, JB_E_TIMEOUT, "timed out connecting to %s", path);
                return jb_err_set(err, JB_E_INTERNAL, "cannot connect to %s: %s", path, strerror(errno));
        }
        return TAKE_FD(fd);
}

/* Returns 0, or the errno of a failed send (err set), or -2 on timeout (err set). */
static int send_all(int fd, const void *buf, size_t len, int64_t deadline, jb_err *err) {
        const uint8_t *p = buf;

        while (len > 0) {
                ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
                int r;

                if (n >= 0) {
                        p += n;
                        len -= (size_t) n;
                        continue;
                }
                if (errno == EINTR)
                        continue;
                if (errno != EAGAIN) {
                        int e = errno;

                        (void) jb_err_set(err, JB_E_INTERNAL, "cannot send the request: %s", strerror(e));
                        return e;
                }
                r = wait_fd(fd, POLLOUT, deadline);
                if (r == 0) {
                        (void) jb_err_set(err, JB_E_TIMEOUT, "timed out sending the request");
                        return -2;
                }
                if (r < 0) {
                        int e = errno;

                        (void) jb_err_set(err, JB_E_INTERNAL, "poll: %s", strerror(e));
                        return e;
                }
        }
        return 0;
}

/* Reads one frame into a new NUL-terminated buffer (*ret, owned by the caller). */
static int recv_frame(int fd, int64_t deadline, char **ret, size_t *ret_len, jb_err *err) {
        _cleanup_(fbuf_done) fbuf b;
        char *payload;

        fbuf_init(&b, FRAME_HEADER_SIZE + (size_t) CLIENT_RESPONSE_MAX);
        for (;;) {
                uint32_t plen = 0;
                frame_status st = b.len > 0 ? frame_parse(b.data, b.len, CLIENT_RESPONSE_MAX, &plen)
                                            : FRAME_NEED_MORE;
                ssize_t n;
                size_t room;

                switch (st) {
                case FRAME_READY:
                        payload = malloc((size_t) plen + 1);
                        if (!payload)
                                return jb_err_set(err, JB_E_INTERNAL, "out of memory");
                        memcpy(payload, b.data + FRAME_HEADER_SIZE, plen);
                        payload[plen] = '\0';
                        *ret = payload;
                        *ret_len = plen;
                        return 0;
                case FRAME_TOO_LARGE:
                        return jb_err_set(err, JB_E_FRAME_TOO_LARGE,
                                          "the response frame is larger than %u bytes", CLIENT_RESPONSE_MAX);
                case FRAME_EMPTY:
                        return jb_err_set(err, JB_E_INVALID_FRAME, "the response frame is empty");
                case FRAME_LEGACY:
                        return jb_err_set(err, JB_E_INVALID_FRAME,
                                          "the peer answered in the newline-delimited v1 dialect, not with a frame");
                case FRAME_NEED_MORE:
                default:
                        break;
                }

                room = fbuf_reserve(&b, READ_CHUNK);
                if (room == 0)
                        return jb_err_set(err, JB_E_INTERNAL, "out of memory");
                n = read(fd, b.data + b.len, room);
                if (n > 0) {
                        b.len += (size_t) n;
                        continue;
                }
                if (n == 0)
                        return jb_err_set(err, JB_E_INVALID_FRAME,
                                          b.len == 0 ? "the connection was closed without a response"
                                                     : "the connection was closed inside the response frame");
                if (errno == EINTR)
                        continue;
                if (errno != EAGAIN)
                        return jb_err_set(err, JB_E_INTERNAL, "cannot read the response: %s", strerror(errno));
                switch (wait_fd(fd, POLLIN, deadline)) {
                case 0:
                        return jb_err_set(err, JB_E_TIMEOUT, "timed out waiting for the response");
                case 1:
                        break;
                default:
                        return jb_err_set(err, JB_E_INTERNAL, "poll: %s", strerror(errno));
                }
        }
}

static int exchange(int fd, const char *request, size_t request_len, const char *request_id,
                    int64_t deadline, client_response *ret, jb_err *err) {
        uint8_t header[FRAME_HEADER_SIZE];
        jb_err send_err = JB_ERR_INIT;
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        int flags, r;

        if (request_len == 0 || request_len > UINT32_MAX)
                return jb_err_set(err, JB_E_INTERNAL, "request of %zu bytes cannot be framed", request_len);

        flags = fcntl(fd, F_GETFL);
        if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
                return jb_err_set(err, JB_E_INTERNAL, "fcntl: %s", strerror(errno));

        frame_put_header(header, (uint32_t) request_len);
        r = send_all(fd, header, sizeof header, deadline, &send_err);
        if (r == 0)
                r = send_all(fd, request, request_len, deadline, &send_err);
        if (r == -2) {
                if (err)
                        *err = send_err;
                return -1;
        }

        /* When the agent refused the request before reading all of it (too
         * large, say), its error response may already be waiting: prefer it
         * to the EPIPE the send ran into. */
        if (recv_frame(fd, deadline, &buf, &len, err) < 0) {
                if (r != 0 && err)
                        *err = send_err;
                return -1;
        }
        return client_parse_response(buf, len, request_id, ret, err);
}

int client_exchange(int fd, const char *request, size_t request_len, const char *request_id,
                    int timeout_ms, client_response *ret, jb_err *err) {
        return exchange(fd, request, request_len, request_id, now_ms() + timeout_ms, ret, err);
}

int client_call(const char *path, const char *request, size_t request_len, const char *request_id,
                int timeout_ms, client_response *ret, jb_err *err) {
        int64_t deadline = now_ms() + timeout_ms;
        _cleanup_close_ int fd = -1;

        fd = connect_unix(path, deadline, err);
        if (fd < 0)
                return -1;
        return exchange(fd, request, request_len, request_id, deadline, ret, err);
}

static int malformed(jb_err *err, const char *what) {
        return jb_err_set(err, JB_E_INVALID_JSON, "malformed response: %s", what);
}

int client_parse_response(const char *buf, size_t len, const char *request_id, client_response *ret,
                          jb_err *err) {
        client_response r = {};
        jb_err e = JB_ERR_INIT;
        json_object *v;
        char *raw;
        bool has_id;

        r.root = json_parse_strict(buf, len, CLIENT_RESPONSE_MAX_DEPTH, &e);
        if (!r.root) {
                if (!jb_err_isset(&e))          /* a bare null */
                        return malformed(err, "not a JSON object");
                if (streq(e.code, "INTERNAL"))
                        return jb_err_set(err, JB_E_INTERNAL, "%s", e.msg);
                return malformed(err, e.msg);
        }
        if (!json_object_is_type(r.root, json_type_object)) {
                malformed(err, "not a JSON object");
                goto fail;
        }

        if (!json_object_object_get_ex(r.root, "ok", &v) || !json_object_is_type(v, json_type_boolean)) {
                malformed(err, "\"ok\" missing or not a boolean");
                goto fail;
        }
        r.ok = json_object_get_boolean(v);

        has_id = json_object_object_get_ex(r.root, "request_id", &v) && v;
        if (has_id && !json_object_is_type(v, json_type_string)) {
                malformed(err, "\"request_id\" is not a string");
                goto fail;
        }
        if (has_id ? !streq(json_object_get_string(v), request_id) : r.ok) {
                malformed(err, has_id ? "\"request_id\" does not match the request" : "\"request_id\" missing");
                goto fail;
        }

        if (r.ok) {
                if (!json_object_object_get_ex(r.root, "result", &r.result)) {
                        malformed(err, "\"result\" missing");
                        goto fail;
                }
        } else {
                if (!json_object_object_get_ex(r.root, "code", &v) || !json_object_is_type(v, json_type_string) ||
                    !jb_code_valid(json_object_get_string(v))) {
                        malformed(err, "\"code\" missing or not an error code");
                        goto fail;
                }
                r.code = json_object_get_string(v);
                if (!json_object_object_get_ex(r.root, "error", &v) || !json_object_is_type(v, json_type_string)) {
                        malformed(err, "\"error\" missing or not a string");
                        goto fail;
                }
                r.message = json_object_get_string(v);
        }

        raw = malloc(len + 1);
        if (!raw) {
                (void) jb_err_set(err, JB_E_INTERNAL, "out of memory");
                goto fail;
        }
        memcpy(raw, buf, len);
        raw[len] = '\0';
        *ret = r;
        ret->raw = raw;         /* owned by *ret from here */
        ret->raw_len = len;
        return 0;

fail:
        json_object_put(r.root);
        return -1;
}

void client_response_done(client_response *r) {
        if (!r)
                return;
        json_object_put(r->root);
        free(r->raw);
        *r = (client_response) {};
}
