/* SPDX-License-Identifier: GPL-3.0-or-later */
/* A growable string for the renderers: an allocation failure is
 * remembered and reported once, by mail_buf_take. */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail-internal.h"

static bool grow(mail_buf *b, size_t more) {
        size_t want;
        char *p;

        if (b->oom)
                return false;
        if (more > SIZE_MAX / 2 - b->len) {
                b->oom = true;
                return false;
        }
        want = b->len + more + 1;
        if (want <= b->cap)
                return true;
        if (want < 256)
                want = 256;
        if (want < b->cap * 2)
                want = b->cap * 2;
        p = realloc(b->s, want);
        if (!p) {
                b->oom = true;
                return false;
        }
        b->s = p;
        b->cap = want;
        return true;
}

void mail_buf_add(mail_buf *b, const char *s, size_t n) {
        if (!grow(b, n))
                return;
        memcpy(b->s + b->len, s, n);
        b->len += n;
        b->s[b->len] = '\0';
}

void mail_buf_puts(mail_buf *b, const char *s) {
        mail_buf_add(b, s, strlen(s));
}

void mail_buf_printf(mail_buf *b, const char *fmt, ...) {
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
                b->oom = true;
                return;
        }
        if (!grow(b, (size_t) n))
                return;
        va_start(ap, fmt);
        vsnprintf(b->s + b->len, (size_t) n + 1, fmt, ap);
        va_end(ap);
        b->len += (size_t) n;
}

int mail_buf_take(mail_buf *b, char **out, size_t *len, jb_err *err) {
        if (b->oom || !grow(b, 0)) {
                mail_buf_free(b);
                return jb_err_set(err, JB_E_INTERNAL, "out of memory");
        }
        *out = b->s;
        if (len)
                *len = b->len;
        b->s = NULL;
        b->len = b->cap = 0;
        return 0;
}

void mail_buf_free(mail_buf *b) {
        free(b->s);
        b->s = NULL;
        b->len = b->cap = 0;
        b->oom = false;
}
