/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Named validators. Everything here is length-based and reads no byte
 * beyond s[len - 1]: the input is hostile and need not be NUL-terminated. */

#include <arpa/inet.h>
#include <string.h>

#include <jabali/validate.h>

#define DOMAIN_MAX 253
#define LABEL_MAX 63
#define USERNAME_MAX 32
#define EMAIL_LOCAL_MAX 64
#define EMAIL_MAX 254           /* RFC 5321 forward-path without the angle brackets */
#define IPV4_MAX 15             /* "255.255.255.255" */
#define IPV6_MAX 45             /* INET6_ADDRSTRLEN - 1 */
#define SEGMENT_MAX 255
#define REL_PATH_MAX 4096

static bool fail(const char **why, const char *reason) {
        if (why)
                *why = reason;
        return false;
}

static size_t bad(const char **why, const char *reason) {
        (void) fail(why, reason);
        return 0;
}

static bool is_lower(char c) { return c >= 'a' && c <= 'z'; }
static bool is_upper(char c) { return c >= 'A' && c <= 'Z'; }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* Decodes one UTF-8 sequence at s[0..len) that starts with a non-ASCII
 * byte; returns its length or 0 with *why set. Implements the table of
 * well-formed sequences in Unicode 15 §3.9 (Table 3-7), which excludes
 * overlongs, surrogates and code points above U+10FFFF. */
static size_t utf8_seq(const unsigned char *s, size_t len, const char **why) {
        unsigned char c = s[0], lo = 0x80, hi = 0xBF;
        size_t n;

        if (c < 0xC0)
                return bad(why, "invalid UTF-8: unexpected continuation byte");
        if (c < 0xC2)
                return bad(why, "invalid UTF-8: overlong encoding");
        if (c < 0xE0)
                n = 2;
        else if (c < 0xF0) {
                n = 3;
                if (c == 0xE0)
                        lo = 0xA0;      /* below is overlong */
                else if (c == 0xED)
                        hi = 0x9F;      /* above is U+D800..U+DFFF */
        } else if (c < 0xF5) {
                n = 4;
                if (c == 0xF0)
                        lo = 0x90;      /* below is overlong */
                else if (c == 0xF4)
                        hi = 0x8F;      /* above is > U+10FFFF */
        } else if (c < 0xF8)
                return bad(why, "invalid UTF-8: code point above U+10FFFF");
        else
                return bad(why, "invalid UTF-8: invalid byte");

        if (len < 2)
                return bad(why, "invalid UTF-8: truncated sequence");
        if (s[1] < lo || s[1] > hi) {
                if (s[1] < 0x80 || s[1] > 0xBF)
                        return bad(why, "invalid UTF-8: truncated sequence");
                if (c == 0xED)
                        return bad(why, "invalid UTF-8: encoded surrogate");
                if (c == 0xF4)
                        return bad(why, "invalid UTF-8: code point above U+10FFFF");
                return bad(why, "invalid UTF-8: overlong encoding");
        }
        for (size_t i = 2; i < n; i++)
                if (i >= len || (s[i] & 0xC0) != 0x80)
                        return bad(why, "invalid UTF-8: truncated sequence");
        return n;
}

static bool valid_utf8_text(const char *s, size_t len, bool multiline, const char **why) {
        const unsigned char *u = (const unsigned char *) s;
        size_t i = 0;

        if (!s && len > 0)
                return fail(why, "missing value");

        while (i < len) {
                size_t n;

                if (u[i] == 0x00)
                        return fail(why, "contains a NUL byte");
                if ((u[i] < 0x20 || u[i] == 0x7F) &&
                    !(multiline && (u[i] == '\t' || u[i] == '\n' || u[i] == '\r')))
                        return fail(why, "contains a control character");
                if (u[i] < 0x80) {
                        i++;
                        continue;
                }
                n = utf8_seq(u + i, len - i, why);
                if (n == 0)
                        return false;
                i += n;
        }
        return true;
}

JB_EXPORT bool jb_valid_text(const char *s, size_t len, const char **why) {
        return valid_utf8_text(s, len, false, why);
}

JB_EXPORT bool jb_valid_multiline(const char *s, size_t len, const char **why) {
        return valid_utf8_text(s, len, true, why);
}

/* One label of a host name, s[0..len), already known to hold only
 * [a-z0-9-]. */
static bool valid_label(const char *s, size_t len, const char **why) {
        if (len == 0)
                return fail(why, "empty label");
        if (len > LABEL_MAX)
                return fail(why, "label longer than 63 bytes");
        if (s[0] == '-')
                return fail(why, "label starts with a hyphen");
        /* "??--" is reserved for IDNA (RFC 5891 §4.2.3.1); of those only
         * A-labels ("xn--" plus at least one character) are meaningful. */
        if (len >= 4 && s[2] == '-' && s[3] == '-') {
                if (memcmp(s, "xn", 2) != 0)
                        return fail(why, "'--' in positions 3 and 4 is reserved for IDNA A-labels (xn--...)");
                if (len == 4)
                        return fail(why, "empty IDNA A-label");
        }
        if (s[len - 1] == '-')
                return fail(why, "label ends with a hyphen");
        return true;
}

JB_EXPORT bool jb_valid_domain(const char *s, size_t len, const char **why) {
        size_t i, start = 0, labels = 0;
        bool all_digits = true;

        if (!s || len == 0)
                return fail(why, "empty");

        /* Characters first, so that the reason for a U-label or an
         * upper-case name is the actionable one. */
        for (i = 0; i < len; i++) {
                char c = s[i];

                if ((unsigned char) c >= 0x80)
                        return fail(why, "U-labels are not accepted; send the IDNA A-label (xn--...)");
                if (is_upper(c))
                        return fail(why, "upper-case letters; send the lower-case form");
                if (!is_lower(c) && !is_digit(c) && c != '-' && c != '.')
                        return fail(why, "invalid character (only a-z, 0-9, '-' and '.' are allowed)");
        }
        if (len > DOMAIN_MAX)
                return fail(why, "longer than 253 bytes");
        if (s[len - 1] == '.')
                return fail(why, "trailing dot");

        for (i = 0; i <= len; i++) {
                if (i < len && s[i] != '.') {
                        if (!is_digit(s[i]))
                                all_digits = false;
                        continue;
                }
                if (!valid_label(s + start, i - start, why))
                        return false;
                labels++;
                if (i < len)
                        all_digits = true;
                start = i + 1;
        }
        if (labels < 2)
                return fail(why, "needs at least two labels");
        if (all_digits)
                return fail(why, "top-level label is all digits");
        return true;
}

JB_EXPORT bool jb_valid_username(const char *s, size_t len, const char **why) {
        if (!s || len == 0)
                return fail(why, "empty");
        if (len > USERNAME_MAX)
                return fail(why, "longer than 32 bytes");
        if (!is_lower(s[0]) && s[0] != '_')
                return fail(why, "must start with a lower-case letter or '_'");
        for (size_t i = 1; i < len; i++)
                if (!is_lower(s[i]) && !is_digit(s[i]) && s[i] != '_' && s[i] != '-')
                        return fail(why, "invalid character (only a-z, 0-9, '_' and '-' are allowed)");
        return true;
}

JB_EXPORT bool jb_valid_email_local(const char *s, size_t len, const char **why) {
        if (!s || len == 0)
                return fail(why, "empty local part");
        if (len > EMAIL_LOCAL_MAX)
                return fail(why, "local part longer than 64 bytes");
        for (size_t i = 0; i < len; i++) {
                char c = s[i];

                if (!is_lower(c) && !is_upper(c) && !is_digit(c) &&
                    c != '.' && c != '_' && c != '+' && c != '-')
                        return fail(why, "invalid character in the local part (only A-Z, a-z, 0-9, '.', '_', '+' and '-' are allowed)");
                if (c == '.' && i > 0 && s[i - 1] == '.')
                        return fail(why, "local part contains '..'");
        }
        if (s[0] == '.')
                return fail(why, "local part starts with a dot");
        if (s[len - 1] == '.')
                return fail(why, "local part ends with a dot");
        return true;
}

JB_EXPORT bool jb_valid_email(const char *s, size_t len, const char **why) {
        const char *at;

        if (!s || len == 0)
                return fail(why, "empty");
        if (len > EMAIL_MAX)
                return fail(why, "longer than 254 bytes");
        at = memchr(s, '@', len);
        if (!at)
                return fail(why, "missing '@'");
        if (memchr(at + 1, '@', len - (size_t) (at - s) - 1))
                return fail(why, "more than one '@'");
        if (!jb_valid_email_local(s, (size_t) (at - s), why))
                return false;
        return jb_valid_domain(at + 1, len - (size_t) (at - s) - 1, why);
}

JB_EXPORT bool jb_valid_ipv4(const char *s, size_t len, const char **why) {
        size_t i = 0;

        if (!s || len == 0)
                return fail(why, "empty");
        if (len > IPV4_MAX)
                return fail(why, "not a dotted-quad IPv4 address");

        for (int part = 0; part < 4; part++) {
                size_t start = i;
                unsigned v = 0;

                if (part > 0) {
                        if (i >= len || s[i] != '.')
                                return fail(why, "not a dotted-quad IPv4 address");
                        start = ++i;
                }
                while (i < len && is_digit(s[i]) && i - start < 3)
                        v = v * 10 + (unsigned) (s[i++] - '0');
                if (i == start)
                        return fail(why, "not a dotted-quad IPv4 address");
                if (i < len && is_digit(s[i]))
                        return fail(why, "octet longer than 3 digits");
                if (s[start] == '0' && i - start > 1)
                        return fail(why, "octet with a leading zero");
                if (v > 255)
                        return fail(why, "octet greater than 255");
        }
        if (i != len)
                return fail(why, "not a dotted-quad IPv4 address");
        return true;
}

JB_EXPORT bool jb_valid_ipv6(const char *s, size_t len, const char **why) {
        char buf[IPV6_MAX + 1];
        unsigned char addr[16];

        if (!s || len == 0)
                return fail(why, "empty");
        if (memchr(s, '%', len))
                return fail(why, "zone ids are not accepted");
        if (len > IPV6_MAX)
                return fail(why, "longer than 45 bytes");
        if (memchr(s, '\0', len))
                return fail(why, "contains a NUL byte");
        memcpy(buf, s, len);
        buf[len] = '\0';
        if (inet_pton(AF_INET6, buf, addr) != 1)
                return fail(why, "not an IPv6 address");
        return true;
}

JB_EXPORT bool jb_valid_ip(const char *s, size_t len, const char **why) {
        if (!s || len == 0)
                return fail(why, "empty");
        if (memchr(s, ':', len))
                return jb_valid_ipv6(s, len, why);
        return jb_valid_ipv4(s, len, why);
}

JB_EXPORT bool jb_valid_path_segment(const char *s, size_t len, const char **why) {
        if (!s || len == 0)
                return fail(why, "empty path segment");
        if (len > SEGMENT_MAX)
                return fail(why, "path segment longer than 255 bytes");
        if (memchr(s, '/', len))
                return fail(why, "path segment contains '/'");
        if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
                return fail(why, "path segment is '.' or '..'");
        return jb_valid_text(s, len, why);
}

JB_EXPORT bool jb_valid_rel_path(const char *s, size_t len, const char **why) {
        size_t start = 0;

        if (!s || len == 0)
                return fail(why, "empty");
        if (len > REL_PATH_MAX)
                return fail(why, "longer than 4096 bytes");
        if (s[0] == '/')
                return fail(why, "absolute path (leading '/')");
        if (s[len - 1] == '/')
                return fail(why, "trailing '/'");

        for (size_t i = 0; i <= len; i++) {
                if (i < len && s[i] != '/')
                        continue;
                if (i == start)
                        return fail(why, "empty path segment ('//')");
                if (!jb_valid_path_segment(s + start, i - start, why))
                        return false;
                start = i + 1;
        }
        return true;
}

JB_EXPORT bool jb_valid_token(const char *s, size_t len, const char **why) {
        if (!s || len == 0)
                return fail(why, "empty");
        if (s[0] == '-' || s[0] == '.')
                return fail(why, "starts with '-' or '.'");
        for (size_t i = 0; i < len; i++) {
                char c = s[i];

                if (!is_lower(c) && !is_upper(c) && !is_digit(c) && c != '_' && c != '.' && c != '-')
                        return fail(why, "invalid character (only A-Z, a-z, 0-9, '_', '.' and '-' are allowed)");
        }
        return true;
}

JB_EXPORT bool jb_valid_unit(const char *s, size_t len, const char **why) {
        if (!s || len == 0)
                return fail(why, "empty unit name");
        if (len > 255)
                return fail(why, "unit name longer than 255 bytes");
        if (s[0] == '-' || s[0] == '.')
                return fail(why, "unit name starts with '-' or '.'");
        for (size_t i = 0; i < len; i++) {
                char c = s[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ':' ||
                      c == '_' || c == '.' || c == '@' || c == '-'))
                        return fail(why, "unit name has a character outside [A-Za-z0-9:_.@-]");
        }
        return true;
}
