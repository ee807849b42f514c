/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef DNS_INTERNAL_H
#define DNS_INTERNAL_H

/* Shared between the dns module's files; nothing here is exported.
 *
 * The pure half (dns-record.c: names and record content; dns-rrset.c:
 * rrset sets, the diff against what pdns holds, the PATCH body) needs
 * json-c and libjabali's errors only, so the unit tests and the fuzz
 * target link it without libcurl. The other half talks to the PowerDNS
 * HTTP API (dns-api.c) and holds the handlers. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include <jabali/error.h>

/* A name in presentation form, absolute, with its final dot: 253 bytes of
 * labels and dots, the dot, the NUL. */
#define DNS_NAME_MAX 256
/* One character-string of a TXT record (RFC 1035 §3.3). */
#define DNS_TXT_CHUNK 255

/* Bounds a request is checked against; from the module's settings. */
typedef struct dns_limits {
        int64_t min_ttl;
        int64_t max_ttl;
        int64_t default_ttl;
        int64_t max_records;
        /* SOA defaults when the request has no soa (or leaves a field out). */
        const char *soa_rname;          /* "hostmaster.@" style; "@" is the zone */
        int64_t soa_refresh, soa_retry, soa_expire, soa_minimum;
} dns_limits;

void dns_limits_default(dns_limits *l);

/* One record of an rrset: its content in PowerDNS's presentation form. */
typedef struct dns_rec {
        char *content;
        bool disabled;
} dns_rec;

typedef struct dns_rrset {
        char *name;             /* absolute, lower case, final dot */
        char type[12];
        int64_t ttl;
        dns_rec *recs;          /* sorted by content */
        size_t n, cap;
        int first_index;        /* the request's records[] index that opened it, or -1 */
} dns_rrset;

/* A zone's rrsets, sorted by (name, type) once dns_set_sort ran. */
typedef struct dns_set {
        dns_rrset *v;
        size_t n, cap;
} dns_set;

void dns_set_free(dns_set *s);
void dns_set_sort(dns_set *s);
const dns_rrset *dns_set_find(const dns_set *s, const char *name, const char *type);

/* ---- dns-record.c: names and content (pure) ---- */

/* The zone (a checked domain without final dot) as "zone." in out. */
int dns_zone_fqdn(const char *zone, char out[DNS_NAME_MAX], jb_err *err);

/* An owner name of a record: "@", a name relative to the zone, or an
 * absolute one (with the final dot, or without it when it ends in the
 * zone's name). A leading "*" label is a wildcard. Upper case is folded.
 * out gets the absolute form with the final dot. */
int dns_owner_name(const char *zone_fqdn, const char *name, char out[DNS_NAME_MAX], jb_err *err);

/* A host name a record points to: "@" (the apex) or a fully-qualified
 * name (final dot optional, at least two labels); allow_root also takes
 * "." (null MX, "no service" SRV). */
int dns_target_name(const char *zone_fqdn, const char *s, bool allow_root, char out[DNS_NAME_MAX], jb_err *err);

/* TXT: the raw value as PowerDNS presentation: character-strings of at
 * most 255 bytes (split at UTF-8 boundaries), each quoted, '"' and '\'
 * escaped, bytes outside printable ASCII as \DDD. *out is malloc'd. */
int dns_txt_encode(const char *s, size_t len, char **out, jb_err *err);

/* The canonical content of one record of `type` (upper case) from the
 * request's content and priority (-1 when absent). *out is malloc'd. */
int dns_record_content(const char *zone_fqdn, const char *type, const char *content, int64_t priority, char **out,
                       jb_err *err);

/* The whole desired zone from dns.zone.upsert's params: every record
 * checked and canonicalised, grouped into rrsets, the apex NS from
 * nameservers[], the SOA from soa{} and the defaults (serial 0: pdns
 * assigns it). Errors are INVALID_PARAMS led by the field, e.g.
 * "records[3].content: ...". */
int dns_desired_from_params(const char *zone, json_object *params, const dns_limits *lim, dns_set *out, jb_err *err);

/* The managed metadata from the same params: an object mapping each kind
 * of dns_meta_kinds to its sorted, checked values (allow_axfr_from:
 * addresses or CIDR prefixes; also_notify: addresses with an optional
 * port, "[v6]:port" for IPv6). *out is a new object. */
int dns_meta_from_params(json_object *params, json_object **out, jb_err *err);

/* ---- dns-rrset.c: what pdns holds, the diff, the PATCH (pure) ---- */

/* The rrsets of a zone object as the API returns it (GET /zones/Z). */
int dns_set_from_api(json_object *zone, dns_set *out, jb_err *err);

/* The changes that turn `have` into `want`: *patch is the "rrsets" array
 * of a PATCH body (REPLACE for new or different rrsets, DELETE for the
 * ones to remove), *report one {name, type, action} per change. The SOA
 * is compared without its serial and, when it differs, sent with have's
 * serial (pdns moves it). Either output may be NULL. Returns the number
 * of changes, or -1. */
int dns_diff(const dns_set *want, const dns_set *have, json_object **patch, json_object **report, jb_err *err);

/* The desired zone (a sorted set and the managed metadata) as one text,
 * a line per record: what the module remembers of a zone it converged
 * (dns-memo.c) and compares byte for byte. NULL when out of memory. */
char *dns_state_text(const dns_set *want, json_object *meta);

/* A set as the "rrsets" array of a zone creation (POST /zones). */
json_object *dns_set_to_api(const dns_set *s);

/* Metadata kinds the module manages, and the desired values of one kind
 * from a request array (sorted, duplicates refused). */
extern const char *const dns_meta_kinds[];
extern const char *const dns_meta_params[];
/* 1 when the metadata list `have` (an API "metadata" array or NULL) holds
 * other values than `want` (compared as sets), else 0. */
int dns_meta_differs(json_object *want, json_object *have);

#endif
