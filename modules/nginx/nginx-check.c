/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Asking nginx itself whether a configuration is good: the whole one, and
 * one vhost on its own in a throw-away configuration. */

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jabali/fs.h>
#include <jabali/spawn.h>

#include "nginx-internal.h"

/* Runs argv within what is left of the request's deadline; a failure of
 * the program is CONFIG_INVALID with its first lines of stderr. */
static int run_test(jb_call *call, const char *const *argv, const char *what, jb_err *err) {
        jb_spawn_opts o = { .argv = argv, .timeout_ms = jb_call_remaining_ms(call) };
        jb_spawn_result res;
        int r;

        if (o.timeout_ms == 0)
                return jb_err_set(err, JB_E_TIMEOUT, "no time left to test the configuration");
        if (jb_spawn_run(&o, &res, err) < 0)
                return -1;
        if (jb_spawn_succeeded(&res))
                r = 0;
        else if (res.timed_out) {
                jb_spawn_result_to_err(&res, err);
                r = jb_err_set(err, JB_E_TIMEOUT, "%s: %s", what, err->msg);
        } else {
                jb_spawn_result_to_err(&res, err);
                r = jb_err_set(err, JB_E_CONFIG_INVALID, "%s: %s", what, err->msg);
        }
        jb_spawn_result_free(&res);
        return r;
}

int ngx_test_full(jb_call *call, const ngx_cfg *c, jb_err *err) {
        const char *argv[8];
        size_t n = 0;

        argv[n++] = c->nginx;
        argv[n++] = "-t";
        argv[n++] = "-q";
        if (c->prefix) {
                argv[n++] = "-p";
                argv[n++] = c->prefix;
        }
        argv[n++] = "-c";
        argv[n++] = c->conf;
        argv[n] = NULL;
        return run_test(call, argv, "nginx -t", err);
}

/* The configuration around the candidate: no listen socket is bound by
 * -t, every path nginx writes at -t is beneath the throw-away prefix. */
static const char check_conf[] =
        "pid nginx.pid;\n"
        "error_log stderr;\n"
        "events {}\n"
        "http {\n"
        "        client_body_temp_path tmp/body;\n"
        "        proxy_temp_path tmp/proxy;\n"
        "        fastcgi_temp_path tmp/fastcgi;\n"
        "        uwsgi_temp_path tmp/uwsgi;\n"
        "        scgi_temp_path tmp/scgi;\n"
        "        server_names_hash_bucket_size 512;\n"
        "        include rl.conf;\n"
        "        include vhost.conf;\n"
        "}\n";

int ngx_test_isolated(jb_call *call, const ngx_cfg *c, const char *text, size_t len,
                      const char *ratelimits, size_t rl_len, jb_err *err) {
        char dir[PATH_MAX], conf[PATH_MAX + 16], prefix[PATH_MAX + 2];
        int state_fd = -1, fd = -1, r = -1;
        const char *base;

        if (snprintf(dir, sizeof dir, "%s/check-XXXXXX", c->state_dir) >= (int) sizeof dir)
                return jb_err_set(err, JB_E_INTERNAL, "state_dir is too long");
        state_fd = jb_fs_open_root(c->state_dir, err);
        if (state_fd < 0)
                return -1;
        /* state_dir is trusted (settings); mkdtemp makes a fresh 0700 dir. */
        if (!mkdtemp(dir)) {
                close(state_fd);
                return jb_err_set(err, JB_E_INTERNAL, "%s: cannot make a check directory: %m", c->state_dir);
        }
        base = strrchr(dir, '/') + 1;
        fd = jb_fs_open_root(dir, err);
        if (fd < 0)
                goto out;
        if (jb_fs_mkdir_p(fd, "tmp", 0700, (uid_t) -1, (gid_t) -1, err) < 0 ||
            jb_fs_write_atomic(fd, "nginx.conf", check_conf, sizeof check_conf - 1, 0600, (uid_t) -1,
                               (gid_t) -1, err) < 0 ||
            jb_fs_write_atomic(fd, "rl.conf", ratelimits, ratelimits ? rl_len : 0, 0600, (uid_t) -1,
                               (gid_t) -1, err) < 0 ||
            jb_fs_write_atomic(fd, "vhost.conf", text, text ? len : 0, 0600, (uid_t) -1, (gid_t) -1,
                               err) < 0)
                goto out;
        snprintf(prefix, sizeof prefix, "%s/", dir);
        snprintf(conf, sizeof conf, "%s/nginx.conf", dir);
        {
                const char *const argv[] = { c->nginx, "-t", "-q", "-p", prefix, "-c", conf, NULL };
                r = run_test(call, argv, "the vhost on its own", err);
        }
out:
        if (fd >= 0)
                close(fd);
        (void) jb_fs_remove_tree(state_fd, base, NULL);
        close(state_fd);
        return r;
}
