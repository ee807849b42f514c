/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Coalesced service reloads (see reloader.h). */

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>

#include "audit.h"
#include "dispatch.h"
#include "log.h"
#include "reloader.h"
#include "util.h"

#define RELOAD_TIMEOUT_USEC (90 * 1000 * 1000ULL)      /* a reload that hangs this long failed */
#define MAX_UNITS 256                                   /* distinct units tracked at once */

typedef struct waiter {
        struct waiter *next;
        reload_done_fn done;
        void *userdata;
} waiter;

typedef enum unit_state { U_IDLE, U_ARMED, U_RUNNING } unit_state;

typedef struct unit {
        reloader *r;
        char *name;
        unit_state state;
        bool again;                     /* requests arrived while running */
        bool again_now;
        waiter *next_batch;             /* answered by the next reload to start */
        waiter *running;                /* answered by the one running */
        sd_event_source *timer;         /* the coalescing window */
        sd_event_source *deadline;      /* a reload that hangs */
        sd_event_source *child;         /* fallback command */
        int err_fd;                     /* its stderr (a memfd) */
        sd_bus_slot *call_slot;         /* systemd: the ReloadUnit call */
        char *job;                      /* systemd: the job it queued */
        uint64_t requested, reloads, failed;
        uint64_t started_usec;          /* CLOCK_MONOTONIC, of the last reload */
        uint64_t ended_usec;
        char *last_error;
} unit;

struct reloader {
        server *srv;
        unit *units[MAX_UNITS];
        size_t n_units;
        sd_bus *bus;                    /* only when systemd is PID 1 */
};

static void arm(reloader *r, unit *u, bool now);

reloader *reloader_new(server *s) {
        reloader *r = calloc(1, sizeof(reloader));
        if (r)
                r->srv = s;
        return r;
}

static void answer(waiter **list, const char *unit_name, const jb_err *err) {
        while (*list) {
                waiter *w = *list;
                *list = w->next;
                w->done(w->userdata, unit_name, err);
                free(w);
        }
}

static void unit_free(unit *u) {
        jb_err gone = JB_ERR_INIT;

        jb_err_set(&gone, JB_E_SERVICE_FAILED, "the agent is shutting down");
        answer(&u->running, u->name, &gone);
        answer(&u->next_batch, u->name, &gone);
        sd_event_source_disable_unref(u->timer);
        sd_event_source_disable_unref(u->deadline);
        sd_event_source_unref(u->child);        /* process-owned: killed and reaped */
        safe_close(u->err_fd);
        sd_bus_slot_unref(u->call_slot);
        free(u->job);
        free(u->last_error);
        free(u->name);
        free(u);
}

void reloader_free(reloader *r) {
        if (!r)
                return;
        for (size_t i = 0; i < r->n_units; i++)
                unit_free(r->units[i]);
        sd_bus_flush_close_unref(r->bus);
        free(r);
}

/* ---- finishing ---- */

/* The pragma: gcc 12's -fanalyzer does not follow a unit through
 * r->units[] (stored at a symbolic index) and reports the strdup() into
 * u->last_error as leaked. It is not: the unit owns it, and the next
 * failure or unit_free() frees it. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wanalyzer-malloc-leak"
static void finish(reloader *r, unit *u, const char *error) {
        jb_err err = JB_ERR_INIT;
        struct peer self = { .pid = getpid(), .uid = 0, .gid = 0 };

        u->child = sd_event_source_unref(u->child);
        u->deadline = sd_event_source_disable_unref(u->deadline);
        u->err_fd = safe_close(u->err_fd);
        u->call_slot = sd_bus_slot_unref(u->call_slot);
        free(u->job);
        u->job = NULL;
        u->state = U_IDLE;
        u->ended_usec = now_usec();
        u->reloads++;
        if (error) {
                u->failed++;
                free(u->last_error);
                u->last_error = strdup(error);
                jb_err_set(&err, JB_E_SERVICE_FAILED, "reload of %s failed: %s", u->name, error);
                log_error("%s", err.msg);
                audit_event(r->srv, "reload_failed", &self, err.code, err.msg);
        } else
                log_debug("reloaded %s", u->name);
        answer(&u->running, u->name, error ? &err : NULL);
        if (u->again) {
                bool now = u->again_now;
                u->again = u->again_now = false;
                arm(r, u, now);
        }
}
#pragma GCC diagnostic pop

/* ---- the fallback command ---- */

static int on_child(sd_event_source *es, const siginfo_t *si, void *userdata) {
        unit *u = userdata;
        char msg[512] = "", why[700];
        ssize_t n;

        if (si->si_code == CLD_EXITED && si->si_status == 0) {
                finish(u->r, u, NULL);
                return 0;
        }
        n = pread(u->err_fd, msg, sizeof msg - 1, 0);
        msg[n > 0 ? n : 0] = '\0';
        for (char *p = msg; *p; p++)
                if ((unsigned char) *p < 0x20)
                        *p = ' ';
        if (si->si_code == CLD_EXITED)
                snprintf(why, sizeof why, "exit status %d%s%s", si->si_status, msg[0] ? ": " : "", msg);
        else
                snprintf(why, sizeof why, "killed by signal %d", si->si_status);
        finish(u->r, u, why);
        return 0;
}

static char *substitute(const char *tmpl, const char *unit_name) {
        const char *at = strstr(tmpl, "{unit}");
        char *out;

        if (!at)
                return strdup(tmpl);
        if (asprintf(&out, "%.*s%s%s", (int) (at - tmpl), tmpl, unit_name, at + 6) < 0)
                return NULL;
        return out;
}

/* The pragma: gcc 12's -fanalyzer does not conclude from "n is not 0" that
 * "0 < n" for an unsigned n, so it thinks the loop may not run and warns
 * that argv[0] may be NULL at posix_spawn(). It is not: 0 < n <
 * ELEMENTSOF(argv), and the loop fills argv[0 .. n) or leaves through `out`. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wanalyzer-null-argument"
static int start_command(reloader *r, unit *u, const char **error) {
        const struct agent_config *cfg = r->srv->config;
        char *argv[65] = {};            /* reload.command has at most 64 elements */
        char *envp[] = { (char *) "PATH=/usr/sbin:/usr/bin:/sbin:/bin", (char *) "LANG=C.UTF-8", NULL };
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        sigset_t none, all;
        pid_t pid;
        int rc = -1;

        if (cfg->n_reload_command == 0) {
                *error = "systemd is not PID 1 and reload.command is not set";
                return -1;
        }
        if (cfg->n_reload_command >= ELEMENTSOF(argv)) {
                *error = "reload.command has too many elements";
                return -1;
        }
        for (size_t i = 0; i < cfg->n_reload_command; i++)
                if (!(argv[i] = substitute(cfg->reload_command[i], u->name))) {
                        *error = "out of memory";
                        goto out;
                }
        u->err_fd = memfd_create("jabali-reload-stderr", MFD_CLOEXEC);
        if (u->err_fd < 0) {
                *error = "cannot capture the command's output";
                goto out;
        }
        sigemptyset(&none);
        sigfillset(&all);
        posix_spawn_file_actions_init(&fa);
        posix_spawnattr_init(&attr);
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_adddup2(&fa, u->err_fd, 2);
        posix_spawn_file_actions_addclosefrom_np(&fa, 3);
        posix_spawnattr_setsigmask(&attr, &none);
        posix_spawnattr_setsigdefault(&attr, &all);
        posix_spawnattr_setpgroup(&attr, 0);
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
        rc = posix_spawn(&pid, argv[0], &fa, &attr, argv, envp);
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&attr);
        if (rc != 0) {
                *error = "cannot run reload.command";
                rc = -1;
                goto out;
        }
        rc = sd_event_add_child(r->srv->event, &u->child, pid, WEXITED, on_child, u);
        if (rc < 0) {
                (void) kill(pid, SIGKILL);
                *error = "cannot watch reload.command";
                rc = -1;
                goto out;
        }
        (void) sd_event_source_set_child_process_own(u->child, true);
        rc = 0;
out:
        for (size_t i = 0; i < ELEMENTSOF(argv); i++)
                free(argv[i]);
        return rc;
}
#pragma GCC diagnostic pop

/* ---- systemd ---- */

static unit *unit_by_job(reloader *r, const char *job) {
        for (size_t i = 0; i < r->n_units; i++)
                if (r->units[i]->job && streq(r->units[i]->job, job))
                        return r->units[i];
        return NULL;
}

static int on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        reloader *r = userdata;
        const char *job = NULL, *unit_name = NULL, *result = NULL;
        uint32_t id;
        unit *u;

        if (sd_bus_message_read(m, "uoss", &id, &job, &unit_name, &result) < 0)
                return 0;
        u = unit_by_job(r, job);
        if (u)
                finish(r, u, streq(result, "done") ? NULL : result);
        return 0;
}

static int on_reload_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        unit *u = userdata;
        reloader *r = u->r;
        const sd_bus_error *e = sd_bus_message_get_error(m);
        const char *job = NULL;

        u->call_slot = sd_bus_slot_unref(u->call_slot);
        if (e) {
                finish(r, u, e->message ? e->message : e->name);
                return 0;
        }
        if (sd_bus_message_read(m, "o", &job) < 0 || !(u->job = strdup(job)))
                finish(r, u, "malformed ReloadUnit reply");
        return 0;
}

static int start_systemd(reloader *r, unit *u, const char **error) {
        int rc;

        if (!r->bus) {
                rc = sd_bus_open_system(&r->bus);
                if (rc >= 0)
                        rc = sd_bus_attach_event(r->bus, r->srv->event, 0);
                if (rc >= 0)
                        rc = sd_bus_match_signal_async(r->bus, NULL, "org.freedesktop.systemd1",
                                                       "/org/freedesktop/systemd1",
                                                       "org.freedesktop.systemd1.Manager", "JobRemoved",
                                                       on_job_removed, NULL, r);
                if (rc < 0) {
                        r->bus = sd_bus_flush_close_unref(r->bus);
                        *error = "cannot reach systemd over D-Bus";
                        return -1;
                }
                sd_bus_set_description(r->bus, "jabali-agent-reload");
        }
        rc = sd_bus_call_method_async(r->bus, &u->call_slot, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                      "org.freedesktop.systemd1.Manager", "ReloadUnit", on_reload_reply, u, "ss",
                                      u->name, "replace");
        if (rc < 0) {
                *error = "ReloadUnit could not be sent";
                return -1;
        }
        return 0;
}

/* ---- scheduling ---- */

static int on_deadline(sd_event_source *es, uint64_t usec, void *userdata) {
        unit *u = userdata;
        pid_t pid;

        /* The command's whole process group goes; its exit finishes the
         * reload. A systemd job is only forgotten: systemd has its own
         * timeouts for it. */
        if (u->child && sd_event_source_get_child_pid(u->child, &pid) >= 0) {
                (void) kill(-pid, SIGKILL);
                return 0;
        }
        finish(u->r, u, "timed out");
        return 0;
}

static int on_fire(sd_event_source *es, uint64_t usec, void *userdata) {
        unit *u = userdata;
        const char *error = NULL;
        int rc;

        u->state = U_RUNNING;
        u->started_usec = now_usec();
        u->running = u->next_batch;
        u->next_batch = NULL;
        rc = sd_booted() > 0 ? start_systemd(u->r, u, &error) : start_command(u->r, u, &error);
        if (rc < 0) {
                finish(u->r, u, error);
                return 0;
        }
        if (sd_event_add_time_relative(u->r->srv->event, &u->deadline, CLOCK_MONOTONIC, RELOAD_TIMEOUT_USEC, 0,
                                       on_deadline, u) < 0)
                log_warning("reload of %s runs without a deadline", u->name);
        return 0;
}

/* The wait before a coalesced reload: the window, but never less than
 * the last reload took, counted from its end. A service that re-reads a
 * large configuration (nginx with 10,000 vhosts: seconds) would otherwise
 * be reloaded back to back through a burst of changes and spend all its
 * time re-reading; this way reloads take at most half of it, and the
 * changes of a longer stretch share one. */
static uint64_t coalesce_delay(const reloader *r, const unit *u) {
        uint64_t delay = r->srv->config->reload_window_ms * 1000ULL, now, took, earliest;

        if (u->ended_usec == 0 || u->ended_usec < u->started_usec)
                return delay;
        took = u->ended_usec - u->started_usec;
        earliest = u->ended_usec + took;
        now = now_usec();
        return earliest > now + delay ? earliest - now : delay;
}

static void arm(reloader *r, unit *u, bool now) {
        uint64_t delay = now ? 0 : coalesce_delay(r, u);
        int rc;

        if (!u->timer)
                rc = sd_event_add_time_relative(r->srv->event, &u->timer, CLOCK_MONOTONIC, delay, 0, on_fire, u);
        else {
                rc = sd_event_source_set_time_relative(u->timer, delay);
                if (rc >= 0)
                        rc = sd_event_source_set_enabled(u->timer, SD_EVENT_ONESHOT);
        }
        if (rc < 0) {
                /* Without a timer, reload at once rather than never. */
                on_fire(u->timer, 0, u);
                return;
        }
        u->state = U_ARMED;
}

static unit *unit_get(reloader *r, const char *name) {
        unit *u;

        for (size_t i = 0; i < r->n_units; i++)
                if (streq(r->units[i]->name, name))
                        return r->units[i];
        if (r->n_units >= MAX_UNITS)
                return NULL;
        u = calloc(1, sizeof(unit));
        if (!u)
                return NULL;
        u->r = r;
        u->err_fd = -1;
        u->name = strdup(name);
        if (!u->name) {
                free(u);
                return NULL;
        }
        r->units[r->n_units++] = u;
        return u;
}

int reloader_request(reloader *r, const char *unit_name, bool now, reload_done_fn done, void *userdata) {
        unit *u = unit_get(r, unit_name);

        if (!u)
                return -ENOMEM;
        if (done) {
                waiter *w = calloc(1, sizeof(waiter));
                if (!w)
                        return -ENOMEM;
                *w = (waiter) { .next = u->next_batch, .done = done, .userdata = userdata };
                u->next_batch = w;
        }
        u->requested++;
        switch (u->state) {
        case U_IDLE:
                arm(r, u, now);
                break;
        case U_ARMED:
                if (now)
                        arm(r, u, true);
                break;
        case U_RUNNING:
                /* Whatever is reloading now may predate this change. */
                u->again = true;
                u->again_now |= now;
                break;
        }
        return 0;
}

static void drop_waiters(waiter **list, void *userdata) {
        while (*list) {
                if ((*list)->userdata == userdata) {
                        waiter *w = *list;
                        *list = w->next;
                        free(w);
                } else
                        list = &(*list)->next;
        }
}

void reloader_cancel(reloader *r, void *userdata) {
        for (size_t i = 0; r && i < r->n_units; i++) {
                drop_waiters(&r->units[i]->next_batch, userdata);
                drop_waiters(&r->units[i]->running, userdata);
        }
}

json_object *reloader_health(const reloader *r) {
        json_object *o = json_object_new_object();

        for (size_t i = 0; r && i < r->n_units; i++) {
                const unit *u = r->units[i];
                json_object *e = json_object_new_object();
                static const char *const states[] = { [U_IDLE] = "idle", [U_ARMED] = "armed", [U_RUNNING] = "running" };
                json_object_object_add(e, "state", json_object_new_string(states[u->state]));
                json_object_object_add(e, "requested", json_object_new_int64((int64_t) u->requested));
                json_object_object_add(e, "reloads", json_object_new_int64((int64_t) u->reloads));
                json_object_object_add(e, "failed", json_object_new_int64((int64_t) u->failed));
                if (u->ended_usec >= u->started_usec && u->ended_usec > 0)
                        json_object_object_add(e, "last_ms",
                                               json_object_new_int64((int64_t) ((u->ended_usec - u->started_usec) / 1000)));
                if (u->last_error)
                        json_object_object_add(e, "last_error", json_object_new_string(u->last_error));
                json_object_object_add(o, u->name, e);
        }
        return o;
}
