/* SPDX-License-Identifier: GPL-3.0-or-later */
/* What the schema cannot check: password hash formats, the module's
 * narrower local parts, dates. Pure functions, unit-tested with hostile
 * input (tests/unit/test-mail.c). */

#include <string.h>

#include <jabali/validate.h>

#include "mail-internal.h"

/* crypt(3)'s alphabet: [./0-9A-Za-z]. */
static bool crypt64(char c) {
        return c == '.' || c == '/' || (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* Standard base64 without padding, as PHC strings use it. */
static bool b64(char c) {
        return c == '+' || c == '/' || (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static size_t span(const char *s, bool (*ok)(char)) {
        size_t n = 0;
        while (s[n] && ok(s[n]))
                n++;
        return n;
}

/* A decimal without sign or leading zero, within lo..hi; advances *p. */
static bool number(const char **p, unsigned long lo, unsigned long hi) {
        const char *s = *p;
        unsigned long v = 0;
        size_t n = 0;

        if (s[0] == '0' && s[1] >= '0' && s[1] <= '9')
                return false;
        while (s[n] >= '0' && s[n] <= '9') {
                if (n >= 10)
                        return false;
                v = v * 10 + (unsigned long) (s[n] - '0');
                n++;
        }
        if (n == 0 || v < lo || v > hi)
                return false;
        *p = s + n;
        return true;
}

/* $6$[rounds=N$]salt$hash: salt 1..16, hash 86 characters of crypt64. */
static bool sha512_crypt(const char *h, const char **why) {
        const char *p = h + 3;
        size_t n;

        if (strncmp(p, "rounds=", 7) == 0) {
                p += 7;
                if (!number(&p, 1000, 999999999) || *p++ != '$')
                        return *why = "SHA512-CRYPT: bad rounds= (1000..999999999)", false;
        }
        n = span(p, crypt64);
        if (n < 1 || n > 16 || p[n] != '$')
                return *why = "SHA512-CRYPT: the salt must be 1..16 characters of [./0-9A-Za-z]", false;
        p += n + 1;
        n = span(p, crypt64);
        if (n != 86 || p[n] != '\0')
                return *why = "SHA512-CRYPT: the hash must be 86 characters of [./0-9A-Za-z]", false;
        return true;
}

/* $2a$|$2b$|$2y$, a cost 04..31 in two digits, 22 salt + 31 hash characters. */
static bool bcrypt(const char *h, const char **why) {
        const char *p = h + 4;
        int cost;

        if (!(p[0] >= '0' && p[0] <= '3' && p[1] >= '0' && p[1] <= '9' && p[2] == '$'))
                return *why = "bcrypt: the cost must be two digits", false;
        cost = (p[0] - '0') * 10 + (p[1] - '0');
        if (cost < 4 || cost > 31)
                return *why = "bcrypt: the cost must be 04..31", false;
        p += 3;
        if (span(p, crypt64) != 53 || p[53] != '\0')
                return *why = "bcrypt: salt and hash must be 53 characters of [./0-9A-Za-z]", false;
        return true;
}

/* $argon2id$v=19$m=M,t=T,p=P$salt$hash (PHC string format). */
static bool argon2id(const char *h, const char **why) {
        const char *p = h + 10;
        size_t n;

        if (strncmp(p, "v=19$m=", 7) != 0)
                return *why = "argon2id: expected v=19$m=...", false;
        p += 7;
        if (!number(&p, 8, 4194304) || strncmp(p, ",t=", 3) != 0)
                return *why = "argon2id: bad m= (8..4194304 KiB)", false;
        p += 3;
        if (!number(&p, 1, 1000) || strncmp(p, ",p=", 3) != 0)
                return *why = "argon2id: bad t= (1..1000)", false;
        p += 3;
        if (!number(&p, 1, 255) || *p++ != '$')
                return *why = "argon2id: bad p= (1..255)", false;
        n = span(p, b64);
        if (n < 11 || n > 86 || p[n] != '$')
                return *why = "argon2id: the salt must be 11..86 base64 characters", false;
        p += n + 1;
        n = span(p, b64);
        if (n < 22 || n > 86 || p[n] != '\0')
                return *why = "argon2id: the hash must be 22..86 base64 characters", false;
        return true;
}

bool mail_hash_valid(const char *h, mail_scheme *scheme, const char **why) {
        const char *dummy;

        if (!why)
                why = &dummy;
        if (!h || strlen(h) > 512)
                return *why = "not a password hash", false;
        if (strncmp(h, "$6$", 3) == 0) {
                *scheme = MAIL_SCHEME_SHA512_CRYPT;
                return sha512_crypt(h, why);
        }
        if (strncmp(h, "$2a$", 4) == 0 || strncmp(h, "$2b$", 4) == 0 || strncmp(h, "$2y$", 4) == 0) {
                *scheme = MAIL_SCHEME_BCRYPT;
                return bcrypt(h, why);
        }
        if (strncmp(h, "$argon2id$", 10) == 0) {
                *scheme = MAIL_SCHEME_ARGON2ID;
                return argon2id(h, why);
        }
        return *why = "not a hash of an accepted scheme (SHA512-CRYPT $6$, bcrypt $2y$, argon2id $argon2id$)", false;
}

const char *mail_scheme_dovecot(mail_scheme s) {
        switch (s) {
        case MAIL_SCHEME_SHA512_CRYPT:
                return "SHA512-CRYPT";
        case MAIL_SCHEME_BCRYPT:
                return "BLF-CRYPT";
        case MAIL_SCHEME_ARGON2ID:
                return "ARGON2ID";
        }
        return "SHA512-CRYPT";
}

bool mail_local_valid(const char *s, const char **why) {
        const char *dummy;

        if (!why)
                why = &dummy;
        if (!s || !jb_valid_email_local(s, strlen(s), why))
                return false;
        if (s[0] == '-')
                return *why = "must not start with '-'", false;
        for (const char *p = s; *p; p++)
                if (*p >= 'A' && *p <= 'Z')
                        return *why = "upper-case letters; send the lower-case form", false;
        return true;
}

bool mail_date_valid(const char *s) {
        static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
        int y, m, d;

        if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
                return false;
        for (int i = 0; i < 10; i++)
                if (i != 4 && i != 7 && !(s[i] >= '0' && s[i] <= '9'))
                        return false;
        y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
        m = (s[5] - '0') * 10 + (s[6] - '0');
        d = (s[8] - '0') * 10 + (s[9] - '0');
        if (y < 1970 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
                return false;
        if (m == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
                return false;
        return true;
}

const char *mail_addr_split(const char *addr, char *local, size_t size) {
        const char *at = addr ? strrchr(addr, '@') : NULL;

        if (!at || at == addr || (size_t) (at - addr) >= size || !at[1])
                return NULL;
        memcpy(local, addr, (size_t) (at - addr));
        local[at - addr] = '\0';
        return at + 1;
}
