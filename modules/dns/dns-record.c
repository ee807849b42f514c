/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Names and record content: every record of a request is checked and put
 * into the presentation form PowerDNS stores and answers with, so that the
 * desired zone and the one pdns holds compare byte for byte. Pure: no I/O. */

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jabali/validate.h>

#include "dns-internal.h"

#define NAME_TEXT_MAX 253       /* presentation length without the final dot */
#define LABEL_MAX 63

static int bad(jb_err *err, const char *msg) {
        return jb_err_set(err, JB_E_INVALID_PARAMS, "%s", msg);
}

void dns_limits_default(dns_limits *l) {
        *l = (dns_limits) {
                .min_ttl = 60, .max_ttl = 604800, .default_ttl = 3600, .max_records = 5000,
                .soa_rname = "hostmaster.@", .soa_refresh = 10800, .soa_retry = 3600,
                .soa_expire = 604800, .soa_minimum = 3600,
        };
}

/* ---- names ---- */

static bool is_ldh(char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

/* One label of a host name, already folded to lower case. Underscores are
 * allowed (service labels: _dmarc, _sip._tcp, DKIM selectors). */
static const char *label_problem(const char *l, size_t n) {
        bool underscore = false;

        if (n == 0)
                return "empty label";
        if (n > LABEL_MAX)
                return "label longer than 63 bytes";
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char) l[i];
                if (c >= 0x80)
                        return "non-ASCII label: send the IDNA A-label (xn--...)";
                if (c == '_')
                        underscore = true;
                else if (!is_ldh((char) c))
                        return c == '*' ? "'*' is allowed only as the whole first label" :
                                          "label holds a character other than a-z, 0-9, '-' and '_'";
        }
        if (l[0] == '-' || l[n - 1] == '-')
                return "label starts or ends with '-'";
        /* IDNA2008 reserves "??--" labels for A-labels ("xn--"). */
        if (!underscore && n >= 4 && l[2] == '-' && l[3] == '-') {
                if (strncmp(l, "xn--", 4) != 0)
                        return "'--' in positions 3-4 is reserved for IDNA A-labels (xn--)";
                if (n == 4)
                        return "empty IDNA A-label";
        }
        return NULL;
}

/* Folds s (len bytes, no final dot) to lower case into out and checks its
 * labels; a "*" first label only when wildcard. Returns the length. */
static int fold_name(const char *s, size_t len, bool wildcard, char *out, size_t size, jb_err *err) {
        const char *why;
        size_t start = 0;

        if (len == 0)
                return bad(err, "empty name");
        if (len > NAME_TEXT_MAX || len >= size)
                return bad(err, "name longer than 253 bytes");
        for (size_t i = 0; i < len; i++)
                out[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char) (s[i] - 'A' + 'a') : s[i];
        out[len] = '\0';
        for (size_t i = 0; i <= len; i++) {
                if (i < len && out[i] != '.')
                        continue;
                if (start == 0 && i == 1 && out[0] == '*' && wildcard) {
                        start = i + 1;
                        continue;
                }
                why = label_problem(out + start, i - start);
                if (why)
                        return bad(err, why);
                start = i + 1;
        }
        return (int) len;
}

int dns_zone_fqdn(const char *zone, char out[DNS_NAME_MAX], jb_err *err) {
        size_t len = strlen(zone);
        int n = fold_name(zone, len, false, out, DNS_NAME_MAX - 1, err);

        if (n < 0)
                return -1;
        out[n] = '.';
        out[n + 1] = '\0';
        return 0;
}

/* True when fqdn (with final dot) is zone_fqdn or beneath it. */
static bool in_zone(const char *fqdn, const char *zone_fqdn) {
        size_t n = strlen(fqdn), z = strlen(zone_fqdn);

        if (n == z)
                return strcmp(fqdn, zone_fqdn) == 0;
        return n > z && fqdn[n - z - 1] == '.' && strcmp(fqdn + n - z, zone_fqdn) == 0;
}

/* s without a final dot, folded: equal to the zone or ending in ".zone". */
static bool ends_in_zone(const char *folded, const char *zone_fqdn) {
        char tmp[DNS_NAME_MAX + 1];
        size_t n = strlen(folded);

        if (n + 2 > sizeof tmp)
                return false;
        memcpy(tmp, folded, n);
        tmp[n] = '.';
        tmp[n + 1] = '\0';
        return in_zone(tmp, zone_fqdn);
}

static int append_dot(char *out, size_t n, jb_err *err) {
        if (n + 2 > DNS_NAME_MAX)
                return bad(err, "name longer than 253 bytes");
        out[n] = '.';
        out[n + 1] = '\0';
        return 0;
}

int dns_owner_name(const char *zone_fqdn, const char *name, char out[DNS_NAME_MAX], jb_err *err) {
        size_t len = strlen(name), zl = strlen(zone_fqdn);
        char folded[DNS_NAME_MAX];
        int n;

        if (strcmp(name, "@") == 0) {
                memcpy(out, zone_fqdn, zl + 1);
                return 0;
        }
        if (len > 0 && name[len - 1] == '.') {
                n = fold_name(name, len - 1, true, folded, sizeof folded, err);
                if (n < 0 || append_dot(folded, (size_t) n, err) < 0)
                        return -1;
                if (!in_zone(folded, zone_fqdn))
                        return bad(err, "absolute name outside the zone");
                memcpy(out, folded, strlen(folded) + 1);
                return 0;
        }
        n = fold_name(name, len, true, folded, sizeof folded, err);
        if (n < 0)
                return -1;
        if (ends_in_zone(folded, zone_fqdn))
                return append_dot(memcpy(out, folded, (size_t) n + 1), (size_t) n, err);
        /* Relative: name + "." + zone. */
        if ((size_t) n + 1 + zl > NAME_TEXT_MAX + 1)
                return bad(err, "name longer than 253 bytes within the zone");
        memcpy(out, folded, (size_t) n);
        out[n] = '.';
        memcpy(out + n + 1, zone_fqdn, zl + 1);
        return 0;
}

int dns_target_name(const char *zone_fqdn, const char *s, bool allow_root, char out[DNS_NAME_MAX], jb_err *err) {
        size_t len = strlen(s);
        int n;

        if (strcmp(s, "@") == 0) {
                memcpy(out, zone_fqdn, strlen(zone_fqdn) + 1);
                return 0;
        }
        if (strcmp(s, ".") == 0) {
                if (!allow_root)
                        return bad(err, "the root name '.' is not a valid target here");
                memcpy(out, ".", 2);
                return 0;
        }
        if (len > 0 && s[len - 1] == '.')
                len--;
        n = fold_name(s, len, false, out, DNS_NAME_MAX, err);
        if (n < 0)
                return -1;
        if (!memchr(out, '.', (size_t) n))
                return bad(err, "target must be a fully-qualified name (or @)");
        return append_dot(out, (size_t) n, err);
}

/* ---- numbers and words ---- */

/* A decimal without sign or leading zeros, within [0, max]. */
static bool parse_uint(const char *s, size_t n, uint64_t max, uint64_t *out) {
        uint64_t v = 0;

        if (n == 0 || n > 20 || (n > 1 && s[0] == '0'))
                return false;
        for (size_t i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return false;
                if (v > (UINT64_MAX - 9) / 10)
                        return false;
                v = v * 10 + (uint64_t) (s[i] - '0');
        }
        if (v > max)
                return false;
        *out = v;
        return true;
}

/* Splits s on single spaces into at most max words; the last one takes
 * the rest of the line when rest_last. Returns the count, or -1 when
 * there are more words, or any empty one (double, leading, trailing
 * spaces). */
static int words(const char *s, const char **w, size_t *wl, int max, bool rest_last) {
        int k = 0;
        const char *p = s;

        while (*p) {
                const char *e;

                if (k == max)
                        return -1;
                if (rest_last && k == max - 1) {
                        w[k] = p;
                        wl[k++] = strlen(p);
                        return k;
                }
                e = strchr(p, ' ');
                if (!e)
                        e = p + strlen(p);
                if (e == p)
                        return -1;
                w[k] = p;
                wl[k++] = (size_t) (e - p);
                if (*e == '\0')
                        break;
                p = e + 1;
                if (*p == '\0')
                        return -1;
        }
        return k;
}

static bool is_hex(const char *s, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') || (s[i] >= 'A' && s[i] <= 'F')))
                        return false;
        return n > 0;
}

static void lower_hex(char *dst, const char *s, size_t n) {
        for (size_t i = 0; i < n; i++)
                dst[i] = (s[i] >= 'A' && s[i] <= 'F') ? (char) (s[i] - 'A' + 'a') : s[i];
        dst[n] = '\0';
}

static int dup_fmt(char **out, jb_err *err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int dup_fmt(char **out, jb_err *err, const char *fmt, ...) {
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(out, fmt, ap);
        va_end(ap);
        if (r < 0) {
                *out = NULL;
                return jb_err_set(err, JB_E_INTERNAL, "out of memory");
        }
        return 0;
}

/* ---- TXT ---- */

/* Length of the UTF-8 sequence starting at p when it is well formed and
 * fits in n bytes, else 1 (the schema refused ill-formed text already;
 * this only keeps a split from cutting a character in two). */
static size_t utf8_len(const unsigned char *p, size_t n) {
        size_t k = *p < 0x80 ? 1 : (*p & 0xE0) == 0xC0 ? 2 : (*p & 0xF0) == 0xE0 ? 3 : (*p & 0xF8) == 0xF0 ? 4 : 1;

        if (k > n)
                return 1;
        for (size_t i = 1; i < k; i++)
                if ((p[i] & 0xC0) != 0x80)
                        return 1;
        return k;
}

int dns_txt_encode(const char *s, size_t len, char **out, jb_err *err) {
        /* Each byte takes at most 4 ("\DDD"), each chunk 3 more (quotes, space). */
        size_t chunks = len / DNS_TXT_CHUNK + 1;
        size_t cap = len * 4 + chunks * 3 + 1, o = 0, i = 0;
        const unsigned char *u = (const unsigned char *) s;
        char *buf = malloc(cap);

        if (!buf)
                return jb_err_set(err, JB_E_INTERNAL, "out of memory");
        do {
                size_t used = 0;

                if (o > 0)
                        buf[o++] = ' ';
                buf[o++] = '"';
                while (i < len) {
                        size_t k = utf8_len(u + i, len - i);

                        if (used + k > DNS_TXT_CHUNK)
                                break;
                        for (size_t j = 0; j < k; j++, i++) {
                                unsigned char c = u[i];
                                if (c < 0x20 || c >= 0x7f)
                                        o += (size_t) snprintf(buf + o, cap - o, "\\%03u", c);
                                else {
                                        if (c == '"' || c == '\\')
                                                buf[o++] = '\\';
                                        buf[o++] = (char) c;
                                }
                        }
                        used += k;
                }
                buf[o++] = '"';
        } while (i < len);
        buf[o] = '\0';
        *out = buf;
        return 0;
}

/* ---- content per type ---- */

static int c_ipv4(const char *content, char **out, jb_err *err) {
        const char *why;

        if (!jb_valid_ipv4(content, strlen(content), &why))
                return jb_err_set(err, JB_E_INVALID_PARAMS, "not an IPv4 address: %s", why);
        return dup_fmt(out, err, "%s", content);
}

static int c_ipv6(const char *content, char **out, jb_err *err) {
        unsigned char a[16];
        char buf[INET6_ADDRSTRLEN];
        const char *why;

        if (!jb_valid_ipv6(content, strlen(content), &why))
                return jb_err_set(err, JB_E_INVALID_PARAMS, "not an IPv6 address: %s", why);
        if (inet_pton(AF_INET6, content, a) != 1 || !inet_ntop(AF_INET6, a, buf, sizeof buf))
                return bad(err, "not an IPv6 address");
        return dup_fmt(out, err, "%s", buf);
}

static int c_target(const char *zone, const char *content, char **out, jb_err *err) {
        char t[DNS_NAME_MAX];

        if (dns_target_name(zone, content, false, t, err) < 0)
                return -1;
        return dup_fmt(out, err, "%s", t);
}

static int c_mx(const char *zone, const char *content, int64_t prio, char **out, jb_err *err) {
        char t[DNS_NAME_MAX];

        if (dns_target_name(zone, content, true, t, err) < 0)
                return -1;
        if (strcmp(t, ".") == 0 && prio != 0)
                return bad(err, "a null MX (\".\") must have priority 0");
        return dup_fmt(out, err, "%lld %s", (long long) prio, t);
}

static int c_srv(const char *zone, const char *content, int64_t prio, char **out, jb_err *err) {
        const char *w[3];
        size_t wl[3];
        uint64_t weight, port;
        char host[DNS_NAME_MAX], t[DNS_NAME_MAX];

        if (words(content, w, wl, 3, false) != 3)
                return bad(err, "SRV content must be \"weight port target\"");
        if (!parse_uint(w[0], wl[0], 65535, &weight) || !parse_uint(w[1], wl[1], 65535, &port))
                return bad(err, "SRV weight and port must be 0..65535");
        if (wl[2] >= sizeof host)
                return bad(err, "name longer than 253 bytes");
        memcpy(host, w[2], wl[2]);
        host[wl[2]] = '\0';
        if (dns_target_name(zone, host, true, t, err) < 0)
                return -1;
        return dup_fmt(out, err, "%lld %llu %llu %s", (long long) prio, (unsigned long long) weight,
                       (unsigned long long) port, t);
}

/* CAA: "flags tag value", the value quoted or not; PowerDNS wants it quoted. */
static int c_caa(const char *content, char **out, jb_err *err) {
        const char *w[3];
        size_t wl[3];
        uint64_t flags;
        char tag[16];
        const char *v;
        size_t vl;

        if (words(content, w, wl, 3, true) != 3)
                return bad(err, "CAA content must be \"flags tag value\"");
        if (!parse_uint(w[0], wl[0], 255, &flags))
                return bad(err, "CAA flags must be 0..255");
        if (wl[1] == 0 || wl[1] >= sizeof tag)
                return bad(err, "CAA tag must be 1..15 letters and digits");
        for (size_t i = 0; i < wl[1]; i++) {
                char c = w[1][i];
                if (c >= 'A' && c <= 'Z')
                        c = (char) (c - 'A' + 'a');
                if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
                        return bad(err, "CAA tag must be 1..15 letters and digits");
                tag[i] = c;
        }
        tag[wl[1]] = '\0';
        v = w[2];
        vl = wl[2];
        if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"')
                v++, vl -= 2;
        for (size_t i = 0; i < vl; i++)
                if ((unsigned char) v[i] < 0x20 || (unsigned char) v[i] >= 0x7f || v[i] == '"' || v[i] == '\\')
                        return bad(err, "CAA value must be printable ASCII without '\"' or '\\'");
        return dup_fmt(out, err, "%llu %s \"%.*s\"", (unsigned long long) flags, tag, (int) vl, v);
}

/* TLSA "usage selector matching hex" and DS "keytag algorithm digesttype
 * hex": three numbers and a hex string whose length the third may fix. */
static int c_hexrec(const char *type, const char *content, char **out, jb_err *err) {
        bool ds = strcmp(type, "DS") == 0;
        const uint64_t max[3] = { ds ? 65535 : 3, ds ? 255 : 1, ds ? 255 : 2 };
        const char *w[4];
        size_t wl[4], need = 0;
        uint64_t n[3];
        char *hex;
        int r;

        if (words(content, w, wl, 4, false) != 4)
                return bad(err, ds ? "DS content must be \"keytag algorithm digesttype digest\"" :
                                          "TLSA content must be \"usage selector matchingtype data\"");
        for (int i = 0; i < 3; i++)
                if (!parse_uint(w[i], wl[i], max[i], &n[i]))
                        return bad(err, ds ? "DS keytag 0..65535, algorithm and digest type 0..255" :
                                                  "TLSA usage 0..3, selector 0..1, matching type 0..2");
        if (ds)
                need = n[2] == 1 ? 40 : n[2] == 2 ? 64 : n[2] == 4 ? 96 : 0;
        else
                need = n[2] == 1 ? 64 : n[2] == 2 ? 128 : 0;
        if (ds && need == 0)
                return bad(err, "DS digest type must be 1 (SHA-1), 2 (SHA-256) or 4 (SHA-384)");
        if (!is_hex(w[3], wl[3]) || wl[3] % 2 != 0)
                return bad(err, "data must be an even number of hex digits");
        if (need && wl[3] != need)
                return bad(err, "digest length does not match its type");
        hex = malloc(wl[3] + 1);
        if (!hex)
                return jb_err_set(err, JB_E_INTERNAL, "out of memory");
        lower_hex(hex, w[3], wl[3]);
        r = dup_fmt(out, err, "%llu %llu %llu %s", (unsigned long long) n[0], (unsigned long long) n[1],
                    (unsigned long long) n[2], hex);
        free(hex);
        return r;
}

int dns_record_content(const char *zone, const char *type, const char *content, int64_t prio, char **out,
                       jb_err *err) {
        bool wants_prio = strcmp(type, "MX") == 0 || strcmp(type, "SRV") == 0;
        const char *why;

        *out = NULL;
        if (!jb_valid_text(content, strlen(content), &why))
                return bad(err, why);
        if (wants_prio && prio < 0)
                return jb_err_set(err, JB_E_INVALID_PARAMS, "%s needs a priority (0..65535)", type);
        if (!wants_prio && prio >= 0)
                return jb_err_set(err, JB_E_INVALID_PARAMS, "priority applies to MX and SRV only, not %s", type);
        if (prio > 65535)
                return bad(err, "priority must be 0..65535");
        if (strcmp(type, "A") == 0)
                return c_ipv4(content, out, err);
        if (strcmp(type, "AAAA") == 0)
                return c_ipv6(content, out, err);
        if (strcmp(type, "CNAME") == 0 || strcmp(type, "NS") == 0 || strcmp(type, "PTR") == 0)
                return c_target(zone, content, out, err);
        if (strcmp(type, "MX") == 0)
                return c_mx(zone, content, prio, out, err);
        if (strcmp(type, "SRV") == 0)
                return c_srv(zone, content, prio, out, err);
        if (strcmp(type, "TXT") == 0)
                return dns_txt_encode(content, strlen(content), out, err);
        if (strcmp(type, "CAA") == 0)
                return c_caa(content, out, err);
        if (strcmp(type, "TLSA") == 0 || strcmp(type, "DS") == 0)
                return c_hexrec(type, content, out, err);
        return jb_err_set(err, JB_E_INVALID_PARAMS, "record type %s is not supported", type);
}
