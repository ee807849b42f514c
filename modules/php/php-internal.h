/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef PHP_INTERNAL_H
#define PHP_INTERNAL_H

/* Shared between the php module's files; nothing here is exported. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jabali/module.h>

#ifndef PHP_TEMPLATE_DIR
#define PHP_TEMPLATE_DIR "/usr/share/jabali/php"
#endif

/* Largest pool file or template the module reads. */
#define PHP_FILE_MAX (1u << 20)
/* The first line of every pool file the module writes (an INI comment):
 * it marks the file as ours and carries the parameters (get/list). */
#define PHP_HEADER "; jabali-php: "
#define PHP_POOL_TEMPLATE "pool.conf.tpl"

/* The module's settings, read once per call; strings are borrowed from the
 * settings object. Path settings are patterns: "{version}" is replaced by
 * the PHP version (and "{user}" by the account in php_socket_pattern). */
typedef struct php_cfg {
        json_object *versions;          /* array of "MAJOR.MINOR", or NULL: just "8.2" */
        const char *php_fpm;
        const char *fpm_conf;
        const char *pool_dir;
        const char *socket_pattern;
        const char *unit;
        const char *template_dir;
        const char *template_override_dir;     /* or NULL */
        const char *lock_dir;
        const char *listen_owner;
        const char *listen_group;
        const char *tmp_dir;            /* relative to the home */
        int64_t min_uid;
} php_cfg;

void php_cfg_from_settings(json_object *settings, php_cfg *c);

/* pattern with {version} and {user} replaced (user may be NULL when the
 * pattern has no {user}). The result must be a clean absolute path. */
int php_subst(const char *pattern, const char *user, const char *version, char *out, size_t size, jb_err *err);

/* php-pool.c */
int php_pool_create(jb_call *call);
int php_pool_update(jb_call *call);
int php_pool_delete(jb_call *call);
int php_pool_get(jb_call *call);
int php_pool_list(jb_call *call);
int php_test(jb_call *call);
int php_reload(jb_call *call);

#endif
