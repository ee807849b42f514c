/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The php module: one PHP-FPM pool per (account, PHP version), running as
 * the account; the extensions php-fpm loads; its versions and reloads.
 * The descriptor, the action table, the schemas and the settings; the
 * handlers live in php-pool.c, php-ext.c and php-fpm.c. See README.md. */

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <jabali/fs.h>
#include <jabali/module.h>
#include <jabali/validate.h>

#include "php-internal.h"

/* Every setting with its production default. */
void php_cfg_from_settings(json_object *s, php_cfg *c) {
        json_object *v;
        const char *p;

        c->versions = json_object_object_get_ex(s, "versions", &v) && json_object_is_type(v, json_type_array) ?
                              v : NULL;
        c->php_fpm = jb_settings_str(s, "php_fpm", "/usr/sbin/php-fpm{version}");
        c->fpm_conf = jb_settings_str(s, "fpm_conf", "/etc/php/{version}/fpm/php-fpm.conf");
        c->pool_dir = jb_settings_str(s, "pool_dir", "/etc/php/{version}/fpm/pool.d");
        c->socket_pattern = jb_settings_str(s, "php_socket_pattern", "/run/php/php{version}-fpm-{user}.sock");
        c->unit = jb_settings_str(s, "unit", "php{version}-fpm.service");
        c->template_dir = jb_settings_str(s, "template_dir", PHP_TEMPLATE_DIR);
        p = jb_settings_str(s, "template_override_dir", "/etc/jabali/php/templates");
        c->template_override_dir = p && *p ? p : NULL;
        c->lock_dir = jb_settings_str(s, "lock_dir", "/run/jabali-agent/locks");
        c->listen_owner = jb_settings_str(s, "listen_owner", "www-data");
        c->listen_group = jb_settings_str(s, "listen_group", "www-data");
        c->tmp_dir = jb_settings_str(s, "tmp_dir", "tmp");
        c->versions_dir = jb_settings_str(s, "versions_dir", "/etc/php");
        c->mods_available = jb_settings_str(s, "mods_available", "/etc/php/{version}/mods-available");
        c->conf_d = jb_settings_str(s, "conf_d", "/etc/php/{version}/fpm/conf.d");
        p = jb_settings_str(s, "mods_state_dir", "/var/lib/php/modules/{version}/fpm");
        c->mods_state_dir = p && *p ? p : NULL;
        c->admin_allowed = json_object_object_get_ex(s, "admin_values_allowed", &v) &&
                                           json_object_is_type(v, json_type_array) ? v : NULL;
        c->min_uid = jb_settings_int(s, "min_uid", 1000);
}

int php_subst(const char *pattern, const char *user, const char *version, char *out, size_t size, jb_err *err) {
        const char *p = pattern;
        size_t n = 0;

        while (*p) {
                const char *v = NULL;
                size_t skip = 1, l;

                if (strncmp(p, "{user}", 6) == 0)
                        v = user ? user : "", skip = 6;
                else if (strncmp(p, "{version}", 9) == 0)
                        v = version, skip = 9;
                l = v ? strlen(v) : 1;
                if (n + l >= size)
                        return jb_err_set(err, JB_E_INVALID_PARAMS, "%s: the path is too long", pattern);
                memcpy(out + n, v ? v : p, l);
                n += l;
                p += skip;
        }
        out[n] = '\0';
        if (out[0] != '/' || out[1] == '\0' || !jb_valid_rel_path(out + 1, n - 1, NULL))
                return jb_err_set(err, JB_E_INVALID_PARAMS, "%s is not a clean absolute path", out);
        return 0;
}

/* A worker killed in the middle of an atomic write leaves its temporary
 * file behind (php-fpm ignores it: it is not *.conf); the next worker
 * removes the ones no live writer holds. */
static int worker_init(json_object *settings, jb_err *err) {
        php_cfg c;

        (void) err;
        php_cfg_from_settings(settings, &c);
        for (size_t i = 0; i < php_n_versions(&c); i++) {
                const char *ver = php_version_at(&c, i);
                char dir[4096];
                int fd;

                if (php_subst(c.pool_dir, NULL, ver, dir, sizeof dir, NULL) < 0)
                        continue;
                fd = jb_fs_open_root(dir, NULL);
                if (fd < 0)
                        continue;
                (void) jb_fs_clean_temps(fd, ".", NULL);
                close(fd);
        }
        return 0;
}

/* ---- parameter schemas ---- */

static const char *const pm_modes[] = { "static", "dynamic", "ondemand", NULL };

#define USER_PARAM JB_P_STRING("user", JB_CHECK_USERNAME, JB_REQUIRED, "the Linux account the pool runs as")
#define VERSION_PARAM JB_P_STRLEN("php_version", JB_CHECK_TOKEN, JB_REQUIRED, 3, 7, "MAJOR.MINOR, one of settings.versions")

static const jb_param admin_value = JB_P_STRLEN("value", JB_CHECK_NONE, 0, 1, 256, "one line, no ';', '\"' or '${'");

static const jb_param write_params[] = {
        USER_PARAM,
        VERSION_PARAM,
        JB_P_INT("user_id", JB_CHECK_NONE, 0, 0, 4294967294LL, "that account's uid, when given it must match"),
        JB_P_ENUM("pm", pm_modes, 0, "process manager; default ondemand"),
        JB_P_INT("max_children", JB_CHECK_NONE, 0, 1, 1000, "pm.max_children; default 5"),
        JB_P_INT("start_servers", JB_CHECK_NONE, 0, 1, 1000, "pm.start_servers (dynamic); default 1"),
        JB_P_INT("min_spare", JB_CHECK_NONE, 0, 1, 1000, "pm.min_spare_servers (dynamic); default 1"),
        JB_P_INT("max_spare", JB_CHECK_NONE, 0, 1, 1000, "pm.max_spare_servers (dynamic); default 3"),
        JB_P_INT("process_idle_timeout", JB_CHECK_NONE, 0, 1, 86400, "seconds (ondemand); default 10"),
        JB_P_INT("max_requests", JB_CHECK_NONE, 0, 0, 1000000, "pm.max_requests, 0 = unlimited; default 500"),
        JB_P_INT("request_terminate_timeout", JB_CHECK_NONE, 0, 0, 86400,
                 "seconds a request may run before its worker is killed, 0 = never; default 300"),
        JB_P_STRLEN("memory_limit", JB_CHECK_TOKEN, 0, 1, 7, "a PHP size, 16M..64G (digits and K, M or G); default 256M"),
        JB_P_STRLEN("upload_max_filesize", JB_CHECK_TOKEN, 0, 1, 7,
                    "a PHP size, 1K..64G, also post_max_size; default 64M"),
        JB_P_MAP("php_admin_values", JB_CHECK_TOKEN, &admin_value, 0, 0, 64,
                 "more php_admin_value[name] = value, names from settings.admin_values_allowed"),
        JB_P_END
};

static const jb_param key_params[] = {
        USER_PARAM,
        VERSION_PARAM,
        JB_P_END
};

static const jb_param ext_params[] = {
        VERSION_PARAM,
        JB_P_STRLEN("ext", JB_CHECK_TOKEN, JB_REQUIRED, 1, 64, "an extension of mods-available (<ext>.ini)"),
        JB_P_END
};

static const jb_param reload_params[] = {
        JB_P_STRLEN("php_version", JB_CHECK_TOKEN, 0, 3, 7, "MAJOR.MINOR; default every served version"),
        JB_P_END
};

/* ---- settings ---- */

static const jb_param version_item[] = {
        JB_P_STRLEN("version", JB_CHECK_TOKEN, 0, 3, 7, "MAJOR.MINOR"),
        JB_P_END
};

static const jb_param ini_name_item[] = {
        JB_P_STRLEN("name", JB_CHECK_TOKEN, 0, 1, 64, "an ini directive"),
        JB_P_END
};

#define PATH_SETTING(n, d) JB_P_STRLEN(n, JB_CHECK_NONE, 0, 1, 1024, d)

static const jb_param settings[] = {
        JB_P_ARRAY("versions", version_item, 0, 1, 16, "the PHP versions served; default [\"8.2\"]"),
        PATH_SETTING("php_fpm", "the php-fpm binary; default /usr/sbin/php-fpm{version}"),
        PATH_SETTING("fpm_conf", "the main configuration; default /etc/php/{version}/fpm/php-fpm.conf"),
        PATH_SETTING("pool_dir", "where pool files are written; default /etc/php/{version}/fpm/pool.d"),
        PATH_SETTING("php_socket_pattern", "a pool's socket, {user} and {version} replaced; "
                                           "default /run/php/php{version}-fpm-{user}.sock"),
        JB_P_STRLEN("unit", JB_CHECK_NONE, 0, 1, 255, "the unit to reload, {version} replaced; "
                                                      "default php{version}-fpm.service"),
        PATH_SETTING("template_dir", "the shipped templates; default " PHP_TEMPLATE_DIR),
        JB_P_STRLEN("template_override_dir", JB_CHECK_NONE, 0, 0, 1024,
                    "an administrator's templates, used first; default /etc/jabali/php/templates"),
        PATH_SETTING("lock_dir", "where the apply lock lives; default /run/jabali-agent/locks"),
        JB_P_STRING("listen_owner", JB_CHECK_USERNAME, 0, "owner of the pool sockets (the web server); default www-data"),
        JB_P_STRING("listen_group", JB_CHECK_USERNAME, 0, "group of the pool sockets; default www-data"),
        JB_P_STRLEN("tmp_dir", JB_CHECK_REL_PATH, 0, 1, 255, "the pool's temporary directory beneath the home; "
                                                             "default tmp"),
        JB_P_INT("min_uid", JB_CHECK_NONE, 0, 0, 4294967294LL, "the smallest uid a pool may run as; default 1000"),
        PATH_SETTING("versions_dir", "where installed versions have a MAJOR.MINOR directory; default /etc/php"),
        PATH_SETTING("mods_available", "the extensions' ini files; default /etc/php/{version}/mods-available"),
        PATH_SETTING("conf_d", "the ini directory php-fpm scans (PHP_INI_SCAN_DIR); "
                               "default /etc/php/{version}/fpm/conf.d"),
        JB_P_STRLEN("mods_state_dir", JB_CHECK_NONE, 0, 0, 1024,
                    "php-common's records of who enabled what (empty: none); "
                    "default /var/lib/php/modules/{version}/fpm"),
        JB_P_ARRAY("admin_values_allowed", ini_name_item, 0, 0, 256,
                   "the ini names php_admin_values may set; default a list of harmless ones (README)"),
        JB_P_END
};

bool php_version_ok(const char *v) {
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

static int init(json_object *s, jb_err *err) {
        static const char *const paths[] = {
                "php_fpm", "fpm_conf", "pool_dir", "php_socket_pattern", "template_dir", "lock_dir",
                "template_override_dir", "versions_dir", "mods_available", "conf_d", "mods_state_dir",
        };
        json_object *v;

        for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
                const char *p;

                if (!json_object_object_get_ex(s, paths[i], &v))
                        continue;
                p = json_object_get_string(v);
                if (p[0] == '\0' && (strcmp(paths[i], "template_override_dir") == 0 ||
                                      strcmp(paths[i], "mods_state_dir") == 0))
                        continue;
                if (p[0] != '/')
                        return jb_err_set(err, JB_E_CONFIG_INVALID, "%s must be an absolute path", paths[i]);
        }
        if (json_object_object_get_ex(s, "versions", &v))
                for (size_t i = 0; i < json_object_array_length(v); i++)
                        if (!php_version_ok(json_object_get_string(json_object_array_get_idx(v, i))))
                                return jb_err_set(err, JB_E_CONFIG_INVALID, "versions[%zu]: expected MAJOR.MINOR", i);
        /* An allow-list cannot open what the module sets itself. */
        if (json_object_object_get_ex(s, "admin_values_allowed", &v))
                for (size_t i = 0; i < json_object_array_length(v); i++) {
                        const char *k = json_object_get_string(json_object_array_get_idx(v, i));

                        if (php_admin_key_reserved(k))
                                return jb_err_set(err, JB_E_CONFIG_INVALID,
                                                  "admin_values_allowed: %s is set by the module, it cannot be allowed",
                                                  k);
                }
        return 0;
}

/* ---- actions ---- */

#define CONVERGER (JB_ACTION_MUTATING | JB_ACTION_DRY_RUN)

static const jb_action actions[] = {
        { .name = "php.pool.write", .handler = php_pool_write, .params = write_params,
          .summary = "create or converge an account's PHP-FPM pool",
          .flags = CONVERGER, .timeout_ms = 60000, .lock = "user" },
        { .name = "php.pool.delete", .handler = php_pool_delete, .params = key_params,
          .summary = "remove an account's pool (idempotent)",
          .flags = CONVERGER, .timeout_ms = 60000, .lock = "user" },
        { .name = "php.pool.get", .handler = php_pool_get, .params = key_params,
          .summary = "a pool: parameters, path, socket", .timeout_ms = 10000 },
        { .name = "php.pool.list", .handler = php_pool_list, .params = NULL,
          .summary = "every pool this module manages", .timeout_ms = 30000 },
        { .name = "php.versions", .handler = php_versions, .params = NULL,
          .summary = "the PHP versions installed here and which of them are served", .timeout_ms = 10000 },
        { .name = "php.ext.enable", .handler = php_ext_enable, .params = ext_params,
          .summary = "enable an extension for php-fpm (phpenmod -s fpm)",
          .flags = CONVERGER, .timeout_ms = 60000, .lock = "php_version" },
        { .name = "php.ext.disable", .handler = php_ext_disable, .params = ext_params,
          .summary = "disable an extension for php-fpm (phpdismod -s fpm)",
          .flags = CONVERGER, .timeout_ms = 60000, .lock = "php_version" },
        { .name = "php.test", .handler = php_test, .params = NULL,
          .summary = "php-fpm -t of every served version", .timeout_ms = 60000 },
        { .name = "php.reload", .handler = php_reload, .params = reload_params,
          .summary = "test, then reload one served php-fpm (or all) now and wait for it",
          .flags = CONVERGER, .timeout_ms = 60000 },
        { .name = NULL }
};

JABALI_MODULE(.name = "php", .version = "1.0.0", .hat = "php",
              .summary = "per-account PHP-FPM pools", .actions = actions,
              .settings = settings, .init = init, .worker_init = worker_init);
