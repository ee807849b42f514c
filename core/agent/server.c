/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The master's life cycle: start-up order, signals, reload, drain, exit. */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "audit.h"
#include "conn.h"
#include "log.h"
#include "modules.h"
#include "pool.h"
#include "reloader.h"
#include "server.h"
#include "util.h"

uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

static void notify_status(server *s, const char *state) {
        size_t ready = 0;
        for (size_t i = 0; i < s->modules->n_mods; i++)
                ready += s->modules->mods[i].state == MODULE_READY;
        (void) sd_notifyf(0, "STATUS=%s: %zu of %zu modules ready, %zu actions", state, ready,
                          s->modules->n_mods, s->modules->n_actions);
}

void server_maybe_ready(server *s) {
        if (s->ready_sent || s->draining)
                return;
        for (size_t i = 0; i < s->modules->n_mods; i++)
                if (s->modules->mods[i].pool && pool_starting(s->modules->mods[i].pool))
                        return;
        s->ready_sent = true;
        (void) sd_notify(0, "READY=1");
        notify_status(s, "serving");
        log_info("ready: %zu actions on %s", s->modules->n_actions,
                 s->socket_activated ? "the activated socket" : s->config->socket_path);
}

/* One directory of the runtime state: made when missing, refused when it
 * is not a directory of ours that only we may write. */
static int runtime_mkdir(int dir_fd, const char *name, const char *path, mode_t mode) {
        struct stat st;

        if (mkdirat(dir_fd, name, mode) < 0 && errno != EEXIST) {
                log_error("runtime.dir: cannot create %s: %m", path);
                return -1;
        }
        if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                log_error("runtime.dir: %s: %m", path);
                return -1;
        }
        if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 022)) {
                log_error("runtime.dir: %s must be a directory owned by uid %u and writable by it alone", path,
                          (unsigned) geteuid());
                return -1;
        }
        return 0;
}

/* runtime.dir and its locks/ directory, where workers keep their locks
 * (jb_lock_acquire) and other state that must not outlive a boot. A tmpfs
 * such as /run is empty after a boot, so they are made at every start. */
static int runtime_prepare(const char *dir) {
        char locks[4096];
        int fd, r;

        if (snprintf(locks, sizeof locks, "%s/locks", dir) >= (int) sizeof locks) {
                log_error("runtime.dir is too long");
                return -1;
        }
        if (runtime_mkdir(AT_FDCWD, dir, dir, 0700) < 0)
                return -1;
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
                log_error("runtime.dir: %s: %m", dir);
                return -1;
        }
        r = runtime_mkdir(fd, "locks", locks, 0700);
        close(fd);
        return r;
}

static void start_pools(server *s) {
        for (size_t i = 0; i < s->modules->n_mods; i++)
                if (s->modules->mods[i].pool)
                        (void) pool_start(s->modules->mods[i].pool, s);
}

void server_maybe_exit(server *s) {
        if (s->draining && s->in_flight == 0 && s->n_conns == 0)
                (void) sd_event_exit(s->event, 0);
}

static int on_force_exit(sd_event_source *es, uint64_t usec, void *userdata) {
        server *s = userdata;
        log_warning("drain did not finish in time (%u requests in flight); exiting", s->in_flight);
        return sd_event_exit(s->event, 0);
}

static int on_term(sd_event_source *es, const struct signalfd_siginfo *si, void *userdata) {
        server *s = userdata;

        if (s->draining)
                return 0;
        s->draining = true;
        (void) sd_notify(0, "STOPPING=1");
        log_info("signal %u: draining %u requests in flight", si->ssi_signo, s->in_flight);
        listener_close(s);
        conn_drain_all(s);
        /* Every request has a deadline; this is only the backstop for a
         * client that never reads its answers. */
        (void) sd_event_add_time_relative(s->event, NULL, CLOCK_MONOTONIC,
                                          (s->config->max_timeout_ms + 5000ULL) * 1000ULL, 0, on_force_exit, s);
        server_maybe_exit(s);
        return 0;
}

/* SIGHUP: a new config and a new module set, or nothing changes at all. */
static int on_hup(sd_event_source *es, const struct signalfd_siginfo *si, void *userdata) {
        server *s = userdata;
        struct agent_config *cfg = NULL;
        modset *set = NULL, *old;
        jb_err err = JB_ERR_INIT;

        (void) sd_notify(0, "RELOADING=1");
        log_info("reloading %s", s->config_path);
        if (config_load(s->config_path, NULL, &cfg, &err) < 0 || modset_load(cfg, s->modules, &set, &err) < 0) {
                log_error("reload failed, keeping the running configuration: %s", err.msg);
                config_free(cfg);
                goto done;
        }
        if (!streq(cfg->socket_path, s->config->socket_path))
                log_warning("socket.path changed; it takes effect at the next start");
        log_set_level(cfg->log_level);
        old = s->modules;
        old->retired = true;
        s->modules = set;
        s->config = set->config;
        if (audit_reopen(s->audit, &err) < 0)
                log_error("audit: %s", err.msg);
        start_pools(s);
        /* Requests still running in the old set hold references to it. */
        modset_unref(old);
done:
        (void) sd_notify(0, "READY=1");
        notify_status(s, "serving");
        return 0;
}

static int on_usr1(sd_event_source *es, const struct signalfd_siginfo *si, void *userdata) {
        server *s = userdata;
        jb_err err = JB_ERR_INIT;

        /* logrotate's postrotate: reopen the audit file. */
        if (audit_reopen(s->audit, &err) < 0)
                log_error("audit: %s", err.msg);
        return 0;
}

/* Once per loop iteration, after everything that could write audit
 * records ran: one fdatasync() for all of them, then their answers go. */
static int on_post(sd_event_source *es, void *userdata) {
        server *s = userdata;
        jb_err err = JB_ERR_INIT;

        if (!audit_sync_pending(s->audit))
                return 0;
        if (audit_sync(s->audit, &err) < 0) {
                log_error("%s", err.msg);
                s->audit_failing = true;
        }
        conn_flush_all(s);
        return 0;
}

static char *self_exe(void) {
        char buf[4096];
        ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
        if (n <= 0)
                return NULL;
        buf[n] = '\0';
        return strdup(buf);
}

static int setup_signals(server *s) {
        sigset_t ss;
        int r;

        /* Blocked before any source exists (sd-event needs it), and SIGCHLD
         * so that worker exits arrive as events. */
        sigemptyset(&ss);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGINT);
        sigaddset(&ss, SIGHUP);
        sigaddset(&ss, SIGUSR1);
        sigaddset(&ss, SIGCHLD);
        if (sigprocmask(SIG_BLOCK, &ss, NULL) < 0)
                return -errno;
        (void) signal(SIGPIPE, SIG_IGN);
        /* A file size limit hit while auditing must fail the write, not
         * kill the one process that serves everyone. */
        (void) signal(SIGXFSZ, SIG_IGN);
        if ((r = sd_event_add_signal(s->event, NULL, SIGTERM, on_term, s)) < 0 ||
            (r = sd_event_add_signal(s->event, NULL, SIGINT, on_term, s)) < 0 ||
            (r = sd_event_add_signal(s->event, NULL, SIGHUP, on_hup, s)) < 0 ||
            (r = sd_event_add_signal(s->event, NULL, SIGUSR1, on_usr1, s)) < 0)
                return r;
        return 0;
}

/* Exit status for a configuration the agent cannot run with (sysexits'
 * EX_CONFIG), so that a service manager need not restart it in a loop. */
#define EXIT_CONFIG 78

int server_run(const char *config_path) {
        server s = { .listen_fd = -1, .config_path = config_path, .start_usec = now_usec() };
        struct agent_config *cfg = NULL;
        jb_err err = JB_ERR_INIT;
        int r;

        if (config_load(config_path, NULL, &cfg, &err) < 0) {
                log_error("%s", err.msg);
                return EXIT_CONFIG;
        }
        log_set_level(cfg->log_level);
        /* Hats are entered before no_new_privs; a master that already has
         * it (a unit with NoNewPrivileges=, a wrapper) would make every hat
         * entry fail. */
        if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1 && cfg->apparmor != APPARMOR_OFF)
                log_warning("no_new_privs is already set on the master: workers cannot enter their AppArmor hats");
        for (size_t i = 0; i < cfg->n_warnings; i++)
                log_warning("%s", cfg->warnings[i]);
        s.exe_path = self_exe();
        if (!s.exe_path) {
                log_error("cannot find my own executable in /proc/self/exe");
                config_free(cfg);
                return 1;
        }
        if (modset_load(cfg, NULL, &s.modules, &err) < 0) {
                log_error("%s", err.msg);
                config_free(cfg);
                r = EXIT_CONFIG;
                goto out;
        }
        s.config = s.modules->config;
        for (size_t i = 0; i < s.modules->n_mods; i++)
                if (s.modules->mods[i].state != MODULE_READY)
                        log_warning("optional module %s unavailable: %s", s.modules->mods[i].name,
                                    s.modules->mods[i].reason);
        if (runtime_prepare(s.config->runtime_dir) < 0) {
                r = 1;
                goto out;
        }
        if (audit_open(&s.audit, s.config->audit_file, s.config->audit_fsync == AUDIT_FSYNC_ALWAYS,
                       s.config->audit_journal, &err) < 0) {
                log_error("audit: %s", err.msg);
                r = 1;
                goto out;
        }
        r = sd_event_default(&s.event);
        if (r >= 0 && !(s.reloader = reloader_new(&s)))
                r = -ENOMEM;
        if (r < 0 || setup_signals(&s) < 0 || listener_open(&s) < 0) {
                log_error("cannot set up the event loop or the socket");
                r = 1;
                goto out;
        }
        audit_set_deferred_sync(s.audit, true);
        if (sd_event_add_post(s.event, NULL, on_post, &s) < 0) {
                audit_set_deferred_sync(s.audit, false);        /* sync per record instead */
                log_warning("no post-iteration source: audit records are synced one by one");
        }
        (void) sd_event_set_watchdog(s.event, true);
        start_pools(&s);
        server_maybe_ready(&s);
        r = sd_event_loop(s.event);
        log_info("exiting");
        r = r < 0 ? 1 : 0;
out:
        listener_close(&s);
        while (s.conns)
                conn_free(s.conns);
        s.draining = true;
        s.modules = modset_unref(s.modules);
        reloader_free(s.reloader);
        audit_close(s.audit);
        free(s.uid_counts);
        sd_event_unref(s.event);
        free((char *) s.exe_path);
        return r;
}

int server_check_config(const char *config_path) {
        struct agent_config *cfg = NULL;
        modset *set = NULL;
        jb_err err = JB_ERR_INIT;

        if (config_load(config_path, NULL, &cfg, &err) < 0) {
                fprintf(stderr, "%s\n", err.msg);
                return 1;
        }
        for (size_t i = 0; i < cfg->n_warnings; i++)
                fprintf(stderr, "warning: %s\n", cfg->warnings[i]);
        /* Loading the modules checks their files, descriptors and settings;
         * init only inspects settings, and no worker is started. */
        if (modset_load(cfg, NULL, &set, &err) < 0) {
                fprintf(stderr, "%s\n", err.msg);
                config_free(cfg);
                return 1;
        }
        for (size_t i = 0; i < set->n_mods; i++)
                if (set->mods[i].state != MODULE_READY)
                        fprintf(stderr, "warning: optional module %s unavailable: %s\n", set->mods[i].name,
                                set->mods[i].reason);
        printf("configuration OK: %zu modules, %zu actions\n", set->n_mods, set->n_actions);
        modset_unref(set);
        return 0;
}
