/* SPDX-License-Identifier: GPL-3.0-or-later */
/* nginx.ratelimits.apply: the http-level limit_req_zone definitions, one
 * file the main configuration includes (Debian: every .conf file in conf.d). Vhosts
 * refer to a zone with their limit_req parameter. */

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jabali/fs.h>
#include <jabali/lock.h>
#include <jabali/reload.h>

#include "nginx-internal.h"

#define RATELIMITS_TEMPLATE "ratelimits.conf.tpl"

int ngx_ratelimits_current(const ngx_cfg *c, char **ret, size_t *ret_len, jb_err *err) {
        int fd, r;

        *ret = NULL;
        *ret_len = 0;
        fd = jb_fs_open_root(c->ratelimit_dir, err);
        if (fd < 0)
                goto missing;
        r = jb_fs_read(fd, NGX_RATELIMIT_FILE, NGX_FILE_MAX, ret, ret_len, err);
        close(fd);
        if (r == 0)
                return 0;
missing:
        if (jb_code_from_name(err->code) != JB_E_NOT_FOUND)
                return -1;
        jb_err_clear(err);
        return 0;
}

int ngx_ratelimits_apply(jb_call *call) {
        ngx_cfg c;
        jb_err err = JB_ERR_INIT;
        json_object *data = json_object_new_object(), *meta = json_object_new_object(), *zones;
        char *text = NULL, *old = NULL;
        size_t len = 0, old_len = 0;
        int fd = -1, lk = -1, r = -1;

        ngx_cfg_load(call, &c);
        if (!json_object_object_get_ex(jb_call_params(call), "zones", &zones))
                zones = NULL;
        json_object_object_add(data, "zones", zones ? json_object_get(zones) : json_object_new_array());
        json_object_object_add(meta, "zones", zones ? json_object_get(zones) : json_object_new_array());
        if (ngx_render(&c, RATELIMITS_TEMPLATE, data, meta, &text, &len, &err) < 0)
                goto out;
        fd = jb_fs_open_root(c.ratelimit_dir, &err);
        if (fd < 0)
                goto out;
        if (ngx_ratelimits_current(&c, &old, &old_len, &err) < 0)
                goto out;
        json_object_object_add(jb_call_result(call), "path", json_object_new_string(c.ratelimit_dir));
        if (old && old_len == len && memcmp(old, text, len) == 0) {
                r = 0;
                goto out;
        }
        if (jb_call_dry_run(call)) {
                json_object_object_add(jb_call_result(call), "config", json_object_new_string_len(text, (int) len));
                r = 1;
                goto out;
        }
        if (ngx_test_isolated(call, &c, NULL, 0, text, len, &err) < 0)
                goto out;
        lk = ngx_apply_lock(call, &c, &err);
        if (lk < 0)
                goto out;
        if (jb_fs_write_atomic(fd, NGX_RATELIMIT_FILE, text, len, 0644, 0, 0, &err) < 0 ||
            ngx_test_full(call, &c, &err) < 0) {
                /* A zone still used by a vhost cannot go: put the old back. */
                if (old)
                        (void) jb_fs_write_atomic(fd, NGX_RATELIMIT_FILE, old, old_len, 0644, 0, 0, NULL);
                else
                        (void) jb_fs_unlink(fd, NGX_RATELIMIT_FILE, NULL);
                goto out;
        }
        lk = jb_lock_release(lk);
        if (jb_reload_unit(call, c.unit, 0, &err) < 0)
                goto out;
        r = 1;
out:
        jb_lock_release(lk);
        if (fd >= 0)
                close(fd);
        free(text);
        free(old);
        json_object_put(data);
        json_object_put(meta);
        if (r < 0)
                return jb_call_fail_err(call, &err);
        jb_call_set_changed(call, r > 0);
        return 0;
}
