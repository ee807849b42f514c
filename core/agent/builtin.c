/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The agent.* actions. They run in the master and touch nothing on the host. */

#include <string.h>

#include "dispatch.h"
#include "modules.h"
#include "pool.h"
#include "reloader.h"
#include "server.h"
#include "util.h"

static json_object *jstr(const char *s) {
        return s ? json_object_new_string(s) : NULL;
}

static int do_ping(server *s, pending *p, json_object *result, jb_err *err) {
        json_object_object_add(result, "pong", json_object_new_boolean(true));
        return 0;
}

static int do_version(server *s, pending *p, json_object *result, jb_err *err) {
        json_object *mods = json_object_new_object();

        json_object_object_add(result, "agent", json_object_new_string(JABALI_VERSION));
        json_object_object_add(result, "abi", json_object_new_int(JABALI_MODULE_ABI));
        for (size_t i = 0; i < s->modules->n_mods; i++) {
                const module *m = &s->modules->mods[i];
                json_object *o = json_object_new_object();
                if (m->desc)
                        json_object_object_add(o, "version", jstr(m->desc->version));
                json_object_object_add(o, "state",
                                       json_object_new_string(m->state == MODULE_READY ? "ready" : "unavailable"));
                json_object_object_add(mods, m->name, o);
        }
        json_object_object_add(result, "modules", mods);
        return 0;
}

static int do_actions(server *s, pending *p, json_object *result, jb_err *err) {
        json_object *arr = json_object_new_array();

        for (size_t i = 0; i < s->modules->n_actions; i++)
                json_object_array_add(arr, json_object_new_string(s->modules->actions[i].def->name));
        json_object_object_add(result, "actions", arr);
        return 0;
}

static json_object *strv_json(const char *const *v) {
        json_object *arr = json_object_new_array();
        for (; v && *v; v++)
                json_object_array_add(arr, json_object_new_string(*v));
        return arr;
}

json_object *describe_action(const struct agent_config *cfg, const action_entry *e) {
        const jb_action *a = e->def;
        json_object *o = json_object_new_object();
        static const jb_param none[] = { JB_P_END };

        json_object_object_add(o, "name", json_object_new_string(a->name));
        json_object_object_add(o, "module", json_object_new_string(e->module ? e->module->name : "agent"));
        if (a->summary)
                json_object_object_add(o, "summary", json_object_new_string(a->summary));
        json_object_object_add(o, "mutating", json_object_new_boolean(a->flags & JB_ACTION_MUTATING));
        json_object_object_add(o, "dry_run", json_object_new_boolean(a->flags & JB_ACTION_DRY_RUN));
        json_object_object_add(o, "timeout_ms", json_object_new_int64(action_timeout(cfg, a)));
        json_object_object_add(o, "max_timeout_ms", json_object_new_int64(action_max_timeout(cfg, a)));
        if (a->lock)
                json_object_object_add(o, "lock", json_object_new_string(a->lock));
        json_object_object_add(o, "params", jb_schema_describe(a->params ? a->params : none));
        json_object_object_add(o, "errors", strv_json(a->errors));
        return o;
}

static int do_describe(server *s, pending *p, json_object *result, jb_err *err) {
        const char *action = NULL, *mod = NULL;
        json_object *v, *arr;

        if (json_object_object_get_ex(p->req.params, "action", &v))
                action = json_object_get_string(v);
        if (json_object_object_get_ex(p->req.params, "module", &v))
                mod = json_object_get_string(v);
        if (action) {
                const action_entry *e = modset_find(s->modules, action);
                if (!e)
                        return jb_err_set(err, JB_E_NOT_FOUND, "no action '%s'", action);
                arr = json_object_new_array();
                json_object_array_add(arr, describe_action(s->config, e));
        } else {
                arr = json_object_new_array();
                for (size_t i = 0; i < s->modules->n_actions; i++) {
                        const action_entry *e = &s->modules->actions[i];
                        const char *owner = e->module ? e->module->name : "agent";
                        if (mod && !streq(mod, owner))
                                continue;
                        json_object_array_add(arr, describe_action(s->config, e));
                }
                if (mod && json_object_array_length(arr) == 0 && !modset_module(s->modules, mod)) {
                        json_object_put(arr);
                        return jb_err_set(err, JB_E_NOT_FOUND, "no module '%s'", mod);
                }
        }
        json_object_object_add(result, "actions", arr);
        return 0;
}

static int do_health(server *s, pending *p, json_object *result, jb_err *err) {
        json_object *mods = json_object_new_object();
        bool degraded = false;

        for (size_t i = 0; i < s->modules->n_mods; i++) {
                const module *m = &s->modules->mods[i];
                json_object *o = json_object_new_object();
                if (m->state != MODULE_READY) {
                        json_object_object_add(o, "state", json_object_new_string("unavailable"));
                        json_object_object_add(o, "reason", jstr(m->reason));
                        degraded = true;
                } else if (pool_health(m->pool, o))
                        degraded = true;
                json_object_object_add(mods, m->name, o);
        }
        json_object_object_add(result, "status", json_object_new_string(degraded ? "degraded" : "ok"));
        json_object_object_add(result, "uptime_ms", json_object_new_int64((int64_t) ((now_usec() - s->start_usec) / 1000)));
        json_object_object_add(result, "connections", json_object_new_int64(s->n_conns));
        json_object_object_add(result, "in_flight", json_object_new_int64(s->in_flight));
        json_object_object_add(result, "requests", json_object_new_int64((int64_t) s->stats.requests));
        json_object_object_add(result, "errors", json_object_new_int64((int64_t) s->stats.errors));
        json_object_object_add(result, "apparmor",
                               json_object_new_string(apparmor_mode_to_string(s->config->apparmor)));
        json_object_object_add(result, "modules", mods);
        json_object_object_add(result, "reloads", reloader_health(s->reloader));
        return 0;
}

static const jb_param describe_params[] = {
        JB_P_STRLEN("action", JB_CHECK_TOKEN, 0, 1, 64, "describe only this action"),
        JB_P_STRLEN("module", JB_CHECK_TOKEN, 0, 1, 32, "describe only this module's actions (\"agent\" for the built-ins)"),
        JB_P_END
};

static const jb_action defs[] = {
        { .name = "agent.actions", .summary = "list every action this agent answers" },
        { .name = "agent.describe", .params = describe_params,
          .summary = "publish the contract (parameter schemas, flags, timeouts) of one or all actions" },
        { .name = "agent.health", .summary = "per-module state, workers and counters" },
        { .name = "agent.ping", .summary = "answer at once; proves the socket and the master work" },
        { .name = "agent.version", .summary = "version and ABI of the agent and of each module" },
};

static const action_entry entries[] = {
        { .def = &defs[0], .builtin = do_actions },
        { .def = &defs[1], .builtin = do_describe },
        { .def = &defs[2], .builtin = do_health },
        { .def = &defs[3], .builtin = do_ping },
        { .def = &defs[4], .builtin = do_version },
};

const action_entry *builtin_actions(size_t *ret_n) {
        *ret_n = ELEMENTSOF(entries);
        return entries;
}
