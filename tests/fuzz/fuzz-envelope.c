/* SPDX-License-Identifier: GPL-3.0-or-later */
/* libFuzzer harness for the request envelope and the response builders:
 * whatever arrives, an accepted request satisfies every envelope rule and
 * both responses are strict JSON. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "jsoncheck.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_response(char *out, size_t len) {
        jb_err err = JB_ERR_INIT;

        if (!out || strlen(out) != len || json_check_strict(out, len, RESPONSE_MAX_DEPTH + 1, &err) < 0)
                abort();
        free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const struct envelope_limits lim = { .max_depth = 8, .max_timeout_ms = 600000 };
        jb_err err = JB_ERR_INIT;
        request r;
        size_t len = 0;
        int ret;

        ret = request_parse((const char *) data, size, &lim, &r, &err);
        if (ret == 0) {
                if (!r.root || !r.action || !r.request_id || !r.params ||
                    !json_object_is_type(r.params, json_type_object) ||
                    strlen(r.request_id) < 1 || strlen(r.request_id) > REQUEST_ID_MAX ||
                    strlen(r.action) < 1 || strlen(r.action) > ACTION_NAME_MAX ||
                    r.timeout_ms > lim.max_timeout_ms ||
                    (r.actor && json_object_object_length(r.actor) > (int) ACTOR_MEMBERS_MAX))
                        abort();
                /* params went through the strict check: they always serialise */
                check_response(response_ok(r.request_id, r.params, &len), len);
                check_response(response_ok(r.request_id, r.actor, &len), len);
        } else {
                if (strcmp(err.code, "INVALID_JSON") != 0 && strcmp(err.code, "INVALID_REQUEST") != 0)
                        abort();
                if (r.request_id && (!r.root || strlen(r.request_id) > REQUEST_ID_MAX))
                        abort();
                check_response(response_error(r.request_id, err.code, err.msg, &len), len);
        }
        request_done(&r);
        if (r.root)
                abort();

        /* the raw bytes as an error message and as a request id */
        if (size < 4096) {
                char *s = malloc(size + 1);
                if (!s)
                        return 0;
                memcpy(s, data, size);
                s[size] = '\0';
                check_response(response_error(s, s, s, &len), len);
                check_response(response_ok(s, NULL, &len), len);
                free(s);
        }
        return 0;
}
