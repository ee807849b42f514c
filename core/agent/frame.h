/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef JABALI_FRAME_H
#define JABALI_FRAME_H

/* The wire framing (docs/protocol.md §Framing): a 4-byte unsigned big-endian
 * length, then exactly that many bytes of JSON. Pure codec plus a bounded
 * input buffer and blocking helpers for clients and tests; the daemon's
 * non-blocking I/O lives in conn.c. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jabali/error.h>

#define FRAME_HEADER_SIZE 4u

typedef enum frame_status {
        FRAME_NEED_MORE = 0,    /* not a whole frame yet */
        FRAME_READY,            /* a whole frame: payload at buf + 4, *ret_len bytes */
        FRAME_TOO_LARGE,        /* announced length > max: close the stream */
        FRAME_EMPTY,            /* announced length 0: INVALID_FRAME, close the stream */
        FRAME_LEGACY,           /* first byte '{': the Go agent's v1 newline dialect (not served) */
} frame_status;

/* Looks at the start of `buf` (`len` bytes available). Needs no more than
 * the header to decide TOO_LARGE/EMPTY/LEGACY, so an oversized frame is
 * refused before any of it is buffered. */
frame_status frame_parse(const uint8_t *buf, size_t len, uint32_t max, uint32_t *ret_len);

void frame_put_header(uint8_t out[FRAME_HEADER_SIZE], uint32_t len);

/* A bounded, growable input buffer. Owns `data`. */
typedef struct fbuf {
        uint8_t *data;
        size_t len;             /* bytes held */
        size_t cap;             /* bytes allocated */
        size_t limit;           /* never grows beyond this */
} fbuf;

void fbuf_init(fbuf *b, size_t limit);
void fbuf_done(fbuf *b);
/* Makes room for at least `want` more bytes (capped at limit); returns the
 * free space at data + len, or 0 when the buffer is at its limit or out of memory. */
size_t fbuf_reserve(fbuf *b, size_t want);
/* Drops the first `n` bytes. */
void fbuf_consume(fbuf *b, size_t n);

/* Blocking helpers (clients, tests). Both retry on EINTR and short I/O and
 * use MSG_NOSIGNAL where the fd is a socket. */
int frame_write_all(int fd, const void *payload, uint32_t len, jb_err *err);
/* Reads one frame of at most `max` bytes into a new NUL-terminated buffer
 * owned by the caller. Returns 1 with a frame, 0 on a clean EOF before any
 * byte, -1 on error (INVALID_FRAME/FRAME_TOO_LARGE/INTERNAL with errno text). */
int frame_read(int fd, uint32_t max, char **ret_buf, uint32_t *ret_len, jb_err *err);

#endif
