/* SPDX-License-Identifier: GPL-3.0-or-later */
/* A worker: one module, one hat, one request at a time.
 *
 * Started by the master as `jabali-agent --worker <module>` with the
 * socketpair on IPC_WORKER_FD. Workers are crash-only: anything unexpected
 * ends the process and the master replaces it. */

#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>

#include <jabali/reload.h>

#include "call-internal.h"
#include "frame.h"
#include "hat.h"
#include "ipc.h"
#include "jsoncheck.h"
#include "log.h"
#include "modules.h"
#include "util.h"
#include "worker.h"

static const char *str_member(json_object *o, const char *name) {
        json_object *v;
        if (!json_object_object_get_ex(o, name, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

static int send_msg(json_object *msg) {
        size_t len = 0;
        const char *s = json_object_to_json_string_length(msg, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
        jb_err err = JB_ERR_INIT;

        if (!s || len > UINT32_MAX)
                return -EINVAL;
        return frame_write_all(IPC_WORKER_FD, s, (uint32_t) len, &err);
}

static json_object *read_msg(void) {
        _cleanup_free_ char *buf = NULL;
        uint32_t len = 0;
        jb_err err = JB_ERR_INIT;

        if (frame_read(IPC_WORKER_FD, IPC_MAX_FRAME, &buf, &len, &err) <= 0)
                return NULL;
        json_object *o = json_parse_strict(buf, len, IPC_MAX_DEPTH, &err);
        if (o && !json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

static void refuse(const jb_err *err) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "ready", json_object_new_boolean(false));
        json_object_object_add(o, "code", json_object_new_string(err->code));
        json_object_object_add(o, "error", json_object_new_string(err->msg));
        (void) send_msg(o);
        json_object_put(o);
}

/* Names the process "jabali-agent: <module>" in ps and top. */
static void set_title(char **argv, const char *module_name) {
        char comm[16];
        size_t area = 0;

        snprintf(comm, sizeof comm, "jabali: %s", module_name);
        (void) prctl(PR_SET_NAME, comm, 0, 0, 0);
        /* The argv strings are contiguous; the title may use their space. */
        for (int i = 0; argv[i]; i++)
                area = (size_t) (argv[i] - argv[0]) + strlen(argv[i]) + 1;
        if (area > 1) {
                memset(argv[0], 0, area);
                snprintf(argv[0], area, "jabali-agent: %s", module_name);
                for (int i = 1; argv[i]; i++)
                        argv[i] = NULL;
        }
}

static uint64_t mono_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

/* jb_reload_unit() in a worker: ask the master, then wait for its word
 * (at once for a queued reload, after the reload for an awaited one). */
static int ask_reload(jb_call *call, const char *unit, unsigned flags, jb_err *err) {
        json_object *req = json_object_new_object(), *reply, *v;
        int r;

        json_object_object_add(req, "reload", json_object_new_string(unit));
        json_object_object_add(req, "now", json_object_new_boolean(flags & JB_RELOAD_NOW));
        json_object_object_add(req, "wait", json_object_new_boolean(flags & JB_RELOAD_WAIT));
        r = send_msg(req);
        json_object_put(req);
        if (r < 0)
                _exit(3);               /* the master is gone */
        reply = read_msg();
        if (!reply || !json_object_object_get_ex(reply, "ok", &v) || !json_object_is_type(v, json_type_boolean))
                _exit(3);
        if (json_object_get_boolean(v)) {
                json_object_put(reply);
                return 0;
        }
        const char *code = str_member(reply, "code"), *msg = str_member(reply, "error");
        jb_err_set_code(err, code && jb_code_valid(code) ? code : "SERVICE_FAILED", "%s",
                        msg ? msg : "reload failed");
        json_object_put(reply);
        return -1;
}

static const jb_action *find_action(const jb_module *d, const char *name) {
        for (const jb_action *a = d->actions; a->name; a++)
                if (streq(a->name, name))
                        return a;
        return NULL;
}

static json_object *serve_one(const jb_module *d, json_object *settings, json_object *msg) {
        json_object *answer;
        jb_call call = { .module = d->name, .settings = settings, .reload = ask_reload };
        json_object *v;
        const jb_action *a;
        int r;

        call.action = str_member(msg, "action");
        call.request_id = str_member(msg, "request_id");
        if (!json_object_object_get_ex(msg, "params", &call.params) ||
            !json_object_is_type(call.params, json_type_object) || !call.action || !call.request_id)
                return NULL;
        if (json_object_object_get_ex(msg, "dry_run", &v))
                call.dry_run = json_object_get_boolean(v);
        if (json_object_object_get_ex(msg, "deadline_ms", &v))
                call.deadline_usec = mono_usec() + (uint64_t) json_object_get_int64(v) * 1000ULL;
        a = find_action(d, call.action);
        if (!a)
                return NULL;

        /* Nothing of ours is allocated while module code runs: a handler
         * that ends the process leaves no leak behind it. */
        r = a->handler(&call);
        if (r < 0 && !jb_err_isset(&call.err))
                jb_err_set(&call.err, JB_E_INTERNAL, "%s failed without saying why", a->name);
        if (r >= 0 && jb_err_isset(&call.err)) {
                jb_err why = call.err;
                jb_err_set(&call.err, JB_E_INTERNAL, "%s reported success after an error: %s", a->name, why.msg);
        }
        answer = json_object_new_object();
        if (jb_err_isset(&call.err)) {
                json_object_object_add(answer, "ok", json_object_new_boolean(false));
                json_object_object_add(answer, "code", json_object_new_string(call.err.code));
                json_object_object_add(answer, "error", json_object_new_string(call.err.msg));
        } else {
                json_object *result = call.result ? json_object_get(call.result) : json_object_new_object();
                json_object_object_add(result, "changed", json_object_new_boolean(call.changed));
                json_object_object_add(answer, "ok", json_object_new_boolean(true));
                json_object_object_add(answer, "result", result);
        }
        json_object_put(call.result);
        return answer;
}

/* Loads the one module the master named, the same way the master did. */
static const jb_module *load_module(json_object *hello, const char *name, jb_err *err) {
        const char *path = str_member(hello, "path");
        const char *version = str_member(hello, "module_version");
        json_object *v;
        bool insecure = json_object_object_get_ex(hello, "allow_insecure", &v) && json_object_get_boolean(v);
        void *dl;
        const jb_module *d;

        if (!path || !version || !streq_ptr(str_member(hello, "module"), name)) {
                jb_err_set(err, JB_E_INTERNAL, "malformed hello");
                return NULL;
        }
        if (!streq_ptr(str_member(hello, "agent_version"), JABALI_VERSION)) {
                jb_err_set(err, JB_E_MODULE_UNAVAILABLE, "worker binary is %s, master is %s: restart the agent",
                           JABALI_VERSION, str_member(hello, "agent_version"));
                return NULL;
        }
        if (module_check_file(path, insecure, NULL, err) < 0)
                return NULL;
        dl = module_dlopen(path, name, err);
        if (!dl)
                return NULL;
        d = dlsym(dl, JABALI_MODULE_SYMBOL);
        if (!d) {
                jb_err_set(err, JB_E_MODULE_UNAVAILABLE, "module %s has no descriptor", name);
                return NULL;
        }
        if (module_check_descriptor(d, name, err) < 0)
                return NULL;
        if (!streq(d->version, version)) {
                jb_err_set(err, JB_E_MODULE_UNAVAILABLE, "module %s changed on disk (%s, master has %s): reload the agent",
                           name, d->version, version);
                return NULL;
        }
        /* The handle stays open for the life of the process. */
        return d;
}

static apparmor_mode mode_from_string(const char *s) {
        if (streq_ptr(s, "off"))
                return APPARMOR_OFF;
        if (streq_ptr(s, "complain"))
                return APPARMOR_COMPLAIN;
        return APPARMOR_ENFORCE;        /* anything unexpected fails closed */
}

int worker_main(const char *name_arg, char **argv) {
        /* set_title() reuses the argv area, where name_arg lives. */
        _cleanup_free_ char *module_name = strdup(name_arg);
        json_object *hello = NULL, *settings, *v;
        const jb_module *d;
        jb_err err = JB_ERR_INIT;
        char confinement[64];
        apparmor_mode mode = APPARMOR_ENFORCE;
        struct stat st;

        /* Die with the master: a worker must never outlive the one process
         * that may hand it work. */
        (void) prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        if (getppid() == 1 || !module_name)
                return 1;
        if (fstat(IPC_WORKER_FD, &st) < 0 || !S_ISSOCK(st.st_mode)) {
                log_error("--worker is for the master's use only");
                /* cppcheck (2.10) does not know the cleanup attribute and
                 * takes this return for a leak of module_name. */
                /* cppcheck-suppress memleak */
                return 2;
        }
        /* Signals meant for the master (a terminal's ^C, logrotate's
         * SIGUSR1, a reload's SIGHUP sent to the whole group) must not end
         * a worker mid-request; SIGTERM and SIGKILL still do. */
        (void) signal(SIGPIPE, SIG_IGN);
        (void) signal(SIGINT, SIG_IGN);
        (void) signal(SIGHUP, SIG_IGN);
        (void) signal(SIGUSR1, SIG_IGN);
        set_title(argv, module_name);

        hello = read_msg();
        if (!hello)
                return 1;
        if (json_object_object_get_ex(hello, "log_level", &v) && json_object_is_type(v, json_type_int))
                log_set_level(json_object_get_int(v));
        /* Where the master logs (--foreground forces standard error). */
        if (json_object_object_get_ex(hello, "log_stderr", &v) && json_object_get_boolean(v))
                log_set_target_stderr(true);
        if (!json_object_object_get_ex(hello, "settings", &settings) || !json_object_is_type(settings, json_type_object)) {
                jb_err_set(&err, JB_E_INTERNAL, "malformed hello");
                goto refuse;
        }
        mode = mode_from_string(str_member(hello, "apparmor"));
        d = load_module(hello, module_name, &err);
        if (!d)
                goto refuse;
        if (d->worker_init && d->worker_init(settings, &err) < 0) {
                if (!jb_err_isset(&err))
                        jb_err_set(&err, JB_E_MODULE_UNAVAILABLE, "worker_init failed");
                goto refuse;
        }
        if (hat_enter(d->hat, mode, confinement, sizeof confinement, &err) < 0)
                goto refuse;

        {
                json_object *ready = json_object_new_object();
                json_object_object_add(ready, "ready", json_object_new_boolean(true));
                json_object_object_add(ready, "confinement", json_object_new_string(confinement));
                int r = send_msg(ready);
                json_object_put(ready);
                if (r < 0)
                        return 1;
        }

        for (;;) {
                json_object *msg = read_msg(), *answer;

                if (!msg)
                        break;          /* the master closed: recycled or shutting down */
                answer = serve_one(d, settings, msg);
                json_object_put(msg);
                if (!answer || send_msg(answer) < 0)
                        _exit(3);       /* protocol broken: the master replaces us */
                json_object_put(answer);
        }
        if (d->fini)
                d->fini();
        json_object_put(hello);
        return 0;

refuse:
        log_error("module %s: %s", module_name, err.msg);
        refuse(&err);
        json_object_put(hello);
        return 1;
}
