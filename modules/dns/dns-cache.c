/* SPDX-License-Identifier: GPL-3.0-or-later */
/* dns.cache.purge and dns.notify, and the cache flush the DNSSEC actions
 * share: pdns's packet and query caches dropped for a whole zone, and a
 * NOTIFY queued to the zone's secondaries (its NS hosts and ALSO-NOTIFY). */

#include <stdio.h>

#include "dns-module.h"

/* Flushes every cached answer of the zone and beneath it. */
int dns_flush_zone(jb_call *call, const dns_cfg *c, const char *zone, int64_t *count, jb_err *err) {
        char path[DNS_NAME_MAX + 32];
        dns_reply rep;
        json_object *v;
        int r = 0;

        snprintf(path, sizeof path, "/cache/flush?domain=%s.", zone);
        if (dns_api_call(call, c, "PUT", path, NULL, &rep, err) < 0)
                return -1;
        if (rep.status >= 300)
                r = dns_api_error(&rep, "flushing the cache", err);
        else if (count)
                *count = rep.json && json_object_object_get_ex(rep.json, "count", &v) ? json_object_get_int64(v) : 0;
        dns_reply_free(&rep);
        return r;
}

int dns_cache_purge(jb_call *call) {
        const char *zone = jb_param_str(call, "zone", NULL);
        jb_err err = JB_ERR_INIT;
        int64_t count = 0;
        dns_cfg c;

        dns_cfg_load(call, &c);
        if (dns_flush_zone(call, &c, zone, &count, &err) < 0)
                return jb_call_fail_err(call, &err);
        json_object_object_add(jb_call_result(call), "zone", json_object_new_string(zone));
        json_object_object_add(jb_call_result(call), "purged", json_object_new_int64(count));
        jb_call_set_changed(call, count > 0);
        return 0;
}

int dns_notify(jb_call *call) {
        const char *zone = jb_param_str(call, "zone", NULL);
        char path[DNS_NAME_MAX + 32];
        jb_err err = JB_ERR_INIT;
        dns_reply rep;
        dns_cfg c;

        dns_cfg_load(call, &c);
        snprintf(path, sizeof path, "/zones/%s./notify", zone);
        if (dns_api_call(call, &c, "PUT", path, NULL, &rep, &err) < 0)
                return jb_call_fail_err(call, &err);
        if (rep.status >= 300) {
                dns_api_error(&rep, "queueing the NOTIFY", &err);
                dns_reply_free(&rep);
                return jb_call_fail_err(call, &err);
        }
        dns_reply_free(&rep);
        json_object_object_add(jb_call_result(call), "zone", json_object_new_string(zone));
        json_object_object_add(jb_call_result(call), "queued", json_object_new_boolean(true));
        return 0;
}
