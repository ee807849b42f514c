/* SPDX-License-Identifier: GPL-3.0-or-later */
/* nginx.domain.*, nginx.test, nginx.reload.
 *
 * A domain is converged in the order: check every parameter against the
 * host (user, home, document root, listen address, certificate paths) →
 * render → compare with what is there → test the vhost on its own →
 * create the document root → write and enable → test the whole
 * configuration → put the old files back on failure → ask for a reload.
 * Nothing is written before the first test has passed. */

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <ifaddrs.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <jabali/fs.h>
#include <jabali/lock.h>
#include <jabali/reload.h>
#include <jabali/validate.h>

#include "nginx-internal.h"

#define VHOST_TEMPLATE "vhost.conf.tpl"

int ngx_apply_lock(jb_call *call, const ngx_cfg *c, jb_err *err) {
        uint64_t ms = jb_call_remaining_ms(call);

        if (ms == 0)
                return jb_err_set(err, JB_E_TIMEOUT, "no time left to take the apply lock");
        return jb_lock_acquire(c->lock_dir, "nginx:apply", ms > INT_MAX ? INT_MAX : (int) ms, err);
}

/* ---- checks the schema cannot make ---- */

typedef struct account {
        uid_t uid;
        gid_t gid;
        char home[PATH_MAX];
} account;

static int lookup_user(const ngx_cfg *c, const char *user, int64_t want_uid, account *a, jb_err *err) {
        struct passwd pw, *res = NULL;
        char buf[4096];
        int e;

        e = getpwnam_r(user, &pw, buf, sizeof buf, &res);
        if (e != 0 || !res)
                return jb_err_set(err, JB_E_NOT_FOUND, "user: no account named %s", user);
        if (want_uid >= 0 && (int64_t) pw.pw_uid != want_uid)
                return jb_err_set(err, JB_E_CONFLICT, "user_id: %s has uid %u, not %lld", user,
                                  (unsigned) pw.pw_uid, (long long) want_uid);
        if ((int64_t) pw.pw_uid < c->min_uid)
                return jb_err_set(err, JB_E_INVALID_PARAMS, "user: %s is a system account (uid %u < %lld)",
                                  user, (unsigned) pw.pw_uid, (long long) c->min_uid);
        /* The home must be a plain absolute path: it goes into the vhost. */
        if (pw.pw_dir[0] != '/' || pw.pw_dir[1] == '\0' ||
            !jb_valid_rel_path(pw.pw_dir + 1, strlen(pw.pw_dir + 1), NULL) ||
            strlen(pw.pw_dir) >= sizeof a->home)
                return jb_err_set(err, JB_E_CONFLICT, "user: %s has an unusable home directory", user);
        a->uid = pw.pw_uid;
        a->gid = pw.pw_gid;
        snprintf(a->home, sizeof a->home, "%s", pw.pw_dir);
        return 0;
}

static gid_t web_gid(const ngx_cfg *c, gid_t fallback) {
        struct group gr, *res = NULL;
        char buf[4096];

        if (c->web_group && getgrnam_r(c->web_group, &gr, buf, sizeof buf, &res) == 0 && res)
                return gr.gr_gid;
        return fallback;
}

/* An absolute path without ".", ".." or empty components. */
static bool abs_path_ok(const char *p) {
        return p[0] == '/' && p[1] != '\0' && jb_valid_rel_path(p + 1, strlen(p + 1), NULL);
}

static bool php_version_ok(const char *v) {
        const char *p = v;
        size_t a = 0, b = 0;

        while (*p >= '0' && *p <= '9' && a < 3)
                p++, a++;
        if (a == 0 || *p++ != '.')
                return false;
        while (*p >= '0' && *p <= '9' && b < 3)
                p++, b++;
        return b > 0 && *p == '\0';
}

/* The pattern with {user} and {version} replaced; the values are checked
 * (username, digits and a dot), the pattern comes from settings. */
static int php_socket(const ngx_cfg *c, const char *user, const char *ver, char *out, size_t size, jb_err *err) {
        const char *p = c->php_socket_pattern;
        size_t n = 0;

        while (*p) {
                const char *v = NULL;
                size_t skip = 1, l;

                if (strncmp(p, "{user}", 6) == 0)
                        v = user, skip = 6;
                else if (strncmp(p, "{version}", 9) == 0)
                        v = ver, skip = 9;
                l = v ? strlen(v) : 1;
                if (n + l >= size)
                        return jb_err_set(err, JB_E_INVALID_PARAMS, "php socket path is too long");
                memcpy(out + n, v ? v : p, l);
                n += l;
                p += skip;
        }
        out[n] = '\0';
        if (!abs_path_ok(out))
                return jb_err_set(err, JB_E_INVALID_PARAMS, "php socket %s is not a clean absolute path", out);
        return 0;
}

static bool same_addr(const char *a, const char *b) {
        unsigned char x[16], y[16];
        int fa = strchr(a, ':') ? AF_INET6 : AF_INET, fb = strchr(b, ':') ? AF_INET6 : AF_INET;

        if (fa != fb || inet_pton(fa, a, x) != 1 || inet_pton(fb, b, y) != 1)
                return false;
        return memcmp(x, y, fa == AF_INET ? 4 : 16) == 0;
}

/* The address is configured in settings.listen_ips or on an interface. */
static int listen_ip_ok(jb_call *call, const char *ip, jb_err *err) {
        json_object *list, *v;
        struct ifaddrs *ifa = NULL;
        char buf[INET6_ADDRSTRLEN];
        bool ok = false;

        if (json_object_object_get_ex(jb_call_settings(call), "listen_ips", &list) &&
            json_object_is_type(list, json_type_array))
                for (size_t i = 0; i < json_object_array_length(list) && !ok; i++) {
                        v = json_object_array_get_idx(list, i);
                        ok = json_object_is_type(v, json_type_string) && same_addr(ip, json_object_get_string(v));
                }
        if (!ok && getifaddrs(&ifa) == 0) {
                for (struct ifaddrs *i = ifa; i && !ok; i = i->ifa_next) {
                        if (!i->ifa_addr)
                                continue;
                        if (i->ifa_addr->sa_family == AF_INET)
                                inet_ntop(AF_INET, &((struct sockaddr_in *) (void *) i->ifa_addr)->sin_addr, buf,
                                          sizeof buf);
                        else if (i->ifa_addr->sa_family == AF_INET6)
                                inet_ntop(AF_INET6, &((struct sockaddr_in6 *) (void *) i->ifa_addr)->sin6_addr, buf,
                                          sizeof buf);
                        else
                                continue;
                        ok = same_addr(ip, buf);
                }
                freeifaddrs(ifa);
        }
        if (!ok)
                return jb_err_set(err, JB_E_INVALID_PARAMS,
                                  "listen_ip: %s is neither an address of this host nor in listen_ips", ip);
        return 0;
}

static void listen_addr(const char *ip, int64_t port, char *out, size_t size) {
        if (!ip)
                snprintf(out, size, "%lld", (long long) port);
        else if (strchr(ip, ':'))
                snprintf(out, size, "[%s]:%lld", ip, (long long) port);
        else
                snprintf(out, size, "%s:%lld", ip, (long long) port);
}

/* ---- the desired vhost ---- */

typedef struct desired {
        account acct;
        gid_t group;
        const char *docroot;            /* relative to the home */
        bool docroot_missing;
        char *text;                     /* the rendered file, owned */
        size_t len;
        json_object *meta;              /* owned */
} desired;

static void desired_free(desired *d) {
        free(d->text);
        json_object_put(d->meta);
        d->text = NULL;
        d->meta = NULL;
}

#define ADD(o, k, v) json_object_object_add((o), (k), (v))

static int build(jb_call *call, const ngx_cfg *c, desired *d, jb_err *err) {
        json_object *params = jb_call_params(call), *data = NULL, *v, *ssl = NULL;
        const char *domain = jb_param_str(call, "domain", NULL);
        const char *user = jb_param_str(call, "user", NULL);
        const char *ip = jb_param_str(call, "listen_ip", NULL);
        bool has_php = jb_param_bool(call, "has_php", false);
        bool cache = jb_param_bool(call, "cache_enabled", false);
        char root[PATH_MAX * 2], sock[PATH_MAX], lbuf[80], path[PATH_MAX];
        int home_fd = -1, kind, r = -1;

        memset(d, 0, sizeof *d);
        if (lookup_user(c, user, jb_param_int(call, "user_id", -1), &d->acct, err) < 0)
                return -1;
        d->group = web_gid(c, d->acct.gid);
        d->docroot = jb_param_str(call, "document_root", c->default_docroot);
        if (!jb_valid_rel_path(d->docroot, strlen(d->docroot), NULL))
                return jb_err_set(err, JB_E_INVALID_PARAMS, "document_root: not a clean relative path");

        /* What is at the document root now, seen beneath the home: a
         * symlink anywhere on the way is refused, so the root can never
         * point outside the home. */
        home_fd = jb_fs_open_root(d->acct.home, err);
        if (home_fd < 0)
                return -1;
        kind = jb_fs_kind_of(home_fd, d->docroot, err);
        close(home_fd);
        if (kind < 0) {
                jb_err_prefix(err, "document_root");
                return -1;
        }
        if (kind == JB_FS_SYMLINK)
                return jb_err_set(err, JB_E_INVALID_PARAMS, "document_root: %s is a symlink", d->docroot);
        if (kind != JB_FS_DIR && kind != JB_FS_MISSING)
                return jb_err_set(err, JB_E_CONFLICT, "document_root: %s is not a directory", d->docroot);
        d->docroot_missing = kind == JB_FS_MISSING;

        if (ip && listen_ip_ok(call, ip, err) < 0)
                return -1;
        if (json_object_object_get_ex(params, "ssl", &ssl)) {
                const char *cert = json_object_get_string(json_object_object_get(ssl, "cert"));
                const char *key = json_object_get_string(json_object_object_get(ssl, "key"));
                if (!abs_path_ok(cert) || !abs_path_ok(key))
                        return jb_err_set(err, JB_E_INVALID_PARAMS, "ssl: cert and key must be clean absolute paths");
        }
        if (jb_param_bool(call, "force_https", false) && !ssl)
                return jb_err_set(err, JB_E_INVALID_PARAMS, "force_https needs ssl");
        if (has_php) {
                const char *ver = jb_param_str(call, "php_version", NULL);
                if (!ver)
                        return jb_err_set(err, JB_E_INVALID_PARAMS, "has_php needs php_version");
                if (!php_version_ok(ver))
                        return jb_err_set(err, JB_E_INVALID_PARAMS, "php_version: expected MAJOR.MINOR");
                if (php_socket(c, user, ver, sock, sizeof sock, err) < 0)
                        return -1;
        }

        data = json_object_new_object();
        if (!data)
                return jb_err_set(err, JB_E_INTERNAL, "out of memory");
        snprintf(root, sizeof root, "%s/%s", d->acct.home, d->docroot);
        ADD(data, "domain", json_object_new_string(domain));
        snprintf(path, sizeof path, "www.%s", domain);
        ADD(data, "www_name", json_object_new_string(path));
        ADD(data, "aliases", json_object_object_get_ex(params, "aliases", &v) ? json_object_get(v)
                                                                               : json_object_new_array());
        ADD(data, "root", json_object_new_string(root));
        listen_addr(ip, c->http_port, lbuf, sizeof lbuf);
        ADD(data, "http_listen", json_object_new_string(lbuf));
        listen_addr(ip, c->https_port, lbuf, sizeof lbuf);
        ADD(data, "https_listen", json_object_new_string(lbuf));
        ADD(data, "https_port", json_object_new_int64(c->https_port));
        ADD(data, "https_port_custom", json_object_new_boolean(c->https_port != 443));
        ADD(data, "ports_custom", json_object_new_boolean(c->http_port != 80 || c->https_port != 443));
        ADD(data, "ssl", ssl ? json_object_get(ssl) : json_object_new_boolean(false));
        ADD(data, "force_https", json_object_new_boolean(jb_param_bool(call, "force_https", false)));
        ADD(data, "redirect_www", json_object_new_boolean(jb_param_bool(call, "redirect_www", false)));
        ADD(data, "php", json_object_new_boolean(has_php));
        ADD(data, "php_socket", json_object_new_string(has_php ? sock : "-"));
        ADD(data, "fastcgi_conf", json_object_new_string(jb_setting_str(call, "fastcgi_conf",
                                                                       "/etc/nginx/fastcgi.conf")));
        ADD(data, "cache", json_object_new_boolean(cache));
        snprintf(path, sizeof path, "%s/%s", c->cache_dir, domain);
        ADD(data, "cache_path", json_object_new_string(path));
        snprintf(path, sizeof path, "jb_%s", domain);
        ADD(data, "cache_zone", json_object_new_string(path));
        ADD(data, "limit_req", json_object_object_get_ex(params, "limit_req", &v) ? json_object_get(v)
                                                                                  : json_object_new_boolean(false));

        /* The header records the request as converged, defaults filled in. */
        d->meta = json_object_new_object();
        json_object_object_foreach(params, key, val) {
                ADD(d->meta, key, json_object_get(val));
        }
        ADD(d->meta, "document_root", json_object_new_string(d->docroot));

        r = ngx_render(c, VHOST_TEMPLATE, data, d->meta, &d->text, &d->len, err);
        json_object_put(data);
        if (r < 0)
                desired_free(d);
        return r;
}

/* ---- create / update ---- */

static json_object *strarray(const char *const *v, size_t n) {
        json_object *a = json_object_new_array();
        for (size_t i = 0; i < n; i++)
                json_object_array_add(a, json_object_new_string(v[i]));
        return a;
}

static int converge(jb_call *call, bool must_exist) {
        ngx_cfg c;
        const char *domain = jb_param_str(call, "domain", NULL);
        desired d = { 0 };
        ngx_fileset fs = { 0 };
        jb_err err = JB_ERR_INIT;
        char target[PATH_MAX + 300], *rl = NULL;
        size_t rl_len = 0;
        const char *plan[4];
        size_t nplan = 0;
        bool same_file, link_ok, saved = false;
        int avail_fd = -1, enabled_fd = -1, home_fd = -1, r = -1;

        ngx_cfg_load(call, &c);
        if (build(call, &c, &d, &err) < 0)
                goto out;
        avail_fd = jb_fs_open_root(c.sites_available, &err);
        if (avail_fd < 0)
                goto out;
        enabled_fd = jb_fs_open_root(c.sites_enabled, &err);
        if (enabled_fd < 0)
                goto out;
        if (ngx_fileset_save(avail_fd, enabled_fd, domain, &fs, &err) < 0)
                goto out;
        saved = true;
        if (must_exist && !fs.avail) {
                jb_err_set(&err, JB_E_NOT_FOUND, "no vhost for %s", domain);
                goto out;
        }
        if (fs.avail) {
                /* A file someone else wrote is never overwritten. */
                json_object *hdr = ngx_header_parse(fs.avail, fs.avail_len);
                if (!hdr) {
                        jb_err_set(&err, JB_E_CONFLICT, "%s/%s was not written by this module", c.sites_available,
                                   fs.name);
                        goto out;
                }
                json_object_put(hdr);
        }
        snprintf(target, sizeof target, "%s/%s", c.sites_available, fs.name);
        same_file = fs.avail && fs.avail_len == d.len && memcmp(fs.avail, d.text, d.len) == 0;
        link_ok = ngx_fileset_enabled_ok(&fs, target);
        if (d.docroot_missing)
                plan[nplan++] = "create document root";
        if (!same_file)
                plan[nplan++] = fs.avail ? "rewrite vhost" : "write vhost";
        if (!link_ok)
                plan[nplan++] = "enable vhost";
        if (!same_file || !link_ok)
                plan[nplan++] = "reload nginx";

        json_object_object_add(jb_call_result(call), "domain", json_object_new_string(domain));
        json_object_object_add(jb_call_result(call), "config_path", json_object_new_string(target));
        json_object_object_add(jb_call_result(call), "plan", strarray(plan, nplan));
        if (nplan == 0) {
                r = 0;
                goto out;
        }
        if (jb_call_dry_run(call)) {
                if (!same_file)
                        json_object_object_add(jb_call_result(call), "config",
                                               json_object_new_string_len(d.text, (int) d.len));
                r = 1;
                goto out;
        }

        if (!same_file) {
                if (ngx_ratelimits_current(&c, &rl, &rl_len, &err) < 0 ||
                    ngx_test_isolated(call, &c, d.text, d.len, rl, rl_len, &err) < 0)
                        goto out;
        }
        if (d.docroot_missing) {
                home_fd = jb_fs_open_root(d.acct.home, &err);
                if (home_fd < 0 || jb_fs_mkdir_p(home_fd, d.docroot, 02750, d.acct.uid, d.group, &err) < 0) {
                        jb_err_prefix(&err, "document_root");
                        goto out;
                }
        }
        if (same_file && link_ok) {
                r = 1;
                goto out;
        }

        /* Written, tested with the whole configuration (together with
         * other workers' changes) and put back when nginx refuses. */
        if (ngx_batch_apply(call, &c, domain, d.text, d.len, target, &err) < 0 ||
            jb_reload_unit(call, c.unit, 0, &err) < 0)
                goto out;
        r = 1;
out:
        if (home_fd >= 0)
                close(home_fd);
        if (avail_fd >= 0)
                close(avail_fd);
        if (enabled_fd >= 0)
                close(enabled_fd);
        if (saved)
                ngx_fileset_free(&fs);
        desired_free(&d);
        free(rl);
        if (r < 0)
                return jb_call_fail_err(call, &err);
        jb_call_set_changed(call, r > 0);
        return 0;
}

int ngx_domain_create(jb_call *call) {
        return converge(call, false);
}

int ngx_domain_update(jb_call *call) {
        return converge(call, true);
}

/* ---- delete ---- */

static int purge_docroot(jb_call *call, const ngx_cfg *c, json_object *meta, jb_err *err) {
        json_object *u, *dr;
        account a;
        int fd, r;

        if (!meta || !json_object_object_get_ex(meta, "user", &u) ||
            !json_object_object_get_ex(meta, "document_root", &dr))
                return jb_err_set(err, JB_E_CONFLICT, "the vhost does not record its document root");
        if (lookup_user(c, json_object_get_string(u), -1, &a, err) < 0)
                return -1;
        fd = jb_fs_open_root(a.home, err);
        if (fd < 0)
                return -1;
        r = jb_fs_remove_tree(fd, json_object_get_string(dr), err);
        close(fd);
        if (r > 0)
                jb_log(call, LOG_INFO, "removed %s/%s", a.home, json_object_get_string(dr));
        return r;
}

int ngx_domain_delete(jb_call *call) {
        ngx_cfg c;
        const char *domain = jb_param_str(call, "domain", NULL);
        bool purge = jb_param_bool(call, "purge_files", false);
        ngx_fileset fs = { 0 };
        json_object *meta = NULL;
        jb_err err = JB_ERR_INIT;
        bool saved = false;
        int avail_fd = -1, enabled_fd = -1, cache_fd = -1, r = -1;

        ngx_cfg_load(call, &c);
        avail_fd = jb_fs_open_root(c.sites_available, &err);
        if (avail_fd < 0)
                goto out;
        enabled_fd = jb_fs_open_root(c.sites_enabled, &err);
        if (enabled_fd < 0)
                goto out;
        if (ngx_fileset_save(avail_fd, enabled_fd, domain, &fs, &err) < 0)
                goto out;
        saved = true;
        json_object_object_add(jb_call_result(call), "domain", json_object_new_string(domain));
        if (!fs.avail && fs.link_kind == JB_FS_MISSING) {
                r = 0;
                goto out;
        }
        if (fs.avail)
                meta = ngx_header_parse(fs.avail, fs.avail_len);
        if (fs.avail && !meta) {
                /* Not ours: an administrator's file is never removed. */
                jb_err_set(&err, JB_E_CONFLICT, "%s/%s was not written by this module", c.sites_available, fs.name);
                goto out;
        }
        {
                const char *plan[] = { "remove vhost", "reload nginx", "remove document root" };
                json_object_object_add(jb_call_result(call), "plan", strarray(plan, purge ? 3 : 2));
        }
        if (jb_call_dry_run(call)) {
                r = 1;
                goto out;
        }
        if (ngx_batch_apply(call, &c, domain, NULL, 0, NULL, &err) < 0 ||
            jb_reload_unit(call, c.unit, 0, &err) < 0)
                goto out;
        /* The cache is disposable; the site's files only go when asked. */
        cache_fd = jb_fs_open_root(c.cache_dir, NULL);
        if (cache_fd >= 0)
                (void) jb_fs_remove_tree(cache_fd, domain, NULL);
        if (purge && purge_docroot(call, &c, meta, &err) < 0)
                goto out;
        r = 1;
out:
        if (cache_fd >= 0)
                close(cache_fd);
        if (avail_fd >= 0)
                close(avail_fd);
        if (enabled_fd >= 0)
                close(enabled_fd);
        if (saved)
                ngx_fileset_free(&fs);
        json_object_put(meta);
        if (r < 0)
                return jb_call_fail_err(call, &err);
        jb_call_set_changed(call, r > 0);
        return 0;
}

/* ---- get / list ---- */

/* The description of one domain, or NULL when sites-available has no
 * file of ours by that name. */
static json_object *describe(const ngx_cfg *c, int avail_fd, int enabled_fd, const char *domain, jb_err *err) {
        ngx_fileset fs;
        json_object *o, *meta;
        char target[PATH_MAX + 300];

        if (ngx_fileset_save(avail_fd, enabled_fd, domain, &fs, err) < 0)
                return NULL;
        if (!fs.avail) {
                ngx_fileset_free(&fs);
                jb_err_set(err, JB_E_NOT_FOUND, "no vhost for %s", domain);
                return NULL;
        }
        meta = ngx_header_parse(fs.avail, fs.avail_len);
        if (!meta) {
                ngx_fileset_free(&fs);
                jb_err_set(err, JB_E_CONFLICT, "%s was not written by this module", fs.name);
                return NULL;
        }
        snprintf(target, sizeof target, "%s/%s", c->sites_available, fs.name);
        o = json_object_new_object();
        ADD(o, "domain", json_object_new_string(domain));
        ADD(o, "enabled", json_object_new_boolean(ngx_fileset_enabled_ok(&fs, target)));
        ADD(o, "config_path", json_object_new_string(target));
        ADD(o, "params", meta);
        ngx_fileset_free(&fs);
        return o;
}

int ngx_domain_get(jb_call *call) {
        ngx_cfg c;
        jb_err err = JB_ERR_INIT;
        json_object *o = NULL;
        int a = -1, e = -1;

        ngx_cfg_load(call, &c);
        if ((a = jb_fs_open_root(c.sites_available, &err)) >= 0 && (e = jb_fs_open_root(c.sites_enabled, &err)) >= 0)
                o = describe(&c, a, e, jb_param_str(call, "domain", NULL), &err);
        if (a >= 0)
                close(a);
        if (e >= 0)
                close(e);
        if (!o)
                return jb_call_fail_err(call, &err);
        json_object_object_foreach(o, key, val) {
                ADD(jb_call_result(call), key, json_object_get(val));
        }
        json_object_put(o);
        return 0;
}

int ngx_domain_list(jb_call *call) {
        ngx_cfg c;
        jb_err err = JB_ERR_INIT;
        json_object *list = json_object_new_array(), *o;
        DIR *dir = NULL;
        struct dirent *de;
        int a = -1, e = -1, dfd;

        ngx_cfg_load(call, &c);
        if ((a = jb_fs_open_root(c.sites_available, &err)) < 0 || (e = jb_fs_open_root(c.sites_enabled, &err)) < 0)
                goto fail;
        dfd = openat(a, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || !(dir = fdopendir(dfd))) {
                if (dfd >= 0)
                        close(dfd);
                jb_err_set(&err, JB_E_INTERNAL, "%s: %m", c.sites_available);
                goto fail;
        }
        while ((de = readdir(dir))) {
                size_t n = strlen(de->d_name);
                char domain[256];

                if (n <= 5 || n - 5 >= sizeof domain || strcmp(de->d_name + n - 5, ".conf") != 0)
                        continue;
                memcpy(domain, de->d_name, n - 5);
                domain[n - 5] = '\0';
                if (!jb_valid_domain(domain, n - 5, NULL))
                        continue;
                o = describe(&c, a, e, domain, &err);
                jb_err_clear(&err);     /* files that are not ours are skipped */
                if (o)
                        json_object_array_add(list, o);
        }
        closedir(dir);
        close(a);
        close(e);
        ADD(jb_call_result(call), "domains", list);
        return 0;
fail:
        if (a >= 0)
                close(a);
        if (e >= 0)
                close(e);
        json_object_put(list);
        return jb_call_fail_err(call, &err);
}

/* ---- the service ---- */

int ngx_test(jb_call *call) {
        ngx_cfg c;
        jb_err err = JB_ERR_INIT;

        ngx_cfg_load(call, &c);
        if (ngx_test_full(call, &c, &err) < 0)
                return jb_call_fail_err(call, &err);
        ADD(jb_call_result(call), "valid", json_object_new_boolean(true));
        return 0;
}

int ngx_reload(jb_call *call) {
        ngx_cfg c;
        jb_err err = JB_ERR_INIT;

        ngx_cfg_load(call, &c);
        if (jb_call_dry_run(call)) {
                jb_call_set_changed(call, true);
                return 0;
        }
        if (ngx_test_full(call, &c, &err) < 0 ||
            jb_reload_unit(call, c.unit, JB_RELOAD_NOW | JB_RELOAD_WAIT, &err) < 0)
                return jb_call_fail_err(call, &err);
        ADD(jb_call_result(call), "reloaded", json_object_new_boolean(true));
        jb_call_set_changed(call, true);
        return 0;
}
