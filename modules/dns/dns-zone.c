/* SPDX-License-Identifier: GPL-3.0-or-later */
/* dns.zone.upsert, .delete, .get, .list: zones converged through the
 * PowerDNS API. The request is the whole desired zone; what pdns holds is
 * read, the two are compared, and only the rrsets that differ go out, in
 * one PATCH (one transaction in pdns, which rectifies, bumps the serial
 * and drops its caches for the zone). Nothing different: no write. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns-module.h"

static void zone_path(const char *zone, const char *suffix, char *out, size_t size) {
        snprintf(out, size, "/zones/%s.%s", zone, suffix);
}

/* ---- metadata ---- */

/* The values pdns holds for `kind` in a GET .../metadata answer, or NULL. */
static json_object *meta_values(json_object *list, const char *kind) {
        for (size_t i = 0; list && i < json_object_array_length(list); i++) {
                json_object *m = json_object_array_get_idx(list, i), *k, *v;

                if (json_object_object_get_ex(m, "kind", &k) && strcmp(json_object_get_string(k), kind) == 0 &&
                    json_object_object_get_ex(m, "metadata", &v) && json_object_is_type(v, json_type_array))
                        return v;
        }
        return NULL;
}

static int read_meta(jb_call *call, const dns_cfg *c, const char *zone, json_object **out, jb_err *err) {
        char path[DNS_NAME_MAX + 32];
        dns_reply rep;

        zone_path(zone, "/metadata", path, sizeof path);
        if (dns_api_call(call, c, "GET", path, NULL, &rep, err) < 0)
                return -1;
        if (rep.status != 200 || !rep.json || !json_object_is_type(rep.json, json_type_array)) {
                int r = rep.status == 200 ? jb_err_set(err, JB_E_SERVICE_FAILED, "zone metadata: not a list") :
                                            dns_api_error(&rep, "reading the zone's metadata", err);
                dns_reply_free(&rep);
                return r;
        }
        *out = rep.json;
        return 0;
}

/* The managed kinds whose values differ: {kind: wanted values}. */
static json_object *meta_changes(json_object *want, json_object *have_list) {
        json_object *out = json_object_new_object();

        for (int k = 0; dns_meta_kinds[k]; k++) {
                json_object *w = NULL;

                json_object_object_get_ex(want, dns_meta_kinds[k], &w);
                if (dns_meta_differs(w, meta_values(have_list, dns_meta_kinds[k])))
                        json_object_object_add(out, dns_meta_kinds[k], json_object_get(w));
        }
        return out;
}

static int write_meta(jb_call *call, const dns_cfg *c, const char *zone, json_object *changes, jb_err *err) {
        json_object_object_foreach(changes, kind, vals) {
                char path[DNS_NAME_MAX + 64];
                json_object *body = NULL;
                dns_reply rep;
                bool empty = json_object_array_length(vals) == 0;
                int r;

                snprintf(path, sizeof path, "/zones/%s./metadata/%s", zone, kind);
                if (!empty) {
                        body = json_object_new_object();
                        json_object_object_add(body, "metadata", json_object_get(vals));
                }
                r = dns_api_call(call, c, empty ? "DELETE" : "PUT", path, body, &rep, err);
                json_object_put(body);
                if (r < 0)
                        return -1;
                if (rep.status >= 300)
                        r = dns_api_error(&rep, "writing the zone's metadata", err);
                dns_reply_free(&rep);
                if (r < 0)
                        return -1;
        }
        return 0;
}

static json_object *meta_report(json_object *changes) {
        json_object *a = json_object_new_array();

        json_object_object_foreach(changes, kind, vals) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "kind", json_object_new_string(kind));
                json_object_object_add(o, "values", json_object_get(vals));
                json_object_array_add(a, o);
        }
        return a;
}

/* ---- upsert ---- */

typedef struct upsert {
        jb_call *call;
        dns_cfg c;
        const char *zone;
        dns_set want, have;
        json_object *meta;              /* desired managed metadata */
        json_object *meta_have;         /* GET .../metadata */
        json_object *patch, *report, *meta_chg;
        char *text;                     /* dns_state_text of the desired zone */
} upsert;

static int create_zone(upsert *u, jb_err *err) {
        json_object *body = json_object_new_object();
        char name[DNS_NAME_MAX + 1];
        dns_reply rep;
        int r;

        snprintf(name, sizeof name, "%s.", u->zone);
        json_object_object_add(body, "name", json_object_new_string(name));
        json_object_object_add(body, "kind", json_object_new_string(u->c.zone_kind));
        /* Every API write then moves the serial (SOA-EDIT-API). */
        json_object_object_add(body, "soa_edit_api", json_object_new_string("DEFAULT"));
        json_object_object_add(body, "nameservers", json_object_new_array());
        json_object_object_add(body, "rrsets", dns_set_to_api(&u->want));
        r = dns_api_call(u->call, &u->c, "POST", "/zones", body, &rep, err);
        json_object_put(body);
        if (r < 0)
                return -1;
        if (rep.status != 201)
                r = dns_api_error(&rep, "creating the zone", err);
        dns_reply_free(&rep);
        return r;
}

static int patch_zone(upsert *u, jb_err *err) {
        json_object *body = json_object_new_object();
        char path[DNS_NAME_MAX + 16];
        dns_reply rep;
        int r;

        zone_path(u->zone, "", path, sizeof path);
        json_object_object_add(body, "rrsets", json_object_get(u->patch));
        r = dns_api_call(u->call, &u->c, "PATCH", path, body, &rep, err);
        json_object_put(body);
        if (r < 0)
                return -1;
        if (rep.status >= 300)
                r = dns_api_error(&rep, "updating the zone", err);
        dns_reply_free(&rep);
        return r;
}

static void upsert_free(upsert *u) {
        dns_set_free(&u->want);
        dns_set_free(&u->have);
        json_object_put(u->meta);
        json_object_put(u->meta_have);
        json_object_put(u->patch);
        json_object_put(u->report);
        json_object_put(u->meta_chg);
        free(u->text);
}

static void result(upsert *u, bool created, json_object *serial) {
        json_object *res = jb_call_result(u->call), *diff = json_object_new_object();

        json_object_object_add(res, "zone", json_object_new_string(u->zone));
        json_object_object_add(res, "checked", json_object_new_string(u->report ? "pdns" : "memo"));
        if (!u->report)
                u->report = json_object_new_array();
        json_object_object_add(res, "created", json_object_new_boolean(created));
        json_object_object_add(diff, "rrsets", json_object_get(u->report));
        json_object_object_add(diff, "metadata", u->meta_chg ? meta_report(u->meta_chg) : json_object_new_array());
        json_object_object_add(res, "diff", diff);
        if (serial)
                json_object_object_add(res, "serial", json_object_get(serial));
}

static int upsert_new(upsert *u, jb_err *err) {
        dns_set none = { 0 };

        u->meta_chg = meta_changes(u->meta, NULL);
        dns_diff(&u->want, &none, NULL, &u->report, err);
        result(u, true, NULL);
        jb_call_set_changed(u->call, true);
        if (jb_call_dry_run(u->call))
                return 0;
        dns_memo_forget(&u->c, u->zone);
        if (create_zone(u, err) < 0 || write_meta(u->call, &u->c, u->zone, u->meta_chg, err) < 0)
                return -1;
        dns_memo_write(&u->c, u->zone, u->text);
        return 0;
}

static int upsert_existing(upsert *u, json_object *zone_json, jb_err *err) {
        json_object *serial = NULL;
        int n;

        if (dns_set_from_api(zone_json, &u->have, err) < 0 || read_meta(u->call, &u->c, u->zone, &u->meta_have, err) < 0)
                return -1;
        n = dns_diff(&u->want, &u->have, &u->patch, &u->report, err);
        if (n < 0)
                return -1;
        u->meta_chg = meta_changes(u->meta, u->meta_have);
        json_object_object_get_ex(zone_json, "serial", &serial);
        if (n == 0 && json_object_object_length(u->meta_chg) == 0) {
                result(u, false, serial);
                if (!jb_call_dry_run(u->call))
                        dns_memo_write(&u->c, u->zone, u->text);
                return 0;
        }
        result(u, false, NULL);
        jb_call_set_changed(u->call, true);
        if (jb_call_dry_run(u->call))
                return 0;
        dns_memo_forget(&u->c, u->zone);
        if ((n > 0 && patch_zone(u, err) < 0) || write_meta(u->call, &u->c, u->zone, u->meta_chg, err) < 0)
                return -1;
        dns_memo_write(&u->c, u->zone, u->text);
        return 0;
}

int dns_zone_upsert(jb_call *call) {
        upsert u = { .call = call, .zone = jb_param_str(call, "zone", NULL) };
        char path[DNS_NAME_MAX + 16];
        jb_err err = JB_ERR_INIT;
        dns_reply rep = { 0 };
        int r = -1;

        dns_cfg_load(call, &u.c);
        /* Everything is checked before pdns is asked anything. */
        if (dns_desired_from_params(u.zone, jb_call_params(call), &u.c.lim, &u.want, &err) < 0 ||
            dns_meta_from_params(jb_call_params(call), &u.meta, &err) < 0)
                goto out;
        u.text = dns_state_text(&u.want, u.meta);
        if (!u.text) {
                jb_err_set(&err, JB_E_INTERNAL, "out of memory");
                goto out;
        }
        if (!jb_param_bool(call, "verify", false) && dns_memo_fresh(&u.c, u.zone, u.text)) {
                result(&u, false, NULL);        /* converged, and recently checked */
                r = 0;
                goto out;
        }
        zone_path(u.zone, "", path, sizeof path);
        if (dns_api_call(call, &u.c, "GET", path, NULL, &rep, &err) < 0)
                goto out;
        if (rep.status == 404)
                r = upsert_new(&u, &err);
        else if (rep.status == 200 && rep.json)
                r = upsert_existing(&u, rep.json, &err);
        else
                r = dns_api_error(&rep, "reading the zone", &err);
out:
        dns_reply_free(&rep);
        upsert_free(&u);
        return r < 0 ? jb_call_fail_err(call, &err) : 0;
}

/* ---- delete, get, list ---- */

int dns_zone_delete(jb_call *call) {
        const char *zone = jb_param_str(call, "zone", NULL);
        const bool dry = jb_call_dry_run(call);
        char path[DNS_NAME_MAX + 16];
        jb_err err = JB_ERR_INIT;
        dns_reply rep;
        dns_cfg c;

        dns_cfg_load(call, &c);
        zone_path(zone, "", path, sizeof path);
        if (!dry)
                dns_memo_forget(&c, zone);
        if (dns_api_call(call, &c, dry ? "GET" : "DELETE", path, NULL, &rep, &err) < 0)
                return jb_call_fail_err(call, &err);
        if (rep.status >= 300 && rep.status != 404) {
                dns_api_error(&rep, dry ? "reading the zone" : "deleting the zone", &err);
                dns_reply_free(&rep);
                return jb_call_fail_err(call, &err);
        }
        json_object_object_add(jb_call_result(call), "zone", json_object_new_string(zone));
        jb_call_set_changed(call, rep.status != 404);
        dns_reply_free(&rep);
        return 0;
}

static void copy_member(json_object *to, json_object *from, const char *key) {
        json_object *v;

        if (json_object_object_get_ex(from, key, &v))
                json_object_object_add(to, key, json_object_get(v));
}

int dns_zone_get(jb_call *call) {
        const char *zone = jb_param_str(call, "zone", NULL);
        json_object *res = jb_call_result(call), *meta = NULL, *rrsets;
        char path[DNS_NAME_MAX + 16];
        jb_err err = JB_ERR_INIT;
        dns_set have = { 0 };
        dns_reply rep;
        dns_cfg c;

        dns_cfg_load(call, &c);
        zone_path(zone, "", path, sizeof path);
        if (dns_api_call(call, &c, "GET", path, NULL, &rep, &err) < 0)
                return jb_call_fail_err(call, &err);
        if (rep.status != 200 || !rep.json) {
                dns_api_error(&rep, "reading the zone", &err);
                dns_reply_free(&rep);
                return jb_call_fail_err(call, &err);
        }
        if (dns_set_from_api(rep.json, &have, &err) < 0 || read_meta(call, &c, zone, &meta, &err) < 0) {
                dns_set_free(&have);
                dns_reply_free(&rep);
                return jb_call_fail_err(call, &err);
        }
        rrsets = dns_set_to_api(&have);
        json_object_object_add(res, "zone", json_object_new_string(zone));
        copy_member(res, rep.json, "kind");
        copy_member(res, rep.json, "serial");
        copy_member(res, rep.json, "dnssec");
        json_object_object_add(res, "rrsets", rrsets);
        for (int k = 0; dns_meta_kinds[k]; k++) {
                json_object *v = meta_values(meta, dns_meta_kinds[k]);
                json_object_object_add(res, dns_meta_params[k], v ? json_object_get(v) : json_object_new_array());
        }
        json_object_put(meta);
        dns_set_free(&have);
        dns_reply_free(&rep);
        return 0;
}

int dns_zone_list(jb_call *call) {
        json_object *zones = json_object_new_array();
        jb_err err = JB_ERR_INIT;
        dns_reply rep;
        dns_cfg c;

        dns_cfg_load(call, &c);
        json_object_object_add(jb_call_result(call), "zones", zones);
        if (dns_api_call(call, &c, "GET", "/zones", NULL, &rep, &err) < 0)
                return jb_call_fail_err(call, &err);
        if (rep.status != 200 || !rep.json || !json_object_is_type(rep.json, json_type_array)) {
                if (rep.status == 200)
                        jb_err_set(&err, JB_E_SERVICE_FAILED, "listing zones: the answer is not a list");
                else
                        dns_api_error(&rep, "listing zones", &err);
                dns_reply_free(&rep);
                return jb_call_fail_err(call, &err);
        }
        for (size_t i = 0; i < json_object_array_length(rep.json); i++) {
                json_object *z = json_object_array_get_idx(rep.json, i), *name, *o;
                const char *s;
                size_t n;

                if (!json_object_object_get_ex(z, "name", &name))
                        continue;
                s = json_object_get_string(name);
                n = strlen(s);
                o = json_object_new_object();
                json_object_object_add(o, "zone", json_object_new_string_len(s, n > 1 && s[n - 1] == '.' ? (int) n - 1 : (int) n));
                copy_member(o, z, "kind");
                copy_member(o, z, "serial");
                copy_member(o, z, "dnssec");
                json_object_array_add(zones, o);
        }
        dns_reply_free(&rep);
        return 0;
}
