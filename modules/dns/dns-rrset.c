/* SPDX-License-Identifier: GPL-3.0-or-later */
/* What pdns holds, the diff against the desired zone, and the JSON of the
 * PATCH that applies it. Pure: no I/O. Both sides are sorted sets of
 * rrsets in PowerDNS's presentation form, so equal zones compare equal
 * and the diff is one merge walk. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns-internal.h"

static const char *member_str(json_object *o, const char *k) {
        json_object *v;
        return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string) ?
                       json_object_get_string(v) : NULL;
}

static int add_api_rrset(json_object *rr, dns_set *out, jb_err *err) {
        const char *name = member_str(rr, "name"), *type = member_str(rr, "type");
        json_object *recs = NULL, *ttl = NULL;
        dns_rrset *r;
        size_t n;

        if (!name || !type || !json_object_object_get_ex(rr, "records", &recs) ||
            !json_object_is_type(recs, json_type_array))
                return jb_err_set(err, JB_E_SERVICE_FAILED, "the PowerDNS API answered an rrset without name, type or records");
        n = json_object_array_length(recs);
        if (n == 0)
                return 0;       /* only comments: nothing served */
        if (strlen(type) >= sizeof r->type || strlen(name) >= DNS_NAME_MAX)
                return jb_err_set(err, JB_E_SERVICE_FAILED, "the PowerDNS API answered an unexpected rrset");
        if (out->n == out->cap) {
                size_t cap = out->cap ? out->cap * 2 : 16;
                dns_rrset *v = realloc(out->v, cap * sizeof *v);
                if (!v)
                        return jb_err_set(err, JB_E_INTERNAL, "out of memory");
                out->v = v;
                out->cap = cap;
        }
        r = &out->v[out->n];
        *r = (dns_rrset) { .first_index = -1 };
        json_object_object_get_ex(rr, "ttl", &ttl);
        r->ttl = ttl ? json_object_get_int64(ttl) : 0;
        strcpy(r->type, type);
        r->name = strdup(name);
        r->recs = calloc(n, sizeof *r->recs);
        out->n++;       /* owned by the set from here: dns_set_free releases it */
        if (!r->name || !r->recs)
                return jb_err_set(err, JB_E_INTERNAL, "out of memory");
        r->cap = n;
        for (size_t i = 0; i < n; i++) {
                json_object *rec = json_object_array_get_idx(recs, i), *dis = NULL;
                const char *c = member_str(rec, "content");

                if (!c)
                        return jb_err_set(err, JB_E_SERVICE_FAILED, "the PowerDNS API answered a record without content");
                json_object_object_get_ex(rec, "disabled", &dis);
                r->recs[i].content = strdup(c);
                r->recs[i].disabled = dis && json_object_get_boolean(dis);
                if (!r->recs[i].content)
                        return jb_err_set(err, JB_E_INTERNAL, "out of memory");
                r->n++;
        }
        return 0;
}

int dns_set_from_api(json_object *zone, dns_set *out, jb_err *err) {
        json_object *rrsets = NULL;

        *out = (dns_set) { 0 };
        if (!json_object_object_get_ex(zone, "rrsets", &rrsets) || !json_object_is_type(rrsets, json_type_array))
                return jb_err_set(err, JB_E_SERVICE_FAILED, "the PowerDNS API answered a zone without rrsets");
        for (size_t i = 0; i < json_object_array_length(rrsets); i++)
                if (add_api_rrset(json_object_array_get_idx(rrsets, i), out, err) < 0) {
                        dns_set_free(out);
                        return -1;
                }
        dns_set_sort(out);
        return 0;
}

static json_object *records_json(const dns_rrset *r, const char *soa_serial) {
        json_object *a = json_object_new_array();

        for (size_t i = 0; i < r->n; i++) {
                json_object *o = json_object_new_object();
                const char *c = r->recs[i].content;
                char *tmp = NULL;

                /* The SOA keeps the serial pdns holds; pdns moves it itself. */
                if (soa_serial) {
                        const char *sp1 = strchr(c, ' '), *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
                        const char *sp3 = sp2 ? strchr(sp2 + 1, ' ') : NULL;
                        if (sp3 && asprintf(&tmp, "%.*s %s%s", (int) (sp2 - c), c, soa_serial, sp3) < 0)
                                tmp = NULL;
                }
                json_object_object_add(o, "content", json_object_new_string(tmp ? tmp : c));
                json_object_object_add(o, "disabled", json_object_new_boolean(r->recs[i].disabled));
                json_object_array_add(a, o);
                free(tmp);
        }
        return a;
}

static json_object *rrset_json(const dns_rrset *r, const char *changetype, const char *soa_serial) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "name", json_object_new_string(r->name));
        json_object_object_add(o, "type", json_object_new_string(r->type));
        if (changetype)
                json_object_object_add(o, "changetype", json_object_new_string(changetype));
        if (!changetype || strcmp(changetype, "DELETE") != 0) {
                json_object_object_add(o, "ttl", json_object_new_int64(r->ttl));
                json_object_object_add(o, "records", records_json(r, soa_serial));
        }
        return o;
}

json_object *dns_set_to_api(const dns_set *s) {
        json_object *a = json_object_new_array();

        for (size_t i = 0; i < s->n; i++)
                json_object_array_add(a, rrset_json(&s->v[i], NULL, NULL));
        return a;
}

/* The serial field of a SOA content ("mname rname serial ..."), copied
 * into buf, or NULL. */
static const char *soa_serial(const char *c, char *buf, size_t size) {
        const char *a = strchr(c, ' '), *b = a ? strchr(a + 1, ' ') : NULL, *e = b ? strchr(b + 1, ' ') : NULL;

        if (!e || (size_t) (e - b - 1) >= size)
                return NULL;
        memcpy(buf, b + 1, (size_t) (e - b - 1));
        buf[e - b - 1] = '\0';
        return buf;
}

/* SOA contents equal but for the serial (the third field). */
static bool soa_equal(const char *a, const char *b) {
        const char *x = a, *y = b;

        for (int field = 0; field < 7; field++) {
                size_t lx = strcspn(x, " "), ly = strcspn(y, " ");

                if (field != 2 && (lx != ly || strncmp(x, y, lx) != 0))
                        return false;
                x += lx;
                y += ly;
                if ((*x == ' ') != (*y == ' '))
                        return false;
                if (*x == ' ')
                        x++, y++;
        }
        return *x == '\0' && *y == '\0';
}

static bool rrset_equal(const dns_rrset *w, const dns_rrset *h) {
        if (w->ttl != h->ttl || w->n != h->n)
                return false;
        if (strcmp(w->type, "SOA") == 0)
                return w->n == 1 && w->recs[0].disabled == h->recs[0].disabled &&
                       soa_equal(w->recs[0].content, h->recs[0].content);
        for (size_t i = 0; i < w->n; i++)
                if (w->recs[i].disabled != h->recs[i].disabled || strcmp(w->recs[i].content, h->recs[i].content) != 0)
                        return false;
        return true;
}

static void report_add(json_object *report, const dns_rrset *r, const char *action) {
        json_object *o;

        if (!report)
                return;
        o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(r->name));
        json_object_object_add(o, "type", json_object_new_string(r->type));
        json_object_object_add(o, "action", json_object_new_string(action));
        if (strcmp(action, "delete") != 0) {
                json_object_object_add(o, "ttl", json_object_new_int64(r->ttl));
                json_object_object_add(o, "records", records_json(r, NULL));
        }
        json_object_array_add(report, o);
}

int dns_diff(const dns_set *want, const dns_set *have, json_object **patch_out, json_object **report_out, jb_err *err) {
        json_object *patch = json_object_new_array(), *report = report_out ? json_object_new_array() : NULL;
        size_t i = 0, j = 0;
        int changes = 0;

        (void) err;
        while (i < want->n || j < have->n) {
                const dns_rrset *w = i < want->n ? &want->v[i] : NULL, *h = j < have->n ? &have->v[j] : NULL;
                int c;

                if (!w)
                        c = 1;
                else if (!h)
                        c = -1;
                else {
                        c = strcmp(w->name, h->name);
                        if (c == 0)
                                c = strcmp(w->type, h->type);
                }
                if (c < 0 && w) {
                        json_object_array_add(patch, rrset_json(w, "REPLACE", NULL));
                        report_add(report, w, "create");
                        i++;
                } else if (c > 0 && h) {
                        json_object_array_add(patch, rrset_json(h, "DELETE", NULL));
                        report_add(report, h, "delete");
                        j++;
                } else if (w && h) {
                        if (!rrset_equal(w, h)) {
                                char serial[24];
                                bool soa = strcmp(w->type, "SOA") == 0;
                                const char *s = soa ? soa_serial(h->recs[0].content, serial, sizeof serial) : NULL;

                                json_object_array_add(patch, rrset_json(w, "REPLACE", s));
                                report_add(report, w, "update");
                        } else
                                changes--;
                        i++, j++;
                } else
                        break;          /* unreachable: the loop condition holds one of them */
                changes++;
        }
        if (patch_out)
                *patch_out = patch;
        else
                json_object_put(patch);
        if (report_out)
                *report_out = report;
        return changes;
}

/* Appends to a growing buffer; false when memory ran out. */
static bool put(char **buf, size_t *len, size_t *cap, const char *s) {
        size_t n = strlen(s);

        if (*len + n + 1 > *cap) {
                size_t c = *cap ? *cap : 4096;
                char *b;

                while (c < *len + n + 1)
                        c *= 2;
                b = realloc(*buf, c);
                if (!b)
                        return false;
                *buf = b;
                *cap = c;
        }
        memcpy(*buf + *len, s, n + 1);
        *len += n;
        return true;
}

char *dns_state_text(const dns_set *want, json_object *meta) {
        char *buf = NULL, num[64];
        size_t len = 0, cap = 0;
        bool ok = put(&buf, &len, &cap, "jabali-dns 1\n");

        for (size_t i = 0; ok && i < want->n; i++) {
                const dns_rrset *r = &want->v[i];

                for (size_t j = 0; ok && j < r->n; j++) {
                        snprintf(num, sizeof num, " %lld %d ", (long long) r->ttl, r->recs[j].disabled ? 1 : 0);
                        ok = put(&buf, &len, &cap, r->name) && put(&buf, &len, &cap, " ") &&
                             put(&buf, &len, &cap, r->type) && put(&buf, &len, &cap, num) &&
                             put(&buf, &len, &cap, r->recs[j].content) && put(&buf, &len, &cap, "\n");
                }
        }
        for (int k = 0; ok && dns_meta_kinds[k]; k++) {
                json_object *v = NULL;

                json_object_object_get_ex(meta, dns_meta_kinds[k], &v);
                ok = put(&buf, &len, &cap, "META ") && put(&buf, &len, &cap, dns_meta_kinds[k]);
                for (size_t i = 0; ok && v && i < json_object_array_length(v); i++)
                        ok = put(&buf, &len, &cap, " ") &&
                             put(&buf, &len, &cap, json_object_get_string(json_object_array_get_idx(v, i)));
                ok = ok && put(&buf, &len, &cap, "\n");
        }
        if (!ok) {
                free(buf);
                return NULL;
        }
        return buf;
}
