/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The nginx module: virtual hosts of hosted domains, the server's
 * configuration test and reload, per-domain caches and rate limits.
 * The descriptor, the action table and the schemas; the handlers live in
 * nginx-*.c. See README.md for the contract. */

#include <string.h>
#include <unistd.h>

#include <jabali/fs.h>
#include <jabali/module.h>

#include "nginx-internal.h"

/* Every setting with its production default, from a settings object
 * (a call's, or worker_init's). */
static void cfg_from_settings(json_object *settings, ngx_cfg *c) {
        const char *p;

        c->nginx = jb_settings_str(settings, "nginx", "/usr/sbin/nginx");
        c->conf = jb_settings_str(settings, "conf", "/etc/nginx/nginx.conf");
        p = jb_settings_str(settings, "prefix", NULL);
        c->prefix = p && *p ? p : NULL;
        c->sites_available = jb_settings_str(settings, "sites_available", "/etc/nginx/sites-available");
        c->sites_enabled = jb_settings_str(settings, "sites_enabled", "/etc/nginx/sites-enabled");
        c->template_dir = jb_settings_str(settings, "template_dir", NGINX_TEMPLATE_DIR);
        p = jb_settings_str(settings, "template_override_dir", "/etc/jabali/nginx/templates");
        c->template_override_dir = p && *p ? p : NULL;
        c->state_dir = jb_settings_str(settings, "state_dir", "/var/lib/jabali/nginx");
        c->cache_dir = jb_settings_str(settings, "cache_dir", "/var/cache/nginx/jabali");
        c->cache_user = jb_settings_str(settings, "cache_user", "www-data");
        c->web_group = jb_settings_str(settings, "web_group", "www-data");
        c->php_socket_pattern = jb_settings_str(settings, "php_socket_pattern", "/run/php/php{version}-fpm-{user}.sock");
        c->ratelimit_dir = jb_settings_str(settings, "ratelimit_dir", "/etc/nginx/conf.d");
        c->default_docroot = jb_settings_str(settings, "default_document_root", "public_html");
        c->unit = jb_settings_str(settings, "unit", "nginx.service");
        c->lock_dir = jb_settings_str(settings, "lock_dir", "/run/jabali-agent/locks");
        c->spool_dir = jb_settings_str(settings, "spool_dir", "/run/jabali-agent/nginx");
        c->http_port = jb_settings_int(settings, "http_port", 80);
        c->https_port = jb_settings_int(settings, "https_port", 443);
        c->min_uid = jb_settings_int(settings, "min_uid", 1000);
}

void ngx_cfg_load(jb_call *call, ngx_cfg *c) {
        cfg_from_settings(jb_call_settings(call), c);
}

/* A worker killed in the middle of an atomic write leaves its temporary
 * file behind (nginx ignores it: it is not *.conf); the next worker
 * removes the ones no live writer holds. */
static void clean_dir(const char *path) {
        int fd = path ? jb_fs_open_root(path, NULL) : -1;

        if (fd < 0)
                return;
        (void) jb_fs_clean_temps(fd, ".", NULL);
        close(fd);
}

static int worker_init(json_object *settings, jb_err *err) {
        ngx_cfg c;

        (void) err;
        cfg_from_settings(settings, &c);
        clean_dir(c.sites_available);
        clean_dir(c.sites_enabled);
        clean_dir(c.ratelimit_dir);
        clean_dir(c.spool_dir);
        return 0;
}

/* ---- parameter schemas ---- */

static const jb_param alias_item[] = {
        JB_P_STRING("alias", JB_CHECK_DOMAIN, 0, "another name of the site"),
        JB_P_END
};

static const jb_param ssl_fields[] = {
        JB_P_STRLEN("cert", JB_CHECK_NONE, JB_REQUIRED, 2, 1024, "certificate chain file (absolute path)"),
        JB_P_STRLEN("key", JB_CHECK_NONE, JB_REQUIRED, 2, 1024, "private key file (absolute path)"),
        JB_P_END
};

static const jb_param limit_req_fields[] = {
        JB_P_STRLEN("zone", JB_CHECK_TOKEN, JB_REQUIRED, 1, 64, "a zone defined by nginx.ratelimits.apply"),
        JB_P_INT("burst", JB_CHECK_NONE, JB_REQUIRED, 1, 100000, "requests allowed above the rate"),
        JB_P_END
};

static const jb_param domain_params[] = {
        JB_P_STRING("domain", JB_CHECK_DOMAIN, JB_REQUIRED, "the site's primary name"),
        JB_P_STRING("user", JB_CHECK_USERNAME, JB_REQUIRED, "the Linux account that owns the site"),
        JB_P_INT("user_id", JB_CHECK_NONE, JB_REQUIRED, 0, 4294967294LL, "that account's uid (must match)"),
        JB_P_ARRAY("aliases", alias_item, 0, 0, 100, "more server names"),
        JB_P_STRLEN("document_root", JB_CHECK_REL_PATH, 0, 1, 1024,
                    "beneath the user's home; default settings.default_document_root (public_html)"),
        JB_P_BOOL("has_php", 0, "pass *.php to the user's PHP-FPM pool"),
        JB_P_STRLEN("php_version", JB_CHECK_TOKEN, 0, 3, 7, "MAJOR.MINOR; required with has_php"),
        JB_P_BOOL("cache_enabled", 0, "FastCGI cache for the site's PHP responses"),
        JB_P_STRING("listen_ip", JB_CHECK_IP, 0, "an address of this host or of settings.listen_ips"),
        JB_P_OBJECT("ssl", ssl_fields, 0, "serve HTTPS with these files; absent: HTTP only"),
        JB_P_BOOL("redirect_www", 0, "www.<domain> answers with a redirect to <domain>"),
        JB_P_BOOL("force_https", 0, "HTTP requests are redirected to HTTPS (needs ssl)"),
        JB_P_OBJECT("limit_req", limit_req_fields, 0, "apply a rate-limit zone to the site"),
        JB_P_END
};


static const jb_param delete_params[] = {
        JB_P_STRING("domain", JB_CHECK_DOMAIN, JB_REQUIRED, "the site's primary name"),
        JB_P_BOOL("purge_files", 0, "also remove the document root (default: the files stay)"),
        JB_P_END
};

static const jb_param domain_only[] = {
        JB_P_STRING("domain", JB_CHECK_DOMAIN, JB_REQUIRED, "the site's primary name"),
        JB_P_END
};

static const jb_param zone_item_fields[] = {
        JB_P_STRLEN("name", JB_CHECK_TOKEN, JB_REQUIRED, 1, 64, "the zone's name"),
        JB_P_INT("rate", JB_CHECK_NONE, JB_REQUIRED, 1, 100000, "requests per second per client address"),
        JB_P_INT("size_mb", JB_CHECK_NONE, JB_REQUIRED, 1, 1024, "shared memory for the zone"),
        JB_P_END
};

static const jb_param zone_item[] = {
        JB_P_OBJECT("zone", zone_item_fields, 0, "one limit_req_zone"),
        JB_P_END
};

static const jb_param ratelimit_params[] = {
        JB_P_ARRAY("zones", zone_item, JB_REQUIRED, 0, 256, "every zone (the file is replaced as a whole)"),
        JB_P_END
};

/* ---- settings ---- */

static const jb_param ip_item[] = { JB_P_STRING("ip", JB_CHECK_IP, 0, "an address"), JB_P_END };

#define PATH_SETTING(n, d) JB_P_STRLEN(n, JB_CHECK_NONE, 0, 1, 1024, d)

static const jb_param settings[] = {
        PATH_SETTING("nginx", "the nginx binary; default /usr/sbin/nginx"),
        PATH_SETTING("conf", "the main configuration; default /etc/nginx/nginx.conf"),
        JB_P_STRLEN("prefix", JB_CHECK_NONE, 0, 0, 1024, "nginx -p PREFIX; default none"),
        PATH_SETTING("sites_available", "where vhost files are written; default /etc/nginx/sites-available"),
        PATH_SETTING("sites_enabled", "where they are linked; default /etc/nginx/sites-enabled"),
        PATH_SETTING("template_dir", "the shipped templates; default " NGINX_TEMPLATE_DIR),
        JB_P_STRLEN("template_override_dir", JB_CHECK_NONE, 0, 0, 1024,
                    "an administrator's templates, used first; default /etc/jabali/nginx/templates"),
        PATH_SETTING("state_dir", "scratch space for vhost checks; default /var/lib/jabali/nginx"),
        PATH_SETTING("cache_dir", "per-domain cache directories; default /var/cache/nginx/jabali"),
        JB_P_STRING("cache_user", JB_CHECK_USERNAME, 0, "owner of a recreated cache directory; default www-data"),
        JB_P_STRLEN("web_group", JB_CHECK_TOKEN, 0, 1, 32, "group of document roots (nginx's workers); default www-data"),
        PATH_SETTING("php_socket_pattern", "PHP-FPM socket, {user} and {version} replaced; "
                                           "default /run/php/php{version}-fpm-{user}.sock"),
        PATH_SETTING("fastcgi_conf", "FastCGI parameters included for PHP; default /etc/nginx/fastcgi.conf"),
        PATH_SETTING("ratelimit_dir", "http-level directory for the rate-limit zones; default /etc/nginx/conf.d"),
        JB_P_STRLEN("default_document_root", JB_CHECK_REL_PATH, 0, 1, 1024, "default public_html"),
        JB_P_ARRAY("listen_ips", ip_item, 0, 0, 1024, "addresses vhosts may listen on besides the host's own"),
        JB_P_INT("http_port", JB_CHECK_PORT, 0, 0, 0, "default 80"),
        JB_P_INT("https_port", JB_CHECK_PORT, 0, 0, 0, "default 443"),
        JB_P_INT("min_uid", JB_CHECK_NONE, 0, 0, 4294967294LL, "the smallest uid a site may belong to; default 1000"),
        JB_P_STRLEN("unit", JB_CHECK_NONE, 0, 1, 255, "the unit to reload; default nginx.service"),
        PATH_SETTING("lock_dir", "where the module's locks live; default /run/jabali-agent/locks"),
        PATH_SETTING("spool_dir", "changes waiting for a configuration test (runtime state, created when "
                                  "missing); default /run/jabali-agent/nginx"),
        JB_P_END
};

static int init(json_object *s, jb_err *err) {
        static const char *const paths[] = {
                "nginx", "conf", "sites_available", "sites_enabled", "template_dir", "state_dir", "cache_dir",
                "php_socket_pattern", "fastcgi_conf", "ratelimit_dir", "lock_dir", "spool_dir", "prefix", "template_override_dir",
        };
        json_object *v;

        for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
                const char *p;

                if (!json_object_object_get_ex(s, paths[i], &v))
                        continue;
                p = json_object_get_string(v);
                if (p[0] == '\0' && (strcmp(paths[i], "prefix") == 0 || strcmp(paths[i], "template_override_dir") == 0))
                        continue;
                if (p[0] != '/')
                        return jb_err_set(err, JB_E_CONFIG_INVALID, "%s must be an absolute path", paths[i]);
        }
        return 0;
}

/* ---- actions ---- */

#define CONVERGER (JB_ACTION_MUTATING | JB_ACTION_DRY_RUN)

static const jb_action actions[] = {
        { .name = "nginx.domain.create", .handler = ngx_domain_create, .params = domain_params,
          .summary = "create or converge a domain's vhost and document root",
          .flags = CONVERGER, .timeout_ms = 60000, .lock = "domain" },
        { .name = "nginx.domain.update", .handler = ngx_domain_update, .params = domain_params,
          .summary = "converge an existing domain's vhost (NOT_FOUND when there is none)",
          .flags = CONVERGER, .timeout_ms = 60000, .lock = "domain" },
        { .name = "nginx.domain.delete", .handler = ngx_domain_delete, .params = delete_params,
          .summary = "remove a domain's vhost (idempotent); files stay unless purge_files",
          .flags = CONVERGER, .timeout_ms = 60000, .lock = "domain" },
        { .name = "nginx.domain.get", .handler = ngx_domain_get, .params = domain_only,
          .summary = "a domain's vhost: parameters, path, enabled", .timeout_ms = 10000 },
        { .name = "nginx.domain.list", .handler = ngx_domain_list, .params = NULL,
          .summary = "every vhost this module manages", .timeout_ms = 30000 },
        { .name = "nginx.test", .handler = ngx_test, .params = NULL,
          .summary = "nginx -t of the whole configuration", .timeout_ms = 60000 },
        { .name = "nginx.reload", .handler = ngx_reload, .params = NULL,
          .summary = "test, then reload nginx now and wait for it",
          .flags = CONVERGER, .timeout_ms = 60000 },
        { .name = "nginx.cache.purge", .handler = ngx_cache_purge, .params = domain_only,
          .summary = "empty a domain's cache", .flags = CONVERGER, .timeout_ms = 60000, .lock = "domain" },
        { .name = "nginx.ratelimits.apply", .handler = ngx_ratelimits_apply, .params = ratelimit_params,
          .summary = "converge the http-level rate-limit zones", .flags = CONVERGER, .timeout_ms = 60000 },
        { .name = NULL }
};

JABALI_MODULE(.name = "nginx", .version = "1.0.0", .hat = "nginx",
              .summary = "nginx virtual hosts of hosted domains", .actions = actions,
              .settings = settings, .init = init, .worker_init = worker_init);
