/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Dovecot's passwd-file as the module writes it, one mailbox a line:
 *
 *   alice@example.com:{SHA512-CRYPT}$6$...:8:8::/var/mail/vhosts/example.com/alice::userdb_quota_rule=*:storage=100M
 *
 * (user:password:uid:gid:gecos:home:shell:extra fields; Dovecot joins
 * what follows the shell field back with ':', so the quota rule's own ':'
 * is safe). The parser accepts exactly what the renderer writes, so a
 * line an administrator added by hand is CONFLICT rather than silently
 * rewritten. Pure: unit-tested in tests/unit/test-mail.c. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jabali/validate.h>

#include "mail-internal.h"

#define QUOTA_PREFIX "userdb_quota_rule=*:storage="

/* The pragma: gcc 12's -fanalyzer does not follow the strings into
 * u->v[] (stored at a symbolic index) and reports them as leaked. They
 * are not: the array owns them and mail_users_free frees them. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wanalyzer-malloc-leak"
static int add(mail_users *u, char *address, char *password, char *home, int64_t quota, jb_err *err) {
        if (u->n == u->cap) {
                size_t cap = u->cap ? u->cap * 2 : 16;
                mail_user *v = realloc(u->v, cap * sizeof *v);
                if (!v)
                        return jb_err_set(err, JB_E_INTERNAL, "out of memory");
                u->v = v;
                u->cap = cap;
        }
        u->v[u->n].address = address;
        u->v[u->n].password = password;
        u->v[u->n].home = home;
        u->v[u->n].quota_mib = quota;
        u->n++;
        return 0;
}
#pragma GCC diagnostic pop

static bool digits(const char *s, size_t n) {
        if (n == 0 || n > 10)
                return false;
        for (size_t i = 0; i < n; i++)
                if (s[i] < '0' || s[i] > '9')
                        return false;
        return true;
}

/* Field i (0-based) of a ':'-separated line: start and length. */
static bool field(const char *line, size_t len, int i, const char **f, size_t *flen) {
        const char *p = line, *end = line + len;

        for (; i > 0; i--) {
                const char *c = memchr(p, ':', (size_t) (end - p));
                if (!c)
                        return false;
                p = c + 1;
        }
        *f = p;
        {
                const char *c = memchr(p, ':', (size_t) (end - p));
                *flen = (size_t) ((c ? c : end) - p);
        }
        return true;
}

static int parse_line(mail_users *u, const char *line, size_t len, size_t lineno, jb_err *err) {
        const char *f[7], *extra;
        size_t fl[7], elen;
        char *address = NULL, *password = NULL, *home = NULL;
        long long quota;
        char num[16];

        for (int i = 0; i < 7; i++)
                if (!field(line, len, i, &f[i], &fl[i]))
                        goto bad;
        extra = f[6] + fl[6] + 1;
        if (extra > line + len)
                goto bad;
        elen = (size_t) (line + len - extra);
        if (!jb_valid_email(f[0], fl[0], NULL) || fl[1] < 3 || f[1][0] != '{' || !digits(f[2], fl[2]) ||
            !digits(f[3], fl[3]) || fl[4] != 0 || fl[5] < 2 || f[5][0] != '/' || fl[6] != 0 ||
            elen <= strlen(QUOTA_PREFIX) + 1 || memcmp(extra, QUOTA_PREFIX, strlen(QUOTA_PREFIX)) != 0 ||
            extra[elen - 1] != 'M')
                goto bad;
        elen -= strlen(QUOTA_PREFIX) + 1;
        extra += strlen(QUOTA_PREFIX);
        if (!digits(extra, elen) || (elen > 1 && extra[0] == '0'))
                goto bad;
        memcpy(num, extra, elen);
        num[elen] = '\0';
        quota = strtoll(num, NULL, 10);
        address = strndup(f[0], fl[0]);
        password = strndup(f[1], fl[1]);
        home = strndup(f[5], fl[5]);
        if (!address || !password || !home) {
                free(address);
                free(password);
                free(home);
                return jb_err_set(err, JB_E_INTERNAL, "out of memory");
        }
        if (mail_users_find(u, address)) {
                free(address);
                free(password);
                free(home);
                return jb_err_set(err, JB_E_CONFLICT, "users file line %zu: a mailbox listed twice", lineno);
        }
        if (add(u, address, password, home, quota, err) < 0) {
                free(address);
                free(password);
                free(home);
                return -1;
        }
        return 0;
bad:
        return jb_err_set(err, JB_E_CONFLICT, "users file line %zu is not in the module's format (edited by hand?)",
                          lineno);
}

int mail_users_parse(const char *text, size_t len, mail_users *u, jb_err *err) {
        const char *p = text, *end = text + len;
        size_t lineno = 0;

        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t) (end - p));
                size_t l = (size_t) ((nl ? nl : end) - p);

                lineno++;
                if (l > 0 && p[0] != '#' && parse_line(u, p, l, lineno, err) < 0)
                        return -1;
                p += l + 1;
        }
        return 0;
}

static int by_address(const void *a, const void *b) {
        return strcmp(((const mail_user *) a)->address, ((const mail_user *) b)->address);
}

int mail_users_render(const mail_users *u, int64_t uid, int64_t gid, mail_buf *out, jb_err *err) {
        mail_user *sorted;

        if (u->n == 0)
                return 0;
        sorted = malloc(u->n * sizeof *sorted);
        if (!sorted)
                return jb_err_set(err, JB_E_INTERNAL, "out of memory");
        memcpy(sorted, u->v, u->n * sizeof *sorted);
        qsort(sorted, u->n, sizeof *sorted, by_address);
        for (size_t i = 0; i < u->n; i++)
                mail_buf_printf(out, "%s:%s:%lld:%lld::%s::" QUOTA_PREFIX "%lldM\n", sorted[i].address,
                                sorted[i].password, (long long) uid, (long long) gid, sorted[i].home,
                                (long long) sorted[i].quota_mib);
        free(sorted);
        return 0;
}

mail_user *mail_users_find(const mail_users *u, const char *address) {
        for (size_t i = 0; i < u->n; i++)
                if (strcmp(u->v[i].address, address) == 0)
                        return &u->v[i];
        return NULL;
}

/* The pragma: gcc 12's -fanalyzer does not follow the strings into
 * u->v[] (stored at a symbolic index) and reports them as leaked. They
 * are not: the array owns them and mail_users_free frees them. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wanalyzer-malloc-leak"
int mail_users_set(mail_users *u, const char *address, const char *password, const char *home, int64_t quota_mib,
                   jb_err *err) {
        mail_user *x = mail_users_find(u, address);
        char *a = strdup(address), *p = strdup(password), *h = strdup(home);

        if (!a || !p || !h) {
                free(a);
                free(p);
                free(h);
                return jb_err_set(err, JB_E_INTERNAL, "out of memory");
        }
        if (!x) {
                if (add(u, a, p, h, quota_mib, err) < 0) {
                        free(a);
                        free(p);
                        free(h);
                        return -1;
                }
                return 0;
        }
        free(x->address);
        free(x->password);
        free(x->home);
        x->address = a;
        x->password = p;
        x->home = h;
        x->quota_mib = quota_mib;
        return 0;
}
#pragma GCC diagnostic pop

bool mail_users_remove(mail_users *u, const char *address) {
        mail_user *x = mail_users_find(u, address);

        if (!x)
                return false;
        free(x->address);
        free(x->password);
        free(x->home);
        *x = u->v[--u->n];
        return true;
}

void mail_users_free(mail_users *u) {
        for (size_t i = 0; i < u->n; i++) {
                free(u->v[i].address);
                /* The line holds a password hash: not left in freed memory. */
                if (u->v[i].password)
                        explicit_bzero(u->v[i].password, strlen(u->v[i].password));
                free(u->v[i].password);
                free(u->v[i].home);
        }
        free(u->v);
        *u = (mail_users) { 0 };
}
