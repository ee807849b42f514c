/* SPDX-License-Identifier: GPL-3.0-or-later */
/* libFuzzer harness for the dns module's record validator: names, the
 * content of every type, TXT encoding, and the whole desired zone built
 * from a params object. Whatever is accepted must hold the documented
 * invariants: an owner name is absolute, in the zone, of allowed bytes and
 * length; TXT decodes back to exactly the input, in character-strings of at
 * most 255 bytes; a failure is INVALID_PARAMS with a message (or INTERNAL
 * for memory). The first byte picks what is fuzzed. */

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "../../modules/dns/dns-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ZONE "example.com."

static const char *const types[] = { "A", "AAAA", "CNAME", "MX", "NS", "TXT", "SRV", "CAA", "PTR", "TLSA", "DS" };

static void check_refusal(const jb_err *err) {
        if (strcmp(err->code, "INVALID_PARAMS") != 0 && strcmp(err->code, "INTERNAL") != 0)
                abort();
        if (err->msg[0] == '\0')
                abort();
}

static void check_owner(const char *name) {
        size_t n = strlen(name), z = strlen(ZONE);

        if (n < z || n > 254 || name[n - 1] != '.' || strcmp(name + n - z, ZONE) != 0)
                abort();
        if (n > z && name[n - z - 1] != '.')
                abort();
        for (size_t i = 0; i < n; i++) {
                char c = name[i];
                if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '*'))
                        abort();
        }
}

/* Decodes PowerDNS TXT presentation back to bytes; aborts on any form
 * the encoder must never produce. */
static void check_txt(const char *enc, const uint8_t *raw, size_t len) {
        uint8_t *out = malloc(len + 1);
        size_t o = 0;
        const char *p = enc;

        if (!out)
                return;
        for (;;) {
                size_t chunk = 0;

                if (*p++ != '"')
                        abort();
                while (*p != '"') {
                        uint8_t b;
                        if (*p == '\0')
                                abort();
                        if (*p == '\\') {
                                p++;
                                if (p[0] >= '0' && p[0] <= '9') {
                                        b = (uint8_t) ((p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0'));
                                        p += 3;
                                } else
                                        b = (uint8_t) *p++;
                        } else
                                b = (uint8_t) *p++;
                        if (o >= len)
                                abort();
                        out[o++] = b;
                        chunk++;
                }
                if (chunk > DNS_TXT_CHUNK)
                        abort();
                p++;
                if (*p == '\0')
                        break;
                if (*p++ != ' ')
                        abort();
        }
        if (o != len || memcmp(out, raw, len) != 0)
                abort();
        free(out);
}

static void fuzz_params(const uint8_t *data, size_t size) {
        json_tokener *tok = json_tokener_new();
        json_object *p = tok ? json_tokener_parse_ex(tok, (const char *) data, (int) size) : NULL;
        dns_limits lim;
        dns_set s;
        jb_err err = JB_ERR_INIT;

        if (tok)
                json_tokener_free(tok);
        if (!p || !json_object_is_type(p, json_type_object)) {
                json_object_put(p);
                return;
        }
        dns_limits_default(&lim);
        lim.max_records = 64;
        /* The schema guarantees shapes the handler relies on; only inputs of
         * that shape are meaningful, so anything else is skipped. */
        {
                json_object *r, *ns;
                if (!json_object_object_get_ex(p, "records", &r) || !json_object_is_type(r, json_type_array) ||
                    !json_object_object_get_ex(p, "nameservers", &ns) || !json_object_is_type(ns, json_type_array) ||
                    json_object_array_length(ns) == 0)
                        goto out;
                for (size_t i = 0; i < json_object_array_length(ns); i++)
                        if (!json_object_is_type(json_object_array_get_idx(ns, i), json_type_string))
                                goto out;
                for (size_t i = 0; i < json_object_array_length(r); i++) {
                        json_object *e = json_object_array_get_idx(r, i), *t;
                        if (!json_object_is_type(e, json_type_object) || !json_object_object_get_ex(e, "type", &t) ||
                            !json_object_is_type(t, json_type_string))
                                goto out;
                }
                if (json_object_object_get_ex(p, "soa", &r))
                        goto out;
        }
        if (dns_desired_from_params("example.com", p, &lim, &s, &err) == 0) {
                json_object *patch = NULL;
                dns_set none = { 0 };
                if (dns_diff(&s, &s, NULL, NULL, &err) != 0)
                        abort();        /* a zone equals itself */
                if (dns_diff(&s, &none, &patch, NULL, &err) != (int) s.n)
                        abort();
                json_object_put(patch);
                dns_set_free(&s);
        } else
                check_refusal(&err);
out:
        json_object_put(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *s, name[DNS_NAME_MAX], *out = NULL;
        jb_err err = JB_ERR_INIT;
        uint8_t mode;

        if (size < 2)
                return 0;
        mode = data[0];
        if (mode == 0xFF) {
                fuzz_params(data + 1, size - 1);
                return 0;
        }
        s = malloc(size - 1);
        if (!s)
                return 0;
        memcpy(s, data + 2, size - 2);
        s[size - 2] = '\0';     /* content strings never hold a NUL (the frame check refuses \u0000) */

        if (dns_record_content(ZONE, types[mode % 11], s, (data[1] & 1) ? (int64_t) data[1] * 300 : -1, &out,
                               &err) == 0) {
                if (!out || !out[0])
                        abort();
                if (mode % 11 == 5)
                        check_txt(out, (const uint8_t *) s, strlen(s));
                free(out);
        } else {
                if (out)
                        abort();
                check_refusal(&err);
        }
        jb_err_clear(&err);
        if (dns_owner_name(ZONE, s, name, &err) == 0)
                check_owner(name);
        else
                check_refusal(&err);
        jb_err_clear(&err);
        if (dns_target_name(ZONE, s, data[1] & 2, name, &err) < 0)
                check_refusal(&err);
        free(s);
        return 0;
}
