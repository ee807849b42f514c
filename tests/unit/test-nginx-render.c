/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Tests for the nginx module's rendering (nginx-render.c: templates, the
 * vhost text, the header line) and its file set (nginx-fileset.c), against
 * the shipped templates in modules/nginx/templates.
 *
 * The template data is built here the way nginx-domain.c's build() builds
 * it; every flag combination is rendered and checked line by line, and a
 * few combinations against their whole expected text.
 *
 * Where the templates are: $JABALI_SRCDIR/modules/nginx/templates, else
 * NGINX_SRC_TEMPLATES (a build define), else modules/nginx/templates. */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include <jabali/fs.h>

#include "nginx-internal.h"

#ifndef NGINX_SRC_TEMPLATES
#define NGINX_SRC_TEMPLATES "modules/nginx/templates"
#endif

static char template_dir[PATH_MAX];

static void assert_code(const jb_err *err, const char *code) {
        if (strcmp(err->code, code) != 0)
                fail_msg("expected %s, got '%s' (%s)", code, err->code, err->msg);
}

/* ---- scratch directories ---- */

static void write_file(const char *dir, const char *name, const char *text) {
        char p[PATH_MAX * 2];
        FILE *f;

        snprintf(p, sizeof p, "%s/%s", dir, name);
        f = fopen(p, "w");
        assert_non_null(f);
        assert_int_equal(fputs(text, f) >= 0, 1);
        assert_int_equal(fclose(f), 0);
}

static char *read_whole(const char *dir, const char *name) {
        char p[PATH_MAX * 2], *buf;
        FILE *f;
        long n;

        snprintf(p, sizeof p, "%s/%s", dir, name);
        f = fopen(p, "r");
        assert_non_null(f);
        assert_int_equal(fseek(f, 0, SEEK_END), 0);
        n = ftell(f);
        assert_true(n >= 0);
        rewind(f);
        buf = malloc((size_t) n + 1);
        assert_non_null(buf);
        assert_int_equal(fread(buf, 1, (size_t) n, f), (size_t) n);
        buf[n] = '\0';
        fclose(f);
        return buf;
}

/* A fresh directory under $TMPDIR; removed by rm_tmpdir. */
static void make_tmpdir(char *out, size_t size) {
        const char *t = getenv("TMPDIR");

        snprintf(out, size, "%s/test-nginx-XXXXXX", t && *t ? t : "/tmp");
        assert_non_null(mkdtemp(out));
}

static void rm_tmpdir(const char *dir) {
        char parent[PATH_MAX];
        const char *slash = strrchr(dir, '/');
        jb_err err = JB_ERR_INIT;
        int fd;

        assert_non_null(slash);
        snprintf(parent, sizeof parent, "%.*s", (int) (slash - dir), dir);
        fd = jb_fs_open_root(parent[0] ? parent : "/", &err);
        assert_true(fd >= 0);
        assert_int_equal(jb_fs_remove_tree(fd, slash + 1, &err), 1);
        close(fd);
}

/* ---- the vhost data, as build() makes it ---- */

enum {
        F_SSL = 1 << 0,
        F_REDIRECT_WWW = 1 << 1,
        F_FORCE_HTTPS = 1 << 2,         /* only with F_SSL: build() refuses it otherwise */
        F_PHP = 1 << 3,
        F_CACHE = 1 << 4,
        F_LIMIT_REQ = 1 << 5,
        F_ALIASES = 1 << 6,
        F_CUSTOM_PORTS = 1 << 7,        /* 8080/8443 instead of 80/443 */
        F_ALL = (1 << 8) - 1,
};

#define ADD(o, k, v) json_object_object_add((o), (k), (v))

static json_object *vhost_data(unsigned f) {
        json_object *d = json_object_new_object(), *a = json_object_new_array();
        int64_t http = f & F_CUSTOM_PORTS ? 8080 : 80, https = f & F_CUSTOM_PORTS ? 8443 : 443;
        char buf[64];

        assert_non_null(d);
        ADD(d, "domain", json_object_new_string("a.test"));
        ADD(d, "www_name", json_object_new_string("www.a.test"));
        if (f & F_ALIASES) {
                json_object_array_add(a, json_object_new_string("b.test"));
                json_object_array_add(a, json_object_new_string("c.test"));
        }
        ADD(d, "aliases", a);
        ADD(d, "root", json_object_new_string("/home/u/public_html"));
        snprintf(buf, sizeof buf, "127.0.0.1:%lld", (long long) http);
        ADD(d, "http_listen", json_object_new_string(buf));
        snprintf(buf, sizeof buf, "127.0.0.1:%lld", (long long) https);
        ADD(d, "https_listen", json_object_new_string(buf));
        ADD(d, "https_port", json_object_new_int64(https));
        ADD(d, "https_port_custom", json_object_new_boolean(https != 443));
        ADD(d, "ports_custom", json_object_new_boolean(http != 80 || https != 443));
        if (f & F_SSL) {
                json_object *s = json_object_new_object();
                ADD(s, "cert", json_object_new_string("/etc/ssl/a.pem"));
                ADD(s, "key", json_object_new_string("/etc/ssl/a.key"));
                ADD(d, "ssl", s);
        } else
                ADD(d, "ssl", json_object_new_boolean(false));
        ADD(d, "force_https", json_object_new_boolean(f & F_FORCE_HTTPS));
        ADD(d, "redirect_www", json_object_new_boolean(f & F_REDIRECT_WWW));
        ADD(d, "php", json_object_new_boolean(f & F_PHP));
        ADD(d, "php_socket", json_object_new_string(f & F_PHP ? "/run/php/php8.2-fpm-u.sock" : "-"));
        ADD(d, "fastcgi_conf", json_object_new_string("/etc/nginx/fastcgi.conf"));
        ADD(d, "cache", json_object_new_boolean(f & F_CACHE));
        ADD(d, "cache_path", json_object_new_string("/var/cache/nginx/jabali/a.test"));
        ADD(d, "cache_zone", json_object_new_string("jb_a.test"));
        if (f & F_LIMIT_REQ) {
                json_object *l = json_object_new_object();
                ADD(l, "zone", json_object_new_string("perip"));
                ADD(l, "burst", json_object_new_int64(5));
                ADD(d, "limit_req", l);
        } else
                ADD(d, "limit_req", json_object_new_boolean(false));
        return d;
}

static json_object *vhost_meta(void) {
        json_object *m = json_tokener_parse("{\"domain\":\"a.test\",\"user\":\"u\",\"user_id\":1000,"
                                            "\"document_root\":\"public_html\"}");
        assert_non_null(m);
        return m;
}

static ngx_cfg cfg_with(const char *override) {
        ngx_cfg c;

        memset(&c, 0, sizeof c);
        c.template_dir = template_dir;
        c.template_override_dir = override;
        return c;
}

/* Renders the shipped vhost template; returns the text after the header
 * line (owned by the caller) and checks the header on the way. */
static char *render_vhost(json_object *data, jb_err *err) {
        ngx_cfg c = cfg_with(NULL);
        json_object *meta = vhost_meta(), *back;
        char *out = (char *) 0x1, *body;
        size_t len = 0;
        const char *nl;

        if (ngx_render(&c, "vhost.conf.tpl", data, meta, &out, &len, err) < 0) {
                assert_null(out);
                json_object_put(meta);
                return NULL;
        }
        assert_non_null(out);
        assert_int_equal(strlen(out), len);
        assert_int_equal(strncmp(out, NGX_HEADER, strlen(NGX_HEADER)), 0);
        back = ngx_header_parse(out, len);
        assert_non_null(back);
        assert_true(json_object_equal(back, meta));
        json_object_put(back);
        json_object_put(meta);
        nl = strchr(out, '\n');
        assert_non_null(nl);
        body = strdup(nl + 1);
        assert_non_null(body);
        free(out);
        return body;
}

static unsigned count(const char *hay, const char *needle) {
        unsigned n = 0;

        for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
                n++;
        return n;
}

/* ---- whole expected texts ---- */

static const char minimal_vhost[] =
        "server {\n"
        "        listen 127.0.0.1:80;\n"
        "        server_name a.test;\n"
        "        root /home/u/public_html;\n"
        "        index index.html index.htm;\n"
        "        disable_symlinks if_not_owner from=$document_root;\n"
        "\n"
        "        location ^~ /.well-known/acme-challenge/ {\n"
        "                try_files $uri =404;\n"
        "        }\n"
        "        location / {\n"
        "                try_files $uri $uri/ =404;\n"
        "        }\n"
        "        location ~ /\\.(?!well-known) {\n"
        "                deny all;\n"
        "        }\n"
        "}\n";

static const char full_vhost[] =
        "fastcgi_cache_path /var/cache/nginx/jabali/a.test levels=1:2 keys_zone=jb_a.test:10m max_size=256m "
        "inactive=60m use_temp_path=off;\n"
        "server {\n"
        "        listen 127.0.0.1:8080;\n"
        "        listen 127.0.0.1:8443 ssl;\n"
        "        ssl_certificate /etc/ssl/a.pem;\n"
        "        ssl_certificate_key /etc/ssl/a.key;\n"
        "        server_name www.a.test;\n"
        "        location ^~ /.well-known/acme-challenge/ {\n"
        "                root /home/u/public_html;\n"
        "                try_files $uri =404;\n"
        "        }\n"
        "        location / {\n"
        "                return 301 $scheme://a.test:$server_port$request_uri;\n"
        "        }\n"
        "}\n"
        "server {\n"
        "        listen 127.0.0.1:8080;\n"
        "        listen 127.0.0.1:8443 ssl;\n"
        "        ssl_certificate /etc/ssl/a.pem;\n"
        "        ssl_certificate_key /etc/ssl/a.key;\n"
        "        ssl_protocols TLSv1.2 TLSv1.3;\n"
        "        server_name a.test b.test c.test;\n"
        "        root /home/u/public_html;\n"
        "        index index.php index.html index.htm;\n"
        "        disable_symlinks if_not_owner from=$document_root;\n"
        "        limit_req zone=perip burst=5 nodelay;\n"
        "\n"
        "        location ^~ /.well-known/acme-challenge/ {\n"
        "                try_files $uri =404;\n"
        "        }\n"
        "        location / {\n"
        "                if ($scheme = http) {\n"
        "                        return 301 https://$host:8443$request_uri;\n"
        "                }\n"
        "                try_files $uri $uri/ /index.php?$args;\n"
        "        }\n"
        "        location ~ \\.php$ {\n"
        "                if ($scheme = http) {\n"
        "                        return 301 https://$host:8443$request_uri;\n"
        "                }\n"
        "                try_files $uri =404;\n"
        "                include /etc/nginx/fastcgi.conf;\n"
        "                fastcgi_pass unix:/run/php/php8.2-fpm-u.sock;\n"
        "                fastcgi_cache jb_a.test;\n"
        "                fastcgi_cache_key $scheme$request_method$host$request_uri;\n"
        "                fastcgi_cache_valid 200 301 302 10m;\n"
        "                fastcgi_cache_bypass $cookie_PHPSESSID $http_authorization;\n"
        "                fastcgi_no_cache $cookie_PHPSESSID $http_authorization;\n"
        "        }\n"
        "        location ~ /\\.(?!well-known) {\n"
        "                deny all;\n"
        "        }\n"
        "}\n";

/* PHP without a cache, standard ports, HTTPS without the redirect. */
static const char php_ssl_vhost[] =
        "server {\n"
        "        listen 127.0.0.1:80;\n"
        "        listen 127.0.0.1:443 ssl;\n"
        "        ssl_certificate /etc/ssl/a.pem;\n"
        "        ssl_certificate_key /etc/ssl/a.key;\n"
        "        ssl_protocols TLSv1.2 TLSv1.3;\n"
        "        server_name a.test;\n"
        "        root /home/u/public_html;\n"
        "        index index.php index.html index.htm;\n"
        "        disable_symlinks if_not_owner from=$document_root;\n"
        "\n"
        "        location ^~ /.well-known/acme-challenge/ {\n"
        "                try_files $uri =404;\n"
        "        }\n"
        "        location / {\n"
        "                try_files $uri $uri/ /index.php?$args;\n"
        "        }\n"
        "        location ~ \\.php$ {\n"
        "                try_files $uri =404;\n"
        "                include /etc/nginx/fastcgi.conf;\n"
        "                fastcgi_pass unix:/run/php/php8.2-fpm-u.sock;\n"
        "        }\n"
        "        location ~ /\\.(?!well-known) {\n"
        "                deny all;\n"
        "        }\n"
        "}\n";

static void check_text(unsigned flags, const char *want) {
        json_object *d = vhost_data(flags);
        jb_err err = JB_ERR_INIT;
        char *got = render_vhost(d, &err);

        json_object_put(d);
        if (!got) {
                fail_msg("render failed: %s: %s", err.code, err.msg);
                return;
        }
        if (strcmp(got, want) != 0) {
                print_error("got:\n%s\nwanted:\n%s\n", got, want);
                free(got);
                fail_msg("vhost text for flags 0x%x differs", flags);
                return;         /* fail_msg does not return; for the analyzers */
        }
        free(got);
}

static void test_vhost_minimal_text(void **state) {
        (void) state;
        check_text(0, minimal_vhost);
}

static void test_vhost_full_text(void **state) {
        (void) state;
        check_text(F_ALL, full_vhost);
}

static void test_vhost_php_ssl_text(void **state) {
        (void) state;
        check_text(F_PHP | F_SSL, php_ssl_vhost);
}

/* Every combination: each flag shows exactly where it should, and the
 * output stays structurally sound (balanced braces, no empty line but the
 * one after the server's head, every directive line ended). */
static void test_vhost_every_combination(void **state) {
        (void) state;
        for (unsigned f = 0; f <= F_ALL; f++) {
                bool ssl = f & F_SSL, www = f & F_REDIRECT_WWW, force = f & F_FORCE_HTTPS, php = f & F_PHP,
                     cache = f & F_CACHE, lim = f & F_LIMIT_REQ, ali = f & F_ALIASES, cust = f & F_CUSTOM_PORTS;
                unsigned servers = www ? 2 : 1;
                json_object *d;
                jb_err err = JB_ERR_INIT;
                char *t;
                int depth = 0;

                if (force && !ssl)
                        continue;
                d = vhost_data(f);
                t = render_vhost(d, &err);
                json_object_put(d);
                if (!t) {
                        fail_msg("flags 0x%x: %s: %s", f, err.code, err.msg);
                        return;
                }

                assert_int_equal(count(t, "server {\n"), servers);
                assert_int_equal(count(t, cust ? "listen 127.0.0.1:8080;\n" : "listen 127.0.0.1:80;\n"), servers);
                assert_int_equal(count(t, cust ? "listen 127.0.0.1:8443 ssl;\n" : "listen 127.0.0.1:443 ssl;\n"),
                                 ssl ? servers : 0);
                assert_int_equal(count(t, "ssl_certificate /etc/ssl/a.pem;\n"), ssl ? servers : 0);
                assert_int_equal(count(t, "ssl_certificate_key /etc/ssl/a.key;\n"), ssl ? servers : 0);
                assert_int_equal(count(t, "ssl_protocols "), ssl ? 1 : 0);
                assert_int_equal(count(t, "server_name www.a.test;\n"), www ? 1 : 0);
                assert_int_equal(count(t, cust ? "return 301 $scheme://a.test:$server_port$request_uri;\n"
                                               : "return 301 $scheme://a.test$request_uri;\n"),
                                 www ? 1 : 0);
                assert_int_equal(count(t, ali ? "server_name a.test b.test c.test;\n" : "server_name a.test;\n"), 1);
                assert_int_equal(count(t, cust ? "return 301 https://$host:8443$request_uri;\n"
                                               : "return 301 https://$host$request_uri;\n"),
                                 force ? (php ? 2 : 1) : 0);
                assert_int_equal(count(t, "if ($scheme = http)"), force ? (php ? 2 : 1) : 0);
                assert_int_equal(count(t, "location ~ \\.php$ {\n"), php ? 1 : 0);
                assert_int_equal(count(t, php ? "index index.php index.html index.htm;\n"
                                              : "index index.html index.htm;\n"), 1);
                assert_int_equal(count(t, php ? "try_files $uri $uri/ /index.php?$args;\n"
                                              : "try_files $uri $uri/ =404;\n"), 1);
                assert_int_equal(count(t, "fastcgi_pass unix:/run/php/php8.2-fpm-u.sock;\n"), php ? 1 : 0);
                assert_int_equal(count(t, "include /etc/nginx/fastcgi.conf;\n"), php ? 1 : 0);
                assert_int_equal(count(t, "fastcgi_cache_path /var/cache/nginx/jabali/a.test "), cache ? 1 : 0);
                assert_int_equal(count(t, "fastcgi_cache jb_a.test;\n"), cache && php ? 1 : 0);
                assert_int_equal(count(t, "limit_req zone=perip burst=5 nodelay;\n"), lim ? 1 : 0);
                assert_int_equal(count(t, "root /home/u/public_html;\n"), servers);
                assert_int_equal(count(t, "-;"), 0);       /* the "-" placeholder socket never shows */
                assert_int_equal(count(t, "\n\n"), 1);
                assert_int_equal(count(t, "{{"), 0);
                assert_int_equal(count(t, "}}"), 0);
                for (const char *p = t; *p; p++) {
                        if (*p == '{')
                                depth++;
                        else if (*p == '}')
                                depth--;
                        assert_true(depth >= 0);
                }
                assert_int_equal(depth, 0);
                /* Every non-empty line ends with ';', '{' or '}'. */
                for (const char *line = t; *line; ) {
                        const char *nl = strchr(line, '\n');
                        assert_non_null(nl);
                        if (nl > line && !strchr(";{}", nl[-1]))
                                fail_msg("flags 0x%x: line without an end: %.*s", f, (int) (nl - line), line);
                        line = nl + 1;
                }
                free(t);
        }
}

/* ---- hostile values ---- */

static void expect_refused(json_object *d, const char *what) {
        jb_err err = JB_ERR_INIT;
        char *t = render_vhost(d, &err);

        if (t) {
                print_error("rendered:\n%s\n", t);
                free(t);
                fail_msg("%s was rendered", what);
        }
        assert_code(&err, "INVALID_PARAMS");
}

static void test_hostile_values_refused(void **state) {
        static const char *const bad[] = {
                "a.test;", "a.test{", "a.test}", "a\"b", "a'b", "a\\b", "a$b", "a#b", "a b", "a\tb",
                "a\nb", "a\rb", "a`b", "", "a.test;\n}\nserver{listen 1", "\xff\xfe", "a\x01",
        };
        static const char *const keys[] = { "domain", "www_name", "root", "http_listen", "php_socket",
                                            "fastcgi_conf", "cache_path", "cache_zone" };
        (void) state;

        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
                for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                        json_object *d = vhost_data(F_ALL);
                        char what[128];

                        ADD(d, keys[k], json_object_new_string(bad[i]));
                        snprintf(what, sizeof what, "%s #%zu", keys[k], i);
                        expect_refused(d, what);
                        json_object_put(d);
                }
        /* Nested and array values pass the same context. */
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                json_object *d = vhost_data(F_ALL), *v;

                assert_true(json_object_object_get_ex(d, "aliases", &v));
                json_object_array_put_idx(v, 1, json_object_new_string(bad[i]));
                expect_refused(d, "alias");
                json_object_put(d);

                d = vhost_data(F_ALL);
                assert_true(json_object_object_get_ex(d, "ssl", &v));
                ADD(v, "key", json_object_new_string(bad[i]));
                expect_refused(d, "ssl.key");
                json_object_put(d);

                d = vhost_data(F_ALL);
                assert_true(json_object_object_get_ex(d, "limit_req", &v));
                ADD(v, "zone", json_object_new_string(bad[i]));
                expect_refused(d, "limit_req.zone");
                json_object_put(d);
        }
}

/* A value used only in a section that is off is never looked at. */
static void test_values_of_unused_sections_ignored(void **state) {
        json_object *d = vhost_data(0);
        jb_err err = JB_ERR_INIT;
        char *t;
        (void) state;

        ADD(d, "php_socket", json_object_new_string("x;y"));
        ADD(d, "cache_zone", json_object_new_string("x{y"));
        t = render_vhost(d, &err);
        json_object_put(d);
        assert_non_null(t);
        assert_string_equal(t, minimal_vhost);
        free(t);
}

/* ---- templates: override first, broken ones, missing ones ---- */

static void test_template_override_first(void **state) {
        char dir[PATH_MAX], *text = NULL, *shipped;
        ngx_cfg c;
        jb_err err = JB_ERR_INIT;
        size_t len = 0;
        (void) state;

        make_tmpdir(dir, sizeof dir);
        /* The override directory holds no such file: the shipped one. */
        c = cfg_with(dir);
        assert_int_equal(ngx_template_load(&c, "vhost.conf.tpl", &text, &len, &err), 0);
        shipped = read_whole(template_dir, "vhost.conf.tpl");
        assert_string_equal(text, shipped);
        assert_int_equal(len, strlen(shipped));
        free(text);
        free(shipped);

        write_file(dir, "vhost.conf.tpl", "server { server_name {{domain}}; }\n");
        text = NULL;
        assert_int_equal(ngx_template_load(&c, "vhost.conf.tpl", &text, &len, &err), 0);
        assert_string_equal(text, "server { server_name {{domain}}; }\n");
        free(text);

        /* Rendering goes through the override too, header first. */
        {
                json_object *d = vhost_data(0), *m = json_object_new_object();
                char *out = NULL;

                assert_int_equal(ngx_render(&c, "vhost.conf.tpl", d, m, &out, &len, &err), 0);
                assert_string_equal(out, NGX_HEADER "{}\nserver { server_name a.test; }\n");
                assert_int_equal(len, strlen(out));
                free(out);
                json_object_put(d);
                json_object_put(m);
        }

        /* No override directory at all (the setting's default may not exist). */
        {
                char missing[PATH_MAX + 16];
                snprintf(missing, sizeof missing, "%s/nonexistent", dir);
                c = cfg_with(missing);
                text = NULL;
                assert_int_equal(ngx_template_load(&c, "vhost.conf.tpl", &text, &len, &err), 0);
                assert_int_equal(strncmp(text, "{{!", 3), 0);
                free(text);
        }
        rm_tmpdir(dir);
}

static void test_template_missing_or_unreadable(void **state) {
        char dir[PATH_MAX], sub[PATH_MAX + 16], *text = (char *) 0x1;
        ngx_cfg c;
        jb_err err = JB_ERR_INIT;
        size_t len = 0;
        (void) state;

        make_tmpdir(dir, sizeof dir);
        c = cfg_with(dir);
        assert_int_equal(ngx_template_load(&c, "nosuch.tpl", &text, &len, &err), -1);
        assert_code(&err, "INTERNAL");
        assert_non_null(strstr(err.msg, "nosuch.tpl"));

        /* A symlink in the override directory is not followed, and it is
         * an error, not a silent fall-back to the shipped template. */
        snprintf(sub, sizeof sub, "%s/vhost.conf.tpl", dir);
        assert_int_equal(symlink("/etc/passwd", sub), 0);
        jb_err_clear(&err);
        text = NULL;
        assert_int_equal(ngx_template_load(&c, "vhost.conf.tpl", &text, &len, &err), -1);
        assert_null(text);
        assert_true(err.code[0] != '\0');
        assert_int_equal(unlink(sub), 0);

        /* A directory by that name: refused as well. */
        assert_int_equal(mkdir(sub, 0700), 0);
        jb_err_clear(&err);
        assert_int_equal(ngx_template_load(&c, "vhost.conf.tpl", &text, &len, &err), -1);
        assert_null(text);
        assert_true(err.code[0] != '\0');
        rm_tmpdir(dir);
}

static void test_broken_template_is_config_invalid(void **state) {
        static const char *const broken[] = {
                "{{#unclosed}}\nx;\n",
                "{{/never_opened}}\n",
                "{{{raw}}}\n",
                "{{nosuchname}}\n",             /* a name the data lacks */
                "{{aliases}}\n",                /* an array as a value */
                "{{>partial}}\n",
        };
        char dir[PATH_MAX];
        jb_err err;
        (void) state;

        make_tmpdir(dir, sizeof dir);
        for (size_t i = 0; i < sizeof broken / sizeof broken[0]; i++) {
                ngx_cfg c = cfg_with(dir);
                json_object *d = vhost_data(F_ALL), *m = vhost_meta();
                char *out = (char *) 0x1;
                size_t len = 0;

                write_file(dir, "vhost.conf.tpl", broken[i]);
                jb_err_clear(&err);
                assert_int_equal(ngx_render(&c, "vhost.conf.tpl", d, m, &out, &len, &err), -1);
                assert_null(out);
                assert_code(&err, "CONFIG_INVALID");
                assert_non_null(strstr(err.msg, "vhost.conf.tpl"));
                json_object_put(d);
                json_object_put(m);
        }
        rm_tmpdir(dir);
}

static void test_ratelimits_template(void **state) {
        ngx_cfg c = cfg_with(NULL);
        json_object *d = json_tokener_parse("{\"zones\":[{\"name\":\"perip\",\"rate\":10,\"size_mb\":1},"
                                            "{\"name\":\"slow\",\"rate\":1,\"size_mb\":16}]}");
        json_object *m = json_object_new_object();
        jb_err err = JB_ERR_INIT;
        char *out = NULL;
        size_t len = 0;
        (void) state;

        assert_int_equal(ngx_render(&c, "ratelimits.conf.tpl", d, m, &out, &len, &err), 0);
        assert_string_equal(out, NGX_HEADER "{}\n"
                                 "limit_req_zone $binary_remote_addr zone=perip:1m rate=10r/s;\n"
                                 "limit_req_zone $binary_remote_addr zone=slow:16m rate=1r/s;\n");
        free(out);
        json_object_put(d);

        d = json_tokener_parse("{\"zones\":[]}");
        assert_int_equal(ngx_render(&c, "ratelimits.conf.tpl", d, m, &out, &len, &err), 0);
        assert_string_equal(out, NGX_HEADER "{}\n");
        free(out);
        json_object_put(d);

        d = json_tokener_parse("{\"zones\":[{\"name\":\"a:1m rate=1r/s;x\",\"rate\":1,\"size_mb\":1}]}");
        out = (char *) 0x1;
        assert_int_equal(ngx_render(&c, "ratelimits.conf.tpl", d, m, &out, &len, &err), -1);
        assert_null(out);
        assert_code(&err, "INVALID_PARAMS");
        json_object_put(d);
        json_object_put(m);
}

/* ---- the header line ---- */

/* Parses exactly len bytes from a heap copy, so that ASan sees a read
 * past the end. */
static json_object *parse_exact(const char *text, size_t len) {
        char *copy = malloc(len ? len : 1);
        json_object *o;

        assert_non_null(copy);
        memcpy(copy, text, len);
        o = ngx_header_parse(copy, len);
        free(copy);
        return o;
}

static void test_header_round_trip(void **state) {
        static const char *const metas[] = {
                "{}",
                "{\"domain\":\"a.test\",\"aliases\":[\"b.test\"],\"has_php\":true,\"user_id\":4294967294}",
                /* Values the renderer never sees still survive the line:
                 * a newline, a slash, a quote, non-ASCII. */
                "{\"note\":\"line\\nbreak / \\\"q\\\" \\u00e9\\u2028\",\"n\":null,\"o\":{\"x\":[1,2,{}]}}",
        };
        (void) state;

        for (size_t i = 0; i < sizeof metas / sizeof metas[0]; i++) {
                ngx_cfg c;
                char dir[PATH_MAX], *out = NULL;
                json_object *m = json_tokener_parse(metas[i]), *d = json_object_new_object(), *back;
                jb_err err = JB_ERR_INIT;
                size_t len = 0;

                assert_non_null(m);
                make_tmpdir(dir, sizeof dir);
                write_file(dir, "t.tpl", "body;\n");
                c = cfg_with(dir);
                assert_int_equal(ngx_render(&c, "t.tpl", d, m, &out, &len, &err), 0);
                /* One header line, then the body. */
                assert_int_equal(count(out, "\n"), 2);
                assert_int_equal(strcmp(out + len - 6, "body;\n"), 0);
                back = parse_exact(out, len);
                assert_non_null(back);
                assert_true(json_object_equal(back, m));
                json_object_put(back);
                /* Only the first line counts: the body may be anything. */
                back = parse_exact(out, (size_t) (strchr(out, '\n') - out) + 1);
                assert_non_null(back);
                assert_true(json_object_equal(back, m));
                json_object_put(back);
                free(out);
                json_object_put(m);
                json_object_put(d);
                rm_tmpdir(dir);
        }
}

static void test_header_not_ours(void **state) {
        static const char *const texts[] = {
                "",
                "#",
                "# jabali-nginx:",
                "# jabali-nginx: ",
                "# jabali-nginx: {}",                           /* no end of line */
                "# jabali-nginx: {\"a\":1",                     /* cut short */
                "# jabali-nginx: {\"a\":\n1}\n",                /* the object spans lines */
                "# jabali-nginx: \n{}\n",
                "# jabali-nginx: []\n",
                "# jabali-nginx: \"x\"\n",
                "# jabali-nginx: 12\n",
                "# jabali-nginx: null\n",
                "# jabali-nginx: {\"a\":}\n",
                "# jabali-nginx {}\n",
                "# Jabali-nginx: {}\n",
                " # jabali-nginx: {}\n",
                "# written by hand\n# jabali-nginx: {}\n",
                "server { }\n",
        };
        (void) state;

        for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
                json_object *o = parse_exact(texts[i], strlen(texts[i]));
                if (o) {
                        json_object_put(o);
                        fail_msg("accepted as ours: \"%s\"", texts[i]);
                }
        }
        /* A NUL inside the line ends the JSON text early: not an object. */
        {
                static const char t[] = "# jabali-nginx: {\"a\0\":1}\n";
                assert_null(parse_exact(t, sizeof t - 1));
        }
        /* The length bounds the parse, not a NUL. */
        {
                static const char t[] = "# jabali-nginx: {\"a\":1}\n";
                assert_null(parse_exact(t, sizeof t - 2));
                json_object *o = parse_exact(t, sizeof t - 1);
                assert_non_null(o);
                json_object_put(o);
        }
}

/* ---- the file set of one domain ---- */

typedef struct dirs {
        char top[PATH_MAX];
        char avail[PATH_MAX + 8];
        char enabled[PATH_MAX + 8];
        int avail_fd, enabled_fd;
} dirs;

static void dirs_open(dirs *d) {
        jb_err err = JB_ERR_INIT;

        make_tmpdir(d->top, sizeof d->top);
        snprintf(d->avail, sizeof d->avail, "%s/av", d->top);
        snprintf(d->enabled, sizeof d->enabled, "%s/en", d->top);
        assert_int_equal(mkdir(d->avail, 0755), 0);
        assert_int_equal(mkdir(d->enabled, 0755), 0);
        d->avail_fd = jb_fs_open_root(d->avail, &err);
        d->enabled_fd = jb_fs_open_root(d->enabled, &err);
        assert_true(d->avail_fd >= 0 && d->enabled_fd >= 0);
}

static void dirs_close(dirs *d) {
        close(d->avail_fd);
        close(d->enabled_fd);
        rm_tmpdir(d->top);
}

static void link_target(const dirs *d, const char *name, char *out, size_t size) {
        char p[PATH_MAX * 2];
        ssize_t n;

        snprintf(p, sizeof p, "%s/%s", d->enabled, name);
        n = readlink(p, out, size - 1);
        assert_true(n >= 0);
        out[n] = '\0';
}

static void test_fileset_missing_then_enabled(void **state) {
        dirs d;
        ngx_fileset fs;
        jb_err err = JB_ERR_INIT;
        char target[PATH_MAX * 2], got[PATH_MAX];
        (void) state;

        dirs_open(&d);
        assert_int_equal(ngx_fileset_save(d.avail_fd, d.enabled_fd, "a.test", &fs, &err), 0);
        assert_string_equal(fs.name, "a.test.conf");
        assert_null(fs.avail);
        assert_int_equal(fs.link_kind, JB_FS_MISSING);
        snprintf(target, sizeof target, "%s/a.test.conf", d.avail);
        assert_false(ngx_fileset_enabled_ok(&fs, target));
        ngx_fileset_free(&fs);

        write_file(d.avail, "a.test.conf", "# jabali-nginx: {}\nserver {}\n");
        assert_int_equal(ngx_enable(d.enabled_fd, "a.test.conf", target, &err), 1);
        link_target(&d, "a.test.conf", got, sizeof got);
        assert_string_equal(got, target);

        assert_int_equal(ngx_fileset_save(d.avail_fd, d.enabled_fd, "a.test", &fs, &err), 0);
        assert_non_null(fs.avail);
        assert_int_equal(fs.avail_len, strlen("# jabali-nginx: {}\nserver {}\n"));
        assert_int_equal(fs.link_kind, JB_FS_SYMLINK);
        assert_true(ngx_fileset_enabled_ok(&fs, target));
        assert_false(ngx_fileset_enabled_ok(&fs, "/elsewhere/a.test.conf"));
        ngx_fileset_free(&fs);
        ngx_fileset_free(&fs);          /* idempotent */

        /* Re-enabling replaces the link in one rename; no stray temp links. */
        assert_int_equal(ngx_enable(d.enabled_fd, "a.test.conf", "/elsewhere/a.test.conf", &err), 1);
        link_target(&d, "a.test.conf", got, sizeof got);
        assert_string_equal(got, "/elsewhere/a.test.conf");
        {
                char p[PATH_MAX * 2];
                struct stat st;
                snprintf(p, sizeof p, "%s/.a.test.conf.jb-0000000000000000", d.enabled);
                assert_int_equal(lstat(p, &st), -1);
        }
        dirs_close(&d);
}

static void test_fileset_refusals(void **state) {
        dirs d;
        ngx_fileset fs;
        jb_err err = JB_ERR_INIT;
        char name[400], p[PATH_MAX * 2];
        (void) state;

        dirs_open(&d);
        /* A directory where the link belongs. */
        snprintf(p, sizeof p, "%s/a.test.conf", d.enabled);
        assert_int_equal(mkdir(p, 0755), 0);
        assert_int_equal(ngx_fileset_save(d.avail_fd, d.enabled_fd, "a.test", &fs, &err), -1);
        assert_code(&err, "CONFLICT");
        assert_null(fs.avail);
        jb_err_clear(&err);
        assert_int_equal(ngx_enable(d.enabled_fd, "a.test.conf", "/x", &err), -1);
        assert_code(&err, "CONFLICT");

        /* A directory in sites-available is not a vhost either. */
        snprintf(p, sizeof p, "%s/b.test.conf", d.avail);
        assert_int_equal(mkdir(p, 0755), 0);
        jb_err_clear(&err);
        assert_int_equal(ngx_fileset_save(d.avail_fd, d.enabled_fd, "b.test", &fs, &err), -1);
        assert_code(&err, "CONFLICT");

        /* A name that does not fit. */
        memset(name, 'a', sizeof name - 1);
        name[sizeof name - 1] = '\0';
        jb_err_clear(&err);
        assert_int_equal(ngx_fileset_save(d.avail_fd, d.enabled_fd, name, &fs, &err), -1);
        assert_code(&err, "INVALID_PARAMS");
        dirs_close(&d);
}

/* What save saw is put back exactly: content, link target, or absence. */
static void test_fileset_restore(void **state) {
        dirs d;
        ngx_fileset fs, missing, plain;
        jb_err err = JB_ERR_INIT;
        char got[PATH_MAX], *text;
        struct stat st;
        char p[PATH_MAX * 2];
        (void) state;

        dirs_open(&d);
        write_file(d.avail, "a.test.conf", "# jabali-nginx: {}\nold;\n");
        assert_int_equal(ngx_enable(d.enabled_fd, "a.test.conf", "/old/target", &err), 1);
        assert_int_equal(ngx_fileset_save(d.avail_fd, d.enabled_fd, "a.test", &fs, &err), 0);
        assert_int_equal(ngx_fileset_save(d.avail_fd, d.enabled_fd, "new.test", &missing, &err), 0);
        write_file(d.enabled, "p.test.conf", "plain;\n");
        assert_int_equal(ngx_fileset_save(d.avail_fd, d.enabled_fd, "p.test", &plain, &err), 0);
        assert_int_equal(plain.link_kind, JB_FS_FILE);
        assert_int_equal(plain.enabled_len, strlen("plain;\n"));

        /* The change nginx would refuse. */
        write_file(d.avail, "a.test.conf", "# jabali-nginx: {}\nnew;\n");
        assert_int_equal(ngx_enable(d.enabled_fd, "a.test.conf", "/new/target", &err), 1);
        write_file(d.avail, "new.test.conf", "# jabali-nginx: {}\nx;\n");
        assert_int_equal(ngx_enable(d.enabled_fd, "new.test.conf", "/n", &err), 1);
        assert_int_equal(ngx_enable(d.enabled_fd, "p.test.conf", "/p", &err), 1);

        if (geteuid() != 0) {
                /* Restoring writes root-owned files: without root it must
                 * fail loudly, never half silently. */
                assert_int_equal(ngx_fileset_restore(d.avail_fd, d.enabled_fd, &fs, &err), -1);
                assert_true(err.code[0] != '\0');
        } else {
                assert_int_equal(ngx_fileset_restore(d.avail_fd, d.enabled_fd, &fs, &err), 0);
                text = read_whole(d.avail, "a.test.conf");
                assert_string_equal(text, "# jabali-nginx: {}\nold;\n");
                free(text);
                link_target(&d, "a.test.conf", got, sizeof got);
                assert_string_equal(got, "/old/target");

                assert_int_equal(ngx_fileset_restore(d.avail_fd, d.enabled_fd, &missing, &err), 0);
                snprintf(p, sizeof p, "%s/new.test.conf", d.avail);
                assert_int_equal(lstat(p, &st), -1);
                assert_int_equal(errno, ENOENT);
                snprintf(p, sizeof p, "%s/new.test.conf", d.enabled);
                assert_int_equal(lstat(p, &st), -1);
                assert_int_equal(errno, ENOENT);

                assert_int_equal(ngx_fileset_restore(d.avail_fd, d.enabled_fd, &plain, &err), 0);
                snprintf(p, sizeof p, "%s/p.test.conf", d.enabled);
                assert_int_equal(lstat(p, &st), 0);
                assert_true(S_ISREG(st.st_mode));
                text = read_whole(d.enabled, "p.test.conf");
                assert_string_equal(text, "plain;\n");
                free(text);
        }
        ngx_fileset_free(&fs);
        ngx_fileset_free(&missing);
        ngx_fileset_free(&plain);
        dirs_close(&d);
}

static int setup_templates(void **state) {
        const char *src = getenv("JABALI_SRCDIR");
        struct stat st;
        (void) state;

        if (src && *src)
                snprintf(template_dir, sizeof template_dir, "%s/modules/nginx/templates", src);
        else
                snprintf(template_dir, sizeof template_dir, "%s", NGINX_SRC_TEMPLATES);
        if (stat(template_dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
                print_error("no templates in %s (set JABALI_SRCDIR)\n", template_dir);
                return -1;
        }
        /* jb_fs_open_root wants an absolute path. */
        if (template_dir[0] != '/') {
                char abs[PATH_MAX];
                if (!realpath(template_dir, abs))
                        return -1;
                snprintf(template_dir, sizeof template_dir, "%s", abs);
        }
        return 0;
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_vhost_minimal_text),
                cmocka_unit_test(test_vhost_full_text),
                cmocka_unit_test(test_vhost_php_ssl_text),
                cmocka_unit_test(test_vhost_every_combination),
                cmocka_unit_test(test_hostile_values_refused),
                cmocka_unit_test(test_values_of_unused_sections_ignored),
                cmocka_unit_test(test_template_override_first),
                cmocka_unit_test(test_template_missing_or_unreadable),
                cmocka_unit_test(test_broken_template_is_config_invalid),
                cmocka_unit_test(test_ratelimits_template),
                cmocka_unit_test(test_header_round_trip),
                cmocka_unit_test(test_header_not_ours),
                cmocka_unit_test(test_fileset_missing_then_enabled),
                cmocka_unit_test(test_fileset_refusals),
                cmocka_unit_test(test_fileset_restore),
        };

        return cmocka_run_group_tests(tests, setup_templates, NULL);
}
