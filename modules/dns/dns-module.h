/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef DNS_MODULE_H
#define DNS_MODULE_H

/* The handler half of the dns module: settings, the API client and the
 * handlers. Not linked by the unit tests (it needs libcurl). */

#include <jabali/module.h>

#include "dns-internal.h"

typedef struct dns_cfg {
        const char *api_url;            /* "http://127.0.0.1:8081", no final '/' */
        const char *api_key_file;
        const char *server_id;
        const char *zone_kind;          /* "Native" or "Master" */
        int64_t timeout_ms;
        const char *state_dir;          /* the memo of converged zones */
        int64_t verify_after_s;         /* 0: always read pdns */
        dns_limits lim;
} dns_cfg;

void dns_cfg_load(jb_call *call, dns_cfg *c);

/* ---- dns-api.c ---- */

typedef struct dns_reply {
        long status;            /* HTTP status */
        json_object *json;      /* parsed body, or NULL when empty */
} dns_reply;

/* METHOD {api_url}/api/v1/servers/{server_id}{path} with body (or none),
 * within the call's deadline and timeout_ms. 0 when an HTTP answer came
 * back (whatever its status); -1 with SERVICE_FAILED (unreachable, bad
 * answer), TIMEOUT or CONFIG_INVALID (key file) otherwise. */
int dns_api_call(jb_call *call, const dns_cfg *c, const char *method, const char *path, json_object *body,
                 dns_reply *reply, jb_err *err);
void dns_reply_free(dns_reply *r);
/* An error from a non-2xx answer: 404 NOT_FOUND, 409 CONFLICT, 422
 * CONFIG_INVALID (pdns refused the data), else SERVICE_FAILED; `what` leads
 * the message. Returns -1. */
int dns_api_error(const dns_reply *r, const char *what, jb_err *err);
void dns_api_close(void);

/* ---- dns-cache.c ---- */

/* Drops pdns's cached answers for the zone and every name beneath it;
 * *count (may be NULL) gets how many entries went. */
int dns_flush_zone(jb_call *call, const dns_cfg *c, const char *zone, int64_t *count, jb_err *err);

/* ---- dns-memo.c ---- */

/* True when <state_dir>/<zone> holds exactly text and is younger than
 * verify_after_s. */
bool dns_memo_fresh(const dns_cfg *c, const char *zone, const char *text);
/* Remembers text as the zone's converged state, now. */
void dns_memo_write(const dns_cfg *c, const char *zone, const char *text);
/* Forgets the zone (before any write to it). */
void dns_memo_forget(const dns_cfg *c, const char *zone);
/* Makes the directory when missing; clears abandoned temporary files. */
void dns_memo_init(const char *state_dir);

/* ---- handlers ---- */

int dns_zone_upsert(jb_call *call);
int dns_zone_delete(jb_call *call);
int dns_zone_get(jb_call *call);
int dns_zone_list(jb_call *call);
int dns_dnssec_enable(jb_call *call);
int dns_dnssec_disable(jb_call *call);
int dns_dnssec_ds(jb_call *call);
int dns_cache_purge(jb_call *call);
int dns_notify(jb_call *call);

#endif
