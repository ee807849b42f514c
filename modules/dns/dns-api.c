/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The PowerDNS HTTP API client: one libcurl handle per worker, so that
 * its connection to pdns stays open between requests (a new connection
 * per call costs several times the request itself). The API key is read
 * from a root-only file at each call, so a rotated key needs no restart,
 * and never leaves this file: not in a log line, an error or an answer. */

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jabali/call.h>

#include "dns-internal.h"
#include "dns-module.h"

#define KEY_MAX 512
#define DEADLINE_MARGIN_MS 50
/* A zone of the largest allowed size answers well below this. */
#define RESPONSE_MAX (64u << 20)

static CURL *handle;

typedef struct buf {
        char *data;
        size_t len, cap;
        bool overflow;
} buf;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata) {
        buf *b = userdata;
        size_t n = size * nmemb;

        if (b->len + n + 1 > RESPONSE_MAX) {
                b->overflow = true;
                return 0;
        }
        if (b->len + n + 1 > b->cap) {
                size_t cap = b->cap ? b->cap : 8192;
                char *d;

                while (cap < b->len + n + 1)
                        cap *= 2;
                d = realloc(b->data, cap);
                if (!d)
                        return 0;
                b->data = d;
                b->cap = cap;
        }
        memcpy(b->data + b->len, ptr, n);
        b->len += n;
        b->data[b->len] = '\0';
        return n;
}

/* The key from a regular file owned by root and closed to group and
 * others, without its final newline. */
static int read_key(const char *path, char key[KEY_MAX], jb_err *err) {
        struct stat st;
        ssize_t n;
        int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);

        if (fd < 0)
                return jb_err_set(err, JB_E_CONFIG_INVALID, "cannot open the PowerDNS API key file %s: %s", path,
                                  strerror(errno));
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                close(fd);
                return jb_err_set(err, JB_E_CONFIG_INVALID, "the PowerDNS API key file %s is not a regular file", path);
        }
        if (st.st_uid != 0 || (st.st_mode & 077) != 0) {
                close(fd);
                return jb_err_set(err, JB_E_CONFIG_INVALID,
                                  "the PowerDNS API key file %s must be owned by root and closed to group and others "
                                  "(it is uid %u, mode %04o)",
                                  path, (unsigned) st.st_uid, (unsigned) (st.st_mode & 07777));
        }
        n = read(fd, key, KEY_MAX);
        close(fd);
        if (n < 0 || n == KEY_MAX)
                return jb_err_set(err, JB_E_CONFIG_INVALID, "the PowerDNS API key file %s is unreadable or too long",
                                  path);
        while (n > 0 && (key[n - 1] == '\n' || key[n - 1] == '\r' || key[n - 1] == ' '))
                n--;
        key[n] = '\0';
        /* It goes into a header line: printable ASCII only. */
        for (ssize_t i = 0; i < n; i++)
                if ((unsigned char) key[i] < 0x21 || (unsigned char) key[i] > 0x7e) {
                        explicit_bzero(key, KEY_MAX);
                        return jb_err_set(err, JB_E_CONFIG_INVALID,
                                          "the PowerDNS API key file %s holds more than one printable word", path);
                }
        if (n == 0)
                return jb_err_set(err, JB_E_CONFIG_INVALID, "the PowerDNS API key file %s is empty", path);
        return 0;
}

void dns_api_close(void) {
        if (handle)
                curl_easy_cleanup(handle);
        handle = NULL;
}

static int get_handle(jb_err *err) {
        if (handle)
                return 0;
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                return jb_err_set(err, JB_E_INTERNAL, "libcurl did not initialise");
        handle = curl_easy_init();
        if (!handle)
                return jb_err_set(err, JB_E_INTERNAL, "libcurl did not initialise");
        return 0;
}

/* A transfer that failed before an HTTP status came back. */
static int transport_error(const dns_cfg *c, CURLcode rc, const char *detail, bool deadline, jb_err *err) {
        if (rc == CURLE_OPERATION_TIMEDOUT && deadline)
                return jb_err_set(err, JB_E_TIMEOUT, "the PowerDNS API at %s did not answer before the deadline",
                                  c->api_url);
        return jb_err_set(err, JB_E_SERVICE_FAILED, "the PowerDNS API at %s is unreachable: %s", c->api_url,
                          detail[0] ? detail : curl_easy_strerror(rc));
}

static int setup(const dns_cfg *c, const char *method, const char *url, const char *body, buf *b,
                 struct curl_slist *hdr, long timeout_ms, char *errbuf) {
        CURLcode rc = CURLE_OK;

        curl_easy_reset(handle);        /* options only: the open connection stays */
#define SET(opt, val) \
        if (rc == CURLE_OK) \
        rc = curl_easy_setopt(handle, opt, val)
        SET(CURLOPT_URL, url);
        SET(CURLOPT_PROTOCOLS_STR, "http,https");
        SET(CURLOPT_NOSIGNAL, 1L);
        SET(CURLOPT_FOLLOWLOCATION, 0L);
        SET(CURLOPT_HTTPHEADER, hdr);
        SET(CURLOPT_WRITEFUNCTION, on_data);
        SET(CURLOPT_WRITEDATA, b);
        SET(CURLOPT_ERRORBUFFER, errbuf);
        SET(CURLOPT_TIMEOUT_MS, timeout_ms);
        SET(CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 5000 ? timeout_ms : 5000L);
        SET(CURLOPT_CUSTOMREQUEST, method);
        if (body) {
                SET(CURLOPT_POSTFIELDS, body);
                SET(CURLOPT_POSTFIELDSIZE, (long) strlen(body));
        } else if (strcmp(method, "GET") != 0) {
                SET(CURLOPT_POSTFIELDS, "");
                SET(CURLOPT_POSTFIELDSIZE, 0L);
        }
#undef SET
        (void) c;
        return rc == CURLE_OK ? 0 : -1;
}

int dns_api_call(jb_call *call, const dns_cfg *c, const char *method, const char *path, json_object *body,
                 dns_reply *reply, jb_err *err) {
        char key[KEY_MAX], hkey[KEY_MAX + 16], url[2048], errbuf[CURL_ERROR_SIZE] = "";
        struct curl_slist *hdr = NULL, *h2;
        buf b = { 0 };
        const char *text = body ? json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN) : NULL;
        /* The master kills the worker at the deadline: give up a little
         * before it, to answer TIMEOUT rather than be killed. */
        uint64_t left = call ? jb_call_remaining_ms(call) : (uint64_t) c->timeout_ms;
        bool by_deadline = left <= (uint64_t) c->timeout_ms + DEADLINE_MARGIN_MS;
        long timeout = by_deadline ? (long) left - DEADLINE_MARGIN_MS : (long) c->timeout_ms;
        CURLcode rc;
        int r = -1;

        *reply = (dns_reply) { 0 };
        if (timeout <= 0)
                return jb_err_set(err, JB_E_TIMEOUT, "no time left to call the PowerDNS API");
        if (snprintf(url, sizeof url, "%s/api/v1/servers/%s%s", c->api_url, c->server_id, path) >= (int) sizeof url)
                return jb_err_set(err, JB_E_INVALID_PARAMS, "the API URL is too long");
        if (get_handle(err) < 0 || read_key(c->api_key_file, key, err) < 0)
                return -1;
        snprintf(hkey, sizeof hkey, "X-API-Key: %s", key);
        explicit_bzero(key, sizeof key);
        hdr = curl_slist_append(NULL, hkey);
        h2 = hdr ? curl_slist_append(hdr, "Content-Type: application/json") : NULL;
        h2 = h2 ? curl_slist_append(h2, "Accept: application/json") : NULL;
        if (!h2) {
                jb_err_set(err, JB_E_INTERNAL, "out of memory");
                goto out;
        }
        if (setup(c, method, url, text, &b, hdr, timeout, errbuf) < 0) {
                jb_err_set(err, JB_E_INTERNAL, "libcurl refused an option");
                goto out;
        }
        rc = curl_easy_perform(handle);
        if (rc != CURLE_OK) {
                if (b.overflow)
                        jb_err_set(err, JB_E_SERVICE_FAILED, "the PowerDNS API answered more than %u bytes", RESPONSE_MAX);
                else
                        transport_error(c, rc, errbuf, by_deadline, err);
                goto out;
        }
        curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &reply->status);
        if (b.len > 0) {
                reply->json = json_tokener_parse(b.data);
                if (!reply->json && reply->status < 300) {
                        jb_err_set(err, JB_E_SERVICE_FAILED, "the PowerDNS API answered HTTP %ld with a body that is not JSON",
                                   reply->status);
                        goto out;
                }
        }
        r = 0;
out:
        /* The slist holds a copy of the header with the key: wipe it first. */
        for (struct curl_slist *s = hdr; s; s = s->next)
                explicit_bzero(s->data, strlen(s->data));
        curl_slist_free_all(hdr);
        explicit_bzero(hkey, sizeof hkey);
        free(b.data);
        if (r < 0)
                dns_reply_free(reply);
        return r;
}

void dns_reply_free(dns_reply *r) {
        if (r->json)
                json_object_put(r->json);
        *r = (dns_reply) { 0 };
}

/* pdns's own words: {"error": "..."} when it gave them. */
static const char *api_message(const dns_reply *r) {
        json_object *e;

        if (r->json && json_object_is_type(r->json, json_type_object) && json_object_object_get_ex(r->json, "error", &e) &&
            json_object_is_type(e, json_type_string))
                return json_object_get_string(e);
        return "no message";
}

int dns_api_error(const dns_reply *r, const char *what, jb_err *err) {
        const char *m = api_message(r);

        switch (r->status) {
        case 401:
        case 403:
                return jb_err_set(err, JB_E_SERVICE_FAILED, "%s: the PowerDNS API refused the key (HTTP %ld)", what,
                                  r->status);
        case 404:
                return jb_err_set(err, JB_E_NOT_FOUND, "%s: not found (%s)", what, m);
        case 409:
                return jb_err_set(err, JB_E_CONFLICT, "%s: %s", what, m);
        case 422:
                /* pdns refused data the module had accepted: nothing was applied. */
                return jb_err_set(err, JB_E_CONFIG_INVALID, "%s: PowerDNS refused it: %s", what, m);
        default:
                return jb_err_set(err, JB_E_SERVICE_FAILED, "%s: the PowerDNS API answered HTTP %ld: %s", what,
                                  r->status, m);
        }
}
