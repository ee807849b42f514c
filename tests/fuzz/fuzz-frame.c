/* SPDX-License-Identifier: GPL-3.0-or-later */
/* libFuzzer harness for the framing. Input: 3 bytes of limit, 1 byte of
 * chunk size, then the stream. The stream is cut into frames twice, by the
 * daemon-style fbuf + frame_parse loop and by frame_read() from a pipe,
 * and both must see the same frames and the same ending. */

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frame.h"

#define MAX_FRAMES 256

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct seen {
        size_t n;
        size_t off[MAX_FRAMES];         /* payload offsets in the stream */
        uint32_t len[MAX_FRAMES];
        frame_status end;               /* NEED_MORE: clean or truncated end */
        size_t rest;                    /* bytes left unparsed at the end */
} seen;

/* The non-blocking daemon's way: bounded buffer, chunked input. */
static void cut_with_fbuf(const uint8_t *s, size_t n, uint32_t max, size_t chunk, seen *out) {
        fbuf b;
        size_t fed = 0, consumed = 0;

        fbuf_init(&b, (size_t) max + FRAME_HEADER_SIZE);
        out->end = FRAME_NEED_MORE;
        for (;;) {
                uint32_t len;
                frame_status st = frame_parse(b.data, b.len, max, &len);

                if (st == FRAME_READY) {
                        if (len == 0 || len > max || b.len < FRAME_HEADER_SIZE + (size_t) len)
                                abort();
                        if (out->n < MAX_FRAMES) {
                                out->off[out->n] = consumed + FRAME_HEADER_SIZE;
                                out->len[out->n] = len;
                        }
                        if (memcmp(b.data + FRAME_HEADER_SIZE, s + consumed + FRAME_HEADER_SIZE, len) != 0)
                                abort();
                        out->n++;
                        fbuf_consume(&b, FRAME_HEADER_SIZE + (size_t) len);
                        consumed += FRAME_HEADER_SIZE + (size_t) len;
                        continue;
                }
                if (st != FRAME_NEED_MORE) {
                        out->end = st;
                        break;
                }
                if (fed == n)
                        break;
                size_t room = fbuf_reserve(&b, chunk);
                if (room == 0)
                        abort();        /* a frame within the limit always fits */
                size_t k = n - fed < room ? n - fed : room;
                if (k > chunk)
                        k = chunk;
                memcpy(b.data + b.len, s + fed, k);
                b.len += k;
                fed += k;
                if (b.len > b.limit || b.cap > b.limit)
                        abort();
        }
        out->rest = n - consumed;
        fbuf_done(&b);
}

/* The blocking client's way. */
static void cut_with_read(const uint8_t *s, size_t n, uint32_t max, const seen *want) {
        int p[2];
        size_t i = 0;

        if (pipe(p) < 0)
                return;
        if (write(p[1], s, n) != (ssize_t) n)
                abort();
        close(p[1]);
        for (;;) {
                char *buf;
                uint32_t len;
                jb_err err = JB_ERR_INIT;
                int r = frame_read(p[0], max, &buf, &len, &err);

                if (r == 1) {
                        if (i >= want->n || buf[len] != '\0')
                                abort();
                        if (i < MAX_FRAMES &&
                            (len != want->len[i] || memcmp(buf, s + want->off[i], len) != 0))
                                abort();
                        free(buf);
                        i++;
                        continue;
                }
                if (buf || len || i != want->n)
                        abort();
                if (r == 0 && !(want->end == FRAME_NEED_MORE && want->rest == 0))
                        abort();
                if (r < 0) {
                        const char *code = want->end == FRAME_TOO_LARGE ? "FRAME_TOO_LARGE" : "INVALID_FRAME";
                        if (strcmp(err.code, code) != 0)
                                abort();
                        if (want->end == FRAME_NEED_MORE && want->rest == 0)
                                abort();
                }
                break;
        }
        close(p[0]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        seen cut = {};
        uint32_t max;
        size_t chunk;
        uint8_t h[FRAME_HEADER_SIZE];
        uint32_t back;

        if (size < 4)
                return 0;
        /* limits up to 64 KiB, so that a stream fits a pipe */
        max = ((uint32_t) data[0] << 16 | (uint32_t) data[1] << 8 | data[2]) % 65537;
        chunk = (size_t) data[3] + 1;
        data += 4;
        size -= 4;

        cut_with_fbuf(data, size, max, chunk, &cut);
        if (size <= 60000)
                cut_with_read(data, size, max, &cut);

        frame_put_header(h, (uint32_t) size | 1);
        if (frame_parse(h, sizeof(h), UINT32_MAX, &back) != FRAME_LEGACY && back != ((uint32_t) size | 1))
                abort();
        return 0;
}
