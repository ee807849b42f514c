/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The managed Sieve script of one mailbox: its external forwards and its
 * autoresponder. Every value reaches the script only as a Sieve quoted
 * string (mail_sieve_quote), and the script requires neither "variables"
 * nor "encoded-character", so a quoted string has no expansion: '"' and
 * '\' are the only characters to escape. Pure: unit-tested in
 * tests/unit/test-mail.c with hostile subjects and bodies. */

#include <string.h>

#include "mail-internal.h"

void mail_sieve_quote(mail_buf *b, const char *s) {
        mail_buf_add(b, "\"", 1);
        for (; *s; s++) {
                if (*s == '\r')
                        continue;
                if (*s == '"' || *s == '\\')
                        mail_buf_add(b, "\\", 1);
                mail_buf_add(b, s, 1);
        }
        mail_buf_add(b, "\"", 1);
}

static bool any_keep(const mail_sieve *s) {
        for (size_t i = 0; i < s->n_externals; i++)
                if (s->externals[i].keep_copy)
                        return true;
        return false;
}

static void requires(const mail_sieve *s, mail_buf *b) {
        const char *ext[4];
        size_t n = 0;

        if (s->n_externals > 0 && any_keep(s))
                ext[n++] = "copy";
        if (s->vacation.on && (s->vacation.start || s->vacation.end)) {
                ext[n++] = "date";
                ext[n++] = "relational";
        }
        if (s->vacation.on)
                ext[n++] = "vacation";
        if (n == 0)
                return;
        mail_buf_puts(b, "require [");
        for (size_t i = 0; i < n; i++)
                mail_buf_printf(b, "%s\"%s\"", i ? ", " : "", ext[i]);
        mail_buf_puts(b, "];\n");
}

static void vacation(const mail_sieve *s, mail_buf *b) {
        const mail_vacation *v = &s->vacation;
        const char *indent = "";

        if (v->start || v->end) {
                mail_buf_puts(b, "if allof (");
                if (v->start) {
                        mail_buf_puts(b, "currentdate :value \"ge\" \"date\" ");
                        mail_sieve_quote(b, v->start);
                }
                if (v->end) {
                        mail_buf_puts(b, v->start ? ", " : "");
                        mail_buf_puts(b, "currentdate :value \"le\" \"date\" ");
                        mail_sieve_quote(b, v->end);
                }
                mail_buf_puts(b, ") {\n");
                indent = "    ";
        }
        mail_buf_printf(b, "%svacation :days %lld", indent, (long long) v->interval_days);
        if (s->n_addresses > 0) {
                mail_buf_puts(b, " :addresses [");
                for (size_t i = 0; i < s->n_addresses; i++) {
                        mail_buf_puts(b, i ? ", " : "");
                        mail_sieve_quote(b, s->addresses[i]);
                }
                mail_buf_puts(b, "]");
        }
        mail_buf_puts(b, " :subject ");
        mail_sieve_quote(b, v->subject ? v->subject : "");
        mail_buf_puts(b, " ");
        mail_sieve_quote(b, v->body ? v->body : "");
        mail_buf_puts(b, ";\n");
        if (*indent)
                mail_buf_puts(b, "}\n");
}

/* The mailbox keeps a copy when any forward asks for one: then every
 * redirect is ":copy" (the implicit keep stays), else none is (the first
 * plain redirect cancels it). */
static void redirects(const mail_sieve *s, mail_buf *b) {
        bool keep = any_keep(s);

        for (size_t i = 0; i < s->n_externals; i++) {
                mail_buf_puts(b, keep ? "redirect :copy " : "redirect ");
                mail_sieve_quote(b, s->externals[i].target);
                mail_buf_puts(b, ";\n");
        }
}

int mail_sieve_render(const mail_sieve *s, mail_buf *out, jb_err *err) {
        if (s->n_externals > MAIL_EXTERNALS_MAX)
                return jb_err_set(err, JB_E_INVALID_PARAMS, "at most %d forward targets", MAIL_EXTERNALS_MAX);
        if (s->vacation.on && (s->vacation.interval_days < 1 || s->vacation.interval_days > 365))
                return jb_err_set(err, JB_E_INVALID_PARAMS, "interval_days must be 1..365");
        if (s->n_externals == 0 && !s->vacation.on)
                return 0;
        requires(s, out);
        if (s->vacation.on)
                vacation(s, out);
        redirects(s, out);
        if (out->len > MAIL_SCRIPT_MAX)
                return jb_err_set(err, JB_E_INVALID_PARAMS, "the Sieve script would be too large");
        return 0;
}
