/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Templates: where they come from, rendering them, and the header line
 * that marks a file as the module's own. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jabali/fs.h>
#include <jabali/template.h>

#include "nginx-internal.h"

/* 1 and the text when dir/name exists, 0 when it does not, -1 on error. */
static int try_read(const char *dir, const char *name, char **ret, size_t *ret_len, jb_err *err) {
        int fd, r;

        fd = jb_fs_open_root(dir, err);
        if (fd < 0) {
                if (jb_code_from_name(err->code) != JB_E_NOT_FOUND)
                        return -1;
                jb_err_clear(err);
                return 0;
        }
        r = jb_fs_read(fd, name, NGX_FILE_MAX, ret, ret_len, err);
        close(fd);
        if (r < 0) {
                if (jb_code_from_name(err->code) != JB_E_NOT_FOUND)
                        return -1;
                jb_err_clear(err);
                return 0;
        }
        return 1;
}

int ngx_template_load(const ngx_cfg *c, const char *name, char **ret, size_t *ret_len, jb_err *err) {
        int r;

        if (c->template_override_dir) {
                r = try_read(c->template_override_dir, name, ret, ret_len, err);
                if (r != 0)
                        return r < 0 ? -1 : 0;
        }
        r = try_read(c->template_dir, name, ret, ret_len, err);
        if (r < 0)
                return -1;
        if (r == 0)
                return jb_err_set(err, JB_E_INTERNAL, "template %s not found in %s", name, c->template_dir);
        return 0;
}

int ngx_render(const ngx_cfg *c, const char *name, json_object *data, json_object *meta, char **ret,
               size_t *ret_len, jb_err *err) {
        char *tpl = NULL, *body = NULL, *out;
        size_t tpl_len = 0, body_len = 0, hlen, mlen;
        const char *m;
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
        m = json_object_to_json_string_ext(meta, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        mlen = strlen(m);
        hlen = strlen(NGX_HEADER);
        if (body_len > NGX_FILE_MAX || mlen > NGX_FILE_MAX) {
                free(body);
                return jb_err_set(err, JB_E_INVALID_PARAMS, "the rendered vhost is too large");
        }
        out = malloc(hlen + mlen + 1 + body_len + 1);
        if (!out) {
                free(body);
                return jb_err_set(err, JB_E_INTERNAL, "out of memory");
        }
        memcpy(out, NGX_HEADER, hlen);
        memcpy(out + hlen, m, mlen);
        out[hlen + mlen] = '\n';
        memcpy(out + hlen + mlen + 1, body, body_len);
        out[hlen + mlen + 1 + body_len] = '\0';
        free(body);
        *ret = out;
        *ret_len = hlen + mlen + 1 + body_len;
        return 0;
}

json_object *ngx_header_parse(const char *text, size_t len) {
        size_t hlen = strlen(NGX_HEADER);
        const char *nl;
        json_object *o;
        json_tokener *tok;

        if (len < hlen || memcmp(text, NGX_HEADER, hlen) != 0)
                return NULL;
        nl = memchr(text + hlen, '\n', len - hlen);
        if (!nl)
                return NULL;
        tok = json_tokener_new();
        if (!tok)
                return NULL;
        o = json_tokener_parse_ex(tok, text + hlen, (int) (nl - text - hlen));
        /* The whole rest of the line must be the object: no trailing text. */
        if (o && (json_tokener_get_error(tok) != json_tokener_success || !json_object_is_type(o, json_type_object) ||
                  json_tokener_get_parse_end(tok) != (size_t) (nl - text - hlen))) {
                json_object_put(o);
                o = NULL;
        }
        json_tokener_free(tok);
        return o;
}
