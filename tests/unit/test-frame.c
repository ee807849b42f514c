/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The wire framing: header codec, bounded buffer, blocking helpers over
 * sockets and pipes with hostile delivery patterns. */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "frame.h"
#include "util.h"

static void be(uint8_t *out, uint32_t v) {
        frame_put_header(out, v);
}

static void test_parse(void **state) {
        uint8_t b[64] = {};
        uint32_t n = 77;

        (void) state;
        assert_int_equal(frame_parse(b, 0, 100, &n), FRAME_NEED_MORE);
        assert_int_equal(n, 0);

        /* fewer than 4 bytes: undecided, unless the first is '{' */
        be(b, 5);
        for (size_t i = 1; i < 4; i++) {
                n = 77;
                assert_int_equal(frame_parse(b, i, 100, &n), FRAME_NEED_MORE);
                assert_int_equal(n, 0);
        }
        assert_int_equal(frame_parse((const uint8_t *) "{", 1, 100, &n), FRAME_LEGACY);
        assert_int_equal(frame_parse((const uint8_t *) "{\"", 2, 100, &n), FRAME_LEGACY);
        assert_int_equal(frame_parse((const uint8_t *) "{\"id\":1}\n", 9, 100, &n), FRAME_LEGACY);
        /* even with a limit that would admit 0x7b...... bytes */
        assert_int_equal(frame_parse((const uint8_t *) "{\"id", 4, UINT32_MAX, &n), FRAME_LEGACY);

        /* zero length */
        be(b, 0);
        assert_int_equal(frame_parse(b, 4, 100, &n), FRAME_EMPTY);
        assert_int_equal(n, 0);
        assert_int_equal(frame_parse(b, 40, 100, &n), FRAME_EMPTY);

        /* the size limit, decided from the header alone */
        be(b, 100);
        assert_int_equal(frame_parse(b, 4, 100, &n), FRAME_NEED_MORE);
        assert_int_equal(n, 100);
        be(b, 101);
        assert_int_equal(frame_parse(b, 4, 100, &n), FRAME_TOO_LARGE);
        assert_int_equal(n, 101);
        be(b, UINT32_MAX);
        assert_int_equal(frame_parse(b, 4, 100, &n), FRAME_TOO_LARGE);
        assert_int_equal(frame_parse(b, 4, UINT32_MAX - 1, &n), FRAME_TOO_LARGE);
        assert_int_equal(frame_parse(b, 4, UINT32_MAX, &n), FRAME_NEED_MORE);
        be(b, 1);
        assert_int_equal(frame_parse(b, 4, 0, &n), FRAME_TOO_LARGE);

        /* partial, exact and over-full buffers */
        be(b, 10);
        assert_int_equal(frame_parse(b, 13, 10, &n), FRAME_NEED_MORE);
        assert_int_equal(frame_parse(b, 14, 10, &n), FRAME_READY);
        assert_int_equal(n, 10);
        assert_int_equal(frame_parse(b, 64, 10, &n), FRAME_READY);
        assert_int_equal(n, 10);
        assert_int_equal(frame_parse(b, 14, 10, NULL), FRAME_READY);
        assert_int_equal(frame_parse(b, 13, 9, NULL), FRAME_TOO_LARGE);
}

static void test_header(void **state) {
        uint8_t h[4];
        uint32_t n;
        static const uint32_t values[] = { 0, 1, 0xff, 0x100, 0x7b000000, 8u << 20, UINT32_MAX };

        (void) state;
        frame_put_header(h, 0x01020304);
        assert_memory_equal(h, "\x01\x02\x03\x04", 4);
        frame_put_header(h, 0xfffefdfc);
        assert_memory_equal(h, "\xff\xfe\xfd\xfc", 4);
        for (size_t i = 0; i < ELEMENTSOF(values); i++) {
                uint8_t b[5] = { 0, 0, 0, 0, 'x' };
                frame_put_header(b, values[i]);
                if (b[0] == '{')
                        continue;
                (void) frame_parse(b, 5, UINT32_MAX, &n);
                assert_int_equal(n, values[i]);
        }
}

static void test_fbuf(void **state) {
        fbuf b;
        size_t r;

        (void) state;
        fbuf_init(&b, 1 << 20);
        assert_null(b.data);
        assert_int_equal(b.len, 0);
        r = fbuf_reserve(&b, 1);
        assert_int_equal(r, 4096);
        assert_int_equal(b.cap, 4096);
        memset(b.data, 'a', 4096);
        b.len = 4096;
        assert_int_equal(fbuf_reserve(&b, 1), 4096);          /* doubled */
        assert_int_equal(b.cap, 8192);
        assert_int_equal(fbuf_reserve(&b, 100), 4096);        /* room already there */
        assert_int_equal(fbuf_reserve(&b, 0), 4096);          /* 0 counts as 1 */
        assert_int_equal(fbuf_reserve(&b, 100000), 131072 - 4096);
        assert_int_equal(b.cap, 131072);
        for (size_t i = 0; i < 4096; i++)
                assert_int_equal(b.data[i], 'a');             /* kept across realloc */

        /* capped at the limit, however much is asked for */
        assert_int_equal(fbuf_reserve(&b, SIZE_MAX), (1 << 20) - 4096);
        assert_int_equal(b.cap, 1 << 20);
        assert_int_equal(fbuf_reserve(&b, SIZE_MAX - 1), (1 << 20) - 4096);
        b.len = 1 << 20;
        assert_int_equal(fbuf_reserve(&b, 1), 0);
        assert_int_equal(fbuf_reserve(&b, SIZE_MAX), 0);

        /* consume moves the rest to the front */
        b.data[10] = 'X';
        b.data[(1 << 20) - 1] = 'Y';
        fbuf_consume(&b, 10);
        assert_int_equal(b.len, (1 << 20) - 10);
        assert_int_equal(b.data[0], 'X');
        assert_int_equal(b.data[b.len - 1], 'Y');
        assert_int_equal(fbuf_reserve(&b, 1), 10);
        fbuf_consume(&b, SIZE_MAX);
        assert_int_equal(b.len, 0);
        fbuf_consume(&b, 1);
        assert_int_equal(b.len, 0);
        fbuf_done(&b);
        assert_null(b.data);
        assert_int_equal(b.cap, 0);
        assert_int_equal(b.limit, 1 << 20);
        fbuf_done(&b);                                       /* twice is fine */

        /* a limit below the first step, and an odd one */
        fbuf_init(&b, 100);
        assert_int_equal(fbuf_reserve(&b, 1), 100);
        assert_int_equal(fbuf_reserve(&b, 1000), 100);
        fbuf_done(&b);
        fbuf_init(&b, 10000);
        assert_int_equal(fbuf_reserve(&b, 9000), 10000);
        fbuf_done(&b);
        fbuf_init(&b, 0);
        assert_int_equal(fbuf_reserve(&b, 1), 0);
        assert_null(b.data);
        fbuf_done(&b);

        /* the largest limit: len + want must not wrap */
        fbuf_init(&b, SIZE_MAX);
        assert_int_equal(fbuf_reserve(&b, 10), 4096);
        b.len = 4000;
        assert_int_equal(fbuf_reserve(&b, 96), 96);
        fbuf_done(&b);
}

/* ---- blocking helpers ---- */

typedef struct feeder {
        int fd;
        const uint8_t *data;
        size_t len;
        size_t chunk;           /* bytes per write() */
        bool close_after;
        unsigned delay_ms;      /* before the first write */
        pthread_t thread;
} feeder;

static void sleep_ms(unsigned ms) {
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long) (ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static void *feed(void *p) {
        feeder *f = p;
        sigset_t all;

        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, NULL);
        if (f->delay_ms)
                sleep_ms(f->delay_ms);
        for (size_t i = 0; i < f->len;) {
                size_t n = f->len - i < f->chunk ? f->len - i : f->chunk;
                ssize_t k = send(f->fd, f->data + i, n, MSG_NOSIGNAL);
                if (k < 0 && errno == ENOTSOCK)
                        k = write(f->fd, f->data + i, n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                i += (size_t) k;
        }
        if (f->close_after)
                f->fd = safe_close(f->fd);
        return NULL;
}

static void feed_start_delayed(feeder *f, int fd, const void *data, size_t len, size_t chunk,
                               bool close_after, unsigned delay_ms) {
        *f = (feeder) { .fd = fd, .data = data, .len = len, .chunk = chunk,
                        .close_after = close_after, .delay_ms = delay_ms };
        assert_int_equal(pthread_create(&f->thread, NULL, feed, f), 0);
}

static void feed_start(feeder *f, int fd, const void *data, size_t len, size_t chunk, bool close_after) {
        feed_start_delayed(f, fd, data, len, chunk, close_after, 0);
}

static void feed_join(feeder *f) {
        assert_int_equal(pthread_join(f->thread, NULL), 0);
}

static uint8_t *make_frame(uint32_t header, const char *payload, size_t plen, size_t *ret_len) {
        uint8_t *b = malloc(4 + plen);

        assert_non_null(b);
        frame_put_header(b, header);
        memcpy(b + 4, payload, plen);
        *ret_len = 4 + plen;
        return b;
}

/* SOCK_SEQPACKET keeps each 1-byte send a record of its own, so every
 * read() in frame_read() gets exactly one byte. */
static void test_read_one_byte_at_a_time(void **state) {
        int sv[2];
        feeder f;
        _cleanup_free_ uint8_t *wire = NULL;
        _cleanup_free_ char *buf = NULL;
        uint32_t len = 0;
        size_t wl;
        jb_err err = JB_ERR_INIT;
        static const char msg[] = "{\"request_id\":\"r1\",\"action\":\"agent.ping\"}";

        (void) state;
        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
        wire = make_frame(sizeof(msg) - 1, msg, sizeof(msg) - 1, &wl);
        feed_start(&f, sv[1], wire, wl, 1, true);
        assert_int_equal(frame_read(sv[0], 1024, &buf, &len, &err), 1);
        assert_int_equal(len, sizeof(msg) - 1);
        assert_memory_equal(buf, msg, len);
        assert_int_equal(buf[len], '\0');
        free(TAKE_PTR(buf));
        assert_int_equal(frame_read(sv[0], 1024, &buf, &len, &err), 0);   /* clean EOF */
        assert_null(buf);
        assert_int_equal(len, 0);
        feed_join(&f);
        safe_close(sv[0]);

        /* the same over a stream socket, one byte per write, late, to a
         * non-blocking reader (EAGAIN is waited out) */
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        assert_int_equal(fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK), 0);
        feed_start_delayed(&f, sv[1], wire, wl, 1, true, 20);
        assert_int_equal(frame_read(sv[0], 1024, &buf, &len, &err), 1);
        assert_memory_equal(buf, msg, len);
        feed_join(&f);
        safe_close(sv[0]);
}

static void read_expect(const void *wire, size_t wl, uint32_t max, int want_r,
                        const char *want_code, const char *want_msg, bool close_after) {
        int sv[2];
        feeder f;
        _cleanup_free_ char *buf = NULL;
        uint32_t len = 0;
        jb_err err = JB_ERR_INIT;
        int r;

        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
        feed_start(&f, sv[1], wire, wl, 1, close_after);
        r = frame_read(sv[0], max, &buf, &len, &err);
        if (r != want_r)
                fail_msg("frame_read returned %d (%s: %s), wanted %d", r, err.code, err.msg, want_r);
        if (want_code) {
                assert_null(buf);
                assert_int_equal(len, 0);
                assert_string_equal(err.code, want_code);
                assert_string_equal(err.msg, want_msg);
        }
        feed_join(&f);
        safe_close(sv[0]);
        if (!close_after)
                safe_close(sv[1]);
}

static void test_read_boundaries(void **state) {
        _cleanup_free_ char *payload = malloc(1001);
        _cleanup_free_ uint8_t *wire = NULL;
        size_t wl;

        (void) state;
        assert_non_null(payload);
        memset(payload, 'x', 1001);

        /* exactly max */
        wire = make_frame(1000, payload, 1000, &wl);
        read_expect(wire, wl, 1000, 1, NULL, NULL, true);
        free(TAKE_PTR(wire));

        /* max + 1: refused from the header, before the payload is read */
        wire = make_frame(1001, payload, 1001, &wl);
        read_expect(wire, 4, 1000, -1, "FRAME_TOO_LARGE",
                    "frame of 1001 bytes exceeds the limit of 1000 bytes", false);
        free(TAKE_PTR(wire));

        /* zero length */
        wire = make_frame(0, "", 0, &wl);
        read_expect(wire, wl, 1000, -1, "INVALID_FRAME", "zero-length frame", false);
        free(TAKE_PTR(wire));

        /* truncated payload, truncated header, nothing at all */
        wire = make_frame(10, payload, 5, &wl);
        read_expect(wire, wl, 1000, -1, "INVALID_FRAME", "stream ended inside a frame (5 of 10 bytes)", true);
        read_expect(wire, 4, 1000, -1, "INVALID_FRAME", "stream ended inside a frame (0 of 10 bytes)", true);
        read_expect(wire, 2, 1000, -1, "INVALID_FRAME", "stream ended inside a frame header", true);
        read_expect(wire, 0, 1000, 0, NULL, NULL, true);

        /* the v1 dialect is recognised at its first byte: the peer is left
         * open and has sent only "{", and frame_read must not wait for more */
        read_expect("{", 1, 1000, -1, "INVALID_FRAME",
                    "newline-delimited JSON (protocol v1) is not supported", false);
}

static void test_read_no_overread(void **state) {
        int sv[2];
        _cleanup_free_ uint8_t *a = NULL, *b = NULL;
        uint8_t wire[64];
        size_t al, bl;
        char *buf;
        uint32_t len;
        jb_err err = JB_ERR_INIT;

        (void) state;
        /* two frames and a zero-length one in one write: read one by one */
        a = make_frame(3, "abc", 3, &al);
        b = make_frame(2, "de", 2, &bl);
        memcpy(wire, a, al);
        memcpy(wire + al, b, bl);
        memset(wire + al + bl, 0, 4);
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        assert_int_equal(write(sv[1], wire, al + bl + 4), (ssize_t) (al + bl + 4));
        safe_close(sv[1]);
        assert_int_equal(frame_read(sv[0], 10, &buf, &len, &err), 1);
        assert_string_equal(buf, "abc");
        free(buf);
        assert_int_equal(frame_read(sv[0], 10, &buf, &len, &err), 1);
        assert_string_equal(buf, "de");
        free(buf);
        assert_int_equal(frame_read(sv[0], 10, &buf, &len, &err), -1);
        assert_string_equal(err.msg, "zero-length frame");
        safe_close(sv[0]);

        /* an oversized frame is refused without reading its payload */
        free(TAKE_PTR(a));
        {
                _cleanup_free_ char *big = calloc(1, 1001);
                char rest[2000];

                assert_non_null(big);
                a = make_frame(1001, big, 1001, &al);
                assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
                assert_int_equal(write(sv[1], a, al), (ssize_t) al);
                safe_close(sv[1]);
                assert_int_equal(frame_read(sv[0], 1000, &buf, &len, &err), -1);
                assert_string_equal(err.code, "FRAME_TOO_LARGE");
                assert_int_equal(read(sv[0], rest, sizeof(rest)), 1001);
                safe_close(sv[0]);
        }
}

typedef struct reader {
        int fd;
        uint32_t max;
        unsigned delay_ms;
        int r;
        char *buf;
        uint32_t len;
        jb_err err;
        pthread_t thread;
} reader;

static void *read_thread(void *p) {
        reader *rd = p;
        sigset_t all;

        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, NULL);
        if (rd->delay_ms)
                sleep_ms(rd->delay_ms);
        rd->r = frame_read(rd->fd, rd->max, &rd->buf, &rd->len, &rd->err);
        return NULL;
}

static void reader_start(reader *rd, int fd, uint32_t max, unsigned delay_ms) {
        *rd = (reader) { .fd = fd, .max = max, .delay_ms = delay_ms, .err = JB_ERR_INIT };
        assert_int_equal(pthread_create(&rd->thread, NULL, read_thread, rd), 0);
}

static volatile sig_atomic_t alarms;

#define ALARMS_MAX 10

static void on_alarm(int sig) {
        static const struct itimerval off = {};

        (void) sig;
        /* a bounded number, so that a slow run (valgrind) cannot livelock
         * with every call interrupted before it makes progress */
        if (++alarms >= ALARMS_MAX)
                (void) setitimer(ITIMER_REAL, &off, NULL);
}

/* Interrupts blocking calls of this thread every 2 ms, ALARMS_MAX times
 * (no SA_RESTART), so the helpers must survive EINTR. */
static void alarms_on(void) {
        struct sigaction sa = { .sa_handler = on_alarm };
        struct itimerval it = { .it_interval = { 0, 2000 }, .it_value = { 0, 2000 } };

        alarms = 0;
        assert_int_equal(sigaction(SIGALRM, &sa, NULL), 0);
        assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);
}

static void alarms_off(void) {
        struct itimerval it = {};

        assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);
        signal(SIGALRM, SIG_IGN);
}

static void big_roundtrip(int wfd, int rfd, uint32_t size, bool nonblocking_writer) {
        _cleanup_free_ char *payload = malloc(size);
        reader rd;
        jb_err err = JB_ERR_INIT;

        assert_non_null(payload);
        for (uint32_t i = 0; i < size; i++)
                payload[i] = (char) ('a' + i % 26);
        if (nonblocking_writer)
                assert_int_equal(fcntl(wfd, F_SETFL, fcntl(wfd, F_GETFL) | O_NONBLOCK), 0);
        reader_start(&rd, rfd, size, 30);
        alarms_on();
        if (frame_write_all(wfd, payload, size, &err) < 0)
                fail_msg("frame_write_all: %s", err.msg);
        alarms_off();
        if (size >= (1u << 20))
                assert_true(alarms > 3);        /* the writer did block and get interrupted */
        assert_int_equal(pthread_join(rd.thread, NULL), 0);
        if (rd.r != 1)
                fail_msg("frame_read: %s", rd.err.msg);
        assert_int_equal(rd.len, size);
        assert_memory_equal(rd.buf, payload, size);
        free(rd.buf);
}

static void test_write_all(void **state) {
        int sv[2], p[2];

        (void) state;
        /* 4 MiB through a socket: many short writes, EINTR on the way */
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        big_roundtrip(sv[1], sv[0], 4u << 20, false);
        /* a non-blocking writer: EAGAIN is waited out */
        big_roundtrip(sv[1], sv[0], 1u << 20, true);
        safe_close(sv[0]);
        safe_close(sv[1]);

        /* a pipe is not a socket: the write() path */
        assert_int_equal(pipe(p), 0);
        big_roundtrip(p[1], p[0], 1u << 20, false);
        big_roundtrip(p[1], p[0], 1u, false);
        safe_close(p[0]);
        safe_close(p[1]);
}

static void test_read_eintr(void **state) {
        int sv[2];
        feeder f;
        _cleanup_free_ uint8_t *wire = NULL;
        _cleanup_free_ char *buf = NULL;
        uint32_t len;
        size_t wl;
        jb_err err = JB_ERR_INIT;

        (void) state;
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        wire = make_frame(5, "hello", 5, &wl);
        /* the bytes come late and slowly: alarms land while frame_read blocks */
        feed_start_delayed(&f, sv[1], wire, wl, 1, true, 30);
        alarms_on();
        assert_int_equal(frame_read(sv[0], 5, &buf, &len, &err), 1);
        alarms_off();
        assert_true(alarms > 5);
        assert_string_equal(buf, "hello");
        feed_join(&f);
        safe_close(sv[0]);
}

static void test_write_errors(void **state) {
        int sv[2], p[2];
        jb_err err = JB_ERR_INIT;
        char *buf = NULL;
        uint32_t len;

        (void) state;
        /* the peer is gone: EPIPE, and no SIGPIPE (it would kill this test) */
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        safe_close(sv[0]);
        assert_int_equal(frame_write_all(sv[1], "x", 1, &err), -1);
        assert_string_equal(err.code, "INTERNAL");
        assert_string_equal(err.msg, "write: Broken pipe");
        safe_close(sv[1]);

        assert_int_equal(frame_write_all(-1, "x", 1, &err), -1);
        assert_string_equal(err.msg, "write: Bad file descriptor");
        assert_int_equal(frame_read(-1, 10, &buf, &len, &err), -1);
        assert_string_equal(err.msg, "read: Bad file descriptor");
        assert_null(buf);
        assert_int_equal(frame_write_all(1, NULL, 1, &err), -1);
        assert_string_equal(err.code, "INTERNAL");

        /* a zero-length frame can be written (to test peers that refuse it) */
        assert_int_equal(pipe(p), 0);
        assert_int_equal(frame_write_all(p[1], NULL, 0, &err), 0);
        assert_int_equal(frame_read(p[0], 10, &buf, &len, &err), -1);
        assert_string_equal(err.code, "INVALID_FRAME");
        /* err may be NULL */
        assert_int_equal(frame_write_all(-1, "x", 1, NULL), -1);
        safe_close(p[0]);
        safe_close(p[1]);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse),
                cmocka_unit_test(test_header),
                cmocka_unit_test(test_fbuf),
                cmocka_unit_test(test_read_one_byte_at_a_time),
                cmocka_unit_test(test_read_boundaries),
                cmocka_unit_test(test_read_no_overread),
                cmocka_unit_test(test_write_all),
                cmocka_unit_test(test_read_eintr),
                cmocka_unit_test(test_write_errors),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
