/* SPDX-License-Identifier: GPL-3.0-or-later */
/* libFuzzer harness for parameter schemas. The input is a request's
 * "params": parsed as strict JSON the way the agent does (falling back to
 * json-c's lenient parser, whose output modules may also hand over), then
 * validated and redacted against a fixed schema that uses every type, every
 * check, bounds, enums, secrets and nesting to the limit. Besides memory
 * safety:
 *   - a refusal is INVALID_PARAMS with printable text, the same each time;
 *   - the redacted copy holds "***" at every secret and undeclared member
 *     and an equal copy of everything else;
 *   - the description matches the schema.
 * Then the same for a variant of the schema whose bounds, flags, checks and
 * types are bent by a hash of the input: a variant that passes
 * jb_schema_check() must behave like the fixed one; one that does not must
 * still be handled without a crash (validate, describe and redact bound
 * their recursion whatever the schema). */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jabali/schema.h>
#include <jabali/validate.h>

#include "jsoncheck.h"

#define DEPTH 16
#define LIMIT 4         /* SCHEMA_DEPTH_MAX in schema.c */
#define POOL 256

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- the schema --------------------------------------------------------- */

static const char *const modes[] = { "a", "bb", "ccc", NULL };
static const char *const many[] = {
        "alpha-alpha-alpha-alpha-alpha", "bravo-bravo-bravo-bravo-bravo", "charlie-charlie-charlie-charlie",
        "delta-delta-delta-delta-delta", "echo-echo-echo-echo-echo-echo", "foxtrot-foxtrot-foxtrot-foxtrot",
        "golf-golf-golf-golf-golf-golf", "hotel-hotel-hotel-hotel-hotel", "india-india-india-india-india",
        "juliett-juliett-juliett-juliett", "kilo-kilo-kilo-kilo-kilo-kilo", "lima-lima-lima-lima-lima-lima",
        "\xc3\xa9t\xc3\xa9", NULL,
};

static const jb_param token_item = JB_P_STRING("tag", JB_CHECK_TOKEN, 0, NULL);
static const jb_param domain_item = JB_P_STRING("alias", JB_CHECK_DOMAIN, 0, NULL);
static const jb_param port_item = JB_P_INT("port", JB_CHECK_PORT, 0, 0, 0, NULL);
static const jb_param secret_item = JB_P_STRLEN("secret", JB_CHECK_NONE, JB_SECRET, 0, 16, NULL);
static const jb_param int_item = JB_P_INT("cell", JB_CHECK_NONE, 0, -1000, 1000, NULL);
static const jb_param row_item = JB_P_ARRAY("row", &int_item, 0, 0, 4, NULL);
static const jb_param opt_item = JB_P_STRING("opt", JB_CHECK_MULTILINE, JB_SECRET, NULL);
static const jb_param ini_value = JB_P_STRLEN("value", JB_CHECK_NONE, 0, 0, 16, NULL);

static const jb_param opts_fields[] = {
        JB_P_INT("level", JB_CHECK_NONE, 0, 0, 9, NULL),
        JB_P_ARRAY("list", &opt_item, 0, 0, 3, NULL),
        JB_P_BOOL("on", JB_REQUIRED, NULL),
        JB_P_END
};

static const jb_param db_fields[] = {
        JB_P_STRING("name", JB_CHECK_TOKEN, JB_REQUIRED, "database"),
        JB_P_STRING("pass", JB_CHECK_NONE, JB_SECRET, NULL),
        JB_P_STRING("host", JB_CHECK_IP, 0, NULL),
        JB_P_OBJECT("opts", opts_fields, 0, NULL),
        JB_P_END
};

static const jb_param user_fields[] = {
        JB_P_STRING("name", JB_CHECK_USERNAME, JB_REQUIRED, NULL),
        JB_P_STRING("key", JB_CHECK_MULTILINE, JB_SECRET, NULL),
        JB_P_END
};

static const jb_param user_item = JB_P_OBJECT("user", user_fields, 0, NULL);

static const jb_param schema[] = {
        JB_P_STRING("domain", JB_CHECK_DOMAIN, 0, "the site's domain"),
        JB_P_STRING("user", JB_CHECK_USERNAME, 0, NULL),
        JB_P_STRING("local", JB_CHECK_EMAIL_LOCAL, 0, NULL),
        JB_P_STRING("email", JB_CHECK_EMAIL, 0, NULL),
        JB_P_STRING("ip", JB_CHECK_IP, 0, NULL),
        JB_P_STRING("ipv4", JB_CHECK_IPV4, 0, NULL),
        JB_P_STRING("ipv6", JB_CHECK_IPV6, 0, NULL),
        JB_P_INT("port", JB_CHECK_PORT, 0, 0, 0, "listen port"),
        JB_P_INT("high_port", JB_CHECK_PORT, 0, 1024, 2048, NULL),
        JB_P_INT("count", JB_CHECK_NONE, 0, -5, 5, NULL),
        JB_P_INT("big", JB_CHECK_NONE, 0, 0, 0, NULL),
        JB_P_INT("neg", JB_CHECK_NONE, 0, INT64_MIN, -1, NULL),
        JB_P_STRING("segment", JB_CHECK_PATH_SEGMENT, 0, NULL),
        JB_P_STRLEN("path", JB_CHECK_REL_PATH, 0, 1, 64, NULL),
        JB_P_ENUM("mode", modes, 0, "one of the modes"),
        JB_P_ENUM("long_enum", many, 0, NULL),
        JB_P_STRING("token", JB_CHECK_TOKEN, 0, NULL),
        JB_P_STRLEN("text", JB_CHECK_NONE, 0, 2, 8, NULL),
        JB_P_STRLEN("plain", JB_CHECK_NONE, 0, 0, 0, NULL),
        JB_P_STRING("body", JB_CHECK_MULTILINE, 0, NULL),
        JB_P_STRING("password", JB_CHECK_NONE, JB_SECRET, "redacted"),
        JB_P_INT("pin", JB_CHECK_NONE, JB_SECRET, 0, 9999, NULL),
        JB_P_BOOL("flag", 0, NULL),
        JB_P_ARRAY("tags", &token_item, 0, 0, 3, NULL),
        JB_P_ARRAY("aliases", &domain_item, 0, 0, 0, NULL),
        JB_P_ARRAY("ports", &port_item, 0, 1, 2, NULL),
        JB_P_ARRAY("matrix", &row_item, 0, 0, 4, NULL),
        JB_P_ARRAY("secrets", &secret_item, 0, 0, 8, NULL),
        JB_P_ARRAY("users", &user_item, 0, 0, 0, NULL),
        JB_P_OBJECT("db", db_fields, 0, NULL),
        JB_P_MAP("ini", JB_CHECK_TOKEN, &ini_value, 0, 0, 4, NULL),
        JB_P_MAP("env", JB_CHECK_NONE, &secret_item, 0, 0, 0, NULL),
        JB_P_MAP("groups", JB_CHECK_USERNAME, &user_item, 0, 1, 2, NULL),
        JB_P_STRING("id", JB_CHECK_TOKEN, JB_REQUIRED, "required, checked last"),
        JB_P_END
};

/* ---- a bent copy of it -------------------------------------------------- */

static jb_param pool[POOL];
static size_t pool_used;

static uint64_t rnd_state;

static uint64_t rnd(void) {
        /* xorshift64 */
        rnd_state ^= rnd_state << 13;
        rnd_state ^= rnd_state >> 7;
        rnd_state ^= rnd_state << 17;
        return rnd_state;
}

static const int64_t bounds[] = {
        0, 1, -1, 2, 3, 8, 63, 64, 253, 254, 255, 256, 1023, 1024, 4096, 65535, 65536,
        INT32_MAX, INT32_MIN, (int64_t) INT32_MAX + 1, INT64_MAX, INT64_MIN, INT64_MIN + 1, INT64_MAX - 1,
};

static void bend(jb_param *p) {
        uint64_t r = rnd();

        if (r % 4 == 0)
                p->min = bounds[(r >> 8) % (sizeof bounds / sizeof bounds[0])];
        if ((r >> 2) % 4 == 0)
                p->max = bounds[(r >> 16) % (sizeof bounds / sizeof bounds[0])];
        if ((r >> 24) % 8 == 0)
                p->flags ^= JB_SECRET;
        if ((r >> 27) % 8 == 0)
                p->flags ^= JB_REQUIRED;
        if ((r >> 30) % 16 == 0)
                p->check = (jb_check) ((r >> 34) % (_JB_CHECK_MAX + 2));
        if ((r >> 38) % 16 == 0)
                p->type = (jb_type) ((r >> 42) % 8);
        if ((r >> 45) % 32 == 0)
                p->item = NULL;
        if ((r >> 50) % 32 == 0)
                p->fields = NULL;
        if ((r >> 55) % 64 == 0)
                p->flags |= 1u << 5;
}

static jb_param *copy_one(const jb_param *src, unsigned depth);

/* A NULL-terminated copy of a level; NULL when the pool is spent. */
static jb_param *copy_level(const jb_param *src, unsigned depth) {
        size_t n = 0, at = pool_used;

        while (src[n].name)
                n++;
        if (pool_used + n + 1 > POOL)
                return NULL;
        pool_used += n + 1;
        for (size_t i = 0; i <= n; i++) {
                pool[at + i] = src[i];
                if (!src[i].name)
                        break;
                if (src[i].item)
                        pool[at + i].item = copy_one(src[i].item, depth + 1);
                if (src[i].fields)
                        pool[at + i].fields = copy_level(src[i].fields, depth + 1);
                bend(&pool[at + i]);
        }
        return &pool[at];
}

static jb_param *copy_one(const jb_param *src, unsigned depth) {
        jb_param *p;

        if (pool_used + 1 > POOL)
                return NULL;
        p = &pool[pool_used++];
        *p = *src;
        if (src->item)
                p->item = copy_one(src->item, depth + 1);
        if (src->fields)
                p->fields = copy_level(src->fields, depth + 1);
        bend(p);
        return p;
}

/* ---- oracles ------------------------------------------------------------ */

static const jb_param *find(const jb_param *level, const char *name) {
        for (const jb_param *p = level; p && p->name; p++)
                if (strcmp(p->name, name) == 0)
                        return p;
        return NULL;
}

static bool secret_below(const jb_param *p, unsigned depth) {
        if ((p->flags & JB_SECRET) || depth > LIMIT)
                return true;
        if ((p->type == JB_TYPE_ARRAY || p->type == JB_TYPE_MAP) && p->item)
                return secret_below(p->item, depth + 1);
        if (p->type == JB_TYPE_OBJECT && p->fields)
                for (const jb_param *f = p->fields; f->name; f++)
                        if (secret_below(f, depth + 1))
                                return true;
        return false;
}

/* json_object_equal(), except that NaN (json-c's lenient parser makes
 * one) equals itself: compared by its serialisation. */
static bool same(json_object *a, json_object *b) {
        const char *x, *y;

        if (json_object_equal(a, b))
                return true;
        x = json_object_to_json_string(a);
        y = json_object_to_json_string(b);
        return x && y && strcmp(x, y) == 0;
}

static bool is_stars(json_object *o) {
        return json_object_is_type(o, json_type_string) && strcmp(json_object_get_string(o), "***") == 0;
}

static void check_members(const jb_param *level, json_object *orig, json_object *red, unsigned depth);

static void check_value(const jb_param *p, json_object *orig, json_object *red, unsigned depth) {
        bool secret = (p->flags & JB_SECRET) || depth > LIMIT;

        if (!secret && p->type == JB_TYPE_OBJECT && p->fields && json_object_is_type(orig, json_type_object)) {
                check_members(p->fields, orig, red, depth + 1);
                return;
        }
        if (!secret && p->type == JB_TYPE_ARRAY && p->item && json_object_is_type(orig, json_type_array)) {
                size_t n = json_object_array_length(orig);

                if (!json_object_is_type(red, json_type_array) || json_object_array_length(red) != n)
                        abort();
                for (size_t i = 0; i < n; i++)
                        check_value(p->item, json_object_array_get_idx(orig, i),
                                    json_object_array_get_idx(red, i), depth + 1);
                return;
        }
        if (!secret && p->type == JB_TYPE_MAP && p->item && json_object_is_type(orig, json_type_object)) {
                /* the same names, each value redacted against the item */
                if (!json_object_is_type(red, json_type_object) ||
                    json_object_object_length(red) != json_object_object_length(orig))
                        abort();
                json_object_object_foreach(orig, key, val) {
                        json_object *r = NULL;

                        if (!json_object_object_get_ex(red, key, &r))
                                abort();
                        check_value(p->item, val, r, depth + 1);
                }
                return;
        }
        if (secret_below(p, depth)) {
                if (!is_stars(red))
                        abort();
                return;
        }
        if ((orig && red == orig) || !same(orig, red))
                abort();
}

static void check_members(const jb_param *level, json_object *orig, json_object *red, unsigned depth) {
        if (!json_object_is_type(red, json_type_object) ||
            json_object_object_length(red) != json_object_object_length(orig))
                abort();
        json_object_object_foreach(orig, key, val) {
                const jb_param *p = find(level, key);
                json_object *r = NULL;

                if (!json_object_object_get_ex(red, key, &r))
                        abort();
                if (!p) {
                        if (!is_stars(r))
                                abort();
                        continue;
                }
                check_value(p, val, r, depth);
        }
}

static void check_redact(const jb_param *s, json_object *obj) {
        json_object *red = jb_schema_redact(s, obj);

        if (!red)
                abort();
        if (!obj) {
                if (!json_object_is_type(red, json_type_object) || json_object_object_length(red) != 0)
                        abort();
        } else if (json_object_is_type(obj, json_type_object))
                check_members(s, obj, red, 1);
        else if (red == obj || !same(obj, red))
                abort();
        if (!json_object_to_json_string(red))
                abort();
        json_object_put(red);
}

/* A refusal: INVALID_PARAMS (INTERNAL only when `broken_ok`), a message
 * that can go into a response and the log as it is. */
static void check_refusal(const jb_err *err, bool broken_ok) {
        if (strcmp(err->code, "INVALID_PARAMS") != 0 && !(broken_ok && strcmp(err->code, "INTERNAL") == 0))
                abort();
        if (!err->msg[0] || !jb_valid_text(err->msg, strlen(err->msg), NULL))
                abort();
}

static void check_validate(const jb_param *s, json_object *obj, bool broken_ok) {
        jb_err e1 = JB_ERR_INIT, e2 = JB_ERR_INIT;
        int r1 = jb_schema_validate(s, obj, &e1);
        int r2 = jb_schema_validate(s, obj, &e2);

        if (r1 != r2 || (r1 != 0 && r1 != -1) || strcmp(e1.code, e2.code) != 0 || strcmp(e1.msg, e2.msg) != 0)
                abort();
        if (r1 < 0)
                check_refusal(&e1, broken_ok);
        else if (e1.code[0] || (obj && !json_object_is_type(obj, json_type_object)))
                abort();
        /* every required member of the top level is there */
        for (const jb_param *p = s; r1 == 0 && p->name; p++)
                if ((p->flags & JB_REQUIRED) && !json_object_object_get_ex(obj, p->name, NULL))
                        abort();
}

static void check_describe(const jb_param *s, json_object *d) {
        size_t n = 0;

        while (s[n].name)
                n++;
        if (!json_object_is_type(d, json_type_array) || json_object_array_length(d) != n)
                abort();
        for (size_t i = 0; i < n; i++) {
                json_object *o = json_object_array_get_idx(d, i), *v;

                if (!json_object_object_get_ex(o, "name", &v) || strcmp(json_object_get_string(v), s[i].name) != 0 ||
                    !json_object_object_get_ex(o, "type", &v) || !json_object_is_type(v, json_type_string) ||
                    !json_object_object_get_ex(o, "required", &v) ||
                    json_object_get_boolean(v) != !!(s[i].flags & JB_REQUIRED))
                        abort();
        }
}

/* ---- the run ------------------------------------------------------------ */

static json_object *parse(const char *doc, size_t size) {
        jb_err err = JB_ERR_INIT;
        json_object *o = json_parse_strict(doc, size, DEPTH, &err);
        json_tokener *tok;

        if (o || size > 4096)
                return o;
        /* json-c's own view of the bytes, for what modules may build */
        tok = json_tokener_new_ex(DEPTH);
        if (!tok)
                return NULL;
        o = json_tokener_parse_ex(tok, doc, (int) size);
        json_tokener_free(tok);
        return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static json_object *described;
        jb_err err = JB_ERR_INIT;
        const jb_param *bent;
        json_object *obj, *d;
        uint64_t h = 0xcbf29ce484222325u;

        if (!described) {
                if (jb_schema_check(schema, &err) < 0)
                        abort();
                described = jb_schema_describe(schema);
                check_describe(schema, described);
        }

        obj = parse((const char *) data, size);
        check_validate(schema, obj, false);
        check_redact(schema, obj);

        /* the bent schema */
        for (size_t i = 0; i < size; i++)
                h = (h ^ data[i]) * 0x100000001b3u;
        rnd_state = h | 1;
        pool_used = 0;
        bent = copy_level(schema, 1);
        if (bent) {
                bool ok = jb_schema_check(bent, &err) == 0;

                if (!ok && strcmp(err.code, "INTERNAL") != 0)
                        abort();
                check_validate(bent, obj, !ok);
                d = jb_schema_describe(bent);
                if (ok) {
                        check_describe(bent, d);
                        check_redact(bent, obj);
                } else {
                        json_object_put(jb_schema_redact(bent, obj));
                }
                json_object_put(d);
        }

        json_object_put(obj);
        return 0;
}
