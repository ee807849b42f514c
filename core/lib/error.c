/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Error values: the core code table and the fixed-size jb_err buffers. */

#include <stdio.h>
#include <string.h>

#include <jabali/error.h>

#include "util.h"

/* Index 0 is JB_OK so that the tables line up with the enum. */
static const char *const code_names[_JB_CODE_MAX] = {
        [JB_OK] = "OK",
#define JB_ERROR(name, msg) [JB_E_##name] = #name,
#include <jabali/errors.def>
#undef JB_ERROR
};

static const char *const code_messages[_JB_CODE_MAX] = {
        [JB_OK] = "success",
#define JB_ERROR(name, msg) [JB_E_##name] = msg,
#include <jabali/errors.def>
#undef JB_ERROR
};

JB_EXPORT const char *jb_code_name(jb_code code) {
        if ((unsigned) code >= _JB_CODE_MAX)
                return NULL;
        return code_names[code];
}

JB_EXPORT const char *jb_code_message(jb_code code) {
        if ((unsigned) code >= _JB_CODE_MAX)
                return NULL;
        return code_messages[code];
}

JB_EXPORT jb_code jb_code_from_name(const char *name) {
        if (!name)
                return JB_OK;
        for (unsigned i = JB_OK + 1; i < _JB_CODE_MAX; i++)
                if (streq(code_names[i], name))
                        return (jb_code) i;
        return JB_OK;
}

JB_EXPORT bool jb_code_valid(const char *code) {
        size_t i;

        if (!code || !(code[0] >= 'A' && code[0] <= 'Z'))
                return false;
        for (i = 1; code[i] != '\0'; i++) {
                char c = code[i];

                if (i >= JB_ERR_CODE_MAX - 1)
                        return false;
                if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
                        return false;
        }
        return true;
}

/* After a truncating snprintf the buffer may end inside a multi-byte UTF-8
 * sequence; a message that is not valid UTF-8 would poison the JSON
 * response, so drop the incomplete tail. */
static void trim_partial_utf8(char *s) {
        size_t len = strlen(s), start, need;
        unsigned char lead;

        if (len == 0)
                return;
        start = len;
        /* Walk back over at most three continuation bytes to the lead byte. */
        while (start > 0 && len - start < 4 && ((unsigned char) s[start - 1] & 0xC0) == 0x80)
                start--;
        if (start == 0)
                return;
        lead = (unsigned char) s[start - 1];
        if (lead < 0x80)
                return;         /* the tail is ASCII (or stray continuation bytes): leave it */
        if ((lead & 0xE0) == 0xC0)
                need = 2;
        else if ((lead & 0xF0) == 0xE0)
                need = 3;
        else if ((lead & 0xF8) == 0xF0)
                need = 4;
        else
                return;
        if (len - (start - 1) < need)
                s[start - 1] = '\0';
}

/* Copies `src` into `dst` (size `size`), truncating at a UTF-8 boundary. */
static void copy_msg(char *dst, size_t size, const char *src) {
        size_t n = strlen(src);

        if (n >= size) {
                memcpy(dst, src, size - 1);
                dst[size - 1] = '\0';
                trim_partial_utf8(dst);
        } else
                memcpy(dst, src, n + 1);
}

JB_EXPORT int jb_err_setv(jb_err *err, const char *code, const char *fmt, va_list ap) {
        /* Formatted into a local buffer first: an argument may point into
         * err->msg itself, and vsnprintf must not write over its input. */
        char buf[JB_ERR_MSG_MAX];
        jb_code known;
        int r;

        if (!err)
                return -1;

        if (!jb_code_valid(code))
                code = code_names[JB_E_INTERNAL];
        known = jb_code_from_name(code);

        if (!fmt || fmt[0] == '\0') {
                /* A module code has no default message of its own: use its name. */
                copy_msg(buf, sizeof buf, known == JB_OK ? code : code_messages[known]);
        } else {
                r = vsnprintf(buf, sizeof buf, fmt, ap);
                if (r < 0)
                        copy_msg(buf, sizeof buf, code_messages[JB_E_INTERNAL]);
                else if ((size_t) r >= sizeof buf)
                        trim_partial_utf8(buf);
        }

        copy_msg(err->code, sizeof err->code, code);
        memcpy(err->msg, buf, sizeof buf);
        return -1;
}

JB_EXPORT int jb_err_set(jb_err *err, jb_code code, const char *fmt, ...) {
        va_list ap;

        /* JB_OK is no error; setting it is a bug in the caller. */
        if ((unsigned) code >= _JB_CODE_MAX || code == JB_OK)
                code = JB_E_INTERNAL;

        va_start(ap, fmt);
        (void) jb_err_setv(err, code_names[code], fmt, ap);
        va_end(ap);
        return -1;
}

JB_EXPORT int jb_err_set_code(jb_err *err, const char *code, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        (void) jb_err_setv(err, code, fmt, ap);
        va_end(ap);
        return -1;
}

JB_EXPORT void jb_err_prefix(jb_err *err, const char *prefix) {
        char buf[JB_ERR_MSG_MAX];
        int r;

        if (!jb_err_isset(err) || !prefix || prefix[0] == '\0')
                return;

        r = snprintf(buf, sizeof buf, "%s: %s", prefix, err->msg);
        if (r < 0)
                return;
        if ((size_t) r >= sizeof buf)
                trim_partial_utf8(buf);
        memcpy(err->msg, buf, sizeof buf);
}
