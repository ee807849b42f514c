/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The template renderer (see <jabali/template.h>).
 *
 * Two steps: the template is compiled into a flat array of nodes (text,
 * value, section) in which a section knows where its body ends; then the
 * array is walked with a stack of json-c contexts. Compiling first means a
 * syntax error is reported even when the data would skip that part. */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1   /* memmem */
#endif

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include <jabali/error.h>
#include <jabali/template.h>

#include "utf8.h"
#include "util.h"

#define NAME_MAX_LEN 128
/* Node visits per render: bounds the work of nested sections over arrays
 * that produce little or no output (the output bound does not catch them). */
#define STEPS_MAX (1u << 24)

typedef enum node_type {
        NODE_TEXT,
        NODE_VALUE,
        NODE_SECTION,
        NODE_INVERTED,
} node_type;

typedef struct node {
        node_type type;
        const char *s;          /* text, or the name; a slice of the template */
        size_t len;
        unsigned line;          /* where the text or tag starts */
        size_t end;             /* sections: index of the first node after the body */
} node;

typedef struct parser {
        const char *tpl;
        size_t len;
        size_t pos;
        unsigned line;          /* line of tpl[pos] */
        node *nodes;            /* owned */
        size_t n, cap;
        size_t open[JB_TPL_DEPTH_MAX];  /* indices of the open sections */
        size_t depth;
        jb_err *err;
} parser;

static int add_node(parser *p, node_type type, const char *s, size_t len, unsigned line) {
        if (p->n == p->cap) {
                size_t ncap = p->cap ? p->cap * 2 : 32;
                node *nn = reallocarray(p->nodes, ncap, sizeof *nn);
                if (!nn)
                        return jb_err_set(p->err, JB_E_INTERNAL, "out of memory");
                p->nodes = nn;
                p->cap = ncap;
        }
        p->nodes[p->n++] = (node) { .type = type, .s = s, .len = len, .line = line, .end = 0 };
        return 0;
}

static unsigned count_lines(const char *s, size_t n) {
        unsigned k = 0;
        for (const char *q = s; (q = memchr(q, '\n', n - (size_t) (q - s))); q++)
                k++;
        return k;
}

static bool is_blank(char c) {
        return c == ' ' || c == '\t';
}

static bool name_char(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

/* "." or parts of name_char joined by single dots. */
static bool name_valid(const char *s, size_t n) {
        if (n == 1 && s[0] == '.')
                return true;
        if (n == 0 || n > NAME_MAX_LEN || s[0] == '.' || s[n - 1] == '.')
                return false;
        for (size_t i = 0; i < n; i++) {
                if (s[i] == '.') {
                        if (s[i - 1] == '.')
                                return false;
                } else if (!name_char(s[i]))
                        return false;
        }
        return true;
}

static bool slice_eq(const char *a, size_t an, const char *b, size_t bn) {
        return an == bn && memcmp(a, b, an) == 0;
}

/* Parses one tag whose "{{" is at `open`; `text_start` is where the text
 * before it starts. Emits that text and the tag's node and moves p->pos. */
static int parse_tag(parser *p, size_t text_start, size_t open) {
        const char *tpl = p->tpl;
        unsigned line = p->line + count_lines(tpl + text_start, open - text_start);
        const char *close = memmem(tpl + open + 2, p->len - open - 2, "}}", 2);
        size_t text_end = open, next, in_start, in_end;
        char sigil;

        if (!close)
                return jb_err_set(p->err, JB_E_INTERNAL, "line %u: unclosed tag", line);
        in_start = open + 2;
        in_end = (size_t) (close - tpl);
        next = in_end + 2;
        sigil = in_start < in_end ? tpl[in_start] : '\0';

        if (sigil != '\0' && strchr("#^/!", sigil)) {
                /* A standalone line: only blanks around the tag. */
                size_t ls = open, le = next;
                while (ls > text_start && is_blank(tpl[ls - 1]))
                        ls--;
                while (le < p->len && is_blank(tpl[le]))
                        le++;
                bool at_line_start = ls == 0 || tpl[ls - 1] == '\n';
                bool at_line_end = le == p->len || tpl[le] == '\n' ||
                                   (tpl[le] == '\r' && le + 1 < p->len && tpl[le + 1] == '\n');
                /* ls >= text_start: a tag earlier on the line ends right
                 * before text_start, so tpl[ls - 1] is then not '\n'. */
                if (at_line_start && at_line_end) {
                        text_end = ls;
                        next = le == p->len ? le : le + (tpl[le] == '\r' ? 2 : 1);
                }
        }

        if (text_end > text_start && add_node(p, NODE_TEXT, tpl + text_start, text_end - text_start, p->line) < 0)
                return -1;

        if (sigil == '!') {
                /* Comments may span lines; nothing else may. */
        } else {
                const char *name;
                size_t nlen, s = in_start, e = in_end;

                if (memchr(tpl + in_start, '\n', in_end - in_start))
                        return jb_err_set(p->err, JB_E_INTERNAL, "line %u: tag spans lines", line);
                if (sigil == '{' || sigil == '&')
                        return jb_err_set(p->err, JB_E_INTERNAL, "line %u: unescaped output is not supported",
                                          line);
                if (sigil == '>' || sigil == '=')
                        return jb_err_set(p->err, JB_E_INTERNAL,
                                          "line %u: partials and delimiter changes are not supported", line);
                if (sigil == '#' || sigil == '^' || sigil == '/')
                        s++;
                while (s < e && is_blank(tpl[s]))
                        s++;
                while (e > s && is_blank(tpl[e - 1]))
                        e--;
                name = tpl + s;
                nlen = e - s;
                if (!name_valid(name, nlen))
                        return jb_err_set(p->err, JB_E_INTERNAL, "line %u: invalid name in tag {{%.*s}}", line,
                                          (int) (in_end - in_start > 64 ? 64 : in_end - in_start),
                                          tpl + in_start);

                if (sigil == '/') {
                        const node *sec;

                        if (p->depth == 0)
                                return jb_err_set(p->err, JB_E_INTERNAL, "line %u: {{/%.*s}} closes no section",
                                                  line, (int) nlen, name);
                        sec = &p->nodes[p->open[p->depth - 1]];
                        if (!slice_eq(sec->s, sec->len, name, nlen))
                                return jb_err_set(p->err, JB_E_INTERNAL,
                                                  "line %u: {{/%.*s}} does not match {{%c%.*s}} of line %u", line,
                                                  (int) nlen, name, sec->type == NODE_SECTION ? '#' : '^',
                                                  (int) sec->len, sec->s, sec->line);
                        p->nodes[p->open[--p->depth]].end = p->n;
                } else if (sigil == '#' || sigil == '^') {
                        if (p->depth == JB_TPL_DEPTH_MAX)
                                return jb_err_set(p->err, JB_E_INTERNAL, "line %u: sections nested deeper than %d",
                                                  line, JB_TPL_DEPTH_MAX);
                        p->open[p->depth++] = p->n;
                        if (add_node(p, sigil == '#' ? NODE_SECTION : NODE_INVERTED, name, nlen, line) < 0)
                                return -1;
                } else if (add_node(p, NODE_VALUE, name, nlen, line) < 0)
                        return -1;
        }

        p->line += count_lines(tpl + text_start, next - text_start);
        p->pos = next;
        return 0;
}

static int parse(parser *p) {
        while (p->pos < p->len) {
                const char *open = memmem(p->tpl + p->pos, p->len - p->pos, "{{", 2);

                if (!open) {
                        if (add_node(p, NODE_TEXT, p->tpl + p->pos, p->len - p->pos, p->line) < 0)
                                return -1;
                        break;
                }
                if (parse_tag(p, p->pos, (size_t) (open - p->tpl)) < 0)
                        return -1;
        }
        if (p->depth > 0) {
                const node *sec = &p->nodes[p->open[p->depth - 1]];
                return jb_err_set(p->err, JB_E_INTERNAL, "line %u: unclosed section {{%c%.*s}}", sec->line,
                                  sec->type == NODE_SECTION ? '#' : '^', (int) sec->len, sec->s);
        }
        return 0;
}

typedef struct renderer {
        const node *nodes;
        struct json_object *stack[JB_TPL_DEPTH_MAX + 1];
        size_t depth;
        jb_tpl_context ctx;
        char *buf;              /* owned */
        size_t len, cap;
        unsigned long steps;
        jb_err *err;
} renderer;

static int emit(renderer *r, const node *n, const char *s, size_t len) {
        /* An empty value (allowed in some contexts) may come before any
         * buffer exists: NULL + 0 and memcpy(NULL, ...) are undefined. */
        if (len == 0)
                return 0;
        if (len > JB_TPL_OUTPUT_MAX - r->len)
                return jb_err_set(r->err, JB_E_INVALID_PARAMS, "line %u: output exceeds %u bytes", n->line,
                                  JB_TPL_OUTPUT_MAX);
        if (r->len + len > r->cap) {
                size_t ncap = r->cap ? r->cap : 4096;
                while (ncap < r->len + len)
                        ncap *= 2;
                if (ncap > JB_TPL_OUTPUT_MAX)
                        ncap = JB_TPL_OUTPUT_MAX;
                char *nb = realloc(r->buf, ncap + 1);
                if (!nb)
                        return jb_err_set(r->err, JB_E_INTERNAL, "out of memory");
                r->buf = nb;
                r->cap = ncap;
        }
        memcpy(r->buf + r->len, s, len);
        r->len += len;
        return 0;
}

/* Finds a name (json null gives *ret == NULL). Missing: an error. */
static int lookup(renderer *r, const node *n, struct json_object **ret) {
        char part[NAME_MAX_LEN + 1];
        const char *s = n->s, *end = n->s + n->len;
        struct json_object *cur = NULL;
        bool found = false;

        if (n->len == 1 && s[0] == '.') {
                if (r->depth == 0)
                        return jb_err_set(r->err, JB_E_INTERNAL, "line %u: {{.}}: no current value", n->line);
                *ret = r->stack[r->depth - 1];
                return 0;
        }

        for (bool first = true; s < end; first = false) {
                const char *dot = memchr(s, '.', (size_t) (end - s));
                size_t pl = dot ? (size_t) (dot - s) : (size_t) (end - s);

                memcpy(part, s, pl);
                part[pl] = '\0';
                if (first) {
                        for (size_t d = r->depth; d-- > 0 && !found; ) {
                                /* Each probe is work: the step bound must
                                 * bound time, also for long dotted names
                                 * looked up through a deep stack. */
                                if (++r->steps > STEPS_MAX)
                                        return jb_err_set(r->err, JB_E_INVALID_PARAMS,
                                                          "line %u: rendering takes more than %u steps", n->line,
                                                          STEPS_MAX);
                                if (json_object_is_type(r->stack[d], json_type_object))
                                        found = json_object_object_get_ex(r->stack[d], part, &cur);
                        }
                } else if (!json_object_is_type(cur, json_type_object))
                        return jb_err_set(r->err, JB_E_INTERNAL, "line %u: {{%.*s}}: \"%.*s\" is not an object",
                                          n->line, (int) n->len, n->s, (int) (s - 1 - n->s), n->s);
                else
                        found = json_object_object_get_ex(cur, part, &cur);
                if (!found)
                        return jb_err_set(r->err, JB_E_INTERNAL, "line %u: {{%.*s}}: no such variable",
                                          n->line, (int) n->len, n->s);
                s = dot ? dot + 1 : end;
        }
        *ret = cur;
        return 0;
}

static bool truthy(struct json_object *v) {
        switch (json_object_get_type(v)) {
        case json_type_null:
                return false;
        case json_type_boolean:
                return json_object_get_boolean(v);
        case json_type_int:
                return json_object_get_int64(v) != 0;
        case json_type_double:
                return json_object_get_double(v) != 0.0;
        case json_type_string:
                return json_object_get_string_len(v) > 0;
        case json_type_array:
                return json_object_array_length(v) > 0;
        case json_type_object:
        default:
                return true;
        }
}

static const char *const context_names[] = {
        [JB_TPL_NGINX] = "nginx",
        [JB_TPL_INI] = "ini",
        [JB_TPL_JSON] = "json",
        [JB_TPL_SHELLWORD] = "shellword",
        [JB_TPL_TEXT] = "text",
};

static bool is_control(unsigned char c) {
        return c < 0x20 || c == 0x7f;
}

static bool nginx_ok(unsigned char c) {
        return !is_control(c) && c != ' ' && !strchr(";{}\"'\\$#`", c);
}

static bool ini_ok(unsigned char c) {
        return !is_control(c) && c != '"' && c != ';';
}

static bool shellword_ok(unsigned char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               (c != '\0' && strchr("@%+=:,./_-", c));
}

static int refuse(renderer *r, const node *n, const char *what) {
        return jb_err_set(r->err, JB_E_INVALID_PARAMS,
                          "line %u: {{%.*s}}: value %s which is not allowed in %s context", n->line, (int) n->len, n->s, what, context_names[r->ctx]);
}

static int refuse_char(renderer *r, const node *n, unsigned char c) {
        char what[48];

        if (c == ' ')
                snprintf(what, sizeof what, "contains a space");
        else if (c == '\t')
                snprintf(what, sizeof what, "contains a tab");
        else if (c == '\n')
                snprintf(what, sizeof what, "contains a newline");
        else if (c < 0x20 || c >= 0x7f)
                snprintf(what, sizeof what, "contains the byte 0x%02x", c);
        else
                snprintf(what, sizeof what, "contains '%c'", c);
        return refuse(r, n, what);
}

/* Checks (and for JSON escapes) a value and appends it. */
static int emit_value(renderer *r, const node *n, const char *s, size_t len) {
        const unsigned char *u = (const unsigned char *) s;

        for (size_t i = 0; i < len; ) {
                size_t l = utf8_seq_len(u + i, len - i);
                if (l == 0)
                        return refuse(r, n, "is not valid UTF-8,");
                if (l == 1) {
                        bool ok;
                        switch (r->ctx) {
                        case JB_TPL_NGINX:
                                ok = nginx_ok(u[i]);
                                break;
                        case JB_TPL_INI:
                                ok = ini_ok(u[i]);
                                break;
                        case JB_TPL_SHELLWORD:
                                ok = shellword_ok(u[i]);
                                break;
                        case JB_TPL_TEXT:
                                ok = !is_control(u[i]);
                                break;
                        case JB_TPL_JSON:
                        default:
                                ok = true;
                                break;
                        }
                        if (!ok)
                                return refuse_char(r, n, u[i]);
                } else if (r->ctx == JB_TPL_SHELLWORD)
                        return refuse(r, n, "contains a non-ASCII character");
                i += l;
        }

        if (len == 0 && (r->ctx == JB_TPL_NGINX || r->ctx == JB_TPL_SHELLWORD))
                return refuse(r, n, "is empty,");
        if (r->ctx == JB_TPL_INI && len > 0) {
                if (is_blank(s[0]))
                        return refuse(r, n, "starts with a blank,");
                if (is_blank(s[len - 1]))
                        return refuse(r, n, "ends with a blank,");
                if (memmem(s, len, "${", 2))
                        return refuse(r, n, "contains '${'");
        }
        if (r->ctx != JB_TPL_JSON)
                return emit(r, n, s, len);

        for (size_t i = 0; i < len; i++) {
                unsigned char c = u[i];
                char esc[8];
                const char *e = NULL;

                switch (c) {
                case '"':  e = "\\\""; break;
                case '\\': e = "\\\\"; break;
                case '\n': e = "\\n"; break;
                case '\r': e = "\\r"; break;
                case '\t': e = "\\t"; break;
                case '\b': e = "\\b"; break;
                case '\f': e = "\\f"; break;
                default:
                        if (is_control(c)) {
                                snprintf(esc, sizeof esc, "\\u%04x", c);
                                e = esc;
                        }
                }
                if (e ? emit(r, n, e, strlen(e)) < 0 : emit(r, n, s + i, 1) < 0)
                        return -1;
        }
        return 0;
}

static int render_value(renderer *r, const node *n) {
        struct json_object *v;
        char num[32];

        if (lookup(r, n, &v) < 0)
                return -1;
        switch (json_object_get_type(v)) {
        case json_type_string:
                return emit_value(r, n, json_object_get_string(v), (size_t) json_object_get_string_len(v));
        case json_type_boolean:
                return emit_value(r, n, json_object_get_boolean(v) ? "true" : "false",
                                  json_object_get_boolean(v) ? 4 : 5);
        case json_type_int: {
                int64_t i = json_object_get_int64(v);
                uint64_t u = json_object_get_uint64(v);
                /* get_int64 clamps integers above INT64_MAX. */
                if (i == INT64_MAX && u != (uint64_t) INT64_MAX)
                        snprintf(num, sizeof num, "%" PRIu64, u);
                else
                        snprintf(num, sizeof num, "%" PRId64, i);
                return emit_value(r, n, num, strlen(num));
        }
        case json_type_null:
                return jb_err_set(r->err, JB_E_INTERNAL, "line %u: {{%.*s}}: value is null",
                                  n->line, (int) n->len, n->s);
        case json_type_double:
                return jb_err_set(r->err, JB_E_INTERNAL, "line %u: {{%.*s}}: value is a fractional number",
                                  n->line, (int) n->len, n->s);
        case json_type_object:
        case json_type_array:
        default:
                return jb_err_set(r->err, JB_E_INTERNAL, "line %u: {{%.*s}}: value is an %s, not a string",
                                  n->line, (int) n->len, n->s,
                                  json_object_is_type(v, json_type_array) ? "array" : "object");
        }
}

static int render_range(renderer *r, size_t from, size_t to);

static int render_body(renderer *r, size_t i, struct json_object *ctx) {
        int k;

        /* The parser bounded the nesting: the stack cannot overflow. */
        r->stack[r->depth++] = ctx;
        k = render_range(r, i + 1, r->nodes[i].end);
        r->depth--;
        return k;
}

static int render_section(renderer *r, size_t i) {
        const node *n = &r->nodes[i];
        struct json_object *v;

        if (lookup(r, n, &v) < 0)
                return -1;
        if (n->type == NODE_INVERTED)
                return truthy(v) ? 0 : render_range(r, i + 1, n->end);
        if (!truthy(v))
                return 0;
        if (!json_object_is_type(v, json_type_array))
                return render_body(r, i, v);

        size_t len = json_object_array_length(v);
        for (size_t k = 0; k < len; k++)
                if (render_body(r, i, json_object_array_get_idx(v, k)) < 0)
                        return -1;
        return 0;
}

static int render_range(renderer *r, size_t from, size_t to) {
        for (size_t i = from; i < to; ) {
                const node *n = &r->nodes[i];

                if (++r->steps > STEPS_MAX)
                        return jb_err_set(r->err, JB_E_INVALID_PARAMS,
                                          "line %u: rendering takes more than %u steps", n->line, STEPS_MAX);
                switch (n->type) {
                case NODE_TEXT:
                        if (emit(r, n, n->s, n->len) < 0)
                                return -1;
                        i++;
                        break;
                case NODE_VALUE:
                        if (render_value(r, n) < 0)
                                return -1;
                        i++;
                        break;
                case NODE_SECTION:
                case NODE_INVERTED:
                default:
                        if (render_section(r, i) < 0)
                                return -1;
                        i = n->end;
                        break;
                }
        }
        return 0;
}

JB_EXPORT int jb_template_render(const char *tpl, size_t tpl_len, struct json_object *data, jb_tpl_context ctx,
                       char **ret, size_t *ret_len, jb_err *err) {
        parser p = { .tpl = tpl, .len = tpl_len, .line = 1, .err = err };
        renderer r = { .ctx = ctx, .err = err };
        const char *nul;
        int k;

        if (!ret)
                return jb_err_set(err, JB_E_INVALID_PARAMS, "no result pointer");
        *ret = NULL;
        if (!tpl && tpl_len > 0)
                return jb_err_set(err, JB_E_INVALID_PARAMS, "no template");
        if ((unsigned) ctx >= ELEMENTSOF(context_names))
                return jb_err_set(err, JB_E_INVALID_PARAMS, "unknown template context %d", (int) ctx);
        nul = tpl_len > 0 ? memchr(tpl, '\0', tpl_len) : NULL;
        if (nul)
                return jb_err_set(err, JB_E_INTERNAL, "line %u: template contains a NUL byte",
                                  1 + count_lines(tpl, (size_t) (nul - tpl)));

        k = parse(&p);
        if (k == 0) {
                r.nodes = p.nodes;
                if (data)
                        r.stack[r.depth++] = data;
                k = render_range(&r, 0, p.n);
        }
        free(p.nodes);
        if (k == 0 && !r.buf && !(r.buf = malloc(1)))
                k = jb_err_set(err, JB_E_INTERNAL, "out of memory");
        if (k < 0) {
                free(r.buf);
                return -1;
        }

        r.buf[r.len] = '\0';
        if (ret_len)
                *ret_len = r.len;
        *ret = r.buf;
        return 0;
}
