/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef NGINX_INTERNAL_H
#define NGINX_INTERNAL_H

/* Shared between the nginx module's files; nothing here is exported. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jabali/module.h>

#ifndef NGINX_TEMPLATE_DIR
#define NGINX_TEMPLATE_DIR "/usr/share/jabali/nginx"
#endif

/* Largest vhost file, template or state file the module reads. */
#define NGX_FILE_MAX (1u << 20)
/* The first line of every file the module writes: it names the file as
 * ours and carries the parameters it was rendered from (get/list). */
#define NGX_HEADER "# jabali-nginx: "
#define NGX_RATELIMIT_FILE "jabali-ratelimits.conf"

/* The module's settings, read once per call. Strings are borrowed from the
 * call's settings object. */
typedef struct ngx_cfg {
        const char *nginx;              /* the binary */
        const char *conf;               /* the main configuration file */
        const char *prefix;             /* -p PREFIX, or NULL */
        const char *sites_available;
        const char *sites_enabled;
        const char *template_dir;
        const char *template_override_dir;
        const char *state_dir;
        const char *cache_dir;
        const char *cache_user;
        const char *web_group;
        const char *php_socket_pattern;
        const char *ratelimit_dir;
        const char *default_docroot;
        const char *unit;
        const char *lock_dir;
        const char *spool_dir;
        int64_t http_port, https_port, min_uid;
} ngx_cfg;

void ngx_cfg_load(jb_call *call, ngx_cfg *c);

/* nginx-check.c */
/* `nginx -t` of the whole configuration. CONFIG_INVALID with nginx's message. */
int ngx_test_full(jb_call *call, const ngx_cfg *c, jb_err *err);
/* `nginx -t` of a throw-away configuration that includes only the
 * http-level files the module manages plus `text` (one vhost, or NULL). */
int ngx_test_isolated(jb_call *call, const ngx_cfg *c, const char *text, size_t len,
                      const char *ratelimits, size_t rl_len, jb_err *err);

/* nginx-batch.c */
/* Applies one domain's change — sites-available/<domain>.conf becomes
 * `text` (NULL: removed), sites-enabled/<domain>.conf a link to `target`
 * (NULL: removed) — together with the changes other workers make at the
 * same time, validated by one `nginx -t` of the whole configuration. On
 * failure nothing of this change is left (CONFIG_INVALID with nginx's
 * message, TIMEOUT, ...). Takes the batch and apply locks itself. */
int ngx_batch_apply(jb_call *call, const ngx_cfg *c, const char *domain, const char *text, size_t len,
                    const char *target, jb_err *err);

/* nginx-render.c */
/* Reads template `name`: the admin override directory first, then the
 * shipped one. *ret is malloc'ed. */
int ngx_template_load(const ngx_cfg *c, const char *name, char **ret, size_t *ret_len, jb_err *err);
/* Renders `name` with `data` for nginx and puts NGX_HEADER + `meta` (one
 * JSON line) in front. A refused value is INVALID_PARAMS; a broken template
 * CONFIG_INVALID. */
int ngx_render(const ngx_cfg *c, const char *name, json_object *data, json_object *meta, char **ret,
               size_t *ret_len, jb_err *err);
/* Parses the header line of a file written by ngx_render (new reference,
 * or NULL when the file is not ours). */
json_object *ngx_header_parse(const char *text, size_t len);

/* nginx-fileset.c: the files one domain consists of, saved and restored. */
typedef struct ngx_fileset {
        char name[300];                 /* "<domain>.conf" */
        char *avail;                    /* old content, NULL when missing */
        size_t avail_len;
        int link_kind;                  /* jb_fs_kind of sites-enabled/<name> */
        char link_target[4096];         /* when it was a symlink */
        char *enabled;                  /* when it was a regular file */
        size_t enabled_len;
} ngx_fileset;

int ngx_fileset_save(int avail_fd, int enabled_fd, const char *domain, ngx_fileset *fs, jb_err *err);
/* Puts back exactly what ngx_fileset_save saw. */
int ngx_fileset_restore(int avail_fd, int enabled_fd, const ngx_fileset *fs, jb_err *err);
void ngx_fileset_free(ngx_fileset *fs);
/* True when sites-enabled/<name> is a symlink to `target`. */
bool ngx_fileset_enabled_ok(const ngx_fileset *fs, const char *target);
/* Makes sites-enabled/<name> a symlink to `target`, atomically. */
int ngx_enable(int enabled_fd, const char *name, const char *target, jb_err *err);

/* nginx-domain.c */
int ngx_domain_create(jb_call *call);
int ngx_domain_update(jb_call *call);
int ngx_domain_delete(jb_call *call);
int ngx_domain_get(jb_call *call);
int ngx_domain_list(jb_call *call);
int ngx_test(jb_call *call);
int ngx_reload(jb_call *call);
/* Takes the module-wide apply lock (serialises write → test → undo). */
int ngx_apply_lock(jb_call *call, const ngx_cfg *c, jb_err *err);

/* nginx-cache.c */
int ngx_cache_purge(jb_call *call);

/* nginx-ratelimits.c */
int ngx_ratelimits_apply(jb_call *call);
/* The current http-level rate-limit file, or NULL/0 when there is none. */
int ngx_ratelimits_current(const ngx_cfg *c, char **ret, size_t *ret_len, jb_err *err);

#endif
