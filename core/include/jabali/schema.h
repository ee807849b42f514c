/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef JABALI_SCHEMA_H
#define JABALI_SCHEMA_H

/* Declarative parameter schemas.
 *
 * Every action publishes the parameters it takes as a const array of
 * jb_param, terminated by an entry whose name is NULL. The master validates
 * a request's "params" object against it before the request reaches a
 * worker, and agent.describe publishes it; module settings in the config are
 * checked with the same machinery. A handler can therefore rely on every
 * parameter having the declared type, satisfying its check and bounds, and
 * on no undeclared parameter being present.
 *
 *   static const jb_param create_params[] = {
 *           JB_P_STRING("domain", JB_CHECK_DOMAIN, JB_REQUIRED, "the site's domain"),
 *           JB_P_INT("port", JB_CHECK_PORT, 0, 1, 65535, "listen port"),
 *           JB_P_ENUM("mode", modes, 0, "one of the modes"),
 *           JB_P_STRING("password", JB_CHECK_NONE, JB_REQUIRED | JB_SECRET, "redacted in audit"),
 *           JB_P_END
 *   };
 */

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include <jabali/error.h>
#include <jabali/visibility.h>

typedef enum jb_type {
        JB_TYPE_STRING = 1,
        JB_TYPE_INT,            /* JSON integer, within min..max (int64) */
        JB_TYPE_BOOL,
        JB_TYPE_ARRAY,          /* of `item` (one jb_param describing each element, name ignored) */
        JB_TYPE_OBJECT,         /* with `fields` (a nested NULL-terminated jb_param array) */
        JB_TYPE_MAP,            /* a JSON object whose member names are data: each name passes
                                 * `check` (and is 1..JB_MAP_KEY_MAX bytes), each value `item` */
} jb_type;

/* Named validators for strings (and JB_CHECK_PORT for ints). */
typedef enum jb_check {
        JB_CHECK_NONE = 0,      /* any valid UTF-8 without control characters, within the length bounds */
        JB_CHECK_DOMAIN,        /* RFC 1123 host name, LDH labels, IDNA A-labels only, <= 253 bytes, lower-cased input only */
        JB_CHECK_USERNAME,      /* Linux account name: [a-z_][a-z0-9_-]{0,31}, not all digits */
        JB_CHECK_EMAIL_LOCAL,   /* the local part of an address: dot-atom, <= 64 bytes */
        JB_CHECK_EMAIL,         /* local@domain with the two checks above */
        JB_CHECK_IP,            /* IPv4 dotted quad or IPv6 (inet_pton), no zone id */
        JB_CHECK_IPV4,
        JB_CHECK_IPV6,
        JB_CHECK_PORT,          /* ints only: 1..65535 */
        JB_CHECK_PATH_SEGMENT,  /* one path component: no '/', not "." or "..", no NUL or control chars, <= 255 bytes */
        JB_CHECK_REL_PATH,      /* relative path of path segments joined by '/', no empty, "." or ".." segment */
        JB_CHECK_ENUM,          /* one of `enum_values` */
        JB_CHECK_TOKEN,         /* [A-Za-z0-9_.-]+, not starting with '-' or '.': identifiers, versions */
        JB_CHECK_MULTILINE,     /* like NONE, but tab, LF and CR are allowed: file content, PEM blocks */
        _JB_CHECK_MAX
} jb_check;

/* jb_param.flags */
#define JB_REQUIRED (1u << 0)
#define JB_SECRET   (1u << 1)   /* never logged or audited; shown as "***" */

typedef struct jb_param {
        const char *name;               /* NULL terminates an array */
        jb_type type;
        jb_check check;
        unsigned flags;
        /* JB_TYPE_INT: value range. JB_TYPE_STRING: length range in bytes.
         * JB_TYPE_ARRAY, JB_TYPE_MAP: element (member) count range. Both 0
         * means the defaults: strings 0..4096 bytes, arrays and maps 0..1024
         * elements, ints int64. */
        int64_t min, max;
        const char *const *enum_values; /* JB_CHECK_ENUM: NULL-terminated */
        const struct jb_param *item;    /* JB_TYPE_ARRAY, JB_TYPE_MAP: each element or value */
        const struct jb_param *fields;  /* JB_TYPE_OBJECT */
        const char *doc;                /* one line for agent.describe */
} jb_param;

#define JB_STRING_MAX_DEFAULT 4096
#define JB_ARRAY_MAX_DEFAULT 1024
#define JB_MAP_MAX_DEFAULT 1024
/* The longest member name of a map, in bytes. */
#define JB_MAP_KEY_MAX 255

#define JB_P_STRING(n, chk, fl, d) \
        { .name = (n), .type = JB_TYPE_STRING, .check = (chk), .flags = (fl), .doc = (d) }
#define JB_P_STRLEN(n, chk, fl, lo, hi, d) \
        { .name = (n), .type = JB_TYPE_STRING, .check = (chk), .flags = (fl), .min = (lo), .max = (hi), .doc = (d) }
#define JB_P_INT(n, chk, fl, lo, hi, d) \
        { .name = (n), .type = JB_TYPE_INT, .check = (chk), .flags = (fl), .min = (lo), .max = (hi), .doc = (d) }
#define JB_P_BOOL(n, fl, d) \
        { .name = (n), .type = JB_TYPE_BOOL, .flags = (fl), .doc = (d) }
#define JB_P_ENUM(n, vals, fl, d) \
        { .name = (n), .type = JB_TYPE_STRING, .check = JB_CHECK_ENUM, .flags = (fl), .enum_values = (vals), .doc = (d) }
#define JB_P_ARRAY(n, it, fl, lo, hi, d) \
        { .name = (n), .type = JB_TYPE_ARRAY, .flags = (fl), .min = (lo), .max = (hi), .item = (it), .doc = (d) }
#define JB_P_OBJECT(n, flds, fl, d) \
        { .name = (n), .type = JB_TYPE_OBJECT, .flags = (fl), .fields = (flds), .doc = (d) }
/* A map: member names checked with `keychk` (a string check other than
 * multiline), values against `it`, lo..hi members. */
#define JB_P_MAP(n, keychk, it, fl, lo, hi, d) \
        { .name = (n), .type = JB_TYPE_MAP, .check = (keychk), .flags = (fl), .min = (lo), .max = (hi), \
          .item = (it), .doc = (d) }
#define JB_P_END { .name = NULL }

/* Validates `obj` (a JSON object; NULL is treated as {}) against the
 * NULL-terminated `schema`: unknown members, missing required members, wrong
 * types, failed checks and bounds are all INVALID_PARAMS, the message naming
 * the member by its path ("aliases[2]: not a valid domain name", a map's
 * member as "values['name']"). JSON null
 * is never an accepted value. Returns 0 or -1 with `err` set. */
JB_EXPORT int jb_schema_validate(const jb_param *schema, json_object *obj, jb_err *err);

/* Checks that a schema itself is well formed (names unique and valid,
 * bounds ordered, enum lists present, checks matching types, nesting depth
 * <= 4). The module loader calls it for every action; returns 0 or -1. */
JB_EXPORT int jb_schema_check(const jb_param *schema, jb_err *err);

/* The schema as JSON for agent.describe: an array of
 * {"name","type","required","secret","check","min","max","enum","item","fields","doc"}
 * with absent/default members left out (a map's "check" and "enum" are
 * those of its member names). Returns a new reference. */
JB_EXPORT json_object *jb_schema_describe(const jb_param *schema);

/* A deep copy of `obj` with every JB_SECRET member (at any depth), and every
 * member the schema does not declare, replaced by the string "***"; what the
 * audit log records. Returns a new reference. */
JB_EXPORT json_object *jb_schema_redact(const jb_param *schema, json_object *obj);

/* Name of a check ("domain", "username", ...) for describe and docs. */
JB_EXPORT const char *jb_check_name(jb_check check);

#endif
