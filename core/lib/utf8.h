/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef JABALI_UTF8_H
#define JABALI_UTF8_H

/* Private (not installed): the one definition of a well-formed UTF-8
 * sequence, shared by the validators, the JSON checker, the audit writer,
 * spawn's message trimming and the template escapers. */

#include <stddef.h>

/* Length (1-4) of the well-formed UTF-8 sequence at s, of which n bytes are
 * readable, or 0: RFC 3629 / Unicode §3.9 Table 3-7, so no overlong forms,
 * no surrogates (U+D800..U+DFFF), nothing above U+10FFFF. */
static inline size_t utf8_seq_len(const unsigned char *s, size_t n) {
        unsigned char c, lo = 0x80, hi = 0xBF;
        size_t len;

        if (n == 0)
                return 0;
        c = s[0];
        if (c < 0x80)
                return 1;
        if (c >= 0xC2 && c <= 0xDF)
                len = 2;
        else if (c >= 0xE0 && c <= 0xEF) {
                len = 3;
                if (c == 0xE0)
                        lo = 0xA0;      /* below is overlong */
                else if (c == 0xED)
                        hi = 0x9F;      /* above is a surrogate */
        } else if (c >= 0xF0 && c <= 0xF4) {
                len = 4;
                if (c == 0xF0)
                        lo = 0x90;      /* below is overlong */
                else if (c == 0xF4)
                        hi = 0x8F;      /* above is beyond U+10FFFF */
        } else
                return 0;
        if (n < len || s[1] < lo || s[1] > hi)
                return 0;
        for (size_t i = 2; i < len; i++)
                if (s[i] < 0x80 || s[i] > 0xBF)
                        return 0;
        return len;
}

#endif
