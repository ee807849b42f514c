/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Stamped files (see <jabali/stamp.h>). */

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include <jabali/stamp.h>

JB_EXPORT int jb_stamp_compose(const char *prefix, json_object *meta, const char *body, size_t body_len,
                               size_t max, char **ret, size_t *ret_len, jb_err *err) {
        const char *m = json_object_to_json_string_ext(meta, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        size_t plen = strlen(prefix), mlen = m ? strlen(m) : 0, n;
        char *out;

        *ret = NULL;
        if (!m || !json_object_is_type(meta, json_type_object))
                return jb_err_set(err, JB_E_INTERNAL, "the stamp must be a JSON object");
        /* Each part is bounded before the sum, so the sum cannot wrap. */
        if (plen > max || mlen > max || body_len > max || plen + mlen + 1 + body_len > max)
                return jb_err_set(err, JB_E_INVALID_PARAMS, "the file would be too large (more than %zu bytes)", max);
        n = plen + mlen + 1 + body_len;
        out = malloc(n + 1);
        if (!out)
                return jb_err_set(err, JB_E_INTERNAL, "out of memory");
        memcpy(out, prefix, plen);
        memcpy(out + plen, m, mlen);
        out[plen + mlen] = '\n';
        if (body_len)
                memcpy(out + plen + mlen + 1, body, body_len);
        out[n] = '\0';
        *ret = out;
        if (ret_len)
                *ret_len = n;
        return 0;
}

JB_EXPORT json_object *jb_stamp_parse(const char *prefix, const char *text, size_t len) {
        size_t plen = strlen(prefix), llen;
        const char *line, *nl;
        json_tokener *tok;
        json_object *o;

        if (!text || len < plen || memcmp(text, prefix, plen) != 0)
                return NULL;
        line = text + plen;
        nl = memchr(line, '\n', len - plen);
        if (!nl)
                return NULL;
        llen = (size_t) (nl - line);
        if (llen > INT_MAX)
                return NULL;
        tok = json_tokener_new();
        if (!tok)
                return NULL;
        o = json_tokener_parse_ex(tok, line, (int) llen);
        /* The whole rest of the line must be the object: no trailing text,
         * no second value, nothing cut short. */
        if (o && (json_tokener_get_error(tok) != json_tokener_success || !json_object_is_type(o, json_type_object) ||
                  json_tokener_get_parse_end(tok) != llen)) {
                json_object_put(o);
                o = NULL;
        }
        json_tokener_free(tok);
        return o;
}
