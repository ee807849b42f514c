/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The dns module: authoritative zones served by PowerDNS, converged
 * through its HTTP API on loopback. The descriptor, the action table, the
 * schemas and the settings; the handlers live in dns-*.c. See README.md. */

#include <string.h>

#include <jabali/module.h>

#include "dns-module.h"

static void cfg_from_settings(json_object *s, dns_cfg *c) {
        dns_limits *l = &c->lim;

        c->api_url = jb_settings_str(s, "api_url", "http://127.0.0.1:8081");
        c->api_key_file = jb_settings_str(s, "api_key_file", "/etc/jabali/pdns-api.key");
        c->server_id = jb_settings_str(s, "server_id", "localhost");
        c->zone_kind = jb_settings_str(s, "zone_kind", "Native");
        c->timeout_ms = jb_settings_int(s, "api_timeout_ms", 10000);
        c->state_dir = jb_settings_str(s, "state_dir", "/run/jabali-agent/dns");
        c->verify_after_s = jb_settings_int(s, "verify_after_s", 300);
        dns_limits_default(l);
        l->min_ttl = jb_settings_int(s, "min_ttl", l->min_ttl);
        l->max_ttl = jb_settings_int(s, "max_ttl", l->max_ttl);
        l->default_ttl = jb_settings_int(s, "default_ttl", l->default_ttl);
        l->max_records = jb_settings_int(s, "max_records", l->max_records);
        l->soa_rname = jb_settings_str(s, "soa_rname", l->soa_rname);
        l->soa_refresh = jb_settings_int(s, "soa_refresh", l->soa_refresh);
        l->soa_retry = jb_settings_int(s, "soa_retry", l->soa_retry);
        l->soa_expire = jb_settings_int(s, "soa_expire", l->soa_expire);
        l->soa_minimum = jb_settings_int(s, "soa_minimum", l->soa_minimum);
}

void dns_cfg_load(jb_call *call, dns_cfg *c) {
        cfg_from_settings(jb_call_settings(call), c);
}

static int worker_init(json_object *settings, jb_err *err) {
        dns_cfg c;

        (void) err;
        cfg_from_settings(settings, &c);
        dns_memo_init(c.state_dir);
        return 0;
}

static void fini(void) {
        dns_api_close();
}

/* ---- parameter schemas ---- */

#define TTL_MAX 2147483647LL    /* RFC 2181 §8 */
#define RECORDS_MAX 100000      /* the schema's bound; settings.max_records is the working one */

static const char *const types[] = { "A", "AAAA", "CNAME", "MX", "NS", "TXT", "SRV", "CAA", "PTR", "TLSA", "DS", NULL };
static const char *const algorithms[] = { "ECDSAP256SHA256", "ED25519", NULL };

static const jb_param record_fields[] = {
        JB_P_STRLEN("name", JB_CHECK_NONE, JB_REQUIRED, 1, 255, "@, a name relative to the zone, or absolute"),
        JB_P_ENUM("type", types, JB_REQUIRED, "record type"),
        JB_P_STRLEN("content", JB_CHECK_NONE, JB_REQUIRED, 1, 4096,
                    "the data (TXT: the raw text, quoted and split by the module)"),
        JB_P_INT("ttl", JB_CHECK_NONE, 0, 0, TTL_MAX, "seconds; default settings.default_ttl"),
        JB_P_INT("priority", JB_CHECK_NONE, 0, 0, 65535, "MX preference / SRV priority (those types only)"),
        JB_P_BOOL("disabled", 0, "kept in the zone but not served"),
        JB_P_END
};

static const jb_param record_item[] = {
        JB_P_OBJECT("record", record_fields, 0, "one record"),
        JB_P_END
};

static const jb_param host_item[] = {
        JB_P_STRLEN("host", JB_CHECK_NONE, 0, 1, 255, "a host name"),
        JB_P_END
};

static const jb_param addr_item[] = {
        JB_P_STRLEN("address", JB_CHECK_NONE, 0, 1, 64, "an address"),
        JB_P_END
};

static const jb_param soa_fields[] = {
        JB_P_STRLEN("mname", JB_CHECK_NONE, 0, 1, 255, "primary name server; default nameservers[0]"),
        JB_P_STRLEN("rname", JB_CHECK_NONE, 0, 1, 255, "the zone's contact as a name; default settings.soa_rname"),
        JB_P_INT("refresh", JB_CHECK_NONE, 0, 1, TTL_MAX, "seconds; default settings.soa_refresh"),
        JB_P_INT("retry", JB_CHECK_NONE, 0, 1, TTL_MAX, "seconds; default settings.soa_retry"),
        JB_P_INT("expire", JB_CHECK_NONE, 0, 1, TTL_MAX, "seconds; default settings.soa_expire"),
        JB_P_INT("minimum", JB_CHECK_NONE, 0, 1, TTL_MAX, "negative-caching TTL; default settings.soa_minimum"),
        JB_P_INT("ttl", JB_CHECK_NONE, 0, 0, TTL_MAX, "the SOA's own TTL; default settings.default_ttl"),
        JB_P_END
};

#define ZONE_PARAM JB_P_STRING("zone", JB_CHECK_DOMAIN, JB_REQUIRED, "the zone's name (no final dot)")

static const jb_param upsert_params[] = {
        ZONE_PARAM,
        JB_P_ARRAY("records", record_item, JB_REQUIRED, 0, RECORDS_MAX,
                   "every record of the zone but the apex SOA and NS (the full desired state)"),
        JB_P_ARRAY("nameservers", host_item, JB_REQUIRED, 1, 16, "the apex NS records"),
        JB_P_OBJECT("soa", soa_fields, 0, "SOA fields; the serial is pdns's"),
        JB_P_ARRAY("allow_axfr_from", addr_item, 0, 0, 64, "addresses or prefixes allowed to transfer the zone"),
        JB_P_ARRAY("also_notify", addr_item, 0, 0, 64, "more NOTIFY targets: ADDR, IPv4:PORT or [IPv6]:PORT"),
        JB_P_BOOL("verify", 0, "read and diff the zone in pdns even when the memo says it is converged"),
        JB_P_END
};

static const jb_param zone_only[] = {
        ZONE_PARAM,
        JB_P_END
};

static const jb_param enable_params[] = {
        ZONE_PARAM,
        JB_P_ENUM("algorithm", algorithms, 0, "the signing key's algorithm; default ECDSAP256SHA256"),
        JB_P_END
};

/* ---- settings ---- */

static const char *const kinds[] = { "Native", "Master", NULL };

static const jb_param settings[] = {
        JB_P_STRLEN("api_url", JB_CHECK_NONE, 0, 8, 512, "the pdns webserver; default http://127.0.0.1:8081"),
        JB_P_STRLEN("api_key_file", JB_CHECK_NONE, 0, 2, 1024,
                    "root-only file holding the API key; default /etc/jabali/pdns-api.key"),
        JB_P_STRLEN("server_id", JB_CHECK_TOKEN, 0, 1, 64, "the API's server id; default localhost"),
        JB_P_ENUM("zone_kind", kinds, 0, "kind of the zones created; default Native"),
        JB_P_INT("api_timeout_ms", JB_CHECK_NONE, 0, 100, 600000, "one API call at most; default 10000"),
        JB_P_STRLEN("state_dir", JB_CHECK_NONE, 0, 0, 1024,
                    "the memo of converged zones (created when missing; empty: none); default /run/jabali-agent/dns"),
        JB_P_INT("verify_after_s", JB_CHECK_NONE, 0, 0, 86400,
                 "a memo older than this is checked against pdns; 0: always read pdns; default 300"),
        JB_P_INT("min_ttl", JB_CHECK_NONE, 0, 0, TTL_MAX, "smallest TTL accepted; default 60"),
        JB_P_INT("max_ttl", JB_CHECK_NONE, 0, 0, TTL_MAX, "largest TTL accepted; default 604800"),
        JB_P_INT("default_ttl", JB_CHECK_NONE, 0, 0, TTL_MAX, "TTL of records without one; default 3600"),
        JB_P_INT("max_records", JB_CHECK_NONE, 0, 1, RECORDS_MAX, "records per zone at most; default 5000"),
        JB_P_STRLEN("soa_rname", JB_CHECK_NONE, 0, 1, 255, "default SOA contact, @ = the zone; default hostmaster.@"),
        JB_P_INT("soa_refresh", JB_CHECK_NONE, 0, 1, TTL_MAX, "default 10800"),
        JB_P_INT("soa_retry", JB_CHECK_NONE, 0, 1, TTL_MAX, "default 3600"),
        JB_P_INT("soa_expire", JB_CHECK_NONE, 0, 1, TTL_MAX, "default 604800"),
        JB_P_INT("soa_minimum", JB_CHECK_NONE, 0, 1, TTL_MAX, "default 3600"),
        JB_P_END
};

static int init(json_object *s, jb_err *err) {
        const char *url = jb_settings_str(s, "api_url", "http://127.0.0.1:8081");
        const char *key = jb_settings_str(s, "api_key_file", "/");
        dns_limits l;
        size_t n = strlen(url);

        if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
                return jb_err_set(err, JB_E_CONFIG_INVALID, "api_url must start with http:// or https://");
        if (url[n - 1] == '/')
                return jb_err_set(err, JB_E_CONFIG_INVALID, "api_url must not end with '/'");
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) url[i] <= 0x20 || url[i] == '?' || url[i] == '#')
                        return jb_err_set(err, JB_E_CONFIG_INVALID, "api_url: no spaces, query or fragment");
        if (key[0] != '/')
                return jb_err_set(err, JB_E_CONFIG_INVALID, "api_key_file must be an absolute path");
        key = jb_settings_str(s, "state_dir", "/");
        if (key[0] != '\0' && key[0] != '/')
                return jb_err_set(err, JB_E_CONFIG_INVALID, "state_dir must be an absolute path (or empty)");
        dns_limits_default(&l);
        l.min_ttl = jb_settings_int(s, "min_ttl", l.min_ttl);
        l.max_ttl = jb_settings_int(s, "max_ttl", l.max_ttl);
        l.default_ttl = jb_settings_int(s, "default_ttl", l.default_ttl);
        if (l.min_ttl > l.max_ttl || l.default_ttl < l.min_ttl || l.default_ttl > l.max_ttl)
                return jb_err_set(err, JB_E_CONFIG_INVALID, "need min_ttl <= default_ttl <= max_ttl");
        return 0;
}

/* ---- actions ---- */

#define CONVERGER (JB_ACTION_MUTATING | JB_ACTION_DRY_RUN)

static const jb_action actions[] = {
        { .name = "dns.zone.upsert", .handler = dns_zone_upsert, .params = upsert_params,
          .summary = "converge a zone to the full desired state (only changed rrsets are written)",
          .flags = CONVERGER, .timeout_ms = 60000, .lock = "zone" },
        { .name = "dns.zone.delete", .handler = dns_zone_delete, .params = zone_only,
          .summary = "remove a zone (idempotent)", .flags = CONVERGER, .timeout_ms = 60000, .lock = "zone" },
        { .name = "dns.zone.get", .handler = dns_zone_get, .params = zone_only,
          .summary = "a zone as pdns serves it", .timeout_ms = 30000 },
        { .name = "dns.zone.list", .handler = dns_zone_list, .params = NULL,
          .summary = "every zone pdns serves", .timeout_ms = 60000 },
        { .name = "dns.dnssec.enable", .handler = dns_dnssec_enable, .params = enable_params,
          .summary = "sign a zone (idempotent); the keys and the DS records for the registrar",
          .flags = CONVERGER, .timeout_ms = 60000, .lock = "zone" },
        { .name = "dns.dnssec.disable", .handler = dns_dnssec_disable, .params = zone_only,
          .summary = "stop signing a zone (idempotent)", .flags = CONVERGER, .timeout_ms = 60000, .lock = "zone" },
        { .name = "dns.dnssec.ds", .handler = dns_dnssec_ds, .params = zone_only,
          .summary = "a zone's active keys and DS records", .timeout_ms = 30000 },
        { .name = "dns.cache.purge", .handler = dns_cache_purge, .params = zone_only,
          .summary = "drop pdns's cached answers for a zone", .flags = JB_ACTION_MUTATING, .timeout_ms = 30000 },
        { .name = "dns.notify", .handler = dns_notify, .params = zone_only,
          .summary = "queue a NOTIFY of a zone to its secondaries", .flags = JB_ACTION_MUTATING,
          .timeout_ms = 30000 },
        { .name = NULL }
};

JABALI_MODULE(.name = "dns", .version = "1.0.0", .hat = "dns",
              .summary = "authoritative DNS zones in PowerDNS", .actions = actions,
              .settings = settings, .init = init, .worker_init = worker_init, .fini = fini);
