/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Tests for <jabali/template.h>. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include <jabali/template.h>

static void assert_code(const jb_err *err, const char *code) {
        if (strcmp(err->code, code) != 0)
                fail_msg("expected %s, got %s (%s)", code, err->code, err->msg);
}

/* Renders tpl with the JSON text `json` as data; returns the output (owned
 * by a static slot, freed on the next call) or NULL with *err set. */
static const char *render(const char *tpl, const char *json, jb_tpl_context ctx, jb_err *err) {
        static char *last;
        json_object *data = json ? json_tokener_parse(json) : NULL;
        size_t len = 12345;
        char *out = NULL;

        if (json && !data)
                fail_msg("bad test JSON: %s", json);
        free(last);
        last = NULL;
        jb_err_clear(err);
        int r = jb_template_render(tpl, strlen(tpl), data, ctx, &out, &len, err);
        json_object_put(data);
        if (r < 0) {
                assert_int_equal(r, -1);
                assert_null(out);
                assert_true(err->code[0] != '\0');
                return NULL;
        }
        assert_non_null(out);
        assert_int_equal(strlen(out), len);
        last = out;
        return out;
}

#define assert_render(tpl, json, ctx, expected)                                         \
        do {                                                                            \
                jb_err e_ = JB_ERR_INIT;                                                \
                const char *o_ = render(tpl, json, ctx, &e_);                           \
                if (!o_)                                                                \
                        fail_msg("render failed: %s: %s", e_.code, e_.msg);             \
                assert_string_equal(o_, expected);                                      \
        } while (0)

/* expected_msg NULL: any message. */
static void check_fails(const char *tpl, const char *json, jb_tpl_context ctx, const char *code,
                        const char *expected_msg) {
        jb_err e = JB_ERR_INIT;
        const char *o = render(tpl, json, ctx, &e);

        if (o)
                fail_msg("render succeeded: \"%s\"", o);
        assert_code(&e, code);
        if (expected_msg && strcmp(e.msg, expected_msg) != 0)
                fail_msg("message \"%s\", expected \"%s\"", e.msg, expected_msg);
}

#define assert_render_fails(tpl, json, ctx, code, expected_msg) check_fails(tpl, json, ctx, code, expected_msg)

static void test_values(void **st) {
        (void) st;
        const char *site = "{\"domain\":\"example.com\",\"port\":8080,\"ssl\":true,\"off\":false,"
                           "\"neg\":-5,\"big\":18446744073709551615,"
                           "\"site\":{\"root\":\"/srv/www/example.com\",\"php\":{\"v\":\"8.2\"}}}";

        assert_render("server_name {{domain}};\n", site, JB_TPL_NGINX, "server_name example.com;\n");
        assert_render("listen {{port}};", site, JB_TPL_NGINX, "listen 8080;");
        assert_render("{{ssl}} {{off}} {{neg}} {{big}}", site, JB_TPL_NGINX,
                      "true false -5 18446744073709551615");
        assert_render("root {{site.root}}; php{{ site.php.v }}", site, JB_TPL_NGINX,
                      "root /srv/www/example.com; php8.2");
        assert_render("no tags at all\n", site, JB_TPL_NGINX, "no tags at all\n");
        assert_render("", site, JB_TPL_NGINX, "");
        assert_render("a } b }} c {", site, JB_TPL_NGINX, "a } b }} c {");
        assert_render("{{domain}}}", site, JB_TPL_NGINX, "example.com}");
        assert_render("x", NULL, JB_TPL_TEXT, "x");

        assert_render_fails("line1\n{{missing}}", site, JB_TPL_NGINX, "INTERNAL",
                            "line 2: {{missing}}: no such variable");
        assert_render_fails("{{site.nope}}", site, JB_TPL_NGINX, "INTERNAL",
                            "line 1: {{site.nope}}: no such variable");
        assert_render_fails("{{domain.x}}", site, JB_TPL_NGINX, "INTERNAL",
                            "line 1: {{domain.x}}: \"domain\" is not an object");
        assert_render_fails("{{site}}", site, JB_TPL_NGINX, "INTERNAL",
                            "line 1: {{site}}: value is an object, not a string");
        assert_render_fails("{{a}}", "{\"a\":[1]}", JB_TPL_NGINX, "INTERNAL",
                            "line 1: {{a}}: value is an array, not a string");
        assert_render_fails("{{a}}", "{\"a\":null}", JB_TPL_NGINX, "INTERNAL",
                            "line 1: {{a}}: value is null");
        assert_render_fails("{{a}}", "{\"a\":1.5}", JB_TPL_NGINX, "INTERNAL",
                            "line 1: {{a}}: value is a fractional number");
        assert_render_fails("{{.}}", site, JB_TPL_NGINX, "INTERNAL", NULL);
        assert_render_fails("{{a}}", NULL, JB_TPL_NGINX, "INTERNAL", "line 1: {{a}}: no such variable");
}

static void test_sections(void **st) {
        (void) st;
        const char *d = "{\"t\":true,\"f\":false,\"s\":\"x\",\"e\":\"\",\"z\":0,\"n\":7,\"nul\":null,"
                        "\"zero\":0.0,\"names\":[\"a.com\",\"b.com\"],\"none\":[],"
                        "\"users\":[{\"name\":\"ann\",\"uid\":1001},{\"name\":\"bob\",\"uid\":1002,\"site\":\"own\"}],"
                        "\"site\":\"outer\",\"ssl\":{\"cert\":\"/c.pem\",\"key\":\"/k.pem\"}}";

        assert_render("{{#t}}yes{{/t}}{{#f}}no{{/f}}", d, JB_TPL_TEXT, "yes");
        assert_render("{{#s}}S{{/s}}{{#e}}E{{/e}}{{#z}}Z{{/z}}{{#n}}N{{/n}}{{#nul}}U{{/nul}}{{#zero}}0{{/zero}}",
                      d, JB_TPL_TEXT, "SN");
        assert_render("{{^t}}yes{{/t}}{{^f}}no{{/f}}{{^e}}E{{/e}}{{^z}}Z{{/z}}{{^nul}}U{{/nul}}{{^none}}-{{/none}}"
                      "{{^names}}N{{/names}}",
                      d, JB_TPL_TEXT, "noEZU-");
        assert_render("server_name{{#names}} {{.}}{{/names}};", d, JB_TPL_NGINX, "server_name a.com b.com;");
        assert_render("{{#none}}x{{/none}}", d, JB_TPL_TEXT, "");
        /* Element members first, then outward. */
        assert_render("{{#users}}{{name}}:{{uid}}:{{site}},{{/users}}", d, JB_TPL_TEXT,
                      "ann:1001:outer,bob:1002:own,");
        /* An object section pushes the object. */
        assert_render("{{#ssl}}{{cert}} {{key}} {{site}}{{/ssl}}", d, JB_TPL_TEXT, "/c.pem /k.pem outer");
        assert_render("{{#s}}[{{.}}]{{/s}}", d, JB_TPL_TEXT, "[x]");
        /* Nested. */
        assert_render("{{#users}}{{#names}}{{name}}@{{.}} {{/names}}{{/users}}", d, JB_TPL_TEXT,
                      "ann@a.com ann@b.com bob@a.com bob@b.com ");
        assert_render("{{#t}}{{#f}}no{{/f}}{{^f}}in{{/f}}{{/t}}", d, JB_TPL_TEXT, "in");

        /* A missing section name is an error too, also when inverted. */
        assert_render_fails("{{#nope}}x{{/nope}}", d, JB_TPL_TEXT, "INTERNAL",
                            "line 1: {{nope}}: no such variable");
        assert_render_fails("a\nb\n{{^nope}}x{{/nope}}", d, JB_TPL_TEXT, "INTERNAL",
                            "line 3: {{nope}}: no such variable");
        /* A value error inside an array section names the line. */
        assert_render_fails("{{#users}}\n{{nope}}\n{{/users}}", d, JB_TPL_TEXT, "INTERNAL",
                            "line 2: {{nope}}: no such variable");
}

static void test_standalone(void **st) {
        (void) st;
        const char *d = "{\"ssl\":true,\"off\":false,\"names\":[\"a\",\"b\"]}";

        assert_render("server {\n    {{#ssl}}\n    listen 443 ssl;\n    {{/ssl}}\n    {{#off}}\n    x;\n"
                      "    {{/off}}\n}\n",
                      d, JB_TPL_NGINX, "server {\n    listen 443 ssl;\n}\n");
        assert_render("{{! a comment }}\nline\n  {{! another\n spanning lines }}  \nend", d, JB_TPL_NGINX,
                      "line\nend");
        assert_render("{{#names}}\n- {{.}}\n{{/names}}\n", d, JB_TPL_NGINX, "- a\n- b\n");
        /* CRLF line ends. */
        assert_render("a\r\n{{#ssl}}\r\nb\r\n{{/ssl}}\r\nc", d, JB_TPL_NGINX, "a\r\nb\r\nc");
        /* Not standalone: other text on the line stays. */
        assert_render("x {{#ssl}}\ny{{/ssl}} z\n", d, JB_TPL_NGINX, "x \ny z\n");
        assert_render("{{#ssl}}a{{/ssl}}\n", d, JB_TPL_NGINX, "a\n");
        /* Two tags on one line are not standalone. */
        assert_render("{{#ssl}}{{/ssl}}\nq", d, JB_TPL_NGINX, "\nq");
        /* Values never make a line standalone. */
        assert_render("  {{ssl}}  \n", d, JB_TPL_NGINX, "  true  \n");
        /* At the end of the template without a newline. */
        assert_render("a\n{{#ssl}}b{{/ssl}}\n  {{! end }}", d, JB_TPL_NGINX, "a\nb\n");
}

static void test_nginx_context(void **st) {
        (void) st;
        const char *bad[] = { "a;b", "a{", "}", "a\"b", "a'b", "a\\b", "$host", "a#b", "a`b",
                              "a b", "a\tb", "a\nb", "a\rb", ("a\x01" "b"), "a\x7f" };
        char json[128];

        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "v", json_object_new_string(bad[i]));
                snprintf(json, sizeof json, "%s", json_object_to_json_string(o));
                json_object_put(o);
                assert_render_fails("{{v}}", json, JB_TPL_NGINX, "INVALID_PARAMS", NULL);
        }

        assert_render_fails("a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\nserver_name {{server_name}};",
                            "{\"server_name\":\"x.com; include /etc/shadow\"}", JB_TPL_NGINX, "INVALID_PARAMS",
                            "line 12: {{server_name}}: value contains ';' which is not allowed in nginx context");
        assert_render_fails("server_name {{server_name}};", "{\"server_name\":\"x.com;\"}", JB_TPL_NGINX,
                            "INVALID_PARAMS",
                            "line 1: {{server_name}}: value contains ';' which is not allowed in nginx context");
        assert_render_fails("{{v}}", "{\"v\":\"a\\nb\"}", JB_TPL_NGINX, "INVALID_PARAMS",
                            "line 1: {{v}}: value contains a newline which is not allowed in nginx context");
        assert_render_fails("{{v}}", "{\"v\":\"a\\u0001\"}", JB_TPL_NGINX, "INVALID_PARAMS",
                            "line 1: {{v}}: value contains the byte 0x01 which is not allowed in nginx context");
        assert_render_fails("{{v}}", "{\"v\":\"\"}", JB_TPL_NGINX, "INVALID_PARAMS",
                            "line 1: {{v}}: value is empty, which is not allowed in nginx context");
        /* An embedded NUL (json \u0000) is a control character. */
        assert_render_fails("{{v}}", "{\"v\":\"a\\u0000b\"}", JB_TPL_NGINX, "INVALID_PARAMS",
                            "line 1: {{v}}: value contains the byte 0x00 which is not allowed in nginx context");

        assert_render("{{a}} {{b}} {{c}} {{d}}",
                      "{\"a\":\"*.example.com\",\"b\":\"/srv/www/x_y-z/public\",\"c\":\"unix:/run/php/a.sock\","
                      "\"d\":\"caf\\u00e9.example\"}",
                      JB_TPL_NGINX, "*.example.com /srv/www/x_y-z/public unix:/run/php/a.sock caf\xc3\xa9.example");
}

static void test_ini_context(void **st) {
        (void) st;

        assert_render("user = {{u}}\nphp_admin_value[open_basedir] = {{p}}\nx = {{e}}|",
                      "{\"u\":\"web1\",\"p\":\"/srv/www/a:/tmp\",\"e\":\"\"}", JB_TPL_INI,
                      "user = web1\nphp_admin_value[open_basedir] = /srv/www/a:/tmp\nx = |");
        assert_render("{{v}}", "{\"v\":\"a b $x {}\"}", JB_TPL_INI, "a b $x {}");
        assert_render_fails("{{v}}", "{\"v\":\"a;b\"}", JB_TPL_INI, "INVALID_PARAMS",
                            "line 1: {{v}}: value contains ';' which is not allowed in ini context");
        assert_render_fails("{{v}}", "{\"v\":\"a\\\"b\"}", JB_TPL_INI, "INVALID_PARAMS", NULL);
        assert_render_fails("{{v}}", "{\"v\":\"a\\nextension=evil.so\"}", JB_TPL_INI, "INVALID_PARAMS",
                            "line 1: {{v}}: value contains a newline which is not allowed in ini context");
        assert_render_fails("{{v}}", "{\"v\":\" a\"}", JB_TPL_INI, "INVALID_PARAMS",
                            "line 1: {{v}}: value starts with a blank, which is not allowed in ini context");
        assert_render_fails("{{v}}", "{\"v\":\"a\\t\"}", JB_TPL_INI, "INVALID_PARAMS", NULL);
        assert_render_fails("{{v}}", "{\"v\":\"a \"}", JB_TPL_INI, "INVALID_PARAMS",
                            "line 1: {{v}}: value ends with a blank, which is not allowed in ini context");
        assert_render_fails("{{v}}", "{\"v\":\"${HOME}\"}", JB_TPL_INI, "INVALID_PARAMS",
                            "line 1: {{v}}: value contains '${' which is not allowed in ini context");
        /* An empty value as the very first output (found by fuzzing: the
         * output buffer did not exist yet). */
        assert_render("{{v}}", "{\"v\":\"\"}", JB_TPL_INI, "");
        assert_render("{{v}}x", "{\"v\":\"\"}", JB_TPL_JSON, "x");
}

static void test_json_context(void **st) {
        (void) st;

        assert_render("{\"root\": \"{{v}}\"}", "{\"v\":\"a\\\"b\\\\c\\nd\\te\\u0001\\u001f\\r\\b\\f/\\u007f\"}",
                      JB_TPL_JSON, "{\"root\": \"a\\\"b\\\\c\\nd\\te\\u0001\\u001f\\r\\b\\f/\\u007f\"}");
        assert_render("\"{{v}}\"", "{\"v\":\"caf\\u00e9 \\u2028 ok\"}", JB_TPL_JSON, "\"caf\xc3\xa9 \xe2\x80\xa8 ok\"");
        assert_render("\"{{v}}\"", "{\"v\":\"\"}", JB_TPL_JSON, "\"\"");
        assert_render("\"{{v}}\"", "{\"v\":\"a\\u0000b\"}", JB_TPL_JSON, "\"a\\u0000b\"");

        /* The output parses back to the same string. */
        const char *hostile = "{\"v\":\"\\\"}, \\\"admin\\\": true, {\\\"x\\\\\\n\"}";
        jb_err err = JB_ERR_INIT;
        const char *out = render("{\"v\":\"{{v}}\"}", hostile, JB_TPL_JSON, &err);
        assert_non_null(out);
        json_object *a = json_tokener_parse(out), *b = json_tokener_parse(hostile), *va, *vb;
        assert_non_null(a);
        assert_int_equal(json_object_object_length(a), 1);
        assert_true(json_object_object_get_ex(a, "v", &va));
        assert_true(json_object_object_get_ex(b, "v", &vb));
        assert_string_equal(json_object_get_string(va), json_object_get_string(vb));
        json_object_put(a);
        json_object_put(b);
}

static void test_shellword_text_contexts(void **st) {
        (void) st;

        assert_render("{{v}} {{n}}", "{\"v\":\"user@host:/a/b_c-d.e,f+g=h%i\",\"n\":-3}", JB_TPL_SHELLWORD,
                      "user@host:/a/b_c-d.e,f+g=h%i -3");
        const char *bad[] = { "{\"v\":\"a b\"}", "{\"v\":\"a;b\"}", "{\"v\":\"$x\"}", "{\"v\":\"'\"}",
                              "{\"v\":\"a*\"}", "{\"v\":\"caf\\u00e9\"}", "{\"v\":\"\"}", "{\"v\":\"a\\nb\"}",
                              "{\"v\":\"`id`\"}", "{\"v\":\"~\"}" };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
                assert_render_fails("{{v}}", bad[i], JB_TPL_SHELLWORD, "INVALID_PARAMS", NULL);
        assert_render_fails("{{v}}", "{\"v\":\"caf\\u00e9\"}", JB_TPL_SHELLWORD, "INVALID_PARAMS",
                            "line 1: {{v}}: value contains a non-ASCII character which is not allowed in "
                            "shellword context");

        assert_render("{{v}}|{{e}}", "{\"v\":\"any {};$ \\\"text\\\" caf\\u00e9\",\"e\":\"\"}", JB_TPL_TEXT,
                      "any {};$ \"text\" caf\xc3\xa9|");
        assert_render_fails("{{v}}", "{\"v\":\"a\\nb\"}", JB_TPL_TEXT, "INVALID_PARAMS",
                            "line 1: {{v}}: value contains a newline which is not allowed in text context");
        assert_render_fails("{{v}}", "{\"v\":\"a\\tb\"}", JB_TPL_TEXT, "INVALID_PARAMS",
                            "line 1: {{v}}: value contains a tab which is not allowed in text context");
        assert_render_fails("{{v}}", "{\"v\":\"\\u007f\"}", JB_TPL_TEXT, "INVALID_PARAMS", NULL);
}

/* Invalid UTF-8 (json-c keeps it in strings) is refused in every context. */
static void test_invalid_utf8(void **st) {
        (void) st;
        const char *vals[] = { "\xff", "a\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe0\x80\x80" };
        const jb_tpl_context ctxs[] = { JB_TPL_NGINX, JB_TPL_INI, JB_TPL_JSON, JB_TPL_SHELLWORD, JB_TPL_TEXT };

        for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++)
                for (size_t c = 0; c < sizeof ctxs / sizeof ctxs[0]; c++) {
                        json_object *o = json_object_new_object();
                        char *out = NULL;
                        jb_err err = JB_ERR_INIT;

                        json_object_object_add(o, "v", json_object_new_string(vals[i]));
                        assert_int_equal(jb_template_render("{{v}}", 5, o, ctxs[c], &out, NULL, &err), -1);
                        assert_code(&err, "INVALID_PARAMS");
                        assert_non_null(strstr(err.msg, "not valid UTF-8"));
                        assert_null(out);
                        json_object_put(o);
                }
}

static void test_parse_errors(void **st) {
        (void) st;
        const char *d = "{\"a\":true,\"b\":true,\"f\":false}";

        assert_render_fails("x\n{{a", d, JB_TPL_TEXT, "INTERNAL", "line 2: unclosed tag");
        assert_render_fails("x\n{{#a}}\ny", d, JB_TPL_TEXT, "INTERNAL", "line 2: unclosed section {{#a}}");
        assert_render_fails("{{^a}}", d, JB_TPL_TEXT, "INTERNAL", "line 1: unclosed section {{^a}}");
        assert_render_fails("{{#a}}\n\n{{/b}}", d, JB_TPL_TEXT, "INTERNAL",
                            "line 3: {{/b}} does not match {{#a}} of line 1");
        assert_render_fails("x{{/a}}", d, JB_TPL_TEXT, "INTERNAL", "line 1: {{/a}} closes no section");
        assert_render_fails("{{> partial}}", d, JB_TPL_TEXT, "INTERNAL", NULL);
        assert_render_fails("{{=<% %>=}}", d, JB_TPL_TEXT, "INTERNAL", NULL);
        assert_render_fails("{{{a}}}", d, JB_TPL_TEXT, "INTERNAL", "line 1: unescaped output is not supported");
        assert_render_fails("{{&a}}", d, JB_TPL_TEXT, "INTERNAL", "line 1: unescaped output is not supported");
        const char *names[] = { "{{}}", "{{ }}", "{{a..b}}", "{{.a}}", "{{a.}}", "{{a b}}", "{{a/b}}", "{{#}}",
                                "{{a$}}", "{{..}}" };
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
                assert_render_fails(names[i], d, JB_TPL_TEXT, "INTERNAL", NULL);
        assert_render_fails("{{a\n}}", d, JB_TPL_TEXT, "INTERNAL", "line 1: tag spans lines");
        /* Line numbers count lines removed as standalone and comment lines. */
        assert_render_fails("{{! one\ntwo\nthree }}\n{{#a}}\n{{/a}}\n{{x}", d, JB_TPL_TEXT, "INTERNAL",
                            "line 6: unclosed tag");
        /* Parse errors are found in sections the data skips. */
        assert_render_fails("{{#f}}{{> p}}{{/f}}", d, JB_TPL_TEXT, "INTERNAL", NULL);

        /* Nesting: 16 is fine, 17 is not. */
        char tpl[1024] = "";
        for (int i = 0; i < 16; i++)
                strcat(tpl, "{{#a}}");
        strcat(tpl, "x");
        for (int i = 0; i < 16; i++)
                strcat(tpl, "{{/a}}");
        assert_render(tpl, d, JB_TPL_TEXT, "x");
        memmove(tpl + 6, tpl, strlen(tpl) + 1);
        memcpy(tpl, "{{#b}}", 6);
        strcat(tpl, "{{/b}}");
        assert_render_fails(tpl, d, JB_TPL_TEXT, "INTERNAL", "line 1: sections nested deeper than 16");

        /* A NUL byte in the template. */
        char *out = NULL;
        jb_err err = JB_ERR_INIT;
        assert_int_equal(jb_template_render("a\nb\0c", 5, NULL, JB_TPL_TEXT, &out, NULL, &err), -1);
        assert_code(&err, "INTERNAL");
        assert_string_equal(err.msg, "line 2: template contains a NUL byte");
}

static void test_limits_and_args(void **st) {
        (void) st;
        jb_err err = JB_ERR_INIT;
        char *out = NULL;
        size_t len = 0;

        /* A template that need not be NUL-terminated. */
        assert_int_equal(jb_template_render("abc{{", 3, NULL, JB_TPL_TEXT, &out, &len, &err), 0);
        assert_string_equal(out, "abc");
        assert_int_equal(len, 3);
        free(out);
        assert_int_equal(jb_template_render(NULL, 0, NULL, JB_TPL_TEXT, &out, &len, &err), 0);
        assert_string_equal(out, "");
        assert_int_equal(len, 0);
        free(out);

        assert_int_equal(jb_template_render("x", 1, NULL, JB_TPL_TEXT, NULL, &len, &err), -1);
        assert_code(&err, "INVALID_PARAMS");
        assert_int_equal(jb_template_render(NULL, 3, NULL, JB_TPL_TEXT, &out, &len, &err), -1);
        assert_code(&err, "INVALID_PARAMS");
        assert_int_equal(jb_template_render("x", 1, NULL, (jb_tpl_context) 99, &out, &len, &err), -1);
        assert_code(&err, "INVALID_PARAMS");
        assert_null(out);

        /* Output bound: 5 x 1 MiB. */
        size_t mib = 1u << 20;
        char *s = malloc(mib + 1);
        assert_non_null(s);
        memset(s, 'a', mib);
        s[mib] = '\0';
        json_object *o = json_object_new_object(), *arr = json_object_new_array();
        for (int i = 0; i < 5; i++)
                json_object_array_add(arr, json_object_new_string(s));
        json_object_object_add(o, "arr", arr);
        const char *tpl = "{{#arr}}{{.}}{{/arr}}";
        assert_int_equal(jb_template_render(tpl, strlen(tpl), o, JB_TPL_NGINX, &out, &len, &err), -1);
        assert_code(&err, "INVALID_PARAMS");
        assert_string_equal(err.msg, "line 1: output exceeds 4194304 bytes");
        assert_null(out);
        /* 4 x 1 MiB fits exactly. */
        json_object_array_del_idx(arr, 0, 1);
        assert_int_equal(jb_template_render(tpl, strlen(tpl), o, JB_TPL_NGINX, &out, &len, &err), 0);
        assert_int_equal(len, JB_TPL_OUTPUT_MAX);
        free(out);
        json_object_put(o);
        free(s);

        /* Work bound: nested sections over arrays with no output. */
        o = json_object_new_object();
        arr = json_object_new_array();
        for (int i = 0; i < 100; i++)
                json_object_array_add(arr, json_object_new_int(i));
        json_object_object_add(o, "a", arr);
        json_object_object_add(o, "t", json_object_new_boolean(1));
        tpl = "{{#a}}{{#a}}{{#a}}{{#a}}{{^t}}x{{/t}}{{/a}}{{/a}}{{/a}}{{/a}}";
        assert_int_equal(jb_template_render(tpl, strlen(tpl), o, JB_TPL_TEXT, &out, &len, &err), -1);
        assert_code(&err, "INVALID_PARAMS");
        assert_non_null(strstr(err.msg, "steps"));
        json_object_put(o);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_values),
                cmocka_unit_test(test_sections),
                cmocka_unit_test(test_standalone),
                cmocka_unit_test(test_nginx_context),
                cmocka_unit_test(test_ini_context),
                cmocka_unit_test(test_json_context),
                cmocka_unit_test(test_shellword_text_contexts),
                cmocka_unit_test(test_invalid_utf8),
                cmocka_unit_test(test_parse_errors),
                cmocka_unit_test(test_limits_and_args),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
