/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The stalwart backend: Stalwart v0.16's JMAP management API on loopback.
 *
 * One JMAP method call per HTTP request (POST <stalwart_url>), HTTP Basic
 * "admin:<token>" with the token from a root-only file, a 1 MiB cap on
 * answers, no redirects, no proxy, http only. The objects used:
 *
 *   x:Domain   /query {filter:{name}}  /set create|destroy   (catchAllAddress)
 *   x:Account  /query {filter:{name,domainId}}  /get  /set create|update|destroy
 *              (credentials, quotas, aliases, description, usedDiskQuota)
 *   x:Action   /set create {"@type":"InvalidateCaches"}       (auth caches)
 *   SieveScript /get /set + blob upload and download (RFC 9661, RFC 8620 §6)
 *
 * Every writer reads first and sends a set call only when something
 * differs, so a repeat sends no set call. Stalwart masks credentials in
 * get, so the module keeps a fingerprint of the hash it set (64-bit
 * FNV-1a of the hash string, not of the password) in the account's
 * description; the managed Sieve script carries its own stamp line, read
 * back by downloading its blob. See README.md for the error mapping. */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include <jabali/stamp.h>

#include "mail-internal.h"

#define ADD(o, k, v) json_object_object_add((o), (k), (v))
#define RESPONSE_MAX (1u << 20)
#define TOKEN_MAX 4096
#define SCRIPT_NAME "jabali-managed"
#define FP_PREFIX "jabali-mail pw:"

typedef struct st {
        mail_ctx *ctx;
        char token[TOKEN_MAX];
} st;

void mail_stalwart_init(void) {
        (void) curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- transport ---- */

static int read_token(st *s, jb_err *err) {
        const char *path = s->ctx->cfg.stalwart_token_file;
        struct stat sb;
        ssize_t n;
        int fd;

        fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return jb_err_set_code(err, MAIL_E_AUTH, "cannot open the token file %s: %s", path, strerror(errno));
        if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_uid != 0 || (sb.st_mode & 077)) {
                close(fd);
                return jb_err_set_code(err, MAIL_E_AUTH, "the token file %s must be a regular file of root's, "
                                                         "readable by root only", path);
        }
        n = read(fd, s->token, sizeof s->token - 1);
        close(fd);
        if (n <= 0)
                return jb_err_set_code(err, MAIL_E_AUTH, "the token file %s is empty", path);
        while (n > 0 && (s->token[n - 1] == '\n' || s->token[n - 1] == '\r' || s->token[n - 1] == ' '))
                n--;
        s->token[n] = '\0';
        for (ssize_t i = 0; i < n; i++)
                if ((unsigned char) s->token[i] < 0x20 || s->token[i] == 0x7f)
                        return jb_err_set_code(err, MAIL_E_AUTH, "the token file %s holds control characters", path);
        return n > 0 ? 0 : jb_err_set_code(err, MAIL_E_AUTH, "the token file %s is empty", path);
}

typedef struct body {
        char *data;
        size_t len;
        bool too_large;
} body;

static size_t on_data(char *p, size_t size, size_t n, void *userdata) {
        body *b = userdata;
        size_t len = size * n;
        char *d;

        if (b->len + len > RESPONSE_MAX) {
                b->too_large = true;
                return 0;
        }
        d = realloc(b->data, b->len + len + 1);
        if (!d)
                return 0;
        memcpy(d + b->len, p, len);
        b->data = d;
        b->len += len;
        b->data[b->len] = '\0';
        return len;
}

/* One HTTP exchange: POST when data is not NULL, else GET. *out is the
 * body (malloc'ed) of a 200 answer. */
static int http(st *s, const char *url, const char *content_type, const char *data, size_t len, body *out,
                jb_err *err) {
        uint64_t left = jb_call_remaining_ms(s->ctx->call);
        long timeout = s->ctx->cfg.stalwart_timeout_ms, status = 0;
        struct curl_slist *headers = NULL;
        char ct[128];
        CURLcode rc;
        CURL *c;
        int r = -1;

        memset(out, 0, sizeof *out);
        if (left == 0)
                return jb_err_set(err, JB_E_TIMEOUT, "no time left to ask Stalwart");
        if ((uint64_t) timeout > left)
                timeout = (long) left;
        c = curl_easy_init();
        if (!c)
                return jb_err_set(err, JB_E_INTERNAL, "curl_easy_init failed");
        snprintf(ct, sizeof ct, "Content-Type: %s", content_type);
        headers = curl_slist_append(headers, ct);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http");
        curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout);
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long) CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_USERNAME, "admin");
        curl_easy_setopt(c, CURLOPT_PASSWORD, s->token);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
        if (data) {
                curl_easy_setopt(c, CURLOPT_POSTFIELDS, data);
                curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) len);
        }
        rc = curl_easy_perform(c);
        if (rc == CURLE_OK)
                curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        if (out->too_large)
                jb_err_set(err, JB_E_SERVICE_FAILED, "Stalwart's answer is larger than %u bytes", RESPONSE_MAX);
        else if (rc == CURLE_OPERATION_TIMEDOUT)
                jb_err_set(err, JB_E_SERVICE_FAILED, "Stalwart did not answer within %ld ms", timeout);
        else if (rc != CURLE_OK)
                jb_err_set(err, JB_E_SERVICE_FAILED, "cannot reach Stalwart: %s", curl_easy_strerror(rc));
        else if (status == 401)
                jb_err_set_code(err, MAIL_E_AUTH, "Stalwart refused the admin token (HTTP 401)");
        else if (status != 200)
                jb_err_set(err, JB_E_SERVICE_FAILED, "Stalwart answered HTTP %ld", status);
        else
                r = 0;
        curl_slist_free_all(headers);
        curl_easy_cleanup(c);
        if (r < 0) {
                free(out->data);
                memset(out, 0, sizeof *out);
        }
        return r;
}

static json_object *parse_json(const body *b, jb_err *err) {
        json_tokener *tok = json_tokener_new_ex(64);
        json_object *o = NULL;

        if (!tok) {
                jb_err_set(err, JB_E_INTERNAL, "out of memory");
                return NULL;
        }
        if (b->len <= INT_MAX)
                o = json_tokener_parse_ex(tok, b->data ? b->data : "", (int) b->len);
        if (!o || json_tokener_get_error(tok) != json_tokener_success) {
                json_object_put(o);
                o = NULL;
                jb_err_set(err, JB_E_SERVICE_FAILED, "Stalwart's answer is not JSON");
        }
        json_tokener_free(tok);
        return o;
}

/* One method call. *resp owns the answer; the returned result is borrowed
 * from it. Takes args. */
static json_object *call(st *s, const char *method, json_object *args, json_object **resp, jb_err *err) {
        json_object *req = mail_jmap_request(method, args), *res = NULL;
        const char *text = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        size_t len = strlen(text);
        body b;

        *resp = NULL;
        if (http(s, s->ctx->cfg.stalwart_url, "application/json", text, len, &b, err) == 0) {
                *resp = parse_json(&b, err);
                if (*resp)
                        res = mail_jmap_result(*resp, method, err);
        }
        /* The request may hold a password hash: not left in freed memory. */
        explicit_bzero((char *) text, len);
        json_object_put(req);
        free(b.data);
        return res;
}

static json_object *obj(json_object *o, const char *k) {
        json_object *v;
        return json_object_object_get_ex(o, k, &v) ? v : NULL;
}

static const char *str(json_object *o, const char *k) {
        json_object *v = obj(o, k);
        return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

/* A set call's outcome for one id: 0, or -1 with the SetError mapped;
 * notFound counts as done when ok_not_found. */
static int set_outcome(json_object *res, const char *member, const char *id, const char *what, bool ok_not_found,
                       jb_err *err) {
        json_object *e = mail_jmap_set_error(res, member, id);
        const char *t;

        if (!e)
                return 0;
        t = str(e, "type");
        if (ok_not_found && t && strcmp(t, "notFound") == 0)
                return 0;
        return mail_jmap_set_error_to_err(e, what, err);
}

/* ---- lookups ---- */

/* The first id of a /query answer, copied into id (empty when none). */
static int query_one(st *s, const char *method, json_object *filter, char *id, size_t size, jb_err *err) {
        json_object *args = json_object_new_object(), *resp, *res, *ids;
        int r = -1;

        ADD(args, "filter", filter);
        ADD(args, "limit", json_object_new_int(1));
        res = call(s, method, args, &resp, err);
        if (res) {
                ids = obj(res, "ids");
                id[0] = '\0';
                if (ids && json_object_is_type(ids, json_type_array) && json_object_array_length(ids) > 0) {
                        json_object *v = json_object_array_get_idx(ids, 0);
                        if (json_object_is_type(v, json_type_string) && strlen(json_object_get_string(v)) < size)
                                snprintf(id, size, "%s", json_object_get_string(v));
                }
                r = 0;
        }
        json_object_put(resp);
        return r;
}

static int domain_id(st *s, const char *domain, char *id, size_t size, jb_err *err) {
        json_object *f = json_object_new_object();
        ADD(f, "name", json_object_new_string(domain));
        return query_one(s, "x:Domain/query", f, id, size, err);
}

static int need_domain(st *s, const char *domain, char *id, size_t size, jb_err *err) {
        if (domain_id(s, domain, id, size, err) < 0)
                return -1;
        if (!id[0])
                return jb_err_set(err, JB_E_NOT_FOUND, "%s is not a mail domain here (mail.domain.upsert first)",
                                  domain);
        return 0;
}

static int account_id(st *s, const char *did, const char *local, char *id, size_t size, jb_err *err) {
        json_object *f = json_object_new_object();
        ADD(f, "name", json_object_new_string(local));
        ADD(f, "domainId", json_object_new_string(did));
        return query_one(s, "x:Account/query", f, id, size, err);
}

/* The mailbox's domain id and account id; NOT_FOUND when either is missing. */
static int need_account(st *s, const mail_req *r, char *did, char *aid, size_t size, jb_err *err) {
        if (need_domain(s, r->domain, did, size, err) < 0 || account_id(s, did, r->local_part, aid, size, err) < 0)
                return -1;
        if (!aid[0])
                return jb_err_set(err, JB_E_NOT_FOUND, "no mailbox %s", r->address);
        return 0;
}

/* x:Account/get of one account: *resp owns it; the object is borrowed. */
static json_object *account_get(st *s, const char *aid, const char *const *props, json_object **resp, jb_err *err) {
        json_object *args = json_object_new_object(), *ids = json_object_new_array(), *p = json_object_new_array();
        json_object *res, *list;

        json_object_array_add(ids, json_object_new_string(aid));
        for (; *props; props++)
                json_object_array_add(p, json_object_new_string(*props));
        ADD(args, "ids", ids);
        ADD(args, "properties", p);
        res = call(s, "x:Account/get", args, resp, err);
        if (!res)
                return NULL;
        list = obj(res, "list");
        if (!list || !json_object_is_type(list, json_type_array) || json_object_array_length(list) < 1) {
                jb_err_set(err, JB_E_NOT_FOUND, "account %s is gone", aid);
                return NULL;
        }
        return json_object_array_get_idx(list, 0);
}

/* One set call with a single create/update/destroy; what: for messages. */
static int set_one(st *s, const char *method, const char *kind, const char *id, json_object *value, const char *what,
                   char *created, size_t size, jb_err *err) {
        json_object *args = json_object_new_object(), *resp = NULL, *res;
        int r = -1;

        if (strcmp(kind, "destroy") == 0) {
                json_object *ids = json_object_new_array();
                json_object_array_add(ids, json_object_new_string(id));
                ADD(args, "destroy", ids);
        } else {
                json_object *m = json_object_new_object();
                ADD(m, id, value);
                ADD(args, kind, m);
        }
        res = call(s, method, args, &resp, err);
        if (!res)
                goto out;
        if (strcmp(kind, "create") == 0) {
                json_object *c = obj(obj(res, "created"), id);
                if (set_outcome(res, "notCreated", id, what, false, err) < 0)
                        goto out;
                if (!c || !str(c, "id")) {
                        jb_err_set(err, JB_E_SERVICE_FAILED, "%s: Stalwart created nothing", what);
                        goto out;
                }
                if (created)
                        snprintf(created, size, "%s", str(c, "id"));
        } else if (set_outcome(res, strcmp(kind, "update") == 0 ? "notUpdated" : "notDestroyed", id, what,
                               strcmp(kind, "destroy") == 0, err) < 0)
                goto out;
        r = 0;
out:
        json_object_put(resp);
        return r;
}

/* Stalwart caches successful Basic logins with no expiry: after a
 * password change or a removal, its caches are dropped. */
static int invalidate_caches(st *s, jb_err *err) {
        json_object *a = json_object_new_object();
        ADD(a, "@type", json_object_new_string("InvalidateCaches"));
        if (set_one(s, "x:Action/set", "create", "i1", a, "invalidate caches", NULL, 0, err) < 0)
                return -1;
        ADD(s->ctx->result, "cache_flushed", json_object_new_boolean(true));
        return 0;
}

static int st_open(st *s, mail_ctx *ctx, jb_err *err) {
        memset(s, 0, sizeof *s);
        s->ctx = ctx;
        return read_token(s, err);
}

static void st_close(st *s) {
        explicit_bzero(s->token, sizeof s->token);
}

/* ---- domains ---- */

static json_object *domain_object(const char *domain) {
        static const char *const manual[] = { "dkimManagement", "dnsManagement", "certificateManagement" };
        json_object *d = json_object_new_object(), *v;

        ADD(d, "name", json_object_new_string(domain));
        ADD(d, "isEnabled", json_object_new_boolean(true));
        for (size_t i = 0; i < 3; i++) {
                v = json_object_new_object();
                ADD(v, "@type", json_object_new_string("Manual"));
                ADD(d, manual[i], v);
        }
        v = json_object_new_object();
        ADD(v, "@type", json_object_new_string("Enabled"));
        ADD(d, "subAddressing", v);
        return d;
}

static int domain_upsert(mail_ctx *ctx, const mail_req *r, jb_err *err) {
        char id[256];
        st s;
        int rc = -1;

        if (st_open(&s, ctx, err) == 0 && domain_id(&s, r->domain, id, sizeof id, err) == 0) {
                if (id[0])
                        rc = 0;
                else if (ctx->dry_run)
                        rc = 1;
                else if (set_one(&s, "x:Domain/set", "create", "d1", domain_object(r->domain), "create domain", NULL,
                                 0, err) == 0)
                        rc = 1;
        }
        st_close(&s);
        return rc;
}

/* Every account id of a domain (paged: RFC 8620 /query position). */
static json_object *domain_accounts(st *s, const char *did, jb_err *err) {
        json_object *all = json_object_new_array();

        for (;;) {
                json_object *args = json_object_new_object(), *f = json_object_new_object(), *resp, *res, *ids;
                size_t n, got = json_object_array_length(all);
                int64_t total;

                ADD(f, "domainId", json_object_new_string(did));
                ADD(args, "filter", f);
                ADD(args, "position", json_object_new_int64((int64_t) got));
                ADD(args, "limit", json_object_new_int(500));
                res = call(s, "x:Account/query", args, &resp, err);
                ids = res ? obj(res, "ids") : NULL;
                if (!ids || !json_object_is_type(ids, json_type_array)) {
                        if (res)
                                jb_err_set(err, JB_E_SERVICE_FAILED, "x:Account/query: no ids");
                        json_object_put(resp);
                        json_object_put(all);
                        return NULL;
                }
                n = json_object_array_length(ids);
                for (size_t i = 0; i < n; i++)
                        json_object_array_add(all, json_object_get(json_object_array_get_idx(ids, i)));
                total = obj(res, "total") ? json_object_get_int64(obj(res, "total")) : (int64_t) (got + n);
                json_object_put(resp);
                if (n == 0 || (int64_t) json_object_array_length(all) >= total)
                        return all;
        }
}

static int domain_delete(mail_ctx *ctx, const mail_req *r, jb_err *err) {
        json_object *accounts = NULL;
        char did[256];
        size_t n;
        st s;
        int rc = -1;

        if (st_open(&s, ctx, err) < 0 || domain_id(&s, r->domain, did, sizeof did, err) < 0)
                goto out;
        if (!did[0]) {
                rc = 0;
                goto out;
        }
        if (!(accounts = domain_accounts(&s, did, err)))
                goto out;
        n = json_object_array_length(accounts);
        if (n > 0 && !r->purge) {
                jb_err_set(err, JB_E_CONFLICT, "%s still has %zu mailbox%s (purge deletes them and their mail)",
                           r->domain, n, n == 1 ? "" : "es");
                goto out;
        }
        if (ctx->dry_run) {
                rc = 1;
                goto out;
        }
        for (size_t i = 0; i < n; i++) {
                const char *aid = json_object_get_string(json_object_array_get_idx(accounts, i));
                if (set_one(&s, "x:Account/set", "destroy", aid, NULL, "destroy mailbox", NULL, 0, err) < 0)
                        goto out;
        }
        if (set_one(&s, "x:Domain/set", "destroy", did, NULL, "destroy domain", NULL, 0, err) < 0)
                goto out;
        if (n > 0 && invalidate_caches(&s, err) < 0)
                goto out;
        rc = 1;
out:
        json_object_put(accounts);
        st_close(&s);
        return rc;
}

/* ---- mailboxes ---- */

static void fingerprint(const char *hash, char *out, size_t size) {
        uint64_t h = 1469598103934665603ULL;

        for (const unsigned char *p = (const unsigned char *) hash; *p; p++) {
                h ^= *p;
                h *= 1099511628211ULL;
        }
        snprintf(out, size, FP_PREFIX "%016llx", (unsigned long long) h);
}

static json_object *credentials(const char *hash) {
        json_object *c = json_object_new_object(), *p = json_object_new_object();
        ADD(p, "@type", json_object_new_string("Password"));
        ADD(p, "secret", json_object_new_string(hash));
        ADD(c, "0", p);
        return c;
}

static int64_t quota_of(json_object *account) {
        json_object *q = obj(obj(account, "quotas"), "maxDiskQuota");
        return q ? json_object_get_int64(q) : 0;
}

static const char *const acct_props[] = { "description", "quotas", NULL };

static int mailbox_create(mail_ctx *ctx, const mail_req *r, jb_err *err) {
        char did[256], aid[256], fp[64];
        json_object *resp = NULL, *a, *patch = NULL;
        int64_t bytes = r->quota_mib * 1024 * 1024;
        st s;
        int rc = -1;

        fingerprint(r->password_hash, fp, sizeof fp);
        if (st_open(&s, ctx, err) < 0 || need_domain(&s, r->domain, did, sizeof did, err) < 0 ||
            account_id(&s, did, r->local_part, aid, sizeof aid, err) < 0)
                goto out;
        if (!aid[0]) {
                json_object *q = json_object_new_object();

                if (ctx->dry_run) {
                        rc = 1;
                        goto out;
                }
                a = json_object_new_object();
                ADD(a, "@type", json_object_new_string("User"));
                ADD(a, "name", json_object_new_string(r->local_part));
                ADD(a, "domainId", json_object_new_string(did));
                ADD(a, "credentials", credentials(r->password_hash));
                ADD(q, "maxDiskQuota", json_object_new_int64(bytes));
                ADD(a, "quotas", q);
                ADD(a, "description", json_object_new_string(fp));
                if (set_one(&s, "x:Account/set", "create", "a1", a, "create mailbox", NULL, 0, err) == 0 &&
                    invalidate_caches(&s, err) == 0)
                        rc = 1;
                goto out;
        }
        if (!(a = account_get(&s, aid, acct_props, &resp, err)))
                goto out;
        patch = json_object_new_object();
        if (!str(a, "description") || strcmp(str(a, "description"), fp) != 0) {
                ADD(patch, "credentials", credentials(r->password_hash));
                ADD(patch, "description", json_object_new_string(fp));
        }
        if (quota_of(a) != bytes)
                ADD(patch, "quotas/maxDiskQuota", json_object_new_int64(bytes));
        if (json_object_object_length(patch) == 0) {
                rc = 0;
                goto out;
        }
        if (ctx->dry_run) {
                rc = 1;
                goto out;
        }
        rc = set_one(&s, "x:Account/set", "update", aid, json_object_get(patch), "update mailbox", NULL, 0, err);
        if (rc == 0 && obj(patch, "credentials"))
                rc = invalidate_caches(&s, err);
        rc = rc < 0 ? -1 : 1;
out:
        json_object_put(patch);
        json_object_put(resp);
        st_close(&s);
        return rc;
}

static int mailbox_passwd(mail_ctx *ctx, const mail_req *r, jb_err *err) {
        char did[256], aid[256], fp[64];
        json_object *resp = NULL, *a, *patch;
        st s;
        int rc = -1;

        fingerprint(r->password_hash, fp, sizeof fp);
        if (st_open(&s, ctx, err) < 0 || need_account(&s, r, did, aid, sizeof aid, err) < 0 ||
            !(a = account_get(&s, aid, acct_props, &resp, err)))
                goto out;
        if (str(a, "description") && strcmp(str(a, "description"), fp) == 0) {
                rc = 0;
                goto out;
        }
        if (ctx->dry_run) {
                rc = 1;
                goto out;
        }
        patch = json_object_new_object();
        ADD(patch, "credentials", credentials(r->password_hash));
        ADD(patch, "description", json_object_new_string(fp));
        if (set_one(&s, "x:Account/set", "update", aid, patch, "set password", NULL, 0, err) == 0 &&
            invalidate_caches(&s, err) == 0)
                rc = 1;
out:
        json_object_put(resp);
        st_close(&s);
        return rc;
}

static int mailbox_set_quota(mail_ctx *ctx, const mail_req *r, jb_err *err) {
        char did[256], aid[256];
        json_object *resp = NULL, *a, *patch;
        int64_t bytes = r->quota_mib * 1024 * 1024;
        st s;
        int rc = -1;

        if (st_open(&s, ctx, err) < 0 || need_account(&s, r, did, aid, sizeof aid, err) < 0 ||
            !(a = account_get(&s, aid, acct_props, &resp, err)))
                goto out;
        if (quota_of(a) == bytes) {
                rc = 0;
                goto out;
        }
        if (ctx->dry_run) {
                rc = 1;
                goto out;
        }
        patch = json_object_new_object();
        ADD(patch, "quotas/maxDiskQuota", json_object_new_int64(bytes));
        if (set_one(&s, "x:Account/set", "update", aid, patch, "set quota", NULL, 0, err) == 0)
                rc = 1;
out:
        json_object_put(resp);
        st_close(&s);
        return rc;
}

/* Stalwart removes an account's mail with the account: without purge the
 * module cannot keep the mail, so it refuses rather than lose it. */
static int mailbox_delete(mail_ctx *ctx, const mail_req *r, jb_err *err) {
        char did[256], aid[256];
        st s;
        int rc = -1;

        if (st_open(&s, ctx, err) < 0 || need_domain(&s, r->domain, did, sizeof did, err) < 0 ||
            account_id(&s, did, r->local_part, aid, sizeof aid, err) < 0)
                goto out;
        if (!aid[0]) {
                rc = 0;
                goto out;
        }
        if (!r->purge) {
                jb_err_set(err, JB_E_CONFLICT, "Stalwart deletes a mailbox's mail with it: pass purge to delete %s",
                           r->address);
                goto out;
        }
        if (ctx->dry_run) {
                rc = 1;
                goto out;
        }
        if (set_one(&s, "x:Account/set", "destroy", aid, NULL, "destroy mailbox", NULL, 0, err) == 0 &&
            invalidate_caches(&s, err) == 0)
                rc = 1;
out:
        st_close(&s);
        return rc;
}

static json_object *aliases_of(json_object *account, const char *did, const char *domain) {
        json_object *out = json_object_new_array(), *al = obj(account, "aliases");

        if (!al || !json_object_is_type(al, json_type_object))
                return out;
        json_object_object_foreach(al, k, v) {
                const char *name = str(v, "name"), *d = str(v, "domainId");
                char addr[MAIL_ADDR_MAX * 2];

                (void) k;
                if (name && d && strcmp(d, did) == 0) {
                        snprintf(addr, sizeof addr, "%s@%s", name, domain);
                        json_object_array_add(out, json_object_new_string(addr));
                }
        }
        return out;
}

static int mailbox_get(mail_ctx *ctx, const mail_req *r, jb_err *err) {
        static const char *const props[] = { "name", "quotas", "aliases", NULL };
        char did[256], aid[256];
        json_object *resp = NULL, *a;
        st s;
        int rc = -1;

        if (st_open(&s, ctx, err) == 0 && need_account(&s, r, did, aid, sizeof aid, err) == 0 &&
            (a = account_get(&s, aid, props, &resp, err))) {
                ADD(ctx->result, "address", json_object_new_string(r->address));
                ADD(ctx->result, "local_part", json_object_new_string(r->local_part));
                ADD(ctx->result, "domain", json_object_new_string(r->domain));
                ADD(ctx->result, "quota_mib", json_object_new_int64(quota_of(a) / (1024 * 1024)));
                ADD(ctx->result, "aliases", aliases_of(a, did, r->domain));
                rc = 0;
        }
        json_object_put(resp);
        st_close(&s);
        return rc;
}

static int mailbox_list(mail_ctx *ctx, const mail_req *r, jb_err *err) {
        json_object *ids = NULL, *resp = NULL, *res, *list, *out;
        char did[256];
        st s;
        int rc = -1;

        if (st_open(&s, ctx, err) < 0 || need_domain(&s, r->domain, did, sizeof did, err) < 0 ||
            !(ids = domain_accounts(&s, did, err)))
                goto out;
        out = json_object_new_array();
        ADD(ctx->result, "mailboxes", out);
        if (json_object_array_length(ids) > 0) {
                json_object *args = json_object_new_object(), *p = json_object_new_array();

                json_object_array_add(p, json_object_new_string("name"));
                json_object_array_add(p, json_object_new_string("quotas"));
                ADD(args, "ids", json_object_get(ids));
                ADD(args, "properties", p);
                if (!(res = call(&s, "x:Account/get", args, &resp, err)))
                        goto out;
                list = obj(res, "list");
                for (size_t i = 0; list && i < json_object_array_length(list); i++) {
                        json_object *a = json_object_array_get_idx(list, i), *m;
                        const char *name = str(a, "name");
                        char addr[MAIL_ADDR_MAX * 2];

                        if (!name)
                                continue;
                        snprintf(addr, sizeof addr, "%s@%s", name, r->domain);
                        m = json_object_new_object();
                        ADD(m, "address", json_object_new_string(addr));
                        ADD(m, "local_part", json_object_new_string(name));
                        ADD(m, "domain", json_object_new_string(r->domain));
                        ADD(m, "quota_mib", json_object_new_int64(quota_of(a) / (1024 * 1024)));
                        json_object_array_add(out, m);
                }
        }
        rc = 0;
out:
        json_object_put(resp);
        json_object_put(ids);
        st_close(&s);
        return rc;
}

static int mailbox_usage(mail_ctx *ctx, const mail_req *r, jb_err *err) {
        static const char *const props[] = { "usedDiskQuota", "quotas", NULL };
        char did[256], aid[256];
        json_object *resp = NULL, *a;
        st s;
        int rc = -1;

        if (st_open(&s, ctx, err) == 0 && need_account(&s, r, did, aid, sizeof aid, err) == 0 &&
            (a = account_get(&s, aid, props, &resp, err))) {
                json_object *u = obj(a, "usedDiskQuota");
                ADD(ctx->result, "used_bytes", json_object_new_int64(u ? json_object_get_int64(u) : 0));
                ADD(ctx->result, "quota_mib", json_object_new_int64(quota_of(a) / (1024 * 1024)));
                rc = 0;
        }
        json_object_put(resp);
        st_close(&s);
        return rc;
}

/* ---- the managed Sieve script ---- */

typedef struct script {
        char id[256];           /* ours, "" when none */
        bool active;            /* ours is active */
        bool other_active;      /* another script is */
        json_object *meta;      /* from its stamp line, {} when none (owned) */
        char *text;             /* its bytes (owned) */
        size_t len;
} script;

static void script_free(script *sc) {
        json_object_put(sc->meta);
        free(sc->text);
}

static void base_url(st *s, const char *what, const char *aid, char *out, size_t size) {
        snprintf(out, size, "%s/%s/%s", s->ctx->cfg.stalwart_url, what, aid);
}

static int script_load(st *s, const char *aid, script *sc, jb_err *err) {
        json_object *args = json_object_new_object(), *resp = NULL, *res, *list;
        char blob[256] = "";
        int r = -1;

        memset(sc, 0, sizeof *sc);
        ADD(args, "accountId", json_object_new_string(aid));
        res = call(s, "SieveScript/get", args, &resp, err);
        if (!res)
                goto out;
        list = obj(res, "list");
        for (size_t i = 0; list && i < json_object_array_length(list); i++) {
                json_object *e = json_object_array_get_idx(list, i), *act = obj(e, "isActive");
                bool on = act && json_object_get_boolean(act);
                const char *name = str(e, "name");

                if (name && strcmp(name, SCRIPT_NAME) == 0 && str(e, "id")) {
                        snprintf(sc->id, sizeof sc->id, "%s", str(e, "id"));
                        snprintf(blob, sizeof blob, "%s", str(e, "blobId") ? str(e, "blobId") : "");
                        sc->active = on;
                } else if (on)
                        sc->other_active = true;
        }
        if (sc->id[0] && blob[0]) {
                char url[1024];
                body b;

                snprintf(url, sizeof url, "%s/download/%s/%s/" SCRIPT_NAME ".sieve", s->ctx->cfg.stalwart_url, aid,
                         blob);
                if (http(s, url, "application/sieve", NULL, 0, &b, err) < 0)
                        goto out;
                sc->text = b.data;
                sc->len = b.len;
                sc->meta = jb_stamp_parse(MAIL_STAMP, b.data ? b.data : "", b.len);
                if (!sc->meta) {
                        jb_err_set(err, JB_E_CONFLICT, "the Sieve script %s was not written by this module",
                                   SCRIPT_NAME);
                        goto out;
                }
        }
        if (!sc->meta)
                sc->meta = json_object_new_object();
        r = 0;
out:
        json_object_put(resp);
        return r;
}

/* meta → the script's bytes; the vacation answers for the mailbox and
 * its aliases. */
static int script_render(json_object *meta, const char *address, json_object *aliases, char **out, size_t *len,
                         jb_err *err) {
        mail_external ext[MAIL_EXTERNALS_MAX];
        const char *addrs[MAIL_ALIASES_MAX + 1];
        mail_sieve sv = { .externals = ext, .addresses = addrs };
        json_object *list, *vac, *v;
        mail_buf b = { 0 };
        char *text = NULL;
        size_t tlen = 0;
        int r;

        addrs[sv.n_addresses++] = address;
        for (size_t i = 0; aliases && i < json_object_array_length(aliases) && sv.n_addresses <= MAIL_ALIASES_MAX; i++)
                addrs[sv.n_addresses++] = json_object_get_string(json_object_array_get_idx(aliases, i));
        if ((list = obj(meta, "externals")))
                for (size_t i = 0; i < json_object_array_length(list) && sv.n_externals < MAIL_EXTERNALS_MAX; i++) {
                        json_object *e = json_object_array_get_idx(list, i);
                        ext[sv.n_externals].target = str(e, "target");
                        ext[sv.n_externals].keep_copy = (v = obj(e, "keep_copy")) && json_object_get_boolean(v);
                        if (ext[sv.n_externals].target)
                                sv.n_externals++;
                }
        if ((vac = obj(meta, "vacation"))) {
                sv.vacation.on = true;
                sv.vacation.subject = str(vac, "subject");
                sv.vacation.body = str(vac, "body");
                sv.vacation.start = str(vac, "start");
                sv.vacation.end = str(vac, "end");
                sv.vacation.interval_days = (v = obj(vac, "interval_days")) ? json_object_get_int64(v) : 1;
        }
        if (mail_sieve_render(&sv, &b, err) < 0 || mail_buf_take(&b, &text, &tlen, err) < 0) {
                mail_buf_free(&b);
                return -1;
        }
        r = jb_stamp_compose(MAIL_STAMP, meta, text, tlen, MAIL_SCRIPT_MAX * 2, out, len, err);
        free(text);
        return r;
}

static int upload(st *s, const char *aid, const char *text, size_t len, char *blob, size_t size, jb_err *err) {
        char url[1024];
        json_object *o;
        body b;
        int r = -1;

        base_url(s, "upload", aid, url, sizeof url);
        if (http(s, url, "application/sieve", text, len, &b, err) < 0)
                return -1;
        o = parse_json(&b, err);
        if (o && str(o, "blobId") && strlen(str(o, "blobId")) < size) {
                snprintf(blob, size, "%s", str(o, "blobId"));
                r = 0;
        } else if (o)
                jb_err_set(err, JB_E_SERVICE_FAILED, "upload: no blobId in Stalwart's answer");
        json_object_put(o);
        free(b.data);
        return r;
}

/* The first SetError of a set answer, mapped; 0 when there is none. */
static int first_set_error(json_object *res, const char *what, jb_err *err) {
        static const char *const members[] = { "notCreated", "notUpdated", "notDestroyed" };

        for (size_t i = 0; i < 3; i++) {
                json_object *m = obj(res, members[i]);
                struct json_object_iterator it, end;

                if (!m || !json_object_is_type(m, json_type_object))
                        continue;
                it = json_object_iter_begin(m);
                end = json_object_iter_end(m);
                if (!json_object_iter_equal(&it, &end))
                        return mail_jmap_set_error_to_err(json_object_iter_peek_value(&it), what, err);
        }
        return 0;
}

static int sieve_set(st *s, const char *aid, json_object *extra, const char *what, jb_err *err) {
        json_object *resp = NULL, *res;
        int r = -1;

        ADD(extra, "accountId", json_object_new_string(aid));
        res = call(s, "SieveScript/set", extra, &resp, err);
        if (res)
                r = first_set_error(res, what, err);
        json_object_put(resp);
        return r;
}

/* Converges the script of the mailbox to meta ({}: none). */
static int script_apply(st *s, const char *aid, const char *address, json_object *aliases, script *sc,
                        json_object *meta, jb_err *err) {
        char *text = NULL, blob[256];
        size_t len = 0;
        json_object *args, *m, *v;
        int r = -1;

        if (json_object_object_length(meta) == 0) {
                if (!sc->id[0])
                        return 0;
                if (s->ctx->dry_run)
                        return 1;
                if (sc->active) {
                        /* The active script cannot be destroyed (scriptIsActive). */
                        args = json_object_new_object();
                        m = json_object_new_object();
                        v = json_object_new_object();
                        ADD(v, "isActive", json_object_new_boolean(false));
                        ADD(m, sc->id, v);
                        ADD(args, "update", m);
                        if (sieve_set(s, aid, args, "deactivate script", err) < 0)
                                return -1;
                }
                args = json_object_new_object();
                m = json_object_new_array();
                json_object_array_add(m, json_object_new_string(sc->id));
                ADD(args, "destroy", m);
                return sieve_set(s, aid, args, "destroy script", err) < 0 ? -1 : 1;
        }
        if (sc->other_active)
                return jb_err_set(err, JB_E_CONFLICT, "%s has an active Sieve script of its own; it is never replaced",
                                  address);
        if (script_render(meta, address, aliases, &text, &len, err) < 0)
                return -1;
        if (sc->id[0] && sc->active && sc->text && sc->len == len && memcmp(sc->text, text, len) == 0) {
                r = 0;
                goto out;
        }
        if (s->ctx->dry_run) {
                r = 1;
                goto out;
        }
        if (upload(s, aid, text, len, blob, sizeof blob, err) < 0)
                goto out;
        args = json_object_new_object();
        m = json_object_new_object();
        v = json_object_new_object();
        ADD(v, "blobId", json_object_new_string(blob));
        if (sc->id[0]) {
                ADD(m, sc->id, v);
                ADD(args, "update", m);
                ADD(args, "onSuccessActivateScript", json_object_new_string(sc->id));
        } else {
                ADD(v, "name", json_object_new_string(SCRIPT_NAME));
                ADD(m, "s1", v);
                ADD(args, "create", m);
                ADD(args, "onSuccessActivateScript", json_object_new_string("#s1"));
        }
        if (sieve_set(s, aid, args, "write script", err) == 0)
                r = 1;
out:
        free(text);
        return r;
}

/* Shared by forwarder and autoresponder: part NULL value removes it. */
static int script_part(st *s, const mail_req *r, const char *did, const char *aid, const char *part, json_object *value,
                       jb_err *err) {
        static const char *const props[] = { "aliases", NULL };
        json_object *resp = NULL, *a, *aliases = NULL;
        script sc;
        int rc = -1;

        memset(&sc, 0, sizeof sc);
        if (!(a = account_get(s, aid, props, &resp, err)) || script_load(s, aid, &sc, err) < 0)
                goto out;
        aliases = aliases_of(a, did, r->domain);
        if (value)
                ADD(sc.meta, part, json_object_get(value));
        else
                json_object_object_del(sc.meta, part);
        rc = script_apply(s, aid, r->address, aliases, &sc, sc.meta, err);
out:
        json_object_put(value);
        json_object_put(aliases);
        json_object_put(resp);
        script_free(&sc);
        return rc;
}

/* ---- forwarders ---- */

static json_object *aliases_value(const mail_req *r, const char *did) {
        json_object *o = json_object_new_object();

        for (size_t i = 0; i < r->n_aliases; i++) {
                json_object *a = json_object_new_object();
                char k[24];

                ADD(a, "name", json_object_new_string(r->aliases[i]));
                ADD(a, "domainId", json_object_new_string(did));
                ADD(a, "enabled", json_object_new_boolean(true));
                snprintf(k, sizeof k, "%zu", i);
                ADD(o, k, a);
        }
        return o;
}

static bool same_aliases(json_object *have, const mail_req *r, const char *domain) {
        size_t n = json_object_array_length(have);

        if (n != r->n_aliases)
                return false;
        for (size_t i = 0; i < r->n_aliases; i++) {
                char addr[MAIL_ADDR_MAX * 2];
                bool found = false;

                snprintf(addr, sizeof addr, "%s@%s", r->aliases[i], domain);
                for (size_t j = 0; j < n && !found; j++)
                        found = strcmp(json_object_get_string(json_object_array_get_idx(have, j)), addr) == 0;
                if (!found)
                        return false;
        }
        return true;
}

static json_object *externals_json(const mail_req *r) {
        json_object *a = json_object_new_array();

        for (size_t i = 0; i < r->n_externals; i++) {
                json_object *e = json_object_new_object();
                ADD(e, "target", json_object_new_string(r->externals[i].target));
                ADD(e, "keep_copy", json_object_new_boolean(r->externals[i].keep_copy));
                json_object_array_add(a, e);
        }
        return a;
}

static int set_aliases(st *s, const mail_req *r, const char *did, const char *aid, jb_err *err) {
        static const char *const props[] = { "aliases", NULL };
        json_object *resp = NULL, *a, *have = NULL, *patch;
        int rc = -1;

        if (!(a = account_get(s, aid, props, &resp, err)))
                goto out;
        have = aliases_of(a, did, r->domain);
        if (same_aliases(have, r, r->domain)) {
                rc = 0;
                goto out;
        }
        if (s->ctx->dry_run) {
                rc = 1;
                goto out;
        }
        patch = json_object_new_object();
        ADD(patch, "aliases", aliases_value(r, did));
        if (set_one(s, "x:Account/set", "update", aid, patch, "set aliases", NULL, 0, err) == 0)
                rc = 1;
out:
        json_object_put(have);
        json_object_put(resp);
        return rc;
}

static int forwarder_upsert(mail_ctx *ctx, const mail_req *r, jb_err *err) {
        char did[256], aid[256];
        st s;
        int rc = -1, ra, rs;

        if (st_open(&s, ctx, err) == 0 && need_account(&s, r, did, aid, sizeof aid, err) == 0 &&
            (ra = set_aliases(&s, r, did, aid, err)) >= 0 &&
            (rs = script_part(&s, r, did, aid, "externals", r->n_externals ? externals_json(r) : NULL, err)) >= 0)
                rc = ra || rs;
        st_close(&s);
        return rc;
}

static int forwarder_delete(mail_ctx *ctx, const mail_req *r, jb_err *err) {
        char did[256], aid[256];
        mail_req none = *r;
        st s;
        int rc = -1, ra, rs;

        none.n_aliases = 0;
        none.n_externals = 0;
        if (st_open(&s, ctx, err) < 0 || need_domain(&s, r->domain, did, sizeof did, err) < 0 ||
            account_id(&s, did, r->local_part, aid, sizeof aid, err) < 0)
                goto out;
        if (!aid[0]) {
                rc = 0;
                goto out;
        }
        if ((ra = set_aliases(&s, &none, did, aid, err)) >= 0 &&
            (rs = script_part(&s, r, did, aid, "externals", NULL, err)) >= 0)
                rc = ra || rs;
out:
        st_close(&s);
        return rc;
}

/* ---- autoresponders ---- */

static int autoresponder_upsert(mail_ctx *ctx, const mail_req *r, jb_err *err) {
        const mail_vacation *v = &r->vacation;
        char did[256], aid[256];
        json_object *o;
        st s;
        int rc = -1;

        if (st_open(&s, ctx, err) < 0 || need_account(&s, r, did, aid, sizeof aid, err) < 0)
                goto out;
        o = json_object_new_object();
        ADD(o, "subject", json_object_new_string(v->subject));
        ADD(o, "body", json_object_new_string(v->body));
        if (v->start)
                ADD(o, "start", json_object_new_string(v->start));
        if (v->end)
                ADD(o, "end", json_object_new_string(v->end));
        ADD(o, "interval_days", json_object_new_int64(v->interval_days));
        rc = script_part(&s, r, did, aid, "vacation", o, err);
out:
        st_close(&s);
        return rc;
}

static int autoresponder_delete(mail_ctx *ctx, const mail_req *r, jb_err *err) {
        char did[256], aid[256];
        st s;
        int rc = -1;

        if (st_open(&s, ctx, err) < 0 || need_domain(&s, r->domain, did, sizeof did, err) < 0 ||
            account_id(&s, did, r->local_part, aid, sizeof aid, err) < 0)
                goto out;
        rc = aid[0] ? script_part(&s, r, did, aid, "vacation", NULL, err) : 0;
out:
        st_close(&s);
        return rc;
}

/* ---- catch-all ---- */

static int catchall_set(mail_ctx *ctx, const mail_req *r, jb_err *err) {
        static const char *const props[] = { "catchAllAddress", NULL };
        json_object *args, *ids, *p, *resp = NULL, *res, *list, *d, *patch;
        const char *have;
        char did[256];
        st s;
        int rc = -1;

        if (st_open(&s, ctx, err) < 0 || need_domain(&s, r->domain, did, sizeof did, err) < 0)
                goto out;
        args = json_object_new_object();
        ids = json_object_new_array();
        p = json_object_new_array();
        json_object_array_add(ids, json_object_new_string(did));
        json_object_array_add(p, json_object_new_string(props[0]));
        ADD(args, "ids", ids);
        ADD(args, "properties", p);
        if (!(res = call(&s, "x:Domain/get", args, &resp, err)))
                goto out;
        list = obj(res, "list");
        d = list && json_object_array_length(list) > 0 ? json_object_array_get_idx(list, 0) : NULL;
        have = d ? str(d, "catchAllAddress") : NULL;
        if ((!have && !r->target) || (have && r->target && strcmp(have, r->target) == 0)) {
                rc = 0;
                goto out;
        }
        if (ctx->dry_run) {
                rc = 1;
                goto out;
        }
        patch = json_object_new_object();
        ADD(patch, "catchAllAddress", r->target ? json_object_new_string(r->target) : NULL);
        if (set_one(&s, "x:Domain/set", "update", did, patch, "set catch-all", NULL, 0, err) == 0)
                rc = 1;
out:
        json_object_put(resp);
        st_close(&s);
        return rc;
}

const mail_backend mail_backend_stalwart = {
        .name = "stalwart",
        .domain_upsert = domain_upsert,
        .domain_delete = domain_delete,
        .mailbox_create = mailbox_create,
        .mailbox_passwd = mailbox_passwd,
        .mailbox_set_quota = mailbox_set_quota,
        .mailbox_delete = mailbox_delete,
        .mailbox_get = mailbox_get,
        .mailbox_list = mailbox_list,
        .mailbox_usage = mailbox_usage,
        .forwarder_upsert = forwarder_upsert,
        .forwarder_delete = forwarder_delete,
        .autoresponder_upsert = autoresponder_upsert,
        .autoresponder_delete = autoresponder_delete,
        .catchall_set = catchall_set,
};
