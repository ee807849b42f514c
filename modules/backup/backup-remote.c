/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Remote destinations: sftp (restic over the system's ssh client) and rest
 * (a restic REST server such as rest-server or `rclone serve restic`).
 *
 * Locations are parsed strictly, to a small grammar, before restic runs:
 * whatever the module passes on is either an environment value
 * (RESTIC_REPOSITORY) or part of restic's `-o sftp.command=`, which restic
 * splits on spaces and quotes itself, so a space, a quote or a stray
 * option there would change the ssh command line.
 *
 * Secrets stay out of argv: the ssh command names only files (the key and
 * the pinned known_hosts of secrets_dir). restic 0.14 ignores
 * RESTIC_REST_USERNAME/PASSWORD, so REST credentials must be in the URL;
 * that URL is only ever RESTIC_REPOSITORY, and restic's output is scrubbed
 * of it (restic prints the repository in some errors) before any of it
 * becomes a message. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jabali/fs.h>
#include <jabali/validate.h>

#include "backup-internal.h"

/* How long ssh waits for a TCP connection, and how long a silent server
 * may stay silent during a backup before ssh gives up on it. */
#define SSH_CONNECT_TIMEOUT_S 15
#define SSH_ALIVE_INTERVAL_S 15
#define SSH_ALIVE_COUNT 4

typedef struct remote {
        char user[33];
        char host[256];         /* as written: brackets kept around IPv6 */
        char bare_host[256];    /* without brackets, for ssh */
        unsigned port;
        const char *path;
} remote;

static int bad(jb_err *err, const char *why) {
        return jb_err_set(err, JB_E_INVALID_PARAMS, "destination.location: %s", why);
}

static bool is_lower_digit(char ch) {
        return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
}

/* [a-z_][a-z0-9_-]{0,31}: an account name on the server. */
static bool valid_user(const char *s, size_t n) {
        if (n == 0 || n > 32 || !((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
                return false;
        for (size_t i = 1; i < n; i++)
                if (!is_lower_digit(s[i]) && s[i] != '_' && s[i] != '-')
                        return false;
        return true;
}

/* A host on the local network may have a single-label name ("vault"). */
static bool valid_single_label(const char *s, size_t n) {
        bool digits = true;

        if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
                return false;
        for (size_t i = 0; i < n; i++) {
                if (!is_lower_digit(s[i]) && s[i] != '-')
                        return false;
                if (s[i] < '0' || s[i] > '9')
                        digits = false;
        }
        return !digits;
}

static bool valid_host(const char *s, size_t n) {
        if (n >= 2 && s[0] == '[' && s[n - 1] == ']')
                return jb_valid_ipv6(s + 1, n - 2, NULL);
        return jb_valid_ipv4(s, n, NULL) || jb_valid_domain(s, n, NULL) || valid_single_label(s, n);
}

/* 1..65535, decimal, no sign, no leading zero. */
static bool parse_port(const char *s, size_t n, unsigned *port) {
        unsigned v = 0;

        if (n == 0 || n > 5 || s[0] == '0')
                return false;
        for (size_t i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return false;
                v = v * 10 + (unsigned) (s[i] - '0');
        }
        *port = v;
        return v <= 65535;
}

/* A clean absolute path of [A-Za-z0-9._+-] segments; "/" alone only where
 * root_ok (a REST server's root). */
static bool valid_path(const char *p, bool root_ok) {
        size_t n = strlen(p);

        if (p[0] != '/')
                return false;
        if (n == 1)
                return root_ok;
        for (size_t i = 1; i < n; i++) {
                char ch = p[i];

                if (!is_lower_digit(ch) && !(ch >= 'A' && ch <= 'Z') && !strchr("._+-/", ch))
                        return false;
        }
        return jb_valid_rel_path(p + 1, n - 1, NULL);
}

/* host:port, then the path; `a` is what follows "//" or "user@". */
static int parse_authority(const char *a, remote *r, bool root_ok, jb_err *err) {
        const char *slash = strchr(a, '/'), *colon;
        size_t n;

        if (!slash)
                return bad(err, "needs a path after host:port");
        n = (size_t) (slash - a);
        colon = (n > 0 && a[0] == '[') ? memchr(a, ']', n) : a;
        if (!colon)
                return bad(err, "an IPv6 address needs its closing ']'");
        colon = memchr(colon, ':', (size_t) (slash - colon));
        if (!colon)
                return bad(err, "needs an explicit port (host:port)");
        if ((size_t) (colon - a) >= sizeof r->host || !valid_host(a, (size_t) (colon - a)))
                return bad(err, "the host must be a DNS name, an IPv4 address or an [IPv6] address");
        memcpy(r->host, a, (size_t) (colon - a));
        r->host[colon - a] = '\0';
        if (r->host[0] == '[') {
                memcpy(r->bare_host, r->host + 1, strlen(r->host) - 2);
                r->bare_host[strlen(r->host) - 2] = '\0';
        } else
                memcpy(r->bare_host, r->host, strlen(r->host) + 1);
        if (!parse_port(colon + 1, (size_t) (slash - colon - 1), &r->port))
                return bad(err, "the port must be a number from 1 to 65535");
        r->path = slash;
        if (!valid_path(slash, root_ok))
                return bad(err, "the path must be clean and absolute (no '.', '..' or empty segment; "
                                "letters, digits and ._+- only)");
        return 0;
}

/* Printable ASCII without spaces: everything else is refused before the
 * grammar is even looked at (newlines, NULs, quotes for the shell-like
 * splitting restic does, percent-escapes). */
static int check_bytes(const char *loc, jb_err *err) {
        for (const char *p = loc; *p; p++)
                if ((unsigned char) *p <= ' ' || (unsigned char) *p >= 0x7f || strchr("\"'\\%", *p))
                        return bad(err, "spaces, quotes, backslashes, percent-escapes and control or "
                                        "non-ASCII characters are not accepted");
        return 0;
}

/* sftp://user@host:port/absolute/path */
static int parse_sftp(const char *loc, remote *r, jb_err *err) {
        const char *a = loc + strlen("sftp://"), *at, *slash;

        if (strncmp(loc, "sftp://", 7) != 0)
                return bad(err, "sftp locations read sftp://user@host:port/absolute/path");
        at = strchr(a, '@');
        slash = strchr(a, '/');
        if (!at || (slash && slash < at))
                return bad(err, "needs the account on the server (sftp://user@host:port/path)");
        if ((size_t) (at - a) >= sizeof r->user || !valid_user(a, (size_t) (at - a)))
                return bad(err, "the user must match [a-z_][a-z0-9_-]* (at most 32 bytes)");
        memcpy(r->user, a, (size_t) (at - a));
        r->user[at - a] = '\0';
        return parse_authority(at + 1, r, false, err);
}

/* rest:http(s)://host:port/path, with no credentials in it. */
static int parse_rest(const char *loc, remote *r, const char **scheme_end, jb_err *err) {
        const char *a;

        if (strncmp(loc, "rest:http://", 12) == 0)
                a = loc + 12;
        else if (strncmp(loc, "rest:https://", 13) == 0)
                a = loc + 13;
        else
                return bad(err, "rest locations read rest:http(s)://host:port/path");
        if (strchr(a, '@'))
                return bad(err, "credentials are not accepted in the location; name a file with credentials_ref");
        *scheme_end = a;
        return parse_authority(a, r, true, err);
}

/* restic splits sftp.command on spaces and honours quotes and backslashes:
 * a path carrying one would change the command. */
static int check_command_path(const char *what, const char *p, jb_err *err) {
        for (; *p; p++)
                if ((unsigned char) *p <= ' ' || strchr("\"'\\", *p))
                        return jb_err_set(err, JB_E_CONFLICT,
                                          "%s holds a space, quote or backslash, which restic's "
                                          "sftp.command cannot carry", what);
        return 0;
}

static int sftp_dest(const backup_cfg *c, backup_dest *d, const remote *r, const char *ref, jb_err *err) {
        char key[PATH_MAX], kh[PATH_MAX], kh_ref[160];
        int n;

        if (!ref)
                return jb_err_set(err, JB_E_INVALID_PARAMS, "an sftp destination needs credentials_ref (its ssh key)");
        if (backup_secret_path(c, ref, key, sizeof key, err) < 0)
                return -1;
        snprintf(kh_ref, sizeof kh_ref, "%s.known_hosts", ref);
        if (backup_secret_path(c, kh_ref, kh, sizeof kh, err) < 0) {
                if (err && strcmp(err->code, jb_code_name(JB_E_NOT_FOUND)) == 0)
                        jb_err_set(err, JB_E_NOT_FOUND,
                                   "no pinned host key: secrets_dir needs %s (the server's known_hosts line)", kh_ref);
                return -1;
        }
        if (check_command_path("settings.ssh", c->ssh, err) < 0 ||
            check_command_path("settings.secrets_dir", c->secrets_dir, err) < 0)
                return -1;
        n = snprintf(d->option, sizeof d->option,
                     "sftp.command=%s -F /dev/null -i %s -o IdentitiesOnly=yes -o UserKnownHostsFile=%s "
                     "-o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o BatchMode=yes "
                     "-o ConnectTimeout=%d -o ServerAliveInterval=%d -o ServerAliveCountMax=%d "
                     "-p %u -l %s %s -s sftp",
                     c->ssh, key, kh, SSH_CONNECT_TIMEOUT_S, SSH_ALIVE_INTERVAL_S, SSH_ALIVE_COUNT, r->port,
                     r->user, r->bare_host);
        if (n < 0 || (size_t) n >= sizeof d->option)
                return jb_err_set(err, JB_E_INVALID_PARAMS, "the ssh command for the destination is too long");
        /* restic takes host and user from sftp.command; the location only
         * gives it the path (after the "//"), and names the server in its
         * messages. */
        n = snprintf(d->repository, sizeof d->repository, "sftp://%s@%s:%u/%s", r->user, r->host, r->port, r->path);
        if (n < 0 || (size_t) n >= sizeof d->repository)
                return jb_err_set(err, JB_E_INVALID_PARAMS, "destination.location is too long");
        return 0;
}

/* Percent-encodes all but RFC 3986's unreserved characters. */
static bool encode(char *out, size_t size, const char *s, size_t n) {
        static const char hex[] = "0123456789ABCDEF";
        size_t o = 0;

        for (size_t i = 0; i < n; i++) {
                unsigned char ch = (unsigned char) s[i];

                if (o + 4 > size)
                        return false;
                if (is_lower_digit((char) ch) || (ch >= 'A' && ch <= 'Z') || strchr("-._~", ch)) {
                        out[o++] = (char) ch;
                        continue;
                }
                out[o++] = '%';
                out[o++] = hex[ch >> 4];
                out[o++] = hex[ch & 15];
        }
        out[o] = '\0';
        return true;
}

/* The credentials file: one line, user:password (a final newline is
 * ignored), printable, user non-empty and without ':'. */
static int read_credentials(const backup_cfg *c, const char *ref, char *buf, size_t size, size_t *len,
                            jb_err *err) {
        char path[PATH_MAX], *data = NULL;
        int dfd, r = -1;
        size_t n = 0;

        if (backup_secret_path(c, ref, path, sizeof path, err) < 0)
                return -1;
        dfd = jb_fs_open_root(c->secrets_dir, err);
        if (dfd < 0)
                return -1;
        if (jb_fs_read(dfd, ref, size - 1, &data, &n, err) < 0)
                goto out;
        if (n > 0 && data[n - 1] == '\n')
                n--;
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) data[i] < ' ' || (unsigned char) data[i] == 0x7f) {
                        jb_err_set(err, JB_E_CONFLICT, "secret %s must be a single line user:password", ref);
                        goto out;
                }
        if (n == 0 || data[0] == ':' || !memchr(data, ':', n) || data[n - 1] == ':') {
                jb_err_set(err, JB_E_CONFLICT, "secret %s must read user:password", ref);
                goto out;
        }
        memcpy(buf, data, n);
        buf[n] = '\0';
        *len = n;
        r = 0;
out:
        if (data) {
                explicit_bzero(data, n);
                free(data);
        }
        close(dfd);
        return r;
}

static int rest_dest(const backup_cfg *c, backup_dest *d, const char *scheme_end, const char *ref, jb_err *err) {
        char cred[BACKUP_CRED_MAX], user[BACKUP_CRED_MAX * 3], pw[BACKUP_CRED_MAX * 3];
        const char *colon;
        size_t n = 0;
        int w, r = -1;

        if (!ref) {
                if ((size_t) snprintf(d->repository, sizeof d->repository, "%s", d->location) >= sizeof d->repository)
                        return jb_err_set(err, JB_E_INVALID_PARAMS, "destination.location is too long");
                return 0;
        }
        if (read_credentials(c, ref, cred, sizeof cred, &n, err) < 0)
                return -1;
        colon = strchr(cred, ':');
        if (!encode(user, sizeof user, cred, (size_t) (colon - cred)) ||
            !encode(pw, sizeof pw, colon + 1, n - (size_t) (colon + 1 - cred))) {
                jb_err_set(err, JB_E_CONFLICT, "secret %s is too long", ref);
                goto out;
        }
        w = snprintf(d->repository, sizeof d->repository, "%.*s%s:%s@%s", (int) (scheme_end - d->location),
                     d->location, user, pw, scheme_end);
        if (w < 0 || (size_t) w >= sizeof d->repository) {
                jb_err_set(err, JB_E_INVALID_PARAMS, "destination.location is too long");
                goto out;
        }
        memcpy(d->scrub, colon + 1, n - (size_t) (colon + 1 - cred) + 1);
        r = 0;
out:
        explicit_bzero(cred, sizeof cred);
        explicit_bzero(user, sizeof user);
        explicit_bzero(pw, sizeof pw);
        return r;
}

int backup_remote_from_params(const backup_cfg *c, backup_dest *d, const char *credentials_ref, jb_err *err) {
        remote r = { .port = 0 };
        const char *scheme_end = NULL;

        if (check_bytes(d->location, err) < 0)
                return -1;
        if (strcmp(d->kind, "sftp") == 0)
                return parse_sftp(d->location, &r, err) < 0 ? -1 : sftp_dest(c, d, &r, credentials_ref, err);
        if (strcmp(d->kind, "rest") == 0)
                return parse_rest(d->location, &r, &scheme_end, err) < 0 ? -1
                                                                         : rest_dest(c, d, scheme_end, credentials_ref, err);
        return jb_err_set(err, JB_E_INVALID_PARAMS, "destination.kind %s is not supported", d->kind);
}

/* ---- restic's output ---- */

/* Cuts every occurrence of needle out of s (NUL-terminated, *len bytes). */
static void cut_all(char *s, size_t *len, const char *needle) {
        size_t n = strlen(needle);
        char *p;

        if (n == 0)
                return;
        while ((p = memmem(s, *len, needle, n)) != NULL) {
                memmove(p, p + n, *len - (size_t) (p - s) - n + 1);
                *len -= n;
        }
}

/* Drops the userinfo of every URL ("scheme://user:***@host" becomes
 * "scheme://host"): restic prints the repository with the password
 * masked but the user in it. */
static void cut_userinfo(char *s, size_t *len) {
        char *p = s;

        while ((p = memmem(p, *len - (size_t) (p - s), "://", 3)) != NULL) {
                char *a = p + 3, *q = a;

                while (q < s + *len && !strchr("/@ \t\r\n\"'<>", *q))
                        q++;
                if (q < s + *len && *q == '@') {
                        memmove(a, q + 1, *len - (size_t) (q + 1 - s) + 1);
                        *len -= (size_t) (q + 1 - a);
                }
                p = a;
        }
}

/* Only stderr, where restic's errors go and what messages are made of:
 * stdout is data (JSON, `dump` output) and is never altered; restic masks
 * the password itself in what it prints there (init). */
void backup_remote_scrub(const backup_dest *d, jb_spawn_result *r) {
        char enc[BACKUP_CRED_MAX * 3];

        if (!r->stderr_data)
                return;
        if (d->scrub[0]) {
                cut_all(r->stderr_data, &r->stderr_len, d->scrub);
                if (encode(enc, sizeof enc, d->scrub, strlen(d->scrub)))
                        cut_all(r->stderr_data, &r->stderr_len, enc);
                explicit_bzero(enc, sizeof enc);
        }
        cut_userinfo(r->stderr_data, &r->stderr_len);
}

static bool has(const char *s, const char *what) {
        return strstr(s, what) != NULL;
}

static bool any(const char *s, const char *const *what) {
        for (; *what; what++)
                if (has(s, *what))
                        return true;
        return false;
}

int backup_remote_err(const char *e, jb_err *err) {
        /* What Go's net package, restic's sftp backend and ssh say when
         * there is no connection to be had. */
        static const char *const unreachable[] = {
                "connection refused", "Connection refused", "no such host", "Could not resolve hostname",
                "unable to start the sftp session", "i/o timeout", "Connection timed out", "network is unreachable",
                "Network is unreachable", "no route to host", "No route to host", "connection reset by peer",
                "Connection reset by peer", "Connection closed by", "cannot assign requested address",
                "Cannot assign requested address", NULL
        };
        static const char *const refused_write[] = { "permission denied", "operation not permitted", NULL };

        if (has(e, "Host key verification failed"))
                return jb_err_set_code(err, BACKUP_E_AUTH,
                                       "the sftp server's host key is not the one pinned in known_hosts");
        if (has(e, "Permission denied (publickey"))
                return jb_err_set_code(err, BACKUP_E_AUTH, "the sftp server refused the key");
        if (has(e, "unexpected HTTP response (401)") || has(e, "unexpected HTTP response (403)"))
                return jb_err_set_code(err, BACKUP_E_AUTH, "the REST server refused the credentials");
        if (has(e, "read-only file system") ||
            (has(e, "unable to create lock in backend") && any(e, refused_write)))
                return jb_err_set_code(err, BACKUP_E_READ_ONLY,
                                       "the destination refuses writes (restic could not create its lock)");
        if (has(e, "unable to open config file") &&
            (has(e, "<config/> does not exist") || has(e, "file does not exist")))
                return jb_err_set(err, JB_E_NOT_FOUND, "there is no repository at the destination");
        if (any(e, unreachable))
                return jb_err_set_code(err, BACKUP_E_UNREACHABLE, "the destination's server cannot be reached");
        return 0;
}
