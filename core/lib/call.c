/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The handler's view of a request (see <jabali/call.h>). */

#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

#include <jabali/reload.h>
#include <jabali/validate.h>

#include "call-internal.h"
#include "util.h"

JB_EXPORT const char *jb_call_action(const jb_call *call) { return call->action; }
JB_EXPORT const char *jb_call_request_id(const jb_call *call) { return call->request_id; }
JB_EXPORT bool jb_call_dry_run(const jb_call *call) { return call->dry_run; }
JB_EXPORT uint64_t jb_call_deadline_usec(const jb_call *call) { return call->deadline_usec; }
JB_EXPORT json_object *jb_call_params(const jb_call *call) { return call->params; }
JB_EXPORT json_object *jb_call_settings(const jb_call *call) { return call->settings; }

JB_EXPORT uint64_t jb_call_remaining_ms(const jb_call *call) {
        struct timespec ts;
        uint64_t now;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        now = (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
        return call->deadline_usec > now ? (call->deadline_usec - now) / 1000ULL : 0;
}

static json_object *member(json_object *o, const char *name, json_type type) {
        json_object *v;
        if (!o || !json_object_object_get_ex(o, name, &v) || !json_object_is_type(v, type))
                return NULL;
        return v;
}

JB_EXPORT const char *jb_param_str(const jb_call *call, const char *name, const char *def) {
        json_object *v = member(call->params, name, json_type_string);
        return v ? json_object_get_string(v) : def;
}

JB_EXPORT int64_t jb_param_int(const jb_call *call, const char *name, int64_t def) {
        json_object *v = member(call->params, name, json_type_int);
        return v ? json_object_get_int64(v) : def;
}

JB_EXPORT bool jb_param_bool(const jb_call *call, const char *name, bool def) {
        json_object *v = member(call->params, name, json_type_boolean);
        return v ? json_object_get_boolean(v) : def;
}

JB_EXPORT const char *jb_settings_str(json_object *settings, const char *name, const char *def) {
        json_object *v = member(settings, name, json_type_string);
        return v ? json_object_get_string(v) : def;
}

JB_EXPORT int64_t jb_settings_int(json_object *settings, const char *name, int64_t def) {
        json_object *v = member(settings, name, json_type_int);
        return v ? json_object_get_int64(v) : def;
}

JB_EXPORT const char *jb_setting_str(const jb_call *call, const char *name, const char *def) {
        return jb_settings_str(call->settings, name, def);
}

JB_EXPORT int64_t jb_setting_int(const jb_call *call, const char *name, int64_t def) {
        return jb_settings_int(call->settings, name, def);
}

JB_EXPORT bool jb_setting_bool(const jb_call *call, const char *name, bool def) {
        json_object *v = member(call->settings, name, json_type_boolean);
        return v ? json_object_get_boolean(v) : def;
}

JB_EXPORT json_object *jb_call_result(jb_call *call) {
        if (!call->result)
                call->result = json_object_new_object();
        return call->result;
}

JB_EXPORT void jb_call_set_changed(jb_call *call, bool changed) {
        call->changed = changed;
}

JB_EXPORT int jb_call_fail(jb_call *call, jb_code code, const char *fmt, ...) {
        va_list ap;
        const char *name = jb_code_name(code);

        if (jb_err_isset(&call->err))
                return -1;
        va_start(ap, fmt);
        jb_err_setv(&call->err, name ? name : "INTERNAL", fmt, ap);
        va_end(ap);
        return -1;
}

JB_EXPORT int jb_call_fail_code(jb_call *call, const char *code, const char *fmt, ...) {
        va_list ap;

        if (jb_err_isset(&call->err))
                return -1;
        va_start(ap, fmt);
        jb_err_setv(&call->err, code, fmt, ap);
        va_end(ap);
        return -1;
}

JB_EXPORT int jb_call_fail_err(jb_call *call, const jb_err *err) {
        if (jb_err_isset(&call->err))
                return -1;
        if (!jb_err_isset(err))
                return jb_call_fail(call, JB_E_INTERNAL, "failed without saying why");
        call->err = *err;
        return -1;
}

JB_EXPORT void jb_log(const jb_call *call, int priority, const char *fmt, ...) {
        char msg[1024];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        for (char *p = msg; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        *p = '?';
        if (access("/run/systemd/journal/socket", W_OK) == 0) {
                sd_journal_send("MESSAGE=%s: %s", call->action, msg, "PRIORITY=%d", priority,
                                "SYSLOG_IDENTIFIER=jabali-agent", "REQUEST_ID=%s", call->request_id,
                                "JABALI_MODULE=%s", call->module, NULL);
                return;
        }
        dprintf(STDERR_FILENO, "jabali-agent[%d]: %s: [%s] %s: %s\n", (int) getpid(), call->module,
                call->request_id, call->action, msg);
}

JB_EXPORT int jb_reload_unit(jb_call *call, const char *unit, unsigned flags, jb_err *err) {
        const char *why = NULL;

        if (!unit || !jb_valid_unit(unit, strlen(unit), &why))
                return jb_err_set(err, JB_E_INVALID_PARAMS, "%s", why ? why : "no unit name");
        if (flags & ~(JB_RELOAD_NOW | JB_RELOAD_WAIT))
                return jb_err_set(err, JB_E_INTERNAL, "unknown reload flags");
        if (!call->reload)
                return jb_err_set(err, JB_E_INTERNAL, "no master to ask for a reload");
        return call->reload(call, unit, flags, err);
}
