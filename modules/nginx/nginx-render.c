/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Templates: where they come from, rendering them, and the header line
 * that marks a file as the module's own. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jabali/fs.h>
#include <jabali/stamp.h>
#include <jabali/template.h>

#include "nginx-internal.h"

int ngx_template_load(const ngx_cfg *c, const char *name, char **ret, size_t *ret_len, jb_err *err) {
        return jb_template_load(c->template_override_dir, c->template_dir, name, NGX_FILE_MAX, ret, ret_len, err);
}

int ngx_render(const ngx_cfg *c, const char *name, json_object *data, json_object *meta, char **ret,
               size_t *ret_len, jb_err *err) {
        char *tpl = NULL, *body = NULL;
        size_t tpl_len = 0, body_len = 0;
        int r;

        *ret = NULL;
        if (ngx_template_load(c, name, &tpl, &tpl_len, err) < 0)
                return -1;
        r = jb_template_render(tpl, tpl_len, data, JB_TPL_NGINX, &body, &body_len, err);
        free(tpl);
        if (r < 0) {
                /* A value nginx must not see stays INVALID_PARAMS; anything
                 * else is the template's fault: the vhost is not applied. */
                if (jb_code_from_name(err->code) != JB_E_INVALID_PARAMS)
                        jb_err_set(err, JB_E_CONFIG_INVALID, "template %s: %s", name, err->msg);
                return -1;
        }
        r = jb_stamp_compose(NGX_HEADER, meta, body, body_len, NGX_FILE_MAX, ret, ret_len, err);
        free(body);
        return r;
}

json_object *ngx_header_parse(const char *text, size_t len) {
        return jb_stamp_parse(NGX_HEADER, text, len);
}
