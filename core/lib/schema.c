/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Declarative parameter schemas: validation of request params, the
 * self-check the module loader runs, the agent.describe rendering and the
 * redacted copy the audit log records. */

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <jabali/schema.h>
#include <jabali/validate.h>

#include "util.h"

/* Levels of parameters: the top level is 1, an object's fields or an
 * array's item one more. Every recursion below is bounded by it, including
 * over schemas that never went through jb_schema_check(). */
#define SCHEMA_DEPTH_MAX 4
#define NAME_LEN_MAX 64
#define PATH_LEN_MAX 256
#define SHOWN_KEY_MAX 64
#define PORT_MIN 1
#define PORT_MAX 65535

static const char *const check_names[_JB_CHECK_MAX] = {
        [JB_CHECK_NONE] = "none",
        [JB_CHECK_DOMAIN] = "domain",
        [JB_CHECK_USERNAME] = "username",
        [JB_CHECK_EMAIL_LOCAL] = "email_local",
        [JB_CHECK_EMAIL] = "email",
        [JB_CHECK_IP] = "ip",
        [JB_CHECK_IPV4] = "ipv4",
        [JB_CHECK_IPV6] = "ipv6",
        [JB_CHECK_PORT] = "port",
        [JB_CHECK_PATH_SEGMENT] = "path_segment",
        [JB_CHECK_REL_PATH] = "rel_path",
        [JB_CHECK_ENUM] = "enum",
        [JB_CHECK_TOKEN] = "token",
        [JB_CHECK_MULTILINE] = "multiline",
};

JB_EXPORT const char *jb_check_name(jb_check check) {
        if ((unsigned) check >= _JB_CHECK_MAX)
                return NULL;
        return check_names[check];
}

static const char *type_name(jb_type type) {
        switch (type) {
        case JB_TYPE_STRING: return "string";
        case JB_TYPE_INT:    return "int";
        case JB_TYPE_BOOL:   return "bool";
        case JB_TYPE_ARRAY:  return "array";
        case JB_TYPE_OBJECT: return "object";
        case JB_TYPE_MAP:    return "map";
        }
        return NULL;
}

static const char *type_with_article(jb_type type) {
        switch (type) {
        case JB_TYPE_STRING: return "a string";
        case JB_TYPE_INT:    return "an int";
        case JB_TYPE_BOOL:   return "a bool";
        case JB_TYPE_ARRAY:  return "an array";
        case JB_TYPE_OBJECT: return "an object";
        case JB_TYPE_MAP:    return "a map";
        }
        return "an invalid type";
}

/* The string checks that are plain validators; ENUM and PORT are not here. */
typedef bool (*validator_fn)(const char *s, size_t len, const char **why);

static const struct {
        validator_fn fn;
        const char *what;
} string_checks[_JB_CHECK_MAX] = {
        [JB_CHECK_DOMAIN]       = { jb_valid_domain,       "not a valid domain name" },
        [JB_CHECK_USERNAME]     = { jb_valid_username,     "not a valid user name" },
        [JB_CHECK_EMAIL_LOCAL]  = { jb_valid_email_local,  "not a valid email local part" },
        [JB_CHECK_EMAIL]        = { jb_valid_email,        "not a valid email address" },
        [JB_CHECK_IP]           = { jb_valid_ip,           "not a valid IP address" },
        [JB_CHECK_IPV4]         = { jb_valid_ipv4,         "not a valid IPv4 address" },
        [JB_CHECK_IPV6]         = { jb_valid_ipv6,         "not a valid IPv6 address" },
        [JB_CHECK_PATH_SEGMENT] = { jb_valid_path_segment, "not a valid path segment" },
        [JB_CHECK_REL_PATH]     = { jb_valid_rel_path,     "not a valid relative path" },
        [JB_CHECK_TOKEN]        = { jb_valid_token,        "not a valid token" },
};

/* Effective bounds: "both 0" means the type's defaults, and a port is
 * never outside 1..65535 whatever the schema says. */
static void param_bounds(const jb_param *p, int64_t *lo, int64_t *hi) {
        bool dflt = p->min == 0 && p->max == 0;

        *lo = p->min;
        *hi = p->max;
        switch (p->type) {
        case JB_TYPE_STRING:
                if (dflt)
                        *lo = 0, *hi = JB_STRING_MAX_DEFAULT;
                break;
        case JB_TYPE_ARRAY:
                if (dflt)
                        *lo = 0, *hi = JB_ARRAY_MAX_DEFAULT;
                break;
        case JB_TYPE_MAP:
                if (dflt)
                        *lo = 0, *hi = JB_MAP_MAX_DEFAULT;
                break;
        case JB_TYPE_INT:
                if (p->check == JB_CHECK_PORT) {
                        if (dflt || *lo < PORT_MIN)
                                *lo = PORT_MIN;
                        if (dflt || *hi > PORT_MAX)
                                *hi = PORT_MAX;
                } else if (dflt)
                        *lo = INT64_MIN, *hi = INT64_MAX;
                break;
        default:
                break;
        }
}

static const jb_param *find_param(const jb_param *schema, const char *name) {
        if (!schema)
                return NULL;
        for (const jb_param *p = schema; p->name; p++)
                if (streq(p->name, name))
                        return p;
        return NULL;
}

/* ---- member paths for messages ---------------------------------------- */

typedef struct path {
        char buf[PATH_LEN_MAX];
        size_t len;
} path;

/* Appends to the path, truncating silently: it only ever names a member in
 * a message. Returns the previous length for path_pop(). */
_printf_(2, 3)
static size_t path_push(path *p, const char *fmt, ...) {
        size_t old = p->len;
        va_list ap;
        int r;

        if (p->len >= sizeof p->buf - 1)
                return old;
        va_start(ap, fmt);
        r = vsnprintf(p->buf + p->len, sizeof p->buf - p->len, fmt, ap);
        va_end(ap);
        if (r < 0)
                p->buf[p->len] = '\0';
        else
                p->len = strlen(p->buf);
        return old;
}

static size_t path_push_name(path *p, const char *name) {
        return p->len == 0 ? path_push(p, "%s", name) : path_push(p, ".%s", name);
}

static void path_pop(path *p, size_t old) {
        p->len = old;
        p->buf[old] = '\0';
}

/* A member name from the request, fit for a message: printable ASCII only
 * and bounded, since it is hostile and ends up in logs and responses. */
static const char *shown_key(const char *key, char buf[static SHOWN_KEY_MAX + 4]) {
        size_t i;

        for (i = 0; i < SHOWN_KEY_MAX && key[i] != '\0'; i++) {
                unsigned char c = (unsigned char) key[i];

                buf[i] = (c >= 0x20 && c < 0x7F && c != '\'' && c != '\\') ? (char) c : '?';
        }
        if (key[i] != '\0') {
                memcpy(buf + i, "...", 3);
                i += 3;
        }
        buf[i] = '\0';
        return buf;
}

/* INVALID_PARAMS, the message led by the member's path. */
_printf_(3, 4)
static int invalid(jb_err *err, const path *p, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        (void) jb_err_setv(err, jb_code_name(JB_E_INVALID_PARAMS), fmt, ap);
        va_end(ap);
        jb_err_prefix(err, p->buf);
        return -1;
}

/* A malformed schema met during validation: the module's bug, not the caller's. */
static int broken(jb_err *err, const path *p, const char *what) {
        return jb_err_set(err, JB_E_INTERNAL, "schema of parameter '%s': %s", p->buf, what);
}

/* ---- validation -------------------------------------------------------- */

static int validate_members(const jb_param *schema, json_object *obj, path *p,
                            unsigned depth, jb_err *err);

static int enum_mismatch(const jb_param *prm, const path *p, jb_err *err) {
        char list[JB_ERR_MSG_MAX / 2];
        size_t used = 0;

        list[0] = '\0';
        for (const char *const *v = prm->enum_values; *v; v++) {
                const char *sep = used > 0 ? ", " : "";
                size_t need = strlen(sep) + strlen(*v) + 2;

                /* Always keep room for ", ..." and its NUL. */
                if (need > sizeof list - used - 6) {
                        (void) snprintf(list + used, sizeof list - used, "%s...", sep);
                        break;
                }
                (void) snprintf(list + used, sizeof list - used, "%s'%s'", sep, *v);
                used += need;
        }
        return invalid(err, p, "must be one of %s", list);
}

/* The text rule, then prm's check, on s[0..len) whose length is already
 * within bounds: a string value, or a map's member name. */
static int validate_text(const jb_param *prm, const char *s, size_t len, const path *p, jb_err *err) {
        const char *why = NULL;

        if (prm->check == JB_CHECK_MULTILINE)
                return jb_valid_multiline(s, len, &why) ? 0 : invalid(err, p, "not valid text: %s", why);
        if (!jb_valid_text(s, len, &why))
                return invalid(err, p, "not valid text: %s", why);

        if (prm->check == JB_CHECK_NONE)
                return 0;
        if (prm->check == JB_CHECK_ENUM) {
                if (!prm->enum_values)
                        return broken(err, p, "enum check without values");
                for (const char *const *e = prm->enum_values; *e; e++)
                        if (strlen(*e) == len && memcmp(*e, s, len) == 0)
                                return 0;
                return enum_mismatch(prm, p, err);
        }
        if ((unsigned) prm->check >= _JB_CHECK_MAX || !string_checks[prm->check].fn)
                return broken(err, p, "check does not apply to strings");
        if (!string_checks[prm->check].fn(s, len, &why))
                return invalid(err, p, "%s: %s", string_checks[prm->check].what, why);
        return 0;
}

static int validate_string(const jb_param *prm, json_object *v, const path *p, jb_err *err) {
        const char *s = json_object_get_string(v);
        int len = json_object_get_string_len(v);
        int64_t lo, hi;

        if (!s || len < 0)
                return invalid(err, p, "expected a string");

        param_bounds(prm, &lo, &hi);
        if (len < lo)
                return invalid(err, p, "too short (minimum %" PRId64 " bytes)", lo);
        if (len > hi)
                return invalid(err, p, "too long (maximum %" PRId64 " bytes)", hi);
        return validate_text(prm, s, (size_t) len, p, err);
}

static int validate_int(const jb_param *prm, json_object *v, const path *p, jb_err *err) {
        int64_t lo, hi, n;

        if (prm->check != JB_CHECK_NONE && prm->check != JB_CHECK_PORT)
                return broken(err, p, "check does not apply to integers");

        param_bounds(prm, &lo, &hi);
        n = json_object_get_int64(v);
        /* json-c keeps integers above INT64_MAX as uint64 and get_int64()
         * clamps them to INT64_MAX: tell the two apart. */
        if (n == INT64_MAX && json_object_get_uint64(v) != (uint64_t) INT64_MAX)
                return invalid(err, p, "must be between %" PRId64 " and %" PRId64, lo, hi);
        if (n < lo || n > hi)
                return invalid(err, p, "must be between %" PRId64 " and %" PRId64, lo, hi);
        return 0;
}

static int validate_value(const jb_param *prm, json_object *v, path *p,
                          unsigned depth, jb_err *err);

static int validate_array(const jb_param *prm, json_object *v, path *p,
                          unsigned depth, jb_err *err) {
        size_t n = json_object_array_length(v);
        int64_t lo, hi;

        if (!prm->item)
                return broken(err, p, "array without an item");

        param_bounds(prm, &lo, &hi);
        if (lo > 0 && n < (uint64_t) lo)
                return invalid(err, p, "too few elements (minimum %" PRId64 ")", lo);
        if (hi < 0 || n > (uint64_t) hi)
                return invalid(err, p, "too many elements (maximum %" PRId64 ")", hi);

        for (size_t i = 0; i < n; i++) {
                size_t old = path_push(p, "[%zu]", i);
                int r = validate_value(prm->item, json_object_array_get_idx(v, i), p, depth + 1, err);

                path_pop(p, old);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* A map's member name: hostile data, bounded, then the map's check. The
 * message names the map, and the member only in its printable form. */
static int validate_key(const jb_param *prm, const char *key, const path *p, jb_err *err) {
        char shown[SHOWN_KEY_MAX + 4];
        size_t len = strlen(key);
        jb_err e = JB_ERR_INIT;

        if (len == 0)
                return invalid(err, p, "empty member name");
        if (len > JB_MAP_KEY_MAX)
                return invalid(err, p, "member name '%s' too long (maximum %d bytes)", shown_key(key, shown),
                               JB_MAP_KEY_MAX);
        if (validate_text(prm, key, len, &(path){ .buf = "", .len = 0 }, &e) < 0) {
                if (jb_code_from_name(e.code) != JB_E_INVALID_PARAMS)
                        return broken(err, p, "its check does not apply to member names");
                return invalid(err, p, "member name '%s': %s", shown_key(key, shown), e.msg);
        }
        return 0;
}

static int validate_map(const jb_param *prm, json_object *v, path *p, unsigned depth, jb_err *err) {
        size_t n = (size_t) json_object_object_length(v);
        int64_t lo, hi;

        if (!prm->item)
                return broken(err, p, "map without an item");

        param_bounds(prm, &lo, &hi);
        if (lo > 0 && n < (uint64_t) lo)
                return invalid(err, p, "too few members (minimum %" PRId64 ")", lo);
        if (hi < 0 || n > (uint64_t) hi)
                return invalid(err, p, "too many members (maximum %" PRId64 ")", hi);

        json_object_object_foreach(v, key, val) {
                char shown[SHOWN_KEY_MAX + 4];
                size_t old;
                int r;

                if (validate_key(prm, key, p, err) < 0)
                        return -1;
                old = path_push(p, "['%s']", shown_key(key, shown));
                r = validate_value(prm->item, val, p, depth + 1, err);
                path_pop(p, old);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int validate_value(const jb_param *prm, json_object *v, path *p,
                          unsigned depth, jb_err *err) {
        if (depth > SCHEMA_DEPTH_MAX)
                return broken(err, p, "nested deeper than 4 levels");
        if (!v)
                return invalid(err, p, "null is not an accepted value");

        switch (prm->type) {
        case JB_TYPE_STRING:
                if (json_object_get_type(v) != json_type_string)
                        return invalid(err, p, "expected a string");
                return validate_string(prm, v, p, err);
        case JB_TYPE_INT:
                if (json_object_get_type(v) != json_type_int)
                        return invalid(err, p, "expected an integer");
                return validate_int(prm, v, p, err);
        case JB_TYPE_BOOL:
                if (json_object_get_type(v) != json_type_boolean)
                        return invalid(err, p, "expected a boolean");
                return 0;
        case JB_TYPE_ARRAY:
                if (json_object_get_type(v) != json_type_array)
                        return invalid(err, p, "expected an array");
                return validate_array(prm, v, p, depth, err);
        case JB_TYPE_OBJECT:
                if (json_object_get_type(v) != json_type_object)
                        return invalid(err, p, "expected an object");
                if (!prm->fields)
                        return broken(err, p, "object without fields");
                return validate_members(prm->fields, v, p, depth + 1, err);
        case JB_TYPE_MAP:
                if (json_object_get_type(v) != json_type_object)
                        return invalid(err, p, "expected an object");
                return validate_map(prm, v, p, depth, err);
        }
        return broken(err, p, "invalid type");
}

static int validate_members(const jb_param *schema, json_object *obj, path *p,
                            unsigned depth, jb_err *err) {
        if (depth > SCHEMA_DEPTH_MAX)
                return broken(err, p, "nested deeper than 4 levels");

        /* Schema order first, so that the reported error does not depend
         * on the order of the request's members. */
        for (const jb_param *prm = schema; prm && prm->name; prm++) {
                json_object *v = NULL;
                size_t old;
                int r;

                if (!json_object_object_get_ex(obj, prm->name, &v)) {
                        if (prm->flags & JB_REQUIRED)
                                return invalid(err, p, "missing required parameter '%s'", prm->name);
                        continue;
                }
                old = path_push_name(p, prm->name);
                r = validate_value(prm, v, p, depth, err);
                path_pop(p, old);
                if (r < 0)
                        return r;
        }

        if (!obj)
                return 0;
        json_object_object_foreach(obj, key, val) {
                char shown[SHOWN_KEY_MAX + 4];

                (void) val;
                if (!find_param(schema, key))
                        return invalid(err, p, "unknown parameter '%s'", shown_key(key, shown));
        }
        return 0;
}

JB_EXPORT int jb_schema_validate(const jb_param *schema, json_object *obj, jb_err *err) {
        path p = { .buf = "", .len = 0 };

        if (obj && json_object_get_type(obj) != json_type_object)
                return jb_err_set(err, JB_E_INVALID_PARAMS, "parameters must be a JSON object");
        /* NULL is {}: only the required checks can fail. */
        return validate_members(schema, obj, &p, 1, err);
}

/* ---- schema self-check ------------------------------------------------- */

static bool valid_name(const char *name) {
        size_t i;

        if (!name || !(name[0] >= 'a' && name[0] <= 'z'))
                return false;
        for (i = 1; name[i] != '\0'; i++) {
                char c = name[i];

                if (i >= NAME_LEN_MAX)
                        return false;
                if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
                        return false;
        }
        return true;
}

_printf_(3, 4)
static int schema_bug(jb_err *err, const path *p, const char *fmt, ...) {
        char what[JB_ERR_MSG_MAX];
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(what, sizeof what, fmt, ap);
        va_end(ap);
        return jb_err_set(err, JB_E_INTERNAL, "schema: parameter '%s': %s", p->buf, what);
}

static int check_level(const jb_param *schema, path *p, unsigned depth, jb_err *err);

static bool check_fits_type(jb_type type, jb_check check) {
        switch (type) {
        case JB_TYPE_STRING:
                return check != JB_CHECK_PORT;
        case JB_TYPE_INT:
                return check == JB_CHECK_NONE || check == JB_CHECK_PORT;
        case JB_TYPE_MAP:
                /* the check of the member names: one line, a string check */
                return check != JB_CHECK_PORT && check != JB_CHECK_MULTILINE;
        default:
                return check == JB_CHECK_NONE;
        }
}

static int check_enum(const jb_param *prm, const path *p, jb_err *err) {
        if (prm->check != JB_CHECK_ENUM) {
                if (prm->enum_values)
                        return schema_bug(err, p, "enum values without the enum check");
                return 0;
        }
        if (!prm->enum_values || !prm->enum_values[0])
                return schema_bug(err, p, "the enum check needs a non-empty list of values");
        for (const char *const *e = prm->enum_values; *e; e++) {
                if ((*e)[0] == '\0' || !jb_valid_text(*e, strlen(*e), NULL))
                        return schema_bug(err, p, "enum value %zu is empty or not valid text",
                                          (size_t) (e - prm->enum_values));
                for (const char *const *f = prm->enum_values; f < e; f++)
                        if (streq(*e, *f))
                                return schema_bug(err, p, "enum value '%s' listed twice", *e);
        }
        return 0;
}

static int check_bounds(const jb_param *prm, const path *p, jb_err *err) {
        bool dflt = prm->min == 0 && prm->max == 0;

        if (prm->min > prm->max)
                return schema_bug(err, p, "min %" PRId64 " is greater than max %" PRId64,
                                  prm->min, prm->max);
        switch (prm->type) {
        case JB_TYPE_STRING:
        case JB_TYPE_ARRAY:
        case JB_TYPE_MAP:
                if (prm->min < 0)
                        return schema_bug(err, p, "negative min");
                break;
        case JB_TYPE_INT:
                if (prm->check == JB_CHECK_PORT && !dflt &&
                    (prm->min < PORT_MIN || prm->max > PORT_MAX))
                        return schema_bug(err, p, "port bounds outside 1..65535");
                break;
        default:
                if (!dflt)
                        return schema_bug(err, p, "bounds do not apply to %s", type_with_article(prm->type));
                break;
        }
        return 0;
}

static int check_param(const jb_param *prm, path *p, unsigned depth, bool is_item, jb_err *err) {
        int r;

        if (depth > SCHEMA_DEPTH_MAX)
                return schema_bug(err, p, "nested deeper than 4 levels");
        if (!type_name(prm->type))
                return schema_bug(err, p, "invalid type %d", (int) prm->type);
        if (prm->flags & ~(JB_REQUIRED | JB_SECRET))
                return schema_bug(err, p, "unknown flags 0x%x", prm->flags);
        if (is_item && (prm->flags & JB_REQUIRED))
                return schema_bug(err, p, "an array item cannot be required");
        if ((unsigned) prm->check >= _JB_CHECK_MAX)
                return schema_bug(err, p, "invalid check %d", (int) prm->check);
        if (!check_fits_type(prm->type, prm->check))
                return schema_bug(err, p, "check '%s' does not apply to %s",
                                  jb_check_name(prm->check), type_with_article(prm->type));

        r = check_enum(prm, p, err);
        if (r < 0)
                return r;
        r = check_bounds(prm, p, err);
        if (r < 0)
                return r;

        if (prm->type == JB_TYPE_ARRAY || prm->type == JB_TYPE_MAP) {
                size_t old;

                if (!prm->item)
                        return schema_bug(err, p, "%s needs an item", type_with_article(prm->type));
                old = path_push(p, prm->type == JB_TYPE_ARRAY ? "[]" : "['']");
                r = check_param(prm->item, p, depth + 1, true, err);
                path_pop(p, old);
                if (r < 0)
                        return r;
        } else if (prm->item)
                return schema_bug(err, p, "item only applies to an array or a map");

        if (prm->type == JB_TYPE_OBJECT) {
                if (!prm->fields)
                        return schema_bug(err, p, "an object needs fields");
                r = check_level(prm->fields, p, depth + 1, err);
                if (r < 0)
                        return r;
        } else if (prm->fields)
                return schema_bug(err, p, "fields only apply to an object");

        return 0;
}

static int check_level(const jb_param *schema, path *p, unsigned depth, jb_err *err) {
        if (depth > SCHEMA_DEPTH_MAX)
                return schema_bug(err, p, "nested deeper than 4 levels");

        for (const jb_param *prm = schema; prm->name; prm++) {
                size_t old;
                int r;

                if (!valid_name(prm->name)) {
                        char shown[SHOWN_KEY_MAX + 4];

                        old = path_push_name(p, shown_key(prm->name, shown));
                        r = schema_bug(err, p, "invalid name (want [a-z][a-z0-9_]*, at most %d bytes)",
                                       NAME_LEN_MAX);
                        path_pop(p, old);
                        return r;
                }
                old = path_push_name(p, prm->name);
                for (const jb_param *q = schema; q < prm; q++)
                        if (streq(q->name, prm->name)) {
                                r = schema_bug(err, p, "declared twice");
                                path_pop(p, old);
                                return r;
                        }
                r = check_param(prm, p, depth, false, err);
                path_pop(p, old);
                if (r < 0)
                        return r;
        }
        return 0;
}

JB_EXPORT int jb_schema_check(const jb_param *schema, jb_err *err) {
        path p = { .buf = "", .len = 0 };

        if (!schema)
                return 0;
        return check_level(schema, &p, 1, err);
}

/* ---- describe ---------------------------------------------------------- */

/* Adds `val` under `key`, taking the reference in every case. */
static int add(json_object *obj, const char *key, json_object *val) {
        if (!val)
                return -1;
        if (json_object_object_add(obj, key, val) < 0) {
                json_object_put(val);
                return -1;
        }
        return 0;
}

static json_object *describe_level(const jb_param *schema, unsigned depth);

static json_object *describe_enum(const char *const *values) {
        json_object *a = json_object_new_array();

        if (!a)
                return NULL;
        for (const char *const *e = values; e && *e; e++) {
                json_object *s = json_object_new_string(*e);

                if (!s || json_object_array_add(a, s) < 0) {
                        json_object_put(s);
                        json_object_put(a);
                        return NULL;
                }
        }
        return a;
}

static json_object *describe_param(const jb_param *prm, unsigned depth, bool is_item) {
        json_object *o;
        int64_t lo, hi;

        if (depth > SCHEMA_DEPTH_MAX || !type_name(prm->type))
                return NULL;
        o = json_object_new_object();
        if (!o)
                return NULL;

        /* An item's name is ignored everywhere, so it is not published. */
        if (!is_item && add(o, "name", json_object_new_string(prm->name)) < 0)
                goto fail;
        if (add(o, "type", json_object_new_string(type_name(prm->type))) < 0)
                goto fail;
        if (add(o, "required", json_object_new_boolean(!!(prm->flags & JB_REQUIRED))) < 0)
                goto fail;
        if ((prm->flags & JB_SECRET) && add(o, "secret", json_object_new_boolean(1)) < 0)
                goto fail;
        if (prm->check != JB_CHECK_NONE) {
                const char *cn = jb_check_name(prm->check);

                if (!cn || add(o, "check", json_object_new_string(cn)) < 0)
                        goto fail;
        }
        if (!(prm->min == 0 && prm->max == 0) ||
            (prm->type == JB_TYPE_INT && prm->check == JB_CHECK_PORT)) {
                param_bounds(prm, &lo, &hi);
                if (add(o, "min", json_object_new_int64(lo)) < 0 ||
                    add(o, "max", json_object_new_int64(hi)) < 0)
                        goto fail;
        }
        if (prm->check == JB_CHECK_ENUM && add(o, "enum", describe_enum(prm->enum_values)) < 0)
                goto fail;
        if ((prm->type == JB_TYPE_ARRAY || prm->type == JB_TYPE_MAP) &&
            (!prm->item || add(o, "item", describe_param(prm->item, depth + 1, true)) < 0))
                goto fail;
        if (prm->type == JB_TYPE_OBJECT &&
            (!prm->fields || add(o, "fields", describe_level(prm->fields, depth + 1)) < 0))
                goto fail;
        if (prm->doc && add(o, "doc", json_object_new_string(prm->doc)) < 0)
                goto fail;
        return o;

fail:
        json_object_put(o);
        return NULL;
}

static json_object *describe_level(const jb_param *schema, unsigned depth) {
        json_object *a;

        if (depth > SCHEMA_DEPTH_MAX)
                return NULL;
        a = json_object_new_array();
        if (!a)
                return NULL;
        for (const jb_param *prm = schema; prm && prm->name; prm++) {
                json_object *o = describe_param(prm, depth, false);

                if (!o || json_object_array_add(a, o) < 0) {
                        json_object_put(o);
                        json_object_put(a);
                        return NULL;
                }
        }
        return a;
}

JB_EXPORT json_object *jb_schema_describe(const jb_param *schema) {
        return describe_level(schema, 1);
}

/* ---- redaction --------------------------------------------------------- */

/* *ret is a new reference, or NULL for a JSON null. */
static int copy_value(json_object *src, json_object **ret) {
        *ret = NULL;
        if (!src)
                return 0;
        return json_object_deep_copy(src, ret, NULL) < 0 ? -1 : 0;
}

static int redact_members(const jb_param *schema, json_object *obj, unsigned depth,
                          json_object **ret);
static int redact_value(const jb_param *prm, json_object *v, unsigned depth, json_object **ret);

/* True when a secret lies anywhere beneath `prm`; bounded like the rest. */
static bool has_secret(const jb_param *prm, unsigned depth) {
        if ((prm->flags & JB_SECRET) || depth > SCHEMA_DEPTH_MAX)
                return true;
        if ((prm->type == JB_TYPE_ARRAY || prm->type == JB_TYPE_MAP) && prm->item)
                return has_secret(prm->item, depth + 1);
        if (prm->type == JB_TYPE_OBJECT && prm->fields)
                for (const jb_param *f = prm->fields; f->name; f++)
                        if (has_secret(f, depth + 1))
                                return true;
        return false;
}

static int redact_array(const jb_param *item, json_object *v, unsigned depth, json_object **ret) {
        json_object *a = json_object_new_array();

        *ret = NULL;
        if (!a)
                return -1;
        for (size_t i = 0, n = json_object_array_length(v); i < n; i++) {
                json_object *e;

                if (redact_value(item, json_object_array_get_idx(v, i), depth, &e) < 0 ||
                    json_object_array_add(a, e) < 0) {
                        json_object_put(e);
                        json_object_put(a);
                        return -1;
                }
        }
        *ret = a;
        return 0;
}

/* Every value redacted against the one item; the names are kept (a
 * refused request's hostile names are recorded like undeclared members'). */
static int redact_map(const jb_param *item, json_object *v, unsigned depth, json_object **ret) {
        json_object *o = json_object_new_object();

        *ret = NULL;
        if (!o)
                return -1;
        json_object_object_foreach(v, key, val) {
                json_object *c;

                if (redact_value(item, val, depth, &c) < 0 || json_object_object_add(o, key, c) < 0) {
                        json_object_put(c);
                        json_object_put(o);
                        return -1;
                }
        }
        *ret = o;
        return 0;
}

static int redact_value(const jb_param *prm, json_object *v, unsigned depth, json_object **ret) {
        /* Past the depth limit the schema cannot vouch for anything. */
        bool secret = (prm->flags & JB_SECRET) || depth > SCHEMA_DEPTH_MAX;

        *ret = NULL;
        if (!secret && prm->type == JB_TYPE_OBJECT && prm->fields &&
            json_object_is_type(v, json_type_object))
                return redact_members(prm->fields, v, depth + 1, ret);
        if (!secret && prm->type == JB_TYPE_ARRAY && prm->item &&
            json_object_is_type(v, json_type_array))
                return redact_array(prm->item, v, depth + 1, ret);
        if (!secret && prm->type == JB_TYPE_MAP && prm->item &&
            json_object_is_type(v, json_type_object))
                return redact_map(prm->item, v, depth + 1, ret);

        /* A secret, or a container holding one that arrived in another
         * shape: such a request is refused, but it is audited too. */
        if (has_secret(prm, depth)) {
                *ret = json_object_new_string("***");
                return *ret ? 0 : -1;
        }
        return copy_value(v, ret);
}

static int redact_members(const jb_param *schema, json_object *obj, unsigned depth,
                          json_object **ret) {
        json_object *o = json_object_new_object();

        *ret = NULL;
        if (!o)
                return -1;
        json_object_object_foreach(obj, key, val) {
                const jb_param *prm = find_param(schema, key);
                json_object *c;
                int r;

                /* A member the schema does not know cannot be vouched for:
                 * a misspelt "pasword" must not reach the log in clear. */
                if (prm)
                        r = redact_value(prm, val, depth, &c);
                else
                        r = (c = json_object_new_string("***")) ? 0 : -1;
                if (r < 0 || json_object_object_add(o, key, c) < 0) {
                        json_object_put(c);
                        json_object_put(o);
                        return -1;
                }
        }
        *ret = o;
        return 0;
}

JB_EXPORT json_object *jb_schema_redact(const jb_param *schema, json_object *obj) {
        json_object *ret = NULL;

        if (!obj)
                return json_object_new_object();
        if (!json_object_is_type(obj, json_type_object)) {
                if (copy_value(obj, &ret) < 0)
                        return NULL;
                return ret;
        }
        if (redact_members(schema, obj, 1, &ret) < 0)
                return NULL;
        return ret;
}
