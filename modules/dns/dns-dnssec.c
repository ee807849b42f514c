/* SPDX-License-Identifier: GPL-3.0-or-later */
/* dns.dnssec.enable, .disable, .ds: signing a zone with one combined
 * signing key (CSK) made by pdns, and the DS records its owner gives the
 * registrar. pdns signs on the fly; after a key change the zone is
 * rectified and pdns's caches for it are flushed, so that answers carry
 * (or lose) their signatures at once. */

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "dns-module.h"

static const char *str_member(json_object *o, const char *k) {
        json_object *v;
        return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string) ?
                       json_object_get_string(v) : "";
}

static bool bool_member(json_object *o, const char *k) {
        json_object *v;
        return json_object_object_get_ex(o, k, &v) && json_object_get_boolean(v);
}

/* The public part of one cryptokey (never its private key). */
static json_object *key_json(json_object *k) {
        json_object *o = json_object_new_object(), *v;

        if (json_object_object_get_ex(k, "id", &v))
                json_object_object_add(o, "id", json_object_get(v));
        json_object_object_add(o, "keytype", json_object_new_string(str_member(k, "keytype")));
        if (json_object_object_get_ex(k, "flags", &v))
                json_object_object_add(o, "flags", json_object_get(v));
        json_object_object_add(o, "algorithm", json_object_new_string(str_member(k, "algorithm")));
        json_object_object_add(o, "dnskey", json_object_new_string(str_member(k, "dnskey")));
        json_object_object_add(o, "active", json_object_new_boolean(bool_member(k, "active")));
        return o;
}

/* Fills result.keys and result.ds from the active keys of a cryptokeys
 * list (or one key object); returns how many keys are active. */
static int keys_result(jb_call *call, json_object *list) {
        json_object *res = jb_call_result(call), *keys = json_object_new_array(), *ds = json_object_new_array();
        size_t n = json_object_is_type(list, json_type_array) ? json_object_array_length(list) : 1;
        int active = 0;

        for (size_t i = 0; i < n; i++) {
                json_object *k = json_object_is_type(list, json_type_array) ? json_object_array_get_idx(list, i) : list;
                json_object *d;

                if (!bool_member(k, "active"))
                        continue;
                active++;
                json_object_array_add(keys, key_json(k));
                if (json_object_object_get_ex(k, "ds", &d) && json_object_is_type(d, json_type_array))
                        for (size_t j = 0; j < json_object_array_length(d); j++)
                                json_object_array_add(ds, json_object_get(json_object_array_get_idx(d, j)));
        }
        json_object_object_add(res, "keys", keys);
        json_object_object_add(res, "ds", ds);
        json_object_object_add(res, "secured", json_object_new_boolean(active > 0));
        return active;
}

/* GET .../cryptokeys into *out; NOT_FOUND for a zone pdns does not have. */
static int read_keys(jb_call *call, const dns_cfg *c, const char *zone, json_object **out, jb_err *err) {
        char path[DNS_NAME_MAX + 32];
        dns_reply rep;

        snprintf(path, sizeof path, "/zones/%s./cryptokeys", zone);
        if (dns_api_call(call, c, "GET", path, NULL, &rep, err) < 0)
                return -1;
        if (rep.status != 200 || !rep.json || !json_object_is_type(rep.json, json_type_array)) {
                int r = rep.status == 200 ? jb_err_set(err, JB_E_SERVICE_FAILED, "cryptokeys: not a list") :
                                            dns_api_error(&rep, "reading the zone's keys", err);
                dns_reply_free(&rep);
                return r;
        }
        *out = rep.json;
        return 0;
}

/* A request without a body whose answer only has to be 2xx. */
static int simple(jb_call *call, const dns_cfg *c, const char *method, const char *path, json_object *body,
                  const char *what, jb_err *err) {
        dns_reply rep;
        int r;

        if (dns_api_call(call, c, method, path, body, &rep, err) < 0)
                return -1;
        r = rep.status < 300 ? 0 : dns_api_error(&rep, what, err);
        dns_reply_free(&rep);
        return r;
}

/* Adds the key, rectifies, flushes; fills the result from the new key. */
static int secure(jb_call *call, const dns_cfg *c, const char *zone, const char *alg, jb_err *err) {
        json_object *body = json_object_new_object();
        char path[DNS_NAME_MAX + 32];
        dns_reply rep;
        int r;

        json_object_object_add(body, "keytype", json_object_new_string("csk"));
        json_object_object_add(body, "active", json_object_new_boolean(true));
        json_object_object_add(body, "algorithm", json_object_new_string(alg));
        snprintf(path, sizeof path, "/zones/%s./cryptokeys", zone);
        r = dns_api_call(call, c, "POST", path, body, &rep, err);
        json_object_put(body);
        if (r < 0)
                return -1;
        if (rep.status != 201 || !rep.json) {
                dns_api_error(&rep, "adding the signing key", err);
                dns_reply_free(&rep);
                return -1;
        }
        keys_result(call, rep.json);
        dns_reply_free(&rep);
        snprintf(path, sizeof path, "/zones/%s./rectify", zone);
        if (simple(call, c, "PUT", path, NULL, "rectifying the zone", err) < 0)
                return -1;
        return dns_flush_zone(call, c, zone, NULL, err);
}

int dns_dnssec_enable(jb_call *call) {
        const char *zone = jb_param_str(call, "zone", NULL);
        const char *alg = jb_param_str(call, "algorithm", "ECDSAP256SHA256");
        json_object *keys = NULL;
        jb_err err = JB_ERR_INIT;
        dns_cfg c;
        int r = -1;

        dns_cfg_load(call, &c);
        json_object_object_add(jb_call_result(call), "zone", json_object_new_string(zone));
        if (read_keys(call, &c, zone, &keys, &err) < 0)
                goto out;
        for (size_t i = 0; i < json_object_array_length(keys); i++) {
                json_object *k = json_object_array_get_idx(keys, i);
                if (bool_member(k, "active") && strcasecmp(str_member(k, "algorithm"), alg) != 0) {
                        jb_err_set(&err, JB_E_CONFLICT, "%s is signed with %s, not %s: disable DNSSEC first", zone,
                                   str_member(k, "algorithm"), alg);
                        goto out;
                }
        }
        if (keys_result(call, keys) > 0) {
                r = 0;          /* secured already: the same keys and DS */
                goto out;
        }
        jb_call_set_changed(call, true);
        r = jb_call_dry_run(call) ? 0 : secure(call, &c, zone, alg, &err);
out:
        json_object_put(keys);
        return r < 0 ? jb_call_fail_err(call, &err) : 0;
}

int dns_dnssec_disable(jb_call *call) {
        const char *zone = jb_param_str(call, "zone", NULL);
        json_object *keys = NULL, *body;
        char path[DNS_NAME_MAX + 16];
        jb_err err = JB_ERR_INIT;
        dns_cfg c;
        int r = -1;

        dns_cfg_load(call, &c);
        json_object_object_add(jb_call_result(call), "zone", json_object_new_string(zone));
        if (read_keys(call, &c, zone, &keys, &err) < 0)
                goto out;
        r = 0;
        if (json_object_array_length(keys) == 0)
                goto out;
        jb_call_set_changed(call, true);
        if (jb_call_dry_run(call))
                goto out;
        /* Removes every key (and NSEC3 parameters) in one step. */
        body = json_object_new_object();
        json_object_object_add(body, "dnssec", json_object_new_boolean(false));
        snprintf(path, sizeof path, "/zones/%s.", zone);
        r = simple(call, &c, "PUT", path, body, "disabling DNSSEC", &err);
        json_object_put(body);
        if (r == 0)
                r = dns_flush_zone(call, &c, zone, NULL, &err);
out:
        json_object_put(keys);
        return r < 0 ? jb_call_fail_err(call, &err) : 0;
}

int dns_dnssec_ds(jb_call *call) {
        const char *zone = jb_param_str(call, "zone", NULL);
        json_object *keys = NULL;
        jb_err err = JB_ERR_INIT;
        dns_cfg c;

        dns_cfg_load(call, &c);
        json_object_object_add(jb_call_result(call), "zone", json_object_new_string(zone));
        if (read_keys(call, &c, zone, &keys, &err) < 0)
                return jb_call_fail_err(call, &err);
        keys_result(call, keys);
        json_object_put(keys);
        return 0;
}
