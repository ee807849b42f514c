/* SPDX-License-Identifier: GPL-3.0-or-later */
/* libFuzzer harness for the template renderer. The first byte chooses the
 * escaping context (modulo 5, in enum order: nginx, ini, json, shellword,
 * text), the second what the rest of the input is (modulo 3):
 *   0  the template text, rendered against fixed data holding every kind
 *      of value (strings that each context refuses, numbers, null,
 *      nested objects and arrays);
 *   1  one string value (any bytes, NUL included), rendered through fixed
 *      templates; what comes out is checked against the context's rule as
 *      written in <jabali/template.h>, and a refusal must be one the rule
 *      calls for;
 *   2  the data, as JSON read by json-c, rendered by a fixed template that
 *      uses sections, inverted sections, dotted names, {{.}}, comments and
 *      nested loops.
 * Always: the result is 0 with a NUL-terminated buffer as long as said, or
 * -1 with no buffer and INVALID_PARAMS/INTERNAL whose message names the
 * template line. */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1  /* memmem */
#endif

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include <jabali/template.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fixed_data[] =
        "{\"name\":\"example.com\",\"port\":8080,\"ssl\":true,\"off\":false,\"zero\":0,\"empty\":\"\","
        "\"nul\":null,\"pi\":3.5,\"big\":18446744073709551615,\"neg\":-42,\"fzero\":0.0,"
        "\"aliases\":[\"a.example\",\"b.example\"],\"nums\":[1,2,3],\"arr\":[],\"obj\":{},"
        "\"nested\":{\"a\":{\"b\":{\"c\":\"deep\"}},\"list\":[{\"x\":\"1\"},{\"x\":\"2\",\"y\":true}]},"
        "\"matrix\":[[1,2],[3,4]],\"bad\":\"semi;colon\",\"space\":\"two words\",\"quote\":\"say \\\"hi\\\"\","
        "\"dollar\":\"${HOME}\",\"nl\":\"line\\nbreak\",\"utf8\":\"h\\u00e9\",\"ctrl\":\"\\u0001\","
        "\"blank\":\" lead\",\"tab\":\"\\t\",\"back\":\"a\\\\b\",\"zwnul\":\"a\\u0000b\",\"dash-name_1\":\"ok\"}";

static const char rich_template[] =
        "{{! a comment\n   over lines }}\n"
        "server {{name}};\n"
        "  {{#list}}\n"
        "item {{.}} {{ x }} {{name}}\n"
        "  {{/list}}\n"
        "{{^off}}off is false{{/off}}{{#off}}off is {{off}}{{/off}}\n"
        "{{#obj}}{{a.b.c}}{{/obj}}\n"
        "{{#nested}}{{#inner}}[{{v}}]{{/inner}}{{/nested}}\r\n"
        "{{#l}}{{#l}}{{#l}}{{.}}{{/l}}{{/l}}{{/l}}\n"
        "end {{n}}\n";

/* ---- the contexts' rules, from the header ------------------------------- */

/* Length of one well-formed UTF-8 character at s, or 0. */
static size_t utf8_char(const unsigned char *s, size_t n) {
        uint32_t cp, min;
        size_t k;

        if (s[0] < 0x80)
                return 1;
        if ((s[0] & 0xE0) == 0xC0)
                k = 2, cp = s[0] & 0x1F, min = 0x80;
        else if ((s[0] & 0xF0) == 0xE0)
                k = 3, cp = s[0] & 0x0F, min = 0x800;
        else if ((s[0] & 0xF8) == 0xF0)
                k = 4, cp = s[0] & 0x07, min = 0x10000;
        else
                return 0;
        if (n < k)
                return 0;
        for (size_t i = 1; i < k; i++) {
                if ((s[i] & 0xC0) != 0x80)
                        return 0;
                cp = cp << 6 | (s[i] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                return 0;
        return k;
}

static bool has_control(const unsigned char *s, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (s[i] < 0x20 || s[i] == 0x7F)
                        return true;
        return false;
}

static bool has_any(const unsigned char *s, size_t n, const char *set) {
        for (size_t i = 0; i < n; i++)
                if (s[i] && strchr(set, s[i]))
                        return true;
        return false;
}

static bool acceptable(jb_tpl_context ctx, const unsigned char *s, size_t n) {
        for (size_t i = 0; i < n; ) {
                size_t k = utf8_char(s + i, n - i);

                if (k == 0)
                        return false;
                i += k;
        }
        switch (ctx) {
        case JB_TPL_NGINX:
                return n > 0 && !has_control(s, n) && !has_any(s, n, " ;{}\"'\\$#`");
        case JB_TPL_INI:
                if (n == 0)
                        return true;
                return !has_control(s, n) && !has_any(s, n, "\";") && !memmem(s, n, "${", 2) &&
                       s[0] != ' ' && s[n - 1] != ' ';
        case JB_TPL_JSON:
                return true;
        case JB_TPL_SHELLWORD:
                if (n == 0)
                        return false;
                for (size_t i = 0; i < n; i++)
                        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
                              (s[i] >= '0' && s[i] <= '9') || (s[i] && strchr("@%+=:,./_-", s[i]))))
                                return false;
                return true;
        case JB_TPL_TEXT:
        default:
                return !has_control(s, n);
        }
}

/* ---- the run ------------------------------------------------------------ */

/* Renders and checks the general contract; returns the output or NULL. */
static char *render(const char *tpl, size_t tpl_len, json_object *d, jb_tpl_context ctx, size_t *len) {
        jb_err err = JB_ERR_INIT;
        char *out = (char *) 1;
        size_t n = (size_t) -1;
        int r = jb_template_render(tpl, tpl_len, d, ctx, &out, &n, &err);

        if (r == 0) {
                if (!out || err.code[0] || n > JB_TPL_OUTPUT_MAX || out[n] != '\0' || strlen(out) != n)
                        abort();
                *len = n;
                return out;
        }
        if (r != -1 || out)
                abort();
        if (strcmp(err.code, "INVALID_PARAMS") != 0 && strcmp(err.code, "INTERNAL") != 0)
                abort();
        if (strncmp(err.msg, "line ", 5) != 0)
                abort();
        return NULL;
}

static void fuzz_template(const char *tpl, size_t n, jb_tpl_context ctx) {
        static json_object *d;
        size_t len;

        if (!d && !(d = json_tokener_parse(fixed_data)))
                abort();
        free(render(tpl, n, d, ctx, &len));
        /* without data: a missing name, unless there is none */
        free(render(tpl, n, NULL, ctx, &len));
}

static void fuzz_value(const char *v, size_t n, jb_tpl_context ctx) {
        const unsigned char *u = (const unsigned char *) v;
        json_object *d = json_object_new_object(), *s = json_object_new_string_len(v, (int) n);
        bool want = acceptable(ctx, u, n);
        size_t len;
        char *out;

        if (!d || !s || json_object_object_add(d, "v", s) < 0)
                abort();

        out = render("{{v}}", 5, d, ctx, &len);
        if (!out != !want)
                abort();
        if (out && ctx == JB_TPL_JSON) {
                /* the body of a JSON string that decodes to the value */
                json_tokener *tok = json_tokener_new();
                char *q = malloc(len + 3);
                json_object *back;

                if (!tok || !q)
                        abort();
                q[0] = '"';
                memcpy(q + 1, out, len);
                q[len + 1] = '"';
                q[len + 2] = '\0';
                json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
                back = json_tokener_parse_ex(tok, q, (int) len + 2);
                if (!back || !json_object_is_type(back, json_type_string) ||
                    json_object_get_string_len(back) != (int) n || memcmp(json_object_get_string(back), v, n) != 0 ||
                    has_control((const unsigned char *) out, len))
                        abort();
                json_object_put(back);
                json_tokener_free(tok);
                free(q);
        } else if (out && (len != n || memcmp(out, v, n) != 0))
                abort();
        free(out);

        /* a string section: once with the value as {{.}} unless empty */
        out = render("{{#v}}<{{.}}>{{/v}}", 19, d, ctx, &len);
        if (n == 0 ? !out || len != 0 : !out != !want)
                abort();
        if (out && n > 0 && ctx != JB_TPL_JSON && (len != n + 2 || memcmp(out + 1, v, n) != 0))
                abort();
        free(out);

        out = render("{{^v}}none{{/v}}", 16, d, ctx, &len);
        if (!out || len != (n == 0 ? 4 : 0))
                abort();
        free(out);
        json_object_put(d);
}

static void fuzz_data(const char *doc, size_t n, jb_tpl_context ctx) {
        json_tokener *tok = json_tokener_new_ex(32);
        json_object *d;
        size_t len;

        if (!tok)
                abort();
        d = json_tokener_parse_ex(tok, doc, (int) n);
        json_tokener_free(tok);
        free(render(rich_template, sizeof rich_template - 1, d, ctx, &len));
        json_object_put(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        jb_tpl_context ctx;
        const char *rest;
        size_t n;

        if (size < 2 || size > 65536)
                return 0;
        ctx = (jb_tpl_context) (data[0] % 5);
        rest = (const char *) data + 2;
        n = size - 2;
        switch (data[1] % 3) {
        case 0:
                fuzz_template(rest, n, ctx);
                break;
        case 1:
                fuzz_value(rest, n, ctx);
                break;
        default:
                fuzz_data(rest, n, ctx);
                break;
        }
        return 0;
}
