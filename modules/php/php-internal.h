/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef PHP_INTERNAL_H
#define PHP_INTERNAL_H

/* Shared between the php module's files; nothing here is exported. */

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jabali/module.h>

#ifndef PHP_TEMPLATE_DIR
#define PHP_TEMPLATE_DIR "/usr/share/jabali/php"
#endif

/* Largest pool file, template or extension ini the module reads. */
#define PHP_FILE_MAX (1u << 20)
/* The first line of every pool file the module writes (an INI comment):
 * it marks the file as ours and carries the parameters (get/list). */
#define PHP_HEADER "; jabali-php: "
#define PHP_POOL_TEMPLATE "pool.conf.tpl"
/* Pool files and pool names are "jabali-<user>": apart from the package's
 * www pool and from pools an administrator wrote by hand. */
#define PHP_POOL_PREFIX "jabali-"
/* Bounds of the PHP size strings the module takes ("256M"). */
#define PHP_MEMORY_MIN (16ull << 20)
#define PHP_MEMORY_MAX (64ull << 30)
#define PHP_UPLOAD_MIN (1ull << 10)
#define PHP_UPLOAD_MAX (64ull << 30)

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
        const char *versions_dir;
        const char *mods_available;
        const char *conf_d;
        const char *mods_state_dir;     /* or NULL: no state records */
        json_object *admin_allowed;     /* array of ini names, or NULL: the default list */
        int64_t min_uid;
} php_cfg;

void php_cfg_from_settings(json_object *settings, php_cfg *c);

/* pattern with {version} and {user} replaced (user may be NULL when the
 * pattern has no {user}). The result must be a clean absolute path. */
int php_subst(const char *pattern, const char *user, const char *version, char *out, size_t size, jb_err *err);

/* MAJOR.MINOR, 1..3 digits each. */
bool php_version_ok(const char *v);

/* ---- php-render.c: the pool file from its parameters (no host access
 * but reading the template) ---- */

/* A PHP size ("256M"): 1..6 digits, no leading zero, an optional K, M or G.
 * 0 with *bytes set, or -1. */
int php_size_parse(const char *s, uint64_t *bytes);

/* Keys php_admin_values may never name, whatever the allow-list says: the
 * module sets them itself, or they would undo the pool's confinement. */
bool php_admin_key_reserved(const char *key);
/* The allow-list used when admin_values_allowed is not set. */
extern const char *const php_admin_default_allowed[];

/* One pool, as the handler derived it from the request and the host. */
typedef struct php_pool {
        const char *user;
        int64_t uid;
        const char *group;
        const char *php_version;
        const char *socket;
        const char *listen_owner;
        const char *listen_group;
        const char *home;
        const char *tmp;                /* the pool's temporary directory, absolute */
        const char *pm;                 /* static, dynamic, ondemand */
        int64_t max_children;
        int64_t start_servers;
        int64_t min_spare;
        int64_t max_spare;
        int64_t process_idle_timeout;
        int64_t max_requests;
        int64_t request_terminate_timeout;
        const char *memory_limit;
        const char *upload_max_filesize;
        json_object *admin_values;      /* borrowed; NULL: none */
} php_pool;

/* The checks the schema cannot make: pm.* ordering, the sizes, the
 * php_admin_values names (against `allowed`, an array of names, or NULL
 * for the default list) and values. INVALID_PARAMS naming the parameter. */
int php_pool_validate(const php_pool *p, json_object *allowed, jb_err *err);

/* The pool file: the header line with the parameters, then the template
 * (the administrator's override first, else the shipped one) rendered in
 * the INI context. *ret is malloc'ed. A value the context refuses is
 * INVALID_PARAMS; a broken template CONFIG_INVALID. */
int php_pool_render(const php_cfg *c, const php_pool *p, char **ret, size_t *ret_len, jb_err *err);

/* The parameters recorded in a file the module wrote (new reference), or
 * NULL when the file is not ours. */
json_object *php_header_parse(const char *text, size_t len);

/* ---- php-fpm.c: one served version's paths, php-fpm -t, the apply lock ---- */

typedef struct php_target {
        char version[8];
        char fpm[PATH_MAX];
        char conf[PATH_MAX];
        char pool_dir[PATH_MAX];
        char conf_d[PATH_MAX];
        char unit[256];
} php_target;

bool php_version_served(const php_cfg *c, const char *ver);
size_t php_n_versions(const php_cfg *c);
const char *php_version_at(const php_cfg *c, size_t i);
/* INVALID_PARAMS when ver is not served. */
int php_target_for(const php_cfg *c, const char *ver, php_target *t, jb_err *err);

/* php-fpm -t -y <conf>, with PHP_INI_SCAN_DIR=<conf_d> so that it reads
 * the extensions the module manages. A refusal is CONFIG_INVALID. When
 * `problems` is given, it receives (new reference) the startup problems
 * PHP reported (warnings, ini syntax errors) as an array of lines; these
 * never fail the test by themselves. */
int php_fpm_test(jb_call *call, const php_target *t, json_object **problems, jb_err *err);

/* The per-version lock every change of php-fpm's configuration holds from
 * its write to the end of its test (and restore): a test never sees
 * another request's half-done change. Returns the lock's descriptor. */
int php_apply_lock(jb_call *call, const php_cfg *c, const php_target *t, jb_err *err);

json_object *php_strarray(const char *const *v, size_t n);

/* Handlers. php-pool.c */
int php_pool_write(jb_call *call);
int php_pool_delete(jb_call *call);
int php_pool_get(jb_call *call);
int php_pool_list(jb_call *call);
/* php-fpm.c */
int php_test(jb_call *call);
int php_reload(jb_call *call);
int php_versions(jb_call *call);
/* php-ext.c */
int php_ext_enable(jb_call *call);
int php_ext_disable(jb_call *call);

#endif
