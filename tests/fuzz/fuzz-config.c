/* SPDX-License-Identifier: GPL-3.0-or-later */
/* libFuzzer harness for the configuration loader: the input is written to
 * a file and loaded with config_load(), through the integer-literal
 * scanner, libconfig, the merge and the schema. A line "@@dropin@@" splits
 * the input: what follows each one becomes the next drop-in file
 * (agent.d/10.conf, 11.conf, ...), so merging is fuzzed too.
 *
 * The files live in a directory made once with mkdtemp() under $TMPDIR
 * (or /dev/shm, a tmpfs, when there is one) and removed at exit; "@DIR@" in
 * the input stands for that directory. Relative @include names resolve
 * against the working directory, as in the daemon: run the harness from a
 * scratch directory (tests/fuzz/run does).
 *
 * Besides memory safety: a failure is CONFIG_INVALID and leaves the result
 * alone; a success satisfies every bound config.h promises. @DIR@/wrap.conf
 * holds a module whose setting is an integer literal libconfig wraps: a
 * load that succeeds with that module from that file means the literal
 * scanner did not follow an @include that libconfig did. */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1  /* memmem */
#endif

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "config.h"

#define DROPINS_MAX 4
#define SEPARATOR "\n@@dropin@@\n"
#define DIR_MARK "@DIR@"
#define DIR_MARKS_MAX 16
#define WRAP_TEXT "modules: { wrapped: { settings: { x = 4294967296; }; }; };\n"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__lsan_default_suppressions(void);

/* libconfig 1.5 itself leaks the text of a string token when parsing
 * fails (x: { ""; }), and its string buffer when a file ends inside a
 * string that follows another one (a = "x" "y): reproduced with libconfig
 * alone, nothing config.c can free. Only those two allocation sites of its
 * scanner are ignored; a config_t left undestroyed would still show. */
const char *__lsan_default_suppressions(void) {
        return "leak:libconfig_yylex\nleak:strbuf_append\n";
}

static char dir[PATH_MAX], main_path[PATH_MAX], dropin_dir[PATH_MAX], wrap_path[PATH_MAX];
static char dropin_path[DROPINS_MAX][PATH_MAX];

static void put(const char *path, const uint8_t *p, size_t n);

static void cleanup(void) {
        for (size_t i = 0; i < DROPINS_MAX; i++)
                (void) unlink(dropin_path[i]);
        (void) rmdir(dropin_dir);
        (void) unlink(main_path);
        (void) unlink(wrap_path);
        (void) rmdir(dir);
}

/* A crash, a leak report or a timeout ends the process without atexit():
 * remove what such an earlier run of this harness left, once its process
 * is gone. */
static void remove_stale(const char *tmp) {
        char path[PATH_MAX];
        struct dirent *de;
        DIR *d = opendir(tmp);

        if (!d)
                return;
        while ((de = readdir(d))) {
                long pid;
                char tail[16];

                if (sscanf(de->d_name, "fuzz-config.%ld.%15s", &pid, tail) != 2 || pid <= 0 ||
                    pid == (long) getpid() || kill((pid_t) pid, 0) == 0 || errno != ESRCH)
                        continue;
                for (size_t i = 0; i < DROPINS_MAX; i++) {
                        (void) snprintf(path, sizeof path, "%s/%s/agent.d/%zu.conf", tmp, de->d_name, 10 + i);
                        (void) unlink(path);
                }
                (void) snprintf(path, sizeof path, "%s/%s/agent.d", tmp, de->d_name);
                (void) rmdir(path);
                (void) snprintf(path, sizeof path, "%s/%s/jabali-agent.conf", tmp, de->d_name);
                (void) unlink(path);
                (void) snprintf(path, sizeof path, "%s/%s/wrap.conf", tmp, de->d_name);
                (void) unlink(path);
                (void) snprintf(path, sizeof path, "%s/%s", tmp, de->d_name);
                (void) rmdir(path);
        }
        closedir(d);
}

static void setup(void) {
        const char *tmp = getenv("TMPDIR");

        if (!tmp || !tmp[0])
                tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        remove_stale(tmp);
        if (snprintf(dir, sizeof dir, "%s/fuzz-config.%ld.XXXXXX", tmp, (long) getpid()) >= (int) sizeof dir ||
            !mkdtemp(dir))
                abort();
        (void) snprintf(main_path, sizeof main_path, "%s/jabali-agent.conf", dir);
        (void) snprintf(dropin_dir, sizeof dropin_dir, "%s/agent.d", dir);
        for (size_t i = 0; i < DROPINS_MAX; i++)
                (void) snprintf(dropin_path[i], sizeof dropin_path[i], "%s/%zu.conf", dropin_dir, 10 + i);
        (void) snprintf(wrap_path, sizeof wrap_path, "%s/wrap.conf", dir);
        if (mkdir(dropin_dir, 0700) < 0)
                abort();
        atexit(cleanup);
        put(wrap_path, (const uint8_t *) WRAP_TEXT, strlen(WRAP_TEXT));
}

static void put(const char *path, const uint8_t *p, size_t n) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

        if (fd < 0)
                abort();
        while (n > 0) {
                ssize_t k = write(fd, p, n);

                if (k <= 0)
                        abort();
                p += k;
                n -= (size_t) k;
        }
        close(fd);
}

/* The input with every DIR_MARK replaced by the directory (a few at most);
 * a new buffer. */
static uint8_t *expand(const uint8_t *data, size_t size, size_t *ret_len) {
        size_t mark = strlen(DIR_MARK), dl = strlen(dir), n = 0, k = 0;
        uint8_t *out = malloc(size + DIR_MARKS_MAX * dl + 1);

        if (!out)
                abort();
        for (size_t i = 0; i < size; ) {
                if (k < DIR_MARKS_MAX && size - i >= mark && memcmp(data + i, DIR_MARK, mark) == 0) {
                        memcpy(out + n, dir, dl);
                        n += dl;
                        i += mark;
                        k++;
                } else
                        out[n++] = data[i++];
        }
        *ret_len = n;
        return out;
}

static bool absolute(const char *s) {
        return s && s[0] == '/';
}

static void check_config(const struct agent_config *c) {
        static const int levels[] = { LOG_DEBUG, LOG_INFO, LOG_NOTICE, LOG_WARNING, LOG_ERR };
        bool level_ok = false;

        if (!c->path || strcmp(c->path, main_path) != 0)
                abort();
        if (!absolute(c->socket_path) || strlen(c->socket_path) > 107 || c->socket_mode > 0777)
                abort();
        if ((c->socket_group != NULL) != c->has_socket_gid || (c->socket_group && !c->socket_group[0]))
                abort();
        if (c->n_allow_uids + c->n_allow_gids == 0)
                abort();
        for (size_t i = 0; i < c->n_allow_uids; i++)
                for (size_t j = 0; j < i; j++)
                        if (c->allow_uids[i] == c->allow_uids[j])
                                abort();
        for (size_t i = 0; i < c->n_allow_gids; i++)
                for (size_t j = 0; j < i; j++)
                        if (c->allow_gids[i] == c->allow_gids[j])
                                abort();
        if (!absolute(c->module_dir) || (c->audit_file && !absolute(c->audit_file)) || !absolute(c->runtime_dir))
                abort();
        for (size_t i = 0; i < c->n_modules; i++) {
                const struct module_conf *m = &c->modules[i];
                size_t len = strlen(m->name);

                if (len < 1 || len > CONFIG_MODULE_NAME_MAX || m->name[0] < 'a' || m->name[0] > 'z' ||
                    strspn(m->name, "abcdefghijklmnopqrstuvwxyz0123456789_") != len)
                        abort();
                if (i > 0 && strcmp(c->modules[i - 1].name, m->name) >= 0)
                        abort();
                if (config_module(c, m->name) != m)
                        abort();
                if (m->workers_max < 1 || m->workers_max > 64 || m->max_use < 1 || m->max_use > 1000000 ||
                    m->queue < 1 || m->queue > 65536 || m->idle_timeout_ms < 1000 || m->idle_timeout_ms > 86400000)
                        abort();
                if (!json_object_is_type(m->settings, json_type_object) || !m->where ||
                    !json_object_to_json_string(m->settings))
                        abort();
                /* a literal that libconfig wrapped went through */
                if (strncmp(m->where, wrap_path, strlen(wrap_path)) == 0 && m->where[strlen(wrap_path)] == ':')
                        abort();
        }
        if (c->audit_fsync != AUDIT_FSYNC_ALWAYS && c->audit_fsync != AUDIT_FSYNC_NEVER)
                abort();
        if (strcmp(apparmor_mode_to_string(c->apparmor), "unknown") == 0)
                abort();
        if (c->max_frame < 1024 || c->max_frame > 268435456 || c->max_depth < 2 || c->max_depth > 256 ||
            c->max_connections < 1 || c->max_connections > 65536 || c->max_connections_per_uid < 1 ||
            c->max_connections_per_uid > c->max_connections || c->max_pipeline < 1 || c->max_pipeline > 1024 ||
            c->read_timeout_ms < 100 || c->read_timeout_ms > 3600000 || c->max_timeout_ms < 1 ||
            c->max_timeout_ms > 86400000 || c->default_timeout_ms < 1 || c->default_timeout_ms > c->max_timeout_ms)
                abort();
        if (c->reload_command) {
                if (c->n_reload_command < 1 || !absolute(c->reload_command[0]) ||
                    c->reload_command[c->n_reload_command])
                        abort();
                for (size_t i = 0; i < c->n_reload_command; i++)
                        if (!c->reload_command[i])
                                abort();
        } else if (c->n_reload_command)
                abort();
        if (c->reload_window_ms > 60000)
                abort();
        for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++)
                level_ok = level_ok || c->log_level == levels[i];
        if (!level_ok)
                abort();
        for (size_t i = 0; i < c->n_warnings; i++)
                if (!c->warnings[i] || !c->warnings[i][0])
                        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct agent_config *cfg = (struct agent_config *) &cfg;
        jb_err err = JB_ERR_INIT;
        const uint8_t *p, *end, *sep;
        uint8_t *text;
        size_t n_dropins = 0;
        int r;

        if (!dir[0])
                setup();
        text = expand(data, size, &size);
        p = text;
        end = text + size;

        sep = memmem(p, (size_t) (end - p), SEPARATOR, strlen(SEPARATOR));
        put(main_path, p, sep ? (size_t) (sep - p) : size);
        while (sep && n_dropins < DROPINS_MAX) {
                p = sep + strlen(SEPARATOR);
                sep = memmem(p, (size_t) (end - p), SEPARATOR, strlen(SEPARATOR));
                put(dropin_path[n_dropins++], p, sep ? (size_t) (sep - p) : (size_t) (end - p));
        }
        for (size_t i = n_dropins; i < DROPINS_MAX; i++)
                (void) unlink(dropin_path[i]);
        free(text);

        r = config_load(main_path, dropin_dir, &cfg, &err);
        if (r == 0) {
                if (err.code[0] || cfg == (struct agent_config *) &cfg)
                        abort();
                check_config(cfg);
                config_free(cfg);
                return 0;
        }
        /* a failure: CONFIG_INVALID with a "FILE[:LINE]: " message */
        if (r != -1 || cfg != (struct agent_config *) &cfg || strcmp(err.code, "CONFIG_INVALID") != 0 ||
            !strstr(err.msg, ": "))
                abort();
        return 0;
}
