/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Postfix lookup tables as the module writes them: "key value" a line,
 * sorted by key, compiled with postmap into hash: tables. Keys are
 * addresses, domains or "@domain"; values are "OK" or address lists.
 * The parser accepts what the renderer writes and nothing else. Pure:
 * unit-tested in tests/unit/test-mail.c. */

#include <stdlib.h>
#include <string.h>

#include <jabali/validate.h>

#include "mail-internal.h"

/* Characters a key or a value may hold: addresses, domains, ", " lists. */
static bool token_ok(const char *s, size_t n, bool value) {
        if (n == 0 || n > 4096)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    strchr("@._+-", c))
                        continue;
                if (value && (c == ',' || c == ' '))
                        continue;
                return false;
        }
        return true;
}

/* The pragma: gcc 12's -fanalyzer does not follow the strings into
 * m->v[] (stored at a symbolic index) and reports them as leaked. They
 * are not: the array owns them and mail_map_free frees them. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wanalyzer-malloc-leak"
static int add(mail_map *m, const char *key, size_t kn, const char *value, size_t vn, jb_err *err) {
        char *k, *v;

        if (m->n == m->cap) {
                size_t cap = m->cap ? m->cap * 2 : 16;
                mail_map_entry *e = realloc(m->v, cap * sizeof *e);
                if (!e)
                        return jb_err_set(err, JB_E_INTERNAL, "out of memory");
                m->v = e;
                m->cap = cap;
        }
        k = strndup(key, kn);
        v = strndup(value, vn);
        if (!k || !v) {
                free(k);
                free(v);
                return jb_err_set(err, JB_E_INTERNAL, "out of memory");
        }
        m->v[m->n].key = k;
        m->v[m->n].value = v;
        m->n++;
        return 0;
}
#pragma GCC diagnostic pop

int mail_map_parse(const char *text, size_t len, mail_map *m, jb_err *err) {
        const char *p = text, *end = text + len;
        size_t lineno = 0;

        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t) (end - p));
                size_t l = (size_t) ((nl ? nl : end) - p);
                const char *sp = memchr(p, ' ', l);

                lineno++;
                if (l > 0 && p[0] != '#') {
                        size_t kn = sp ? (size_t) (sp - p) : 0;
                        char key[MAIL_ADDR_MAX + 1];

                        if (!sp || !token_ok(p, kn, false) || !token_ok(sp + 1, l - kn - 1, true) ||
                            sp[1] == ' ' || p[l - 1] == ' ' || kn > MAIL_ADDR_MAX)
                                return jb_err_set(err, JB_E_CONFLICT,
                                                  "map line %zu is not in the module's format (edited by hand?)",
                                                  lineno);
                        memcpy(key, p, kn);
                        key[kn] = '\0';
                        if (mail_map_get(m, key))
                                return jb_err_set(err, JB_E_CONFLICT, "map line %zu: key listed twice", lineno);
                        if (add(m, p, kn, sp + 1, l - kn - 1, err) < 0)
                                return -1;
                }
                p += l + 1;
        }
        return 0;
}

static int by_key(const void *a, const void *b) {
        return strcmp(((const mail_map_entry *) a)->key, ((const mail_map_entry *) b)->key);
}

int mail_map_render(const mail_map *m, mail_buf *out, jb_err *err) {
        mail_map_entry *sorted;

        if (m->n == 0)
                return 0;
        sorted = malloc(m->n * sizeof *sorted);
        if (!sorted)
                return jb_err_set(err, JB_E_INTERNAL, "out of memory");
        memcpy(sorted, m->v, m->n * sizeof *sorted);
        qsort(sorted, m->n, sizeof *sorted, by_key);
        for (size_t i = 0; i < m->n; i++)
                mail_buf_printf(out, "%s %s\n", sorted[i].key, sorted[i].value);
        free(sorted);
        return 0;
}

const char *mail_map_get(const mail_map *m, const char *key) {
        for (size_t i = 0; i < m->n; i++)
                if (strcmp(m->v[i].key, key) == 0)
                        return m->v[i].value;
        return NULL;
}

int mail_map_set(mail_map *m, const char *key, const char *value, jb_err *err) {
        if (!token_ok(key, strlen(key), false) || !token_ok(value, strlen(value), true))
                return jb_err_set(err, JB_E_INVALID_PARAMS, "not a valid map entry");
        for (size_t i = 0; i < m->n; i++)
                if (strcmp(m->v[i].key, key) == 0) {
                        char *v = strdup(value);
                        if (!v)
                                return jb_err_set(err, JB_E_INTERNAL, "out of memory");
                        free(m->v[i].value);
                        m->v[i].value = v;
                        return 0;
                }
        return add(m, key, strlen(key), value, strlen(value), err);
}

bool mail_map_remove(mail_map *m, const char *key) {
        for (size_t i = 0; i < m->n; i++)
                if (strcmp(m->v[i].key, key) == 0) {
                        free(m->v[i].key);
                        free(m->v[i].value);
                        m->v[i] = m->v[--m->n];
                        return true;
                }
        return false;
}

void mail_map_free(mail_map *m) {
        for (size_t i = 0; i < m->n; i++) {
                free(m->v[i].key);
                free(m->v[i].value);
        }
        free(m->v);
        *m = (mail_map) { 0 };
}

bool mail_map_equal(const mail_map *a, const mail_map *b) {
        if (a->n != b->n)
                return false;
        for (size_t i = 0; i < a->n; i++) {
                const char *v = mail_map_get(b, a->v[i].key);
                if (!v || strcmp(v, a->v[i].value) != 0)
                        return false;
        }
        return true;
}
