/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The test module: built for the test suite, never installed.
 *
 * Its actions give the isolation, fault and load tests something to
 * drive: an echo (worker round trip), a sleep (deadlines, parallelism), a
 * crash (containment), and an atomic write beneath a sandbox root (the
 * converger primitive every real module uses). */

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jabali/fs.h>
#include <jabali/module.h>
#include <jabali/reload.h>

/* Built twice: as "test" and as "test2", so that tests can drive two
 * modules (two pools, two hats) at once. */
#ifndef TEST_NAME
#define TEST_NAME "test"
#endif

static int do_echo(jb_call *call) {
        json_object *result = jb_call_result(call);
        json_object *params = jb_call_params(call);

        json_object_object_foreach(params, key, val) {
                /* Secrets go in but never come back out. */
                if (strcmp(key, "secret") == 0)
                        continue;
                json_object_object_add(result, key, json_object_get(val));
        }
        json_object_object_add(result, "pid", json_object_new_int64(getpid()));
        return 0;
}

static int64_t mono_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int do_sleep(jb_call *call) {
        int64_t ms = jb_param_int(call, "ms", 0);
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
        int64_t start = mono_usec();

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
        /* When it ran, on the shared monotonic clock: tests check overlap. */
        json_object_object_add(jb_call_result(call), "started_us", json_object_new_int64(start));
        json_object_object_add(jb_call_result(call), "ended_us", json_object_new_int64(mono_usec()));
        json_object_object_add(jb_call_result(call), "slept_ms", json_object_new_int64(ms));
        json_object_object_add(jb_call_result(call), "pid", json_object_new_int64(getpid()));
        return 0;
}

static int do_crash(jb_call *call) {
        const char *how = jb_param_str(call, "how", "abort");

        if (strcmp(how, "exit") == 0)
                _exit(7);
        if (strcmp(how, "segv") == 0)
                raise(SIGSEGV);
        if (strcmp(how, "fail") == 0)
                return jb_call_fail_code(call, "TEST_FAILED", "failed on purpose");
        if (strcmp(how, "bignum") == 0) {
                /* json-c prints 2^63 as an unsigned integer; the master's
                 * strict check refuses it, as it did restic's ETA once. */
                json_object_object_add(jb_call_result(call), "n", json_object_new_uint64(UINT64_C(1) << 63));
                return 0;
        }
        abort();
}

static int do_write(jb_call *call) {
        const char *root = jb_setting_str(call, "root", NULL);
        const char *path = jb_param_str(call, "path", NULL);
        const char *content = jb_param_str(call, "content", "");
        jb_err err = JB_ERR_INIT;
        int fd, r;

        if (!root)
                return jb_call_fail(call, JB_E_MODULE_UNAVAILABLE, "settings.root is not configured");
        fd = jb_fs_open_root(root, &err);
        if (fd < 0)
                return jb_call_fail_err(call, &err);
        if (jb_call_dry_run(call)) {
                char *old = NULL;
                size_t len = 0;
                bool same = jb_fs_read(fd, path, 1 << 20, &old, &len, NULL) == 0 && len == strlen(content) &&
                            memcmp(old, content, len) == 0;
                free(old);
                close(fd);
                jb_call_set_changed(call, !same);
                return 0;
        }
        r = jb_fs_write_atomic(fd, path, content, strlen(content), 0644, (uid_t) -1, (gid_t) -1, &err);
        close(fd);
        if (r < 0)
                return jb_call_fail_err(call, &err);
        jb_call_set_changed(call, r > 0);
        return 0;
}

static int do_reload(jb_call *call) {
        unsigned flags = (jb_param_bool(call, "now", false) ? JB_RELOAD_NOW : 0) |
                         (jb_param_bool(call, "wait", false) ? JB_RELOAD_WAIT : 0);
        jb_err err = JB_ERR_INIT;

        if (jb_reload_unit(call, jb_param_str(call, "unit", ""), flags, &err) < 0)
                return jb_call_fail_err(call, &err);
        return 0;
}

/* A worker killed inside test.write leaves its temporary file behind; the
 * next worker clears what no live writer holds. */
static int worker_init(json_object *settings, jb_err *err) {
        json_object *v;
        int fd;

        if (!json_object_object_get_ex(settings, "root", &v))
                return 0;
        (void) err;
        fd = jb_fs_open_root(json_object_get_string(v), NULL);
        if (fd < 0)
                return 0;       /* test.write reports a missing root itself */
        (void) jb_fs_clean_temps(fd, ".", NULL);
        close(fd);
        return 0;
}

static const char *const crash_modes[] = { "abort", "segv", "exit", "fail", "bignum", NULL };

static const jb_param echo_item[] = { JB_P_STRING("item", JB_CHECK_NONE, 0, "an element"), JB_P_END };

static const jb_param echo_params[] = {
        JB_P_STRING("message", JB_CHECK_NONE, 0, "echoed back"),
        JB_P_INT("n", JB_CHECK_NONE, 0, -1000000, 1000000, "echoed back"),
        JB_P_BOOL("flag", 0, "echoed back"),
        JB_P_STRING("domain", JB_CHECK_DOMAIN, 0, "a domain, validated"),
        JB_P_ARRAY("list", echo_item, 0, 0, 16, "echoed back"),
        JB_P_STRING("secret", JB_CHECK_NONE, JB_SECRET, "accepted, never echoed, redacted in the audit"),
        JB_P_END
};

static const jb_param sleep_params[] = {
        JB_P_INT("ms", JB_CHECK_NONE, JB_REQUIRED, 0, 600000, "how long to sleep"),
        JB_P_END
};

static const jb_param locked_sleep_params[] = {
        JB_P_INT("ms", JB_CHECK_NONE, JB_REQUIRED, 0, 600000, "how long to sleep"),
        JB_P_STRLEN("key", JB_CHECK_TOKEN, JB_REQUIRED, 1, 64, "lock key: same-key sleeps never overlap"),
        JB_P_END
};

static const jb_param crash_params[] = {
        JB_P_ENUM("how", crash_modes, 0,
                  "abort (default), segv, exit, fail (an error answer, no crash) or bignum (an answer the master "
                  "refuses)"),
        JB_P_END
};

static const jb_param write_params[] = {
        JB_P_STRLEN("path", JB_CHECK_REL_PATH, JB_REQUIRED, 1, 255, "file beneath settings.root"),
        JB_P_STRLEN("content", JB_CHECK_MULTILINE, JB_REQUIRED, 0, 65536, "the file's new content"),
        JB_P_END
};

static const jb_param reload_params[] = {
        JB_P_STRLEN("unit", JB_CHECK_NONE, JB_REQUIRED, 1, 255, "unit to reload (checked by the SDK and the master)"),
        JB_P_BOOL("now", 0, "skip the coalescing window"),
        JB_P_BOOL("wait", 0, "return when the reload is done"),
        JB_P_END
};

static const jb_param settings[] = {
        JB_P_STRLEN("root", JB_CHECK_NONE, 0, 1, 4096, "sandbox root for test.write (absolute)"),
        JB_P_END
};

static const char *const crash_errors[] = { "TEST_FAILED", NULL };

static const jb_action actions[] = {
        { .name = TEST_NAME ".crash", .handler = do_crash, .params = crash_params,
          .summary = "die in the worker (or fail cleanly with how=fail)", .errors = crash_errors },
        { .name = TEST_NAME ".echo", .handler = do_echo, .params = echo_params,
          .summary = "answer with the params: a worker round trip" },
        { .name = TEST_NAME ".reload", .handler = do_reload, .params = reload_params,
          .summary = "ask the master for a coalesced reload" },
        { .name = TEST_NAME ".sleep", .handler = do_sleep, .params = sleep_params,
          .summary = "sleep in the worker", .timeout_ms = 5000, .max_timeout_ms = 600000 },
        { .name = TEST_NAME ".sleep_locked", .handler = do_sleep, .params = locked_sleep_params,
          .summary = "sleep holding the lock named by key", .timeout_ms = 5000, .max_timeout_ms = 600000,
          .lock = "key" },
        { .name = TEST_NAME ".write", .handler = do_write, .params = write_params,
          .summary = "write a file atomically beneath settings.root",
          .flags = JB_ACTION_MUTATING | JB_ACTION_DRY_RUN, .lock = "path" },
        { .name = NULL }
};

JABALI_MODULE(.name = TEST_NAME, .version = "1.0.0", .hat = TEST_NAME,
              .summary = "test actions for the agent's own test suite",
              .actions = actions, .settings = settings, .worker_init = worker_init);
