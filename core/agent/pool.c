/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Worker pools, the master's side.
 *
 * Trust is asymmetric (OpenSMTPD's mproc, inverted for a master that must
 * survive): a worker runs module code, so anything odd it does — a
 * malformed message, an answer nobody asked for, dying, overrunning a
 * deadline — gets that worker killed and replaced, and only the request it
 * was serving fails. Everyone else is served on. */

#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "frame.h"
#include "ipc.h"
#include "jsoncheck.h"
#include "log.h"
#include "pool.h"
#include "reloader.h"
#include "util.h"

#include <jabali/validate.h>

#define BACKOFF_MIN_USEC (100 * 1000ULL)
#define BACKOFF_MAX_USEC (30 * 1000 * 1000ULL)
#define FAILING_AFTER 5                 /* consecutive crashes before the module is failing */

typedef enum worker_state {
        W_STARTING,                     /* spawned, hello sent, waiting for "ready" */
        W_IDLE,
        W_BUSY,
        W_EXITING,                      /* told to go or killed; waiting for the exit */
} worker_state;

struct worker {
        pool *pool;
        worker *next;
        pid_t pid;
        int fd;
        sd_event_source *io, *child, *idle_timer;
        worker_state state;
        unsigned uses;
        fbuf in;
        uint8_t *out;                   /* message being sent: out[out_off..out_len) */
        size_t out_len, out_off;
        pending *current;
        char *confinement;              /* owned: what the worker reported */
        bool killed;                    /* we sent SIGKILL: its death is no crash */
};

struct pool {
        server *srv;
        modset *set;                    /* borrowed: the set owns the pool */
        module *mod;
        worker *workers;
        unsigned n_workers;
        pending *q_head, *q_tail;       /* waiting for a worker or a lock */
        unsigned n_queued;

        unsigned crashes_in_row;
        uint64_t backoff_until;         /* no spawning before this */
        jb_err failure;                 /* why the module is failing, while it is */
        sd_event_source *respawn_timer;

        char *confinement;              /* owned: last reported by a ready worker */
        struct {
                uint64_t served, crashes, timeouts, spawned, recycled;
        } stats;
};

static void pool_run(pool *p);
static void worker_free(worker *w);

pool *pool_new(modset *set, module *m, jb_err *err) {
        pool *p = calloc(1, sizeof(pool));
        if (!p) {
                jb_err_set(err, JB_E_INTERNAL, "out of memory");
                return NULL;
        }
        p->set = set;
        p->mod = m;
        return p;
}

static uint32_t pool_max(const pool *p) {
        return p->mod->conf->workers_max;
}

/* ---- answering ---- */

_printf_(4, 5)
static void answer_err(pending *req, const worker *w, jb_code code, const char *fmt, ...) {
        jb_err err = JB_ERR_INIT;
        va_list ap;

        va_start(ap, fmt);
        jb_err_setv(&err, jb_code_name(code), fmt, ap);
        va_end(ap);
        pending_finish_err(req, &err, w ? w->pool->mod->desc->hat : NULL, w ? w->confinement : NULL);
}

static void untrack(pending *req) {
        req->deadline_source = sd_event_source_disable_unref(req->deadline_source);
        req->worker = NULL;
}

static void queue_remove(pool *p, pending *req) {
        pending **pp = &p->q_head, *prev = NULL;
        while (*pp && *pp != req) {
                prev = *pp;
                pp = &(*pp)->pool_next;
        }
        if (!*pp)
                return;
        *pp = req->pool_next;
        if (p->q_tail == req)
                p->q_tail = prev;
        req->pool_next = NULL;
        p->n_queued--;
}

void pool_forget(pending *req) {
        if (req->worker) {
                req->worker->current = NULL;
                req->worker = NULL;
        }
        req->deadline_source = sd_event_source_disable_unref(req->deadline_source);
}

/* ---- worker I/O ---- */

static void worker_update_events(worker *w) {
        uint32_t ev = EPOLLIN;
        if (w->out_off < w->out_len)
                ev |= EPOLLOUT;
        (void) sd_event_source_set_io_events(w->io, ev);
}

static int worker_send(worker *w, json_object *msg) {
        size_t len = 0;
        const char *s = json_object_to_json_string_length(msg, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
        uint8_t *buf;

        if (!s || len > UINT32_MAX)
                return -EINVAL;
        buf = malloc(FRAME_HEADER_SIZE + len);
        if (!buf)
                return -ENOMEM;
        frame_put_header(buf, (uint32_t) len);
        memcpy(buf + FRAME_HEADER_SIZE, s, len);
        free(w->out);
        w->out = buf;
        w->out_len = FRAME_HEADER_SIZE + len;
        w->out_off = 0;
        /* No EPOLLOUT yet: the caller flushes at once, and only what the
         * socket does not take needs waiting for (worker_flush). */
        return 0;
}

static int worker_flush(worker *w) {
        while (w->out_off < w->out_len) {
                ssize_t n = send(w->fd, w->out + w->out_off, w->out_len - w->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                break;
                        return -errno;
                }
                w->out_off += (size_t) n;
        }
        worker_update_events(w);
        return 0;
}

/* Ends a worker: a crash or kill fails its request; a planned exit does not. */
static void worker_kill(worker *w) {
        if (w->state == W_EXITING && w->killed)
                return;
        w->killed = true;
        w->state = W_EXITING;
        reloader_cancel(w->pool->srv->reloader, w);
        (void) kill(w->pid, SIGKILL);
        w->io = sd_event_source_disable_unref(w->io);
        w->fd = safe_close(w->fd);
}

static void schedule_respawn(pool *p);

/* While a module is failing, queued requests get its failure at once
 * instead of waiting out their deadlines. */
static void fail_queue(pool *p) {
        while (p->q_head) {
                pending *req = p->q_head;
                queue_remove(p, req);
                untrack(req);
                pending_finish_err(req, &p->failure, NULL, NULL);
        }
}

/* A single crash is replaced at once; a second in a row waits 100 ms, and
 * each further one doubles the wait, up to 30 s. */
static void backoff(pool *p) {
        uint64_t delay = 0;

        if (p->crashes_in_row >= 2) {
                unsigned shift = p->crashes_in_row - 2;
                delay = shift >= 9 ? BACKOFF_MAX_USEC : BACKOFF_MIN_USEC << shift;
                if (delay > BACKOFF_MAX_USEC)
                        delay = BACKOFF_MAX_USEC;
        }
        p->backoff_until = now_usec() + delay;
}

/* The worker died or misbehaved while it had work or was starting. */
static void worker_failed(worker *w, const char *why) {
        pool *p = w->pool;
        pending *req = w->current;
        bool starting = w->state == W_STARTING;

        p->stats.crashes++;
        p->crashes_in_row++;
        log_warning("module %s: worker %d %s", p->mod->name, (int) w->pid, why);
        if (p->crashes_in_row >= FAILING_AFTER && !jb_err_isset(&p->failure))
                jb_err_set(&p->failure, JB_E_MODULE_UNAVAILABLE, "module %s is failing: worker %s", p->mod->name, why);
        backoff(p);
        worker_kill(w);
        if (req) {
                w->current = NULL;
                untrack(req);
                answer_err(req, w, JB_E_WORKER_CRASHED, "the %s worker %s while handling the request", p->mod->name,
                           why);
        }
        if (starting && !jb_err_isset(&p->failure))
                jb_err_set(&p->failure, JB_E_MODULE_UNAVAILABLE, "module %s: worker could not start: %s", p->mod->name, why);
        if (jb_err_isset(&p->failure))
                fail_queue(p);
        schedule_respawn(p);
}

static void worker_ready(worker *w, json_object *msg) {
        pool *p = w->pool;
        json_object *v;

        if (!json_object_object_get_ex(msg, "ready", &v) || !json_object_is_type(v, json_type_boolean)) {
                worker_failed(w, "sent a malformed hello answer");
                return;
        }
        if (!json_object_get_boolean(v)) {
                /* The worker refused to serve (its sandbox could not be
                 * entered, worker_init failed): fail closed with its reason. */
                json_object *code = NULL, *error = NULL;
                json_object_object_get_ex(msg, "code", &code);
                json_object_object_get_ex(msg, "error", &error);
                jb_err_set_code(&p->failure, json_object_is_type(code, json_type_string) ? json_object_get_string(code) : "MODULE_UNAVAILABLE",
                                "module %s: %s", p->mod->name,
                                json_object_is_type(error, json_type_string) ? json_object_get_string(error) : "worker refused to start");
                log_error("%s", p->failure.msg);
                p->crashes_in_row++;
                backoff(p);
                worker_kill(w);
                fail_queue(p);
                schedule_respawn(p);
                return;
        }
        if (json_object_object_get_ex(msg, "confinement", &v) && json_object_is_type(v, json_type_string)) {
                free(w->confinement);
                w->confinement = strdup(json_object_get_string(v));
                free(p->confinement);
                p->confinement = w->confinement ? strdup(w->confinement) : NULL;
        }
        w->state = W_IDLE;
        jb_err_clear(&p->failure);
        server_maybe_ready(p->srv);
}

static void reload_reply(worker *w, const jb_err *err) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "ok", json_object_new_boolean(!err));
        if (err) {
                json_object_object_add(o, "code", json_object_new_string(err->code));
                json_object_object_add(o, "error", json_object_new_string(err->msg));
        }
        if (!o || worker_send(w, o) < 0 || worker_flush(w) < 0)
                worker_failed(w, "could not be told about its reload");
        json_object_put(o);
}

static void on_reload_done(void *userdata, const char *unit, const jb_err *err) {
        worker *w = userdata;
        pool *p = w->pool;

        reload_reply(w, err);
        pool_run(p);
}

/* A handler asked for a reload (jb_reload_unit). The worker is less trusted
 * than the master, so the unit name is checked again here. */
static void worker_reload(worker *w, json_object *msg) {
        json_object *v;
        const char *unit = NULL, *why = NULL;
        bool now = false, wait = false;
        jb_err err = JB_ERR_INIT;

        if (json_object_object_get_ex(msg, "reload", &v) && json_object_is_type(v, json_type_string))
                unit = json_object_get_string(v);
        if (json_object_object_get_ex(msg, "now", &v))
                now = json_object_get_boolean(v);
        if (json_object_object_get_ex(msg, "wait", &v))
                wait = json_object_get_boolean(v);
        if (!unit || !jb_valid_unit(unit, strlen(unit), &why)) {
                jb_err_set(&err, JB_E_INVALID_PARAMS, "reload: %s", why ? why : "no unit name");
                reload_reply(w, &err);
                return;
        }
        if (reloader_request(w->pool->srv->reloader, unit, now, wait ? on_reload_done : NULL, w) < 0) {
                jb_err_set(&err, JB_E_INTERNAL, "reload of %s could not be queued", unit);
                reload_reply(w, &err);
                return;
        }
        if (!wait)
                reload_reply(w, NULL);
}

static void worker_answer(worker *w, json_object *msg) {
        pool *p = w->pool;
        pending *req = w->current;
        json_object *ok, *result = NULL, *code = NULL, *error = NULL;

        if (!json_object_object_get_ex(msg, "ok", &ok) || !json_object_is_type(ok, json_type_boolean)) {
                worker_failed(w, "sent a malformed answer");
                return;
        }
        if (json_object_get_boolean(ok)) {
                if (!json_object_object_get_ex(msg, "result", &result) || !json_object_is_type(result, json_type_object)) {
                        worker_failed(w, "answered without a result object");
                        return;
                }
        } else if (!json_object_object_get_ex(msg, "code", &code) || !json_object_is_type(code, json_type_string) ||
                   !jb_code_valid(json_object_get_string(code)) ||
                   !json_object_object_get_ex(msg, "error", &error) || !json_object_is_type(error, json_type_string)) {
                worker_failed(w, "sent a malformed error");
                return;
        }
        w->current = NULL;
        w->uses++;
        w->state = W_IDLE;
        p->crashes_in_row = 0;
        p->stats.served++;
        if (req) {
                untrack(req);
                if (result)
                        pending_finish_ok(req, result, p->mod->desc->hat, w->confinement);
                else {
                        jb_err err = JB_ERR_INIT;
                        jb_err_set_code(&err, json_object_get_string(code), "%s", json_object_get_string(error));
                        pending_finish_err(req, &err, p->mod->desc->hat, w->confinement);
                }
        }
        if (w->uses >= p->mod->conf->max_use) {
                /* Recycled: closing its socket is its signal to run fini and go. */
                p->stats.recycled++;
                w->state = W_EXITING;
                w->io = sd_event_source_disable_unref(w->io);
                w->fd = safe_close(w->fd);
        }
}

static int on_worker_io(sd_event_source *es, int fd, uint32_t revents, void *userdata) {
        worker *w = userdata;
        pool *p = w->pool;

        if ((revents & EPOLLOUT) && worker_flush(w) < 0) {
                worker_failed(w, "closed its socket");
                pool_run(p);
                return 0;
        }
        if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                size_t room = fbuf_reserve(&w->in, 64 * 1024);
                ssize_t n;

                if (room == 0) {
                        worker_failed(w, "sent an answer above the IPC frame limit");
                        pool_run(p);
                        return 0;
                }
                n = recv(w->fd, w->in.data + w->in.len, room, MSG_DONTWAIT);
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        return 0;
                if (n == 0) {
                        /* A worker that closes its end is exiting: its exit
                         * status, which follows, says why better than the
                         * EOF can (and the deadline covers one that lingers). */
                        w->io = sd_event_source_disable_unref(w->io);
                        return 0;
                }
                if (n < 0) {
                        worker_failed(w, "broke its socket");
                        pool_run(p);
                        return 0;
                }
                w->in.len += (size_t) n;
                for (;;) {
                        uint32_t len = 0;
                        frame_status st = frame_parse(w->in.data, w->in.len, IPC_MAX_FRAME, &len);
                        jb_err err = JB_ERR_INIT;
                        json_object *msg;

                        if (st == FRAME_NEED_MORE)
                                break;
                        if (st != FRAME_READY) {
                                worker_failed(w, "sent a malformed frame");
                                break;
                        }
                        msg = json_parse_strict((const char *) w->in.data + FRAME_HEADER_SIZE, len,
                                                IPC_MAX_DEPTH, &err);
                        fbuf_consume(&w->in, FRAME_HEADER_SIZE + len);
                        if (!msg || !json_object_is_type(msg, json_type_object)) {
                                json_object_put(msg);
                                worker_failed(w, "sent invalid JSON");
                                break;
                        }
                        if (w->state == W_STARTING)
                                worker_ready(w, msg);
                        else if (w->state == W_BUSY && json_object_object_get_ex(msg, "reload", NULL))
                                worker_reload(w, msg);
                        else if (w->state == W_BUSY)
                                worker_answer(w, msg);
                        else
                                worker_failed(w, "spoke out of turn");
                        json_object_put(msg);
                        if (w->state == W_EXITING)
                                break;
                }
        }
        pool_run(p);
        return 0;
}

static int on_worker_exit(sd_event_source *es, const siginfo_t *si, void *userdata) {
        worker *w = userdata;
        pool *p = w->pool;

        if (w->state != W_EXITING) {
                char why[64];
                if (si->si_code == CLD_EXITED)
                        snprintf(why, sizeof why, "exited with status %d", si->si_status);
                else
                        snprintf(why, sizeof why, "was killed by signal %d", si->si_status);
                worker_failed(w, why);
        }
        worker_free(w);
        pool_run(p);
        return 0;
}

static int on_idle_timeout(sd_event_source *es, uint64_t usec, void *userdata) {
        worker *w = userdata;

        /* One warm worker stays; the others go when unused. */
        if (w->state == W_IDLE && w->pool->n_workers > 1) {
                w->state = W_EXITING;
                w->io = sd_event_source_disable_unref(w->io);
                w->fd = safe_close(w->fd);
        }
        return 0;
}

/* ---- spawning ---- */

static char **worker_env(void) {
        /* The worker gets a fixed environment. What passes through is what
         * decided how the master itself was loaded (the library path and
         * preloads: a worker is the same binary and must load the same way;
         * whoever sets them for the master already runs code as root, so
         * passing them on grants nothing new) and test settings: sanitizer
         * options, and the JABALI_SHIM_* variables read by the libapparmor
         * test shim (tests/shim/aa-shim.c), inert unless it is preloaded. */
        static const char *const pass[] = {
                "LD_LIBRARY_PATH", "LD_PRELOAD",
                "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS",
                "JABALI_SHIM_AA", "JABALI_SHIM_AA_CHANGE_HAT", "JABALI_SHIM_AA_CHANGE_PROFILE", "JABALI_SHIM_LOG",
                NULL
        };
        static char path[] = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
        static char lang[] = "LANG=C.UTF-8";
        char **env = calloc(ELEMENTSOF(pass) + 4, sizeof(char *));
        size_t n = 0;

        if (!env)
                return NULL;
        env[n++] = path;
        env[n++] = lang;
        for (size_t i = 0; pass[i]; i++) {
                size_t kl = strlen(pass[i]);
                /* The first match only, as getenv() would: a name set twice
                 * must not run past the array. */
                for (char **e = environ; *e; e++)
                        if (strncmp(*e, pass[i], kl) == 0 && (*e)[kl] == '=') {
                                env[n++] = *e;
                                break;
                        }
        }
        return env;
}

static int spawn_process(server *s, const char *module_name, int child_fd, pid_t *ret_pid) {
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        sigset_t none, all;
        char *argv[] = { (char *) "jabali-agent", (char *) "--worker", (char *) module_name, NULL };
        _cleanup_free_ char **env = worker_env();
        int r;

        if (!env)
                return -ENOMEM;
        sigemptyset(&none);
        sigfillset(&all);
        posix_spawn_file_actions_init(&fa);
        posix_spawnattr_init(&attr);
        posix_spawn_file_actions_adddup2(&fa, child_fd, IPC_WORKER_FD);
        posix_spawn_file_actions_addclosefrom_np(&fa, IPC_WORKER_FD + 1);
        posix_spawnattr_setsigmask(&attr, &none);
        posix_spawnattr_setsigdefault(&attr, &all);
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
        r = posix_spawn(ret_pid, s->exe_path, &fa, &attr, argv, env);
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&attr);
        return -r;
}

static json_object *hello_message(const pool *p) {
        const struct agent_config *cfg = p->set->config;
        json_object *o = json_object_new_object();
        json_object *cmd = json_object_new_array();

        for (size_t i = 0; i < cfg->n_reload_command; i++)
                json_object_array_add(cmd, json_object_new_string(cfg->reload_command[i]));
        json_object_object_add(o, "agent_version", json_object_new_string(JABALI_VERSION));
        json_object_object_add(o, "module", json_object_new_string(p->mod->name));
        json_object_object_add(o, "module_version", json_object_new_string(p->mod->desc->version));
        json_object_object_add(o, "path", json_object_new_string(p->mod->path));
        json_object_object_add(o, "allow_insecure", json_object_new_boolean(cfg->allow_insecure_modules));
        json_object_object_add(o, "apparmor", json_object_new_string(apparmor_mode_to_string(cfg->apparmor)));
        json_object_object_add(o, "log_level", json_object_new_int(log_get_level()));
        json_object_object_add(o, "log_stderr", json_object_new_boolean(!log_target_is_journal()));
        json_object_object_add(o, "runtime_dir", json_object_new_string(cfg->runtime_dir));
        json_object_object_add(o, "reload_command", cmd);
        json_object_object_add(o, "settings", json_object_get(p->mod->conf->settings));
        return o;
}

static int pool_spawn(pool *p) {
        server *s = p->srv;
        int sv[2] = { -1, -1 };
        worker *w = NULL;
        json_object *hello = NULL;
        int r;

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                return -errno;
        /* dup2() onto the same number would keep FD_CLOEXEC set. */
        if (sv[1] == IPC_WORKER_FD) {
                int fd = fcntl(sv[1], F_DUPFD_CLOEXEC, IPC_WORKER_FD + 1);
                if (fd < 0) {
                        r = -errno;
                        goto fail;
                }
                safe_close(sv[1]);
                sv[1] = fd;
        }
        w = calloc(1, sizeof(worker));
        if (!w) {
                r = -ENOMEM;
                goto fail;
        }
        w->pool = p;
        w->fd = -1;
        fbuf_init(&w->in, (size_t) IPC_MAX_FRAME + FRAME_HEADER_SIZE);
        r = spawn_process(s, p->mod->name, sv[1], &w->pid);
        sv[1] = safe_close(sv[1]);
        if (r < 0)
                goto fail;
        w->fd = TAKE_FD(sv[0]);
        (void) fcntl(w->fd, F_SETFL, O_NONBLOCK);
        w->state = W_STARTING;
        w->next = p->workers;
        p->workers = w;
        p->n_workers++;
        p->stats.spawned++;
        r = sd_event_add_child(s->event, &w->child, w->pid, WEXITED, on_worker_exit, w);
        if (r >= 0)
                r = sd_event_add_io(s->event, &w->io, w->fd, EPOLLIN, on_worker_io, w);
        if (r < 0) {
                (void) kill(w->pid, SIGKILL);
                log_error_errno(r, "module %s: cannot watch worker %d", p->mod->name, (int) w->pid);
                worker_kill(w);
                return r;
        }
        /* Owning the child: if the source is freed first, sd-event kills and reaps it. */
        (void) sd_event_source_set_child_process_own(w->child, true);
        hello = hello_message(p);
        r = hello ? worker_send(w, hello) : -ENOMEM;
        json_object_put(hello);
        if (r < 0 || worker_flush(w) < 0) {
                worker_failed(w, "could not be greeted");
                return -EIO;
        }
        log_debug("module %s: worker %d spawned", p->mod->name, (int) w->pid);
        return 0;
fail:
        safe_close(sv[0]);
        safe_close(sv[1]);
        if (w) {
                fbuf_done(&w->in);
                free(w);
        }
        return log_error_errno(r, "module %s: cannot spawn a worker", p->mod->name);
}

static void worker_free(worker *w) {
        pool *p = w->pool;
        worker **pp = &p->workers;

        while (*pp && *pp != w)
                pp = &(*pp)->next;
        if (*pp) {
                *pp = w->next;
                p->n_workers--;
        }
        if (p->srv)
                reloader_cancel(p->srv->reloader, w);
        if (w->current) {
                pending *req = w->current;
                w->current = NULL;
                untrack(req);
                answer_err(req, w, JB_E_WORKER_CRASHED, "the %s worker went away", p->mod->name);
        }
        sd_event_source_disable_unref(w->io);
        sd_event_source_disable_unref(w->idle_timer);
        /* child_process_own: a still-running worker is SIGKILLed and reaped. */
        sd_event_source_unref(w->child);
        safe_close(w->fd);
        fbuf_done(&w->in);
        free(w->out);
        free(w->confinement);
        free(w);
}

static int on_respawn(sd_event_source *es, uint64_t usec, void *userdata) {
        pool *p = userdata;
        pool_run(p);
        return 0;
}

static void schedule_respawn(pool *p) {
        server *s = p->srv;

        if (s->draining || (p->set->retired && p->n_queued == 0))
                return;
        if (!p->respawn_timer) {
                if (sd_event_add_time(s->event, &p->respawn_timer, CLOCK_MONOTONIC, p->backoff_until, 1000,
                                      on_respawn, p) < 0)
                        return;
        } else {
                (void) sd_event_source_set_time(p->respawn_timer, p->backoff_until);
        }
        (void) sd_event_source_set_enabled(p->respawn_timer, SD_EVENT_ONESHOT);
}

/* ---- scheduling ---- */

static bool lock_busy(const pool *p, const char *key) {
        if (!key)
                return false;
        for (const worker *w = p->workers; w; w = w->next)
                if (w->current && w->current->lock_key && streq(w->current->lock_key, key))
                        return true;
        return false;
}

static json_object *call_message(const pending *req) {
        json_object *o = json_object_new_object();
        uint64_t now = now_usec();
        uint64_t left = req->deadline_usec > now ? (req->deadline_usec - now) / 1000 : 0;

        json_object_object_add(o, "request_id", json_object_new_string(req->req.request_id));
        json_object_object_add(o, "action", json_object_new_string(req->action->def->name));
        json_object_object_add(o, "params", json_object_get(req->req.params));
        json_object_object_add(o, "dry_run", json_object_new_boolean(req->req.dry_run));
        json_object_object_add(o, "deadline_ms", json_object_new_int64((int64_t) left));
        return o;
}

static void start_on(worker *w, pending *req) {
        json_object *msg = call_message(req);
        int r = msg ? worker_send(w, msg) : -ENOMEM;

        json_object_put(msg);
        w->idle_timer = sd_event_source_disable_unref(w->idle_timer);
        w->state = W_BUSY;
        w->current = req;
        req->worker = w;
        if (r < 0 || worker_flush(w) < 0)
                worker_failed(w, "could not be sent the request");
}

static void arm_idle(worker *w) {
        server *s = w->pool->srv;
        uint64_t usec = w->pool->mod->conf->idle_timeout_ms * 1000ULL;

        if (w->idle_timer || w->state != W_IDLE)
                return;
        (void) sd_event_add_time_relative(s->event, &w->idle_timer, CLOCK_MONOTONIC, usec, 0, on_idle_timeout, w);
}

static void pool_run(pool *p) {
        unsigned starting = 0, idle = 0;

        for (worker *w = p->workers; w; w = w->next) {
                if (w->state == W_STARTING)
                        starting++;
                if (w->state != W_IDLE)
                        continue;
                /* First queued request whose lock key is free: same-key
                 * requests wait, different keys overtake them. */
                pending *req = p->q_head;
                while (req && lock_busy(p, req->lock_key))
                        req = req->pool_next;
                if (!req) {
                        idle++;
                        arm_idle(w);
                        continue;
                }
                queue_remove(p, req);
                start_on(w, req);
        }
        /* A retired pool (replaced by SIGHUP) still finishes its queue. */
        if (p->srv->draining || (p->set->retired && p->n_queued == 0))
                return;
        /* Grow while there is work no idle or starting worker will take. */
        if (now_usec() < p->backoff_until) {
                if (p->n_workers == 0)
                        schedule_respawn(p);
                server_maybe_ready(p->srv);
                return;
        }
        if ((p->n_workers == 0 || (p->n_queued > starting + idle && p->n_workers < pool_max(p))))
                (void) pool_spawn(p);
        server_maybe_ready(p->srv);
}

static int on_deadline(sd_event_source *es, uint64_t usec, void *userdata) {
        pending *req = userdata;
        worker *w = req->worker;
        pool *p = req->action->module->pool;

        p->stats.timeouts++;
        untrack(req);
        if (w) {
                /* The handler overran: only killing its process stops it. */
                w->current = NULL;
                log_warning("module %s: %s overran its deadline; worker %d killed", p->mod->name,
                            req->action->def->name, (int) w->pid);
                worker_kill(w);
        } else
                queue_remove(p, req);
        answer_err(req, w, JB_E_TIMEOUT, "%s did not finish before its deadline", req->action->def->name);
        pool_run(p);
        return 0;
}

static int lock_key_for(pending *req) {
        const char *param = req->action->def->lock;
        json_object *v;

        if (!param || !json_object_object_get_ex(req->req.params, param, &v))
                return 0;
        if (asprintf(&req->lock_key, "%s:%s", param, json_object_get_string(v)) < 0) {
                req->lock_key = NULL;
                return -ENOMEM;
        }
        return 0;
}

void pool_submit(pool *p, pending *req) {
        if (jb_err_isset(&p->failure) && now_usec() < p->backoff_until) {
                pending_finish_err(req, &p->failure, NULL, NULL);
                return;
        }
        if (p->n_queued >= p->mod->conf->queue) {
                answer_err(req, NULL, JB_E_BUSY, "module %s has too many queued requests", p->mod->name);
                return;
        }
        if (lock_key_for(req) < 0 ||
            sd_event_add_time(p->srv->event, &req->deadline_source, CLOCK_MONOTONIC, req->deadline_usec, 1000,
                              on_deadline, req) < 0) {
                answer_err(req, NULL, JB_E_INTERNAL, "cannot queue the request");
                return;
        }
        req->set = modset_ref(p->set);
        req->pool_next = NULL;
        if (p->q_tail)
                p->q_tail->pool_next = req;
        else
                p->q_head = req;
        p->q_tail = req;
        p->n_queued++;
        pool_run(p);
}

int pool_start(pool *p, server *s) {
        p->srv = s;
        return pool_spawn(p);
}

void pool_free(pool *p) {
        if (!p)
                return;
        while (p->q_head) {
                pending *req = p->q_head;
                queue_remove(p, req);
                untrack(req);
                answer_err(req, NULL, JB_E_MODULE_UNAVAILABLE, "module %s is shutting down", p->mod->name);
        }
        while (p->workers) {
                worker *w = p->workers;
                w->state = W_EXITING;
                worker_free(w);
        }
        sd_event_source_disable_unref(p->respawn_timer);
        free(p->confinement);
        free(p);
}

bool pool_starting(const pool *p) {
        for (const worker *w = p->workers; w; w = w->next)
                if (w->state == W_STARTING)
                        return true;
        return false;
}

bool pool_health(const pool *p, json_object *o) {
        unsigned idle = 0, busy = 0, starting = 0;
        bool failing = jb_err_isset(&p->failure);

        for (const worker *w = p->workers; w; w = w->next) {
                idle += w->state == W_IDLE;
                busy += w->state == W_BUSY;
                starting += w->state == W_STARTING;
        }
        json_object_object_add(o, "state", json_object_new_string(failing ? "failing" : "ready"));
        if (failing) {
                json_object_object_add(o, "code", json_object_new_string(p->failure.code));
                json_object_object_add(o, "reason", json_object_new_string(p->failure.msg));
        }
        if (p->mod->desc->hat)
                json_object_object_add(o, "hat", json_object_new_string(p->mod->desc->hat));
        if (p->confinement)
                json_object_object_add(o, "confinement", json_object_new_string(p->confinement));
        json_object *wk = json_object_new_object();
        json_object_object_add(wk, "max", json_object_new_int64(pool_max(p)));
        json_object_object_add(wk, "idle", json_object_new_int64(idle));
        json_object_object_add(wk, "busy", json_object_new_int64(busy));
        json_object_object_add(wk, "starting", json_object_new_int64(starting));
        json_object_object_add(o, "workers", wk);
        json_object_object_add(o, "queued", json_object_new_int64(p->n_queued));
        json_object_object_add(o, "served", json_object_new_int64((int64_t) p->stats.served));
        json_object_object_add(o, "crashes", json_object_new_int64((int64_t) p->stats.crashes));
        json_object_object_add(o, "timeouts", json_object_new_int64((int64_t) p->stats.timeouts));
        json_object_object_add(o, "spawned", json_object_new_int64((int64_t) p->stats.spawned));
        json_object_object_add(o, "recycled", json_object_new_int64((int64_t) p->stats.recycled));
        return failing;
}
