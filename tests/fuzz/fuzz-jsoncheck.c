/* SPDX-License-Identifier: GPL-3.0-or-later */
/* libFuzzer harness for the strict JSON validator. Besides memory safety it
 * checks that the validator and json-c agree on everything accepted, and
 * that what json-c writes back out is strict JSON equal to the input. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jsoncheck.h"

#define DEPTH 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *doc = (const char *) data;
        jb_err err = JB_ERR_INIT, err2 = JB_ERR_INIT;
        json_object *o, *back;
        const char *out;
        size_t out_len;
        int r;

        r = json_check_strict(doc, size, DEPTH, &err);
        if (r < 0 && (strcmp(err.code, "INVALID_JSON") != 0 || strncmp(err.msg, "offset ", 7) != 0))
                abort();

        o = json_parse_strict(doc, size, DEPTH, &err2);
        if (r < 0) {
                /* refused by the check: json_parse_strict must say the same */
                if (o || strcmp(err.msg, err2.msg) != 0)
                        abort();
                return 0;
        }
        if (!o) {
                /* only a top-level null cannot be returned */
                if (strcmp(err2.msg, "offset 0: top-level null not supported") != 0)
                        abort();
                return 0;
        }

        out = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
                                                &out_len);
        if (!out || json_check_strict(out, out_len, DEPTH, &err) < 0)
                abort();
        back = json_parse_strict(out, out_len, DEPTH, &err);
        if (!back || !json_object_equal(o, back))
                abort();
        json_object_put(back);
        json_object_put(o);

        for (size_t i = 0; i < size && i < 64; i++) {
                size_t n = utf8_sequence_len(data + i, size - i);
                if (n > 4 || n > size - i)
                        abort();
        }
        return 0;
}
