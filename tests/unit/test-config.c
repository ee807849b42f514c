/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The daemon's configuration: defaults, bounds, unknown keys, types, the
 * drop-in merge, the integer-wrap lexer, error locations, allow-list
 * resolution, module settings as JSON, and the shipped conf/ files.
 *
 * Every test writes its files below a fresh mkdtemp() directory. */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

/* Not "config.h": the build's include path puts autoheader's config.h first. */
#include "../../core/agent/config.h"

/* The build's module directory (configure's moduledir). */
#ifndef MODULEDIR
#define MODULEDIR "/usr/lib/jabali/modules"
#endif

/* The source tree: $JABALI_SRCDIR (set by `make check`), else TOP_SRCDIR. */
#ifndef TOP_SRCDIR
#define TOP_SRCDIR "."
#endif

/* The default socket group does not exist on most build machines; tests
 * that are not about it switch it off on line 1 without adding a line. */
#define NOGROUP "socket: { group = \"\"; }; "

typedef struct fixture {
        char dir[PATH_MAX / 2];
        char main[PATH_MAX];
} fixture;

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st;
        (void) flag;
        (void) ftw;
        return remove(p);
}

static int setup(void **state) {
        fixture *f = calloc(1, sizeof *f);
        const char *tmp = getenv("TMPDIR");

        if (!f)
                return -1;
        (void) snprintf(f->dir, sizeof f->dir, "%s/test-config-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(f->dir)) {
                free(f);
                return -1;
        }
        (void) snprintf(f->main, sizeof f->main, "%s/jabali-agent.conf", f->dir);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        fixture *f = *state;

        (void) nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        free(f);
        return 0;
}

static char *path_of(const fixture *f, const char *rel) {
        char *p = NULL;

        assert_true(asprintf(&p, "%s/%s", f->dir, rel) > 0);
        return p;
}

static void write_bytes(const char *path, const char *data, size_t len) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, data, len), (ssize_t) len);
        assert_int_equal(close(fd), 0);
}

/* Writes dir/rel, creating agent.d/ when rel is below it. */
static void put(const fixture *f, const char *rel, const char *text) {
        char *p = path_of(f, rel);

        if (strncmp(rel, "agent.d/", 8) == 0) {
                char *d = path_of(f, "agent.d");

                assert_true(mkdir(d, 0755) == 0 || errno == EEXIST);
                free(d);
        }
        write_bytes(p, text, strlen(text));
        free(p);
}

static struct agent_config *load_ok(const fixture *f) {
        struct agent_config *c = NULL;
        jb_err err = JB_ERR_INIT;

        if (config_load(f->main, NULL, &c, &err) < 0)
                fail_msg("unexpected error: %s: %s", err.code, err.msg);
        assert_non_null(c);
        assert_false(jb_err_isset(&err));
        return c;
}

static struct agent_config *load_main_ok(const fixture *f, const char *text) {
        put(f, "jabali-agent.conf", text);
        return load_ok(f);
}

/* Loading must fail with CONFIG_INVALID and a message that begins with
 * "<dir>/<rel>:<line>: " (or "<dir>/<rel>: " for line 0) and contains `what`. */
static void expect_error(const fixture *f, const char *rel, unsigned line, const char *what) {
        struct agent_config *c = NULL;
        jb_err err = JB_ERR_INIT;
        char want[PATH_MAX + 32];

        if (config_load(f->main, NULL, &c, &err) == 0) {
                config_free(c);
                fail_msg("loaded, expected an error containing '%s'", what);
        }
        assert_null(c);
        assert_string_equal(err.code, "CONFIG_INVALID");
        if (line > 0)
                (void) snprintf(want, sizeof want, "%s/%s:%u: ", f->dir, rel, line);
        else
                (void) snprintf(want, sizeof want, "%s/%s: ", f->dir, rel);
        if (strncmp(err.msg, want, strlen(want)) != 0 || !strstr(err.msg, what))
                fail_msg("got '%s', want '%s...%s...'", err.msg, want, what);
}

static void main_error(const fixture *f, const char *text, unsigned line, const char *what) {
        put(f, "jabali-agent.conf", text);
        expect_error(f, "jabali-agent.conf", line, what);
}

static bool has_warning(const struct agent_config *c, const char *what) {
        for (size_t i = 0; i < c->n_warnings; i++)
                if (strstr(c->warnings[i], what))
                        return true;
        return false;
}

static bool jabali_sockets_exists(void) {
        return getgrnam("jabali-sockets") != NULL;
}

/* Every value a config carries when nothing is set (but socket.group). */
static void check_defaults(const struct agent_config *c) {
        assert_string_equal(c->socket_path, "/run/jabali-agent.sock");
        assert_int_equal(c->socket_mode, 0660);
        assert_non_null(c->allow_uids);
        assert_int_equal(c->n_allow_uids, 1);
        assert_int_equal(c->allow_uids[0], 0);
        assert_int_equal(c->n_allow_gids, jabali_sockets_exists() ? 1 : 0);
        assert_string_equal(c->module_dir, MODULEDIR);
        assert_false(c->allow_insecure_modules);
        assert_int_equal(c->n_modules, 0);
        assert_null(c->modules);
        assert_string_equal(c->audit_file, "/var/log/jabali/audit.jsonl");
        assert_int_equal(c->audit_fsync, AUDIT_FSYNC_ALWAYS);
        assert_true(c->audit_journal);
        assert_int_equal(c->apparmor, APPARMOR_ENFORCE);
        assert_int_equal(c->max_frame, 8388608);
        assert_int_equal(c->max_depth, 32);
        assert_int_equal(c->max_connections, 256);
        assert_int_equal(c->max_connections_per_uid, 64);
        assert_int_equal(c->max_pipeline, 32);
        assert_int_equal(c->read_timeout_ms, 30000);
        assert_int_equal(c->default_timeout_ms, 120000);
        assert_int_equal(c->max_timeout_ms, 600000);
        assert_string_equal(c->runtime_dir, "/run/jabali-agent");
        assert_null(c->reload_command);
        assert_int_equal(c->n_reload_command, 0);
        assert_int_equal(c->reload_window_ms, 250);
        assert_int_equal(c->log_level, LOG_INFO);
        assert_int_equal(c->n_warnings, jabali_sockets_exists() ? 0 : 1);
        if (!jabali_sockets_exists())
                assert_true(has_warning(c, "unknown group 'jabali-sockets'"));
}

/* ------------------------------------------------------------ defaults */

static void test_defaults(void **state) {
        fixture *f = *state;
        struct agent_config *c = load_main_ok(f, "socket: { group = \"\"; };\n");

        assert_string_equal(c->path, f->main);
        if (!jabali_sockets_exists())
                assert_true(has_warning(c, "unknown group 'jabali-sockets' (the default); skipped"));
        assert_null(c->socket_group);
        assert_false(c->has_socket_gid);
        check_defaults(c);
        config_free(c);

        /* Empty groups are the same as absent ones. */
        c = load_main_ok(f, NOGROUP "allow: {}; modules: {}; audit: {}; apparmor: {}; limits: {};\n"
                            "runtime: {}; reload: {}; log: {};\n");
        check_defaults(c);
        config_free(c);
}

static void test_default_socket_group(void **state) {
        fixture *f = *state;

        put(f, "jabali-agent.conf", "# nothing set\n");
        if (jabali_sockets_exists()) {
                struct agent_config *c = load_ok(f);

                assert_string_equal(c->socket_group, "jabali-sockets");
                assert_true(c->has_socket_gid);
                config_free(c);
        } else
                /* A default has no line: the message names the main file only. */
                expect_error(f, "jabali-agent.conf", 0,
                             "socket.group: no such group 'jabali-sockets' (the default");
}

static void test_socket(void **state) {
        fixture *f = *state;
        struct agent_config *c;
        char text[512], path[128];

        c = load_main_ok(f, "socket: { path = \"/x/a.sock\"; group = \"root\"; mode = \"600\"; };\n");
        assert_string_equal(c->socket_path, "/x/a.sock");
        assert_string_equal(c->socket_group, "root");
        assert_true(c->has_socket_gid);
        assert_int_equal(c->socket_gid, 0);
        assert_int_equal(c->socket_mode, 0600);
        config_free(c);

        c = load_main_ok(f, "socket: { group = \"\"; mode = \"0777\"; };\n");
        assert_int_equal(c->socket_mode, 0777);
        config_free(c);
        c = load_main_ok(f, "socket: { group = \"\"; mode = \"0\"; };\n");
        assert_int_equal(c->socket_mode, 0);
        config_free(c);

        main_error(f, "\nsocket: {\n group = \"no-such-group-xyz\"; };\n", 3,
                   "socket.group: no such group 'no-such-group-xyz'");
        main_error(f, "socket: { group = \"\";\n mode = \"1777\"; };\n", 2, "socket.mode = '1777' is above 0777");
        main_error(f, "socket: { group = \"\";\n mode = \"0800\"; };\n", 2, "must be octal digits");
        main_error(f, "socket: { group = \"\";\n mode = \"rw-\"; };\n", 2, "must be octal digits");
        main_error(f, "socket: { group = \"\";\n mode = \"\"; };\n", 2, "not empty");
        main_error(f, "socket: { group = \"\";\n mode = \"00000000001000\"; };\n", 2, "above 0777");
        main_error(f, "socket: { group = \"\";\n mode = 660; };\n", 2, "socket.mode must be a string");
        main_error(f, "socket: { group = \"\";\n path = \"run/a.sock\"; };\n", 2,
                   "socket.path must be an absolute path");
        main_error(f, "socket: { group = \"\";\n path = \"\"; };\n", 2, "socket.path must be an absolute path");

        /* sun_path holds 107 bytes and the NUL. */
        memset(path, 'a', sizeof path);
        path[0] = '/';
        path[107] = '\0';
        (void) snprintf(text, sizeof text, "socket: { group = \"\"; path = \"%s\"; };\n", path);
        c = load_main_ok(f, text);
        assert_int_equal(strlen(c->socket_path), 107);
        config_free(c);
        path[107] = 'a';
        path[108] = '\0';
        (void) snprintf(text, sizeof text, "socket: { group = \"\";\npath = \"%s\"; };\n", path);
        main_error(f, text, 2, "socket.path is longer than 107 bytes");
}

/* -------------------------------------------------------------- bounds */

enum { IN_CONFIG, IN_MODULE32, IN_MODULE64 };

static const struct bound {
        const char *pre, *post;
        long long min, max;
        int where;
        size_t off;
} bounds[] = {
        { NOGROUP "limits: { max_frame = ", "; };", 1024, 268435456, IN_CONFIG,
          offsetof(struct agent_config, max_frame) },
        { NOGROUP "limits: { max_depth = ", "; };", 2, 256, IN_CONFIG,
          offsetof(struct agent_config, max_depth) },
        { NOGROUP "limits: { max_connections = ", "; };", 1, 65536, IN_CONFIG,
          offsetof(struct agent_config, max_connections) },
        { NOGROUP "limits: { max_connections = 65536; max_connections_per_uid = ", "; };", 1, 65536, IN_CONFIG,
          offsetof(struct agent_config, max_connections_per_uid) },
        { NOGROUP "limits: { max_pipeline = ", "; };", 1, 1024, IN_CONFIG,
          offsetof(struct agent_config, max_pipeline) },
        { NOGROUP "limits: { read_timeout_ms = ", "; };", 100, 3600000, IN_CONFIG,
          offsetof(struct agent_config, read_timeout_ms) },
        { NOGROUP "limits: { max_timeout_ms = 86400000; default_timeout_ms = ", "; };", 1, 86400000, IN_CONFIG,
          offsetof(struct agent_config, default_timeout_ms) },
        { NOGROUP "limits: { max_timeout_ms = ", "; };", 1, 86400000, IN_CONFIG,
          offsetof(struct agent_config, max_timeout_ms) },
        { NOGROUP "reload: { window_ms = ", "; };", 0, 60000, IN_CONFIG,
          offsetof(struct agent_config, reload_window_ms) },
        { NOGROUP "modules: { m: { workers: { max = ", "; }; }; };", 1, 64, IN_MODULE32,
          offsetof(struct module_conf, workers_max) },
        { NOGROUP "modules: { m: { workers: { max_use = ", "; }; }; };", 1, 1000000, IN_MODULE32,
          offsetof(struct module_conf, max_use) },
        { NOGROUP "modules: { m: { workers: { queue = ", "; }; }; };", 1, 65536, IN_MODULE32,
          offsetof(struct module_conf, queue) },
        { NOGROUP "modules: { m: { workers: { idle_timeout_ms = ", "; }; }; };", 1000, 86400000, IN_MODULE64,
          offsetof(struct module_conf, idle_timeout_ms) },
};

static void bound_text(char *buf, size_t size, const struct bound *b, long long v, const char *suffix) {
        (void) snprintf(buf, size, "%s%lld%s%s\n", b->pre, v, suffix, b->post);
}

static uint64_t bound_value(const struct agent_config *c, const struct bound *b) {
        const struct module_conf *m;

        switch (b->where) {
        case IN_CONFIG:
                return *(const uint32_t *) ((const char *) c + b->off);
        case IN_MODULE32:
                m = config_module(c, "m");
                assert_non_null(m);
                return *(const uint32_t *) ((const char *) m + b->off);
        default:
                m = config_module(c, "m");
                assert_non_null(m);
                return *(const uint64_t *) ((const char *) m + b->off);
        }
}

static void test_bounds(void **state) {
        fixture *f = *state;
        char text[512];

        for (size_t i = 0; i < sizeof bounds / sizeof bounds[0]; i++) {
                const struct bound *b = &bounds[i];
                const long long ok[] = { b->min, b->max };
                const long long bad[] = { b->min - 1, b->max + 1 };

                for (size_t j = 0; j < 2; j++) {
                        struct agent_config *c;

                        bound_text(text, sizeof text, b, ok[j], "");
                        c = load_main_ok(f, text);
                        assert_int_equal(bound_value(c, b), (uint64_t) ok[j]);
                        config_free(c);

                        /* The 64-bit form of the same number reads the same. */
                        bound_text(text, sizeof text, b, ok[j], "L");
                        c = load_main_ok(f, text);
                        assert_int_equal(bound_value(c, b), (uint64_t) ok[j]);
                        config_free(c);

                        bound_text(text, sizeof text, b, bad[j], "");
                        main_error(f, text, 1, "is out of range");
                }
                bound_text(text, sizeof text, b, 4294967296LL + b->min, "L");
                main_error(f, text, 1, "is out of range");
        }
}

static void test_cross_bounds(void **state) {
        fixture *f = *state;
        struct agent_config *c;

        main_error(f, NOGROUP "limits: { max_connections = 10;\n max_connections_per_uid = 11; };\n", 2,
                   "limits.max_connections_per_uid = 11 is above limits.max_connections = 10");
        main_error(f, NOGROUP "limits: { max_timeout_ms = 1000;\n default_timeout_ms = 1001; };\n", 2,
                   "limits.default_timeout_ms = 1001 is above limits.max_timeout_ms = 1000");

        /* Defaults follow an explicit bound down. */
        c = load_main_ok(f, NOGROUP "limits: { max_connections = 10; max_timeout_ms = 1000; };\n");
        assert_int_equal(c->max_connections_per_uid, 10);
        assert_int_equal(c->default_timeout_ms, 1000);
        config_free(c);
        c = load_main_ok(f, NOGROUP "limits: { max_connections = 10; max_connections_per_uid = 10;\n"
                            "max_timeout_ms = 1000; default_timeout_ms = 1000; };\n");
        assert_int_equal(c->max_connections_per_uid, 10);
        assert_int_equal(c->default_timeout_ms, 1000);
        config_free(c);
}

/* -------------------------------------------------------- unknown keys */

static void test_unknown_keys(void **state) {
        fixture *f = *state;
        static const struct {
                const char *text;
                const char *what;
        } cases[] = {
                { NOGROUP "\nfoo = 1;\n", "unknown setting 'foo'" },
                { NOGROUP "\nbar: { x = 1; };\n", "unknown setting 'bar'" },
                { "socket: { group = \"\";\n owner = \"root\"; };\n", "unknown setting 'socket.owner'" },
                { NOGROUP "allow: {\n uids = [ 0 ]; };\n", "unknown setting 'allow.uids'" },
                { NOGROUP "modules: {\n x = 1; };\n", "unknown setting 'modules.x'" },
                { NOGROUP "modules: { m: {\n enable = true; }; };\n", "unknown setting 'modules.m.enable'" },
                { NOGROUP "modules: { m: { workers: {\n min = 1; }; }; };\n",
                  "unknown setting 'modules.m.workers.min'" },
                { NOGROUP "audit: {\n sink = \"x\"; };\n", "unknown setting 'audit.sink'" },
                { NOGROUP "apparmor: {\n profile = \"x\"; };\n", "unknown setting 'apparmor.profile'" },
                { NOGROUP "limits: {\n max_frames = 2000; };\n", "unknown setting 'limits.max_frames'" },
                { NOGROUP "runtime: {\n state = \"/x\"; };\n", "unknown setting 'runtime.state'" },
                { NOGROUP "reload: {\n cmd = [ \"/bin/true\" ]; };\n", "unknown setting 'reload.cmd'" },
                { NOGROUP "log: {\n target = \"x\"; };\n", "unknown setting 'log.target'" },
                /* libconfig names may hold '-' and '*': still unknown. */
                { NOGROUP "limits: {\n max-frame = 2000; };\n", "unknown setting 'limits.max-frame'" },
        };
        struct agent_config *c;

        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
                main_error(f, cases[i].text, 2, cases[i].what);

        /* A module's settings are free-form. */
        c = load_main_ok(f, NOGROUP "modules: { m: { settings: { anything = 1; else-here = \"x\"; }; }; };\n");
        assert_int_equal(c->n_modules, 1);
        config_free(c);
}

/* --------------------------------------------------------------- types */

static void test_wrong_types(void **state) {
        fixture *f = *state;
        static const struct {
                const char *text;
                const char *what;
        } cases[] = {
                { NOGROUP "\nlimits = 5;\n", "limits must be a group, not an integer" },
                { "\nsocket = \"/run/x.sock\";\n", "socket must be a group, not a string" },
                { NOGROUP "allow: {\n users = \"root\"; };\n", "allow.users must be an array of strings, not a string" },
                { NOGROUP "allow: { users = [ \"root\",\n 0 ]; };\n", "mismatched element type" },
                { NOGROUP "allow: { users = ( \"root\",\n 0 ); };\n", "allow.users[1] must be a string, not an integer" },
                { NOGROUP "allow: {\n groups = { a = 1; }; };\n", "allow.groups must be an array of strings, not a group" },
                { NOGROUP "limits: {\n max_frame = \"big\"; };\n", "limits.max_frame must be an integer, not a string" },
                { NOGROUP "limits: {\n max_frame = 2048.0; };\n", "limits.max_frame must be an integer, not a float" },
                { NOGROUP "limits: {\n max_frame = true; };\n", "limits.max_frame must be an integer, not a boolean" },
                { NOGROUP "limits: {\n max_frame = [ 2048 ]; };\n", "limits.max_frame must be an integer, not an array" },
                { NOGROUP "modules: {\n allow_insecure = 1; };\n", "modules.allow_insecure must be a boolean" },
                { NOGROUP "modules: {\n dir = 1; };\n", "modules.dir must be a string" },
                { NOGROUP "modules: {\n dir = \"lib/modules\"; };\n", "modules.dir must be an absolute path" },
                { NOGROUP "modules: { m: {\n enabled = \"yes\"; }; };\n", "modules.m.enabled must be a boolean" },
                { NOGROUP "modules: { m: {\n optional = 0; }; };\n", "modules.m.optional must be a boolean" },
                { NOGROUP "modules: { m: {\n workers = 2; }; };\n", "modules.m.workers must be a group" },
                { NOGROUP "modules: { m: {\n settings = [ 1 ]; }; };\n", "modules.m.settings must be a group" },
                { NOGROUP "modules: {\n Nginx: { }; };\n", "invalid module name 'Nginx'" },
                { NOGROUP "modules: {\n my-mod: { }; };\n", "invalid module name 'my-mod'" },
                { NOGROUP "modules: {\n a23456789012345678901234567890123: { }; };\n", "invalid module name" },
                { NOGROUP "audit: {\n file = \"audit.jsonl\"; };\n", "audit.file must be an absolute path" },
                { NOGROUP "audit: {\n fsync = \"sometimes\"; };\n", "audit.fsync = 'sometimes' is not one of: always, never" },
                { NOGROUP "audit: {\n fsync = true; };\n", "audit.fsync must be a string" },
                { NOGROUP "audit: {\n journal = \"yes\"; };\n", "audit.journal must be a boolean" },
                { NOGROUP "apparmor: {\n mode = \"Enforce\"; };\n", "apparmor.mode = 'Enforce' is not one of: enforce, complain, off" },
                { NOGROUP "runtime: {\n dir = \"run\"; };\n", "runtime.dir must be an absolute path" },
                { NOGROUP "reload: { command = [\n \"service\", \"{unit}\", \"reload\" ]; };\n",
                  "reload.command[0] must be an absolute path" },
                { NOGROUP "reload: {\n command = \"/usr/sbin/service\"; };\n", "reload.command must be an array of strings" },
                { NOGROUP "log: {\n level = \"loud\"; };\n", "log.level = 'loud' is not one of: debug, info, notice, warning, err" },
                { NOGROUP "log: {\n level = 7; };\n", "log.level must be a string" },
        };

        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
                main_error(f, cases[i].text, 2, cases[i].what);
}

static void test_values(void **state) {
        fixture *f = *state;
        struct agent_config *c;
        static const struct {
                const char *name;
                int level;
        } levels[] = {
                { "debug", LOG_DEBUG }, { "info", LOG_INFO }, { "notice", LOG_NOTICE },
                { "warning", LOG_WARNING }, { "err", LOG_ERR },
        };

        c = load_main_ok(f, NOGROUP "modules: { dir = \"/opt/mods\"; allow_insecure = true; };\n"
                            "audit: { file = \"\"; fsync = \"never\"; journal = false; };\n"
                            "apparmor: { mode = \"complain\"; };\n"
                            "runtime: { dir = \"/tmp/rt\"; };\n"
                            "reload: { command = [ \"/usr/sbin/service\", \"{unit}\", \"reload\" ]; window_ms = 0; };\n");
        assert_string_equal(c->module_dir, "/opt/mods");
        assert_true(c->allow_insecure_modules);
        assert_null(c->audit_file);
        assert_int_equal(c->audit_fsync, AUDIT_FSYNC_NEVER);
        assert_false(c->audit_journal);
        assert_int_equal(c->apparmor, APPARMOR_COMPLAIN);
        assert_string_equal(c->runtime_dir, "/tmp/rt");
        assert_int_equal(c->n_reload_command, 3);
        assert_string_equal(c->reload_command[0], "/usr/sbin/service");
        assert_string_equal(c->reload_command[1], "{unit}");
        assert_string_equal(c->reload_command[2], "reload");
        assert_null(c->reload_command[3]);
        assert_int_equal(c->reload_window_ms, 0);
        config_free(c);

        c = load_main_ok(f, NOGROUP "apparmor: { mode = \"off\"; }; reload: { command = ( \"/bin/true\" ); };\n");
        assert_int_equal(c->apparmor, APPARMOR_OFF);
        assert_int_equal(c->n_reload_command, 1);
        config_free(c);

        for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
                char text[128];

                (void) snprintf(text, sizeof text, NOGROUP "log: { level = \"%s\"; };\n", levels[i].name);
                c = load_main_ok(f, text);
                assert_int_equal(c->log_level, levels[i].level);
                config_free(c);
        }

        assert_string_equal(apparmor_mode_to_string(APPARMOR_ENFORCE), "enforce");
        assert_string_equal(apparmor_mode_to_string(APPARMOR_COMPLAIN), "complain");
        assert_string_equal(apparmor_mode_to_string(APPARMOR_OFF), "off");
        assert_string_equal(apparmor_mode_to_string((apparmor_mode) 3), "unknown");
        assert_string_equal(apparmor_mode_to_string((apparmor_mode) -1), "unknown");
}

/* ------------------------------------------------------------- modules */

static void test_modules(void **state) {
        fixture *f = *state;
        struct agent_config *c;
        const struct module_conf *m;
        char where[PATH_MAX + 16];

        c = load_main_ok(f, NOGROUP "modules: {\n"
                            "  zeta: { enabled = false; };\n"
                            "  alpha: { optional = true; workers: { max = 4; max_use = 10; queue = 3;\n"
                            "           idle_timeout_ms = 5000L; }; };\n"
                            "  m_2: { };\n"
                            "};\n");
        assert_int_equal(c->n_modules, 3);
        assert_string_equal(c->modules[0].name, "alpha");
        assert_string_equal(c->modules[1].name, "m_2");
        assert_string_equal(c->modules[2].name, "zeta");

        m = config_module(c, "alpha");
        assert_ptr_equal(m, &c->modules[0]);
        assert_true(m->enabled);
        assert_true(m->optional);
        assert_int_equal(m->workers_max, 4);
        assert_int_equal(m->max_use, 10);
        assert_int_equal(m->queue, 3);
        assert_int_equal(m->idle_timeout_ms, 5000);
        (void) snprintf(where, sizeof where, "%s:3", f->main);
        assert_string_equal(m->where, where);

        m = config_module(c, "m_2");
        assert_non_null(m);
        assert_true(m->enabled);
        assert_false(m->optional);
        assert_int_equal(m->workers_max, 2);
        assert_int_equal(m->max_use, 500);
        assert_int_equal(m->queue, 64);
        assert_int_equal(m->idle_timeout_ms, 300000);
        assert_string_equal(json_object_to_json_string_ext(m->settings, JSON_C_TO_STRING_PLAIN), "{}");

        m = config_module(c, "zeta");
        assert_non_null(m);
        assert_false(m->enabled);

        assert_null(config_module(c, "beta"));
        assert_null(config_module(c, ""));
        assert_null(config_module(c, NULL));
        assert_null(config_module(NULL, "alpha"));
        config_free(c);

        /* A 32-character name is the longest. */
        c = load_main_ok(f, NOGROUP "modules: { a2345678901234567890123456789012: { }; };\n");
        assert_non_null(config_module(c, "a2345678901234567890123456789012"));
        config_free(c);
}

static void test_settings_json(void **state) {
        fixture *f = *state;
        struct agent_config *c;
        const struct module_conf *m;

        c = load_main_ok(f, NOGROUP "modules: { web: { settings: {\n"
                            "  root = \"/srv/www\";\n"
                            "  count = 3;\n"
                            "  big = 10000000000L;\n"
                            "  neg = -2147483648;\n"
                            "  ratio = 0.5;\n"
                            "  on = true;\n"
                            "  ports = [ 80, 443 ];\n"
                            "  empty = [ ];\n"
                            "  mixed = ( \"a\", 1, { k = \"v\"; }, [ 1.5 ], ( ) );\n"
                            "  nested: { deeper: { deepest = \"x\"; list = [ \"p\", \"q\" ]; }; none: { }; };\n"
                            "  hex = 0x10;\n"
                            "}; }; };\n");
        m = config_module(c, "web");
        assert_non_null(m);
        assert_string_equal(json_object_to_json_string_ext(m->settings, JSON_C_TO_STRING_PLAIN),
                            "{\"root\":\"\\/srv\\/www\",\"count\":3,\"big\":10000000000,\"neg\":-2147483648,"
                            "\"ratio\":0.5,\"on\":true,\"ports\":[80,443],\"empty\":[],"
                            "\"mixed\":[\"a\",1,{\"k\":\"v\"},[1.5],[]],"
                            "\"nested\":{\"deeper\":{\"deepest\":\"x\",\"list\":[\"p\",\"q\"]},\"none\":{}},"
                            "\"hex\":16}");
        assert_true(json_object_is_type(json_object_object_get(m->settings, "big"), json_type_int));
        assert_true(json_object_get_int64(json_object_object_get(m->settings, "big")) == 10000000000LL);
        assert_true(json_object_is_type(json_object_object_get(m->settings, "ratio"), json_type_double));
        config_free(c);

        /* Infinity has no JSON form. */
        main_error(f, NOGROUP "modules: { web: { settings: {\n huge = 1e999; }; }; };\n", 2, "number out of range");
}

static void test_nesting_limit(void **state) {
        fixture *f = *state;
        char text[8192];
        size_t len = 0;
        struct agent_config *c;

        /* 64 levels below the root pass; the 65th does not. */
        len += (size_t) snprintf(text + len, sizeof text - len, NOGROUP "modules: { m: { settings: {");
        for (int i = 0; i < 61; i++)
                len += (size_t) snprintf(text + len, sizeof text - len, " g%d: {", i);
        for (int i = 0; i < 64; i++)
                len += (size_t) snprintf(text + len, sizeof text - len, " };");
        (void) snprintf(text + len, sizeof text - len, "\n");
        c = load_main_ok(f, text);
        config_free(c);

        len = (size_t) snprintf(text, sizeof text, NOGROUP "modules: { m: { settings: {");
        for (int i = 0; i < 62; i++)
                len += (size_t) snprintf(text + len, sizeof text - len, " g%d: {", i);
        for (int i = 0; i < 65; i++)
                len += (size_t) snprintf(text + len, sizeof text - len, " };");
        (void) snprintf(text + len, sizeof text - len, "\n");
        main_error(f, text, 1, "nested deeper than 64 levels");
}

/* ------------------------------------------------------------ drop-ins */

static void test_dropins(void **state) {
        fixture *f = *state;
        struct agent_config *c;
        const struct module_conf *m;
        char *where;

        put(f, "jabali-agent.conf",
            NOGROUP "limits: { max_frame = 2048; max_depth = 8; };\n"
            "allow: { users = [ \"root\", \"nobody\" ]; groups = [ ]; };\n"
            "log: { level = \"debug\"; };\n");
        put(f, "agent.d/10-web.conf",
            "modules: { web: {\n"
            "  workers: { max = 3; };\n"
            "  optional = true;\n"
            "  settings: { a = 1; b: { c = 2; }; list = [ 1, 2 ]; };\n"
            "}; };\n"
            "limits: { max_frame = 4096; max_pipeline = 10; };\n");
        put(f, "agent.d/20-web-more.conf",
            "\nmodules: { web: {\n"
            "  workers: { queue = 5; };\n"
            "  settings: { b: { d = 3; }; list = [ 9 ]; };\n"
            "}; };\n");
        /* strcmp order: "9-..." after "20-...", "zz-local" last. */
        put(f, "agent.d/9-frame.conf", "limits: { max_frame = 5000; max_depth = 9; max_pipeline = 9; };\n");
        put(f, "agent.d/zz-local.conf", "limits: { max_frame = 8192; };\nallow: { users = [ \"root\" ]; };\n");
        /* Not drop-ins: all would fail to load. */
        put(f, "agent.d/.hidden.conf", "this is { not valid\n");
        put(f, "agent.d/.conf", "this is { not valid\n");
        put(f, "agent.d/old.conf.disabled", "this is { not valid\n");
        put(f, "agent.d/README", "this is { not valid\n");
        put(f, "agent.d/conf", "this is { not valid\n");
        put(f, "agent.d/x.CONF", "this is { not valid\n");

        c = load_ok(f);
        assert_int_equal(c->max_frame, 8192);
        assert_int_equal(c->max_depth, 9);
        assert_int_equal(c->max_pipeline, 9);
        assert_int_equal(c->log_level, LOG_DEBUG);
        /* An array set again replaces the earlier one. */
        assert_int_equal(c->n_allow_uids, 1);
        assert_int_equal(c->allow_uids[0], 0);
        m = config_module(c, "web");
        assert_non_null(m);
        assert_int_equal(m->workers_max, 3);
        assert_int_equal(m->queue, 5);
        assert_true(m->optional);
        assert_string_equal(json_object_to_json_string_ext(m->settings, JSON_C_TO_STRING_PLAIN),
                            "{\"a\":1,\"b\":{\"c\":2,\"d\":3},\"list\":[9]}");
        /* The module's location is that of the latest file that set it. */
        assert_true(asprintf(&where, "%s/agent.d/20-web-more.conf:2", f->dir) > 0);
        assert_string_equal(m->where, where);
        free(where);
        config_free(c);

        /* Errors in a drop-in name it; the line is its own. */
        put(f, "agent.d/zzz-bad.conf", "# comment\nlimits: { max_depth = 1; };\n");
        expect_error(f, "agent.d/zzz-bad.conf", 2, "limits.max_depth = 1 is out of range (2..256)");
        put(f, "agent.d/zzz-bad.conf", "# comment\n\nlog: { level = ; };\n");
        expect_error(f, "agent.d/zzz-bad.conf", 3, "syntax error");
        put(f, "agent.d/zzz-bad.conf", "log: {\n level = \"info\"; nope = 1; };\n");
        expect_error(f, "agent.d/zzz-bad.conf", 2, "unknown setting 'log.nope'");

        /* A later scalar replacing a group is then the wrong type, at its own place. */
        put(f, "agent.d/zzz-bad.conf", "\nlimits = 3;\n");
        expect_error(f, "agent.d/zzz-bad.conf", 2, "limits must be a group, not an integer");
        /* And a later group replacing a scalar. */
        put(f, "agent.d/zzz-bad.conf", "modules: { web: { settings: { list: { x = 1; }; }; }; };\n");
        c = load_ok(f);
        assert_string_equal(json_object_to_json_string_ext(config_module(c, "web")->settings,
                                                            JSON_C_TO_STRING_PLAIN),
                            "{\"a\":1,\"b\":{\"c\":2,\"d\":3},\"list\":{\"x\":1}}");
        config_free(c);
}

static void test_dropin_dir(void **state) {
        fixture *f = *state;
        struct agent_config *c = NULL;
        jb_err err = JB_ERR_INIT;
        char *other = path_of(f, "other.d"), *p;

        put(f, "jabali-agent.conf", NOGROUP "\n");
        put(f, "agent.d/10.conf", "log: { level = \"err\"; };\n");
        assert_int_equal(mkdir(other, 0755), 0);
        p = path_of(f, "other.d/10.conf");
        write_bytes(p, "log: { level = \"notice\"; };\n", strlen("log: { level = \"notice\"; };\n"));
        free(p);

        /* NULL: agent.d next to the main file. */
        c = load_ok(f);
        assert_int_equal(c->log_level, LOG_ERR);
        config_free(c);

        /* Explicit, with and without a trailing slash. */
        assert_int_equal(config_load(f->main, other, &c, &err), 0);
        assert_int_equal(c->log_level, LOG_NOTICE);
        config_free(c);
        p = path_of(f, "other.d/");
        assert_int_equal(config_load(f->main, p, &c, &err), 0);
        assert_int_equal(c->log_level, LOG_NOTICE);
        config_free(c);
        free(p);

        /* A missing directory is fine. */
        p = path_of(f, "missing.d");
        assert_int_equal(config_load(f->main, p, &c, &err), 0);
        assert_int_equal(c->log_level, LOG_INFO);
        config_free(c);
        free(p);

        /* One that is not a directory is not. */
        c = NULL;
        p = path_of(f, "jabali-agent.conf");
        assert_int_equal(config_load(f->main, p, &c, &err), -1);
        assert_null(c);
        assert_string_equal(err.code, "CONFIG_INVALID");
        assert_true(strstr(err.msg, "cannot open the drop-in directory") != NULL);
        free(p);

        /* A *.conf that is a directory is an error too. */
        p = path_of(f, "agent.d/sub.conf");
        assert_int_equal(mkdir(p, 0755), 0);
        free(p);
        expect_error(f, "agent.d/sub.conf", 0, "not a regular file");
        free(other);
}

/* --------------------------------------------------------------- lexer */

static void test_int_wrap(void **state) {
        fixture *f = *state;
        struct agent_config *c;
        const struct module_conf *m;

        main_error(f, NOGROUP "\n# a comment\nlimits: {\n  max_frame = 10000000000;\n};\n", 4,
                   "integer 10000000000 does not fit 32 bits; write it with an L suffix (10000000000L)");
        main_error(f, NOGROUP "modules: { m: { settings: {\n a = 2147483648; }; }; };\n", 2,
                   "integer 2147483648 does not fit 32 bits; write it with an L suffix (2147483648L)");
        main_error(f, NOGROUP "modules: { m: { settings: {\n a = -2147483649; }; }; };\n", 2,
                   "integer -2147483649 does not fit 32 bits");
        main_error(f, NOGROUP "modules: { m: { settings: {\n a = +2147483648; }; }; };\n", 2,
                   "integer +2147483648 does not fit 32 bits");
        main_error(f, NOGROUP "modules: { m: { settings: {\n a = 99999999999999999999; }; }; };\n", 2,
                   "integer 99999999999999999999 does not fit 32 bits");
        main_error(f, NOGROUP "modules: { m: { settings: {\n a = 0x100000000; }; }; };\n", 2,
                   "integer 0x100000000 does not fit 32 bits; write it with an L suffix (0x100000000L)");
        main_error(f, NOGROUP "modules: { m: { settings: {\n a = 0x80000000; }; }; };\n", 2,
                   "integer 0x80000000 does not fit 32 bits");
        main_error(f, NOGROUP "modules: { m: { settings: {\n a = 0XFFFFFFFF; }; }; };\n", 2,
                   "integer 0XFFFFFFFF does not fit 32 bits");
        main_error(f, NOGROUP "modules: { m: { settings: {\n a = 99999999999999999999L; }; }; };\n", 2,
                   "integer 99999999999999999999 does not fit 64 bits");
        main_error(f, NOGROUP "modules: { m: { settings: {\n a = 9223372036854775808LL; }; }; };\n", 2,
                   "integer 9223372036854775808 does not fit 64 bits");
        main_error(f, NOGROUP "modules: { m: { settings: {\n a = -9223372036854775809L; }; }; };\n", 2,
                   "integer -9223372036854775809 does not fit 64 bits");
        main_error(f, NOGROUP "modules: { m: { settings: {\n a = 0x8000000000000000L; }; }; };\n", 2,
                   "integer 0x8000000000000000 does not fit 64 bits");
        /* A huge literal is quoted only in part. */
        main_error(f, NOGROUP "modules: { m: { settings: {\n a = 1234567890123456789012345678901234567890"
                   "1234567890123456789012345678901234567890; }; }; };\n", 2,
                   "integer 1234567890123456789012345678901234567890123456789012345678901234 does not");

        /* Line numbers count through strings and block comments. */
        main_error(f, NOGROUP "/* 1\n 2 */ modules: { m: { settings: { s = \"a\nb\\\"\nc\";\n"
                   " x = 4294967296; }; }; };\n", 5, "integer 4294967296 does not fit");

        c = load_main_ok(f, NOGROUP "modules: { m: { settings: {\n"
                            "  a = 10000000000L;\n"
                            "  b = 0x100000000L;\n"
                            "  c = 2147483647;\n"
                            "  d = -2147483648;\n"
                            "  e = 0x7fffffff;\n"
                            "  f = 9223372036854775807L;\n"
                            "  g = -9223372036854775808LL;\n"
                            "  h = 0x7FFFFFFFFFFFFFFFL;\n"
                            "  s = \"10000000000 0x100000000 \\\" 99999999999\";\n"
                            "  # 10000000000\n"
                            "  // 0xFFFFFFFF\n"
                            "  /* 99999999999\n 2147483648 */\n"
                            "  t = 1.0e10; u = 10000000000.5; v = .10000000000; w = 5e+00000000000010; x = -1e-99999999999;\n"
                            "  n-10000000000 = 1; *0x100000000 = 2;\n"
                            "}; }; };\n");
        m = config_module(c, "m");
        assert_non_null(m);
        assert_true(json_object_get_int64(json_object_object_get(m->settings, "a")) == 10000000000LL);
        assert_true(json_object_get_int64(json_object_object_get(m->settings, "b")) == 0x100000000LL);
        assert_true(json_object_get_int64(json_object_object_get(m->settings, "c")) == 2147483647LL);
        assert_true(json_object_get_int64(json_object_object_get(m->settings, "d")) == -2147483648LL);
        assert_true(json_object_get_int64(json_object_object_get(m->settings, "e")) == 0x7fffffffLL);
        assert_true(json_object_get_int64(json_object_object_get(m->settings, "f")) == INT64_MAX);
        assert_true(json_object_get_int64(json_object_object_get(m->settings, "g")) == INT64_MIN);
        assert_true(json_object_get_int64(json_object_object_get(m->settings, "h")) == INT64_MAX);
        assert_string_equal(json_object_get_string(json_object_object_get(m->settings, "s")),
                            "10000000000 0x100000000 \" 99999999999");
        assert_true(json_object_get_double(json_object_object_get(m->settings, "t")) == 1.0e10);
        assert_non_null(json_object_object_get(m->settings, "n-10000000000"));
        assert_non_null(json_object_object_get(m->settings, "*0x100000000"));
        config_free(c);
}

static void test_include(void **state) {
        fixture *f = *state;
        struct agent_config *c;
        char text[PATH_MAX + 128];

        /* libconfig 1.5 resolves @include against the working directory;
         * an absolute name avoids depending on it. */
        put(f, "inc.conf", "limits: { max_depth = 7; };\n");
        (void) snprintf(text, sizeof text, NOGROUP "\n@include \"%s/inc.conf\"\nlog: { level = \"err\"; };\n", f->dir);
        c = load_main_ok(f, text);
        assert_int_equal(c->max_depth, 7);
        assert_int_equal(c->log_level, LOG_ERR);
        config_free(c);

        /* The lexer follows it: a wrapped integer there is found, at its own line. */
        put(f, "inc.conf", "\n\nlimits: { max_frame = 4294967297; };\n");
        put(f, "jabali-agent.conf", text);
        expect_error(f, "inc.conf", 3, "integer 4294967297 does not fit 32 bits");

        /* Settings from it, and errors found later, carry its name. */
        put(f, "inc.conf", "\nlimits: { max_depth = 1000; };\n");
        expect_error(f, "inc.conf", 2, "limits.max_depth = 1000 is out of range");

        put(f, "inc.conf", "\nlimits: { max_depth = ; };\n");
        expect_error(f, "inc.conf", 2, "syntax error");

        /* A file that includes itself: libconfig stops at 10 levels, so does the lexer. */
        (void) snprintf(text, sizeof text, "\n@include \"%s/inc.conf\"\n", f->dir);
        put(f, "inc.conf", text);
        (void) snprintf(text, sizeof text, NOGROUP "\n@include \"%s/inc.conf\"\n", f->dir);
        put(f, "jabali-agent.conf", text);
        expect_error(f, "inc.conf", 2, "include file nesting too deep");

        /* A missing include is libconfig's error, at the @include line. */
        (void) snprintf(text, sizeof text, NOGROUP "\n@include \"%s/none.conf\"\n", f->dir);
        main_error(f, text, 2, "cannot open include file");

        /* libconfig 1.5 drops a backslash before anything but \\ and \" in an
         * include name ("in\c.conf" opens "inc.conf"); the lexer must open the
         * same file, or a wrapped integer there goes unseen (found by fuzzing). */
        put(f, "inc.conf", "\nlimits: { max_frame = 4294968320; };\n");
        (void) snprintf(text, sizeof text, NOGROUP "\n@include \"%s/in\\c.conf\"\n", f->dir);
        put(f, "jabali-agent.conf", text);
        expect_error(f, "inc.conf", 2, "integer 4294968320 does not fit 32 bits");
}

/* ------------------------------------------------------- file problems */

static void test_file_errors(void **state) {
        fixture *f = *state;
        struct agent_config *c = NULL;
        jb_err err = JB_ERR_INIT;
        char *big;
        size_t n = CONFIG_FILE_MAX + 1;

        /* Missing main file. */
        expect_error(f, "jabali-agent.conf", 0, "cannot open: No such file or directory");
        assert_int_equal(config_load(f->main, NULL, &c, NULL), -1);
        assert_null(c);

        /* Syntax errors, with libconfig's text and line. */
        main_error(f, NOGROUP "\nlimits: { max_frame = ; };\n", 2, "syntax error");
        main_error(f, NOGROUP "\nlimits: { max_frame 2048; };\n", 2, "syntax error");
        main_error(f, NOGROUP "\nlog: { level = \"info\";\n level = \"err\"; };\n", 3, "duplicate setting name");
        main_error(f, NOGROUP "\n\nlog: @include \"x\"\n", 3, "syntax error");
        main_error(f, NOGROUP "\n 1 = 2;\n", 2, "syntax error");

        /* A NUL byte would end libconfig's input early: refused, at its line. */
        put(f, "jabali-agent.conf", "");
        write_bytes(f->main, NOGROUP "\n\nlog: { level = \"info\0\"; };\n", sizeof(NOGROUP "\n\nlog: { level = \"info\0\"; };\n") - 1);
        expect_error(f, "jabali-agent.conf", 3, "NUL byte");

        /* Too large. */
        big = malloc(n);
        assert_non_null(big);
        memset(big, '\n', n);
        write_bytes(f->main, big, n);
        free(big);
        expect_error(f, "jabali-agent.conf", 0, "larger than 1 MiB");

        /* A directory. */
        assert_int_equal(unlink(f->main), 0);
        assert_int_equal(mkdir(f->main, 0755), 0);
        expect_error(f, "jabali-agent.conf", 0, "not a regular file");
        assert_int_equal(rmdir(f->main), 0);

        /* A FIFO must not block the loader. */
        assert_int_equal(mkfifo(f->main, 0600), 0);
        expect_error(f, "jabali-agent.conf", 0, "not a regular file");
        assert_int_equal(unlink(f->main), 0);

        /* The largest file still loads. */
        big = malloc(CONFIG_FILE_MAX);
        assert_non_null(big);
        memset(big, ' ', CONFIG_FILE_MAX);
        memcpy(big, NOGROUP, strlen(NOGROUP));
        write_bytes(f->main, big, CONFIG_FILE_MAX);
        free(big);
        c = load_ok(f);
        config_free(c);

        (void) err;
}

/* ----------------------------------------------------------- allow list */

static void test_allow(void **state) {
        fixture *f = *state;
        struct agent_config *c;
        char w[PATH_MAX + 64];

        c = load_main_ok(f, NOGROUP "allow: {\n users = [ \"root\",\n \"no-such-user-xyz\", \"root\" ];\n"
                            " groups = [ \"root\", \"no-such-group-xyz\" ]; };\n");
        assert_int_equal(c->n_allow_uids, 1);
        assert_int_equal(c->allow_uids[0], 0);
        assert_int_equal(c->n_allow_gids, 1);
        assert_int_equal(c->allow_gids[0], 0);
        assert_int_equal(c->n_warnings, 2);
        (void) snprintf(w, sizeof w, "%s:3: allow.users: unknown user 'no-such-user-xyz'; skipped", f->main);
        assert_string_equal(c->warnings[0], w);
        (void) snprintf(w, sizeof w, "%s:4: allow.groups: unknown group 'no-such-group-xyz'; skipped", f->main);
        assert_string_equal(c->warnings[1], w);
        config_free(c);

        /* Groups alone are enough. */
        c = load_main_ok(f, NOGROUP "allow: { users = [ ]; groups = [ \"root\" ]; };\n");
        assert_int_equal(c->n_allow_uids, 0);
        assert_int_equal(c->n_allow_gids, 1);
        assert_int_equal(c->n_warnings, 0);
        config_free(c);

        main_error(f, NOGROUP "allow: {\n users = [ \"no-such-user-xyz\" ]; groups = [ \"no-such-group-xyz\" ]; };\n", 2,
                   "allow list is empty: nobody could call the agent");
        main_error(f, NOGROUP "allow: {\n users = [ ]; groups = [ ]; };\n", 2, "allow list is empty");
        main_error(f, NOGROUP "allow: {\n users = [ \"\" ]; groups = [ ]; };\n", 2, "allow list is empty");
}

/* ---------------------------------------------------- the shipped files */

static char *src_path(const char *rel) {
        const char *top = getenv("JABALI_SRCDIR");
        char *p = NULL;

        assert_true(asprintf(&p, "%s/%s", top && *top ? top : TOP_SRCDIR, rel) > 0);
        return p;
}

static char *slurp(const char *rel) {
        char *path = src_path(rel);
        FILE *fp = fopen(path, "re");
        char *buf;
        long len;

        if (!fp)
                print_error("cannot open %s: %s\n", path, strerror(errno));
        assert_non_null(fp);
        assert_int_equal(fseek(fp, 0, SEEK_END), 0);
        len = ftell(fp);
        assert_true(len >= 0);
        rewind(fp);
        buf = calloc(1, (size_t) len + 1);
        assert_non_null(buf);
        assert_int_equal(fread(buf, 1, (size_t) len, fp), (size_t) len);
        (void) fclose(fp);
        free(path);
        return buf;
}

/* Replaces every `from` in *s with `to`. */
static void substitute(char **s, const char *from, const char *to) {
        char *p;

        while ((p = strstr(*s, from))) {
                char *n = NULL;

                assert_true(asprintf(&n, "%.*s%s%s", (int) (p - *s), *s, to, p + strlen(from)) > 0);
                free(*s);
                *s = n;
        }
}

static void test_shipped_conf(void **state) {
        fixture *f = *state;
        struct agent_config *c = NULL;
        jb_err err = JB_ERR_INIT;
        char *text = slurp("conf/jabali-agent.conf");
        char *d;

        /* Loaded as is, with a drop-in that switches the socket group off
         * where the group does not exist: the file states every default. */
        put(f, "jabali-agent.conf", text);
        put(f, "agent.d/zz-test.conf", jabali_sockets_exists() ? "# nothing\n" : "socket: { group = \"\"; };\n");
        free(text);
        c = load_ok(f);
        if (!jabali_sockets_exists()) {
                assert_null(c->socket_group);
                check_defaults(c);
        } else
                assert_string_equal(c->socket_group, "jabali-sockets");
        assert_true(c->n_allow_uids >= 1);
        assert_int_equal(c->allow_uids[0], 0);
        config_free(c);

        /* The real path too (no drop-in directory next to it in a tree). */
        if (jabali_sockets_exists()) {
                char *p = src_path("conf/jabali-agent.conf");

                d = path_of(f, "none.d");
                assert_int_equal(config_load(p, d, &c, &err), 0);
                config_free(c);
                free(d);
                free(p);
        }
}

static void test_dev_conf(void **state) {
        fixture *f = *state;
        struct agent_config *c;
        char *text = slurp("conf/dev.conf"), *want;

        substitute(&text, "@SANDBOX@", f->dir);
        substitute(&text, "@MODDIR@", "/opt/jabali/modules");
        assert_null(strchr(text, '@'));
        c = load_main_ok(f, text);
        free(text);

        assert_true(asprintf(&want, "%s/run/jabali-agent.sock", f->dir) > 0);
        assert_string_equal(c->socket_path, want);
        free(want);
        assert_true(asprintf(&want, "%s/log/audit.jsonl", f->dir) > 0);
        assert_string_equal(c->audit_file, want);
        free(want);
        assert_string_equal(c->module_dir, "/opt/jabali/modules");
        assert_true(c->allow_insecure_modules);
        assert_int_equal(c->apparmor, APPARMOR_OFF);
        assert_null(c->socket_group);
        assert_int_equal(c->n_allow_uids, 1);
        assert_int_equal(c->allow_uids[0], 0);
        assert_int_equal(c->n_warnings, 0);
        config_free(c);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
                cmocka_unit_test_setup_teardown(test_default_socket_group, setup, teardown),
                cmocka_unit_test_setup_teardown(test_socket, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bounds, setup, teardown),
                cmocka_unit_test_setup_teardown(test_cross_bounds, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unknown_keys, setup, teardown),
                cmocka_unit_test_setup_teardown(test_wrong_types, setup, teardown),
                cmocka_unit_test_setup_teardown(test_values, setup, teardown),
                cmocka_unit_test_setup_teardown(test_modules, setup, teardown),
                cmocka_unit_test_setup_teardown(test_settings_json, setup, teardown),
                cmocka_unit_test_setup_teardown(test_nesting_limit, setup, teardown),
                cmocka_unit_test_setup_teardown(test_dropins, setup, teardown),
                cmocka_unit_test_setup_teardown(test_dropin_dir, setup, teardown),
                cmocka_unit_test_setup_teardown(test_int_wrap, setup, teardown),
                cmocka_unit_test_setup_teardown(test_include, setup, teardown),
                cmocka_unit_test_setup_teardown(test_file_errors, setup, teardown),
                cmocka_unit_test_setup_teardown(test_allow, setup, teardown),
                cmocka_unit_test_setup_teardown(test_shipped_conf, setup, teardown),
                cmocka_unit_test_setup_teardown(test_dev_conf, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
