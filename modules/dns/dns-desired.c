/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The desired zone of dns.zone.upsert: every record checked and put in
 * canonical form, grouped into rrsets, the rules that span records
 * (CNAME alone at its name, one TTL per rrset, no duplicates, DS only at
 * a delegation) applied, plus the apex NS and SOA. Pure: no I/O. Every
 * error is INVALID_PARAMS led by the request field it is about. */

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jabali/validate.h>

#include "dns-internal.h"

/* The pragma: gcc 12's -fanalyzer loses track of a pointer once it is
 * stored into an element of an array that was grown with realloc (the
 * rrsets of a set, the records of an rrset), and reports every such
 * allocation as leaked when the function returns. Ownership here is
 * simple: everything reachable from a dns_set is freed by dns_set_free,
 * which the unit tests and the fuzz target run under ASan's leak check. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wanalyzer-malloc-leak"
#endif

/* One record of the request, flattened for sorting. */
typedef struct flat {
        char name[DNS_NAME_MAX];
        const char *type;       /* borrowed from the params */
        char *content;
        int64_t ttl;
        bool disabled;
        int index;
} flat;

static const char *member_str(json_object *o, const char *k) {
        json_object *v;
        return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string) ?
                       json_object_get_string(v) : NULL;
}

static bool member_int(json_object *o, const char *k, int64_t *out) {
        json_object *v;
        if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_int))
                return false;
        *out = json_object_get_int64(v);
        return true;
}

static bool member_bool(json_object *o, const char *k) {
        json_object *v;
        return json_object_object_get_ex(o, k, &v) && json_object_get_boolean(v);
}

/* Leads the error already set with "FIELD: ". */
static int field_err(jb_err *err, const char *field) {
        if (!jb_err_isset(err))
                jb_err_set(err, JB_E_INVALID_PARAMS, "invalid");
        jb_err_prefix(err, field);
        return -1;
}

/* The same for records[i].field. */
static int rec_field_err(jb_err *err, int i, const char *field) {
        char where[64];

        snprintf(where, sizeof where, "records[%d].%s", i, field);
        return field_err(err, where);
}

static int rec_err(jb_err *err, int i, const char *field, const char *msg) {
        jb_err_set(err, JB_E_INVALID_PARAMS, "%s", msg);
        return rec_field_err(err, i, field);
}

/* ---- sets ---- */

void dns_set_free(dns_set *s) {
        for (size_t i = 0; i < s->n; i++) {
                for (size_t j = 0; j < s->v[i].n; j++)
                        free(s->v[i].recs[j].content);
                free(s->v[i].recs);
                free(s->v[i].name);
        }
        free(s->v);
        *s = (dns_set) { 0 };
}

/* A new, empty rrset at the end of s (name copied), or NULL. */
static dns_rrset *set_add(dns_set *s, const char *name, const char *type, int64_t ttl, int index) {
        dns_rrset *r;
        char *copy;

        if (strlen(type) >= sizeof r->type)
                return NULL;
        if (s->n == s->cap) {
                size_t cap = s->cap ? s->cap * 2 : 16;
                dns_rrset *v = realloc(s->v, cap * sizeof *v);
                if (!v)
                        return NULL;
                s->v = v;
                s->cap = cap;
        }
        copy = strdup(name);
        if (!copy)
                return NULL;
        r = &s->v[s->n++];
        memset(r, 0, sizeof *r);
        r->name = copy;
        r->ttl = ttl;
        r->first_index = index;
        strcpy(r->type, type);
        return r;
}

/* Appends a record; takes content (freed on failure too). */
static int rrset_add(dns_rrset *r, char *content, bool disabled) {
        if (r->n == r->cap) {
                size_t cap = r->cap ? r->cap * 2 : 4;
                dns_rec *v = realloc(r->recs, cap * sizeof *v);
                if (!v) {
                        free(content);
                        return -1;
                }
                r->recs = v;
                r->cap = cap;
        }
        r->recs[r->n++] = (dns_rec) { .content = content, .disabled = disabled };
        return 0;
}

static int rec_cmp(const void *a, const void *b) {
        const dns_rec *x = a, *y = b;
        int c = strcmp(x->content, y->content);
        return c ? c : (int) x->disabled - (int) y->disabled;
}

static int rrset_cmp(const void *a, const void *b) {
        const dns_rrset *x = a, *y = b;
        int c = strcmp(x->name, y->name);
        return c ? c : strcmp(x->type, y->type);
}

void dns_set_sort(dns_set *s) {
        for (size_t i = 0; i < s->n; i++)
                if (s->v[i].n > 1)
                        qsort(s->v[i].recs, s->v[i].n, sizeof s->v[i].recs[0], rec_cmp);
        if (s->n > 1)
                qsort(s->v, s->n, sizeof s->v[0], rrset_cmp);
}

const dns_rrset *dns_set_find(const dns_set *s, const char *name, const char *type) {
        dns_rrset key = { .name = (char *) name };

        if (strlen(type) >= sizeof key.type || s->n == 0)
                return NULL;
        strcpy(key.type, type);
        return bsearch(&key, s->v, s->n, sizeof s->v[0], rrset_cmp);
}

/* ---- records ---- */

static int flat_cmp(const void *a, const void *b) {
        const flat *x = a, *y = b;
        int c = strcmp(x->name, y->name);
        if (c)
                return c;
        c = strcmp(x->type, y->type);
        if (c)
                return c;
        c = strcmp(x->content, y->content);
        return c ? c : x->index - y->index;
}

static int flatten_one(const char *zone_fqdn, json_object *rec, int i, const dns_limits *lim, flat *f,
                       jb_err *err) {
        const char *name = member_str(rec, "name"), *type = member_str(rec, "type");
        const char *content = member_str(rec, "content");
        int64_t prio = -1, ttl = lim->default_ttl;

        /* The schema made name, type and content required. */
        if (!name || !type || !content)
                return rec_err(err, i, "name", "name, type and content are required");
        f->index = i;
        f->type = type;
        f->disabled = member_bool(rec, "disabled");
        if (dns_owner_name(zone_fqdn, name, f->name, err) < 0)
                return rec_field_err(err, i, "name");
        if (member_int(rec, "ttl", &ttl) && (ttl < lim->min_ttl || ttl > lim->max_ttl)) {
                char msg[96];
                snprintf(msg, sizeof msg, "TTL must be %lld..%lld", (long long) lim->min_ttl, (long long) lim->max_ttl);
                return rec_err(err, i, "ttl", msg);
        }
        f->ttl = ttl;
        if (member_int(rec, "priority", &prio) && strcmp(type, "MX") != 0 && strcmp(type, "SRV") != 0)
                return rec_err(err, i, "priority", "priority applies to MX and SRV only");
        if (prio < 0 && (strcmp(type, "MX") == 0 || strcmp(type, "SRV") == 0))
                return rec_err(err, i, "priority", "MX and SRV records need a priority (0..65535)");
        if (strcmp(f->name, zone_fqdn) == 0) {
                if (strcmp(type, "NS") == 0)
                        return rec_err(err, i, "type", "NS records at the apex come from nameservers[]");
                if (strcmp(type, "CNAME") == 0)
                        return rec_err(err, i, "type", "a CNAME cannot be at the zone's apex");
                if (strcmp(type, "DS") == 0)
                        return rec_err(err, i, "type", "a DS record belongs to a delegation, not the apex");
        }
        if (dns_record_content(zone_fqdn, type, content, prio, &f->content, err) < 0)
                return rec_field_err(err, i, "content");
        return 0;
}

/* The cross-record rules, on the grouped set. */
static int check_rules(const dns_set *s, const char *zone_fqdn, jb_err *err) {
        for (size_t i = 0; i < s->n; i++) {
                const dns_rrset *r = &s->v[i];

                if (strcmp(r->type, "CNAME") == 0) {
                        if (r->n > 1)
                                return rec_err(err, r->first_index, "name", "a name has at most one CNAME record");
                        /* Sorted by name: the neighbours are the other rrsets of this name. */
                        if ((i > 0 && strcmp(s->v[i - 1].name, r->name) == 0) ||
                            (i + 1 < s->n && strcmp(s->v[i + 1].name, r->name) == 0))
                                return rec_err(err, r->first_index, "name",
                                               "a CNAME cannot share its name with other records");
                }
                if (strcmp(r->type, "DS") == 0 && !dns_set_find(s, r->name, "NS"))
                        return rec_err(err, r->first_index, "name", "a DS record needs NS records at the same name");
                (void) zone_fqdn;
        }
        return 0;
}

static int group(flat *f, size_t n, dns_set *out, jb_err *err) {
        dns_rrset *cur = NULL;

        for (size_t i = 0; i < n; i++) {
                if (!cur || strcmp(cur->name, f[i].name) != 0 || strcmp(cur->type, f[i].type) != 0) {
                        cur = set_add(out, f[i].name, f[i].type, f[i].ttl, f[i].index);
                        if (!cur)
                                return jb_err_set(err, JB_E_INTERNAL, "out of memory");
                } else {
                        if (strcmp(cur->recs[cur->n - 1].content, f[i].content) == 0) {
                                char msg[64];
                                snprintf(msg, sizeof msg, "the same record as records[%d]", f[i - 1].index);
                                return rec_err(err, f[i].index, "content", msg);
                        }
                        if (cur->ttl != f[i].ttl) {
                                char msg[80];
                                snprintf(msg, sizeof msg, "differs from the TTL of records[%d] (same name and type)",
                                         cur->first_index);
                                return rec_err(err, f[i].index, "ttl", msg);
                        }
                        if (f[i].index < cur->first_index)
                                cur->first_index = f[i].index;
                }
                if (rrset_add(cur, f[i].content, f[i].disabled) < 0) {
                        f[i].content = NULL;
                        return jb_err_set(err, JB_E_INTERNAL, "out of memory");
                }
                f[i].content = NULL;
        }
        return 0;
}

static int add_records(const char *zone_fqdn, json_object *records, const dns_limits *lim, dns_set *out, jb_err *err) {
        size_t n = records ? json_object_array_length(records) : 0;
        flat *f;
        int r = -1;

        if ((int64_t) n > lim->max_records)
                return jb_err_set(err, JB_E_INVALID_PARAMS, "records: %zu records, more than the limit of %lld", n,
                                  (long long) lim->max_records);
        if (n == 0)
                return 0;
        f = calloc(n, sizeof *f);
        if (!f)
                return jb_err_set(err, JB_E_INTERNAL, "out of memory");
        for (size_t i = 0; i < n; i++)
                if (flatten_one(zone_fqdn, json_object_array_get_idx(records, i), (int) i, lim, &f[i], err) < 0)
                        goto out;
        qsort(f, n, sizeof *f, flat_cmp);
        r = group(f, n, out, err);
out:
        for (size_t i = 0; i < n; i++)
                free(f[i].content);
        free(f);
        return r;
}

/* The apex NS rrset from nameservers[]. */
static int add_nameservers(const char *zone_fqdn, json_object *ns, const dns_limits *lim, dns_set *out, jb_err *err) {
        size_t n = ns ? json_object_array_length(ns) : 0;
        dns_rrset *r;

        if (n == 0)
                return jb_err_set(err, JB_E_INVALID_PARAMS, "nameservers: at least one name server is needed");
        r = set_add(out, zone_fqdn, "NS", lim->default_ttl, -1);
        if (!r)
                return jb_err_set(err, JB_E_INTERNAL, "out of memory");
        for (size_t i = 0; i < n; i++) {
                char t[DNS_NAME_MAX], *c;

                if (dns_target_name(zone_fqdn, json_object_get_string(json_object_array_get_idx(ns, i)), false, t,
                                    err) < 0) {
                        char where[48];
                        snprintf(where, sizeof where, "nameservers[%zu]", i);
                        return field_err(err, where);
                }
                for (size_t j = 0; j < r->n; j++)
                        if (strcmp(r->recs[j].content, t) == 0)
                                return jb_err_set(err, JB_E_INVALID_PARAMS, "nameservers[%zu]: listed twice", i);
                c = strdup(t);
                if (!c || rrset_add(r, c, false) < 0)
                        return jb_err_set(err, JB_E_INTERNAL, "out of memory");
        }
        return 0;
}

/* rname from settings: "@" stands for the zone ("hostmaster.@"). */
static int default_rname(const char *zone_fqdn, const char *pattern, char out[DNS_NAME_MAX], jb_err *err) {
        char buf[DNS_NAME_MAX * 2];
        const char *at = strchr(pattern, '@');

        if (at)
                snprintf(buf, sizeof buf, "%.*s%s%s", (int) (at - pattern), pattern, zone_fqdn, at + 1);
        else
                snprintf(buf, sizeof buf, "%s", pattern);
        /* "hostmaster.zone." ends with a dot already: a target name takes it. */
        return dns_target_name(zone_fqdn, buf, false, out, err);
}

static int add_soa(const char *zone_fqdn, json_object *params, const dns_limits *lim, dns_set *out, jb_err *err) {
        json_object *soa = NULL, *ns = NULL;
        char mname[DNS_NAME_MAX], rname[DNS_NAME_MAX], *content;
        int64_t refresh = lim->soa_refresh, retry = lim->soa_retry, expire = lim->soa_expire;
        int64_t minimum = lim->soa_minimum, ttl = lim->default_ttl;
        const char *m, *rn;
        dns_rrset *r;

        json_object_object_get_ex(params, "soa", &soa);
        json_object_object_get_ex(params, "nameservers", &ns);
        m = soa ? member_str(soa, "mname") : NULL;
        if (!m)
                m = json_object_get_string(json_object_array_get_idx(ns, 0));
        if (dns_target_name(zone_fqdn, m, false, mname, err) < 0)
                return field_err(err, "soa.mname");
        rn = soa ? member_str(soa, "rname") : NULL;
        if (rn ? dns_target_name(zone_fqdn, rn, false, rname, err) < 0 :
                 default_rname(zone_fqdn, lim->soa_rname, rname, err) < 0)
                return field_err(err, "soa.rname");
        if (soa) {
                member_int(soa, "refresh", &refresh);
                member_int(soa, "retry", &retry);
                member_int(soa, "expire", &expire);
                member_int(soa, "minimum", &minimum);
                if (member_int(soa, "ttl", &ttl) && (ttl < lim->min_ttl || ttl > lim->max_ttl))
                        return jb_err_set(err, JB_E_INVALID_PARAMS, "soa.ttl: TTL must be %lld..%lld",
                                          (long long) lim->min_ttl, (long long) lim->max_ttl);
        }
        if (asprintf(&content, "%s %s 0 %lld %lld %lld %lld", mname, rname, (long long) refresh, (long long) retry,
                     (long long) expire, (long long) minimum) < 0)
                return jb_err_set(err, JB_E_INTERNAL, "out of memory");
        r = set_add(out, zone_fqdn, "SOA", ttl, -1);
        if (!r || rrset_add(r, content, false) < 0) {
                if (!r)
                        free(content);
                return jb_err_set(err, JB_E_INTERNAL, "out of memory");
        }
        return 0;
}

int dns_desired_from_params(const char *zone, json_object *params, const dns_limits *lim, dns_set *out, jb_err *err) {
        char zone_fqdn[DNS_NAME_MAX];
        json_object *records = NULL, *ns = NULL;

        *out = (dns_set) { 0 };
        if (dns_zone_fqdn(zone, zone_fqdn, err) < 0)
                return field_err(err, "zone");
        json_object_object_get_ex(params, "records", &records);
        json_object_object_get_ex(params, "nameservers", &ns);
        if (add_records(zone_fqdn, records, lim, out, err) < 0 || add_nameservers(zone_fqdn, ns, lim, out, err) < 0 ||
            add_soa(zone_fqdn, params, lim, out, err) < 0)
                goto fail;
        dns_set_sort(out);
        if (check_rules(out, zone_fqdn, err) < 0)
                goto fail;
        return 0;
fail:
        dns_set_free(out);
        return -1;
}

/* ---- metadata ---- */

const char *const dns_meta_kinds[] = { "ALLOW-AXFR-FROM", "ALSO-NOTIFY", NULL };
const char *const dns_meta_params[] = { "allow_axfr_from", "also_notify", NULL };

/* "ADDR" or "ADDR/PREFIX" (allow_axfr_from), or "AUTO-NS". */
static bool valid_acl(const char *s, const char **why) {
        const char *slash = strchr(s, '/');
        char addr[64];
        size_t n = slash ? (size_t) (slash - s) : strlen(s);
        bool v6;
        unsigned long bits;
        char *end;

        if (strcmp(s, "AUTO-NS") == 0)
                return true;
        if (n == 0 || n >= sizeof addr)
                return *why = "not an address or prefix", false;
        memcpy(addr, s, n);
        addr[n] = '\0';
        v6 = strchr(addr, ':') != NULL;
        if (!jb_valid_ip(addr, n, why))
                return false;
        if (!slash)
                return true;
        if (slash[1] < '0' || slash[1] > '9' || (slash[1] == '0' && slash[2] != '\0'))
                return *why = "bad prefix length", false;
        bits = strtoul(slash + 1, &end, 10);
        if (*end != '\0' || bits > (v6 ? 128u : 32u))
                return *why = "bad prefix length", false;
        return true;
}

/* "ADDR", "IPv4:PORT" or "[IPv6]:PORT" (also_notify). */
static bool valid_notify(const char *s, const char **why) {
        char addr[64];
        const char *port = NULL;
        size_t n;
        uint64_t p = 0;

        if (s[0] == '[') {
                const char *close = strchr(s, ']');
                if (!close || close[1] != ':')
                        return *why = "write an IPv6 address with a port as [ADDR]:PORT", false;
                n = (size_t) (close - s - 1);
                if (n >= sizeof addr)
                        return *why = "not an address", false;
                memcpy(addr, s + 1, n);
                port = close + 2;
                addr[n] = '\0';
                if (!jb_valid_ipv6(addr, n, why))
                        return false;
        } else if (strchr(s, ':') && strchr(s, '.') && strchr(s, ':') == strrchr(s, ':')) {
                n = (size_t) (strchr(s, ':') - s);
                if (n >= sizeof addr)
                        return *why = "not an address", false;
                memcpy(addr, s, n);
                addr[n] = '\0';
                port = s + n + 1;
                if (!jb_valid_ipv4(addr, n, why))
                        return false;
        } else
                return jb_valid_ip(s, strlen(s), why);
        for (const char *c = port; *c; c++) {
                if (*c < '0' || *c > '9' || c - port > 5)
                        return *why = "bad port", false;
                p = p * 10 + (uint64_t) (*c - '0');
        }
        if (!*port || p == 0 || p > 65535 || port[0] == '0')
                return *why = "port must be 1..65535", false;
        return true;
}

static int str_cmp(const void *a, const void *b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

int dns_meta_from_params(json_object *params, json_object **out, jb_err *err) {
        json_object *res = json_object_new_object();

        for (int k = 0; dns_meta_kinds[k]; k++) {
                json_object *arr = NULL, *vals = json_object_new_array();
                size_t n;
                const char **v;

                json_object_object_add(res, dns_meta_kinds[k], vals);
                json_object_object_get_ex(params, dns_meta_params[k], &arr);
                n = arr ? json_object_array_length(arr) : 0;
                if (n == 0)
                        continue;
                v = calloc(n, sizeof *v);
                if (!v)
                        goto oom;
                for (size_t i = 0; i < n; i++) {
                        const char *s = json_object_get_string(json_object_array_get_idx(arr, i)), *why = NULL;

                        if (!(k == 0 ? valid_acl(s, &why) : valid_notify(s, &why))) {
                                free(v);
                                json_object_put(res);
                                return jb_err_set(err, JB_E_INVALID_PARAMS, "%s[%zu]: %s", dns_meta_params[k], i,
                                                  why ? why : "invalid");
                        }
                        v[i] = s;
                }
                qsort(v, n, sizeof *v, str_cmp);
                for (size_t i = 0; i < n; i++) {
                        if (i > 0 && strcmp(v[i], v[i - 1]) == 0) {
                                jb_err_set(err, JB_E_INVALID_PARAMS, "%s: %s is listed twice", dns_meta_params[k],
                                           v[i]);
                                free(v);
                                json_object_put(res);
                                return -1;
                        }
                        json_object_array_add(vals, json_object_new_string(v[i]));
                }
                free(v);
        }
        *out = res;
        return 0;
oom:
        json_object_put(res);
        return jb_err_set(err, JB_E_INTERNAL, "out of memory");
}

int dns_meta_differs(json_object *want, json_object *have) {
        size_t n = want ? json_object_array_length(want) : 0, m = have ? json_object_array_length(have) : 0;
        const char **v;
        int r = 0;

        if (n != m)
                return 1;
        if (n == 0)
                return 0;
        v = calloc(m, sizeof *v);
        if (!v)
                return 1;
        for (size_t i = 0; i < m; i++) {
                json_object *e = json_object_array_get_idx(have, i);
                v[i] = json_object_is_type(e, json_type_string) ? json_object_get_string(e) : "";
        }
        qsort(v, m, sizeof *v, str_cmp);
        for (size_t i = 0; i < n && !r; i++)
                r = strcmp(v[i], json_object_get_string(json_object_array_get_idx(want, i))) != 0;
        free(v);
        return r;
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
