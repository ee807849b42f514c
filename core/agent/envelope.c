/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The request and response envelopes (envelope.h). */

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "jsoncheck.h"
#include "util.h"

#define SERIALIZE_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* How much of an offending key an error message quotes. */
#define SHOWN_KEY_MAX 64

static bool is_printable_ascii(const char *s, size_t len) {
        for (size_t i = 0; i < len; i++)
                if ((unsigned char) s[i] < 0x20 || (unsigned char) s[i] > 0x7E)
                        return false;
        return true;
}

static bool valid_request_id(const char *s, size_t len) {
        return len >= 1 && len <= REQUEST_ID_MAX && is_printable_ascii(s, len);
}

static bool valid_action(const char *s, size_t len) {
        if (len < 1 || len > ACTION_NAME_MAX)
                return false;
        for (size_t i = 0; i < len; i++) {
                char ch = s[i];
                bool ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                        (i > 0 && (ch == '_' || ch == '.' || ch == '-'));
                if (!ok)
                        return false;
        }
        return true;
}

/* A key as an error message may quote it: hostile keys can be long or hold
 * any character, and a message cut inside a UTF-8 sequence would make the
 * error response itself invalid, so only printable ASCII is shown. */
static const char *shown_key(const char *key, char out[static SHOWN_KEY_MAX + 4]) {
        size_t n = strlen(key), i;

        for (i = 0; i < n && i < SHOWN_KEY_MAX; i++) {
                unsigned char ch = (unsigned char) key[i];
                out[i] = ch >= 0x20 && ch <= 0x7E ? (char) ch : '?';
        }
        if (n > SHOWN_KEY_MAX) {
                memcpy(out + i, "...", 3);
                i += 3;
        }
        out[i] = '\0';
        return out;
}

static int parse_request_id(request *r, jb_err *err) {
        json_object *v;
        const char *s;
        size_t n;

        if (!json_object_object_get_ex(r->root, "request_id", &v))
                return jb_err_set(err, JB_E_INVALID_REQUEST, "request_id is required");
        if (!json_object_is_type(v, json_type_string))
                return jb_err_set(err, JB_E_INVALID_REQUEST, "request_id must be a string");
        s = json_object_get_string(v);
        n = (size_t) json_object_get_string_len(v);
        if (n < 1 || n > REQUEST_ID_MAX)
                return jb_err_set(err, JB_E_INVALID_REQUEST, "request_id must be 1..%u bytes", REQUEST_ID_MAX);
        if (!is_printable_ascii(s, n))
                return jb_err_set(err, JB_E_INVALID_REQUEST, "request_id must be printable ASCII");
        r->request_id = s;
        return 0;
}

static int check_members(json_object *root, jb_err *err) {
        static const char *const known[] = {
                "action", "params", "request_id", "dry_run", "timeout_ms", "actor",
        };

        json_object_object_foreach(root, key, val) {
                bool found = false;
                char shown[SHOWN_KEY_MAX + 4];

                (void) val;
                for (size_t i = 0; i < ELEMENTSOF(known) && !found; i++)
                        found = streq(key, known[i]);
                if (!found)
                        return jb_err_set(err, JB_E_INVALID_REQUEST, "unknown key \"%s\"",
                                          shown_key(key, shown));
        }
        return 0;
}

static int parse_action(request *r, jb_err *err) {
        json_object *v;
        const char *s;

        if (!json_object_object_get_ex(r->root, "action", &v))
                return jb_err_set(err, JB_E_INVALID_REQUEST, "action is required");
        if (!json_object_is_type(v, json_type_string))
                return jb_err_set(err, JB_E_INVALID_REQUEST, "action must be a string");
        s = json_object_get_string(v);
        if (!valid_action(s, (size_t) json_object_get_string_len(v)))
                return jb_err_set(err, JB_E_INVALID_REQUEST,
                                  "action must be 1..%u bytes matching [a-z0-9][a-z0-9_.-]*",
                                  ACTION_NAME_MAX);
        r->action = s;
        return 0;
}

static int parse_params(request *r, jb_err *err) {
        json_object *v;

        if (json_object_object_get_ex(r->root, "params", &v)) {
                if (!json_object_is_type(v, json_type_object))
                        return jb_err_set(err, JB_E_INVALID_REQUEST, "params must be an object");
                r->params = v;
                return 0;
        }
        v = json_object_new_object();
        if (!v)
                return jb_err_set(err, JB_E_INTERNAL, "out of memory");
        /* root takes the reference */
        if (json_object_object_add(r->root, "params", v) < 0) {
                json_object_put(v);
                return jb_err_set(err, JB_E_INTERNAL, "out of memory");
        }
        r->params = v;
        return 0;
}

static int parse_dry_run(request *r, jb_err *err) {
        json_object *v;

        if (!json_object_object_get_ex(r->root, "dry_run", &v))
                return 0;
        if (!json_object_is_type(v, json_type_boolean))
                return jb_err_set(err, JB_E_INVALID_REQUEST, "dry_run must be a boolean");
        r->dry_run = json_object_get_boolean(v);
        return 0;
}

static int parse_timeout(request *r, const struct envelope_limits *lim, jb_err *err) {
        json_object *v;
        int64_t t;

        if (!json_object_object_get_ex(r->root, "timeout_ms", &v))
                return 0;
        if (!json_object_is_type(v, json_type_int))
                return jb_err_set(err, JB_E_INVALID_REQUEST, "timeout_ms must be an integer");
        /* Exact: strict JSON keeps integers within int64. */
        t = json_object_get_int64(v);
        if (t < 1 || t > (int64_t) lim->max_timeout_ms)
                return jb_err_set(err, JB_E_INVALID_REQUEST, "timeout_ms must be 1..%" PRIu32,
                                  lim->max_timeout_ms);
        r->timeout_ms = (uint32_t) t;
        return 0;
}

static bool has_control_char(const char *s, size_t len) {
        for (size_t i = 0; i < len; i++)
                if ((unsigned char) s[i] < 0x20 || (unsigned char) s[i] == 0x7F)
                        return true;
        return false;
}

static int parse_actor(request *r, jb_err *err) {
        json_object *v;

        if (!json_object_object_get_ex(r->root, "actor", &v))
                return 0;
        if (!json_object_is_type(v, json_type_object))
                return jb_err_set(err, JB_E_INVALID_REQUEST, "actor must be an object");
        if (json_object_object_length(v) > (int) ACTOR_MEMBERS_MAX)
                return jb_err_set(err, JB_E_INVALID_REQUEST, "actor has more than %u members",
                                  ACTOR_MEMBERS_MAX);

        json_object_object_foreach(v, key, val) {
                char shown[SHOWN_KEY_MAX + 4];
                size_t n = strlen(key);

                if (n < 1 || n > ACTOR_KEY_MAX || !is_printable_ascii(key, n))
                        return jb_err_set(err, JB_E_INVALID_REQUEST,
                                          "actor key \"%s\" must be 1..%u bytes of printable ASCII",
                                          shown_key(key, shown), ACTOR_KEY_MAX);
                switch (json_object_get_type(val)) {
                case json_type_int:
                case json_type_boolean:
                        break;
                case json_type_string:
                        n = (size_t) json_object_get_string_len(val);
                        if (n > ACTOR_STRING_MAX)
                                return jb_err_set(err, JB_E_INVALID_REQUEST,
                                                  "actor.%s is longer than %u bytes", key, ACTOR_STRING_MAX);
                        if (has_control_char(json_object_get_string(val), n))
                                return jb_err_set(err, JB_E_INVALID_REQUEST,
                                                  "actor.%s contains a control character", key);
                        break;
                default:
                        return jb_err_set(err, JB_E_INVALID_REQUEST,
                                          "actor.%s must be a string, an integer or a boolean", key);
                }
        }
        r->actor = v;
        return 0;
}

int request_parse(const char *buf, size_t len, const struct envelope_limits *lim,
                  request *ret, jb_err *err) {
        size_t i = 0;

        *ret = (request) {};
        if (!lim)
                return jb_err_set(err, JB_E_INTERNAL, "no envelope limits");

        /* Strict JSON that is not an object is an envelope error, not a
         * JSON one (json-c could not even return a top-level null). */
        while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\n' || buf[i] == '\r'))
                i++;
        if (i >= len || buf[i] != '{') {
                if (json_check_strict(buf, len, lim->max_depth, err) < 0)
                        return -1;
                return jb_err_set(err, JB_E_INVALID_REQUEST, "request is not a JSON object");
        }

        ret->root = json_parse_strict(buf, len, lim->max_depth, err);
        if (!ret->root)
                return -1;
        if (!json_object_is_type(ret->root, json_type_object))
                return jb_err_set(err, JB_E_INVALID_REQUEST, "request is not a JSON object");

        if (parse_request_id(ret, err) < 0 ||
            check_members(ret->root, err) < 0 ||
            parse_action(ret, err) < 0 ||
            parse_params(ret, err) < 0 ||
            parse_dry_run(ret, err) < 0 ||
            parse_timeout(ret, lim, err) < 0 ||
            parse_actor(ret, err) < 0)
                return -1;
        return 0;
}

void request_done(request *r) {
        if (!r)
                return;
        json_object_put(r->root);
        *r = (request) {};
}

/* The request_id member of a response: a string, or JSON null (NULL) for an
 * absent or malformed one. Returns -1 when out of memory. */
static int request_id_value(const char *request_id, json_object **ret) {
        *ret = NULL;
        if (!request_id || !valid_request_id(request_id, strlen(request_id)))
                return 0;
        *ret = json_object_new_string(request_id);
        return *ret ? 0 : -1;
}

/* Adds key → v, taking v's reference. v == NULL is JSON null when
 * `nullable`, else the out-of-memory result of the constructor. */
static int add(json_object *o, const char *key, json_object *v, bool nullable) {
        if (!v && !nullable)
                return -1;
        if (json_object_object_add(o, key, v) < 0) {
                json_object_put(v);
                return -1;
        }
        return 0;
}

static char *serialize(json_object *o, size_t *ret_len) {
        const char *s;
        size_t n;
        char *out;

        s = json_object_to_json_string_length(o, SERIALIZE_FLAGS, &n);
        if (!s)
                return NULL;
        out = malloc(n + 1);
        if (!out)
                return NULL;
        memcpy(out, s, n);
        out[n] = '\0';
        if (ret_len)
                *ret_len = n;
        return out;
}

char *response_ok(const char *request_id, json_object *result, size_t *ret_len) {
        json_object *o, *id, *res;
        _cleanup_free_ char *out = NULL;
        size_t n = 0;

        if (result && !json_object_is_type(result, json_type_object))
                return NULL;
        o = json_object_new_object();
        if (!o)
                return NULL;
        res = result ? json_object_get(result) : json_object_new_object();
        if (!res || request_id_value(request_id, &id) < 0) {
                json_object_put(res);
                json_object_put(o);
                return NULL;
        }
        if (add(o, "request_id", id, true) < 0 ||
            add(o, "ok", json_object_new_boolean(1), false) < 0) {
                json_object_put(res);
                json_object_put(o);
                return NULL;
        }
        if (add(o, "result", res, false) < 0) {
                json_object_put(o);
                return NULL;
        }
        out = serialize(o, &n);
        json_object_put(o);
        if (!out)
                return NULL;
        /* json-c writes NaN, Infinity, uint64 beyond int64, NUL as \u0000
         * and invalid UTF-8 as they are; none of that may reach a client. */
        if (json_check_strict(out, n, RESPONSE_MAX_DEPTH + 1, NULL) < 0)
                return NULL;
        if (ret_len)
                *ret_len = n;
        return TAKE_PTR(out);
}

/* A copy of s with every byte that does not start a valid UTF-8 sequence
 * replaced by '?', and every noncharacter by as many '?'. */
static char *utf8_sanitized(const char *s) {
        size_t n = strlen(s), i = 0;
        char *out = malloc(n + 1);

        if (!out)
                return NULL;
        while (i < n) {
                size_t k = json_text_char_len((const uint8_t *) s + i, n - i);
                if (k == 0) {
                        out[i++] = '?';
                        continue;
                }
                memcpy(out + i, s + i, k);
                i += k;
        }
        out[n] = '\0';
        return out;
}

char *response_error(const char *request_id, const char *code, const char *message,
                     size_t *ret_len) {
        _cleanup_free_ char *msg = NULL;
        json_object *o, *id;
        char *out;

        if (!code || !jb_code_valid(code))
                code = "INTERNAL";
        if (!message) {
                jb_code k = jb_code_from_name(code);

                /* JB_OK is what an unknown (module) code maps to */
                message = k != JB_OK ? jb_code_message(k) : NULL;
                if (!message)
                        message = "error";
        }
        msg = utf8_sanitized(message);
        if (!msg)
                return NULL;

        o = json_object_new_object();
        if (!o)
                return NULL;
        if (request_id_value(request_id, &id) < 0) {
                json_object_put(o);
                return NULL;
        }
        if (add(o, "request_id", id, true) < 0 ||
            add(o, "ok", json_object_new_boolean(0), false) < 0 ||
            add(o, "error", json_object_new_string(msg), false) < 0 ||
            add(o, "code", json_object_new_string(code), false) < 0) {
                json_object_put(o);
                return NULL;
        }
        out = serialize(o, ret_len);
        json_object_put(o);
        return out;
}
