/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The backend-neutral handlers: each checks what the schema cannot
 * (hash formats, the module's narrower local parts, dates, duplicates),
 * builds a mail_req and calls one operation of the configured backend.
 * Nothing reaches a backend before every check passed, so a refused
 * request writes nothing. */

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include <jabali/validate.h>

#include "mail-internal.h"

#define ADD(o, k, v) json_object_object_add((o), (k), (v))

typedef int (*op_fn)(mail_ctx *ctx, const mail_req *r, jb_err *err);

static const mail_backend *backend_of(const mail_cfg *c) {
        return strcmp(c->backend, "dovecot") == 0 ? &mail_backend_dovecot : &mail_backend_stalwart;
}

static int check_local(const char *name, const char *s, jb_err *err) {
        const char *why = NULL;

        if (!mail_local_valid(s, &why))
                return jb_err_set(err, JB_E_INVALID_PARAMS, "%s: not a usable local part: %s", name, why);
        return 0;
}

/* domain + local_part → address. */
static int mailbox_key(jb_call *call, mail_req *r, jb_err *err) {
        r->domain = jb_param_str(call, "domain", NULL);
        r->local_part = jb_param_str(call, "local_part", NULL);
        if (check_local("local_part", r->local_part, err) < 0)
                return -1;
        snprintf(r->address, sizeof r->address, "%s@%s", r->local_part, r->domain);
        return 0;
}

/* address → local part + domain; the local part in r->address's storage
 * is kept apart in `local`. */
static int address_key(jb_call *call, mail_req *r, char *local, size_t size, jb_err *err) {
        const char *addr = jb_param_str(call, "address", NULL);

        r->domain = mail_addr_split(addr, local, size);
        if (!r->domain)
                return jb_err_set(err, JB_E_INVALID_PARAMS, "address: not an address");
        r->local_part = local;
        if (check_local("address", local, err) < 0)
                return -1;
        snprintf(r->address, sizeof r->address, "%s", addr);
        return 0;
}

static int check_hash(jb_call *call, mail_req *r, jb_err *err) {
        const char *why = NULL;

        r->password_hash = jb_param_str(call, "password_hash", NULL);
        /* The message names what is wrong, never the value (a secret). */
        if (!mail_hash_valid(r->password_hash, &r->scheme, &why))
                return jb_err_set(err, JB_E_INVALID_PARAMS, "password_hash: %s", why);
        return 0;
}

static int run(jb_call *call, mail_req *r, size_t op_offset, jb_err *err) {
        mail_ctx ctx = { .call = call };
        const mail_backend *b;
        op_fn op;
        int rc;

        mail_cfg_from_settings(jb_call_settings(call), &ctx.cfg);
        ctx.dry_run = jb_call_dry_run(call);
        ctx.result = jb_call_result(call);
        b = backend_of(&ctx.cfg);
        memcpy(&op, (const char *) b + op_offset, sizeof op);
        rc = op(&ctx, r, err);
        if (rc < 0)
                return -1;
        jb_call_set_changed(call, rc > 0);
        if (rc > 0 && !ctx.dry_run)
                jb_log(call, LOG_INFO, "%s %s: changed (%s)", jb_call_action(call),
                       r->address[0] ? r->address : r->domain, b->name);
        return 0;
}

#define RUN(call, r, member, err) run((call), (r), offsetof(mail_backend, member), (err))

static int finish(jb_call *call, int rc, jb_err *err) {
        return rc < 0 ? jb_call_fail_err(call, err) : 0;
}

/* ---- domains ---- */

int mail_domain_upsert(jb_call *call) {
        mail_req r = { .quota_mib = -1 };
        jb_err err = JB_ERR_INIT;

        r.domain = jb_param_str(call, "domain", NULL);
        ADD(jb_call_result(call), "domain", json_object_new_string(r.domain));
        return finish(call, RUN(call, &r, domain_upsert, &err), &err);
}

int mail_domain_delete(jb_call *call) {
        mail_req r = { .quota_mib = -1 };
        jb_err err = JB_ERR_INIT;

        r.domain = jb_param_str(call, "domain", NULL);
        r.purge = jb_param_bool(call, "purge", false);
        ADD(jb_call_result(call), "domain", json_object_new_string(r.domain));
        return finish(call, RUN(call, &r, domain_delete, &err), &err);
}

/* ---- mailboxes ---- */

static int mailbox_common(jb_call *call, mail_req *r, jb_err *err) {
        if (mailbox_key(call, r, err) < 0)
                return -1;
        ADD(jb_call_result(call), "address", json_object_new_string(r->address));
        return 0;
}

int mail_mailbox_create(jb_call *call) {
        mail_req r = { 0 };
        jb_err err = JB_ERR_INIT;
        int rc = -1;

        r.quota_mib = jb_param_int(call, "quota_mib", 0);
        if (mailbox_common(call, &r, &err) == 0 && check_hash(call, &r, &err) == 0)
                rc = RUN(call, &r, mailbox_create, &err);
        return finish(call, rc, &err);
}

int mail_mailbox_passwd(jb_call *call) {
        mail_req r = { .quota_mib = -1 };
        jb_err err = JB_ERR_INIT;
        int rc = -1;

        if (mailbox_common(call, &r, &err) == 0 && check_hash(call, &r, &err) == 0)
                rc = RUN(call, &r, mailbox_passwd, &err);
        return finish(call, rc, &err);
}

int mail_mailbox_set_quota(jb_call *call) {
        mail_req r = { 0 };
        jb_err err = JB_ERR_INIT;
        int rc = -1;

        r.quota_mib = jb_param_int(call, "quota_mib", 0);
        if (mailbox_common(call, &r, &err) == 0)
                rc = RUN(call, &r, mailbox_set_quota, &err);
        return finish(call, rc, &err);
}

int mail_mailbox_delete(jb_call *call) {
        mail_req r = { .quota_mib = -1 };
        jb_err err = JB_ERR_INIT;
        int rc = -1;

        r.purge = jb_param_bool(call, "purge", false);
        if (mailbox_common(call, &r, &err) == 0)
                rc = RUN(call, &r, mailbox_delete, &err);
        return finish(call, rc, &err);
}

int mail_mailbox_get(jb_call *call) {
        mail_req r = { .quota_mib = -1 };
        jb_err err = JB_ERR_INIT;
        int rc = -1;

        if (mailbox_key(call, &r, &err) == 0)
                rc = RUN(call, &r, mailbox_get, &err);
        return finish(call, rc, &err);
}

int mail_mailbox_list(jb_call *call) {
        mail_req r = { .quota_mib = -1 };
        jb_err err = JB_ERR_INIT;

        r.domain = jb_param_str(call, "domain", NULL);
        ADD(jb_call_result(call), "domain", json_object_new_string(r.domain));
        return finish(call, RUN(call, &r, mailbox_list, &err), &err);
}

int mail_mailbox_usage(jb_call *call) {
        mail_req r = { .quota_mib = -1 };
        jb_err err = JB_ERR_INIT;
        int rc = -1;

        if (mailbox_common(call, &r, &err) == 0)
                rc = RUN(call, &r, mailbox_usage, &err);
        return finish(call, rc, &err);
}

/* ---- forwarders ---- */

int mail_forwarder_upsert(jb_call *call) {
        json_object *params = jb_call_params(call), *aliases = NULL, *externals = NULL;
        const char *alias_v[MAIL_ALIASES_MAX] = { 0 };
        mail_external ext_v[MAIL_EXTERNALS_MAX] = { 0 };
        char local[MAIL_ADDR_MAX];
        mail_req r = { .quota_mib = -1 };
        jb_err err = JB_ERR_INIT;
        int rc = -1;

        if (address_key(call, &r, local, sizeof local, &err) < 0)
                goto out;
        ADD(jb_call_result(call), "address", json_object_new_string(r.address));
        json_object_object_get_ex(params, "aliases", &aliases);
        json_object_object_get_ex(params, "externals", &externals);
        /* The schema bounds both; the arrays must not depend on it alone. */
        if ((aliases && json_object_array_length(aliases) > MAIL_ALIASES_MAX) ||
            (externals && json_object_array_length(externals) > MAIL_EXTERNALS_MAX)) {
                jb_err_set(&err, JB_E_INVALID_PARAMS, "too many aliases or externals");
                goto out;
        }
        for (size_t i = 0; aliases && i < json_object_array_length(aliases); i++) {
                const char *a = json_object_get_string(json_object_array_get_idx(aliases, i));
                char name[32];

                snprintf(name, sizeof name, "aliases[%zu]", i);
                if (check_local(name, a, &err) < 0)
                        goto out;
                if (strcmp(a, local) == 0) {
                        jb_err_set(&err, JB_E_INVALID_PARAMS, "%s: the mailbox's own local part", name);
                        goto out;
                }
                for (size_t j = 0; j < r.n_aliases; j++)
                        if (strcmp(alias_v[j], a) == 0) {
                                jb_err_set(&err, JB_E_INVALID_PARAMS, "%s: listed twice", name);
                                goto out;
                        }
                alias_v[r.n_aliases++] = a;
        }
        for (size_t i = 0; externals && i < json_object_array_length(externals); i++) {
                json_object *e = json_object_array_get_idx(externals, i), *t, *k;
                const char *target;

                json_object_object_get_ex(e, "target", &t);
                target = json_object_get_string(t);
                if (strcmp(target, r.address) == 0) {
                        jb_err_set(&err, JB_E_INVALID_PARAMS, "externals[%zu]: the mailbox itself", i);
                        goto out;
                }
                for (size_t j = 0; j < r.n_externals; j++)
                        if (strcmp(ext_v[j].target, target) == 0) {
                                jb_err_set(&err, JB_E_INVALID_PARAMS, "externals[%zu]: listed twice", i);
                                goto out;
                        }
                ext_v[r.n_externals].target = target;
                ext_v[r.n_externals++].keep_copy =
                        json_object_object_get_ex(e, "keep_copy", &k) && json_object_get_boolean(k);
        }
        r.aliases = alias_v;
        r.externals = ext_v;
        rc = RUN(call, &r, forwarder_upsert, &err);
out:
        return finish(call, rc, &err);
}

int mail_forwarder_delete(jb_call *call) {
        char local[MAIL_ADDR_MAX];
        mail_req r = { .quota_mib = -1 };
        jb_err err = JB_ERR_INIT;
        int rc = -1;

        if (address_key(call, &r, local, sizeof local, &err) == 0) {
                ADD(jb_call_result(call), "address", json_object_new_string(r.address));
                rc = RUN(call, &r, forwarder_delete, &err);
        }
        return finish(call, rc, &err);
}

/* ---- autoresponders ---- */

int mail_autoresponder_upsert(jb_call *call) {
        char local[MAIL_ADDR_MAX];
        mail_req r = { .quota_mib = -1 };
        mail_vacation *v = &r.vacation;
        jb_err err = JB_ERR_INIT;
        int rc = -1;

        if (address_key(call, &r, local, sizeof local, &err) < 0)
                goto out;
        ADD(jb_call_result(call), "address", json_object_new_string(r.address));
        v->on = true;
        v->subject = jb_param_str(call, "subject", NULL);
        v->body = jb_param_str(call, "body", NULL);
        v->start = jb_param_str(call, "start", NULL);
        v->end = jb_param_str(call, "end", NULL);
        v->interval_days = jb_param_int(call, "interval_days", 1);
        if ((v->start && !mail_date_valid(v->start)) || (v->end && !mail_date_valid(v->end))) {
                jb_err_set(&err, JB_E_INVALID_PARAMS, "%s: not a date (YYYY-MM-DD)",
                           v->start && !mail_date_valid(v->start) ? "start" : "end");
                goto out;
        }
        if (v->start && v->end && strcmp(v->start, v->end) > 0) {
                jb_err_set(&err, JB_E_INVALID_PARAMS, "end: before start");
                goto out;
        }
        rc = RUN(call, &r, autoresponder_upsert, &err);
out:
        return finish(call, rc, &err);
}

int mail_autoresponder_delete(jb_call *call) {
        char local[MAIL_ADDR_MAX];
        mail_req r = { .quota_mib = -1 };
        jb_err err = JB_ERR_INIT;
        int rc = -1;

        if (address_key(call, &r, local, sizeof local, &err) == 0) {
                ADD(jb_call_result(call), "address", json_object_new_string(r.address));
                rc = RUN(call, &r, autoresponder_delete, &err);
        }
        return finish(call, rc, &err);
}

/* ---- catch-all ---- */

int mail_catchall_set(jb_call *call) {
        mail_req r = { .quota_mib = -1 };
        jb_err err = JB_ERR_INIT;

        r.domain = jb_param_str(call, "domain", NULL);
        r.target = jb_param_str(call, "target", NULL);
        ADD(jb_call_result(call), "domain", json_object_new_string(r.domain));
        ADD(jb_call_result(call), "target", r.target ? json_object_new_string(r.target) : NULL);
        return finish(call, RUN(call, &r, catchall_set, &err), &err);
}
