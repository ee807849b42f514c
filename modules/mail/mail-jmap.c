/* SPDX-License-Identifier: GPL-3.0-or-later */
/* JMAP (RFC 8620) requests to Stalwart's management API and the reading
 * of its answers, without any transport: pure json-c, unit-tested in
 * tests/unit/test-mail.c. The subset and the error shapes are those of
 * Stalwart v0.16 (the module's README lists them with their sources). */

#include <string.h>

#include "mail-internal.h"

#define CALL_ID "c0"

json_object *mail_jmap_request(const char *method, json_object *args) {
        json_object *req = json_object_new_object(), *using = json_object_new_array();
        json_object *calls = json_object_new_array(), *call = json_object_new_array();

        json_object_array_add(using, json_object_new_string("urn:ietf:params:jmap:core"));
        json_object_array_add(using, json_object_new_string("urn:stalwart:jmap"));
        /* The SieveScript methods belong to RFC 9661's capability. */
        if (strncmp(method, "SieveScript/", 12) == 0)
                json_object_array_add(using, json_object_new_string("urn:ietf:params:jmap:sieve"));
        json_object_object_add(req, "using", using);
        json_object_array_add(call, json_object_new_string(method));
        json_object_array_add(call, args);
        json_object_array_add(call, json_object_new_string(CALL_ID));
        json_object_array_add(calls, call);
        json_object_object_add(req, "methodCalls", calls);
        return req;
}

const char *mail_jmap_code(const char *type) {
        static const struct {
                const char *type, *code;
        } map[] = {
                { "primaryKeyViolation", "ALREADY_EXISTS" },
                { "alreadyExists", "ALREADY_EXISTS" },
                { "notFound", "NOT_FOUND" },
                { "objectIsLinked", "CONFLICT" },
                { "scriptIsActive", "CONFLICT" },
                { "validationFailed", MAIL_E_REJECTED },
                { "invalidProperties", MAIL_E_REJECTED },
                { "invalidArguments", MAIL_E_REJECTED },
                { "invalidPatch", MAIL_E_REJECTED },
                { "unknownMethod", MAIL_E_REJECTED },
                { "unsupportedFilter", MAIL_E_REJECTED },
                { "forbidden", MAIL_E_AUTH },
                { "accountNotFound", MAIL_E_AUTH },
        };

        for (size_t i = 0; type && i < sizeof map / sizeof map[0]; i++)
                if (strcmp(map[i].type, type) == 0)
                        return map[i].code;
        /* serverUnavailable, serverFail, and whatever a later version adds. */
        return "SERVICE_FAILED";
}

static const char *member_str(json_object *o, const char *k) {
        json_object *v;
        return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string) ?
                       json_object_get_string(v) : NULL;
}

/* The server's description goes into the message, cut to something
 * printable by jb_err itself (it bounds the length). */
static int set_from(jb_err *err, const char *what, const char *type, const char *desc) {
        const char *code = mail_jmap_code(type);
        jb_code core = jb_code_from_name(code);

        if (core != JB_OK)
                return jb_err_set(err, core, "%s: %s%s%s", what, type ? type : "error", desc ? ": " : "",
                                  desc ? desc : "");
        return jb_err_set_code(err, code, "%s: %s%s%s", what, type ? type : "error", desc ? ": " : "",
                               desc ? desc : "");
}

json_object *mail_jmap_result(json_object *resp, const char *method, jb_err *err) {
        json_object *list, *entry, *name, *args, *id;

        if (!json_object_is_type(resp, json_type_object) ||
            !json_object_object_get_ex(resp, "methodResponses", &list) ||
            !json_object_is_type(list, json_type_array)) {
                jb_err_set(err, JB_E_SERVICE_FAILED, "%s: the answer has no methodResponses", method);
                return NULL;
        }
        for (size_t i = 0; i < json_object_array_length(list); i++) {
                entry = json_object_array_get_idx(list, i);
                if (!json_object_is_type(entry, json_type_array) || json_object_array_length(entry) != 3)
                        continue;
                name = json_object_array_get_idx(entry, 0);
                args = json_object_array_get_idx(entry, 1);
                id = json_object_array_get_idx(entry, 2);
                if (!json_object_is_type(id, json_type_string) || strcmp(json_object_get_string(id), CALL_ID) != 0 ||
                    !json_object_is_type(name, json_type_string) || !json_object_is_type(args, json_type_object))
                        continue;
                if (strcmp(json_object_get_string(name), "error") == 0) {
                        set_from(err, method, member_str(args, "type"), member_str(args, "description"));
                        return NULL;
                }
                if (strcmp(json_object_get_string(name), method) != 0)
                        break;
                return args;
        }
        jb_err_set(err, JB_E_SERVICE_FAILED, "%s: no answer to the call", method);
        return NULL;
}

json_object *mail_jmap_set_error(json_object *result, const char *member, const char *id) {
        json_object *m, *e;

        if (!json_object_object_get_ex(result, member, &m) || !json_object_is_type(m, json_type_object) ||
            !json_object_object_get_ex(m, id, &e) || !json_object_is_type(e, json_type_object))
                return NULL;
        return e;
}

int mail_jmap_set_error_to_err(json_object *e, const char *what, jb_err *err) {
        return set_from(err, what, member_str(e, "type"), member_str(e, "description"));
}
