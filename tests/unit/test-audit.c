/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The audit trail: record layout and order, hostile strings, torn-line
 * repair, refused paths, concurrent appenders, logrotate, write failures,
 * and the journal sink (against a fake journald socket in a private mount
 * namespace). */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE     /* pipe2, unshare */
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "audit.h"
#include "util.h"

/* ---- fixtures ---- */

typedef struct fixture {
        char dir[256];
        char path[512];
} fixture;

static int setup(void **state) {
        fixture *f = calloc(1, sizeof *f);
        const char *tmp = getenv("TMPDIR");

        if (!f)
                return -1;
        if (!tmp || !*tmp)
                tmp = "/tmp";
        if (strlen(tmp) > 200 ||
            snprintf(f->dir, sizeof f->dir, "%s/test-audit-XXXXXX", tmp) < 0 || !mkdtemp(f->dir)) {
                free(f);
                return -1;
        }
        snprintf(f->path, sizeof f->path, "%s/audit.jsonl", f->dir);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        fixture *f = *state;
        char cmd[300];

        /* The tests create a handful of plain files, FIFOs and links below dir. */
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
        if (system(cmd) != 0)
                return -1;
        free(f);
        return 0;
}

static char *slurp(const char *path, size_t *ret_len) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        size_t len = 0, cap = 4096;
        char *buf;
        ssize_t n;

        assert_true(fd >= 0);
        buf = malloc(cap + 1);
        if (!buf)
                abort();
        while ((n = read(fd, buf + len, cap - len)) > 0) {
                len += (size_t) n;
                if (len == cap) {
                        char *bigger = realloc(buf, cap * 2 + 1);
                        if (!bigger)
                                abort();        /* cmocka's asserts are not noreturn to the analyzer */
                        buf = bigger;
                        cap *= 2;
                }
        }
        assert_int_equal(n, 0);
        close(fd);
        buf[len] = '\0';
        if (ret_len)
                *ret_len = len;
        return buf;
}

static void spit(const char *path, const char *s) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, s, strlen(s)), (ssize_t) strlen(s));
        close(fd);
}

/* Independent of the code under test: RFC 3629 well-formedness. */
static bool utf8_valid(const unsigned char *s, size_t n) {
        for (size_t i = 0; i < n;) {
                unsigned char c = s[i];
                uint32_t cp;
                size_t k;

                if (c < 0x80) {
                        i++;
                        continue;
                }
                if ((c & 0xE0) == 0xC0)
                        k = 2, cp = c & 0x1F;
                else if ((c & 0xF0) == 0xE0)
                        k = 3, cp = c & 0x0F;
                else if ((c & 0xF8) == 0xF0)
                        k = 4, cp = c & 0x07;
                else
                        return false;
                if (i + k > n)
                        return false;
                for (size_t j = 1; j < k; j++) {
                        if ((s[i + j] & 0xC0) != 0x80)
                                return false;
                        cp = cp << 6 | (s[i + j] & 0x3F);
                }
                if ((k == 2 && cp < 0x80) || (k == 3 && cp < 0x800) || (k == 4 && cp < 0x10000) ||
                    cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                        return false;
                i += k;
        }
        return true;
}

/* Parses one line (without its '\n') strictly: one object, all of it. */
static json_object *parse_line(const char *line, size_t len) {
        json_tokener *tok = json_tokener_new();
        json_object *o;

        assert_non_null(tok);
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        o = json_tokener_parse_ex(tok, line, (int) len);
        assert_non_null(o);
        assert_int_equal(json_tokener_get_error(tok), json_tokener_success);
        assert_int_equal(json_tokener_get_parse_end(tok), len);
        json_tokener_free(tok);
        assert_true(json_object_is_type(o, json_type_object));
        assert_true(utf8_valid((const unsigned char *) line, len));
        assert_null(memchr(line, '\n', len));
        return o;
}

/* Splits the file into lines, each checked to be a valid record; returns
 * how many. recs (if not NULL) receives up to max parsed objects. */
static size_t read_records(const char *path, json_object **recs, size_t max) {
        size_t len, n = 0;
        char *buf = slurp(path, &len), *p = buf;

        assert_true(len == 0 || buf[len - 1] == '\n');
        while (p < buf + len) {
                char *nl = memchr(p, '\n', (size_t) (buf + len - p));
                json_object *o;

                assert_non_null(nl);
                o = parse_line(p, (size_t) (nl - p));
                if (recs && n < max)
                        recs[n] = o;
                else
                        json_object_put(o);
                n++;
                p = nl + 1;
        }
        free(buf);
        return n;
}

static void assert_keys(json_object *o, const char *const *keys, size_t n) {
        size_t i = 0;

        json_object_object_foreach(o, k, v) {
                (void) v;
                assert_true(i < n);
                assert_string_equal(k, keys[i]);
                i++;
        }
        assert_int_equal(i, n);
}

static const char *get_str(json_object *o, const char *key) {
        json_object *v;

        assert_true(json_object_object_get_ex(o, key, &v));
        assert_true(json_object_is_type(v, json_type_string));
        return json_object_get_string(v);
}

static json_object *get(json_object *o, const char *key, json_type type) {
        json_object *v;

        assert_true(json_object_object_get_ex(o, key, &v));
        assert_true(json_object_is_type(v, type));
        return v;
}

static audit *open_ok(const char *path, int want) {
        jb_err err = JB_ERR_INIT;
        audit *a = NULL;

        assert_int_equal(audit_open(&a, path, false, false, &err), want);
        assert_false(jb_err_isset(&err));
        assert_non_null(a);
        return a;
}

static void write_ok(audit *a, const audit_record *r) {
        jb_err err = JB_ERR_INIT;

        assert_int_equal(audit_write(a, r, &err), 0);
        assert_false(jb_err_isset(&err));
}

/* ---- layout ---- */

static void test_full_record(void **state) {
        fixture *f = *state;
        json_object *actor = json_tokener_parse("{\"user\":\"alice\",\"id\":7}");
        json_object *params = json_tokener_parse("{\"domain\":\"example.com\",\"password\":\"[redacted]\"}");
        json_object *rec[1], *v;
        audit *a = open_ok(f->path, 0);
        audit_record r = {
                .event = "request",
                .request_id = "req-1",
                .action = "nginx.vhost.apply",
                .module = "nginx",
                .pid = 4242,
                .uid = 4294967294u,
                .gid = 33,
                .actor = actor,
                .params = params,
                .target = "example.com",
                .result = "ok",
                .changed = true,
                .dry_run = false,
                .duration_usec = 1234567,
                .hat = "nginx",
                .confinement = "apparmor+nnp",
        };
        static const char *const keys[] = {
                "time", "event", "request_id", "action", "module", "peer", "actor", "target",
                "params", "result", "changed", "dry_run", "duration_us", "hat", "confinement",
        };
        static const char *const peer_keys[] = { "pid", "uid", "gid" };
        const char *t;
        struct stat st;

        write_ok(a, &r);
        assert_true(audit_fd(a) >= 0);
        assert_false(audit_has_journal(a));
        audit_close(a);
        /* The caller's objects are borrowed, not consumed. */
        assert_string_equal(json_object_to_json_string(actor), "{ \"user\": \"alice\", \"id\": 7 }");

        assert_int_equal(read_records(f->path, rec, 1), 1);
        assert_keys(rec[0], keys, ELEMENTSOF(keys));

        t = get_str(rec[0], "time");
        /* 2026-11-23T08:01:02.123456Z */
        assert_int_equal(strlen(t), 27);
        for (size_t i = 0; i < 27; i++) {
                const char *shape = "dddd-dd-ddTdd:dd:dd.ddddddZ";
                if (shape[i] == 'd')
                        assert_true(t[i] >= '0' && t[i] <= '9');
                else
                        assert_int_equal(t[i], shape[i]);
        }
        assert_string_equal(get_str(rec[0], "event"), "request");
        assert_string_equal(get_str(rec[0], "request_id"), "req-1");
        assert_string_equal(get_str(rec[0], "action"), "nginx.vhost.apply");
        assert_string_equal(get_str(rec[0], "module"), "nginx");
        v = get(rec[0], "peer", json_type_object);
        assert_keys(v, peer_keys, ELEMENTSOF(peer_keys));
        assert_int_equal(json_object_get_int64(get(v, "pid", json_type_int)), 4242);
        assert_int_equal(json_object_get_int64(get(v, "uid", json_type_int)), 4294967294LL);
        assert_int_equal(json_object_get_int64(get(v, "gid", json_type_int)), 33);
        assert_true(json_object_equal(get(rec[0], "actor", json_type_object), actor));
        assert_true(json_object_equal(get(rec[0], "params", json_type_object), params));
        assert_string_equal(get_str(rec[0], "target"), "example.com");
        assert_string_equal(get_str(rec[0], "result"), "ok");
        assert_true(json_object_get_boolean(get(rec[0], "changed", json_type_boolean)));
        assert_false(json_object_get_boolean(get(rec[0], "dry_run", json_type_boolean)));
        assert_int_equal(json_object_get_int64(get(rec[0], "duration_us", json_type_int)), 1234567);
        assert_string_equal(get_str(rec[0], "hat"), "nginx");
        assert_string_equal(get_str(rec[0], "confinement"), "apparmor+nnp");

        assert_int_equal(stat(f->path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);

        json_object_put(rec[0]);
        json_object_put(actor);
        json_object_put(params);
}

static void test_absent_members_omitted(void **state) {
        fixture *f = *state;
        json_object *rec[4];
        audit *a = open_ok(f->path, 0);
        static const char *const refused[] = { "time", "event", "peer", "result", "error" };
        static const char *const bare_request[] = {
                "time", "event", "request_id", "peer", "result", "error", "changed", "dry_run", "duration_us",
        };
        static const char *const rejected[] = {
                "time", "event", "peer", "result", "changed", "dry_run", "duration_us", "confinement",
        };
        static const char *const no_result[] = { "time", "event", "peer" };

        write_ok(a, &(audit_record) {
                .event = "connection_refused", .pid = 1, .uid = 1000, .gid = 1000,
                .result = "PERMISSION_DENIED", .error = "uid 1000 is not allowed",
        });
        write_ok(a, &(audit_record) {
                .event = "request", .request_id = "r", .result = "UNKNOWN_ACTION", .error = "no such action",
        });
        /* For other events, booleans and duration only when set. */
        write_ok(a, &(audit_record) {
                .event = "frame_rejected", .result = "FRAME_TOO_LARGE", .changed = true, .dry_run = true,
                .duration_usec = 5, .confinement = "none",
        });
        write_ok(a, &(audit_record) { .event = "frame_rejected" });
        audit_close(a);

        assert_int_equal(read_records(f->path, rec, 4), 4);
        assert_keys(rec[0], refused, ELEMENTSOF(refused));
        assert_keys(rec[1], bare_request, ELEMENTSOF(bare_request));
        assert_false(json_object_get_boolean(get(rec[1], "changed", json_type_boolean)));
        assert_int_equal(json_object_get_int64(get(rec[1], "duration_us", json_type_int)), 0);
        assert_keys(rec[2], rejected, ELEMENTSOF(rejected));
        assert_keys(rec[3], no_result, ELEMENTSOF(no_result));
        for (size_t i = 0; i < 4; i++)
                json_object_put(rec[i]);
}

static void test_big_duration(void **state) {
        fixture *f = *state;
        json_object *rec[1];
        audit *a = open_ok(f->path, 0);

        write_ok(a, &(audit_record) { .event = "request", .duration_usec = UINT64_MAX, .pid = -1 });
        audit_close(a);
        assert_int_equal(read_records(f->path, rec, 1), 1);
        assert_int_equal(json_object_get_uint64(get(rec[0], "duration_us", json_type_int)), UINT64_MAX);
        assert_int_equal(json_object_get_int64(get(get(rec[0], "peer", json_type_object), "pid", json_type_int)), -1);
        json_object_put(rec[0]);
}

/* ---- hostile strings ---- */

static void test_hostile_strings(void **state) {
        fixture *f = *state;
        static const char quotes[] = "he said \"hi\" \\ and left";
        static const char lines[] = "a\nb\r\n{\"event\":\"forged\"}\n";
        static const char ctl[] = "\x01\x02\x1b[31m\x7f\t\b\f";
        static const char good_utf8[] = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xef\xbf\xbf";
        /* lone continuation, truncated sequence, overlong '/', UTF-8 encoded
         * surrogate, above U+10FFFF, 0xFF */
        static const char bad_utf8[] = "x\x80y\xe2\x82z\xc0\xaf\xed\xa0\x80\xf4\x90\x80\x80\xff";
        static const char bad_fixed[] = "x\xef\xbf\xbdy\xef\xbf\xbd\xef\xbf\xbdz"
                                        "\xef\xbf\xbd\xef\xbf\xbd" "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                                        "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd";
        static const char json_unicode[] = "\\u0000 \\ud800";       /* literal text, not escapes */
        json_object *params = json_object_new_object(), *rec[1], *p;
        audit *a = open_ok(f->path, 0);
        size_t len;
        char *buf;

        /* Keys and values inside params are as hostile as the rest. */
        json_object_object_add(params, "k\n\"ey", json_object_new_string(lines));
        json_object_object_add(params, bad_utf8, json_object_new_string_len("nul\0inside", 10));
        write_ok(a, &(audit_record) {
                .event = "request",
                .request_id = quotes,
                .action = lines,
                .module = ctl,
                .target = good_utf8,
                .params = params,
                .result = bad_utf8,
                .error = json_unicode,
                .hat = "^hat</script>/",
        });
        audit_close(a);

        buf = slurp(f->path, &len);
        /* One line: exactly one '\n', at the end; no raw control bytes. */
        assert_true(len > 0);
        assert_ptr_equal(memchr(buf, '\n', len), buf + len - 1);
        for (size_t i = 0; i < len - 1; i++)
                assert_true((unsigned char) buf[i] >= 0x20);
        /* NOSLASHESCAPE: no "\/". */
        assert_null(strstr(buf, "\\/"));
        free(buf);

        assert_int_equal(read_records(f->path, rec, 1), 1);
        assert_string_equal(get_str(rec[0], "request_id"), quotes);
        assert_string_equal(get_str(rec[0], "action"), lines);
        assert_string_equal(get_str(rec[0], "module"), ctl);
        assert_string_equal(get_str(rec[0], "target"), good_utf8);
        assert_string_equal(get_str(rec[0], "result"), bad_fixed);
        assert_string_equal(get_str(rec[0], "error"), json_unicode);
        assert_string_equal(get_str(rec[0], "hat"), "^hat</script>/");
        p = get(rec[0], "params", json_type_object);
        assert_string_equal(get_str(p, "k\n\"ey"), lines);
        assert_true(json_object_object_get_ex(p, bad_fixed, NULL));
        assert_int_equal(json_object_get_string_len(get(p, bad_fixed, json_type_string)), 10);
        assert_memory_equal(json_object_get_string(get(p, bad_fixed, json_type_string)), "nul\0inside", 10);
        json_object_put(rec[0]);
        json_object_put(params);
}

/* Every single byte value, as a string of its own: still one valid line. */
static void test_every_byte(void **state) {
        fixture *f = *state;
        audit *a = open_ok(f->path, 0);
        char s[3];

        for (unsigned b = 1; b < 256; b++) {
                s[0] = (char) b;
                s[1] = (char) (b ^ 0x80);
                s[2] = '\0';
                write_ok(a, &(audit_record) { .event = "request", .request_id = s, .target = s + 1 });
        }
        audit_close(a);
        assert_int_equal(read_records(f->path, NULL, 0), 255);
}

/* ---- open ---- */

static void test_torn_line_repaired(void **state) {
        fixture *f = *state;
        static const char torn[] = "{\"time\":\"2026-01-01T00:00:00.000000Z\",\"event\":\"req";
        char *buf, *nl;
        json_object *o;
        audit *a;
        size_t len;

        spit(f->path, torn);
        a = open_ok(f->path, 1);
        write_ok(a, &(audit_record) { .event = "request", .request_id = "after" });
        audit_close(a);

        buf = slurp(f->path, &len);
        assert_memory_equal(buf, torn, strlen(torn));
        assert_int_equal(buf[strlen(torn)], '\n');
        nl = buf + strlen(torn) + 1;
        assert_ptr_equal(memchr(nl, '\n', len - (size_t) (nl - buf)), buf + len - 1);
        o = parse_line(nl, len - (size_t) (nl - buf) - 1);
        assert_string_equal(get_str(o, "request_id"), "after");
        json_object_put(o);
        free(buf);

        /* Intact now: no repair, nothing appended. */
        a = open_ok(f->path, 0);
        audit_close(a);
        buf = slurp(f->path, &len);
        assert_int_equal(buf[len - 1], '\n');
        assert_int_equal(buf[len - 2], '}');
        free(buf);

        /* An empty file needs nothing either. */
        spit(f->path, "");
        a = open_ok(f->path, 0);
        audit_close(a);
        free(slurp(f->path, &len));
        assert_int_equal(len, 0);
}

static void assert_open_fails(const char *path, const char *needle) {
        jb_err err = JB_ERR_INIT;
        audit *a = (audit *) 0x1;

        assert_int_equal(audit_open(&a, path, false, false, &err), -1);
        assert_ptr_equal(a, (audit *) 0x1);     /* untouched on failure */
        assert_string_equal(err.code, "INTERNAL");
        assert_non_null(strstr(err.msg, needle));
        assert_non_null(strstr(err.msg, path));
}

static void test_symlink_refused(void **state) {
        fixture *f = *state;
        char target[1024];
        struct stat st;

        /* To an existing file: the file is not written to. */
        snprintf(target, sizeof target, "%s/target", f->dir);
        spit(target, "precious\n");
        assert_int_equal(symlink(target, f->path), 0);
        assert_open_fails(f->path, "symbolic link");
        free(slurp(target, NULL));
        assert_int_equal(stat(target, &st), 0);
        assert_int_equal(st.st_size, 9);

        /* Dangling: nothing is created through it. */
        assert_int_equal(unlink(f->path), 0);
        assert_int_equal(unlink(target), 0);
        assert_int_equal(symlink(target, f->path), 0);
        assert_open_fails(f->path, "symbolic link");
        assert_int_equal(lstat(target, &st), -1);
        assert_int_equal(errno, ENOENT);
}

static void test_missing_parent_refused(void **state) {
        fixture *f = *state;
        char path[1024];

        snprintf(path, sizeof path, "%s/missing/audit.jsonl", f->dir);
        assert_open_fails(path, "directory does not exist");
        snprintf(path, sizeof path, "%s/no/such/dirs/audit.jsonl", f->dir);
        assert_open_fails(path, "directory does not exist");
}

static void test_not_regular_refused(void **state) {
        fixture *f = *state;
        char path[1024];

        /* A FIFO must neither hang open() nor be accepted. */
        assert_int_equal(mkfifo(f->path, 0600), 0);
        assert_open_fails(f->path, "not a regular file");
        snprintf(path, sizeof path, "%s/adir", f->dir);
        assert_int_equal(mkdir(path, 0700), 0);
        assert_open_fails(path, path);
        /* A path through a regular file. */
        snprintf(path, sizeof path, "%s/file", f->dir);
        spit(path, "x");
        snprintf(path, sizeof path, "%s/file/audit.jsonl", f->dir);
        assert_open_fails(path, "cannot open audit log");
}

static void test_existing_file_appended(void **state) {
        fixture *f = *state;
        static const char old[] = "{\"old\":1}\n";
        audit *a;
        char *buf;
        size_t len;

        spit(f->path, old);
        a = open_ok(f->path, 0);
        write_ok(a, &(audit_record) { .event = "request" });
        audit_close(a);
        buf = slurp(f->path, &len);
        assert_memory_equal(buf, old, strlen(old));
        free(buf);
        assert_int_equal(read_records(f->path, NULL, 0), 2);
}

static void test_new_file_mode_ignores_umask(void **state) {
        fixture *f = *state;
        mode_t old = umask(0);
        struct stat st;
        audit *a = open_ok(f->path, 0);

        umask(old);
        audit_close(a);
        assert_int_equal(stat(f->path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
}

static void test_no_file_sink(void **state) {
        jb_err err = JB_ERR_INIT;
        audit *a = NULL;
        (void) state;

        assert_int_equal(audit_open(&a, NULL, false, false, &err), 0);
        assert_int_equal(audit_fd(a), -1);
        write_ok(a, &(audit_record) { .event = "request" });
        assert_int_equal(audit_reopen(a, &err), 0);
        audit_close(a);

        a = NULL;
        assert_int_equal(audit_open(&a, "", true, false, &err), 0);
        assert_int_equal(audit_fd(a), -1);
        audit_close(a);
        audit_close(NULL);
        assert_int_equal(audit_fd(NULL), -1);
}

static void test_bad_arguments(void **state) {
        fixture *f = *state;
        jb_err err = JB_ERR_INIT;
        audit *a = open_ok(f->path, 0);

        assert_int_equal(audit_write(a, &(audit_record) { .event = NULL }, &err), -1);
        assert_string_equal(err.code, "INTERNAL");
        jb_err_clear(&err);
        assert_int_equal(audit_write(a, NULL, &err), -1);
        assert_int_equal(audit_write(NULL, &(audit_record) { .event = "request" }, NULL), -1);
        assert_int_equal(audit_open(NULL, f->path, false, false, NULL), -1);
        assert_int_equal(audit_reopen(NULL, NULL), -1);
        audit_close(a);
        /* Nothing was written by the refused calls. */
        assert_int_equal(read_records(f->path, NULL, 0), 0);
}

static void test_fsync_always(void **state) {
        fixture *f = *state;
        jb_err err = JB_ERR_INIT;
        audit *a = NULL;

        assert_int_equal(audit_open(&a, f->path, true, false, &err), 0);
        for (int i = 0; i < 3; i++)
                write_ok(a, &(audit_record) { .event = "request" });
        audit_close(a);
        assert_int_equal(read_records(f->path, NULL, 0), 3);
}

/* ---- concurrency ---- */

#define PER_CHILD 500

static void writer_child(audit *a, audit *other, int who) {
        /* Big enough (~6 KiB per line) that interleaving would show. */
        char pad[6000], rid[32];
        json_object *params = json_object_new_object();

        audit_close(other);
        memset(pad, 'a' + who, sizeof pad - 1);
        pad[sizeof pad - 1] = '\0';
        json_object_object_add(params, "pad", json_object_new_string(pad));
        for (int i = 0; i < PER_CHILD; i++) {
                snprintf(rid, sizeof rid, "%d-%d", who, i);
                if (audit_write(a, &(audit_record) { .event = "request", .request_id = rid, .params = params },
                                NULL) < 0)
                        _exit(1);
        }
        json_object_put(params);
        audit_close(a);
        _exit(0);
}

static void test_concurrent_appends(void **state) {
        fixture *f = *state;
        static json_object *recs[2 * PER_CHILD];
        bool seen[2][PER_CHILD] = { { false } };
        audit *a = open_ok(f->path, 0), *b = open_ok(f->path, 0);
        pid_t pids[2];

        /* One child inherits the master's handle, the other opens its own:
         * both kinds of appender. */
        fflush(NULL);
        for (int who = 0; who < 2; who++) {
                pids[who] = fork();
                assert_true(pids[who] >= 0);
                if (pids[who] == 0)
                        writer_child(who == 0 ? a : b, who == 0 ? b : a, who);
        }
        for (int who = 0; who < 2; who++) {
                int status;
                assert_int_equal(waitpid(pids[who], &status, 0), pids[who]);
                assert_true(WIFEXITED(status));
                assert_int_equal(WEXITSTATUS(status), 0);
        }
        audit_close(a);
        audit_close(b);

        assert_int_equal(read_records(f->path, recs, ELEMENTSOF(recs)), 2 * PER_CHILD);
        for (size_t i = 0; i < ELEMENTSOF(recs); i++) {
                int who, n;
                const char *pad;

                assert_int_equal(sscanf(get_str(recs[i], "request_id"), "%d-%d", &who, &n), 2);
                assert_true(who >= 0 && who < 2 && n >= 0 && n < PER_CHILD);
                assert_false(seen[who][n]);
                seen[who][n] = true;
                pad = get_str(get(recs[i], "params", json_type_object), "pad");
                assert_int_equal(strlen(pad), 5999);
                assert_int_equal(strspn(pad, who ? "b" : "a"), 5999);
                json_object_put(recs[i]);
        }
}

/* ---- rotation ---- */

static void test_reopen_after_rename(void **state) {
        fixture *f = *state;
        char rotated[1024];
        jb_err err = JB_ERR_INIT;
        json_object *recs[2];
        audit *a = open_ok(f->path, 0);
        struct stat st;
        int old_fd = audit_fd(a);

        snprintf(rotated, sizeof rotated, "%s.1", f->path);
        write_ok(a, &(audit_record) { .event = "request", .request_id = "1" });
        assert_int_equal(rename(f->path, rotated), 0);
        write_ok(a, &(audit_record) { .event = "request", .request_id = "2" });
        assert_int_equal(audit_reopen(a, &err), 0);
        assert_false(jb_err_isset(&err));
        assert_true(audit_fd(a) >= 0);
        /* The old descriptor is gone. */
        assert_true(fcntl(old_fd, F_GETFD) >= 0 ? old_fd == audit_fd(a) : errno == EBADF);
        write_ok(a, &(audit_record) { .event = "request", .request_id = "3" });
        audit_close(a);

        assert_int_equal(read_records(rotated, recs, 2), 2);
        assert_string_equal(get_str(recs[0], "request_id"), "1");
        assert_string_equal(get_str(recs[1], "request_id"), "2");
        json_object_put(recs[0]);
        json_object_put(recs[1]);
        assert_int_equal(read_records(f->path, recs, 1), 1);
        assert_string_equal(get_str(recs[0], "request_id"), "3");
        json_object_put(recs[0]);
        assert_int_equal(stat(f->path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
}

/* copytruncate-style rotation left a torn line, or logrotate's "create"
 * raced a writer: reopen reports the repair. Reopen without rotation also
 * works (same file). */
static void test_reopen_repairs_and_same_file(void **state) {
        fixture *f = *state;
        jb_err err = JB_ERR_INIT;
        audit *a = open_ok(f->path, 0);

        write_ok(a, &(audit_record) { .event = "request" });
        assert_int_equal(audit_reopen(a, &err), 0);
        write_ok(a, &(audit_record) { .event = "request" });
        assert_int_equal(read_records(f->path, NULL, 0), 2);

        assert_int_equal(unlink(f->path), 0);
        spit(f->path, "{\"torn\":");
        assert_int_equal(audit_reopen(a, &err), 1);
        write_ok(a, &(audit_record) { .event = "request" });
        audit_close(a);
        {
                size_t len;
                char *buf = slurp(f->path, &len);
                assert_memory_equal(buf, "{\"torn\":\n{", 10);
                assert_ptr_equal(memchr(buf + 9, '\n', len - 9), buf + len - 1);
                free(buf);
        }
}

static void test_reopen_failure_keeps_old(void **state) {
        fixture *f = *state;
        char sub[1024], path[2048], moved[1024];
        jb_err err = JB_ERR_INIT;
        audit *a;
        int fd;

        snprintf(sub, sizeof sub, "%s/sub", f->dir);
        snprintf(path, sizeof path, "%s/audit.jsonl", sub);
        snprintf(moved, sizeof moved, "%s/moved", f->dir);
        assert_int_equal(mkdir(sub, 0700), 0);
        a = open_ok(path, 0);
        fd = audit_fd(a);
        write_ok(a, &(audit_record) { .event = "request", .request_id = "1" });
        assert_int_equal(rename(sub, moved), 0);

        assert_int_equal(audit_reopen(a, &err), -1);
        assert_string_equal(err.code, "INTERNAL");
        assert_non_null(strstr(err.msg, "directory does not exist"));
        assert_int_equal(audit_fd(a), fd);
        write_ok(a, &(audit_record) { .event = "request", .request_id = "2" });
        audit_close(a);

        snprintf(path, sizeof path, "%s/audit.jsonl", moved);
        assert_int_equal(read_records(path, NULL, 0), 2);
}

/* ---- write failures ---- */

/* RLIMIT_FSIZE lets a write stop part-way (then EFBIG), the way a full disk
 * does: the error is reported, and the next record starts a new line. */
static void test_write_failure_and_recovery(void **state) {
        fixture *f = *state;
        char pad[2000];
        jb_err err = JB_ERR_INIT;
        json_object *params = json_object_new_object(), *o;
        audit *a = open_ok(f->path, 0);
        struct rlimit old, lim;
        struct stat st;
        void (*old_handler)(int);
        char *buf, *second, *third;
        size_t len;
        int r;

        memset(pad, 'p', sizeof pad - 1);
        pad[sizeof pad - 1] = '\0';
        json_object_object_add(params, "pad", json_object_new_string(pad));

        write_ok(a, &(audit_record) { .event = "request", .request_id = "first" });
        assert_int_equal(fstat(audit_fd(a), &st), 0);

        old_handler = signal(SIGXFSZ, SIG_IGN);
        assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
        lim = old;
        lim.rlim_cur = (rlim_t) st.st_size + 100;
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
        r = audit_write(a, &(audit_record) { .event = "request", .request_id = "cut", .params = params }, &err);
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
        signal(SIGXFSZ, old_handler);

        assert_int_equal(r, -1);
        assert_string_equal(err.code, "INTERNAL");
        assert_non_null(strstr(err.msg, "cannot write audit log"));
        assert_non_null(strstr(err.msg, f->path));

        write_ok(a, &(audit_record) { .event = "request", .request_id = "third" });
        audit_close(a);

        buf = slurp(f->path, &len);
        second = strchr(buf, '\n') + 1;
        assert_int_equal(second - buf, st.st_size);
        third = strchr(second, '\n') + 1;
        assert_int_equal(third - second, 101);          /* 100 bytes of the cut record, then '\n' */
        assert_ptr_equal(strchr(third, '\n'), buf + len - 1);
        o = parse_line(third, (size_t) (buf + len - 1 - third));
        assert_string_equal(get_str(o, "request_id"), "third");
        json_object_put(o);
        free(buf);
        json_object_put(params);
}

/* ---- journal, against a fake journald socket ---- */

#include "fake-journal.h"

static void send_result(int out, int r, const jb_err *err) {
        char s[JB_ERR_CODE_MAX + JB_ERR_MSG_MAX + 16];
        int n = snprintf(s, sizeof s, "%d %s %s", r, err->code, err->msg);

        send_rec(out, 'R', s, (uint32_t) n);
}

static void journal_child(int out, const char *file) {
        jb_err err = JB_ERR_INIT;
        json_object *params = json_object_new_object();
        char big[5000];
        audit *a = NULL;
        int jfd, r;

        if (private_run() < 0)
                _exit(77);

        /* Asked for, but no journald: no journal sink. */
        r = audit_open(&a, NULL, false, true, &err);
        send_result(out, r, &err);
        send_rec(out, 'P', audit_has_journal(a) ? "y" : "n", 1);
        audit_close(a);

        jfd = bind_journal();
        if (jfd < 0)
                _exit(4);

        /* Not asked for: none either. */
        r = audit_open(&a, NULL, false, false, &err);
        send_rec(out, 'P', audit_has_journal(a) ? "y" : "n", 1);
        r = audit_write(a, &(audit_record) { .event = "request" }, &err);
        send_result(out, r, &err);
        audit_close(a);
        send_datagrams(out, jfd);       /* expect none */

        r = audit_open(&a, file, false, true, &err);
        send_rec(out, 'P', audit_has_journal(a) ? "y" : "n", 1);
        memset(big, 'B', sizeof big - 1);
        big[sizeof big - 1] = '\0';
        json_object_object_add(params, "secret", json_object_new_string("[redacted]"));
        r = audit_write(a, &(audit_record) {
                .event = "request", .request_id = "rid-9", .action = "dns.zone.apply", .module = "dns",
                .pid = 321, .uid = 1001, .gid = 1002, .params = params, .target = "ex\nample.org",
                .result = "ok", .changed = true, .duration_usec = 777, .hat = "dns",
                .confinement = "nnp",
        }, &err);
        send_result(out, r, &err);
        r = audit_write(a, &(audit_record) {
                .event = "connection_refused", .pid = 5, .uid = 6, .gid = 7,
                .result = "PERMISSION_DENIED", .error = big,
        }, &err);
        send_result(out, r, &err);
        send_datagrams(out, jfd);

        /* journald goes away: the file sink still takes the record... */
        close(jfd);
        r = audit_write(a, &(audit_record) { .event = "request", .result = "ok" }, &err);
        send_result(out, r, &err);
        audit_close(a);
        /* ...but with the journal as the only sink the failure is reported. */
        r = audit_open(&a, NULL, false, true, &err);
        send_rec(out, 'P', audit_has_journal(a) ? "y" : "n", 1);
        r = audit_write(a, &(audit_record) { .event = "request", .result = "ok" }, &err);
        send_result(out, r, &err);
        audit_close(a);
        json_object_put(params);
        _exit(0);
}

/* Finds NAME in a native-protocol datagram: "NAME=value\n", or for values
 * with a newline "NAME\n" + 64-bit little-endian length + value + "\n".
 * Returns the value's length, or -1. */
static ssize_t dg_field(const rec *r, const char *name, char *out, size_t size) {
        const char *p = r->data, *end = r->data + r->len;
        size_t nl = strlen(name);

        while (p < end) {
                const char *eol = memchr(p, '\n', (size_t) (end - p));
                const char *eq = memchr(p, '=', (size_t) (end - p));
                const char *val;
                uint64_t vlen;

                assert_non_null(eol);
                if (eq && eq < eol) {
                        val = eq + 1;
                        vlen = (uint64_t) (eol - val);
                        if ((size_t) (eq - p) == nl && memcmp(p, name, nl) == 0)
                                goto found;
                        p = eol + 1;
                        continue;
                }
                /* binary form */
                assert_true(end - eol >= 9);
                memcpy(&vlen, eol + 1, 8);      /* little-endian host assumed (x86, arm) */
                val = eol + 9;
                assert_true(vlen < (uint64_t) (end - val));
                assert_int_equal(val[vlen], '\n');
                if ((size_t) (eol - p) == nl && memcmp(p, name, nl) == 0)
                        goto found;
                p = val + vlen + 1;
                continue;
        found:
                assert_true(vlen < size);
                memcpy(out, val, (size_t) vlen);
                out[vlen] = '\0';
                return (ssize_t) vlen;
        }
        return -1;
}

static void assert_field(const rec *r, const char *name, const char *want) {
        char v[8192];

        if (!want) {
                assert_int_equal(dg_field(r, name, v, sizeof v), -1);
                return;
        }
        assert_int_equal(dg_field(r, name, v, sizeof v), (ssize_t) strlen(want));
        assert_string_equal(v, want);
}

static void assert_result(const rec *r, const char *want_prefix) {
        assert_int_equal(r->tag, 'R');
        assert_memory_equal(r->data, want_prefix, strlen(want_prefix));
}

static void test_journal_sink(void **state) {
        fixture *f = *state;
        char v[8192];
        rec recs[32] = { { 0 } };
        json_object *lines[2] = { NULL, NULL };
        int p[2], status;
        size_t n, i = 0;
        pid_t pid;

        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        fflush(NULL);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                close(p[0]);
                journal_child(p[1], f->path);
        }
        close(p[1]);
        n = read_recs(p[0], recs, ELEMENTSOF(recs));
        close(p[0]);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        if (WEXITSTATUS(status) == 77) {
                /* Neither root nor user namespaces: nothing to run this against. */
                print_message("journal sink not testable here (no mount namespace)\n");
                return;
        }
        assert_int_equal(WEXITSTATUS(status), 0);
        assert_int_equal(n, 12);

        assert_result(&recs[i++], "0 ");                /* open, journal asked, none there */
        assert_string_equal(recs[i++].data, "n");
        assert_string_equal(recs[i++].data, "n");       /* journal there, not asked */
        assert_result(&recs[i++], "0 ");                /* no sink at all: fine */
        assert_string_equal(recs[i++].data, "y");       /* file + journal */
        assert_result(&recs[i++], "0 ");
        assert_result(&recs[i++], "0 ");

        /* The request record. */
        assert_int_equal(recs[i].tag, 'D');
        assert_field(&recs[i], "MESSAGE", "audit dns.zone.apply ok");
        assert_field(&recs[i], "PRIORITY", "6");
        assert_field(&recs[i], "SYSLOG_IDENTIFIER", "jabali-agent-audit");
        assert_field(&recs[i], "JABALI_EVENT", "request");
        assert_field(&recs[i], "REQUEST_ID", "rid-9");
        assert_field(&recs[i], "JABALI_ACTION", "dns.zone.apply");
        assert_field(&recs[i], "JABALI_MODULE", "dns");
        assert_field(&recs[i], "JABALI_PEER_UID", "1001");
        assert_field(&recs[i], "JABALI_PEER_GID", "1002");
        assert_field(&recs[i], "JABALI_PEER_PID", "321");
        assert_field(&recs[i], "JABALI_RESULT", "ok");
        assert_field(&recs[i], "JABALI_CHANGED", "true");
        assert_field(&recs[i], "JABALI_DRY_RUN", "false");
        assert_field(&recs[i], "JABALI_DURATION_US", "777");
        assert_field(&recs[i], "JABALI_TARGET", "ex\nample.org");
        assert_field(&recs[i], "JABALI_HAT", "dns");
        assert_field(&recs[i], "JABALI_CONFINEMENT", "nnp");
        assert_field(&recs[i], "JABALI_ERROR", NULL);
        assert_field(&recs[i], "CODE_FILE", NULL);
        i++;

        /* The refusal: notice, absent fields left out, long values cut. */
        assert_int_equal(recs[i].tag, 'D');
        assert_field(&recs[i], "MESSAGE", "audit connection_refused PERMISSION_DENIED");
        assert_field(&recs[i], "PRIORITY", "5");
        assert_field(&recs[i], "JABALI_EVENT", "connection_refused");
        assert_field(&recs[i], "REQUEST_ID", NULL);
        assert_field(&recs[i], "JABALI_ACTION", NULL);
        assert_field(&recs[i], "JABALI_CHANGED", NULL);
        assert_field(&recs[i], "JABALI_DURATION_US", NULL);
        assert_field(&recs[i], "JABALI_HAT", NULL);
        assert_field(&recs[i], "JABALI_PEER_PID", "5");
        assert_int_equal(dg_field(&recs[i], "JABALI_ERROR", v, sizeof v), 1024);
        assert_int_equal(strspn(v, "B"), 1024);
        i++;

        assert_result(&recs[i++], "0 ");                /* journal gone, file took it */
        assert_string_equal(recs[i++].data, "y");       /* socket file still there */
        assert_result(&recs[i++], "-1 INTERNAL cannot send audit record to the journal");
        assert_int_equal(i, n);

        /* The file sink got the same records as the journal. */
        assert_int_equal(read_records(f->path, lines, 2), 3);
        assert_string_equal(get_str(lines[0], "target"), "ex\nample.org");
        assert_int_equal(strlen(get_str(lines[1], "error")), 4999);
        json_object_put(lines[0]);
        json_object_put(lines[1]);

        for (size_t k = 0; k < n; k++)
                free(recs[k].data);
}

int main(void) {
        const struct CMUnitTest tests[] = {
#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
                T(test_full_record),
                T(test_absent_members_omitted),
                T(test_big_duration),
                T(test_hostile_strings),
                T(test_every_byte),
                T(test_torn_line_repaired),
                T(test_symlink_refused),
                T(test_missing_parent_refused),
                T(test_not_regular_refused),
                T(test_existing_file_appended),
                T(test_new_file_mode_ignores_umask),
                T(test_no_file_sink),
                T(test_bad_arguments),
                T(test_fsync_always),
                T(test_concurrent_appends),
                T(test_reopen_after_rename),
                T(test_reopen_repairs_and_same_file),
                T(test_reopen_failure_keeps_old),
                T(test_write_failure_and_recovery),
                T(test_journal_sink),
#undef T
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
