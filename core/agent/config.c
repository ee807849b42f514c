/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Loading and checking the daemon's configuration (see config.h).
 *
 * Each file is read once into memory, scanned for integer literals that
 * libconfig 1.5 would wrap, parsed from that same text with its own
 * config_t, and copied into a small tree of our own (cnode) that remembers
 * where every setting came from. The trees merge file by file; the schema
 * is then checked once, on the merged tree, so that every message points at
 * the file and line that produced the value in effect. */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1  /* asprintf, reallocarray */
#endif

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <json-c/json.h>
#include <libconfig.h>

#include "config.h"

#ifndef MODULEDIR
#define MODULEDIR "/usr/lib/jabali/modules"
#endif
#include "util.h"

#define INCLUDE_DEPTH_MAX 10            /* libconfig 1.5's MAX_INCLUDE_DEPTH */
#define NEST_MAX 64                     /* depth of a group/array/list; the root's members are at 1 */
#define NAME_LIST_MAX 1024              /* allow.users, allow.groups */
#define RELOAD_ARGV_MAX 64
#define DROPIN_MAX 1024
#define SUN_PATH_MAX 107                /* sizeof(sun_path) - 1 */
#define LITERAL_SHOWN_MAX 64            /* bytes of a bad literal quoted in a message */

/* A setting, detached from its config_t. */
typedef struct cnode {
        char *name;                     /* NULL for array/list elements and the root */
        int type;                       /* CONFIG_TYPE_* */
        union {
                int64_t i;
                double f;
                bool b;
                char *s;                /* owned */
        } v;
        struct cnode **kids;            /* owned; group members or elements */
        size_t n_kids;
        const char *file;               /* interned in loader.files */
        unsigned line;
} cnode;

struct loader {
        const char *main_path;
        char **files;                   /* owned: every file name a node points at */
        size_t n_files;
        cnode *root;                    /* owned: the merged tree */
        struct agent_config *cfg;       /* owned until handed out */
        jb_err *err;
};

/* ---------------------------------------------------------------- errors */

static int oom(struct loader *l) {
        return jb_err_set(l->err, JB_E_INTERNAL, "out of memory while loading %s", l->main_path);
}

_printf_(4, 0)
static int vfail_at(struct loader *l, const char *file, unsigned line, const char *fmt, va_list ap) {
        char msg[JB_ERR_MSG_MAX];

        (void) vsnprintf(msg, sizeof msg, fmt, ap);
        if (line > 0)
                return jb_err_set(l->err, JB_E_CONFIG_INVALID, "%s:%u: %s", file, line, msg);
        return jb_err_set(l->err, JB_E_CONFIG_INVALID, "%s: %s", file, msg);
}

_printf_(4, 5)
static int fail_at(struct loader *l, const char *file, unsigned line, const char *fmt, ...) {
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vfail_at(l, file, line, fmt, ap);
        va_end(ap);
        return r;
}

/* At a node, or at the main file when the value is a default (n == NULL). */
_printf_(3, 4)
static int fail(struct loader *l, const cnode *n, const char *fmt, ...) {
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vfail_at(l, n ? n->file : l->main_path, n ? n->line : 0, fmt, ap);
        va_end(ap);
        return r;
}

_printf_(3, 4)
static int warn(struct loader *l, const cnode *n, const char *fmt, ...) {
        struct agent_config *c = l->cfg;
        char msg[JB_ERR_MSG_MAX], *line = NULL, **w;
        va_list ap;
        int r;

        va_start(ap, fmt);
        (void) vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);

        if (n && n->line > 0)
                r = asprintf(&line, "%s:%u: %s", n->file, n->line, msg);
        else
                r = asprintf(&line, "%s: %s", n ? n->file : l->main_path, msg);
        if (r < 0)
                return oom(l);
        w = reallocarray(c->warnings, c->n_warnings + 1, sizeof *w);
        if (!w) {
                free(line);
                return oom(l);
        }
        c->warnings = w;
        c->warnings[c->n_warnings++] = line;
        return 0;
}

/* ----------------------------------------------------------- file input */

static const char *intern(struct loader *l, const char *name) {
        char **f, *dup;

        for (size_t i = 0; i < l->n_files; i++)
                if (streq(l->files[i], name))
                        return l->files[i];
        dup = strdup(name);
        if (!dup)
                return NULL;
        f = reallocarray(l->files, l->n_files + 1, sizeof *f);
        if (!f) {
                free(dup);
                return NULL;
        }
        f[l->n_files] = dup;
        l->files = f;
        l->n_files++;
        return dup;
}

/* Reads a whole regular file of at most CONFIG_FILE_MAX bytes into a new
 * NUL-terminated buffer (the caller's). On failure returns NULL with
 * *ret_errno set: EFBIG when too large, EINVAL when not a regular file. */
static char *read_fd_text(int fd, size_t *ret_len, int *ret_errno) {
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        size_t len = 0, cap;

        if (fstat(fd, &st) < 0) {
                *ret_errno = errno;
                return NULL;
        }
        if (!S_ISREG(st.st_mode)) {
                *ret_errno = EINVAL;
                return NULL;
        }
        if (st.st_size > CONFIG_FILE_MAX) {
                *ret_errno = EFBIG;
                return NULL;
        }
        /* Room for one byte more than the limit tells a file that grew
         * past it since fstat(). */
        cap = (size_t) st.st_size + 1;
        buf = malloc(cap + 1);
        if (!buf) {
                *ret_errno = ENOMEM;
                return NULL;
        }
        for (;;) {
                ssize_t n;

                if (len == cap) {
                        char *nb;

                        if (cap > CONFIG_FILE_MAX) {
                                *ret_errno = EFBIG;
                                return NULL;
                        }
                        cap = CONFIG_FILE_MAX + 1;
                        nb = realloc(buf, cap + 1);
                        if (!nb) {
                                *ret_errno = ENOMEM;
                                return NULL;
                        }
                        buf = nb;
                }
                n = read(fd, buf + len, cap - len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        *ret_errno = errno;
                        return NULL;
                }
                if (n == 0)
                        break;
                len += (size_t) n;
        }
        if (len > CONFIG_FILE_MAX) {
                *ret_errno = EFBIG;
                return NULL;
        }
        buf[len] = '\0';
        *ret_len = len;
        return TAKE_PTR(buf);
}

static const char *read_error(int e) {
        switch (e) {
        case EFBIG:
                return "file is larger than 1 MiB";
        case EINVAL:
                return "not a regular file";
        default:
                return strerror(e);
        }
}

/* ------------------------------------------------------------ the lexer */

/* libconfig 1.5 turns an integer literal without an L suffix into an int
 * with atoi()/strtoul() and stores whatever wraps out; with L it clamps
 * (decimal) or wraps (hex) at 64 bits. This scanner mirrors its tokens
 * closely enough to find every integer literal and refuses those that would
 * not survive. It does not judge syntax: whatever it skips, libconfig still
 * parses and reports. */

struct lexer {
        struct loader *l;
        const char *file;               /* as messages show it */
        const char *p, *end;
        unsigned line;
        unsigned depth;                 /* @include nesting, 0 for the file itself */
};

static int lex_text(struct loader *l, const char *file, const char *text, size_t len, unsigned depth);

/* ASCII only, as libconfig's flex patterns, whatever the locale. */
static bool is_digit(char c) {
        return c >= '0' && c <= '9';
}

static bool is_alpha(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int xdigit_value(char c) {
        if (is_digit(c))
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

static bool is_name_char(char c) {
        return is_alpha(c) || is_digit(c) || c == '-' || c == '_' || c == '*';
}

static void lex_skip_digits(struct lexer *x) {
        while (x->p < x->end && is_digit(*x->p))
                x->p++;
}

/* The rest of a float after its integer part: [.digits][e[+-]digits]. */
static void lex_skip_float_tail(struct lexer *x) {
        if (x->p < x->end && *x->p == '.') {
                x->p++;
                lex_skip_digits(x);
        }
        if (x->p < x->end && (*x->p == 'e' || *x->p == 'E')) {
                const char *q = x->p + 1;

                if (q < x->end && (*q == '+' || *q == '-'))
                        q++;
                if (q < x->end && is_digit(*q)) {
                        x->p = q;
                        lex_skip_digits(x);
                }
        }
}

static bool lex_float_follows(const struct lexer *x) {
        const char *q = x->p;

        if (q >= x->end)
                return false;
        if (*q == '.')
                return true;
        if (*q != 'e' && *q != 'E')
                return false;
        q++;
        if (q < x->end && (*q == '+' || *q == '-'))
                q++;
        return q < x->end && is_digit(*q);
}

/* At a digit, a sign or a '.'. Consumes one numeric token. */
static int lex_number(struct lexer *x) {
        const char *start = x->p;
        uint64_t mag = 0;
        bool neg = false, hex = false, wide = false, sat = false;
        size_t shown;

        if (*x->p == '+' || *x->p == '-') {
                neg = *x->p == '-';
                x->p++;
        }
        if (x->p < x->end && *x->p == '.') {
                x->p++;
                lex_skip_digits(x);
                lex_skip_float_tail(x);
                return 0;
        }
        if (x->p >= x->end || !is_digit(*x->p))
                return 0;       /* a lone sign: libconfig's problem */

        /* libconfig's hex pattern has no sign: "-0x5" lexes as "-0" "x5". */
        if (start == x->p && x->end - x->p >= 3 && x->p[0] == '0' &&
            (x->p[1] == 'x' || x->p[1] == 'X') && xdigit_value(x->p[2]) >= 0) {
                hex = true;
                x->p += 2;
                for (; x->p < x->end && xdigit_value(*x->p) >= 0; x->p++) {
                        unsigned d = (unsigned) xdigit_value(*x->p);

                        if (mag > (UINT64_MAX - d) / 16)
                                sat = true;
                        else
                                mag = mag * 16 + d;
                }
        } else {
                for (; x->p < x->end && is_digit(*x->p); x->p++) {
                        unsigned d = (unsigned) (*x->p - '0');

                        if (mag > (UINT64_MAX - d) / 10)
                                sat = true;
                        else
                                mag = mag * 10 + d;
                }
                if (lex_float_follows(x)) {
                        lex_skip_float_tail(x);
                        return 0;
                }
        }
        shown = (size_t) (x->p - start);
        if (shown > LITERAL_SHOWN_MAX)
                shown = LITERAL_SHOWN_MAX;

        if (x->p < x->end && *x->p == 'L') {
                wide = true;
                x->p++;
                if (x->p < x->end && *x->p == 'L')
                        x->p++;
        }
        if (sat)
                mag = UINT64_MAX;

        if (wide) {
                uint64_t max = neg ? (uint64_t) INT64_MAX + 1 : (uint64_t) INT64_MAX;

                if (mag > max)
                        return fail_at(x->l, x->file, x->line,
                                       "integer %.*s does not fit 64 bits", (int) shown, start);
                return 0;
        }
        if (mag > (neg && !hex ? (uint64_t) INT32_MAX + 1 : (uint64_t) INT32_MAX))
                return fail_at(x->l, x->file, x->line,
                               "integer %.*s does not fit 32 bits; write it with an L suffix (%.*sL)",
                               (int) shown, start, (int) shown, start);
        return 0;
}

/* At "@include" that begins a line: follow the file as libconfig will. */
static int lex_include(struct lexer *x) {
        _cleanup_free_ char *text = NULL;
        _cleanup_close_ int fd = -1;
        static const char kw[] = "@include";
        char name[PATH_MAX];
        size_t n = 0, len = 0;
        const char *q;
        int e = 0;

        if ((size_t) (x->end - x->p) < strlen(kw) || strncmp(x->p, kw, strlen(kw)) != 0)
                return 0;
        q = x->p + strlen(kw);
        if (q >= x->end || (*q != ' ' && *q != '\t'))
                return 0;
        while (q < x->end && (*q == ' ' || *q == '\t'))
                q++;
        if (q >= x->end || *q != '"')
                return 0;
        q++;
        while (q < x->end && *q != '"') {
                if (*q == '\\') {
                        /* libconfig 1.5 knows only \\ and \" in an include
                         * name; any other backslash is dropped (flex's
                         * default rule echoes it to stdout), so "a\b" opens
                         * "ab" and so must the scan. */
                        if (q + 1 >= x->end || (q[1] != '\\' && q[1] != '"')) {
                                q++;
                                continue;
                        }
                        q++;
                }
                if (*q == '\n')
                        x->line++;
                if (n + 1 >= sizeof name)
                        return fail_at(x->l, x->file, x->line, "@include file name is too long");
                name[n++] = *q++;
        }
        name[n] = '\0';
        x->p = q < x->end ? q + 1 : q;

        /* libconfig refuses deeper nesting itself; an unreadable file too. */
        if (x->depth + 1 > INCLUDE_DEPTH_MAX)
                return 0;
        fd = open(name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return 0;
        text = read_fd_text(fd, &len, &e);
        if (!text && e == ENOMEM)
                return oom(x->l);
        if (!text)
                return fail_at(x->l, x->file, x->line, "@include \"%s\": %s", name, read_error(e));
        return lex_text(x->l, name, text, len, x->depth + 1);
}

static int lex_text(struct loader *l, const char *file, const char *text, size_t len, unsigned depth) {
        struct lexer x = { .l = l, .file = file, .p = text, .end = text + len, .line = 1, .depth = depth };
        const char *nul = memchr(text, '\0', len);
        bool line_start = true;         /* nothing but blanks since the last newline */

        if (nul) {
                unsigned line = 1;

                for (const char *q = text; q < nul; q++)
                        line += *q == '\n';
                return fail_at(l, file, line, "NUL byte in the file");
        }

        while (x.p < x.end) {
                char c = *x.p;
                bool at_line_start = line_start;
                int r;

                if (c == '\n') {
                        x.line++;
                        x.p++;
                        line_start = true;
                        continue;
                }
                if (c == ' ' || c == '\t') {
                        x.p++;
                        continue;
                }
                line_start = false;

                if (c == '#' || (c == '/' && x.p + 1 < x.end && x.p[1] == '/')) {
                        while (x.p < x.end && *x.p != '\n')
                                x.p++;
                } else if (c == '/' && x.p + 1 < x.end && x.p[1] == '*') {
                        x.p += 2;
                        while (x.p < x.end && !(x.p[0] == '*' && x.p + 1 < x.end && x.p[1] == '/')) {
                                x.line += *x.p == '\n';
                                x.p++;
                        }
                        x.p = x.p < x.end ? x.p + 2 : x.p;
                } else if (c == '"') {
                        x.p++;
                        while (x.p < x.end && *x.p != '"') {
                                if (*x.p == '\\' && x.p + 1 < x.end)
                                        x.p++;
                                x.line += *x.p == '\n';
                                x.p++;
                        }
                        x.p = x.p < x.end ? x.p + 1 : x.p;
                } else if (c == '@' && at_line_start) {
                        const char *before = x.p;

                        r = lex_include(&x);
                        if (r < 0)
                                return r;
                        if (x.p == before)
                                x.p++;
                } else if (is_alpha(c) || c == '*') {
                        while (x.p < x.end && is_name_char(*x.p))
                                x.p++;
                } else if (is_digit(c) || c == '+' || c == '-' || c == '.') {
                        const char *before = x.p;

                        r = lex_number(&x);
                        if (r < 0)
                                return r;
                        if (x.p == before)
                                x.p++;
                } else
                        x.p++;
        }
        return 0;
}

/* ------------------------------------------------------------ the tree */

static void node_free(cnode *n) {
        if (!n)
                return;
        for (size_t i = 0; i < n->n_kids; i++)
                node_free(n->kids[i]);
        free(n->kids);
        if (n->type == CONFIG_TYPE_STRING)
                free(n->v.s);
        free(n->name);
        free(n);
}

static int node_from_setting(struct loader *l, const config_setting_t *s, const char *file,
                             unsigned depth, cnode **ret) {
        cnode *n;
        const char *src = config_setting_source_file(s);
        int r = 0;

        n = calloc(1, sizeof *n);
        if (!n)
                return oom(l);
        n->type = config_setting_type(s);
        n->line = config_setting_source_line(s);
        n->file = src ? intern(l, src) : file;
        if (!n->file)
                goto nomem;
        if (config_setting_name(s)) {
                n->name = strdup(config_setting_name(s));
                if (!n->name)
                        goto nomem;
        }

        switch (n->type) {
        case CONFIG_TYPE_GROUP:
        case CONFIG_TYPE_ARRAY:
        case CONFIG_TYPE_LIST: {
                int len = config_setting_length(s);

                if (depth > NEST_MAX) {
                        r = fail(l, n, "settings nested deeper than %d levels", NEST_MAX);
                        goto fail;
                }
                if (len <= 0)
                        break;
                n->kids = calloc((size_t) len, sizeof *n->kids);
                if (!n->kids)
                        goto nomem;
                for (int i = 0; i < len; i++) {
                        /* Only a finished child enters n->kids (what node_free() walks). */
                        cnode *kid = NULL;

                        r = node_from_setting(l, config_setting_get_elem(s, (unsigned) i), n->file,
                                              depth + 1, &kid);
                        if (r < 0)
                                goto fail;
                        n->kids[n->n_kids++] = kid;
                }
                break;
        }
        case CONFIG_TYPE_INT:
                n->v.i = config_setting_get_int(s);
                break;
        case CONFIG_TYPE_INT64:
                n->v.i = config_setting_get_int64(s);
                n->type = CONFIG_TYPE_INT;      /* the lexer made both exact */
                break;
        case CONFIG_TYPE_FLOAT:
                n->v.f = config_setting_get_float(s);
                if (!isfinite(n->v.f)) {
                        r = fail(l, n, "number out of range");
                        goto fail;
                }
                break;
        case CONFIG_TYPE_STRING:
                n->v.s = strdup(config_setting_get_string(s) ?: "");
                if (!n->v.s)
                        goto nomem;
                break;
        case CONFIG_TYPE_BOOL:
                n->v.b = config_setting_get_bool(s);
                break;
        default:
                r = fail(l, n, "setting of unknown type %d", n->type);
                goto fail;
        }
        *ret = n;
        return 0;

nomem:
        r = oom(l);
fail:
        node_free(n);
        return r;
}

static cnode *group_find(const cnode *g, const char *name, size_t *ret_idx) {
        if (!g || g->type != CONFIG_TYPE_GROUP)
                return NULL;
        for (size_t i = 0; i < g->n_kids; i++)
                if (g->kids[i]->name && streq(g->kids[i]->name, name)) {
                        if (ret_idx)
                                *ret_idx = i;
                        return g->kids[i];
                }
        return NULL;
}

/* Moves every member of `src` into `dst` (both groups); frees src. A group
 * met in both merges further down; anything else from src replaces. The
 * group takes the location of the latest file that opened it. */
static int group_merge(struct loader *l, cnode *dst, cnode *src) {
        for (size_t i = 0; i < src->n_kids; i++) {
                cnode *s = src->kids[i], *d;
                size_t at = 0;

                d = group_find(dst, s->name, &at);
                if (d && d->type == CONFIG_TYPE_GROUP && s->type == CONFIG_TYPE_GROUP) {
                        int r;

                        src->kids[i] = NULL;
                        d->file = s->file;
                        d->line = s->line;
                        r = group_merge(l, d, s);
                        if (r < 0) {
                                node_free(src);
                                return r;
                        }
                } else if (d) {
                        node_free(d);
                        dst->kids[at] = TAKE_PTR(src->kids[i]);
                } else {
                        cnode **k = reallocarray(dst->kids, dst->n_kids + 1, sizeof *k);

                        if (!k) {
                                node_free(src);
                                return oom(l);
                        }
                        dst->kids = k;
                        dst->kids[dst->n_kids++] = TAKE_PTR(src->kids[i]);
                }
        }
        node_free(src);
        return 0;
}

static int load_file(struct loader *l, const char *path) {
        _cleanup_free_ char *text = NULL;
        _cleanup_close_ int fd = -1;
        const char *file;
        config_setting_t *root;
        config_t cf;
        cnode *n = NULL;
        size_t len = 0;
        int r, e = 0;

        file = intern(l, path);
        if (!file)
                return oom(l);
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return fail_at(l, file, 0, "cannot open: %s", strerror(errno));
        text = read_fd_text(fd, &len, &e);
        if (!text && e == ENOMEM)
                return oom(l);
        if (!text)
                return fail_at(l, file, 0, "cannot read: %s", read_error(e));
        fd = safe_close(fd);

        r = lex_text(l, file, text, len, 0);
        if (r < 0)
                return r;

        /* Parse the very text the lexer saw. No include dir: libconfig 1.5
         * would prefix it to absolute @include names too. */
        config_init(&cf);
        if (config_read_string(&cf, text) != CONFIG_TRUE) {
                const char *ef = config_error_file(&cf);

                r = fail_at(l, ef ? ef : file, (unsigned) (config_error_line(&cf) > 0 ? config_error_line(&cf) : 0),
                            "%s", config_error_text(&cf) ?: "cannot parse");
                config_destroy(&cf);
                return r;
        }
        root = config_root_setting(&cf);
        r = node_from_setting(l, root, file, 0, &n);
        config_destroy(&cf);
        if (r < 0)
                return r;

        if (!l->root) {
                l->root = n;
                return 0;
        }
        return group_merge(l, l->root, n);
}

static int name_cmp(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static void strv_free(char **v, size_t n) {
        if (!v)
                return;
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

static int load_dropins(struct loader *l, const char *dir) {
        DIR *d;
        struct dirent *de;
        char **names = NULL;
        size_t n = 0;
        bool slash;
        int r = 0;

        d = opendir(dir);
        if (!d) {
                if (errno == ENOENT)
                        return 0;
                return fail_at(l, dir, 0, "cannot open the drop-in directory: %s", strerror(errno));
        }
        for (;;) {
                size_t len;
                char **nn;

                errno = 0;
                de = readdir(d);
                if (!de) {
                        if (errno != 0)
                                r = fail_at(l, dir, 0, "cannot read the drop-in directory: %s", strerror(errno));
                        break;
                }
                len = strlen(de->d_name);
                if (de->d_name[0] == '.' || len <= strlen(".conf") ||
                    !streq(de->d_name + len - strlen(".conf"), ".conf"))
                        continue;
                if (n >= DROPIN_MAX) {
                        r = fail_at(l, dir, 0, "more than %d drop-in files", DROPIN_MAX);
                        break;
                }
                nn = reallocarray(names, n + 1, sizeof *nn);
                if (!nn) {
                        r = oom(l);
                        break;
                }
                names = nn;
                names[n] = strdup(de->d_name);
                if (!names[n]) {
                        r = oom(l);
                        break;
                }
                n++;
        }
        (void) closedir(d);
        if (r < 0)
                goto done;

        if (n > 0)
                qsort(names, n, sizeof *names, name_cmp);
        slash = dir[0] != '\0' && dir[strlen(dir) - 1] == '/';
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *p = NULL;

                if (asprintf(&p, "%s%s%s", dir, slash ? "" : "/", names[i]) < 0) {
                        r = oom(l);
                        goto done;
                }
                r = load_file(l, p);
                if (r < 0)
                        goto done;
        }
done:
        strv_free(names, n);
        return r;
}

/* ---------------------------------------------------------- the schema */

static const char *type_name(int type) {
        switch (type) {
        case CONFIG_TYPE_GROUP:  return "a group";
        case CONFIG_TYPE_INT:
        case CONFIG_TYPE_INT64:  return "an integer";
        case CONFIG_TYPE_FLOAT:  return "a float";
        case CONFIG_TYPE_STRING: return "a string";
        case CONFIG_TYPE_BOOL:   return "a boolean";
        case CONFIG_TYPE_ARRAY:  return "an array";
        case CONFIG_TYPE_LIST:   return "a list";
        default:                 return "of an unknown type";
        }
}

static bool strv_contains(const char *const *v, const char *s) {
        for (; *v; v++)
                if (streq(*v, s))
                        return true;
        return false;
}

/* Refuses every member of group `g` (at `prefix`) that is not in `known`. */
static int check_known(struct loader *l, const cnode *g, const char *prefix, const char *const *known) {
        for (size_t i = 0; g && i < g->n_kids; i++)
                if (!strv_contains(known, g->kids[i]->name))
                        return fail(l, g->kids[i], "unknown setting '%s%s%s'",
                                    prefix, prefix[0] ? "." : "", g->kids[i]->name);
        return 0;
}

/* The member `key` of the group at `prefix`, which must be a group itself:
 * 0 and *ret = NULL when absent. */
static int get_group(struct loader *l, const cnode *g, const char *prefix, const char *key, const cnode **ret) {
        const cnode *n = group_find(g, key, NULL);

        if (n && n->type != CONFIG_TYPE_GROUP)
                return fail(l, n, "%s%s%s must be a group, not %s",
                            prefix, prefix[0] ? "." : "", key, type_name(n->type));
        *ret = n;
        return 0;
}

/* Leaves *v alone when the key is absent. *ret_node (optional) tells where
 * the value came from. */
static int get_int(struct loader *l, const cnode *g, const char *prefix, const char *key,
                   int64_t min, int64_t max, int64_t *v, const cnode **ret_node) {
        const cnode *n = group_find(g, key, NULL);

        if (ret_node)
                *ret_node = n;
        if (!n)
                return 0;
        if (n->type != CONFIG_TYPE_INT)
                return fail(l, n, "%s.%s must be an integer, not %s", prefix, key, type_name(n->type));
        if (n->v.i < min || n->v.i > max)
                return fail(l, n, "%s.%s = %" PRIi64 " is out of range (%" PRIi64 "..%" PRIi64 ")",
                            prefix, key, n->v.i, min, max);
        *v = n->v.i;
        return 0;
}

static int get_u32(struct loader *l, const cnode *g, const char *prefix, const char *key,
                   uint32_t min, uint32_t max, uint32_t *v, const cnode **ret_node) {
        int64_t x = *v;
        int r = get_int(l, g, prefix, key, min, max, &x, ret_node);

        if (r < 0)
                return r;
        *v = (uint32_t) x;
        return 0;
}

static int get_bool(struct loader *l, const cnode *g, const char *prefix, const char *key, bool *v) {
        const cnode *n = group_find(g, key, NULL);

        if (!n)
                return 0;
        if (n->type != CONFIG_TYPE_BOOL)
                return fail(l, n, "%s.%s must be a boolean (true or false), not %s",
                            prefix, key, type_name(n->type));
        *v = n->v.b;
        return 0;
}

/* *v is borrowed from the tree (or stays the caller's default). */
static int get_str(struct loader *l, const cnode *g, const char *prefix, const char *key,
                   const char **v, const cnode **ret_node) {
        const cnode *n = group_find(g, key, NULL);

        if (ret_node)
                *ret_node = n;
        if (!n)
                return 0;
        if (n->type != CONFIG_TYPE_STRING)
                return fail(l, n, "%s.%s must be a string, not %s", prefix, key, type_name(n->type));
        *v = n->v.s;
        return 0;
}

static int set_str(struct loader *l, char **dst, const char *s) {
        char *c = strdup(s);

        if (!c)
                return oom(l);
        free(*dst);
        *dst = c;
        return 0;
}

/* An absolute path (or "" when allow_empty, giving NULL), copied into *dst. */
static int get_path(struct loader *l, const cnode *g, const char *prefix, const char *key,
                    const char *def, bool allow_empty, char **dst) {
        const cnode *n = NULL;
        const char *v = def;
        int r;

        r = get_str(l, g, prefix, key, &v, &n);
        if (r < 0)
                return r;
        if (v[0] == '\0' && allow_empty) {
                free(*dst);
                *dst = NULL;
                return 0;
        }
        if (v[0] != '/')
                return fail(l, n, "%s.%s must be an absolute path, not '%s'", prefix, key, v);
        return set_str(l, dst, v);
}

/* One of `names` (NULL-terminated); *v is its index. */
static int get_enum(struct loader *l, const cnode *g, const char *prefix, const char *key,
                    const char *const *names, int *v) {
        const cnode *n = NULL;
        const char *s = NULL;
        char list[256] = "";
        int r;

        r = get_str(l, g, prefix, key, &s, &n);
        if (r < 0 || !s)
                return r;
        for (int i = 0; names[i]; i++)
                if (streq(names[i], s)) {
                        *v = i;
                        return 0;
                }
        for (int i = 0; names[i]; i++) {
                size_t used = strlen(list);

                (void) snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", names[i]);
        }
        return fail(l, n, "%s.%s = '%s' is not one of: %s", prefix, key, s, list);
}

/* An array or list whose elements are all strings; NULL when absent. */
static int get_strlist(struct loader *l, const cnode *g, const char *prefix, const char *key,
                       size_t max, const cnode **ret) {
        const cnode *n = group_find(g, key, NULL);

        *ret = NULL;
        if (!n)
                return 0;
        if (n->type != CONFIG_TYPE_ARRAY && n->type != CONFIG_TYPE_LIST)
                return fail(l, n, "%s.%s must be an array of strings, not %s", prefix, key, type_name(n->type));
        if (n->n_kids > max)
                return fail(l, n, "%s.%s has more than %zu elements", prefix, key, max);
        for (size_t i = 0; i < n->n_kids; i++)
                if (n->kids[i]->type != CONFIG_TYPE_STRING)
                        return fail(l, n->kids[i], "%s.%s[%zu] must be a string, not %s",
                                    prefix, key, i, type_name(n->kids[i]->type));
        *ret = n;
        return 0;
}

/* socket { path; group; mode; } */
static int load_socket(struct loader *l, const cnode *g) {
        static const char *const known[] = { "path", "group", "mode", NULL };
        struct agent_config *c = l->cfg;
        const char *path = "/run/jabali-agent.sock", *group = "jabali-sockets", *mode = "0660";
        const cnode *n_path = NULL, *n_group = NULL, *n_mode = NULL;
        unsigned m = 0;
        int r;

        if ((r = check_known(l, g, "socket", known)) < 0 ||
            (r = get_str(l, g, "socket", "path", &path, &n_path)) < 0 ||
            (r = get_str(l, g, "socket", "group", &group, &n_group)) < 0 ||
            (r = get_str(l, g, "socket", "mode", &mode, &n_mode)) < 0)
                return r;

        if (path[0] != '/')
                return fail(l, n_path, "socket.path must be an absolute path, not '%s'", path);
        if (strlen(path) > SUN_PATH_MAX)
                return fail(l, n_path, "socket.path is longer than %d bytes (the limit of a unix socket address)",
                            SUN_PATH_MAX);
        if ((r = set_str(l, &c->socket_path, path)) < 0)
                return r;

        if (mode[0] == '\0')
                return fail(l, n_mode, "socket.mode must be octal digits such as \"0660\", not empty");
        for (const char *p = mode; *p; p++) {
                if (*p < '0' || *p > '7')
                        return fail(l, n_mode, "socket.mode = '%s' must be octal digits such as \"0660\"", mode);
                m = m * 8 + (unsigned) (*p - '0');
                if (m > 0777)
                        return fail(l, n_mode, "socket.mode = '%s' is above 0777", mode);
        }
        c->socket_mode = (mode_t) m;

        free(c->socket_group);
        c->socket_group = NULL;
        c->has_socket_gid = false;
        if (group[0] != '\0') {
                struct group *gr;

                errno = 0;
                gr = getgrnam(group);
                if (!gr)
                        return fail(l, n_group ?: g, "socket.group: no such group '%s'%s%s%s", group,
                                    n_group ? "" : " (the default; set socket.group = \"\" for none)",
                                    errno > 0 && errno != ENOENT ? ": " : "",
                                    errno > 0 && errno != ENOENT ? strerror(errno) : "");
                c->socket_gid = gr->gr_gid;
                c->has_socket_gid = true;
                if ((r = set_str(l, &c->socket_group, group)) < 0)
                        return r;
        }
        return 0;
}

static bool uid_seen(const uid_t *v, size_t n, uid_t u) {
        for (size_t i = 0; i < n; i++)
                if (v[i] == u)
                        return true;
        return false;
}

static bool gid_seen(const gid_t *v, size_t n, gid_t g) {
        for (size_t i = 0; i < n; i++)
                if (v[i] == g)
                        return true;
        return false;
}

/* Resolves one name of allow.users (users) or allow.groups. Unknown: a warning. */
static int allow_one(struct loader *l, const cnode *where, bool users, const char *name, bool is_default) {
        struct agent_config *c = l->cfg;
        const char *what = users ? "user" : "group";
        int saved;

        errno = 0;
        if (users) {
                struct passwd *pw = getpwnam(name);
                uid_t *v;

                saved = errno;
                if (pw) {
                        if (uid_seen(c->allow_uids, c->n_allow_uids, pw->pw_uid))
                                return 0;
                        v = reallocarray(c->allow_uids, c->n_allow_uids + 1, sizeof *v);
                        if (!v)
                                return oom(l);
                        c->allow_uids = v;
                        c->allow_uids[c->n_allow_uids++] = pw->pw_uid;
                        return 0;
                }
        } else {
                struct group *gr = getgrnam(name);
                gid_t *v;

                saved = errno;
                if (gr) {
                        if (gid_seen(c->allow_gids, c->n_allow_gids, gr->gr_gid))
                                return 0;
                        v = reallocarray(c->allow_gids, c->n_allow_gids + 1, sizeof *v);
                        if (!v)
                                return oom(l);
                        c->allow_gids = v;
                        c->allow_gids[c->n_allow_gids++] = gr->gr_gid;
                        return 0;
                }
        }
        if (saved > 0 && saved != ENOENT && saved != ESRCH)
                return warn(l, where, "allow.%ss: cannot look up %s '%s'%s: %s; skipped", what, what, name,
                            is_default ? " (the default)" : "", strerror(saved));
        return warn(l, where, "allow.%ss: unknown %s '%s'%s; skipped", what, what, name,
                    is_default ? " (the default)" : "");
}

/* allow { users; groups; } */
static int load_allow(struct loader *l, const cnode *g) {
        static const char *const known[] = { "users", "groups", NULL };
        static const char *const def_users[] = { "root" }, *const def_groups[] = { "jabali-sockets" };
        const cnode *users = NULL, *groups = NULL;
        int r;

        if ((r = check_known(l, g, "allow", known)) < 0 ||
            (r = get_strlist(l, g, "allow", "users", NAME_LIST_MAX, &users)) < 0 ||
            (r = get_strlist(l, g, "allow", "groups", NAME_LIST_MAX, &groups)) < 0)
                return r;

        if (users) {
                for (size_t i = 0; i < users->n_kids; i++)
                        if ((r = allow_one(l, users->kids[i], true, users->kids[i]->v.s, false)) < 0)
                                return r;
        } else
                for (size_t i = 0; i < ELEMENTSOF(def_users); i++)
                        if ((r = allow_one(l, g, true, def_users[i], true)) < 0)
                                return r;
        if (groups) {
                for (size_t i = 0; i < groups->n_kids; i++)
                        if ((r = allow_one(l, groups->kids[i], false, groups->kids[i]->v.s, false)) < 0)
                                return r;
        } else
                for (size_t i = 0; i < ELEMENTSOF(def_groups); i++)
                        if ((r = allow_one(l, g, false, def_groups[i], true)) < 0)
                                return r;

        if (l->cfg->n_allow_uids + l->cfg->n_allow_gids == 0)
                return fail(l, users ?: groups ?: g, "allow list is empty: nobody could call the agent");
        return 0;
}

static bool module_name_valid(const char *s) {
        size_t i;

        if (!(s[0] >= 'a' && s[0] <= 'z'))
                return false;
        for (i = 1; s[i]; i++)
                if (!((s[i] >= 'a' && s[i] <= 'z') || is_digit(s[i]) || s[i] == '_'))
                        return false;
        return i <= CONFIG_MODULE_NAME_MAX;
}

static int node_to_json(const cnode *n, json_object **ret) {
        json_object *o = NULL;

        switch (n->type) {
        case CONFIG_TYPE_GROUP:
                o = json_object_new_object();
                if (!o)
                        return -ENOMEM;
                for (size_t i = 0; i < n->n_kids; i++) {
                        json_object *k = NULL;

                        if (node_to_json(n->kids[i], &k) < 0 ||
                            json_object_object_add(o, n->kids[i]->name, k) < 0) {
                                json_object_put(k);
                                json_object_put(o);
                                return -ENOMEM;
                        }
                }
                break;
        case CONFIG_TYPE_ARRAY:
        case CONFIG_TYPE_LIST:
                o = json_object_new_array_ext((int) n->n_kids);
                if (!o)
                        return -ENOMEM;
                for (size_t i = 0; i < n->n_kids; i++) {
                        json_object *k = NULL;

                        if (node_to_json(n->kids[i], &k) < 0 || json_object_array_add(o, k) < 0) {
                                json_object_put(k);
                                json_object_put(o);
                                return -ENOMEM;
                        }
                }
                break;
        case CONFIG_TYPE_INT:
                o = json_object_new_int64(n->v.i);
                break;
        case CONFIG_TYPE_FLOAT:
                o = json_object_new_double(n->v.f);
                break;
        case CONFIG_TYPE_STRING:
                o = json_object_new_string(n->v.s);
                break;
        case CONFIG_TYPE_BOOL:
                o = json_object_new_boolean(n->v.b);
                break;
        default:
                return -EINVAL;
        }
        if (!o)
                return -ENOMEM;
        *ret = o;
        return 0;
}

static void module_conf_done(struct module_conf *m) {
        free(m->name);
        json_object_put(m->settings);
        free(m->where);
}

static int load_module(struct loader *l, const cnode *g, struct module_conf *m) {
        static const char *const known[] = { "enabled", "optional", "workers", "settings", NULL };
        static const char *const known_workers[] = { "max", "max_use", "idle_timeout_ms", "queue", NULL };
        char prefix[sizeof "modules." + CONFIG_MODULE_NAME_MAX], wprefix[sizeof prefix + sizeof ".workers"];
        const cnode *w = NULL, *s;
        int64_t idle = 300000;
        int r;

        *m = (struct module_conf) {
                .enabled = true,
                .workers_max = 2,
                .max_use = 500,
                .queue = 64,
                .idle_timeout_ms = 300000,
        };
        (void) snprintf(prefix, sizeof prefix, "modules.%s", g->name);
        (void) snprintf(wprefix, sizeof wprefix, "%s.workers", prefix);

        m->name = strdup(g->name);
        if (!m->name || asprintf(&m->where, "%s:%u", g->file, g->line) < 0) {
                m->where = NULL;
                return oom(l);
        }

        if ((r = check_known(l, g, prefix, known)) < 0 ||
            (r = get_bool(l, g, prefix, "enabled", &m->enabled)) < 0 ||
            (r = get_bool(l, g, prefix, "optional", &m->optional)) < 0 ||
            (r = get_group(l, g, prefix, "workers", &w)) < 0 ||
            (r = check_known(l, w, wprefix, known_workers)) < 0 ||
            (r = get_u32(l, w, wprefix, "max", 1, 64, &m->workers_max, NULL)) < 0 ||
            (r = get_u32(l, w, wprefix, "max_use", 1, 1000000, &m->max_use, NULL)) < 0 ||
            (r = get_int(l, w, wprefix, "idle_timeout_ms", 1000, 86400000, &idle, NULL)) < 0 ||
            (r = get_u32(l, w, wprefix, "queue", 1, 65536, &m->queue, NULL)) < 0)
                return r;
        m->idle_timeout_ms = (uint64_t) idle;

        s = group_find(g, "settings", NULL);
        if (s && s->type != CONFIG_TYPE_GROUP)
                return fail(l, s, "%s.settings must be a group, not %s", prefix, type_name(s->type));
        if (s)
                r = node_to_json(s, &m->settings);
        else {
                m->settings = json_object_new_object();
                r = m->settings ? 0 : -ENOMEM;
        }
        return r < 0 ? oom(l) : 0;
}

static int module_cmp(const void *a, const void *b) {
        return strcmp(((const struct module_conf *) a)->name, ((const struct module_conf *) b)->name);
}

/* modules { dir; allow_insecure; <name>: { ... }; ... } */
static int load_modules(struct loader *l, const cnode *g) {
        struct agent_config *c = l->cfg;
        size_t n = 0;
        int r;

        if ((r = get_path(l, g, "modules", "dir", MODULEDIR, false, &c->module_dir)) < 0 ||
            (r = get_bool(l, g, "modules", "allow_insecure", &c->allow_insecure_modules)) < 0)
                return r;
        if (!g)
                return 0;

        for (size_t i = 0; i < g->n_kids; i++) {
                const cnode *k = g->kids[i];

                if (streq(k->name, "dir") || streq(k->name, "allow_insecure"))
                        continue;
                if (k->type != CONFIG_TYPE_GROUP)
                        return fail(l, k, "unknown setting 'modules.%s' (a module is a group: %s: { ... })",
                                    k->name, k->name);
                if (!module_name_valid(k->name))
                        return fail(l, k, "invalid module name '%s': [a-z][a-z0-9_]*, at most %d characters",
                                    k->name, CONFIG_MODULE_NAME_MAX);
                n++;
        }
        if (n == 0)
                return 0;
        c->modules = calloc(n, sizeof *c->modules);
        if (!c->modules)
                return oom(l);
        for (size_t i = 0; i < g->n_kids; i++) {
                const cnode *k = g->kids[i];

                if (k->type != CONFIG_TYPE_GROUP)
                        continue;
                /* Counted before the call so that config_free() sees a half-filled entry. */
                c->n_modules++;
                r = load_module(l, k, &c->modules[c->n_modules - 1]);
                if (r < 0)
                        return r;
        }
        qsort(c->modules, c->n_modules, sizeof *c->modules, module_cmp);
        return 0;
}

/* audit { file; fsync; journal; } */
static int load_audit(struct loader *l, const cnode *g) {
        static const char *const known[] = { "file", "fsync", "journal", NULL };
        static const char *const fsyncs[] = { "always", "never", NULL };
        struct agent_config *c = l->cfg;
        int fs = AUDIT_FSYNC_ALWAYS, r;

        if ((r = check_known(l, g, "audit", known)) < 0 ||
            (r = get_path(l, g, "audit", "file", "/var/log/jabali/audit.jsonl", true, &c->audit_file)) < 0 ||
            (r = get_enum(l, g, "audit", "fsync", fsyncs, &fs)) < 0 ||
            (r = get_bool(l, g, "audit", "journal", &c->audit_journal)) < 0)
                return r;
        c->audit_fsync = fs == 0 ? AUDIT_FSYNC_ALWAYS : AUDIT_FSYNC_NEVER;
        return 0;
}

static const char *const apparmor_modes[] = {
        [APPARMOR_ENFORCE] = "enforce",
        [APPARMOR_COMPLAIN] = "complain",
        [APPARMOR_OFF] = "off",
        NULL,
};

static int load_apparmor(struct loader *l, const cnode *g) {
        static const char *const known[] = { "mode", NULL };
        int m = APPARMOR_ENFORCE, r;

        if ((r = check_known(l, g, "apparmor", known)) < 0 ||
            (r = get_enum(l, g, "apparmor", "mode", apparmor_modes, &m)) < 0)
                return r;
        l->cfg->apparmor = (apparmor_mode) m;
        return 0;
}

static int load_limits(struct loader *l, const cnode *g) {
        static const char *const known[] = {
                "max_frame", "max_depth", "max_connections", "max_connections_per_uid", "max_pipeline",
                "read_timeout_ms", "default_timeout_ms", "max_timeout_ms", NULL,
        };
        struct agent_config *c = l->cfg;
        const cnode *n_conn = NULL, *n_per_uid = NULL, *n_def = NULL, *n_max = NULL;
        int r;

        if ((r = check_known(l, g, "limits", known)) < 0 ||
            (r = get_u32(l, g, "limits", "max_frame", 1024, 268435456, &c->max_frame, NULL)) < 0 ||
            (r = get_u32(l, g, "limits", "max_depth", 2, 256, &c->max_depth, NULL)) < 0 ||
            (r = get_u32(l, g, "limits", "max_connections", 1, 65536, &c->max_connections, &n_conn)) < 0 ||
            (r = get_u32(l, g, "limits", "max_connections_per_uid", 1, 65536,
                         &c->max_connections_per_uid, &n_per_uid)) < 0 ||
            (r = get_u32(l, g, "limits", "max_pipeline", 1, 1024, &c->max_pipeline, NULL)) < 0 ||
            (r = get_u32(l, g, "limits", "read_timeout_ms", 100, 3600000, &c->read_timeout_ms, NULL)) < 0 ||
            (r = get_u32(l, g, "limits", "default_timeout_ms", 1, 86400000, &c->default_timeout_ms, &n_def)) < 0 ||
            (r = get_u32(l, g, "limits", "max_timeout_ms", 1, 86400000, &c->max_timeout_ms, &n_max)) < 0)
                return r;

        /* A bound given explicitly must hold; a default follows the other side down. */
        if (c->max_connections_per_uid > c->max_connections) {
                if (n_per_uid)
                        return fail(l, n_per_uid,
                                    "limits.max_connections_per_uid = %" PRIu32 " is above limits.max_connections = %" PRIu32,
                                    c->max_connections_per_uid, c->max_connections);
                c->max_connections_per_uid = c->max_connections;
        }
        if (c->default_timeout_ms > c->max_timeout_ms) {
                if (n_def)
                        return fail(l, n_def,
                                    "limits.default_timeout_ms = %" PRIu32 " is above limits.max_timeout_ms = %" PRIu32,
                                    c->default_timeout_ms, c->max_timeout_ms);
                c->default_timeout_ms = c->max_timeout_ms;
        }
        return 0;
}

static int load_runtime(struct loader *l, const cnode *g) {
        static const char *const known[] = { "dir", NULL };
        int r;

        if ((r = check_known(l, g, "runtime", known)) < 0 ||
            (r = get_path(l, g, "runtime", "dir", "/run/jabali-agent", false, &l->cfg->runtime_dir)) < 0)
                return r;
        return 0;
}

static int load_reload(struct loader *l, const cnode *g) {
        static const char *const known[] = { "command", "window_ms", NULL };
        struct agent_config *c = l->cfg;
        const cnode *cmd = NULL;
        int r;

        if ((r = check_known(l, g, "reload", known)) < 0 ||
            (r = get_strlist(l, g, "reload", "command", RELOAD_ARGV_MAX, &cmd)) < 0 ||
            (r = get_u32(l, g, "reload", "window_ms", 0, 60000, &c->reload_window_ms, NULL)) < 0)
                return r;
        if (!cmd || cmd->n_kids == 0)
                return 0;
        if (cmd->kids[0]->v.s[0] != '/')
                return fail(l, cmd->kids[0], "reload.command[0] must be an absolute path, not '%s'",
                            cmd->kids[0]->v.s);
        c->reload_command = calloc(cmd->n_kids + 1, sizeof *c->reload_command);
        if (!c->reload_command)
                return oom(l);
        for (size_t i = 0; i < cmd->n_kids; i++) {
                c->reload_command[i] = strdup(cmd->kids[i]->v.s);
                if (!c->reload_command[i])
                        return oom(l);
                c->n_reload_command++;
        }
        return 0;
}

static int load_log(struct loader *l, const cnode *g) {
        static const char *const known[] = { "level", NULL };
        static const char *const names[] = { "debug", "info", "notice", "warning", "err", NULL };
        static const int levels[] = { LOG_DEBUG, LOG_INFO, LOG_NOTICE, LOG_WARNING, LOG_ERR };
        int i = 1, r;

        if ((r = check_known(l, g, "log", known)) < 0 ||
            (r = get_enum(l, g, "log", "level", names, &i)) < 0)
                return r;
        l->cfg->log_level = levels[i];
        return 0;
}

static int load_schema(struct loader *l) {
        static const struct {
                const char *name;
                int (*load)(struct loader *l, const cnode *g);
        } groups[] = {
                { "socket", load_socket },
                { "allow", load_allow },
                { "modules", load_modules },
                { "audit", load_audit },
                { "apparmor", load_apparmor },
                { "limits", load_limits },
                { "runtime", load_runtime },
                { "reload", load_reload },
                { "log", load_log },
        };
        const cnode *root = l->root;

        for (size_t i = 0; root && i < root->n_kids; i++) {
                size_t j;

                for (j = 0; j < ELEMENTSOF(groups); j++)
                        if (streq(root->kids[i]->name, groups[j].name))
                                break;
                if (j == ELEMENTSOF(groups))
                        return fail(l, root->kids[i], "unknown setting '%s'", root->kids[i]->name);
        }
        for (size_t j = 0; j < ELEMENTSOF(groups); j++) {
                const cnode *g = NULL;
                int r;

                if ((r = get_group(l, root, "", groups[j].name, &g)) < 0 ||
                    (r = groups[j].load(l, g)) < 0)
                        return r;
        }
        return 0;
}

/* ------------------------------------------------------------- public */

static struct agent_config *config_new(void) {
        struct agent_config *c = calloc(1, sizeof *c);

        if (!c)
                return NULL;
        c->socket_mode = 0660;
        c->audit_fsync = AUDIT_FSYNC_ALWAYS;
        c->audit_journal = true;
        c->apparmor = APPARMOR_ENFORCE;
        c->max_frame = 8388608;
        c->max_depth = 32;
        c->max_connections = 256;
        c->max_connections_per_uid = 64;
        c->max_pipeline = 32;
        c->read_timeout_ms = 30000;
        c->default_timeout_ms = 120000;
        c->max_timeout_ms = 600000;
        c->reload_window_ms = 250;
        c->log_level = LOG_INFO;
        return c;
}

static char *default_dropin_dir(const char *path) {
        const char *slash = strrchr(path, '/');
        char *d = NULL;

        if (!slash)
                return strdup(CONFIG_DROPIN_NAME);
        if (asprintf(&d, "%.*s/%s", (int) (slash - path), path, CONFIG_DROPIN_NAME) < 0)
                return NULL;
        return d;
}

int config_load(const char *path, const char *dropin_dir, struct agent_config **ret, jb_err *err) {
        struct loader l = { .main_path = path, .err = err };
        _cleanup_free_ char *dir = NULL;
        int r;

        if (!path || !ret)
                return jb_err_set(err, JB_E_INTERNAL, "config_load: no path");
        if (!dropin_dir) {
                dir = default_dropin_dir(path);
                if (!dir)
                        return oom(&l);
                dropin_dir = dir;
        }
        l.cfg = config_new();
        if (!l.cfg)
                return oom(&l);
        l.cfg->path = strdup(path);
        if (!l.cfg->path) {
                r = oom(&l);
                goto done;
        }

        r = load_file(&l, path);
        if (r >= 0)
                r = load_dropins(&l, dropin_dir);
        if (r >= 0)
                r = load_schema(&l);
        if (r >= 0)
                *ret = TAKE_PTR(l.cfg);
done:
        config_free(l.cfg);
        node_free(l.root);
        strv_free(l.files, l.n_files);
        return r < 0 ? -1 : 0;
}

void config_free(struct agent_config *c) {
        if (!c)
                return;
        free(c->path);
        free(c->socket_path);
        free(c->socket_group);
        free(c->allow_uids);
        free(c->allow_gids);
        free(c->module_dir);
        for (size_t i = 0; i < c->n_modules; i++)
                module_conf_done(&c->modules[i]);
        free(c->modules);
        free(c->audit_file);
        free(c->runtime_dir);
        strv_free(c->reload_command, c->n_reload_command);
        strv_free(c->warnings, c->n_warnings);
        free(c);
}

static int module_key_cmp(const void *key, const void *m) {
        return strcmp(key, ((const struct module_conf *) m)->name);
}

const struct module_conf *config_module(const struct agent_config *c, const char *name) {
        if (!c || !name || c->n_modules == 0)
                return NULL;
        return bsearch(name, c->modules, c->n_modules, sizeof *c->modules, module_key_cmp);
}

const char *apparmor_mode_to_string(apparmor_mode m) {
        if ((unsigned) m >= ELEMENTSOF(apparmor_modes) - 1)
                return "unknown";
        return apparmor_modes[m];
}
