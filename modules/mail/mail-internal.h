/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef MAIL_INTERNAL_H
#define MAIL_INTERNAL_H

/* Shared between the mail module's files; nothing here is exported.
 *
 * The handlers (mail-actions.c) are backend-neutral: they validate what
 * the schema cannot say, build a mail_req and call one operation of the
 * backend the settings choose (mail-dovecot.c, mail-stalwart.c). The pure
 * parts — hash formats, addresses, the passwd-file, Postfix maps, Sieve
 * scripts, JMAP requests — live in files of their own that the unit tests
 * link without a host, a service or libcurl. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jabali/module.h>

/* The first line of every file the module writes: a comment in passwd-file,
 * Postfix map and Sieve syntax alike. */
#define MAIL_STAMP "# jabali-mail: "
/* Largest managed file the module reads. */
#define MAIL_FILE_MAX (64u << 20)
/* Largest Sieve script or piece of text the module renders. */
#define MAIL_SCRIPT_MAX (256u << 10)
#define MAIL_ADDR_MAX 256
/* Forward targets per mailbox (and the interpreter's sieve_max_redirects
 * must allow as many). */
#define MAIL_EXTERNALS_MAX 16
#define MAIL_ALIASES_MAX 64
#define MAIL_SUBJECT_MAX 255
#define MAIL_BODY_MAX 8192

/* ---- a growable string (mail-buf.c) ---- */

typedef struct mail_buf {
        char *s;
        size_t len, cap;
        bool oom;
} mail_buf;

void mail_buf_add(mail_buf *b, const char *s, size_t n);
void mail_buf_puts(mail_buf *b, const char *s);
void mail_buf_printf(mail_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hands the string over (*out malloc'ed, NUL-terminated) or fails with
 * INTERNAL when an allocation failed on the way; the buffer is emptied. */
int mail_buf_take(mail_buf *b, char **out, size_t *len, jb_err *err);
void mail_buf_free(mail_buf *b);

/* ---- checks (mail-check.c) ---- */

typedef enum mail_scheme {
        MAIL_SCHEME_SHA512_CRYPT = 0,
        MAIL_SCHEME_BCRYPT,
        MAIL_SCHEME_ARGON2ID,
} mail_scheme;

/* A password hash in modular crypt format of an accepted scheme:
 * $6$[rounds=N$]salt$hash, $2a|2b|2y$NN$<53>, $argon2id$v=19$m=,t=,p=$salt$hash.
 * On failure *why says what is wrong (never the value itself). */
bool mail_hash_valid(const char *h, mail_scheme *scheme, const char **why);
/* Dovecot's name of the scheme: "SHA512-CRYPT", "BLF-CRYPT", "ARGON2ID". */
const char *mail_scheme_dovecot(mail_scheme s);
/* A mailbox local part the module accepts: the schema's email_local
 * check, and also lower case only and not starting with '-' (doveadm's
 * argument parser would take it for an option). */
bool mail_local_valid(const char *s, const char **why);
/* "YYYY-MM-DD" with a real calendar date. */
bool mail_date_valid(const char *s);
/* Splits "local@domain" (already valid by the schema's email check);
 * local must hold MAIL_ADDR_MAX bytes. Returns the domain or NULL. */
const char *mail_addr_split(const char *addr, char *local, size_t size);

/* ---- the Dovecot passwd-file (mail-passwd.c) ---- */

typedef struct mail_user {
        char *address;          /* local@domain */
        char *password;         /* "{SCHEME}hash", as in the file */
        char *home;
        int64_t quota_mib;      /* 0: no limit */
} mail_user;

typedef struct mail_users {
        mail_user *v;
        size_t n, cap;
} mail_users;

/* Parses the lines after the stamp line. A line the module would not have
 * written is CONFLICT (an administrator edited the file). */
int mail_users_parse(const char *text, size_t len, mail_users *u, jb_err *err);
/* One line per user, sorted by address; uid and gid are the mail owner. */
int mail_users_render(const mail_users *u, int64_t uid, int64_t gid, mail_buf *out, jb_err *err);
mail_user *mail_users_find(const mail_users *u, const char *address);
/* Adds or replaces (takes copies of the strings). */
int mail_users_set(mail_users *u, const char *address, const char *password, const char *home, int64_t quota_mib,
                   jb_err *err);
bool mail_users_remove(mail_users *u, const char *address);
void mail_users_free(mail_users *u);

/* ---- Postfix lookup tables (mail-maps.c) ---- */

typedef struct mail_map_entry {
        char *key;
        char *value;
} mail_map_entry;

typedef struct mail_map {
        mail_map_entry *v;
        size_t n, cap;
} mail_map;

/* "key value" lines after the stamp line; comments and blank lines are
 * skipped, anything else the module would not write is CONFLICT. */
int mail_map_parse(const char *text, size_t len, mail_map *m, jb_err *err);
int mail_map_render(const mail_map *m, mail_buf *out, jb_err *err);
const char *mail_map_get(const mail_map *m, const char *key);
int mail_map_set(mail_map *m, const char *key, const char *value, jb_err *err);
bool mail_map_remove(mail_map *m, const char *key);
void mail_map_free(mail_map *m);
bool mail_map_equal(const mail_map *a, const mail_map *b);

/* ---- Sieve (mail-sieve.c) ---- */

typedef struct mail_external {
        const char *target;
        bool keep_copy;
} mail_external;

typedef struct mail_vacation {
        bool on;
        const char *subject;
        const char *body;
        const char *start;      /* "YYYY-MM-DD" or NULL */
        const char *end;
        int64_t interval_days;
} mail_vacation;

/* What the managed script of one mailbox does. */
typedef struct mail_sieve {
        const mail_external *externals;
        size_t n_externals;
        const char *const *addresses;   /* the mailbox and its aliases: vacation's :addresses */
        size_t n_addresses;
        mail_vacation vacation;
} mail_sieve;

/* Appends s as a Sieve quoted string (RFC 5228 §2.4.2): '"' and '\' are
 * escaped, CR is dropped (a line ends with LF, which Pigeonhole reads as
 * CRLF), nothing else has a meaning there without the "variables" or
 * "encoded-character" extensions, which the script never requires. */
void mail_sieve_quote(mail_buf *b, const char *s);
/* The script (without the stamp line); empty when it would do nothing. */
int mail_sieve_render(const mail_sieve *s, mail_buf *out, jb_err *err);

/* ---- JMAP requests and answers (mail-jmap.c) ---- */

/* {"using":[...],"methodCalls":[[method,args,"c0"]]}; takes args. */
json_object *mail_jmap_request(const char *method, json_object *args);
/* The arguments of the answer to call "c0" of method `method` (borrowed
 * from resp), or NULL with err: a method-level error becomes a stable code
 * (mail_jmap_code) with the server's type and description in the message. */
json_object *mail_jmap_result(json_object *resp, const char *method, jb_err *err);
/* The agent's stable code for a JMAP SetError or method error type: a core
 * code name or one of the module's (MAIL_E_*). */
const char *mail_jmap_code(const char *type);
/* The SetError of id in notCreated/notUpdated/notDestroyed (borrowed), or NULL. */
json_object *mail_jmap_set_error(json_object *result, const char *member, const char *id);
/* err from a SetError object: code from its type, message with the description. */
int mail_jmap_set_error_to_err(json_object *e, const char *what, jb_err *err);

/* The module's own error codes (published with every action). */
#define MAIL_E_REJECTED "BACKEND_REJECTED"      /* the backend refused a value (validationFailed, ...) */
#define MAIL_E_AUTH "BACKEND_AUTH"              /* the backend refused the agent's credentials */

/* ---- settings ---- */

typedef struct mail_cfg {
        const char *backend;            /* "dovecot" or "stalwart" */
        const char *lock_dir;
        /* dovecot + postfix */
        const char *users_dir;          /* holds "users", Dovecot's passwd-file */
        const char *maps_dir;           /* holds "domains", "mailboxes", "aliases" (hash: maps) */
        const char *mail_root;          /* homes: <mail_root>/<domain>/<local> */
        int64_t mail_uid, mail_gid;
        const char *users_group;        /* group that may read the passwd-file (Dovecot's auth) */
        const char *doveadm;
        const char *dovecot_config;
        const char *postmap;
        const char *postfix_config_dir;
        const char *postfix_unit;       /* reloaded when the domain list changes; "" never */
        /* stalwart */
        const char *stalwart_url;
        const char *stalwart_token_file;
        int64_t stalwart_timeout_ms;
} mail_cfg;

void mail_cfg_from_settings(json_object *settings, mail_cfg *c);

/* ---- the backend interface ---- */

/* One request, backend-neutral: the handlers fill what the action takes. */
typedef struct mail_req {
        const char *domain;
        const char *local_part;
        char address[MAIL_ADDR_MAX];    /* local_part@domain, or the address param */
        const char *password_hash;      /* secret: never logged */
        mail_scheme scheme;
        int64_t quota_mib;              /* -1: not given */
        bool purge;
        const char *const *aliases;     /* local parts in the address's domain */
        size_t n_aliases;
        const mail_external *externals;
        size_t n_externals;
        mail_vacation vacation;
        const char *target;             /* catch-all; NULL clears */
} mail_req;

typedef struct mail_ctx {
        jb_call *call;
        mail_cfg cfg;
        bool dry_run;
        json_object *result;            /* the call's result object (borrowed) */
} mail_ctx;

/* Every writer returns 1 (changed; in a dry run: would change), 0
 * (nothing to do, nothing written) or -1 with err. Readers return 0 or -1
 * and add their members to ctx->result. */
typedef struct mail_backend {
        const char *name;
        int (*domain_upsert)(mail_ctx *ctx, const mail_req *r, jb_err *err);
        int (*domain_delete)(mail_ctx *ctx, const mail_req *r, jb_err *err);
        int (*mailbox_create)(mail_ctx *ctx, const mail_req *r, jb_err *err);
        int (*mailbox_passwd)(mail_ctx *ctx, const mail_req *r, jb_err *err);
        int (*mailbox_set_quota)(mail_ctx *ctx, const mail_req *r, jb_err *err);
        int (*mailbox_delete)(mail_ctx *ctx, const mail_req *r, jb_err *err);
        int (*mailbox_get)(mail_ctx *ctx, const mail_req *r, jb_err *err);
        int (*mailbox_list)(mail_ctx *ctx, const mail_req *r, jb_err *err);
        int (*mailbox_usage)(mail_ctx *ctx, const mail_req *r, jb_err *err);
        int (*forwarder_upsert)(mail_ctx *ctx, const mail_req *r, jb_err *err);
        int (*forwarder_delete)(mail_ctx *ctx, const mail_req *r, jb_err *err);
        int (*autoresponder_upsert)(mail_ctx *ctx, const mail_req *r, jb_err *err);
        int (*autoresponder_delete)(mail_ctx *ctx, const mail_req *r, jb_err *err);
        int (*catchall_set)(mail_ctx *ctx, const mail_req *r, jb_err *err);
} mail_backend;

extern const mail_backend mail_backend_dovecot;
extern const mail_backend mail_backend_stalwart;
/* libcurl's global state, from worker_init (before the hat, one thread). */
void mail_stalwart_init(void);

/* mail-actions.c: the handlers. */
int mail_domain_upsert(jb_call *call);
int mail_domain_delete(jb_call *call);
int mail_mailbox_create(jb_call *call);
int mail_mailbox_passwd(jb_call *call);
int mail_mailbox_set_quota(jb_call *call);
int mail_mailbox_delete(jb_call *call);
int mail_mailbox_get(jb_call *call);
int mail_mailbox_list(jb_call *call);
int mail_mailbox_usage(jb_call *call);
int mail_forwarder_upsert(jb_call *call);
int mail_forwarder_delete(jb_call *call);
int mail_autoresponder_upsert(jb_call *call);
int mail_autoresponder_delete(jb_call *call);
int mail_catchall_set(jb_call *call);

#endif
