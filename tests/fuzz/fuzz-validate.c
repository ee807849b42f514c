/* SPDX-License-Identifier: GPL-3.0-or-later */
/* libFuzzer harness for the named validators of <jabali/validate.h>. Every
 * validator sees the same bytes (libFuzzer's buffer is exactly `size`
 * long, so a read past the end is an ASan report). Each verdict must match
 * a second, independent implementation of the documented rule written
 * here, must not depend on whether `why` is asked for, and must come with a
 * reason exactly when it is a refusal. */

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jabali/validate.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef bool (*validator)(const char *s, size_t len, const char **why);

/* ---- reference rules ---------------------------------------------------- */

static bool in_set(char c, const char *extra) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               (c != '\0' && strchr(extra, c));
}

/* Decodes code points one by one: what a well-formed UTF-8 text is. */
static bool ref_text(const char *s, size_t len, bool multiline) {
        const unsigned char *u = (const unsigned char *) s;

        for (size_t i = 0; i < len; ) {
                uint32_t cp, min;
                size_t n;

                if (u[i] < 0x80) {
                        if (u[i] == 0x7F || (u[i] < 0x20 && !(multiline && u[i] && strchr("\t\n\r", u[i]))))
                                return false;
                        i++;
                        continue;
                }
                if ((u[i] & 0xE0) == 0xC0)
                        n = 2, cp = u[i] & 0x1F, min = 0x80;
                else if ((u[i] & 0xF0) == 0xE0)
                        n = 3, cp = u[i] & 0x0F, min = 0x800;
                else if ((u[i] & 0xF8) == 0xF0)
                        n = 4, cp = u[i] & 0x07, min = 0x10000;
                else
                        return false;
                if (len - i < n)
                        return false;
                for (size_t k = 1; k < n; k++) {
                        if ((u[i + k] & 0xC0) != 0x80)
                                return false;
                        cp = cp << 6 | (u[i + k] & 0x3F);
                }
                if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                        return false;
                i += n;
        }
        return true;
}

static bool ref_label(const char *s, size_t n) {
        if (n < 1 || n > 63 || s[0] == '-' || s[n - 1] == '-')
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
                        return false;
        /* "??--" is reserved for IDNA; only a non-empty "xn--" label passes */
        if (n >= 4 && s[2] == '-' && s[3] == '-' && !(s[0] == 'x' && s[1] == 'n' && n > 4))
                return false;
        return true;
}

static bool ref_domain(const char *s, size_t len) {
        size_t labels = 0, start = 0, last = 0;
        bool digits = true;

        if (len < 1 || len > 253)
                return false;
        for (size_t i = 0; i <= len; i++) {
                if (i < len && s[i] != '.')
                        continue;
                if (!ref_label(s + start, i - start))
                        return false;
                labels++;
                last = start;
                start = i + 1;
        }
        for (size_t i = last; i < len; i++)
                digits = digits && s[i] >= '0' && s[i] <= '9';
        return labels >= 2 && !digits;
}

static bool ref_username(const char *s, size_t len) {
        if (len < 1 || len > 32 || !((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
                return false;
        for (size_t i = 1; i < len; i++)
                if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
                        return false;
        return true;
}

/* dot-atom: atoms of [A-Za-z0-9_+-] joined by single dots */
static bool ref_email_local(const char *s, size_t len) {
        size_t atom = 0;

        if (len < 1 || len > 64)
                return false;
        for (size_t i = 0; i < len; i++) {
                if (s[i] == '.') {
                        if (atom == 0)
                                return false;
                        atom = 0;
                } else if (in_set(s[i], "_+-"))
                        atom++;
                else
                        return false;
        }
        return atom > 0;
}

static bool ref_email(const char *s, size_t len) {
        size_t ats = 0, at = 0;

        if (len > 254)
                return false;
        for (size_t i = 0; i < len; i++)
                if (s[i] == '@')
                        ats++, at = i;
        return ats == 1 && ref_email_local(s, at) && ref_domain(s + at + 1, len - at - 1);
}

static bool ref_ipv4(const char *s, size_t len) {
        size_t parts = 0, i = 0;

        while (parts < 4) {
                size_t start = i;
                unsigned v = 0;

                while (i < len && s[i] >= '0' && s[i] <= '9' && i - start < 4)
                        v = v * 10 + (unsigned) (s[i++] - '0');
                if (i == start || i - start > 3 || v > 255 || (s[start] == '0' && i - start > 1))
                        return false;
                parts++;
                if (parts < 4) {
                        if (i >= len || s[i] != '.')
                                return false;
                        i++;
                }
        }
        return i == len;
}

/* a C string copy, or NULL when the bytes hold a NUL or are too long */
static bool cstr(const char *s, size_t len, char *buf, size_t cap) {
        if (len >= cap || memchr(s, '\0', len))
                return false;
        memcpy(buf, s, len);
        buf[len] = '\0';
        return true;
}

static bool ref_ipv6(const char *s, size_t len) {
        char buf[64];
        unsigned char a[16];

        if (len < 1 || len > 45 || memchr(s, '%', len) || !cstr(s, len, buf, sizeof buf))
                return false;
        return inet_pton(AF_INET6, buf, a) == 1;
}

static bool ref_ip(const char *s, size_t len) {
        return memchr(s, ':', len) ? ref_ipv6(s, len) : ref_ipv4(s, len);
}

static bool ref_path_segment(const char *s, size_t len) {
        if (len < 1 || len > 255 || memchr(s, '/', len))
                return false;
        if ((len == 1 && s[0] == '.') || (len == 2 && memcmp(s, "..", 2) == 0))
                return false;
        return ref_text(s, len, false);
}

static bool ref_rel_path(const char *s, size_t len) {
        size_t start = 0;

        if (len < 1 || len > 4096)
                return false;
        for (size_t i = 0; i <= len; i++)
                if (i == len || s[i] == '/') {
                        if (!ref_path_segment(s + start, i - start))
                                return false;
                        start = i + 1;
                }
        return true;
}

static bool ref_token(const char *s, size_t len) {
        if (len < 1 || s[0] == '-' || s[0] == '.')
                return false;
        for (size_t i = 0; i < len; i++)
                if (!in_set(s[i], "_.-"))
                        return false;
        return true;
}

static bool ref_unit(const char *s, size_t len) {
        if (len < 1 || len > 255 || s[0] == '-' || s[0] == '.')
                return false;
        for (size_t i = 0; i < len; i++)
                if (!in_set(s[i], ":_.@-"))
                        return false;
        return true;
}

static bool ref_text_line(const char *s, size_t len) {
        return ref_text(s, len, false);
}

static bool ref_multiline(const char *s, size_t len) {
        return ref_text(s, len, true);
}

static const struct {
        validator fn;
        bool (*ref)(const char *s, size_t len);
} checks[] = {
        { jb_valid_domain, ref_domain },
        { jb_valid_username, ref_username },
        { jb_valid_email_local, ref_email_local },
        { jb_valid_email, ref_email },
        { jb_valid_ipv4, ref_ipv4 },
        { jb_valid_ipv6, ref_ipv6 },
        { jb_valid_ip, ref_ip },
        { jb_valid_path_segment, ref_path_segment },
        { jb_valid_rel_path, ref_rel_path },
        { jb_valid_token, ref_token },
        { jb_valid_text, ref_text_line },
        { jb_valid_unit, ref_unit },
        { jb_valid_multiline, ref_multiline },
};

/* ---- the run ------------------------------------------------------------ */

static bool one(validator fn, bool (*ref)(const char *, size_t), const char *s, size_t len) {
        static const char untouched[] = "untouched";
        const char *why = untouched;
        bool ok = fn(s, len, &why);

        if (fn(s, len, NULL) != ok || ref(s, len) != ok)
                abort();
        if (ok ? why != untouched : (!why || why == untouched || !why[0] || !jb_valid_text(why, strlen(why), NULL)))
                abort();
        return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *s = (const char *) data;
        bool ok[sizeof checks / sizeof checks[0]];

        for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++)
                ok[i] = one(checks[i].fn, checks[i].ref, s, size);

        /* cross-checks between validators */
        if (ok[4] || ok[5]) {
                char buf[64], back[64];
                unsigned char a[16];
                int af = ok[4] ? AF_INET : AF_INET6;

                /* an accepted address is what the kernel's parser takes;
                 * a dotted quad is even its canonical spelling */
                if (!cstr(s, size, buf, sizeof buf) || inet_pton(af, buf, a) != 1)
                        abort();
                if (ok[4] && (!inet_ntop(AF_INET, a, back, sizeof back) || strcmp(back, buf) != 0))
                        abort();
                if (ok[4] && ok[5])
                        abort();
        }
        if (ok[6] != (ok[4] || ok[5]))
                abort();
        if (ok[10] && !ok[12])          /* text is a subset of multiline */
                abort();
        if ((ok[0] || ok[1] || ok[2] || ok[3] || ok[4] || ok[5] || ok[7] || ok[8] || ok[9] || ok[11]) && !ok[10])
                abort();
        if (ok[7] && !ok[8])            /* a segment is a relative path */
                abort();

        /* the empty string and NULL are refused everywhere but text */
        for (size_t i = 0; size == 0 && i < sizeof checks / sizeof checks[0]; i++) {
                const char *why = NULL;
                bool want = checks[i].fn == jb_valid_text || checks[i].fn == jb_valid_multiline;

                if (checks[i].fn(NULL, 0, &why) != want || checks[i].fn("", 0, &why) != want)
                        abort();
        }
        return 0;
}
