/* SPDX-License-Identifier: GPL-3.0-or-later */
/* From a frame to an answer. */

#include <stdio.h>
#include <string.h>

#include "audit.h"
#include "conn.h"
#include "dispatch.h"
#include "log.h"
#include "pool.h"
#include "util.h"

uint32_t action_timeout(const struct agent_config *cfg, const jb_action *a) {
        uint32_t max = action_max_timeout(cfg, a);
        uint32_t t = a->timeout_ms ? a->timeout_ms : cfg->default_timeout_ms;
        return t < max ? t : max;
}

uint32_t action_max_timeout(const struct agent_config *cfg, const jb_action *a) {
        return a->max_timeout_ms ? a->max_timeout_ms : cfg->max_timeout_ms;
}

/* What the request acts on, for the audit trail: the first of these params
 * that is present. */
static const char *audit_target(json_object *params) {
        static const char *const keys[] = { "domain", "user", "username", "email", "zone", "database", "name" };
        json_object *v;

        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                if (json_object_object_get_ex(params, keys[i], &v) && json_object_is_type(v, json_type_string))
                        return json_object_get_string(v);
        return NULL;
}

static void audit_request(pending *p, const char *result, const char *error, bool changed, const char *hat,
                          const char *confinement) {
        server *s = p->srv;
        json_object *redacted = NULL;
        jb_err err = JB_ERR_INIT;

        if (p->action && p->req.params)
                redacted = jb_schema_redact(p->action->def->params, p->req.params);
        audit_record r = {
                .event = "request",
                .request_id = p->req.request_id,
                .action = p->action ? p->action->def->name : p->req.action,
                .module = p->action ? (p->action->module ? p->action->module->name : "agent") : NULL,
                .pid = p->peer.pid, .uid = p->peer.uid, .gid = p->peer.gid,
                .actor = p->req.actor,
                /* Secrets and undeclared members are "***"; a request that
                 * never reached an action records no params at all. */
                .params = redacted,
                .target = p->action ? audit_target(p->req.params) : NULL,
                .result = result,
                .error = error,
                .changed = changed,
                .dry_run = p->req.dry_run,
                .duration_usec = now_usec() - p->start_usec,
                .hat = hat,
                .confinement = confinement,
        };
        s->audit_failing = audit_write(s->audit, &r, &err) < 0;
        if (s->audit_failing)
                log_full(LOG_ERR, p->req.request_id, "audit record not written: %s", err.msg);
        json_object_put(redacted);
}

static void finish(pending *p, char *response, size_t len) {
        server *s = p->srv;

        p->response = response;
        p->response_len = len;
        p->done = true;
        s->stats.requests++;
        if (s->in_flight > 0)
                s->in_flight--;
        if (p->conn)
                conn_request_done(p->conn);
        else
                pending_free(p);
        server_maybe_exit(s);
}

void pending_finish_ok(pending *p, json_object *result, const char *hat, const char *confinement) {
        json_object *changed = NULL;
        size_t len = 0;
        char *resp;

        if (!json_object_object_get_ex(result, "changed", &changed) ||
            !json_object_is_type(changed, json_type_boolean)) {
                changed = json_object_new_boolean(false);
                json_object_object_add(result, "changed", changed);
        }
        resp = response_ok(p->req.request_id, result, &len);
        if (!resp) {
                jb_err e = JB_ERR_INIT;
                jb_err_set(&e, JB_E_INTERNAL, "cannot serialise the result");
                pending_finish_err(p, &e, hat, confinement);
                return;
        }
        audit_request(p, "ok", NULL, json_object_get_boolean(changed), hat, confinement);
        finish(p, resp, len);
}

void pending_finish_err(pending *p, const jb_err *err, const char *hat, const char *confinement) {
        size_t len = 0;
        char *resp;

        p->srv->stats.errors++;
        audit_request(p, err->code, err->msg, false, hat, confinement);
        resp = response_error(p->req.request_id, err->code, err->msg, &len);
        finish(p, resp, resp ? len : 0);
}

void pending_free(pending *p) {
        if (!p)
                return;
        pool_forget(p);
        request_done(&p->req);
        modset_unref(p->set);
        free(p->lock_key);
        free(p->response);
        free(p);
}

static int run_builtin(pending *p) {
        jb_err err = JB_ERR_INIT;
        json_object *result = json_object_new_object();

        if (!result)
                return -ENOMEM;
        if (p->action->builtin(p->srv, p, result, &err) < 0)
                pending_finish_err(p, &err, NULL, NULL);
        else
                pending_finish_ok(p, result, NULL, NULL);
        json_object_put(result);
        return 0;
}

/* Everything the master checks before a request may reach a worker. */
static int admit(pending *p, jb_err *err) {
        server *s = p->srv;
        const jb_action *a;

        p->action = modset_find(s->modules, p->req.action);
        if (!p->action) {
                /* An optional module that failed keeps its name: say so. */
                const char *dot = strchr(p->req.action, '.');
                if (dot) {
                        char name[65];
                        snprintf(name, sizeof name, "%.*s", (int) (dot - p->req.action), p->req.action);
                        module *m = modset_module(s->modules, name);
                        if (m && m->state != MODULE_READY)
                                return jb_err_set(err, JB_E_MODULE_UNAVAILABLE, "module %s is unavailable: %s",
                                                  m->name, m->reason);
                }
                return jb_err_set(err, JB_E_UNKNOWN_ACTION, "no action '%s'", p->req.action);
        }
        a = p->action->def;
        /* Host changes are never begun while they could not be audited;
         * the next record written (any request's) clears the condition. */
        if ((a->flags & JB_ACTION_MUTATING) && !p->req.dry_run && s->audit_failing)
                return jb_err_set(err, JB_E_INTERNAL, "the audit trail cannot be written; refusing to change the host");
        if (p->req.dry_run && !(a->flags & JB_ACTION_DRY_RUN) && (a->flags & JB_ACTION_MUTATING))
                return jb_err_set(err, JB_E_INVALID_REQUEST, "%s does not support dry_run", a->name);
        if (p->req.timeout_ms > action_max_timeout(s->config, a))
                return jb_err_set(err, JB_E_INVALID_REQUEST, "timeout_ms above %s's maximum of %u ms", a->name,
                                  action_max_timeout(s->config, a));
        if (a->params) {
                if (jb_schema_validate(a->params, p->req.params, err) < 0)
                        return -1;
        } else if (json_object_object_length(p->req.params) > 0)
                return jb_err_set(err, JB_E_INVALID_PARAMS, "%s takes no parameters", a->name);
        p->deadline_usec = p->start_usec +
                           1000ULL * (p->req.timeout_ms ? p->req.timeout_ms : action_timeout(s->config, a));
        return 0;
}

int dispatch_frame(conn *c, const struct peer *peer, const char *buf, size_t len) {
        server *s = conn_server(c);
        jb_err err = JB_ERR_INIT;
        struct envelope_limits lim = {
                .max_depth = s->config->max_depth,
                .max_timeout_ms = s->config->max_timeout_ms,
        };
        pending *p = calloc(1, sizeof(pending));

        if (!p)
                return -ENOMEM;
        p->srv = s;
        p->conn = c;
        p->peer = *peer;
        p->start_usec = now_usec();
        conn_enqueue(c, p);
        s->in_flight++;

        if (request_parse(buf, len, &lim, &p->req, &err) < 0 || admit(p, &err) < 0) {
                pending_finish_err(p, &err, NULL, NULL);
                return 0;
        }
        if (p->action->builtin)
                return run_builtin(p);
        pool_submit(p->action->module->pool, p);
        return 0;
}

void audit_event(server *s, const char *event, const struct peer *peer, const char *code, const char *msg) {
        jb_err err = JB_ERR_INIT;
        audit_record r = {
                .event = event,
                .pid = peer ? peer->pid : 0,
                .uid = peer ? peer->uid : (uid_t) -1,
                .gid = peer ? peer->gid : (gid_t) -1,
                .result = code,
                .error = msg,
        };
        if (audit_write(s->audit, &r, &err) < 0)
                log_error("audit record not written: %s", err.msg);
}
