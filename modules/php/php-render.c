/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The pool file from its parameters: the checks the schema cannot make,
 * the template data, the header line. Nothing here touches the host but
 * the template read, so the unit tests link this file as it is. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jabali/stamp.h>
#include <jabali/template.h>

#include "php-internal.h"

#define ADD(o, k, v) json_object_object_add((o), (k), (v))

int php_size_parse(const char *s, uint64_t *bytes) {
        uint64_t n = 0;
        size_t digits = 0;

        if (s[0] < '1' || s[0] > '9')
                return -1;
        for (; *s >= '0' && *s <= '9'; s++, digits++) {
                if (digits == 6)
                        return -1;
                n = n * 10 + (uint64_t) (*s - '0');
        }
        switch (*s) {
        case '\0':
                break;
        case 'K':
                n <<= 10, s++;
                break;
        case 'M':
                n <<= 20, s++;
                break;
        case 'G':
                n <<= 30, s++;
                break;
        default:
                return -1;
        }
        if (*s != '\0')
                return -1;
        *bytes = n;
        return 0;
}

/* What the pool file sets itself, and what would let a pool out of its
 * confinement (loading code, running programs, writing logs elsewhere, a
 * wider open_basedir). An allow-list naming one of these is refused when
 * the module loads; a request naming one is refused whatever the list. */
static const char *const reserved[] = {
        "open_basedir", "upload_tmp_dir", "sys_temp_dir", "session.save_path",
        "memory_limit", "upload_max_filesize", "post_max_size",
        "disable_functions", "disable_classes", "extension", "zend_extension", "extension_dir",
        "auto_prepend_file", "auto_append_file", "sendmail_path", "mail.force_extra_parameters",
        "error_log", "doc_root", "user_dir", "allow_url_include", "user_ini.filename",
        NULL,
};

bool php_admin_key_reserved(const char *key) {
        for (const char *const *r = reserved; *r; r++)
                if (strcmp(*r, key) == 0)
                        return true;
        return false;
}

const char *const php_admin_default_allowed[] = {
        "allow_url_fopen", "date.timezone", "default_charset", "default_socket_timeout",
        "display_errors", "display_startup_errors", "error_reporting", "html_errors", "log_errors",
        "max_execution_time", "max_file_uploads", "max_input_nesting_level", "max_input_time",
        "max_input_vars", "output_buffering", "session.cookie_httponly", "session.cookie_lifetime",
        "session.cookie_samesite", "session.cookie_secure", "session.gc_maxlifetime",
        "session.use_strict_mode", "short_open_tag", "zlib.output_compression",
        NULL,
};

static bool allowed_key(json_object *allowed, const char *key) {
        if (php_admin_key_reserved(key))
                return false;
        if (!allowed) {
                for (const char *const *a = php_admin_default_allowed; *a; a++)
                        if (strcmp(*a, key) == 0)
                                return true;
                return false;
        }
        for (size_t i = 0; i < json_object_array_length(allowed); i++)
                if (strcmp(json_object_get_string(json_object_array_get_idx(allowed, i)), key) == 0)
                        return true;
        return false;
}

/* An unquoted INI value php-fpm reads as one value of this line: the
 * schema already refused control characters (newline, NUL). */
static const char *admin_value_problem(const char *v) {
        size_t n = strlen(v);

        if (strchr(v, ';'))
                return "contains ';'";
        if (strchr(v, '"'))
                return "contains '\"'";
        if (strstr(v, "${"))
                return "contains '${'";
        if (n > 0 && (v[0] == ' ' || v[n - 1] == ' '))
                return "starts or ends with a blank";
        return NULL;
}

static int check_size(const char *name, const char *v, uint64_t lo, uint64_t hi, jb_err *err) {
        uint64_t b;

        if (php_size_parse(v, &b) < 0)
                return jb_err_set(err, JB_E_INVALID_PARAMS, "%s: '%s' is not a size (1 to 6 digits and K, M or G, "
                                  "e.g. 256M)", name, v);
        if (b < lo || b > hi)
                return jb_err_set(err, JB_E_INVALID_PARAMS, "%s: %s is outside %lluK..%lluG", name, v,
                                  (unsigned long long) (lo >> 10), (unsigned long long) (hi >> 30));
        return 0;
}

int php_pool_validate(const php_pool *p, json_object *allowed, jb_err *err) {
        if (strcmp(p->pm, "dynamic") == 0 &&
            !(p->min_spare <= p->start_servers && p->start_servers <= p->max_spare &&
              p->max_spare <= p->max_children))
                return jb_err_set(err, JB_E_INVALID_PARAMS,
                                  "pm dynamic needs min_spare <= start_servers <= max_spare <= max_children");
        if (check_size("memory_limit", p->memory_limit, PHP_MEMORY_MIN, PHP_MEMORY_MAX, err) < 0 ||
            check_size("upload_max_filesize", p->upload_max_filesize, PHP_UPLOAD_MIN, PHP_UPLOAD_MAX, err) < 0)
                return -1;
        if (!p->admin_values)
                return 0;
        json_object_object_foreach(p->admin_values, key, val) {
                const char *why;

                if (php_admin_key_reserved(key))
                        return jb_err_set(err, JB_E_INVALID_PARAMS,
                                          "php_admin_values: '%s' is set by the module and cannot be overridden", key);
                if (!allowed_key(allowed, key))
                        return jb_err_set(err, JB_E_INVALID_PARAMS,
                                          "php_admin_values: '%s' is not in the allowed list (admin_values_allowed)",
                                          key);
                why = admin_value_problem(json_object_get_string(val));
                if (why)
                        return jb_err_set(err, JB_E_INVALID_PARAMS, "php_admin_values['%s']: the value %s", key, why);
        }
        return 0;
}

/* ---- rendering ---- */

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* The admin values sorted by name: the file does not depend on the order
 * of the request's members, so the same request converges. */
static int admin_list(json_object *vals, json_object **ret_list, json_object **ret_meta, jb_err *err) {
        size_t n = vals ? (size_t) json_object_object_length(vals) : 0, i = 0;
        const char **keys = calloc(n > 0 ? n : 1, sizeof *keys);
        json_object *list = json_object_new_array(), *meta = json_object_new_object();

        if (!list || !meta || !keys) {
                free(keys);
                json_object_put(list);
                json_object_put(meta);
                return jb_err_set(err, JB_E_INTERNAL, "out of memory");
        }
        if (vals) {
                json_object_object_foreach(vals, key, val) {
                        (void) val;
                        if (i < n)
                                keys[i++] = key;
                }
        }
        qsort(keys, i, sizeof *keys, cmp_str);
        for (size_t k = 0; k < i; k++) {
                const char *v = json_object_get_string(json_object_object_get(vals, keys[k]));
                json_object *e = json_object_new_object();

                ADD(e, "name", json_object_new_string(keys[k]));
                ADD(e, "value", json_object_new_string(v));
                json_object_array_add(list, e);
                ADD(meta, keys[k], json_object_new_string(v));
        }
        free(keys);
        *ret_list = list;
        *ret_meta = meta;
        return 0;
}

/* The parameters as recorded in the header (php.pool.get returns them). */
static json_object *meta_of(const php_pool *p, json_object *admin_meta) {
        json_object *m = json_object_new_object();

        ADD(m, "user", json_object_new_string(p->user));
        ADD(m, "user_id", json_object_new_int64(p->uid));
        ADD(m, "php_version", json_object_new_string(p->php_version));
        ADD(m, "pm", json_object_new_string(p->pm));
        ADD(m, "max_children", json_object_new_int64(p->max_children));
        ADD(m, "start_servers", json_object_new_int64(p->start_servers));
        ADD(m, "min_spare", json_object_new_int64(p->min_spare));
        ADD(m, "max_spare", json_object_new_int64(p->max_spare));
        ADD(m, "process_idle_timeout", json_object_new_int64(p->process_idle_timeout));
        ADD(m, "max_requests", json_object_new_int64(p->max_requests));
        ADD(m, "request_terminate_timeout", json_object_new_int64(p->request_terminate_timeout));
        ADD(m, "memory_limit", json_object_new_string(p->memory_limit));
        ADD(m, "upload_max_filesize", json_object_new_string(p->upload_max_filesize));
        ADD(m, "php_admin_values", json_object_get(admin_meta));
        return m;
}

static json_object *data_of(const php_pool *p, json_object *admin) {
        json_object *d = json_object_new_object();
        char basedir[PATH_MAX * 2 + 4], pool[80];

        /* The trailing '/' matters: open_basedir is a prefix match, and
         * /home/ab must not open /home/abc. */
        snprintf(basedir, sizeof basedir, "%s/:%s/", p->home, p->tmp);
        snprintf(pool, sizeof pool, PHP_POOL_PREFIX "%s", p->user);
        ADD(d, "pool", json_object_new_string(pool));
        ADD(d, "user", json_object_new_string(p->user));
        ADD(d, "group", json_object_new_string(p->group));
        ADD(d, "socket", json_object_new_string(p->socket));
        ADD(d, "listen_owner", json_object_new_string(p->listen_owner));
        ADD(d, "listen_group", json_object_new_string(p->listen_group));
        ADD(d, "pm", json_object_new_string(p->pm));
        ADD(d, "dynamic", json_object_new_boolean(strcmp(p->pm, "dynamic") == 0));
        ADD(d, "ondemand", json_object_new_boolean(strcmp(p->pm, "ondemand") == 0));
        ADD(d, "max_children", json_object_new_int64(p->max_children));
        ADD(d, "start_servers", json_object_new_int64(p->start_servers));
        ADD(d, "min_spare", json_object_new_int64(p->min_spare));
        ADD(d, "max_spare", json_object_new_int64(p->max_spare));
        ADD(d, "process_idle_timeout", json_object_new_int64(p->process_idle_timeout));
        ADD(d, "max_requests", json_object_new_int64(p->max_requests));
        ADD(d, "request_terminate_timeout", json_object_new_int64(p->request_terminate_timeout));
        ADD(d, "memory_limit", json_object_new_string(p->memory_limit));
        ADD(d, "upload_max_filesize", json_object_new_string(p->upload_max_filesize));
        ADD(d, "admin_values", json_object_get(admin));
        ADD(d, "open_basedir", json_object_new_string(basedir));
        ADD(d, "tmp", json_object_new_string(p->tmp));
        ADD(d, "home", json_object_new_string(p->home));
        return d;
}

int php_pool_render(const php_cfg *c, const php_pool *p, char **ret, size_t *ret_len, jb_err *err) {
        json_object *admin = NULL, *admin_meta = NULL, *data = NULL, *meta = NULL;
        char *tpl = NULL, *body = NULL;
        size_t tpl_len = 0, body_len = 0;
        int r = -1;

        *ret = NULL;
        *ret_len = 0;
        if (admin_list(p->admin_values, &admin, &admin_meta, err) < 0)
                return -1;
        data = data_of(p, admin);
        meta = meta_of(p, admin_meta);
        if (jb_template_load(c->template_override_dir, c->template_dir, PHP_POOL_TEMPLATE, PHP_FILE_MAX, &tpl, &tpl_len,
                             err) < 0)
                goto out;
        if (jb_template_render(tpl, tpl_len, data, JB_TPL_INI, &body, &body_len, err) < 0) {
                /* A value php-fpm must not see stays INVALID_PARAMS; anything
                 * else is the template's fault: nothing is applied. */
                if (jb_code_from_name(err->code) != JB_E_INVALID_PARAMS)
                        jb_err_set(err, JB_E_CONFIG_INVALID, "template %s: %s", PHP_POOL_TEMPLATE, err->msg);
                goto out;
        }
        r = jb_stamp_compose(PHP_HEADER, meta, body, body_len, PHP_FILE_MAX, ret, ret_len, err);
out:
        free(tpl);
        free(body);
        json_object_put(admin);
        json_object_put(admin_meta);
        json_object_put(data);
        json_object_put(meta);
        return r;
}

json_object *php_header_parse(const char *text, size_t len) {
        return jb_stamp_parse(PHP_HEADER, text, len);
}
